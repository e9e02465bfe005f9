"""The code location the UI loads: every asset, sensor and schedule is there and the whole thing validates."""

from dagster import DefaultScheduleStatus, DefaultSensorStatus, Definitions

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
        "ranker_model",
        "episodes",
        "transcripts",
        "transcript_embeddings",
        "episode_similarity",
        "final_recommendations",
        "published_recommendations",
        "fresh_recommendations",
        "user_stats",
        "user_affinities",
        "global_stats",
    }
    # everything that keeps the product current runs under `make dev` without a click
    for sensor in ("user_events_kafka_sensor", "late_events_sensor", "automation_sensor"):
        assert defs.resolve_sensor_def(sensor).default_status == DefaultSensorStatus.RUNNING, sensor
    for schedule in ("daily_engagement_schedule", "als_training_schedule", "episode_catalog_schedule"):
        assert defs.resolve_schedule_def(schedule).default_status == DefaultScheduleStatus.RUNNING, schedule
    # one ingestion run carries new events to the stats and the listeners' lists (the freshness budget)
    ingestion = defs.resolve_job_def("ingest_user_events")
    selected = {k.to_user_string() for k in ingestion.asset_layer.selected_asset_keys}
    assert {"raw_user_events", "user_stats", "fresh_recommendations"} <= selected
