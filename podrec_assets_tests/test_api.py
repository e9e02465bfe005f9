"""The HTTP API against a real broker (Tansu) and a real MongoDB-wire server (SecantusDB), in process through FastAPI's
TestClient: every route, bad input on every route, events in (all or nothing, 503 when Kafka is down), impressions
logged to Kafka and landed exactly once, the online hit rate, and A/B assignment."""

from __future__ import annotations

import socket
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import orjson
import pandas as pd
import pyarrow as pa
import pytest
from deltalake import write_deltalake
from fastapi.testclient import TestClient

from podrec_assets.apps.api.app import ApiConfig, create_app
from podrec_assets.lib.feedback.hit_rate import by_arm, hit_rates, rejudge_from, wilson_interval
from podrec_assets.lib.feedback.impressions import ingest_impressions
from podrec_assets.lib.ingestion.contract import make_v1_event
from podrec_assets.lib.ingestion.kafka_clients import KafkaSettings
from podrec_assets.lib.lakehouse import read_table
from podrec_assets.lib.serving.experiments import Arm, assign, bucket, parse_arms
from podrec_assets.lib.serving.lookup import COLD_START_USER, user_document
from podrec_assets.names import (
    ALS_TOP_N,
    EPISODE_SIMILARITY,
    EPISODES,
    GLOBAL_STATS,
    QUARANTINED_EVENTS,
    RECOMMENDATION_IMPRESSIONS,
    USER_RECOMMENDATIONS,
    USER_STATS,
)

KEY = "test-key-0123456789"
NOW = datetime(2026, 4, 10, 12, tzinfo=UTC)
BAD_IDS = ["$where", "a.b", "x" * 300, "-leading-dash", "spa ce"]


def ranked(user: str, episodes: list[str], version: str = "v1") -> list[dict]:
    return [{"recommended_episode_id": e, "title": f"Title {e}", "score": 1 - i / 10, "reason": "because",
             "source": "als", "model_version": version, "generated_at": NOW}
            for i, e in enumerate(episodes)]  # fmt: skip


@pytest.fixture
def seeded(db, delta):
    db[USER_RECOMMENDATIONS].insert_many([
        user_document("alice", ranked("alice", ["ep-3", "ep-4", "ep-5"])),
        user_document(COLD_START_USER, ranked(COLD_START_USER, ["ep-1", "ep-2"])),
    ])  # fmt: skip
    db[ALS_TOP_N].insert_many([
        {"_id": f"alice:{r}", "user_id": "alice", "new_episode_id": f"ep-{r + 5}", "als_score": 1 / r, "rank": r,
         "model_version": "v1", "generated_at": NOW} for r in (1, 2)
    ])  # fmt: skip
    db[EPISODES].insert_many(
        [{"_id": f"ep-{i}", "episode_id": f"ep-{i}", "title": f"Title ep-{i}"} for i in range(9)]
    )
    db[USER_STATS].insert_one({"_id": "alice", "user_id": "alice", "events_total": 7, "applied": {"s": 1}})
    db[GLOBAL_STATS].insert_one(
        {"_id": "window_7d", "window_days": 7, "top_episodes": [{"episode_id": "ep-1"}]}
    )
    write_deltalake(delta.table_uri(EPISODE_SIMILARITY), pa.table({
        "episode_id": ["ep-1", "ep-1"], "similar_episode_id": ["ep-2", "ep-3"], "rank": [1, 2], "score": [0.9, 0.5],
    }))  # fmt: skip
    return db


def config(kafka_resource, mongo, delta, **overrides) -> ApiConfig:
    settings = dict(
        mongo_uri=mongo.uri, mongo_db=mongo.database, kafka=KafkaSettings(kafka_resource.bootstrap_servers),
        events_topic=kafka_resource.topic, impressions_topic=f"{kafka_resource.topic}-impressions",
        delta_root=delta.root,
        api_keys=(KEY,),
    )  # fmt: skip
    settings.update(overrides)
    return ApiConfig(**settings)


@pytest.fixture
def client(kafka, mongo, delta, seeded):
    with TestClient(create_app(config(kafka, mongo, delta))) as test_client:
        yield test_client


