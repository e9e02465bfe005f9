"""The listener-event contract: one canonical event, three accepted wire formats, precise rejection reasons.

Accepted on the topic (see docs/events.md and `listener_event.v1.schema.json`):
- **v1** (what podrec's producers send): `schema_version: 1`, `event_id`, `ts`, `user_id`, `episode_id`,
  `event_type`, and optional `device`, `rating`, `position_sec`, `from_sec`, `to_sec`, `played_pct`, `metadata`.
- **seed000** (the first generator, unchanged): `event` instead of `event_type`, `new_episode_id` instead of
  `episode_id`.
- **seed003** (the unified activity schema): `timestamp`, `content_id`, `device_id`, CamelCase types such as
  `PlaybackStart`, event-specific values (rating, completion rate, position) inside `metadata`.

A field that is present but `null` counts as absent. Every message becomes either a canonical row
(`CANONICAL_FIELDS`) or an `InvalidEvent` with a reason code from `REASONS`. Non-content events (search, login,
logout, profile/preference changes) are accepted and kept with a null `episode_id`; downstream engagement ignores
them. Metadata of account events is dropped: it may hold e-mail or IP addresses, which podrec has no use for.

Validation is hand-written rather than run through a JSON-Schema engine because it runs once per message on the
ingestion hot path; `podrec_assets_tests` checks that it agrees with the published JSON Schema.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

SCHEMA_VERSION = 1
# Seed messages are ~300 bytes; 16 KiB leaves room for search metadata while keeping one message from carrying a
# document. Larger messages are quarantined as `too_large`.
MAX_MESSAGE_BYTES = 16 * 1024
MAX_ID_LENGTH = 256
MAX_METADATA_BYTES = 4 * 1024
# Clocks drift; an event more than this far ahead of the ingesting machine's clock is rejected as `future_timestamp`.
MAX_CLOCK_SKEW = timedelta(hours=24)
# Nothing podrec ingests predates this (MovieLens-100k, the oldest replayed data, is from 1997).
MIN_TIMESTAMP = datetime(1990, 1, 1, tzinfo=UTC)
# Epoch numbers above this are read as milliseconds (1e11 s is the year 5138).
EPOCH_MILLIS_THRESHOLD = 1e11

# Canonical event types. Content events must name an episode.
CONTENT_EVENT_TYPES = frozenset(
    {
        "play",
        "pause",
        "resume",
        "complete",
        "abandon",
        "skip",
        "like",
        "unlike",
        "rate",
        "view",
        "search_click",
    }
)
NON_CONTENT_EVENT_TYPES = frozenset({"search", "login", "logout", "profile_update", "preference_change"})
ACCOUNT_EVENT_TYPES = frozenset({"login", "logout", "profile_update", "preference_change"})
EVENT_TYPES = CONTENT_EVENT_TYPES | NON_CONTENT_EVENT_TYPES

# Every spelling seen in the seeds, folded (lower case, no '_' or '-'), mapped to its canonical type.
EVENT_TYPE_ALIASES: dict[str, str] = {
    # seed 000 and v1
    **{t.replace("_", ""): t for t in EVENT_TYPES},
    # seed 003 (ActivityEventType)
    "playbackstart": "play",
    "playstart": "play",
    "playbackpause": "pause",
    "playbackresume": "resume",
    "playbackcomplete": "complete",
    "playbackabandon": "abandon",
    "contentview": "view",
    "contentrating": "rate",
    "rating": "rate",
    "searchquery": "search",
    "searchresultclick": "search_click",
    "userlogin": "login",
    "userlogout": "logout",
    "profileupdate": "profile_update",
    "preferencechange": "preference_change",
}

# Columns of a canonical event, in the order `validate_message` returns them.
CANONICAL_FIELDS = (
    "event_id",
    "user_id",
    "episode_id",
    "event_type",
    "ts",
    "event_date",
    "device",
    "rating",
    "position_sec",
    "from_sec",
    "to_sec",
    "played_pct",
    "metadata",
    "source_format",
)

REASONS = {
    "too_large": f"message larger than {MAX_MESSAGE_BYTES} bytes",
    "not_json": "not valid UTF-8 JSON",
    "not_object": "JSON value is not an object",
    "unsupported_schema_version": f"schema_version is not {SCHEMA_VERSION}",
    "missing_field": "a required field is missing or null",
    "empty_field": "a required id is empty",
    "wrong_type": "a field has the wrong JSON type",
    "id_too_long": f"an id is longer than {MAX_ID_LENGTH} characters",
    "unknown_event_type": "event type is not one podrec knows",
    "rating_missing": "a rating event has no rating",
    "rating_out_of_range": "rating is not an integer from 1 to 5",
    "played_pct_out_of_range": "played_pct is outside [0, 1]",
    "negative_position": "position_sec, from_sec or to_sec is negative",
    "from_after_to": "from_sec is greater than to_sec",
    "bad_timestamp": "timestamp cannot be parsed",
    "future_timestamp": f"timestamp is more than {MAX_CLOCK_SKEW} ahead of the ingesting clock",
    "timestamp_too_old": f"timestamp is before {MIN_TIMESTAMP.date()}",
}


@dataclass(frozen=True)
class InvalidEvent(Exception):
    """A message that breaks the contract. `code` is one of `REASONS`; `detail` names the field and value."""

    code: str
    detail: str

    def __str__(self) -> str:
        return f"{self.code}: {self.detail}"


def canonical_event_type(name: str) -> str | None:
    return EVENT_TYPE_ALIASES.get(name.replace("_", "").replace("-", "").lower())


def _first_present(message: dict, *names: str) -> Any:
    """The first of these fields that is present and not null (null means absent throughout the contract)."""
    for name in names:
        value = message.get(name)
        if value is not None:
            return value
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _required_id(message: dict, *names: str) -> str:
    for name in names:
        value = message.get(name)
        if value is not None:
            break
    else:
        raise InvalidEvent("missing_field", f"{names[0]} is missing")
    if not isinstance(value, str):
        raise InvalidEvent("wrong_type", f"{name} must be a string, got {type(value).__name__}")
    value = value.strip()
    if not value:
        raise InvalidEvent("empty_field", f"{name} is empty")
    if len(value) > MAX_ID_LENGTH:
        raise InvalidEvent("id_too_long", f"{name} has {len(value)} characters")
    return value


def _optional_number(message: dict, metadata: dict | None, name: str, *metadata_names: str) -> float | None:
    value = message.get(name)
    if value is None and metadata:
        for alias in metadata_names:
            value = metadata.get(alias)
            if value is not None:
                name = f"metadata.{alias}"
                break
    if value is None:
        return None
    if not _is_number(value) or not math.isfinite(value):
        raise InvalidEvent("wrong_type", f"{name} must be a finite number, got {value!r}")
    return float(value)


def parse_timestamp(value: Any, now: datetime) -> datetime:
    """ISO-8601 text (naive means UTC) or epoch seconds/milliseconds, as an aware UTC datetime."""
    if isinstance(value, str):
        try:
            ts = datetime.fromisoformat(value.strip())
        except ValueError:
            raise InvalidEvent("bad_timestamp", f"ts {value[:64]!r} is not ISO-8601") from None
        ts = ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
    elif _is_number(value):
        seconds = value / 1000 if value > EPOCH_MILLIS_THRESHOLD else value
        try:
            ts = datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise InvalidEvent("bad_timestamp", f"ts {value!r} is not a valid epoch time") from None
    else:
        raise InvalidEvent("wrong_type", f"ts must be ISO-8601 text or an epoch number, got {value!r}")
    if ts > now + MAX_CLOCK_SKEW:
        raise InvalidEvent("future_timestamp", f"ts {ts.isoformat()} is after {now.isoformat()}")
    if ts < MIN_TIMESTAMP:
        raise InvalidEvent("timestamp_too_old", f"ts {ts.isoformat()}")
    return ts


def source_format(message: dict) -> str:
    if message.get("schema_version") is not None:
        return "v1"
    if message.get("event") is not None or message.get("new_episode_id") is not None:
        return "seed000"
    return "seed003"


def validate_message(raw: bytes | None, now: datetime) -> tuple:
    """Turn one Kafka message value into a canonical event tuple (fields in `CANONICAL_FIELDS` order).

    Raises `InvalidEvent` with a reason code and a detail naming the offending field.
    """
    if raw is None:
        raise InvalidEvent("not_json", "message has no value (tombstone)")
    if len(raw) > MAX_MESSAGE_BYTES:
        raise InvalidEvent("too_large", f"{len(raw)} bytes")
    try:
        message = orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        raise InvalidEvent("not_json", str(err)[:200]) from None
    if not isinstance(message, dict):
        raise InvalidEvent("not_object", f"got a JSON {type(message).__name__}")

    fmt = source_format(message)
    if fmt == "v1" and message["schema_version"] != SCHEMA_VERSION:
        raise InvalidEvent("unsupported_schema_version", f"schema_version {message['schema_version']!r}")

    event_id = _required_id(message, "event_id")
    user_id = _required_id(message, "user_id")
    type_name = _required_id(message, "event_type", "event")
    event_type = canonical_event_type(type_name)
    if event_type is None:
        raise InvalidEvent("unknown_event_type", f"event type {type_name[:64]!r}")
    is_content = event_type in CONTENT_EVENT_TYPES
    episode_id = _required_id(message, "episode_id", "new_episode_id", "content_id") if is_content else None

    ts_value = _first_present(message, "ts", "timestamp")
    if ts_value is None:
        raise InvalidEvent("missing_field", "ts is missing")
    ts = parse_timestamp(ts_value, now)

    metadata = message.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise InvalidEvent("wrong_type", "metadata must be an object")

    device = _first_present(message, "device", "device_id")
    if device is not None and not isinstance(device, str):
        raise InvalidEvent("wrong_type", f"device must be a string, got {device!r}")

    rating = message.get("rating")
    if rating is None and metadata:
        rating = metadata.get("rating")
    if rating is not None:
        if not _is_number(rating) or rating != int(rating):
            raise InvalidEvent("rating_out_of_range", f"rating {rating!r} is not an integer")
        rating = int(rating)
        if not 1 <= rating <= 5:
            raise InvalidEvent("rating_out_of_range", f"rating {rating}")
    elif event_type == "rate":
        raise InvalidEvent("rating_missing", "rate event without rating")

    position = _optional_number(
        message, metadata, "position_sec", "position_sec", "final_position", "position"
    )
    from_sec = _optional_number(message, metadata, "from_sec", "from_sec")
    to_sec = _optional_number(message, metadata, "to_sec", "to_sec")
    played_pct = _optional_number(message, metadata, "played_pct", "played_pct", "completion_rate")
    for name, value in (("position_sec", position), ("from_sec", from_sec), ("to_sec", to_sec)):
        if value is not None and value < 0:
            raise InvalidEvent("negative_position", f"{name} {value}")
    if from_sec is not None and to_sec is not None and from_sec > to_sec:
        raise InvalidEvent("from_after_to", f"from_sec {from_sec} > to_sec {to_sec}")
    if played_pct is not None and not 0.0 <= played_pct <= 1.0:
        raise InvalidEvent("played_pct_out_of_range", f"played_pct {played_pct}")

    metadata_json = None
    if metadata and event_type not in ACCOUNT_EVENT_TYPES:
        metadata_json = orjson.dumps(metadata).decode()
        if len(metadata_json) > MAX_METADATA_BYTES:
            raise InvalidEvent("too_large", f"metadata has {len(metadata_json)} bytes")

    return (
        event_id,
        user_id,
        episode_id,
        event_type,
        ts,
        ts.date(),
        device,
        rating,
        position,
        from_sec,
        to_sec,
        played_pct,
        metadata_json,
        fmt,
    )


def make_v1_event(
    *,
    event_id: str,
    user_id: str,
    episode_id: str | None,
    event_type: str,
    ts: datetime,
    device: str | None = None,
    rating: int | None = None,
    position_sec: float | None = None,
    from_sec: float | None = None,
    to_sec: float | None = None,
    played_pct: float | None = None,
    metadata: dict | None = None,
) -> dict:
    """A v1 message as podrec's producers send it (None fields are left out)."""
    message = {
        "schema_version": SCHEMA_VERSION,
        "event_id": event_id,
        "ts": ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "user_id": user_id,
        "episode_id": episode_id,
        "event_type": event_type,
        "device": device,
        "rating": rating,
        "position_sec": position_sec,
        "from_sec": from_sec,
        "to_sec": to_sec,
        "played_pct": played_pct,
        "metadata": metadata,
    }
    return {k: v for k, v in message.items() if v is not None}


SCHEMA_PATH = Path(__file__).with_name("listener_event.v1.schema.json")
