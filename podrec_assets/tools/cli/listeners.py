"""`podrec listeners forget USER_ID`: remove a listener from every table and collection (lib/privacy/erasure.py)."""

from __future__ import annotations

import click

from podrec_assets.lib.privacy.erasure import erase_listener
from podrec_assets.tools.cli.common import fail, resources


@click.group()
def listeners() -> None:
    """Listeners' data: erasure."""


@listeners.command("forget")
@click.argument("user_id")
@click.option("--vacuum-days", type=float, default=7.0, show_default=True,
              help="deleted files older than this leave the disk now (VACUUM)")  # fmt: skip
def forget(user_id: str, vacuum_days: float) -> None:
    """Remove USER_ID's events, engagement, lists, impressions, quarantined messages, stats and affinities."""
    configured = resources()
    delta, mongo = configured["delta"], configured["mongo"]
    client = mongo.client()
    try:
        report = erase_listener(
            user_id, delta.table_uri, mongo.db(client), delta.storage_options(), vacuum_days
        )
    except Exception as error:  # noqa: BLE001 - shown to the operator, with the stores left as far as they got
        fail(f"erasure of {user_id!r} stopped: {error}; run it again (each step is idempotent)")
    finally:
        client.close()
    click.echo(
        f"forgot {user_id}: Delta rows {report.delta_rows}; MongoDB documents {report.mongo_documents}"
    )
