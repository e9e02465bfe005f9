"""`podrec services up|down|status`: the local stack on 127.0.0.1."""

from __future__ import annotations

import click

from podrec_assets.tools.cli.common import fail


@click.group()
def services() -> None:
    """Start, stop and inspect the local stack (Kafka, MongoDB, Spark Connect) on 127.0.0.1."""


@services.command("up")
@click.option(
    "--only", multiple=True, type=click.Choice(["kafka", "mongo", "spark"]), help="start only these"
)
@click.option("--faces", is_flag=True, help="also the HTTP API (:8000) and the dashboard (:8501)")
def services_up(only: tuple[str, ...], faces: bool) -> None:
    """Start what is not running and wait until every service answers (idempotent)."""
    from podrec_assets.tools.stack import LocalStack, ServiceError

    try:
        stack = LocalStack()
        statuses = stack.up_faces(click.echo) if faces else stack.up(list(only) or None, click.echo)
    except ServiceError as error:
        fail(str(error))
    for status in statuses:
        if not only or status.role in only:
            click.echo(status.line())


@services.command("down")
def services_down() -> None:
    """Stop every server this project started (by PID), and nothing else."""
    from podrec_assets.tools.stack import LocalStack

    LocalStack().down(log=lambda m: click.echo(m))


@services.command("status")
def services_status() -> None:
    from podrec_assets.tools.stack import LocalStack

    for status in LocalStack().status():
        click.echo(status.line())
