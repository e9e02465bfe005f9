"""The event contract applied to a whole batch at once: Arrow's JSON reader and compute kernels for the common case,
`contract.validate_message` for everything else.

Validating message by message in Python costs about as much as reading the message from Kafka; a column-wise pass
costs a fraction. The fast path only *accepts*: it parses messages in blocks with an explicit schema (a block with any
surprise — a value of another JSON type, a line that is not an object — is left whole to the precise path) and keeps
the rows that pass every rule of the contract and carry no `metadata`. Every other message, and every
row a rule doubts, goes through `validate_message`, which gives the precise reason. So both paths accept exactly the
same messages with the same canonical values; `podrec_assets_tests/test_batch_validation.py` checks that on
thousands of mutated messages.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from podrec_assets.lib.ingestion.contract import (
    CANONICAL_FIELDS,
    CONTENT_EVENT_TYPES,
    EVENT_TYPE_ALIASES,
    MAX_CLOCK_SKEW,
    MAX_ID_LENGTH,
    MAX_MESSAGE_BYTES,
    MIN_TIMESTAMP,
    SCHEMA_VERSION,
    InvalidEvent,
    validate_message,
)
from podrec_assets.lib.ingestion.tables import rows_to_table

CANONICAL_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("user_id", pa.string()),
        ("episode_id", pa.string()),
        ("event_type", pa.string()),
        ("ts", pa.timestamp("us", tz="UTC")),
        ("event_date", pa.date32()),
        ("device", pa.string()),
        ("rating", pa.int8()),
        ("position_sec", pa.float64()),
        ("from_sec", pa.float64()),
        ("to_sec", pa.float64()),
        ("played_pct", pa.float64()),
        ("metadata", pa.string()),
        ("source_format", pa.string()),
    ]
)
assert tuple(CANONICAL_SCHEMA.names) == CANONICAL_FIELDS

# Every field of every accepted format, as the fast path reads it. A value of another JSON type fails its block.
_WIRE_SCHEMA = pa.schema(
    [("schema_version", pa.int64())]
    + [(name, pa.string()) for name in ("event_id", "user_id", "episode_id", "new_episode_id", "content_id",
                                        "event_type", "event", "ts", "timestamp", "device", "device_id")]
    + [(name, pa.float64()) for name in ("rating", "position_sec", "from_sec", "to_sec", "played_pct")]
    + [("metadata", pa.struct([]))]  # only "is there one": such messages take the precise path
)  # fmt: skip
_PARSE_OPTIONS = pa_json.ParseOptions(explicit_schema=_WIRE_SCHEMA, unexpected_field_behavior="ignore")
BLOCK_ROWS = 4096  # a block with one odd message goes to the precise path whole: keep the damage small

_ALIAS_KEYS = pa.array(list(EVENT_TYPE_ALIASES))
_ALIAS_VALUES = pa.array(list(EVENT_TYPE_ALIASES.values()))
_CONTENT_TYPES = pa.array(sorted(CONTENT_EVENT_TYPES))
# Ids the fast path takes as they are: printable ASCII at both ends (nothing `str.strip()` would remove).
_PLAIN_ID = r"^[!-~](.*[!-~])?$"
# Timestamps Arrow parses exactly as `datetime.fromisoformat` does; anything else takes the precise path.
_ISO_TIMESTAMP = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?(Z|[+-]\d\d:\d\d)?$"
_HAS_ZONE = r"(Z|[+-]\d\d:\d\d)$"
_TS_TYPE = pa.timestamp("us", tz="UTC")


@dataclass
class BatchValidation:
    events: pa.Table  # canonical rows (CANONICAL_SCHEMA), in no particular order
    event_indices: list[int]  # events.row(i) came from values[event_indices[i]]
    rejects: list[tuple[int, InvalidEvent]]  # (index into values, why)


def _plain_id(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Non-null, no surrounding whitespace, at most MAX_ID_LENGTH characters."""
    return pc.and_kleene(
        pc.fill_null(pc.match_substring_regex(column, _PLAIN_ID), False),
        pc.fill_null(pc.less_equal(pc.utf8_length(column), MAX_ID_LENGTH), False),
    )


