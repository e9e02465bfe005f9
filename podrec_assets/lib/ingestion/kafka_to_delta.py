"""Exactly-once ingestion of a Kafka topic into the `raw_user_events` and `quarantined_events` Delta tables.

One call of `ingest_pending` reads every partition of the topic from the position stored in the Delta log, in
batches; each batch is validated (`batch_validation.validate_batch`), de-duplicated by `event_id` and committed
(delta_sink.py):

1. bad messages to `quarantined_events`, with that table's own positions (skipping offsets it already holds), then
2. good, new events to `raw_user_events`, with the positions the next run resumes from.

Two processes share the work: this one only polls Kafka and streams each poll's messages, column-wise, to a commit
worker process (commit_worker.py) that validates them as they arrive and commits a batch when asked. Batch N is
committed while batch N+1 is being polled; one batch in flight at most, committed in order.

A crash between or inside these commits loses nothing and doubles nothing: the next run resumes from the positions in
`raw_user_events`, re-reads the same messages, skips quarantine rows already committed and events already present.
Two runs racing on the same partitions cannot both commit: Delta rejects the second commit that carries an
already-advanced application transaction (`CommitFailedError`), and that run fails without writing.

Consumer-group offsets are never committed: the Delta log is the only position of record.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date

from deltalake import DeltaTable
from kafka import KafkaConsumer, TopicPartition

from podrec_assets.lib.ingestion.commit_worker import CommitWorker
from podrec_assets.lib.ingestion.delta_sink import CommitSummary, DeltaEventSink, Messages
from podrec_assets.lib.ingestion.tables import stored_positions
from podrec_assets.names import RAW_USER_EVENTS

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
    with CommitWorker() as worker:  # started first: its imports overlap with connecting to Kafka
        consumer = consumer_factory()
        try:
            partitions = sorted(consumer.partitions_for_topic(sink.topic) or [])
            if not partitions:
                raise RuntimeError(f"Kafka topic {sink.topic!r} does not exist (run `podrec services up`)")
            positions = sink.positions(partitions)
            worker.open(sink, sink.quarantine_positions(partitions))
            assign_at(consumer, sink.topic, positions)

            def add_to_report(committed: CommitSummary) -> None:
                for p, nxt in committed.next_offsets.items():
                    stored = positions[p]
                    first = report.offsets.get(p, (stored if stored is not None else 0, 0))[0]
                    report.offsets[p] = (first, nxt)
                quarantined = sum(committed.reasons.values())
                report.accepted += committed.accepted
                report.duplicates += committed.duplicates
                report.quarantined += quarantined
                report.reasons.update(committed.reasons)
                report.event_dates.update(committed.event_dates)
                report.commits += 1
                log.info(
                    "committed %d events, %d quarantined, %d duplicates (positions %s)",
                    committed.accepted, quarantined, committed.duplicates, committed.next_offsets,
                )  # fmt: skip
                if on_batch:
                    on_batch(report)

            in_flight = False
            while report.messages < limits.max_events and not report.caught_up:
                want = min(limits.batch_events, limits.max_events - report.messages)
                read = 0
                while read < want:
                    polled = consumer.poll(timeout_ms=limits.idle_ms, max_records=want - read)
                    if not polled:
                        report.caught_up = True
                        break
                    worker.send_messages(
                        [Messages.from_records(tp.partition, rs) for tp, rs in polled.items()]
                    )
                    read += sum(len(records) for records in polled.values())
                if in_flight:
                    add_to_report(
                        worker.wait_committed()
                    )  # raises if it failed, before anything else commits
                    in_flight = False
                if not read:
                    break
                report.messages += read
                worker.commit()
                in_flight = True
            if in_flight:
                add_to_report(worker.wait_committed())
        finally:
            consumer.close()
    if report.commits:
        sink.refresh()  # the worker committed through its own handles
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
