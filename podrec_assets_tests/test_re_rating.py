"""A re-rating replaces (stats and engagement): a listener who rates an episode again counts only their latest
rating (by event time, then event id) in user_stats, user_affinities and the engagement ALS learns from; replays
change nothing and a late, older rating does not override a newer one."""

import random
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
from dagster import DagsterInstance, build_sensor_context, materialize
from deltalake import DeltaTable, write_deltalake

from podrec_assets.defs.engagement.assets import LATER_DAYS_TO_REBUILD, daily_engagement
from podrec_assets.defs.engagement.sensors import late_events_sensor
from podrec_assets.defs.stats.assets import user_stats
from podrec_assets.lib.content.tables import EPISODES_SCHEMA
from podrec_assets.lib.engagement.weights import EventWeights, replaced_ratings
from podrec_assets.lib.ingestion.contract import make_v1_event
from podrec_assets.lib.models.training import load_interactions
from podrec_assets.lib.stats.aggregate import Catalog, EpisodeInfo, affinity_increments, user_increments
from podrec_assets.lib.stats.incremental import STREAM
from podrec_assets.lib.stats.keys import affinity_id
from podrec_assets.lib.stats.ratings import Rating, RatingChange, batch_latest_ratings, rating_changes
from podrec_assets.lib.stats.store import CURSORS
from podrec_assets.names import (
    DAILY_ENGAGEMENT,
    EPISODES,
    USER_AFFINITIES,
    USER_EPISODE_RATINGS,
    USER_STATS,
)
from podrec_assets_tests.helpers import partition_range_tags, write_raw_events

DAY1, DAY2 = date(2026, 3, 14), date(2026, 3, 15)
T = datetime(2026, 3, 14, 10, tzinfo=UTC)


def frame(rows: list[dict]) -> pd.DataFrame:
    """A batch as `event_frame` gives it (only the columns the rating functions read)."""
    df = pd.DataFrame(rows)
    df["ts_us"] = [int(t.timestamp() * 1_000_000) for t in df["ts"]]
    return df


def rate(event_id: str, user: str, episode: str, rating: int, ts: datetime) -> dict:
    return {"event_id": event_id, "user_id": user, "episode_id": episode, "event_type": "rate", "rating": rating,
            "ts": pd.Timestamp(ts), "device": None, "from_sec": None, "to_sec": None}  # fmt: skip


# ------------------------------------------------------------------------------------------ unit: the stats' side


def test_the_latest_rating_is_by_time_then_event_id_and_an_older_one_changes_nothing():
    batch = frame([
        rate("b", "u", "e", 3, T),
        rate("c", "u", "e", 4, T + timedelta(hours=1)),
        rate("a", "u", "e", 5, T + timedelta(hours=1)),  # same time as "c": the greater event id wins
        rate("d", "u", "f", 2, T),
        {**rate("p", "u", "e", 1, T + timedelta(hours=2)), "event_type": "play"},  # not a rating
    ])  # fmt: skip
    latest = batch_latest_ratings(batch)
    assert {pair: r.rating for pair, r in latest.items()} == {("u", "e"): 4, ("u", "f"): 2}

    newer = Rating(1, latest[("u", "e")].ts_us + 1, "0")  # counted already and newer: the batch is a late one
    older = Rating(5, 0, "z")
    changes = {
        (c.user_id, c.episode_id): c for c in rating_changes(latest, {("u", "e"): newer, ("u", "f"): older})
    }
    assert set(changes) == {("u", "f")} and changes[("u", "f")].old == older
    same_time = Rating(9, latest[("u", "e")].ts_us, "b")  # as old as "c" but a smaller event id: "c" wins
    assert sorted(c.new.event_id for c in rating_changes(latest, {("u", "e"): same_time})) == ["c", "d"]
    assert rating_changes(latest, dict(latest)) == []  # a replay: nothing changes
    first = rating_changes(latest, {})
    assert {(c.episode_id, c.old, c.count_delta, c.sum_delta) for c in first} == {("e", None, 1, 4),
                                                                                  ("f", None, 1, 2)}  # fmt: skip


