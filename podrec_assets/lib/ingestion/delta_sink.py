"""The Delta side of ingestion: polled Kafka messages in, validated and de-duplicated rows committed with positions.

`build_batch` turns messages into the rows of the two tables; `DeltaEventSink.commit` commits them, quarantine
first, each table with the Kafka positions it has reached (see tables.py). In `ingest_pending` this all runs in the
commit worker process (commit_worker.py); nothing here knows about Kafka clients or processes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from itertools import chain, repeat

import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake

from podrec_assets.lib.ingestion.batch_validation import validate_batch
from podrec_assets.lib.ingestion.tables import (
    QUARANTINED_EVENTS_SCHEMA,
    RAW_USER_EVENTS_PARTITION_BY,
    RAW_USER_EVENTS_SCHEMA,
    position_app_id,
    rows_to_table,
    stored_positions,
)
from podrec_assets.names import QUARANTINED_EVENTS, RAW_USER_EVENTS


def ensure_table(
    uri: str, schema: pa.Schema, partition_by: list[str] | None, storage_options=None
) -> DeltaTable:
    if not DeltaTable.is_deltatable(uri, storage_options=storage_options):
        try:
            DeltaTable.create(uri, schema=schema, partition_by=partition_by, storage_options=storage_options)
        except Exception:  # another process created it first
            if not DeltaTable.is_deltatable(uri, storage_options=storage_options):
                raise
    return DeltaTable(uri, storage_options=storage_options)


class DeltaEventSink:
    """The two ingestion tables and the Kafka positions stored in their Delta logs."""

    def __init__(self, raw_uri: str, quarantine_uri: str, topic: str, topic_id: str | None,
                 storage_options: dict | None = None):  # fmt: skip
        self.raw_uri, self.quarantine_uri, self.storage_options = raw_uri, quarantine_uri, storage_options
        self.topic = topic
        self.topic_id = topic_id
        self.raw = ensure_table(
            raw_uri, RAW_USER_EVENTS_SCHEMA, RAW_USER_EVENTS_PARTITION_BY, storage_options
        )
        self.quarantine = ensure_table(quarantine_uri, QUARANTINED_EVENTS_SCHEMA, None, storage_options)
        self._known_ids: set[str] | None = None

    def __reduce__(self):
        """Pickled as where the tables are: unpickling (in the commit worker) opens them anew."""
        return DeltaEventSink, (
            self.raw_uri,
            self.quarantine_uri,
            self.topic,
            self.topic_id,
            self.storage_options,
        )

    def refresh(self) -> None:
        """Catch up with commits made through another handle (the commit worker's)."""
        self.raw.update_incremental()
        self.quarantine.update_incremental()

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
        write_deltalake(
            self.raw, events, mode="append", partition_by=RAW_USER_EVENTS_PARTITION_BY,
            commit_properties=self._commit_properties(RAW_USER_EVENTS, next_offsets),
        )  # fmt: skip
        self.known_event_ids().update(events["event_id"].to_pylist())


@dataclass
class Messages:
    """Messages of one Kafka partition, in offset order, column-wise: plain lists pickle fast and small, where
    kafka-python's ConsumerRecords would not (this is what the poller sends to the commit worker)."""

    partition: int
    offsets: list[int]
    values: list[bytes | None]
    keys: list[bytes | None]
    timestamps: list[int]  # ms since the epoch; negative when the message has none

    @classmethod
    def from_records(cls, partition: int, records: Sequence) -> Messages:
        """From kafka-python ConsumerRecords of `partition`."""
        return cls(
            partition,
            [r.offset for r in records],
            [r.value for r in records],
            [r.key for r in records],
            [r.timestamp for r in records],
        )


@dataclass
class CommitSummary:
    """What `ingest_pending` learns of a committed batch (its rows stay in the commit worker)."""

    messages: int
    accepted: int
    duplicates: int
    reasons: Counter
    event_dates: set[date]
    next_offsets: dict[int, int]


@dataclass
class Batch:
    """Messages split into canonical events and rejects, ready to commit."""

    events: pa.Table
    rejects: pa.Table
    next_offsets: dict[int, int]
    messages: int
    duplicates: int
    reasons: Counter

    def summary(self) -> CommitSummary:
        dates = set(self.events["event_date"].unique().to_pylist())
        return CommitSummary(self.messages, self.events.num_rows, self.duplicates, self.reasons, dates,
                             self.next_offsets)  # fmt: skip


def build_batch(
    messages: list[Messages],
    sink: DeltaEventSink,
    quarantine_from: dict[int, int],
    now: datetime,
    seen: set[str] | None = None,
) -> Batch:
    """Validate and de-duplicate `messages` into Arrow tables ready to commit.

    `seen` holds the event ids already taken into the same commit by earlier calls (a batch is built as its messages
    arrive); the ids taken here are added to it."""
    topic = sink.topic
    seen = set() if seen is None else seen
    # One flat list per field, message i of the call at index i.
    partitions = list(chain.from_iterable(repeat(m.partition, len(m.offsets)) for m in messages))
    offsets = list(chain.from_iterable(m.offsets for m in messages))
    values = list(chain.from_iterable(m.values for m in messages))
    next_offsets: dict[int, int] = {}
    for m in messages:
        if m.offsets:
            next_offsets[m.partition] = max(next_offsets.get(m.partition, 0), max(m.offsets) + 1)

    validation = validate_batch(values, now)

    reasons: Counter = Counter()
    rejects: list[tuple] = []
    if validation.rejects:
        keys = list(chain.from_iterable(m.keys for m in messages))
        timestamps = list(chain.from_iterable(m.timestamps for m in messages))
    for i, bad in validation.rejects:
        reasons[bad.code] += 1
        if offsets[i] >= quarantine_from.get(partitions[i], 0):  # below: committed before a crash
            raw = values[i]
            text = raw.decode("utf-8", errors="replace") if raw is not None else None
            kafka_ts = datetime.fromtimestamp(timestamps[i] / 1000, UTC) if timestamps[i] >= 0 else None
            rejects.append((topic, partitions[i], offsets[i], kafka_ts, keys[i], raw, text, bad.code, bad.detail,
                            now))  # fmt: skip

    # Drop events whose id is already in the table, or earlier in this batch (producer retries, replays). In the order
    # the messages were read, so the first copy of an event wins.
    known = sink.known_event_ids()
    source = validation.event_indices
    event_ids = validation.events["event_id"].to_pylist()
    keep: list[int] = []
    for row in sorted(range(len(source)), key=source.__getitem__):
        event_id = event_ids[row]
        if event_id in seen or event_id in known:
            continue
        seen.add(event_id)
        keep.append(row)
    kept_sources = pa.array([source[row] for row in keep], pa.int64())
    events = validation.events.take(pa.array(keep, pa.int64()))
    events = pa.Table.from_arrays(
        [
            *events.columns,
            pa.repeat(pa.scalar(topic, pa.string()), len(keep)),
            pa.array(partitions, pa.int32()).take(kept_sources),
            pa.array(offsets, pa.int64()).take(kept_sources),
            pa.repeat(pa.scalar(now, RAW_USER_EVENTS_SCHEMA.field("ingested_at").type), len(keep)),
        ],
        schema=RAW_USER_EVENTS_SCHEMA,
    )
    return Batch(
        events=events,
        rejects=rows_to_table(rejects, QUARANTINED_EVENTS_SCHEMA),
        next_offsets=next_offsets,
        messages=len(values),
        duplicates=len(source) - len(keep),
        reasons=reasons,
    )


def merge_batches(batches: list[Batch]) -> Batch:
    """One batch (one commit) of batches built one after the other with a shared `seen`."""
    next_offsets: dict[int, int] = {}
    for batch in batches:
        for partition, offset in batch.next_offsets.items():
            next_offsets[partition] = max(next_offsets.get(partition, 0), offset)
    return Batch(
        events=pa.concat_tables([b.events for b in batches]),
        rejects=pa.concat_tables([b.rejects for b in batches]),
        next_offsets=next_offsets,
        messages=sum(b.messages for b in batches),
        duplicates=sum(b.duplicates for b in batches),
        reasons=sum((b.reasons for b in batches), Counter()),
    )