def messages(kafka, topic: str, expect: int, timeout_s: float = 20.0) -> list:
    """Every message on `topic` (waits until `expect` have arrived, or the timeout)."""
    consumer = KafkaSettings(kafka.bootstrap_servers).consumer()
    try:
        deadline, found = datetime.now() + timedelta(seconds=timeout_s), []
        while datetime.now() < deadline:
            partitions = consumer.partitions_for_topic(topic)
            if partitions:
                break
        from kafka import TopicPartition

        consumer.assign([TopicPartition(topic, p) for p in sorted(partitions or [])])
        consumer.seek_to_beginning()
        while len(found) < expect and datetime.now() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                found.extend(records)
        if expect == 0:  # nothing may come: give it one more poll
            for records in consumer.poll(timeout_ms=1500).values():
                found.extend(records)
        return found
    finally:
        consumer.close()


# ------------------------------------------------------------------------------------------------- reads


def test_a_listener_gets_their_list_and_an_impression_is_logged(client, kafka):
    response = client.get("/v1/users/alice/recommendations", params={"limit": 2})
    assert response.status_code == 200
    body = response.json()
    assert body["new_listener"] is False and body["arm"] == "main" and body["strategy"] == "served"
    assert [r["episode_id"] for r in body["recommendations"]] == ["ep-3", "ep-4"]
    assert body["recommendations"][0] == {"rank": 1, "episode_id": "ep-3", "title": "Title ep-3", "score": 1.0,
                                          "reason": "because", "source": "als"}  # fmt: skip
    assert response.headers["X-Request-ID"] == body["request_id"] and body["model_version"] == "v1"
    (impression,) = messages(kafka, f"{kafka.topic}-impressions", 1)
    logged = orjson.loads(impression.value)
    assert impression.key == b"alice"
    assert logged["impression_id"] == body["request_id"] and logged["episode_ids"] == ["ep-3", "ep-4"]
    assert (logged["strategy"], logged["arm"], logged["model_version"]) == ("served", "main", "v1")


def test_an_unknown_listener_gets_the_new_listener_list_marked_as_such(client):
    body = client.get("/v1/users/someone-new/recommendations").json()
    assert body["new_listener"] is True
    assert [r["episode_id"] for r in body["recommendations"]] == ["ep-1", "ep-2"]


def test_episode_similar_stats_and_trending(client):
    assert client.get("/v1/episodes/ep-1").json() == {"episode_id": "ep-1", "title": "Title ep-1"}
    assert client.get("/v1/episodes/nope").status_code == 404
    similar = client.get("/v1/episodes/ep-1/similar", params={"limit": 1}).json()
    assert similar == {"episode_id": "ep-1", "similar": [{"episode_id": "ep-2", "rank": 1, "score": 0.9,
                                                          "title": "Title ep-2"}]}  # fmt: skip
    assert client.get("/v1/episodes/ep-7/similar").status_code == 404
    stats = client.get("/v1/users/alice/stats").json()
    assert stats["events_total"] == 7 and "applied" not in stats  # bookkeeping stays inside
    assert client.get("/v1/users/nobody/stats").status_code == 404
    assert client.get("/v1/trending").json()["top_episodes"] == [{"episode_id": "ep-1"}]
    assert client.get("/v1/trending", params={"window": "30d"}).status_code == 404  # not computed yet
    assert client.get("/v1/trending", params={"window": "1y"}).status_code == 422


@pytest.mark.parametrize("bad", BAD_IDS)
def test_unsafe_ids_are_refused_on_every_route(client, bad):
    for path in (f"/v1/users/{bad}/recommendations", f"/v1/users/{bad}/stats", f"/v1/episodes/{bad}",
                 f"/v1/episodes/{bad}/similar"):  # fmt: skip
        assert client.get(path).status_code == 422, path
    event = make_v1_event(event_id="e1", user_id=bad, episode_id="ep-1", event_type="like", ts=NOW)
    response = client.post("/v1/events", content=orjson.dumps(event), headers={"X-API-Key": KEY})
    assert response.status_code == 422
    assert response.json()["detail"][0]["reason_code"] in {"unsafe_id", "id_too_long"}


