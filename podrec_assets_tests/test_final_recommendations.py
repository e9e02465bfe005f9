"""The serving side end to end on real Spark, Delta, the embedding model and a MongoDB-wire server: the lists of
the strategy the ranker's gate chose reach MongoDB with reasons that say what produced each score, a listener
without history gets the cold-start list, nothing heard is recommended, and a failing blocking check keeps the
previous set live."""

from datetime import timedelta

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from dagster import materialize
from deltalake import write_deltalake

from podrec_assets.defs.resources import CatalogResource
from podrec_assets.defs.serving import assets as serving_assets
from podrec_assets.defs.serving.checks import final_recommendations_checks
from podrec_assets.lib.engagement.daily import DAILY_ENGAGEMENT_SCHEMA
from podrec_assets.lib.lakehouse import delta_version, read_table
from podrec_assets.lib.serving.lookup import COLD_START_USER, als_top_n_for, recommendations_for
from podrec_assets.lib.serving.policy import serving_policy
from podrec_assets.names import DAILY_ENGAGEMENT, EPISODES, FINAL_RECOMMENDATIONS, USER_RECOMMENDATIONS
from podrec_assets_tests.conftest import SERVING_END
from podrec_assets_tests.helpers import check_outcomes

END = SERVING_END

SERVING = [
    serving_assets.final_recommendations,
    *final_recommendations_checks,
    serving_assets.published_recommendations,
]


@pytest.fixture
def resources(delta, mongo, pyspark_resource, models):
    return {"delta": delta, "mongo": mongo, "pyspark": pyspark_resource, "models": models,
            "catalog": CatalogResource(sources="sample")}  # fmt: skip


def test_recommendations_reach_mongodb_with_reasons_and_respect_history(delta, mongo, resources, graph):
    result = materialize(SERVING, resources=resources, instance=graph)
    assert check_outcomes(result, graph) == {
        "no_heard_or_skipped": True,
        "lists_consistent": True,
        "every_active_user_served": True,
    }

    client = mongo.client()
    db = mongo.db(client)
    engaged = read_table(delta.table_uri(DAILY_ENGAGEMENT), ["user_id", "episode_id"])
    heard = set(
        zip(engaged.column("user_id").to_pylist(), engaged.column("episode_id").to_pylist(), strict=True)
    )
    users = sorted({u for u, _ in heard})
    documents = list(db[FINAL_RECOMMENDATIONS].find())
    assert {d["user_id"] for d in documents} == {*users, COLD_START_USER}
    assert not any((d["user_id"], d["recommended_episode_id"]) in heard for d in documents)
    assert all(d["reason"] and d["model_version"] and d["generated_at"] for d in documents)

    # the lists come from the strategy the ranker's gate chose, and every reason says what produced its score
    policy = serving_policy(resources["models"].root, resources["models"].tracking_uri)
    assert {d["strategy"] for d in documents if d["user_id"] != COLD_START_USER} == {policy.strategy}
    assert policy.strategy in {"ranker", "als", "hybrid"} and policy.ranker_version
    titles = {e["episode_id"]: e["title"] for e in read_table(delta.table_uri(EPISODES)).to_pylist()}
    for d in documents:
        expected = {"als": "listeners with similar taste enjoyed this", "popular": "popular this week",
                    "new": "new episode"}.get(d["source"])  # fmt: skip
        if d["source"] == "content":
            expected = f"because you liked {titles[d['anchor_episode_id']]}"
        if d["source"] != "show":
            assert d["reason"] == expected, d

    # a listener without history gets the cold-start list: popular episodes
    newcomer = recommendations_for(db, "someone-new")
    assert len(newcomer) == 20 and {d["reason"] for d in newcomer} == {"popular this week"}

    # seed 000's readers: als_top_n keeps its field names
    legacy = als_top_n_for(db, users[0])
    assert legacy and {"user_id", "new_episode_id", "als_score"} <= set(legacy[0])
    client.close()


