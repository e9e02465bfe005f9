"""The Dagster layer of ingestion: the sensor's decisions and run keys, the asset and its checks."""

from datetime import UTC, datetime

from dagster import (
    AssetCheckSeverity,
    DagsterInstance,
    RunRequest,
    SkipReason,
    build_sensor_context,
    materialize,
)

from podrec_assets.definitions import defs
from podrec_assets.defs.ingestion.assets import user_event_tables
from podrec_assets.defs.ingestion.checks import QuarantineRateConfig, raw_user_events_checks
from podrec_assets.defs.ingestion.sensors import (
    ingest_run_key,
    positions_key,
    retry_wait_seconds,
    user_events_kafka_sensor,
)
from podrec_assets_tests.helpers import produce, v1_events


def evaluate_sensor(instance, kafka, delta):
    context = build_sensor_context(instance=instance, resources={"kafka": kafka, "delta": delta})
    return user_events_kafka_sensor(context)


def ingest_with_checks(kafka, delta, instance):
    """One ingestion run with every raw_user_events check, as the sensor's job runs them (a failed run returns)."""
    return materialize(
        [user_event_tables, *raw_user_events_checks],
        resources={"kafka": kafka, "delta": delta},
        instance=instance,
        raise_on_error=False,
    )


def check_named(result, name: str):
    return next(e for e in result.get_asset_check_evaluations() if e.check_name == name)


def test_definitions_load():
    graph = defs.resolve_asset_graph()
    assert {k.to_user_string() for k in graph.get_all_asset_keys()} >= {
        "raw_user_events",
        "quarantined_events",
    }
    assert defs.resolve_sensor_def("user_events_kafka_sensor")


def test_sensor_skips_without_new_data_and_requests_stable_runs_with_it(kafka, delta):
    with DagsterInstance.ephemeral() as instance:
        result = evaluate_sensor(instance, kafka, delta)
        assert isinstance(result, SkipReason) and "no messages beyond" in result.skip_message

        produce(kafka, v1_events(40))
        first, second = evaluate_sensor(instance, kafka, delta), evaluate_sensor(instance, kafka, delta)
        assert isinstance(first, RunRequest) and first.run_key == second.run_key
        assert first.run_key == f"{kafka.topic}@0:start,1:start,2:start"

        materialize([user_event_tables], resources={"kafka": kafka, "delta": delta}, instance=instance)
        after = evaluate_sensor(instance, kafka, delta)
        assert isinstance(after, SkipReason)  # caught up: positions moved, nothing pending

        produce(kafka, v1_events(5, prefix="more"))
        later = evaluate_sensor(instance, kafka, delta)
        assert (
            isinstance(later, RunRequest) and later.run_key != first.run_key and "start" not in later.run_key
        )


def test_run_keys_and_retry_backoff():
    positions = {1: 10, 0: None}
    assert positions_key("t", positions) == "t@0:start,1:10"
    assert ingest_run_key("t", positions, 0) == "t@0:start,1:10"
    assert ingest_run_key("t", positions, 2) == "t@0:start,1:10#attempt3"
    assert (
        retry_wait_seconds(1)
        < retry_wait_seconds(2)
        < retry_wait_seconds(3)
        <= retry_wait_seconds(30)
        == 3600
    )


def test_materialization_reports_counts_and_checks_pass(kafka, delta):
    produce(kafka, v1_events(300) + [b"not json"])
    with DagsterInstance.ephemeral() as instance:
        result = ingest_with_checks(kafka, delta, instance)
        assert result.success
        metadata = result.asset_materializations_for_node("user_event_tables")[0].metadata
        assert metadata["events_accepted"].value == 300 and metadata["quarantined"].value == 1
        evaluations = result.get_asset_check_evaluations()
        assert len(evaluations) == len(raw_user_events_checks) and all(e.passed for e in evaluations), [
            (e.check_name, e.metadata) for e in evaluations if not e.passed
        ]


def test_quarantine_rate_check_blocks_when_a_producer_sends_garbage(kafka, delta):
    produce(kafka, v1_events(20) + [b"garbage"] * 20)
    with DagsterInstance.ephemeral() as instance:
        result = ingest_with_checks(kafka, delta, instance)
        rate = check_named(result, "quarantine_rate")
        assert not rate.passed and rate.metadata["rate"].value == 0.5
        assert rate.metadata["max_rate"].value == QuarantineRateConfig().max_rate


def test_events_before_the_first_engagement_day_are_flagged_not_silently_dropped(kafka, delta, monkeypatch):
    """An event dated before PODREC_FIRST_DAY is stored, but no daily_engagement partition will ever hold it: the
    warning check names how many there are and the earliest day."""
    monkeypatch.setenv("PODREC_FIRST_DAY", "2025-01-01")
    old = v1_events(3, prefix="old", start=datetime(2024, 12, 30, 12, tzinfo=UTC))
    produce(kafka, old + v1_events(4, prefix="new"))
    with DagsterInstance.ephemeral() as instance:
        result = ingest_with_checks(kafka, delta, instance)
        assert result.success  # a warning, not a failed run: the events are kept
        check = check_named(result, "events_within_engagement_days")
        assert not check.passed and check.severity == AssetCheckSeverity.WARN
        assert check.metadata["events_on_those_days"].value == 3
        assert check.metadata["earliest"].value == "2024-12-30"
        assert check.metadata["days_before_first_day"].value == 1
