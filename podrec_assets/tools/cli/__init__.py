"""The `podrec` command, one module per command group: services, events, ingest, show (summary, recommend,
similar, event-days), models, evaluate, serve (the HTTP API), dashboard. The graph itself runs with `dg` (Makefile)."""

import click

from podrec_assets.lib.settings import apply_local_defaults
from podrec_assets.tools.cli.dashboard import dashboard
from podrec_assets.tools.cli.evaluate import evaluate
from podrec_assets.tools.cli.events import events
from podrec_assets.tools.cli.ingest import ingest
from podrec_assets.tools.cli.listeners import listeners
from podrec_assets.tools.cli.models import models
from podrec_assets.tools.cli.serve import serve
from podrec_assets.tools.cli.services import services
from podrec_assets.tools.cli.show import event_days, recommend, similar, summary


@click.group()
def main() -> None:
    """podrec: podcast recommendations as a Dagster asset graph."""
    apply_local_defaults()


for command in (services, events, ingest, summary, recommend, similar, event_days, models, evaluate, serve,
                dashboard, listeners):  # fmt: skip
    main.add_command(command)
