"""`podrec ingest`: pending Kafka events into Delta outside Dagster (the crash tests drive it)."""

from __future__ import annotations

import click

from podrec_assets.tools.cli.common import resources


@click.command("ingest")
@click.option("--max-events", default=1_000_000, show_default=True)
@click.option("--batch-events", default=50_000, show_default=True)
def ingest(max_events: int, batch_events: int) -> None:
    """Ingest pending events into Delta outside Dagster (the same code the raw_user_events asset runs)."""
    from podrec_assets.defs.ingestion.assets import open_sink
    from podrec_assets.lib.ingestion.kafka_to_delta import IngestLimits, ingest_pending

    configured = resources()
    kafka, delta = configured["kafka"], configured["delta"]
    report = ingest_pending(kafka.consumer, open_sink(delta, kafka), IngestLimits(max_events, batch_events))
    click.echo(
        f"read {report.messages} messages: {report.accepted} events, {report.quarantined} quarantined, "
        f"{report.duplicates} duplicates, {report.commits} commits, caught up: {report.caught_up}"
    )
