"""The event contract: legacy formats accepted as they are, every invalid kind rejected with its own reason."""

import json
from datetime import UTC, datetime, timedelta

import jsonschema
import orjson
import pytest

from podrec_assets.lib.ingestion.contract import (
    CANONICAL_FIELDS,
    EVENT_TYPES,
    MAX_MESSAGE_BYTES,
    REASONS,
    SCHEMA_PATH,
    InvalidEvent,
    canonical_event_type,
    make_v1_event,
    validate_message,
)

NOW = datetime.now(UTC).replace(microsecond=0)

# Exactly the message seed 000's generator produces.
SEED000 = {
    "event_id": "6f1c3c1e-3b44-4a53-a3a4-0c2a8c1c7e11",
    "ts": "2025-11-20T08:15:00.123456",
    "user_id": "42423dac-043e-4c34-860e-11f3fbaf0276",
    "new_episode_id": "41354833716",
    "event": "like",
    "device": "ios",
    "rating": 5,
    "position_sec": 123,
    "from_sec": 100,
    "to_sec": 120,
    "played_pct": 1.0,
}
# A seed-003 UserActivityEvent as serde serializes it.
SEED003 = {
    "event_id": "0b8e3a9e-6a53-4a69-9d1a-5f3f0e3e9a01",
    "user_id": "a3a1f5c2-1d2e-4f3a-9b8c-7d6e5f4a3b2c",
    "event_type": "PlaybackComplete",
    "content_id": "41350250744",
    "timestamp": "2025-11-20T09:00:00Z",
    "metadata": {"completion_rate": 0.97, "final_position": 3480, "session_id": "s-1"},
    "device_id": "android-7",
    "region": "eu",
}


def row(message: dict) -> dict:
    return dict(zip(CANONICAL_FIELDS, validate_message(orjson.dumps(message), NOW), strict=True))


def reason(raw: bytes | dict) -> str:
    raw = orjson.dumps(raw) if isinstance(raw, dict) else raw
    with pytest.raises(InvalidEvent) as info:
        validate_message(raw, NOW)
    return info.value.code


def test_seed000_message_is_accepted_unchanged():
    event = row(SEED000)
    assert event["episode_id"] == "41354833716"
    assert event["event_type"] == "like"
    assert event["ts"] == datetime(2025, 11, 20, 8, 15, 0, 123456, tzinfo=UTC)  # naive means UTC
    assert event["event_date"].isoformat() == "2025-11-20"
    assert (event["rating"], event["position_sec"], event["played_pct"]) == (5, 123.0, 1.0)
    assert event["source_format"] == "seed000"


def test_seed003_message_maps_to_canonical_event():
    event = row(SEED003)
    assert (event["event_type"], event["episode_id"], event["device"]) == (
        "complete",
        "41350250744",
        "android-7",
    )
    assert event["played_pct"] == 0.97 and event["position_sec"] == 3480.0
    assert event["source_format"] == "seed003"


@pytest.mark.parametrize(
    "name,canonical",
    [("PlaybackStart", "play"), ("playback_pause", "pause"), ("PlaybackResume", "resume"),
     ("PlaybackAbandon", "abandon"), ("ContentView", "view"), ("ContentRating", "rate"), ("SearchQuery", "search"),
     ("SearchResultClick", "search_click"), ("UserLogin", "login"), ("skip", "skip"), ("complete", "complete")],
)  # fmt: skip
def test_event_type_aliases(name, canonical):
    assert canonical_event_type(name) == canonical


def test_non_content_events_are_kept_without_episode_and_account_metadata_is_dropped():
    search = row(
        {**SEED003, "event_type": "SearchQuery", "content_id": None, "metadata": {"query": "history"}}
    )
    assert search["episode_id"] is None and json.loads(search["metadata"]) == {"query": "history"}
    login = row({**SEED003, "event_type": "UserLogin", "content_id": None, "metadata": {"email": "a@b.c"}})
    assert login["event_type"] == "login" and login["metadata"] is None


def test_rating_inside_seed003_metadata():
    assert row({**SEED003, "event_type": "ContentRating", "metadata": {"rating": 4}})["rating"] == 4


def test_epoch_timestamps_seconds_and_millis():
    seconds = NOW.timestamp() - 60
    assert row({**SEED000, "ts": seconds})["ts"] == datetime.fromtimestamp(seconds, UTC)
    assert row({**SEED000, "ts": int(seconds * 1000)})["ts"] == datetime.fromtimestamp(int(seconds), UTC)


