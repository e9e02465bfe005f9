"""Impressions: every list the API served (who, which episodes in which positions, by which model, strategy and A/B
arm), produced to Kafka and landed exactly once in the Delta table `recommendation_impressions`.

Exactly once, as the listener events are (lib/ingestion/tables.py): each partition's next offset is a Delta
application transaction committed atomically with the rows it produced; a message that breaks the impression format
goes to `quarantined_events` first, with that table's own position for this topic, so a crash between the two commits
neither loses nor doubles anything. An impression_id already in the table (a producer retry) is dropped.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import orjson
import pyarrow as pa
from deltalake import CommitProperties, Transaction, write_deltalake
from kafka import KafkaConsumer

from podrec_assets.lib.ingestion.delta_sink import ensure_table
from podrec_assets.lib.ingestion.kafka_to_delta import assign_at
from podrec_assets.lib.ingestion.tables import (
    QUARANTINED_EVENTS_SCHEMA,
    position_app_id,
    rows_to_table,
    stored_positions,
)
from podrec_assets.lib.serving.ids import is_safe_id
from podrec_assets.names import QUARANTINED_EVENTS, RECOMMENDATION_IMPRESSIONS

IMPRESSIONS_SCHEMA = pa.schema(
    [
        pa.field("impression_id", pa.string(), nullable=False),  # the API's request id
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("served_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("served_date", pa.date32(), nullable=False),  # partition column (UTC day of served_at)
        pa.field("episode_ids", pa.list_(pa.string()), nullable=False),  # position i + 1 holds episode_ids[i]
        pa.field("model_version", pa.string()),
        pa.field("strategy", pa.string(), nullable=False),  # served | als | popularity
        pa.field("arm", pa.string(), nullable=False),  # the A/B arm (lib/serving/experiments.py)
        pa.field("kafka_topic", pa.string(), nullable=False),
        pa.field("kafka_partition", pa.int32(), nullable=False),
        pa.field("kafka_offset", pa.int64(), nullable=False),
        pa.field("ingested_at", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
)
PARTITION_BY = ["served_date"]
MAX_EPISODES = 1000


def impression_message(
    impression_id: str,
    user_id: str,
    episode_ids: list[str],
    model_version: str | None,
    strategy: str,
    arm: str,
    served_at: datetime,
) -> bytes:
    """The Kafka message the API produces for one list it served."""
    return orjson.dumps({
        "impression_id": impression_id, "user_id": user_id, "served_at": served_at.astimezone(UTC).isoformat(),
        "episode_ids": episode_ids, "model_version": model_version, "strategy": strategy, "arm": arm,
    })  # fmt: skip


@dataclass(frozen=True)
class InvalidImpression(Exception):
    code: str
    detail: str


def parse_impression(raw: bytes | None) -> tuple:
    """One message → the impression's fields in IMPRESSIONS_SCHEMA order up to `arm`; InvalidImpression if not."""
    try:
        message = orjson.loads(raw or b"")
    except orjson.JSONDecodeError as error:
        raise InvalidImpression("not_json", str(error)[:200]) from None
    if not isinstance(message, dict):
        raise InvalidImpression("not_object", f"got a JSON {type(message).__name__}")
    for name in ("impression_id", "user_id", "strategy", "arm"):
        if not is_safe_id(message.get(name)):
            raise InvalidImpression("bad_id", f"{name} is missing or not a plain id")
    episodes = message.get("episode_ids")
    if not isinstance(episodes, list) or len(episodes) > MAX_EPISODES or not all(map(is_safe_id, episodes)):
        raise InvalidImpression("bad_episodes", "episode_ids must be a list of plain ids")
    version = message.get("model_version")
    if version is not None and not isinstance(version, str):
        raise InvalidImpression("wrong_type", "model_version must be a string")
    try:
        served_at = datetime.fromisoformat(message["served_at"]).astimezone(UTC)
    except (KeyError, TypeError, ValueError):
        raise InvalidImpression("bad_timestamp", "served_at is missing or not ISO 8601") from None
    return (message["impression_id"], message["user_id"], served_at, served_at.date(), episodes, version,
            message["strategy"], message["arm"])  # fmt: skip