def test_a_change_moves_one_count_between_stars_and_the_sum_by_the_difference():
    batch = frame([rate("a", "u", "e", 2, T), rate("b", "u", "f", 5, T), rate("c", "u", "g", 4, T)])
    at = int(T.timestamp() * 1_000_000)
    changes = [
        RatingChange("u", "e", Rating(4, at - 1, "x"), Rating(2, at, "a")),  # 4 → 2
        RatingChange("u", "f", None, Rating(5, at, "b")),  # first rating
        RatingChange("u", "g", Rating(4, at - 1, "y"), Rating(4, at, "c")),  # the same stars again
    ]
    (doc,) = user_increments(batch, changes)
    ratings = {k: v for k, v in doc.inc.items() if k.startswith("ratings.")}
    assert ratings == {"ratings.count": 1, "ratings.sum": -2 + 5, "ratings.by_star.4": -1, "ratings.by_star.2": 1,
                       "ratings.by_star.5": 1}  # fmt: skip
    assert doc.inc["events_total"] == doc.inc["events.rate"] == 3  # every rate event is still an event

    catalog = Catalog(
        {"e": EpisodeInfo("E", "Show", None, ("News",)), "f": EpisodeInfo("F", "Show", None, ())}
    )
    affinities = {d.doc_id: d.inc for d in affinity_increments(batch, catalog, changes).documents}
    show, news = (
        affinities[affinity_id("u", "show", "Show")],
        affinities[affinity_id("u", "category", "News")],
    )
    assert (show["count"], show["ratings"], show["rating_sum"]) == (2, 1, -2 + 5)
    assert (news["count"], news["ratings"], news["rating_sum"]) == (1, 0, -2)


# ------------------------------------------------------------------------------------- unit: the engagement side


def ratings_table(rows: list[tuple[str, str, int, datetime, str]]) -> pa.Table:
    return pa.table({
        "user_id": [r[0] for r in rows], "episode_id": [r[1] for r in rows],
        "event_type": ["rate"] * len(rows), "rating": pa.array([r[2] for r in rows], pa.int8()),
        "played_pct": pa.array([None] * len(rows), pa.float64()),
        "ts": pa.array([r[3] for r in rows], pa.timestamp("us", tz="UTC")), "event_id": [r[4] for r in rows],
    })  # fmt: skip


def test_a_ratings_weight_is_the_difference_to_the_one_it_replaces_and_sums_to_the_latest():
    weights = EventWeights()
    rows = [("u", "e", 5, T, "a"), ("u", "e", 2, T + timedelta(days=1), "b"), ("v", "e", 4, T, "c")]
    table = ratings_table(rows)
    np.testing.assert_array_equal(replaced_ratings(table), [np.nan, 5, np.nan])
    np.testing.assert_array_equal(weights.of_events(table), [2.0, -3.0, 1.0])
    # without the pair columns every rating counts as a first one (the Spark test's plain weight table)
    bare = table.select(["event_type", "rating", "played_pct"])
    np.testing.assert_array_equal(weights.of_events(bare), [2.0, -1.0, 1.0])

    # any order of arrival, any number of re-ratings: the sum is the latest rating's weight
    rng = random.Random(3)
    for _ in range(50):
        n = rng.randint(1, 6)
        history = [
            ("u", "e", rng.randint(1, 5), T + timedelta(hours=rng.randrange(5)), f"id{i}") for i in range(n)
        ]
        rng.shuffle(history)
        latest = max(history, key=lambda r: (r[3], r[4]))
        assert weights.of_events(ratings_table(history)).sum() == latest[2] - weights.rating_neutral
    low, high = weights.bounds()["rate"]
    assert (low, high) == (-4.0, 4.0)  # from 5 to 1 and back


