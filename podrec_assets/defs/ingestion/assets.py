"""`raw_user_events` and `quarantined_events`: one ingestion step writes both, exactly once (see kafka_to_delta)."""

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    Config,
    MaterializeResult,
    MetadataValue,
    multi_asset,
)
from pydantic import Field

from podrec_assets.defs.resources import DeltaLakeResource, KafkaResource
from podrec_assets.lib.ingestion.delta_sink import DeltaEventSink
from podrec_assets.lib.ingestion.kafka_to_delta import IngestLimits, IngestReport, ingest_pending
from podrec_assets.names import KAFKA_INGEST_POOL, QUARANTINED_EVENTS, RAW_USER_EVENTS

# Tag of the runs the sensor requests (find them in the UI with podrec/ingest=user-events).


class IngestConfig(Config):
    max_events: int = Field(default=IngestLimits.max_events, description="messages read by one run at most")
    batch_events: int = Field(default=IngestLimits.batch_events, description="messages per Delta commit")


def open_sink(delta: DeltaLakeResource, kafka: KafkaResource) -> DeltaEventSink:
    return DeltaEventSink(
        delta.table_uri(RAW_USER_EVENTS),
        delta.table_uri(QUARANTINED_EVENTS),
        kafka.topic,
        kafka.topic_id(),
        delta.storage_options(),
    )


def report_metadata(report: IngestReport, table_uri: str) -> dict:
    return {
        "messages_read": report.messages,
        "events_accepted": report.accepted,
        "duplicates_dropped": report.duplicates,
        "quarantined": report.quarantined,
        "quarantine_rate": float(round(report.quarantine_rate, 6)),
        "quarantine_reasons": MetadataValue.json(dict(report.reasons)),
        "event_dates": MetadataValue.json(sorted(d.isoformat() for d in report.event_dates)),
        "kafka_topic_id": str(report.topic_id),
        "kafka_offsets": MetadataValue.json({str(p): list(r) for p, r in sorted(report.offsets.items())}),
        "delta_commits": report.commits,
        "caught_up": report.caught_up,
        "events_per_second": float(round(report.messages / report.seconds, 1)) if report.seconds else 0.0,
        "table_uri": MetadataValue.path(table_uri),
    }


@multi_asset(
    specs=[
        AssetSpec(
            RAW_USER_EVENTS,
            description="Every accepted listener event exactly once, one row per event_id, partitioned by "
            "event_date (Delta). Keeps the Kafka topic, partition and offset of each event.",
        ),
        AssetSpec(
            QUARANTINED_EVENTS,
            description="Every message that broke the event contract, with its raw bytes, Kafka position and "
            "the reason (see ingestion/contract.py REASONS).",
        ),
    ],
    pool=KAFKA_INGEST_POOL,
)
def user_event_tables(
    context: AssetExecutionContext, config: IngestConfig, kafka: KafkaResource, delta: DeltaLakeResource
):
    """Ingest everything pending on the events topic (bounded by `max_events`) into the two Delta tables."""
    sink = open_sink(delta, kafka)
    report = ingest_pending(
        lambda: kafka.consumer(),
        sink,
        IngestLimits(max_events=config.max_events, batch_events=config.batch_events),
        on_batch=lambda r: context.log.info(f"{r.messages} messages read, {r.accepted} events committed"),
    )
    context.log.info(
        f"ingested {report.accepted} events, quarantined {report.quarantined}, dropped {report.duplicates} "
        f"duplicates from {report.messages} messages in {report.seconds:.1f}s"
    )
    yield MaterializeResult(
        asset_key=AssetKey(RAW_USER_EVENTS),
        metadata={**report_metadata(report, sink.raw.table_uri), "delta_version": sink.raw.version()},
    )
    yield MaterializeResult(
        asset_key=AssetKey(QUARANTINED_EVENTS),
        metadata={
            "quarantined": report.quarantined,
            "quarantine_reasons": MetadataValue.json(dict(report.reasons)),
            "delta_version": sink.quarantine.version(),
            "table_uri": MetadataValue.path(sink.quarantine.table_uri),
        },
    )