def test_a_failing_blocking_check_keeps_the_previous_set_live(delta, mongo, resources, graph, monkeypatch):
    assert materialize(SERVING, resources=resources, instance=graph).success
    client = mongo.client()
    db = mongo.db(client)
    before = {d["_id"]: d["generated_at"] for d in db[FINAL_RECOMMENDATIONS].find()}

    build = serving_assets.list_rows

    def recommending_a_heard_episode(*args, **kwargs):
        rows = build(*args, **kwargs)
        engaged = (
            read_table(delta.table_uri(DAILY_ENGAGEMENT), ["user_id", "episode_id"])
            .slice(0, 1)
            .to_pylist()[0]
        )
        first = rows.slice(0, 1).to_pylist()[0] | {"user_id": engaged["user_id"], "episode_id": engaged["episode_id"],
                                                   "rank": 999}  # fmt: skip
        return pa.concat_tables([rows, pa.Table.from_pylist([first], schema=rows.schema)])

    monkeypatch.setattr(serving_assets, "list_rows", recommending_a_heard_episode)
    result = materialize(SERVING, resources=resources, instance=graph, raise_on_error=False)
    assert check_outcomes(result, graph)["no_heard_or_skipped"] is False
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert materialized == {"final_recommendations"}  # published_recommendations did not run
    assert {d["_id"]: d["generated_at"] for d in db[FINAL_RECOMMENDATIONS].find()} == before

    # publishing alone, in a run of its own, still refuses the version that failed its checks
    alone = materialize(
        [serving_assets.published_recommendations], resources=resources, instance=graph, raise_on_error=False
    )
    assert not alone.success
    assert {d["_id"]: d["generated_at"] for d in db[FINAL_RECOMMENDATIONS].find()} == before
    client.close()


def test_only_a_version_that_passed_its_checks_is_published(delta, mongo, resources, graph):
    """The checks of an older version passed; a newer version was written but never checked: the publisher
    takes the checked version, not the newest."""
    assert materialize([serving_assets.final_recommendations, *final_recommendations_checks],
                       resources=resources, instance=graph).success  # fmt: skip
    checked = read_table(delta.table_uri(FINAL_RECOMMENDATIONS))
    unchecked = checked.filter(pc.not_equal(checked.column("user_id"), COLD_START_USER))
    write_deltalake(delta.table_uri(FINAL_RECOMMENDATIONS), unchecked, mode="overwrite")
    result = materialize([serving_assets.published_recommendations], resources=resources, instance=graph)
    client = mongo.client()
    db = mongo.db(client)
    assert db[FINAL_RECOMMENDATIONS].count_documents({}) == checked.num_rows
    assert recommendations_for(db, "someone-new")  # the cold-start list, absent from the unchecked version
    versions = result.get_asset_materialization_events()[0].materialization.metadata
    assert (
        versions["final_recommendations_version"].value
        == delta_version(delta.table_uri(FINAL_RECOMMENDATIONS)) - 1
    )
    client.close()


def test_a_listener_who_heard_everything_is_not_served_the_cold_start_list(delta, mongo, resources, graph):
    """Every catalog episode engaged with: no list, and an empty document so the lookup does not fall back."""
    catalog = read_table(delta.table_uri(EPISODES), ["episode_id"]).column("episode_id").to_pylist()
    day = END.date() - timedelta(days=1)
    rows = [{"user_id": "completionist", "episode_id": e, "event_date": day, "weight_sum": 5.0, "event_count": 1,
             "last_ts": END - timedelta(days=1)} for e in catalog]  # fmt: skip
    write_deltalake(delta.table_uri(DAILY_ENGAGEMENT), pa.Table.from_pylist(rows, DAILY_ENGAGEMENT_SCHEMA),
                    mode="append", partition_by=["event_date"])  # fmt: skip
    assert materialize(SERVING, resources=resources, instance=graph).success
    client = mongo.client()
    db = mongo.db(client)
    assert recommendations_for(db, "completionist") == []
    assert db[USER_RECOMMENDATIONS].find_one({"_id": "completionist"})["episode_ids"] == []
    client.close()