def test_an_open_day_rating_replaces_the_closed_days_one_in_the_nightly_history():
    """The nightly lists add the open day's raw events to daily_engagement's closed days: a rating today replaces
    yesterday's there too, so the pair weighs the latest rating once (not both)."""
    from podrec_assets.lib.ranking.history import merge_pairs, pairs_from_daily, pairs_from_events

    weights = EventWeights()
    closed = ratings_table([("u", "e", 5, T, "a"), ("u", "f", 4, T, "b")])
    today = ratings_table([("u", "e", 2, T + timedelta(days=1), "c")])
    daily = pa.table({"user_id": ["u", "u"], "episode_id": ["e", "f"], "weight_sum": weights.of_events(closed),
                      "event_count": [1, 1], "last_ts": closed.column("ts")})  # fmt: skip
    pairs = merge_pairs(pairs_from_daily(daily), pairs_from_events(today, weights, earlier_ratings=closed))
    engagement = dict(zip(pairs["episode_id"], pairs["engagement"], strict=True))
    assert engagement == {"e": 2 - weights.rating_neutral, "f": 4 - weights.rating_neutral}
    counted_twice = merge_pairs(pairs_from_daily(daily), pairs_from_events(today, weights))
    # 2 + -1
    assert dict(zip(counted_twice["episode_id"], counted_twice["engagement"], strict=True))["e"] == 1.0


# -------------------------------------------------------------------- integration: user_stats and daily_engagement


def write_catalog(delta) -> None:
    rows = [{"episode_id": "ep-1", "title": "One", "show": "Show One", "author": None, "categories": ["News"]},
            {"episode_id": "ep-2", "title": "Two", "show": "Show Two", "author": None, "categories": None}]  # fmt: skip
    write_deltalake(delta.table_uri(EPISODES), pa.Table.from_pylist(rows, schema=EPISODES_SCHEMA))


def rating(event_id: str, user: str, episode: str, stars: int, ts: datetime) -> dict:
    return make_v1_event(
        event_id=event_id, user_id=user, episode_id=episode, event_type="rate", ts=ts, rating=stars
    )


def run(assets, resources, instance, **kwargs):
    result = materialize(assets, resources=resources, instance=instance, **kwargs)
    assert result.success
    return result


def ratings_of(db, user: str) -> dict:
    doc = db[USER_STATS].find_one({"_id": user})
    return {**doc["ratings"], "by_star": {k: v for k, v in doc["ratings"]["by_star"].items() if v}}


def engagement(spark, delta) -> dict[tuple[str, str], float]:
    """(user, episode) → engagement as ALS training reads it: every day's weight sums added up."""
    pairs = load_interactions(spark, delta.table_uri(DAILY_ENGAGEMENT), DAY1, DAY2, None)
    return {(r.user_id, r.episode_id): r.engagement for r in pairs.itertuples()}


def everything(db, delta) -> tuple:
    documents = tuple(
        sorted(
            (d["_id"], repr(sorted((k, v) for k, v in d.items() if k != "updated_at"))) for d in db[c].find()
        )
        for c in (USER_STATS, USER_AFFINITIES, USER_EPISODE_RATINGS)
    )
    rows = (
        DeltaTable(delta.table_uri(DAILY_ENGAGEMENT))
        .to_pyarrow_table()
        .sort_by([("event_date", "ascending"), ("user_id", "ascending"), ("episode_id", "ascending")])
    )
    return documents, rows.to_pylist()


