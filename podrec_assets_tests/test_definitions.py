"""The code location the UI loads: every asset, sensor and schedule is there and the whole thing validates."""

from dagster import Definitions

from podrec_assets.definitions import defs


def test_definitions_are_loadable_and_complete():
    Definitions.validate_loadable(defs)
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert keys == {
        "raw_user_events",
        "quarantined_events",
        "daily_engagement",
        "als_model",
        "als_recommendations",
        "episodes",
        "transcripts",
        "transcript_embeddings",
        "episode_similarity",
        "final_recommendations",
        "published_recommendations",
        "user_stats",
        "user_affinities",
        "global_stats",
    }
    for sensor in ("user_events_kafka_sensor", "late_events_sensor"):
        assert defs.resolve_sensor_def(sensor)
    for schedule in ("daily_engagement_schedule", "als_training_schedule", "episode_catalog_schedule"):
        assert defs.resolve_schedule_def(schedule)
