"""Exactly-once ingestion of a Kafka topic into the `raw_user_events` and `quarantined_events` Delta tables.

One call of `ingest_pending` reads every partition of the topic from the position stored in the Delta log, in
batches; each batch is validated (`batch_validation.validate_batch`), de-duplicated by `event_id` and committed:

1. bad messages to `quarantined_events`, with that table's own positions (skipping offsets it already holds), then
2. good, new events to `raw_user_events`, with the positions the next run resumes from.

A crash between or inside these commits loses nothing and doubles nothing: the next run resumes from the positions in
`raw_user_events`, re-reads the same messages, skips quarantine rows already committed and events already present.
Two runs racing on the same partitions cannot both commit: Delta rejects the second commit that carries an
already-advanced application transaction (`CommitFailedError`), and that run fails without writing.

Consumer-group offsets are never committed: the Delta log is the only position of record.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake
from kafka import KafkaConsumer, TopicPartition

from podrec_assets.ingestion.batch_validation import validate_batch
from podrec_assets.ingestion.tables import (
    QUARANTINED_EVENTS,
    QUARANTINED_EVENTS_SCHEMA,
    RAW_USER_EVENTS,
    RAW_USER_EVENTS_PARTITION_BY,
    RAW_USER_EVENTS_SCHEMA,
    position_app_id,
    rows_to_table,
    stored_positions,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestLimits:
    max_events: int = 1_000_000  # messages per run: keeps a run bounded; the sensor requests the next one
    batch_events: int = 50_000  # messages per Delta commit
    idle_ms: int = 1_000  # a poll that waits this long and gets nothing means "caught up"


@dataclass
class IngestReport:
    topic: str
    topic_id: str | None = None
    messages: int = 0
    accepted: int = 0
    duplicates: int = 0
    quarantined: int = 0
    reasons: Counter = field(default_factory=Counter)
    event_dates: set[date] = field(default_factory=set)
    # partition -> (first offset read, next offset to read)
    offsets: dict[int, tuple[int, int]] = field(default_factory=dict)
    commits: int = 0
    seconds: float = 0.0
    caught_up: bool = False

    @property
    def quarantine_rate(self) -> float:
        return self.quarantined / self.messages if self.messages else 0.0


def ensure_table(uri: str, schema: pa.Schema, partition_by: list[str] | None, storage_options=None) -> DeltaTable:
    if not DeltaTable.is_deltatable(uri, storage_options=storage_options):
        try:
            DeltaTable.create(uri, schema=schema, partition_by=partition_by, storage_options=storage_options)
        except Exception:  # another process created it first
            if not DeltaTable.is_deltatable(uri, storage_options=storage_options):
                raise
    return DeltaTable(uri, storage_options=storage_options)


def _crash_point(name: str) -> None:
    """Fault injection for the crash test: SIGKILL this process at a named point when PODREC_CRASH_AT says so."""
    if os.environ.get("PODREC_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


class DeltaEventSink:
    """The two ingestion tables and the Kafka positions stored in their Delta logs."""

    def __init__(self, raw_uri: str, quarantine_uri: str, topic: str, topic_id: str | None,
                 storage_options: dict | None = None):  # fmt: skip
        self.topic = topic
        self.topic_id = topic_id
        self.raw = ensure_table(raw_uri, RAW_USER_EVENTS_SCHEMA, RAW_USER_EVENTS_PARTITION_BY, storage_options)
        self.quarantine = ensure_table(quarantine_uri, QUARANTINED_EVENTS_SCHEMA, None, storage_options)
        self._known_ids: set[str] | None = None

    def positions(self, partitions: Iterable[int]) -> dict[int, int | None]:
        """Next offset to read per partition, or None if nothing was ever ingested from it."""
        return stored_positions(self.raw, RAW_USER_EVENTS, self.topic, self.topic_id, partitions)

    def quarantine_positions(self, partitions: Iterable[int]) -> dict[int, int]:
        stored = stored_positions(self.quarantine, QUARANTINED_EVENTS, self.topic, self.topic_id, partitions)
        return {p: offset or 0 for p, offset in stored.items()}

    def known_event_ids(self) -> set[str]:
        """Every event_id the table holds, loaded once per run (one column; ~0.1 s per million events) and kept up
        to date by `commit`. Whole-table, because a replay may re-stamp an event onto another day."""
        if self._known_ids is None:
            ids = self.raw.to_pyarrow_table(columns=["event_id"])["event_id"]
            self._known_ids = set(ids.to_pylist())
        return self._known_ids

    def _commit_properties(self, table: str, next_offsets: dict[int, int]) -> CommitProperties:
        return CommitProperties(
            app_transactions=[
                Transaction(position_app_id(table, self.topic, self.topic_id, p), offset)
                for p, offset in next_offsets.items()
            ],
            custom_metadata={"podrec.operation": "kafka-ingest", "podrec.topic": self.topic},
        )

    def commit(self, events: pa.Table, rejects: pa.Table, next_offsets: dict[int, int]) -> None:
        if rejects.num_rows:
            write_deltalake(
                self.quarantine, rejects, mode="append",
                commit_properties=self._commit_properties(QUARANTINED_EVENTS, next_offsets),
            )  # fmt: skip
            _crash_point("after-quarantine-commit")
        write_deltalake(
            self.raw, events, mode="append", partition_by=RAW_USER_EVENTS_PARTITION_BY,
            commit_properties=self._commit_properties(RAW_USER_EVENTS, next_offsets),
        )  # fmt: skip
        _crash_point("after-raw-commit")
        self.known_event_ids().update(events["event_id"].to_pylist())


@dataclass
class Batch:
    """One poll's worth of messages, split into canonical events and rejects."""

    events: pa.Table
    rejects: pa.Table
    next_offsets: dict[int, int]
    messages: int
    duplicates: int
    reasons: Counter


