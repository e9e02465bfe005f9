"""Acceptance: 50,000 messages, duplicates and bad ones among them, an ingesting process SIGKILLed again and again
at different points; once caught up, every accepted event is in the table exactly once and every bad message in the
quarantine exactly once."""

import random
import signal
import time
from collections import Counter

import orjson
import pytest
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

from podrec_assets.names import QUARANTINED_EVENTS, RAW_USER_EVENTS
from podrec_assets.tools.producers.synthetic import generate_events
from podrec_assets_tests.helpers import ingest_in_subprocess, produce, quarantine, table

pytestmark = pytest.mark.slow

TOTAL = 50_000
DUPLICATES = 2_000
BAD = 100


def _messages() -> tuple[list, set[str], list[bytes]]:
    rng = random.Random(3)
    unique = list(generate_events(users=2_000, sessions_per_user=12, days=20, seed=11))[: TOTAL - DUPLICATES]
    assert len(unique) == TOTAL - DUPLICATES
    messages: list = list(unique)
    for event in rng.sample(unique, DUPLICATES):  # producer retries / replays: same event_id again, later
        messages.insert(rng.randrange(messages.index(event) + 1, len(messages) + 1), event)
    bad = [orjson.dumps({"event_id": f"bad-{i}", "user_id": "u", "event": "like", "ts": "not-a-time",
                         "new_episode_id": "e"}) for i in range(BAD)]  # fmt: skip
    for raw in bad:
        messages.insert(rng.randrange(len(messages)), raw)
    return messages, {e["event_id"] for e in unique}, bad


def _version(uri: str) -> int:
    try:
        return DeltaTable(uri).version()
    except TableNotFoundError:  # not created yet
        return -1


def test_sigkill_at_any_point_neither_loses_nor_doubles(kafka, delta):
    messages, expected_ids, bad = _messages()
    produce(kafka, messages)
    raw_uri = delta.table_uri(RAW_USER_EVENTS)
    args = ("--batch-events", "1500")

    kills = []
    # 1-2: at the two commit boundaries that matter (between the quarantine and the events commit; just after both).
    for point in (QUARANTINED_EVENTS, RAW_USER_EVENTS):  # right after the commit to that table
        process = ingest_in_subprocess(kafka, delta, {"PODREC_CRASH_AT": point}, args)
        assert process.wait(timeout=300) == -signal.SIGKILL
        kills.append((point, _version(raw_uri)))
    # 3-4: from outside, at arbitrary moments while batches are being read, validated and written.
    for extra_delay in (0.05, 0.4):
        process = ingest_in_subprocess(kafka, delta, args=args)
        start_version = _version(raw_uri)
        deadline = time.monotonic() + 300
        while _version(raw_uri) <= start_version and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(extra_delay)
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=60) == -signal.SIGKILL, "the ingestion finished before it could be killed"
        kills.append((f"external+{extra_delay}s", _version(raw_uri)))

    assert len(kills) >= 3
    assert len({version for _, version in kills}) == len(kills), (
        f"kills did not land at different points: {kills}"
    )
    rows_after_kills = table(delta).num_rows
    assert 0 < rows_after_kills < len(expected_ids)

    for _ in range(5):  # re-run until caught up
        process = ingest_in_subprocess(kafka, delta, args=args)
        output = process.communicate(timeout=600)[0].decode()
        assert process.returncode == 0, output
        if "caught up: True" in output:
            break

    ids = table(delta)["event_id"].to_pylist()
    assert len(ids) == len(expected_ids) and set(ids) == expected_ids  # each accepted event exactly once
    quarantined = quarantine(delta)
    assert Counter(quarantined["raw_value"].to_pylist()) == Counter(bad)  # each bad message exactly once
    assert set(quarantined["reason_code"].to_pylist()) == {"bad_timestamp"}
