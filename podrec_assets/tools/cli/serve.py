"""`podrec serve`: the HTTP API (FastAPI on uvicorn), on 127.0.0.1:8000 unless told otherwise."""

from __future__ import annotations

import os
import shutil

import click

from podrec_assets.lib.settings import podrec_home


@click.command("serve")
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="bind address (loopback unless you mean it)"
)
@click.option("--port", default=8000, show_default=True)
@click.option("--workers", default=2, show_default=True, help="server processes")
def serve(host: str, port: int, workers: int) -> None:
    """Serve recommendations, take events, log impressions (OpenAPI at /docs, Prometheus at /metrics)."""
    import uvicorn

    if workers > 1:  # each process writes its metrics here; /metrics adds them up (prometheus-client)
        folder = podrec_home() / "run" / f"prometheus-{port}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    uvicorn.run("podrec_assets.apps.api.app:create_app", factory=True, host=host, port=port, workers=workers,
                log_level="warning", access_log=False)  # fmt: skip