def build_batch(records: list, sink: DeltaEventSink, quarantine_from: dict[int, int], now: datetime) -> Batch:
    """Validate and de-duplicate `records` (kafka-python ConsumerRecords) into Arrow tables ready to commit."""
    topic = sink.topic
    partitions = [record.partition for record in records]
    offsets = [record.offset for record in records]
    next_offsets: dict[int, int] = {}
    for partition, offset in zip(partitions, offsets, strict=True):
        if offset >= next_offsets.get(partition, 0):
            next_offsets[partition] = offset + 1

    validation = validate_batch([record.value for record in records], now)

    reasons: Counter = Counter()
    rejects: list[tuple] = []
    for i, bad in validation.rejects:
        reasons[bad.code] += 1
        record = records[i]
        if record.offset >= quarantine_from.get(record.partition, 0):  # below: committed before a crash
            raw = record.value
            text = raw.decode("utf-8", errors="replace") if raw is not None else None
            kafka_ts = datetime.fromtimestamp(record.timestamp / 1000, UTC) if record.timestamp >= 0 else None
            rejects.append((topic, record.partition, record.offset, kafka_ts, record.key, raw, text, bad.code,
                            bad.detail, now))  # fmt: skip

    # Drop events whose id is already in the table, or earlier in this batch (producer retries, replays). In offset
    # order, so the first copy of an event wins.
    known = sink.known_event_ids()
    source = validation.event_indices
    event_ids = validation.events["event_id"].to_pylist()
    keep: list[int] = []
    batch_ids: set[str] = set()
    for row in sorted(range(len(source)), key=source.__getitem__):
        event_id = event_ids[row]
        if event_id in batch_ids or event_id in known:
            continue
        batch_ids.add(event_id)
        keep.append(row)
    kept_sources = [source[row] for row in keep]
    events = validation.events.take(pa.array(keep, pa.int64()))
    events = pa.Table.from_arrays(
        [
            *events.columns,
            pa.array([topic] * len(keep), pa.string()),
            pa.array([partitions[i] for i in kept_sources], pa.int32()),
            pa.array([offsets[i] for i in kept_sources], pa.int64()),
            pa.array([now] * len(keep), RAW_USER_EVENTS_SCHEMA.field("ingested_at").type),
        ],
        schema=RAW_USER_EVENTS_SCHEMA,
    )
    return Batch(
        events=events,
        rejects=rows_to_table(rejects, QUARANTINED_EVENTS_SCHEMA),
        next_offsets=next_offsets,
        messages=len(records),
        duplicates=len(source) - len(keep),
        reasons=reasons,
    )


def assign_at(consumer: KafkaConsumer, topic: str, positions: dict[int, int | None]) -> None:
    """Assign the partitions to `consumer` and seek each to its stored position (its beginning if none)."""
    topic_partitions = [TopicPartition(topic, p) for p in sorted(positions)]
    consumer.assign(topic_partitions)
    for tp in topic_partitions:
        if positions[tp.partition] is None:
            consumer.seek_to_beginning(tp)
        else:
            consumer.seek(tp, positions[tp.partition])


