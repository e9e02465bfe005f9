"""Producers: synthetic listeners, MovieLens replay and sending to a broker."""

from collections import Counter, defaultdict
from datetime import UTC, datetime

import orjson
import pytest

from podrec_assets.defs.resources import KafkaResource
from podrec_assets.lib.datasets.movielens import load_ratings, replay_events
from podrec_assets.lib.ingestion.contract import validate_message
from podrec_assets.tools.producers.kafka_send import BrokerUnavailable, send_messages
from podrec_assets.tools.producers.synthetic import (
    generate_events,
    make_listeners,
    sample_catalog,
    to_seed000,
)
from podrec_assets_tests.conftest import free_port
from podrec_assets_tests.helpers import ingest, table

END = datetime(2026, 11, 1, tzinfo=UTC)


def test_generator_is_reproducible_and_valid():
    a = list(generate_events(users=30, seed=1, end=END))
    b = list(generate_events(users=30, seed=1, end=END))
    assert a == b and len({e["event_id"] for e in a}) == len(a)
    later = list(generate_events(users=30, seed=1, end=END.replace(day=2)))
    assert not {e["event_id"] for e in a} & {e["event_id"] for e in later}  # a later run is new activity
    now = datetime.now(UTC)
    for message in a + [to_seed000(m) for m in a[:50]]:
        validate_message(orjson.dumps(message), now)  # raises if invalid
    assert {"play", "complete", "like", "rate", "skip"} <= {e["event_type"] for e in a}


def test_generated_behaviour_follows_latent_tastes():
    """Listeners mostly complete and like episodes of the categories they are drawn to: signal for ALS to find."""
    import random

    catalog = {e.episode_id: e for e in sample_catalog()}
    listeners = {listener.user_id: listener for listener in make_listeners(300, random.Random(9))}
    positive = defaultdict(Counter)
    for e in generate_events(users=300, seed=9, end=END):
        if e["event_type"] in ("complete", "like"):
            positive[e["user_id"]][catalog[e["episode_id"]].category] += 1
    hits = sum(
        max(listeners[u].taste, key=listeners[u].taste.get) == c.most_common(1)[0][0]
        for u, c in positive.items()
    )
    assert hits / len(positive) > 0.6  # chance would be 1/8


def test_movielens_replay():
    ratings = load_ratings()
    assert len(ratings) == 100_000
    events = list(replay_events(ratings[:500]))
    assert {e["event_type"] for e in events} == {"rate"} and len({e["event_id"] for e in events}) == 500
    assert events[0]["ts"] < events[-1]["ts"]  # time order
    compressed = list(replay_events(ratings[:500], speed=100, now=END))
    assert compressed[-1]["ts"].startswith("2026-11-01T00:00:00")
    now = datetime.now(UTC)
    for message in events[:100]:
        validate_message(orjson.dumps(message), now)


def test_replay_sent_twice_is_ingested_once(kafka, delta):
    events = list(replay_events(load_ratings()[:300]))
    payload = [(e["user_id"].encode(), orjson.dumps(e)) for e in events]
    assert send_messages(kafka, payload, progress=False).sent == 300
    assert send_messages(kafka, payload, progress=False).sent == 300
    report = ingest(kafka, delta)
    assert (report.accepted, report.duplicates) == (300, 300)
    assert table(delta).num_rows == 300


def test_dead_broker_gives_one_clear_error():
    dead = KafkaResource(bootstrap_servers=f"127.0.0.1:{free_port()}", topic="t")
    with pytest.raises(BrokerUnavailable, match="cannot reach Kafka at 127.0.0.1"):
        send_messages(dead, [(None, b"{}")], progress=False)
