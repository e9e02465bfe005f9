"""The near-real-time path through real Kafka, Delta and a MongoDB-wire server: after an ingestion run, a listener
with new events has a fresh list that never holds what the event just touched, their stats follow in the same
run, a new listener gets personal recommendations after a handful of events, and an older refresh never
overwrites a newer one."""

from datetime import timedelta

import pytest
from dagster import materialize

from podrec_assets.defs.ingestion.assets import user_event_tables
from podrec_assets.defs.resources import CatalogResource
from podrec_assets.defs.serving import assets as serving_assets
from podrec_assets.defs.stats.assets import user_stats
from podrec_assets.lib.ingestion.contract import make_v1_event
from podrec_assets.lib.lakehouse import read_table
from podrec_assets.lib.serving.lookup import COLD_START_USER, recommendations_for
from podrec_assets.lib.serving.realtime import STREAM, write_newer
from podrec_assets.lib.stats.store import CURSORS
from podrec_assets.names import USER_RECOMMENDATIONS, USER_STATS
from podrec_assets_tests.conftest import SERVING_END as END
from podrec_assets_tests.helpers import produce
from podrec_assets_tests.test_final_recommendations import SERVING

INGESTION_RUN = [user_event_tables, user_stats, serving_assets.fresh_recommendations]


@pytest.fixture
def resources(delta, mongo, pyspark_resource, models, kafka):
    return {"delta": delta, "mongo": mongo, "pyspark": pyspark_resource, "models": models, "kafka": kafka,
            "catalog": CatalogResource(sources="sample")}  # fmt: skip


def event(user: str, episode: str, kind: str, minutes: int, **fields) -> dict:
    return make_v1_event(event_id=f"fresh-{user}-{episode}-{kind}-{minutes}", user_id=user, episode_id=episode,
                         event_type=kind, ts=END + timedelta(minutes=minutes), **fields)  # fmt: skip


def test_new_events_refresh_the_listener_and_never_recommend_what_they_touched(
    graph, resources, kafka, mongo
):
    assert materialize(SERVING, resources=resources, instance=graph).success
    client = mongo.client()
    db = mongo.db(client)
    listener = min(d["_id"] for d in db[USER_RECOMMENDATIONS].find({"_id": {"$ne": COLD_START_USER}}))
    before = db[USER_RECOMMENDATIONS].find_one({"_id": listener})
    top = before["episode_ids"][0]  # what they are about to be recommended: they skip it instead
    catalog = (
        read_table(resources["delta"].table_uri("episodes"), ["episode_id"]).column("episode_id").to_pylist()
    )
    newcomer_picks = [e for e in catalog if e != top][:4]
    produce(kafka, [
        event(listener, top, "play", 1), event(listener, top, "skip", 2),
        *[event("newcomer", e, "complete", 10 + i, played_pct=1.0) for i, e in enumerate(newcomer_picks)],
        event("newcomer", newcomer_picks[0], "like", 20),
    ])  # fmt: skip

    result = materialize(INGESTION_RUN, resources=resources, instance=graph)
    assert result.success
    after = db[USER_RECOMMENDATIONS].find_one({"_id": listener})
    assert after["as_of"] > before["as_of"]  # refreshed from the newer raw_user_events version
    assert top not in after["episode_ids"] and len(after["episode_ids"]) == 20
    assert db[USER_STATS].find_one({"_id": listener})["skips"] >= 1  # the stats followed in the same run

    # a new listener after five events: a personal list of their own (not the cold-start list), nothing heard
    fresh = recommendations_for(db, "newcomer")
    assert fresh and {r["user_id"] for r in fresh} == {"newcomer"}
    assert not set(newcomer_picks) & {r["recommended_episode_id"] for r in fresh}
    assert {r["strategy"] for r in fresh} <= {"ranker", "als", "hybrid"}
    metadata = result.asset_materializations_for_node("fresh_recommendations")[0].metadata
    assert metadata["listeners_refreshed"].value == 2
    cursor = db[CURSORS].find_one({"_id": STREAM})

    # nothing new: a second run refreshes nobody and leaves the documents alone
    again = materialize([serving_assets.fresh_recommendations], resources=resources, instance=graph)
    assert (
        again.asset_materializations_for_node("fresh_recommendations")[0]
        .metadata["listeners_refreshed"]
        .value
        == 0
    )
    assert db[USER_RECOMMENDATIONS].find_one({"_id": listener}) == after
    assert db[CURSORS].find_one({"_id": STREAM})["version"] == cursor["version"]
    client.close()


def test_an_older_list_never_replaces_a_newer_one(db):
    newer = {"_id": "u", "as_of": 7, "episode_ids": ["new"], "model_version": "v", "generated_at": END}
    assert write_newer(db, [newer]) == (1, 0)
    assert write_newer(db, [{**newer, "as_of": 5, "episode_ids": ["old"]}]) == (0, 1)
    assert db[USER_RECOMMENDATIONS].find_one({"_id": "u"})["episode_ids"] == ["new"]
    assert write_newer(db, [{**newer, "as_of": 7, "episode_ids": ["same version, rebuilt"]}]) == (1, 0)
    assert write_newer(db, [{**newer, "as_of": 9, "episode_ids": ["newest"]}]) == (1, 0)
    assert db[USER_RECOMMENDATIONS].find_one({"_id": "u"})["episode_ids"] == ["newest"]