def test_limits_are_bounded(client):
    assert client.get("/v1/users/alice/recommendations", params={"limit": 0}).status_code == 422
    assert client.get("/v1/users/alice/recommendations", params={"limit": 101}).status_code == 422


def test_reads_can_require_a_key(kafka, mongo, delta, seeded):
    with TestClient(create_app(config(kafka, mongo, delta, reads="key"))) as locked:
        assert locked.get("/v1/users/alice/stats").status_code == 401
        assert locked.get("/v1/users/alice/stats", headers={"X-API-Key": "wrong"}).status_code == 401
        assert locked.get("/v1/users/alice/stats", headers={"X-API-Key": KEY}).status_code == 200


# ------------------------------------------------------------------------------------------------- events in


def test_events_need_the_key_and_land_in_kafka_keyed_by_listener(client, kafka):
    events = [make_v1_event(event_id=f"e{i}", user_id="bob", episode_id="ep-1", event_type="like", ts=NOW)
              for i in range(3)]  # fmt: skip
    assert client.post("/v1/events", content=orjson.dumps(events)).status_code == 401
    assert (
        client.post("/v1/events", content=orjson.dumps(events), headers={"X-API-Key": "nope"}).status_code
        == 401
    )
    response = client.post("/v1/events", content=orjson.dumps(events), headers={"X-API-Key": KEY})
    assert response.status_code == 202 and response.json() == {"accepted": 3}
    landed = messages(kafka, kafka.topic, 3)
    assert sorted(orjson.loads(m.value)["event_id"] for m in landed) == ["e0", "e1", "e2"]
    assert {m.key for m in landed} == {b"bob"}
    single = client.post(
        "/v1/events", content=orjson.dumps(events[0] | {"event_id": "e9"}), headers={"X-API-Key": KEY}
    )
    assert single.json() == {"accepted": 1}


def test_a_batch_with_one_bad_event_is_refused_whole(client, kafka):
    good = make_v1_event(event_id="g1", user_id="bob", episode_id="ep-1", event_type="like", ts=NOW)
    bad = {**good, "event_id": "g2", "event_type": "teleport"}
    response = client.post("/v1/events", content=orjson.dumps([good, bad]), headers={"X-API-Key": KEY})
    assert response.status_code == 422
    assert response.json()["detail"] == [{"index": 1, "reason_code": "unknown_event_type",
                                          "detail": "event type 'teleport'"}]  # fmt: skip
    malformed = client.post("/v1/events", content=b"{not json", headers={"X-API-Key": KEY})
    assert malformed.status_code == 422 and malformed.json()["detail"][0]["reason_code"] == "not_json"
    assert client.post("/v1/events", content=b"[]", headers={"X-API-Key": KEY}).status_code == 422
    assert messages(kafka, kafka.topic, 0) == []  # nothing of the refused batches was sent


def test_a_body_over_the_limit_is_refused(kafka, mongo, delta, seeded):
    with TestClient(create_app(config(kafka, mongo, delta, max_body_bytes=1000))) as small:
        event = make_v1_event(event_id="e1", user_id="bob", episode_id="ep-1", event_type="like", ts=NOW)
        response = small.post("/v1/events", content=orjson.dumps([event] * 20), headers={"X-API-Key": KEY})
        assert response.status_code == 413


def test_a_broker_that_is_down_gets_503_never_200(kafka, mongo, delta, seeded):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{sock.getsockname()[1]}"
    api = create_app(config(kafka, mongo, delta, kafka=KafkaSettings(dead)))
    with TestClient(api) as down:
        event = make_v1_event(event_id="e1", user_id="bob", episode_id="ep-1", event_type="like", ts=NOW)
        assert (
            down.post("/v1/events", content=orjson.dumps(event), headers={"X-API-Key": KEY}).status_code
            == 503
        )
        ready = down.get("/readyz")
        assert ready.status_code == 503 and ready.json()["mongodb"] == "ok" and ready.json()["kafka"] != "ok"
        # lists are still served (the impression is counted as dropped)
        assert down.get("/v1/users/alice/recommendations").status_code == 200
        assert 'podrec_api_impressions_total{outcome="dropped"}' in down.get("/metrics").text