@dataclass
class ImpressionReport:
    messages: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    reasons: Counter = field(default_factory=Counter)
    served_dates: set[date] = field(default_factory=set)
    commits: int = 0
    caught_up: bool = False
    seconds: float = 0.0


def _known_ids(table, dates: set[date]) -> set[str]:
    if not dates:
        return set()
    rows = table.to_pyarrow_table(columns=["impression_id"], filters=[("served_date", "in", sorted(dates))])
    return set(rows.column("impression_id").to_pylist())


def ingest_impressions(
    consumer: KafkaConsumer,
    table_uri: str,
    quarantine_uri: str,
    topic: str,
    topic_id: str | None,
    max_messages: int = 200_000,
    batch_messages: int = 20_000,
    idle_ms: int = 1_000,
    storage_options: dict | None = None,
) -> ImpressionReport:
    """Land what `topic` holds beyond the stored positions (see the module docstring)."""
    started, report = time.perf_counter(), ImpressionReport()
    partitions = sorted(consumer.partitions_for_topic(topic) or [])
    if not partitions:  # nothing was ever served: the API creates the topic with its first impression
        report.caught_up = True
        return report
    table = ensure_table(table_uri, IMPRESSIONS_SCHEMA, PARTITION_BY, storage_options)
    quarantine = ensure_table(quarantine_uri, QUARANTINED_EVENTS_SCHEMA, None, storage_options)
    positions = stored_positions(table, RECOMMENDATION_IMPRESSIONS, topic, topic_id, partitions)
    quarantined_up_to = stored_positions(quarantine, QUARANTINED_EVENTS, topic, topic_id, partitions)
    assign_at(consumer, topic, positions)
    while report.messages < max_messages:
        records = [
            (tp.partition, record)
            for tp, batch in consumer.poll(timeout_ms=idle_ms, max_records=batch_messages).items()
            for record in batch
        ]
        if not records:
            report.caught_up = True
            break
        now = datetime.now(UTC)
        rows, rejects, next_offsets = [], [], {}
        for partition, record in records:
            next_offsets[partition] = record.offset + 1
            try:
                rows.append((*parse_impression(record.value), topic, partition, record.offset, now))
            except InvalidImpression as bad:
                report.reasons[bad.code] += 1
                done = quarantined_up_to[partition]
                if done is None or record.offset >= done:  # not quarantined by a run that crashed after it
                    raw = record.value
                    text = raw.decode("utf-8", errors="replace") if raw is not None else None
                    kafka_ts = (
                        datetime.fromtimestamp(record.timestamp / 1000, UTC)
                        if record.timestamp >= 0
                        else None
                    )
                    rejects.append((topic, partition, record.offset, kafka_ts, record.key, raw, text, bad.code,
                                    bad.detail, now))  # fmt: skip
        known, kept = _known_ids(table, {r[3] for r in rows}), []
        for row in rows:
            if row[0] not in known:
                known.add(row[0])
                kept.append(row)
        # first: a crash before the next commit re-reads them, and skips them here (quarantined_up_to)
        if rejects:
            positions = _positions(QUARANTINED_EVENTS, topic, topic_id, next_offsets)
            write_deltalake(quarantine, rows_to_table(rejects, QUARANTINED_EVENTS_SCHEMA), mode="append",
                            commit_properties=positions)  # fmt: skip
        positions = _positions(RECOMMENDATION_IMPRESSIONS, topic, topic_id, next_offsets)
        write_deltalake(table, rows_to_table(kept, IMPRESSIONS_SCHEMA), mode="append", partition_by=PARTITION_BY,
                        commit_properties=positions)  # fmt: skip
        table.update_incremental()
        quarantine.update_incremental()
        report.messages += len(records)
        report.accepted += len(kept)
        report.duplicates += len(rows) - len(kept)
        report.rejected += len(records) - len(rows)
        report.served_dates.update(r[3] for r in kept)
        report.commits += 1
    report.seconds = time.perf_counter() - started
    return report


def _positions(
    table: str, topic: str, topic_id: str | None, next_offsets: dict[int, int]
) -> CommitProperties:
    return CommitProperties(
        app_transactions=[
            Transaction(position_app_id(table, topic, topic_id, p), offset)
            for p, offset in next_offsets.items()
        ],
        custom_metadata={"podrec.operation": "kafka-ingest", "podrec.topic": topic},
    )