def ingest_pending(
    consumer_factory: Callable[[], KafkaConsumer],
    sink: DeltaEventSink,
    limits: IngestLimits = IngestLimits(),
    on_batch: Callable[[IngestReport], None] | None = None,
) -> IngestReport:
    """Ingest what the topic holds beyond the stored positions, up to `limits.max_events` messages."""
    started = time.perf_counter()
    report = IngestReport(topic=sink.topic, topic_id=sink.topic_id)
    consumer = consumer_factory()
    try:
        partitions = sorted(consumer.partitions_for_topic(sink.topic) or [])
        if not partitions:
            raise RuntimeError(f"Kafka topic {sink.topic!r} does not exist (run `podrec services up`)")
        positions = sink.positions(partitions)
        quarantine_from = sink.quarantine_positions(partitions)
        assign_at(consumer, sink.topic, positions)

        def commit(records: list) -> None:
            batch = build_batch(records, sink, quarantine_from, datetime.now(UTC))
            sink.commit(batch.events, batch.rejects, batch.next_offsets)
            for p, nxt in batch.next_offsets.items():
                first = report.offsets.get(p, (positions[p] if positions[p] is not None else 0, 0))[0]
                report.offsets[p] = (first, nxt)
                quarantine_from[p] = max(quarantine_from.get(p, 0), nxt)
            report.accepted += batch.events.num_rows
            report.duplicates += batch.duplicates
            report.quarantined += sum(batch.reasons.values())
            report.reasons.update(batch.reasons)
            report.event_dates.update(batch.events["event_date"].unique().to_pylist())
            report.commits += 1
            log.info(
                "committed %d events, %d quarantined, %d duplicates (positions %s)",
                batch.events.num_rows, sum(batch.reasons.values()), batch.duplicates, batch.next_offsets,
            )  # fmt: skip
            if on_batch:
                on_batch(report)

        # Batch N is validated and committed on a worker thread while this thread polls batch N+1: polling is
        # Python-bound, validation and Delta writes mostly run in Arrow/delta-rs without the GIL. One batch in flight
        # at most, committed in order, so a crash still loses only uncommitted work.
        # The worker leaves and re-takes the GIL dozens of times per batch (Arrow, delta-rs); with CPython's default
        # 5 ms switch interval it would wait behind the busy polling thread each time.
        switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(0.0002)
        try:
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="delta-commit") as committer:
                in_flight: Future | None = None
                while report.messages < limits.max_events and not report.caught_up:
                    records: list = []
                    want = min(limits.batch_events, limits.max_events - report.messages)
                    while len(records) < want:
                        polled = consumer.poll(timeout_ms=limits.idle_ms, max_records=want - len(records))
                        if not polled:
                            report.caught_up = True
                            break
                        for messages in polled.values():
                            records.extend(messages)
                    if in_flight is not None:
                        in_flight.result()  # re-raises a failed commit before anything else is committed
                    if not records:
                        break
                    report.messages += len(records)
                    in_flight = committer.submit(commit, records)
                if in_flight is not None:
                    in_flight.result()
        finally:
            sys.setswitchinterval(switch_interval)
    finally:
        consumer.close()
    report.seconds = time.perf_counter() - started
    return report


def pending_partitions(
    consumer: KafkaConsumer, topic: str, positions: dict[int, int | None], timeout_ms: int = 3_000
) -> dict[int, int]:
    """Partitions holding a message at or after their stored position: {partition: first such offset}.

    Reads at most one fetch per partition instead of trusting `end_offsets()`, which some brokers (Tansu) answer with
    the last batch's base offset. Bounded by `timeout_ms`; a partition without data costs one empty fetch.
    """
    assign_at(consumer, topic, positions)
    found: dict[int, int] = {}
    topic_partitions = consumer.assignment()
    deadline = time.monotonic() + timeout_ms / 1000
    while len(found) < len(topic_partitions):
        remaining_ms = int((deadline - time.monotonic()) * 1000)
        if remaining_ms <= 0:
            break
        polled = consumer.poll(timeout_ms=remaining_ms, max_records=len(topic_partitions) * 4)
        if not polled:
            break
        for tp, messages in polled.items():
            found.setdefault(tp.partition, messages[0].offset)
            consumer.pause(tp)  # seen: fetch only the others from now on
    return found


def read_positions(
    raw_uri: str, topic: str, topic_id: str | None, partitions: Iterable[int], storage_options=None
) -> dict[int, int | None]:
    """Stored positions without creating anything (all None before the first ingestion)."""
    if not DeltaTable.is_deltatable(raw_uri, storage_options=storage_options):
        return {p: None for p in partitions}
    return stored_positions(DeltaTable(raw_uri, storage_options=storage_options), RAW_USER_EVENTS, topic, topic_id,
                            partitions)  # fmt: skip