def test_health_readiness_metrics_and_openapi(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"ready": True, "mongodb": "ok", "kafka": "ok"}
    client.get("/v1/users/alice/recommendations")
    text = client.get("/metrics").text
    assert (
        'podrec_api_requests_total{method="GET",route="/v1/users/{user_id}/recommendations",status="200"}'
        in text
    )
    assert (
        "podrec_api_request_seconds_bucket" in text
        and 'podrec_api_served_model_version{version="v1"} 1.0' in text
    )
    assert "/v1/events" in client.get("/openapi.json").json()["paths"]


# ------------------------------------------------------------------------------------------------- impressions


def test_impressions_land_exactly_once(client, kafka, delta):
    served = [
        client.get(f"/v1/users/{u}/recommendations").json()["request_id"] for u in ("alice", "bob", "alice")
    ]
    topic = f"{kafka.topic}-impressions"
    first = messages(kafka, topic, 3)[0]
    producer = KafkaSettings(kafka.bootstrap_servers).producer()
    # the same impression again, as a producer retry sends it
    producer.send(topic, key=first.key, value=first.value)
    producer.send(topic, value=b"{broken")
    producer.flush()
    producer.close()
    uri, quarantine = delta.table_uri(RECOMMENDATION_IMPRESSIONS), delta.table_uri(QUARANTINED_EVENTS)
    settings = KafkaSettings(kafka.bootstrap_servers)
    for _ in range(2):  # the second run finds nothing new
        consumer = settings.consumer()
        try:
            report = ingest_impressions(
                consumer, uri, quarantine, topic, settings.topic_id(topic), idle_ms=1500
            )
        finally:
            consumer.close()
    assert report.messages == 0
    table = read_table(uri)
    assert sorted(table.column("impression_id").to_pylist()) == sorted(served)
    assert read_table(quarantine).column("reason_code").to_pylist() == ["not_json"]


# ------------------------------------------------------------------------------------------------- hit rate, A/B


def test_hit_rate_on_a_hand_checked_case():
    t0 = datetime(2026, 4, 1, 10, tzinfo=UTC)
    impressions = pd.DataFrame({
        "impression_id": ["i1", "i2", "i3", "i4", "i5"],
        "user_id": ["u1", "u1", "u2", "u3", "u3"],
        "served_at": [t0, t0 + timedelta(hours=1), t0, t0, t0 + timedelta(days=2)],
        "episode_ids": [["a", "b"], ["c"], ["a"], ["d"], ["a"]],
        "model_version": ["v1", "v1", "v1", "v2", "v2"],
        "strategy": ["served", "served", "served", "popularity", "popularity"],
        "arm": ["main", "main", "main", "holdout", "holdout"],
    })  # fmt: skip
    events = pd.DataFrame({
        "user_id": ["u1", "u1", "u2", "u3"],
        "episode_id": ["b", "c", "a", "d"],
        "event_type": ["complete", "skip", "play", "like"],
        # i1: b completed 3 h later (hit); i2: c only skipped (no hit); i3: a played 30 h later (too late);
        # i4: d liked 1 h before it was shown (no hit); i5: served 2 days later, its 24 h not over yet (pending)
        "ts": [t0 + timedelta(hours=3), t0 + timedelta(hours=2), t0 + timedelta(hours=30), t0 - timedelta(hours=1)],
    })  # fmt: skip
    result = hit_rates(impressions, events, as_of=t0 + timedelta(days=2, hours=1))
    assert (result.judged, result.pending) == (4, 1)
    rows = {(r.model_version, r.arm): (r.impressions, r.hits) for r in result.rates.itertuples()}
    assert rows == {("v1", "main"): (3, 1), ("v2", "holdout"): (1, 0)}
    arms = by_arm(result.rates)
    assert arms["main"]["hit_rate"] == round(1 / 3, 4) and arms["holdout"]["hits"] == 0
    low, high = wilson_interval(1, 3)
    assert arms["main"]["ci95"] == [round(low, 4), round(high, 4)] and 0 < low < 1 / 3 < high < 1


