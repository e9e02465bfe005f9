"""The column-wise fast path accepts exactly what the precise validator accepts, with the same canonical values."""

import random
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from podrec_assets.lib.ingestion.batch_validation import BLOCK_ROWS, validate_batch
from podrec_assets.lib.ingestion.contract import CANONICAL_FIELDS, InvalidEvent, validate_message
from podrec_assets.tools.producers.synthetic import generate_events, to_seed000
from podrec_assets_tests.test_contract import INVALID, SEED000, SEED003

NOW = datetime.now(UTC).replace(microsecond=0)

ODD_VALUES = [None, "", " ", " x ", "x\u00a0", "é", "K", "SKIP", "Play_Back-Start", "ContentRating", "null", 0, 1, -1,
              1.0, 2.5, 5, 5.0, 6, 1e300, True, False, [], {}, "5", "x" * 300, "2025-11-20", "2025-11-20T08:15:00",
              "2025-11-20T08:15:00+05:30", "2025-11-20T08:15:00.1Z", " 2025-11-20T08:15:00Z ", "2025-02-30T00:00:00Z",
              "1970-01-01T00:00:00Z", (NOW + timedelta(days=2)).isoformat(), NOW.timestamp(), NOW.timestamp() * 1000,
              "teleport", "rate", "like", "search", "UserLogin"]  # fmt: skip
FIELDS = ["schema_version", "event_id", "user_id", "episode_id", "new_episode_id", "content_id", "event_type",
          "event", "ts", "timestamp", "device", "device_id", "rating", "position_sec", "from_sec", "to_sec",
          "played_pct", "metadata"]  # fmt: skip


def mutations(seed: int, n: int) -> list[bytes]:
    rng = random.Random(seed)
    base = list(generate_events(users=20, seed=seed, end=NOW))
    templates = base + [to_seed000(m) for m in base] + [SEED000, SEED003]
    out = []
    for _ in range(n):
        message = dict(rng.choice(templates))
        for _ in range(rng.choice((0, 0, 1, 1, 2, 3))):
            field = rng.choice(FIELDS)
            if rng.random() < 0.3:
                message.pop(field, None)
            else:
                message[field] = rng.choice(ODD_VALUES)
        out.append(orjson.dumps(message))
    out += [raw if isinstance(raw, bytes) else orjson.dumps(raw) for raw in INVALID.values()]
    out += [
        b"",
        b"{}",
        b'{"event_id": "a", "event_id": "b"}',
        b'{"a": 1} trailing',
        b"\xff\xfe",
        b'{"x": NaN}',
    ]
    rng.shuffle(out)
    return out


def precise(values: list[bytes]) -> tuple[dict, dict]:
    accepted, rejected = {}, {}
    for i, value in enumerate(values):
        try:
            accepted[i] = validate_message(value, NOW)
        except InvalidEvent as bad:
            rejected[i] = bad.code
    return accepted, rejected


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fast_path_agrees_with_the_precise_validator(seed):
    values = mutations(seed, 3_000)
    expected_accepted, expected_rejected = precise(values)
    result = validate_batch(values, NOW)
    rows = result.events.to_pylist()
    got_accepted = {
        i: tuple(row[f] for f in CANONICAL_FIELDS) for i, row in zip(result.event_indices, rows, strict=True)
    }
    assert got_accepted == expected_accepted
    assert {i: bad.code for i, bad in result.rejects} == expected_rejected
    assert 0 < len(expected_rejected) < len(values)


def test_ordinary_batches_take_the_fast_path_and_one_odd_message_costs_one_block():
    events = [orjson.dumps(m) for m in generate_events(users=400, seed=4, end=NOW)][: 3 * BLOCK_ROWS]
    assert len(events) == 3 * BLOCK_ROWS
    values = events[:BLOCK_ROWS] + [b'{"event_id": 7}'] + events[BLOCK_ROWS:]  # a type surprise in block 2
    calls = 0
    import podrec_assets.lib.ingestion.batch_validation as module

    original = module.validate_message

    def counting(value, now):
        nonlocal calls
        calls += 1
        return original(value, now)

    module.validate_message = counting
    try:
        result = validate_batch(values, NOW)
    finally:
        module.validate_message = original
    assert len(result.event_indices) == len(events) and len(result.rejects) == 1
    assert calls == BLOCK_ROWS  # the odd block only
