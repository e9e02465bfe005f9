"""`podrec dashboard`: the Streamlit dashboard, on 127.0.0.1:8501 unless told otherwise."""

from __future__ import annotations

import os
import sys

import click


@click.command("dashboard")
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="bind address (loopback unless you mean it)"
)
@click.option("--port", default=8501, show_default=True)
def dashboard(host: str, port: int) -> None:
    """Live activity, episodes, a listener's list beside their history, models and data quality (Streamlit)."""
    from podrec_assets.apps.dashboard import APP

    command = [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.address", host,
        "--server.port", str(port),
        "--server.headless", "true",  # no browser opened, no e-mail prompt
        "--browser.gatherUsageStats", "false",  # nothing leaves the machine
        "--server.fileWatcherType", "none",
        "--server.runOnSave", "false",
        "--client.toolbarMode", "viewer",
    ]  # fmt: skip
    click.echo(f"dashboard on http://{host}:{port} (Ctrl-C stops it)", err=True)
    sys.stdout.flush()
    # the process becomes Streamlit (same pid): a signal to `podrec dashboard` reaches the server itself
    os.execv(sys.executable, command)