def test_hit_rate_with_every_impression_still_pending_is_an_empty_table():
    now = datetime(2026, 4, 1, 10, tzinfo=UTC)
    impressions = pd.DataFrame({"impression_id": ["i1"], "user_id": ["u1"], "served_at": [now - timedelta(hours=1)],
                                "episode_ids": [["a"]], "model_version": ["v1"], "strategy": ["served"],
                                "arm": ["main"]})  # fmt: skip
    result = hit_rates(impressions, None, as_of=now)
    assert (result.judged, result.pending) == (0, 1)
    assert result.table().num_rows == 0 and result.table().schema.field("day").type == pa.date32()


def test_a_day_whose_hit_rate_falls_out_of_its_band_is_named():
    from podrec_assets.lib.feedback.hit_rate import newest_day_in_band

    def rates(newest: float, days: int = 10) -> pd.DataFrame:
        rows = [{"day": date(2026, 4, d), "model_version": "v1", "strategy": "served", "arm": "main",
                 "impressions": 1000, "hits": 300 + (d % 3) * 10} for d in range(1, days + 1)]  # fmt: skip
        rows.append({"day": date(2026, 4, days + 1), "model_version": "v2", "strategy": "served", "arm": "main",
                     "impressions": 1000, "hits": int(newest * 1000)})  # fmt: skip
        return pd.DataFrame(rows)

    assert newest_day_in_band(rates(0.31))["main"]["in_band"]
    decayed = newest_day_in_band(rates(0.05))["main"]
    assert decayed["judged"] and not decayed["in_band"] and decayed["hit_rate"] == 0.05
    assert newest_day_in_band(rates(0.05, days=3))["main"] == {
        "judged": False,
        "hit_rate": 0.05,
        "earlier_days": 3,
    }


def test_ab_assignment_is_stable_and_balanced():
    arms = parse_arms("main:served:80,als:als:10,holdout:popularity:10")
    assert arms == (Arm("main", "served", 80), Arm("als", "als", 10), Arm("holdout", "popularity", 10))
    users = [f"user-{i}" for i in range(20_000)]
    first = [assign(u, arms, "salt").name for u in users]
    assert first == [assign(u, arms, "salt").name for u in users]  # stable
    shares = {arm: count / len(users) for arm, count in Counter(first).items()}
    assert (
        abs(shares["main"] - 0.8) < 0.015
        and abs(shares["als"] - 0.1) < 0.01
        and abs(shares["holdout"] - 0.1) < 0.01
    )
    other_salt = [assign(u, arms, "other").name for u in users]
    # a new salt reshuffles
    assert sum(a != b for a, b in zip(first, other_salt, strict=True)) > 0.2 * len(users)
    assert min(bucket(u) for u in users) >= 0 and max(bucket(u) for u in users) < 1
    for bad in ("main:served", "main:magic:1", "main:served:0", "a b:served:1", "x:served:1,x:als:1"):
        with pytest.raises(ValueError):
            parse_arms(bad)


def test_each_arm_is_served_its_strategy(kafka, mongo, delta, seeded):
    arms = parse_arms("main:served:1,als:als:1,holdout:popularity:1")
    api = create_app(config(kafka, mongo, delta, arms=arms, ab_salt="s"))
    with TestClient(api) as ab:
        by_user = {u: assign(u, arms, "s") for u in ("alice", "bob", "carol", "dave", "erin", "frank")}
        for user, arm in by_user.items():
            body = ab.get(f"/v1/users/{user}/recommendations").json()
            assert (body["arm"], body["strategy"]) == (arm.name, arm.strategy)
        alice = ab.get("/v1/users/alice/recommendations").json()
        expected = {
            "served": ["ep-3", "ep-4", "ep-5"],
            "als": ["ep-6", "ep-7"],
            "popularity": ["ep-1", "ep-2"],
        }
        assert [r["episode_id"] for r in alice["recommendations"]] == expected[by_user["alice"].strategy]


