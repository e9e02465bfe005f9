"""What keeps `daily_engagement` current: a schedule for each day that closes, a sensor for late events."""

from dagster import (
    AssetKey,
    AssetRecordsFilter,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    build_schedule_from_partitioned_job,
    define_asset_job,
    sensor,
)

from podrec_assets.defs.engagement.assets import DAILY_PARTITIONS
from podrec_assets.names import DAILY_ENGAGEMENT, RAW_USER_EVENTS

daily_engagement_job = define_asset_job("daily_engagement_job", selection=[DAILY_ENGAGEMENT])

# 00:30 UTC: the day that just closed (ingestion has had half an hour to land its last events).
daily_engagement_schedule = build_schedule_from_partitioned_job(
    daily_engagement_job,
    name="daily_engagement_schedule",
    hour_of_day=0,
    minute_of_hour=30,
    default_status=DefaultScheduleStatus.RUNNING,
)


def event_dates(record) -> list[str]:
    """The days an ingestion run added events to (it records them as `event_dates` metadata)."""
    materialization = record.asset_materialization
    entry = materialization.metadata.get("event_dates") if materialization else None
    return list(entry.value) if entry else []


@sensor(
    job=daily_engagement_job,
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.RUNNING,
    description="Re-materializes each closed day of daily_engagement that an ingestion run added events to "
    "(late events), reading the event_dates that raw_user_events materializations record.",
)
def late_events_sensor(context: SensorEvaluationContext):
    after = int(context.cursor) if context.cursor else None
    result = context.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey(RAW_USER_EVENTS), after_storage_id=after),
        limit=1000,
        ascending=True,
    )
    if not result.records:
        return SkipReason("no new ingestion since the last tick")
    last_touched: dict[str, int] = {}  # day → the newest ingestion that added events to it
    for record in result.records:
        for day in event_dates(record):
            last_touched[day] = record.storage_id
    last_storage_id = result.records[-1].storage_id
    closed = set(DAILY_PARTITIONS.get_partition_keys())  # today is not a partition until it closes
    stale = [
        day for day in sorted(set(last_touched) & closed) if not _built_after(context, day, last_touched[day])
    ]
    # The run key names the ingestion it answers: the same ingestion never triggers the same day twice.
    requests = [RunRequest(run_key=f"{day}@{last_storage_id}", partition_key=day) for day in stale]
    return SensorResult(run_requests=requests, cursor=str(last_storage_id))


def _built_after(context: SensorEvaluationContext, day: str, ingestion_storage_id: int) -> bool:
    """Whether daily_engagement's partition `day` was materialized after that ingestion (a backfill, the nightly
    schedule, `make demo`): then it already holds the day's late events and needs no rerun."""
    latest = context.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey(DAILY_ENGAGEMENT), asset_partitions=[day]), limit=1
    ).records
    return bool(latest) and latest[0].storage_id > ingestion_storage_id