def _fast_rows(parsed: pa.Table, now: datetime) -> tuple[pa.Table, pa.Array]:
    """Canonical rows for the parsed messages that pass every rule, and a mask of which did."""
    col = parsed.column
    type_name = pc.coalesce(col("event_type"), col("event"))
    folded = pc.utf8_lower(pc.replace_substring(pc.replace_substring(type_name, "_", ""), "-", ""))
    alias = pc.index_in(folded, value_set=_ALIAS_KEYS)
    event_type = pc.take(_ALIAS_VALUES, alias)
    is_content = pc.fill_null(pc.is_in(event_type, value_set=_CONTENT_TYPES), False)
    episode = pc.coalesce(col("episode_id"), col("new_episode_id"), col("content_id"))
    rating = col("rating")
    positions = [col(name) for name in ("position_sec", "from_sec", "to_sec")]
    played = col("played_pct")

    def absent_or(column, condition):
        return pc.or_(pc.is_null(column), pc.fill_null(condition, False))

    rules = [
        pc.or_(pc.is_null(col("schema_version")), pc.fill_null(pc.equal(col("schema_version"), SCHEMA_VERSION), False)),
        _plain_id(col("event_id")),
        _plain_id(col("user_id")),
        pc.fill_null(pc.match_substring_regex(type_name, r"^[A-Za-z_-]+$"), False),
        pc.is_valid(alias),
        pc.or_(pc.invert(is_content), _plain_id(episode)),
        pc.is_valid(pc.coalesce(col("ts"), col("timestamp"))),
        absent_or(rating, pc.and_(pc.equal(pc.floor(rating), rating),
                                  pc.and_(pc.greater_equal(rating, 1), pc.less_equal(rating, 5)))),
        pc.or_(pc.is_valid(rating), pc.not_equal(pc.fill_null(event_type, ""), "rate")),
        *[absent_or(p, pc.and_(pc.is_finite(p), pc.greater_equal(p, 0))) for p in positions],
        absent_or(played, pc.and_(pc.greater_equal(played, 0), pc.less_equal(played, 1))),
        pc.or_(pc.or_(pc.is_null(positions[1]), pc.is_null(positions[2])),
               pc.fill_null(pc.less_equal(positions[1], positions[2]), False)),
    ]  # fmt: skip
    ok = rules[0]
    for rule in rules[1:]:
        ok = pc.and_(ok, rule)

    ts_text = pc.coalesce(col("ts"), col("timestamp"))
    iso = pc.fill_null(pc.match_substring_regex(ts_text, _ISO_TIMESTAMP), False)
    zoned = pc.if_else(
        pc.match_substring_regex(ts_text, _HAS_ZONE), ts_text, pc.binary_join_element_wise(ts_text, "Z", "")
    )
    try:
        ts = pc.cast(pc.if_else(iso, zoned, pa.scalar(None, pa.string())), _TS_TYPE)
    except pa.ArrowInvalid:  # e.g. February 30th somewhere in the block: let the precise path name it
        ts = pa.nulls(parsed.num_rows, _TS_TYPE)
    ok = pc.and_(
        pc.and_(ok, pc.is_null(col("metadata"))),
        pc.fill_null(pc.and_(pc.greater_equal(ts, pa.scalar(MIN_TIMESTAMP, _TS_TYPE)),
                             pc.less_equal(ts, pa.scalar(now + MAX_CLOCK_SKEW, _TS_TYPE))), False),
    )  # fmt: skip

    source_format = pc.if_else(
        pc.is_valid(col("schema_version")),
        "v1",
        pc.if_else(
            pc.or_(pc.is_valid(col("event")), pc.is_valid(col("new_episode_id"))), "seed000", "seed003"
        ),
    )
    rows = pa.table(
        {
            "event_id": col("event_id"),
            "user_id": col("user_id"),
            "episode_id": pc.if_else(is_content, episode, pa.scalar(None, pa.string())),
            "event_type": event_type,
            "ts": ts,
            "event_date": pc.cast(ts, pa.date32()),
            "device": pc.coalesce(col("device"), col("device_id")),
            "rating": pc.cast(pc.if_else(ok, rating, pa.scalar(None, pa.float64())), pa.int8()),
            "position_sec": positions[0],
            "from_sec": positions[1],
            "to_sec": positions[2],
            "played_pct": played,
            "metadata": pa.nulls(parsed.num_rows, pa.string()),
            "source_format": source_format,
        },
        schema=CANONICAL_SCHEMA,
    )
    return rows.filter(ok), ok


def validate_batch(values: list[bytes | None], now: datetime) -> BatchValidation:
    """Validate every message of a batch: canonical rows for the good ones, a reason for each bad one."""
    sized = [
        (i, value) for i, value in enumerate(values) if value is not None and len(value) <= MAX_MESSAGE_BYTES
    ]
    candidates = [i for i, _ in sized]
    payloads = [value for _, value in sized]  # values[i] for i in candidates, known not None
    tables: list[pa.Table] = []
    event_indices: list[int] = []
    precise: list[int] = (
        sorted(set(range(len(values))).difference(candidates)) if len(candidates) < len(values) else []
    )
    for start in range(0, len(candidates), BLOCK_ROWS):
        block = candidates[start : start + BLOCK_ROWS]
        try:
            parsed = pa_json.read_json(
                io.BytesIO(b"\n".join(payloads[start : start + BLOCK_ROWS])), parse_options=_PARSE_OPTIONS
            )
        except (pa.ArrowInvalid, UnicodeDecodeError):
            precise.extend(block)
            continue
        if parsed.num_rows != len(block):  # a message with a line break in it: framing lost, be safe
            precise.extend(block)
            continue
        rows, ok = _fast_rows(parsed, now)
        tables.append(rows)
        block_indices = pa.array(block, pa.int64())
        event_indices.extend(block_indices.filter(ok).to_pylist())
        precise.extend(block_indices.filter(pc.invert(ok)).to_pylist())

    slow_rows: list[tuple] = []
    rejects: list[tuple[int, InvalidEvent]] = []
    for i in precise:
        try:
            slow_rows.append(validate_message(values[i], now))
            event_indices.append(i)
        except InvalidEvent as bad:
            rejects.append((i, bad))
    if slow_rows:
        tables.append(rows_to_table(slow_rows, CANONICAL_SCHEMA))
    events = pa.concat_tables(tables) if tables else CANONICAL_SCHEMA.empty_table()
    return BatchValidation(events=events, event_indices=event_indices, rejects=rejects)