def test_online_hit_rate_asset_writes_the_table(delta):
    from dagster import materialize

    from podrec_assets.defs.feedback.assets import hit_rates_consistent, online_hit_rate
    from podrec_assets_tests.helpers import write_raw_events

    served_at = datetime.now(UTC) - timedelta(days=2)
    write_deltalake(delta.table_uri(RECOMMENDATION_IMPRESSIONS), pa.table({
        "impression_id": ["i1", "i2"], "user_id": ["u1", "u2"], "served_at": [served_at, served_at],
        "served_date": [served_at.date()] * 2, "episode_ids": [["ep-1"], ["ep-2"]], "model_version": ["v1", "v1"],
        "strategy": ["served", "served"], "arm": ["main", "main"],
    }))  # fmt: skip
    write_raw_events(delta, [make_v1_event(event_id="x1", user_id="u1", episode_id="ep-1", event_type="complete",
                                           ts=served_at + timedelta(hours=1))])  # fmt: skip
    result = materialize([online_hit_rate, hit_rates_consistent], resources={"delta": delta})
    assert result.success
    table = read_table(delta.table_uri("online_hit_rate")).to_pylist()
    assert table == [{"day": served_at.date(), "model_version": "v1", "strategy": "served", "arm": "main",
                      "impressions": 2, "hits": 1, "hit_rate": 0.5}]  # fmt: skip
    assert isinstance(table[0]["day"], date)


def test_the_newest_three_judged_days_are_judged_again():
    assert rejudge_from([]) is None  # nothing judged yet: everything is
    assert rejudge_from([date(2026, 4, 1), date(2026, 4, 9), date(2026, 4, 5)]) == date(2026, 4, 7)


def test_online_hit_rate_keeps_settled_days_and_judges_the_newest_again(delta):
    """An hourly run reads the newest days only: a settled day keeps its rates after its impressions are pruned
    from the lake, and an event that lands late still counts for a recent day."""
    from dagster import materialize
    from deltalake import DeltaTable

    from podrec_assets.defs.feedback.assets import online_hit_rate
    from podrec_assets_tests.helpers import write_raw_events

    now = datetime.now(UTC)
    old, recent = now - timedelta(days=10), now - timedelta(days=2)
    impressions_uri = delta.table_uri(RECOMMENDATION_IMPRESSIONS)
    write_deltalake(impressions_uri, pa.table({
        "impression_id": ["i-old", "i-recent"], "user_id": ["u1", "u2"], "served_at": [old, recent],
        "served_date": [old.date(), recent.date()], "episode_ids": [["ep-1"], ["ep-2"]],
        "model_version": ["v1", "v1"], "strategy": ["served", "served"], "arm": ["main", "main"],
    }), partition_by=["served_date"])  # fmt: skip
    write_raw_events(delta, [make_v1_event(event_id="x1", user_id="u1", episode_id="ep-1", event_type="complete",
                                           ts=old + timedelta(hours=1))])  # fmt: skip

    def rates() -> dict:
        rows = read_table(delta.table_uri("online_hit_rate")).to_pylist()
        return {row["day"]: (row["impressions"], row["hits"]) for row in rows}

    first = materialize([online_hit_rate], resources={"delta": delta})
    assert rates() == {old.date(): (1, 1), recent.date(): (1, 0)}
    assert first.asset_materializations_for_node("online_hit_rate")[0].metadata["judged_from"].value == (
        old.date().isoformat()
    )

    DeltaTable(impressions_uri).delete(f"served_date = '{old.date().isoformat()}'")  # retention pruned it
    write_raw_events(delta, [make_v1_event(event_id="x2", user_id="u2", episode_id="ep-2", event_type="like",
                                           ts=recent + timedelta(hours=2))])  # fmt: skip  # landed late
    again = materialize([online_hit_rate], resources={"delta": delta})
    assert rates() == {old.date(): (1, 1), recent.date(): (1, 1)}
    metadata = again.asset_materializations_for_node("online_hit_rate")[0].metadata
    assert metadata["judged_from"].value == (recent.date() - timedelta(days=2)).isoformat()
    assert metadata["impressions_judged"].value == 1  # the recent one; the settled day was not read
    assert metadata["arms"].value["main"]["impressions"] == 2  # the summary still covers every day
