"""`podrec models list|promote`: the ALS and ranker versions in the MLflow Model Registry; promoting moves the
`champion` alias (promote an older version to roll back)."""

from __future__ import annotations

import os
import sys

import click

from podrec_assets.tools.cli.common import fail, resources


@click.group()
def models() -> None:
    """Versioned ALS models and rankers: list them, promote one (also how to roll back)."""


@models.command("list")
def models_list() -> None:
    """ALS versions and ranker versions (* = champion), MLflow's version number, their held-out nDCG@10 and gate,
    and what serves."""
    from podrec_assets.lib.serving.policy import serving_policy

    registry = resources()["models"].registry("als")
    current = registry.current()
    click.echo(f"MLflow registry: {registry.uri}")
    click.echo(f"als ({registry.model_name}):")
    for version in registry.versions():
        manifest = registry.manifest(version)
        ndcg = {m: v.get("ndcg@10") for m, v in manifest["evaluation"]["metrics"].items()}
        mark = "*" if version == current else " "
        click.echo(f"{mark} {version} (v{registry.mlflow_version(version)})  "
                   f"nDCG@10 als {ndcg.get('als')} popularity {ndcg.get('popularity')}  "
                   f"gate {'passed' if manifest['gate']['passed'] else 'failed'}")  # fmt: skip
    rankers = resources()["models"].registry("ranker")
    click.echo(f"ranker ({rankers.model_name}):")
    for version in rankers.versions():
        manifest = rankers.manifest(version)
        ndcg = {m: v.get("ndcg@10") for m, v in manifest["gate"]["metrics"].items()}
        mark = "*" if version == rankers.current() else " "
        click.echo(f"{mark} {version} (v{rankers.mlflow_version(version)})  on als {manifest['als_version']}  "
                   f"nDCG@10 ranker {ndcg.get('ranker')} "
                   f"als {ndcg.get('als')} hybrid {ndcg.get('hybrid')}  gate "
                   f"{'passed' if manifest['gate']['passed'] else 'failed'}")  # fmt: skip
    policy = serving_policy(resources()["models"].root, resources()["models"].tracking_uri)
    click.echo(f"serving: {policy.strategy} ({policy.why})")


@models.command("promote")
@click.argument("version")
@click.option("--reason", default="promoted by hand", show_default=True)
@click.option("--kind", type=click.Choice(["als", "ranker"]), default="als", show_default=True)
def models_promote(version: str, reason: str, kind: str) -> None:
    """Point the `champion` alias of VERSION's registered model at it (rollback = promote an earlier version); then
    rerun
    final_recommendations and published_recommendations (and als_recommendations for ALS)."""
    registry = resources()["models"].registry(kind)
    try:
        registry.promote(version, reason)
    except ValueError as error:
        fail(str(error))
    click.echo(
        f"champion of {registry.model_name}: {registry.current()} (MLflow v{registry.mlflow_version(version)})"
    )


@models.command("ui")
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="bind address (loopback unless you mean it)"
)
@click.option("--port", default=5000, show_default=True)
def models_ui(host: str, port: int) -> None:
    """The MLflow UI over the model registry: runs, their parameters, metrics and files, the versions and which one
    is `champion`. With MLFLOW_TRACKING_URI set, that server is the UI: open it instead."""
    tracking_uri = os.environ.get("MLFLOW_TRACKING_URI")
    if tracking_uri and tracking_uri.startswith(("http://", "https://")):
        fail(f"MLFLOW_TRACKING_URI={tracking_uri} is an MLflow server: its UI is there")
    store = resources()["models"].registry("als").uri
    command = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", store,
        "--host", host, "--port", str(port),
        "--workers", "1",
    ]  # fmt: skip
    click.echo(f"MLflow UI over {store} on http://{host}:{port} (Ctrl-C stops it)", err=True)
    sys.stdout.flush()
    os.execv(sys.executable, command)  # the process becomes the server: a signal reaches it directly


@models.command("import-folders")
def models_import_folders() -> None:
    """Register the model versions of the folder registry MLflow replaced ($PODREC_MODEL_ROOT/<kind>/<version>/,
    CURRENT) in MLflow, so an upgraded install keeps serving its promoted models. Safe to run twice."""
    from podrec_assets.lib.models.registry import import_folder_versions

    for kind in ("als", "ranker"):
        registry = resources()["models"].registry(kind)
        imported = import_folder_versions(registry)
        click.echo(
            f"{registry.model_name}: {len(imported)} version(s) registered; champion: {registry.current()}"
        )
