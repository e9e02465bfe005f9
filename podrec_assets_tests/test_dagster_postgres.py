"""The production instance config (deploy/dagster.yaml: run, event-log and schedule storage in Postgres) on a real
PostgreSQL server started for the session: the Kafka ingestion and a partitioned run are recorded there."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from dagster import (
    AssetCheckKey,
    AssetKey,
    AssetPartitionStatus,
    DagsterInstance,
    DagsterRunStatus,
    materialize,
)
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

from podrec_assets.defs.engagement.assets import DAILY_PARTITIONS, daily_engagement
from podrec_assets.defs.ingestion.assets import user_event_tables
from podrec_assets.defs.ingestion.checks import raw_user_events_checks
from podrec_assets.lib.ingestion.contract import make_v1_event
from podrec_assets.names import DAILY_ENGAGEMENT, RAW_USER_EVENTS
from podrec_assets_tests.conftest import free_port
from podrec_assets_tests.helpers import check_outcomes, produce, quarantine, table
from podrec_assets_tests.postgres_server import PostgresMissing, postgres_server, server_bin_dir

DEPLOY_CONFIG = Path(__file__).resolve().parents[1] / "deploy" / "dagster.yaml"
DAY = date(2026, 3, 14)


@pytest.fixture(scope="session")
def postgres():
    try:
        server_bin_dir()
    except PostgresMissing as error:  # CI installs it (.ci/run): missing means a broken machine, not a skip
        pytest.fail(str(error), pytrace=False)
    with postgres_server(free_port()) as server:
        yield server


@pytest.fixture
def home(postgres, tmp_path, monkeypatch) -> Path:
    """A DAGSTER_HOME holding the shipped deploy/dagster.yaml (as the image does), its variables set to the server."""
    for name, value in {"HOST": postgres.host, "PORT": str(postgres.port), "DB": postgres.db_name,
                        "USER": postgres.user, "PASSWORD": postgres.password}.items():  # fmt: skip
        monkeypatch.setenv(f"DAGSTER_POSTGRES_{name}", value)
    folder = tmp_path / "dagster"
    folder.mkdir()
    shutil.copy(DEPLOY_CONFIG, folder / "dagster.yaml")
    return folder


def listening(n: int) -> list[dict]:
    """n valid events on DAY (every content event type the engagement weights know)."""
    start = datetime.combine(DAY, datetime.min.time(), UTC) + timedelta(hours=8)
    return [
        make_v1_event(event_id=f"pg-{i}", user_id=f"u-{i % 7}", episode_id=f"ep-{i % 11}",
                      event_type=("play", "like", "complete", "skip")[i % 4], ts=start + timedelta(minutes=i))
        for i in range(n)
    ]  # fmt: skip


def test_ingestion_and_a_partitioned_run_are_recorded_in_postgres(
    home, postgres, kafka, delta, pyspark_resource
):
    resources = {"kafka": kafka, "delta": delta, "pyspark": pyspark_resource}
    with DagsterInstance.from_config(str(home)) as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert isinstance(instance.schedule_storage, PostgresScheduleStorage)

        # (1) the Kafka ingestion, with its checks (which read the last materialization back from the instance)
        produce(kafka, [*listening(60), b"not json"])
        ingest = materialize(
            [user_event_tables, *raw_user_events_checks], resources=resources, instance=instance
        )
        assert ingest.success
        assert table(delta).num_rows == 60 and quarantine(delta).num_rows == 1
        outcomes = check_outcomes(ingest, instance)
        assert len(outcomes) == len(raw_user_events_checks) and all(outcomes.values()), outcomes

        # (2) one day of daily_engagement, on Spark, from the rows just ingested
        day = materialize([daily_engagement], partition_key=DAY.isoformat(), resources=resources,
                          instance=instance)  # fmt: skip
        assert day.success
        day_outcomes = check_outcomes(day, instance)
        assert len(day_outcomes) == 3 and all(day_outcomes.values()), day_outcomes

    # A second instance from the same config (as the webserver or the daemon would be) reads it all back.
    with DagsterInstance.from_config(str(home)) as reader:
        for run in (ingest, day):
            assert reader.get_run_by_id(run.run_id).status == DagsterRunStatus.SUCCESS
        raw = reader.get_latest_materialization_event(AssetKey(RAW_USER_EVENTS))
        assert raw is not None and raw.run_id == ingest.run_id
        assert raw.asset_materialization.metadata["events_accepted"].value == 60
        check_keys = [AssetCheckKey(AssetKey(RAW_USER_EVENTS), name) for name in outcomes]
        executions = reader.event_log_storage.get_latest_asset_check_execution_by_key(check_keys)
        assert {key.name: record.run_id for key, record in executions.items()} == dict.fromkeys(
            outcomes, ingest.run_id
        )

        engagement = reader.get_latest_materialization_event(AssetKey(DAILY_ENGAGEMENT))
        assert engagement is not None and engagement.run_id == day.run_id
        assert engagement.asset_materialization.partition == DAY.isoformat()
        assert engagement.asset_materialization.metadata["content_events"].value == 60
        assert reader.get_materialized_partitions(AssetKey(DAILY_ENGAGEMENT)) == {DAY.isoformat()}
        other = (DAY + timedelta(days=1)).isoformat()
        status = reader.get_status_by_partition(
            AssetKey(DAILY_ENGAGEMENT), [DAY.isoformat(), other], DAILY_PARTITIONS
        )
        assert status == {DAY.isoformat(): AssetPartitionStatus.MATERIALIZED, other: None}

    # and the rows are in that Postgres database's own tables, not in a file beside DAGSTER_HOME
    connection = postgres.connect()
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT run_id, status FROM runs WHERE run_id IN %s", ((ingest.run_id, day.run_id),)
            )
            assert dict(cursor.fetchall()) == {ingest.run_id: "SUCCESS", day.run_id: "SUCCESS"}
            cursor.execute("SELECT DISTINCT asset_key FROM event_logs WHERE dagster_event_type = "
                           "'ASSET_MATERIALIZATION' AND run_id IN %s", ((ingest.run_id, day.run_id),))  # fmt: skip
            assert {row[0] for row in cursor.fetchall()} >= {
                AssetKey(RAW_USER_EVENTS).to_string(),
                AssetKey(DAILY_ENGAGEMENT).to_string(),
            }
    finally:
        connection.close()
    assert not list(home.glob("**/*.db"))  # no SQLite storage was created
