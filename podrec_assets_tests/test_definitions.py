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
        "recommendation_impressions",
        "online_hit_rate",
    }
    # everything that keeps the product current runs under `make dev` without a click
    for sensor in (
        "user_events_kafka_sensor",
        "late_events_sensor",
        "automation_sensor",
        "drift_retrain_sensor",
    ):
        assert defs.resolve_sensor_def(sensor).default_status == DefaultSensorStatus.RUNNING, sensor
    for schedule in ("daily_engagement_schedule", "als_training_schedule", "episode_catalog_schedule"):
        assert defs.resolve_schedule_def(schedule).default_status == DefaultScheduleStatus.RUNNING, schedule
    # one ingestion run carries new events to the stats and the listeners' lists (the freshness budget)
    ingestion = defs.resolve_job_def("ingest_user_events")
    selected = {k.to_user_string() for k in ingestion.asset_layer.selected_asset_keys}
    assert {"raw_user_events", "user_stats", "fresh_recommendations"} <= selected


def _windows(policy) -> dict | None:
    """A freshness policy as hours (fail, warn), or None."""
    if policy is None:
        return None
    return {name: getattr(policy, name).to_timedelta().total_seconds() / 3600
            for name in ("fail_window", "warn_window") if getattr(policy, name, None) is not None}  # fmt: skip


def describe(definitions: Definitions) -> dict:
    """The whole graph as plain data: a change to it shows up as a reviewable diff of the snapshot."""
    graph = definitions.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        condition = node.automation_condition
        assets[key.to_user_string()] = {
            "deps": sorted(k.to_user_string() for k in node.parent_keys),
            "group": node.group_name,
            "kinds": sorted(node.kinds),
            "pools": sorted(node.pools or ()),
            "partitioned": node.partitions_def is not None,
            "automation": condition.get_label() or condition.name if condition else None,
            "freshness": _windows(node.freshness_policy),
            "checks": {
                check.name: "blocking" if graph.get_check_spec(check).blocking else "non-blocking"
                for check in sorted(graph.get_check_keys_for_assets({key}), key=lambda c: c.name)
            },
        }
    jobs = {
        job.name: sorted(k.to_user_string() for k in job.asset_layer.selected_asset_keys)
        for job in (definitions.resolve_job_def(j.name) for j in definitions.jobs or ())
    }
    schedules = {
        s.name: {"cron": s.cron_schedule, "job": s.job_name, "default_status": s.default_status.value}
        for s in (definitions.resolve_schedule_def(s.name) for s in definitions.schedules or ())
    }
    sensors = {
        s.name: {"default_status": s.default_status.value, "interval_s": s.minimum_interval_seconds}
        for s in (definitions.resolve_sensor_def(s.name) for s in definitions.sensors or ())
    }
    return {"assets": assets, "jobs": jobs, "schedules": schedules, "sensors": sensors}


def test_the_graph_matches_its_snapshot(snapshot):
    """Keys, deps, groups, kinds, pools, automation, checks (and which block), jobs, schedules, sensors: update with
    `pytest podrec_assets_tests/test_definitions.py --snapshot-update` and review the diff."""
    assert describe(defs) == snapshot