def test_a_re_rating_replaces_in_stats_and_engagement(delta, mongo, db, spark, pyspark_resource):
    resources = {"delta": delta, "mongo": mongo, "pyspark": pyspark_resource}
    write_catalog(delta)
    with DagsterInstance.ephemeral() as instance:
        # day 1: u1 rates ep-1 5 and ep-2 4; u2 rates ep-1 3. Day 2: u1 rates ep-1 again, 2.
        write_raw_events(delta, [rating("r1", "u1", "ep-1", 5, T), rating("r2", "u1", "ep-2", 4, T),
                                 rating("r3", "u2", "ep-1", 3, T)])  # fmt: skip
        run([user_stats], resources, instance)
        run([daily_engagement], resources, instance, partition_key=DAY1.isoformat())
        assert ratings_of(db, "u1") == {"count": 2, "sum": 9, "by_star": {"5": 1, "4": 1}}
        write_raw_events(delta, [rating("r4", "u1", "ep-1", 2, T + timedelta(days=1))])
        run([user_stats], resources, instance)
        day2 = run([daily_engagement], resources, instance, partition_key=DAY2.isoformat())

        # stats: the 5 moved to a 2; u2 and u1's other episode untouched
        assert ratings_of(db, "u1") == {"count": 2, "sum": 6, "by_star": {"2": 1, "4": 1}}
        assert ratings_of(db, "u2") == {"count": 1, "sum": 3, "by_star": {"3": 1}}
        show = db[USER_AFFINITIES].find_one({"_id": affinity_id("u1", "show", "Show One")})
        # two rate events, one rating
        assert (show["count"], show["ratings"], show["rating_sum"]) == (2, 1, 2)
        assert db[USER_STATS].find_one({"_id": "u1"})["events"]["rate"] == 3
        # engagement: day 1 +2 (5 − 3), day 2 −3 (2 replaces 5): summed, the latest rating's weight, 2 − 3
        assert engagement(spark, delta) == {("u1", "ep-1"): -1.0, ("u1", "ep-2"): 1.0, ("u2", "ep-1"): 0.0}
        checks = {c.check_name: c.passed for c in day2.get_asset_check_evaluations()}
        assert all(checks.values()), checks

        # a replay changes nothing: the stats from a lost cursor, both days again as one run
        before = everything(db, delta)
        db[CURSORS].delete_one({"_id": STREAM})
        run([user_stats], resources, instance)
        run([daily_engagement], resources, instance, tags=partition_range_tags(DAY1, DAY2))
        assert everything(db, delta) == before

        # a late rating, older than day 2's: ingested now, for day 1 after its 5. The stats ignore it as older.
        write_raw_events(delta, [rating("r0", "u1", "ep-1", 1, T + timedelta(hours=2))])
        run([user_stats], resources, instance)
        assert ratings_of(db, "u1") == {"count": 2, "sum": 6, "by_star": {"2": 1, "4": 1}}
        assert db[USER_EPISODE_RATINGS].find_one({"user_id": "u1", "episode_id": "ep-1"})["event_id"] == "r4"
        # engagement: day 1 is built again (the late-events sensor asks for it); day 2's 2 now replaces the late 1,
        # so day 2's stored sum is stale, and the run says so ...
        late = run([daily_engagement], resources, instance, partition_key=DAY1.isoformat())
        metadata = late.get_asset_materialization_events()[0].materialization.metadata
        assert metadata[LATER_DAYS_TO_REBUILD].value == [DAY2.isoformat()]
        assert engagement(spark, delta)[("u1", "ep-1")] == -5.0  # +2 − 4 on day 1, −3 still on day 2
        # ... and the sensor asks for day 2; once rebuilt, the sum is the latest rating's again
        requests = late_events_sensor(build_sensor_context(instance=instance)).run_requests
        assert [r.partition_key for r in requests] == [DAY2.isoformat()]
        rebuilt = run([daily_engagement], resources, instance, partition_key=DAY2.isoformat())
        assert (
            rebuilt.get_asset_materialization_events()[0]
            .materialization.metadata[LATER_DAYS_TO_REBUILD]
            .value
            == []
        )
        assert engagement(spark, delta) == {("u1", "ep-1"): -1.0, ("u1", "ep-2"): 1.0, ("u2", "ep-1"): 0.0}
        assert late_events_sensor(build_sensor_context(instance=instance)).run_requests == []
