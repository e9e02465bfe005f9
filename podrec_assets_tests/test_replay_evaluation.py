"""`podrec evaluate --protocol replay`: the future replayed a day at a time. Pure tests of how days and queries are
cut, and one run of the replay loop on the serving graph through real Kafka, Delta and a MongoDB-wire server: the
list a listener holds follows their events, never holds what they heard, and is what gets judged."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from dagster import materialize

from podrec_assets.defs.resources import CatalogResource
from podrec_assets.lib.lakehouse import read_table
from podrec_assets.lib.serving.lookup import COLD_START_USER
from podrec_assets.names import DAILY_ENGAGEMENT, RAW_USER_EVENTS, USER_RECOMMENDATIONS
from podrec_assets.tools.experiments.replay import (
    AT_CUT,
    FIRST_DAY,
    FOLLOWING,
    LATER_DAYS,
    LISTS,
    POPULARITY,
    RETURNING,
    DayQueries,
    ReplayReport,
    day_queries,
    day_windows,
    heard_in_top,
    replay_future,
)
from podrec_assets.tools.experiments.temporal import Workspace
from podrec_assets_tests.conftest import SERVING_END as END
from podrec_assets_tests.test_final_recommendations import SERVING


def test_days_start_at_the_cut_then_at_each_midnight():
    cut = datetime(2026, 3, 1, 15, 30, tzinfo=UTC)
    windows = day_windows(cut, datetime(2026, 3, 3, 6, tzinfo=UTC))
    assert windows == [
        (cut, datetime(2026, 3, 2, tzinfo=UTC)),
        (datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 3, tzinfo=UTC)),
        (datetime(2026, 3, 3, tzinfo=UTC), datetime(2026, 3, 3, 6, tzinfo=UTC)),
    ]
    assert day_windows(cut, cut) == []


def test_a_query_is_a_listener_with_positives_on_episodes_new_to_them():
    day = pd.DataFrame(
        {
            "user_id": ["old", "old", "old", "new", "back", "none"],
            "episode_id": ["heard", "fresh", "meh", "a", "b", "c"],
            "rating": [5, 4, 3, 5, 4, 2],
        }
    )
    heard = {"old": {"heard"}, "back": {"z"}}
    queries = day_queries(day, heard, known_at_cut={"old"}, active={"old", "back"})
    assert queries.users == ["back", "new", "old"]  # "none" has no positive
    assert queries.truth == [{"b"}, {"a"}, {"fresh"}]  # a re-rating of what they heard is no query
    assert queries.groups == [LATER_DAYS, FIRST_DAY, RETURNING]


def test_heard_episodes_are_counted_in_the_first_k_only():
    lists = [["a", "b", "c"], ["x"], []]
    assert heard_in_top(lists, [{"a", "c"}, {"y"}, {"a"}], k=2).tolist() == [1, 0, 0]


def test_the_report_averages_by_who_and_pairs_every_list_against_the_following_one():
    report = ReplayReport("validation", END, END + timedelta(days=2), 2, 10, "ranker")
    queries = DayQueries(["u", "v"], [{"a"}, {"b"}], [RETURNING, FIRST_DAY])
    lists = {name: [["a"], ["x", "b"]] for name in LISTS} | {POPULARITY: [["x"], ["x"]]}
    report.add("2026-04-11", queries, lists, [{"z"}, set()])
    assert report.ndcg[FOLLOWING] == [1.0, pytest.approx(1 / np.log2(3))]
    assert report.ndcg[POPULARITY] == [0.0, 0.0]
    text = "\n".join(report.lines())
    assert "2 queries from 2 listeners" in text
    assert f"following vs {AT_CUT}: nDCG@10 ratio 95% CI [1.00, 1.00]" in text


@pytest.fixture
def resources(delta, mongo, pyspark_resource, models, kafka):
    return {"delta": delta, "mongo": mongo, "pyspark": pyspark_resource, "models": models, "kafka": kafka,
            "catalog": CatalogResource(sources="sample")}  # fmt: skip


def test_the_replay_judges_the_lists_listeners_hold_as_their_events_arrive(graph, resources, mongo, tmp_path):
    assert materialize(
        SERVING, resources=resources, instance=graph
    ).success  # the lists at the cut, published
    client = mongo.client()
    try:
        db = mongo.db(client)
        listener = min(d["_id"] for d in db[USER_RECOMMENDATIONS].find({"_id": {"$ne": COLD_START_USER}}))
        at_cut = db[USER_RECOMMENDATIONS].find_one({"_id": listener})["episode_ids"]
    finally:
        client.close()
    raw = read_table(
        resources["delta"].table_uri(RAW_USER_EVENTS), ["user_id", "episode_id", "ts"]
    ).to_pandas()
    past = raw.assign(rating=5)
    catalog = (
        read_table(resources["delta"].table_uri("episodes"), ["episode_id"]).column("episode_id").to_pylist()
    )
    newcomer_picks = [e for e in catalog if e not in at_cut[:10]][:5]
    cut = END + timedelta(hours=1)
    day_one, day_two = END + timedelta(hours=1, minutes=5), END + timedelta(hours=12)
    rows = [
        # day one: the listener likes their list's first episode; a newcomer arrives with five
        (listener, at_cut[0], 5, day_one),
        *[("newcomer", e, 5, day_one + timedelta(minutes=i)) for i, e in enumerate(newcomer_picks)],
        # day two: both again
        (listener, at_cut[1], 5, day_two),
        ("newcomer", at_cut[2], 5, day_two),
    ]
    future = pd.DataFrame(rows, columns=["user_id", "episode_id", "rating", "ts"])
    future["ts"] = pd.to_datetime(future["ts"], utc=True)
    workspace = Workspace(tmp_path, resources, "test")

    # the nightly job runs once, before day two
    report = replay_future(
        workspace, past, future, cut, day_two + timedelta(hours=1), "test", log=print, retrain_every=1
    )

    assert report.users == [listener, "newcomer", listener, "newcomer"]
    assert report.groups == [RETURNING, FIRST_DAY, RETURNING, LATER_DAYS]
    # day one, before any event: the listener holds the cut's list, whose first episode is the one they like
    assert report.ndcg[FOLLOWING][0] == report.ndcg[AT_CUT][0] == 1.0
    # day two: the cut's list still holds what they heard on day one; the list that followed them never does
    assert report.heard[AT_CUT][2] >= 1
    assert report.heard[FOLLOWING] == [0, 0, 0, 0]
    assert report.events == len(rows) and report.days == 2
    assert len(report.strategies) == 1  # what served after the nightly job
    # day two's partition was rebuilt after its ingestion, as the late-events sensor would (no nightly run after it)
    daily = read_table(resources["delta"].table_uri(DAILY_ENGAGEMENT), ["user_id", "episode_id"]).to_pylist()
    assert {"user_id": "newcomer", "episode_id": at_cut[2]} in daily
