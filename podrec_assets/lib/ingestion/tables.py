"""Arrow schemas of the ingestion tables and how Kafka positions are kept in their Delta logs.

The position of each Kafka partition is a Delta *application transaction* (`txn` action) committed atomically with
the rows it produced, exactly as Spark Structured Streaming's Delta sink does: `app_id` names the table, topic and
partition, and `version` is the next offset to read. A crash before the commit leaves both rows and position as they
were; a crash after leaves both advanced.
"""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa
from deltalake import DeltaTable

RAW_USER_EVENTS_SCHEMA = pa.schema(
    [
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("episode_id", pa.string()),  # null for non-content events (search, login, ...)
        pa.field("event_type", pa.string(), nullable=False),
        pa.field("ts", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("event_date", pa.date32(), nullable=False),  # Delta partition column (UTC day of ts)
        pa.field("device", pa.string()),
        pa.field("rating", pa.int8()),
        pa.field("position_sec", pa.float64()),
        pa.field("from_sec", pa.float64()),
        pa.field("to_sec", pa.float64()),
        pa.field("played_pct", pa.float64()),
        pa.field("metadata", pa.string()),  # JSON text
        pa.field("source_format", pa.string(), nullable=False),  # v1 | seed000 | seed003
        pa.field("kafka_topic", pa.string(), nullable=False),
        pa.field("kafka_partition", pa.int32(), nullable=False),
        pa.field("kafka_offset", pa.int64(), nullable=False),
        pa.field("ingested_at", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
)
RAW_USER_EVENTS_PARTITION_BY = ["event_date"]

QUARANTINED_EVENTS_SCHEMA = pa.schema(
    [
        pa.field("kafka_topic", pa.string(), nullable=False),
        pa.field("kafka_partition", pa.int32(), nullable=False),
        pa.field("kafka_offset", pa.int64(), nullable=False),
        pa.field("kafka_timestamp", pa.timestamp("ms", tz="UTC")),
        pa.field("kafka_key", pa.binary()),
        pa.field("raw_value", pa.binary()),  # the message exactly as received
        pa.field("raw_text", pa.string()),  # the same, decoded for humans (invalid UTF-8 replaced)
        pa.field("reason_code", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("quarantined_at", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
)


def position_app_id(table: str, topic: str, topic_id: str | None, partition: int) -> str:
    """The Delta `txn` app id under which `table` stores the next offset of `topic`/`partition`.

    The topic's id (Kafka assigns a new one when a topic is re-created; Tansu, which keeps messages in memory, on
    every restart) is part of it: a re-created topic starts from its beginning instead of from positions its log
    no longer has, and event-id de-duplication keeps what was already ingested from landing twice."""
    return f"podrec/{table}/{topic}/{topic_id or 'no-topic-id'}/{partition}"


def stored_positions(
    table: DeltaTable, table_name: str, topic: str, topic_id: str | None, partitions: Iterable[int]
) -> dict[int, int | None]:
    """Next offset to read per partition as stored in `table`'s Delta log; None where nothing was committed yet."""
    return {p: table.transaction_version(position_app_id(table_name, topic, topic_id, p)) for p in partitions}


def rows_to_table(rows: list[tuple], schema: pa.Schema) -> pa.Table:
    """Row tuples, fields in schema order, as an Arrow table of that schema."""
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(schema)
    return pa.Table.from_arrays(
        [pa.array(c, type=f.type) for c, f in zip(columns, schema, strict=True)], schema=schema
    )
