"""What the checks on `raw_user_events` measure, on Arrow tables (defs/ingestion/checks.py turns it into pass/fail)."""

import pyarrow as pa
import pyarrow.compute as pc

from podrec_assets.lib.ingestion.contract import CONTENT_EVENT_TYPES, EVENT_TYPES
from podrec_assets.lib.ingestion.tables import RAW_USER_EVENTS_SCHEMA

REQUIRED_KEYS = ("event_id", "user_id", "event_type", "ts", "event_date")


def schema_differences(actual: pa.Schema, expected: pa.Schema = RAW_USER_EVENTS_SCHEMA) -> list[str]:
    """Columns missing, unexpected or of another type (nullability aside: Delta does not keep it for all writers)."""
    problems = [f"missing column {f.name}" for f in expected if f.name not in actual.names]
    problems += [f"unexpected column {n}" for n in actual.names if n not in expected.names]
    for f in expected:
        if f.name in actual.names and not actual.field(f.name).type.equals(f.type):
            problems.append(f"{f.name} is {actual.field(f.name).type}, expected {f.type}")
    return problems


def null_key_counts(events: pa.Table) -> dict[str, int]:
    """Nulls in required keys, plus content events without an episode_id."""
    counts = {name: events[name].null_count for name in REQUIRED_KEYS}
    is_content = pc.is_in(events["event_type"], value_set=pa.array(sorted(CONTENT_EVENT_TYPES)))
    counts["episode_id (content events)"] = (
        pc.sum(pc.and_(is_content, pc.is_null(events["episode_id"]))).as_py() or 0
    )
    return {k: v for k, v in counts.items() if v}


def duplicate_event_ids(event_ids: pa.ChunkedArray) -> int:
    """Rows whose event_id another row already has (a null id is a null key, counted there, not here)."""
    return len(event_ids) - event_ids.null_count - pc.count_distinct(event_ids).as_py()


def unknown_event_types(event_types: pa.ChunkedArray) -> list[str]:
    distinct = pc.unique(event_types).to_pylist()
    return sorted(t for t in distinct if t not in EVENT_TYPES)


def days_before(event_dates: list[str], first_day: str) -> list[str]:
    """The ISO days in `event_dates` earlier than `first_day`: events there have no daily_engagement partition."""
    return sorted(day for day in event_dates if day < first_day)