INVALID = {
    "too_large": b'{"pad":"' + b"x" * MAX_MESSAGE_BYTES + b'"}',
    "not_json": b"{not json",
    "not_utf8": b'{"event_id":"\xff\xfe"}',
    "not_object": b"[1, 2, 3]",
    "unsupported_schema_version": {**SEED000, "schema_version": 2},
    "missing_event_id": {k: v for k, v in SEED000.items() if k != "event_id"},
    "missing_episode": {k: v for k, v in SEED000.items() if k != "new_episode_id"},
    "missing_ts": {k: v for k, v in SEED000.items() if k != "ts"},
    "empty_user": {**SEED000, "user_id": "  "},
    "id_too_long": {**SEED000, "user_id": "u" * 300},
    "int_user_id": {**SEED000, "user_id": 42},
    "unknown_event_type": {**SEED000, "event": "teleport"},
    "rating_missing": {**SEED000, "event": "rate", "rating": None},
    "rating_out_of_range": {**SEED000, "event": "rate", "rating": 6},
    "rating_not_integer": {**SEED000, "rating": 3.5},
    "played_pct_out_of_range": {**SEED000, "played_pct": 1.5},
    "from_after_to": {**SEED000, "from_sec": 130, "to_sec": 120},
    "negative_position": {**SEED000, "position_sec": -1},
    "bad_timestamp": {**SEED000, "ts": "yesterday at noon"},
    "future_timestamp": {**SEED000, "ts": (NOW + timedelta(days=3)).isoformat()},
    "timestamp_too_old": {**SEED000, "ts": "1970-01-02T00:00:00Z"},
    "string_played_pct": {**SEED000, "played_pct": "0.5"},
    "bool_position": {**SEED000, "position_sec": True},
    "metadata_not_object": {**SEED003, "metadata": [1]},
}
EXPECTED = {
    "too_large": "too_large", "not_json": "not_json", "not_utf8": "not_json", "not_object": "not_object",
    "unsupported_schema_version": "unsupported_schema_version", "missing_event_id": "missing_field",
    "missing_episode": "missing_field", "missing_ts": "missing_field", "empty_user": "empty_field",
    "id_too_long": "id_too_long", "int_user_id": "wrong_type", "unknown_event_type": "unknown_event_type",
    "rating_missing": "rating_missing", "rating_out_of_range": "rating_out_of_range",
    "rating_not_integer": "rating_out_of_range", "played_pct_out_of_range": "played_pct_out_of_range",
    "from_after_to": "from_after_to", "negative_position": "negative_position", "bad_timestamp": "bad_timestamp",
    "future_timestamp": "future_timestamp", "timestamp_too_old": "timestamp_too_old",
    "string_played_pct": "wrong_type", "bool_position": "wrong_type", "metadata_not_object": "wrong_type",
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(INVALID))
def test_invalid_messages_get_their_specific_reason(case):
    assert reason(INVALID[case]) == EXPECTED[case]
    assert EXPECTED[case] in REASONS


def test_tombstone_is_rejected():
    with pytest.raises(InvalidEvent, match="tombstone"):
        validate_message(None, NOW)


# -- the published JSON Schema agrees with the code on v1 messages -------------------------------------------------
SCHEMA = json.loads(SCHEMA_PATH.read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())


def v1(**overrides) -> dict:
    base = make_v1_event(event_id="e-1", user_id="u-1", episode_id="ep-1", event_type="pause",
                         ts=NOW - timedelta(hours=1), device="web", position_sec=10.0, from_sec=0.0, to_sec=10.0,
                         played_pct=0.2)  # fmt: skip
    return {k: v for k, v in {**base, **overrides}.items() if v is not ...}


V1_CASES = {
    "valid": (v1(), True),
    "valid_rate": (v1(event_type="rate", rating=4), True),
    "valid_search_without_episode": (v1(event_type="search", episode_id=..., metadata={"query": "q"}), True),
    "missing_event_id": (v1(event_id=...), False),
    "empty_event_id": (v1(event_id=""), False),
    "content_without_episode": (v1(episode_id=...), False),
    "rate_without_rating": (v1(event_type="rate"), False),
    "rating_out_of_range": (v1(event_type="rate", rating=0), False),
    "played_pct_out_of_range": (v1(played_pct=-0.1), False),
    "negative_position": (v1(position_sec=-3), False),
    "bad_timestamp": (v1(ts="not a time"), False),
    "unknown_type": (v1(event_type="teleport"), False),
    "wrong_version": (v1(schema_version=2), False),
    "int_user_id": (v1(user_id=7), False),
}


@pytest.mark.parametrize("case", sorted(V1_CASES))
def test_json_schema_and_validator_agree(case):
    message, valid = V1_CASES[case]
    schema_ok = VALIDATOR.is_valid(message)
    try:
        validate_message(orjson.dumps(message), NOW)
        code_ok = True
    except InvalidEvent:
        code_ok = False
    assert (schema_ok, code_ok) == (valid, valid)


def test_schema_lists_every_canonical_type():
    assert set(SCHEMA["properties"]["event_type"]["enum"]) == EVENT_TYPES
