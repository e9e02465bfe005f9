"""What keeps `daily_engagement` current: a schedule for each day that closes, a sensor for late events (and for
the later days a late rating makes stale)."""

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

from podrec_assets.defs.engagement.assets import DAILY_PARTITIONS, LATER_DAYS_TO_REBUILD
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


def event_dates(record, key: str = "event_dates") -> list[str]:
    """The days an ingestion run added events to (it records them as `event_dates` metadata), or the days a
    daily_engagement run found stale (`LATER_DAYS_TO_REBUILD`)."""
    materialization = record.asset_materialization
    entry = materialization.metadata.get(key) if materialization else None
    return list(entry.value) if entry else []


def _cursors(cursor: str | None) -> tuple[int | None, int | None]:
    """(last ingestion, last daily_engagement materialization) read; a cursor from before the second is one id."""
    if not cursor:
        return None, None
    ingestion, _, engagement = cursor.partition(",")
    return int(ingestion), int(engagement or ingestion)


def _records(context: SensorEvaluationContext, asset: str, after: int | None):
    return context.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey(asset), after_storage_id=after), limit=1000, ascending=True
    ).records


@sensor(
    job=daily_engagement_job,
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.RUNNING,
    description="Re-materializes each closed day of daily_engagement that an ingestion run added events to "
    "(late events), reading the event_dates that raw_user_events materializations record, and each later day a "
    "daily_engagement run found stale (a late rating changed what that day's rating replaces).",
)
def late_events_sensor(context: SensorEvaluationContext):
    after_ingestion, after_engagement = _cursors(context.cursor)
    ingestions = _records(context, RAW_USER_EVENTS, after_ingestion)
    engagements = _records(context, DAILY_ENGAGEMENT, after_engagement)
    if not ingestions and not engagements:
        return SkipReason("no new ingestion or daily_engagement run since the last tick")
    last_touched: dict[str, int] = {}  # day → the newest ingestion (or engagement run) that made it stale
    for record in ingestions:
        for day in event_dates(record):
            last_touched[day] = record.storage_id
    for record in engagements:
        for day in event_dates(record, LATER_DAYS_TO_REBUILD):
            last_touched[day] = max(last_touched.get(day, 0), record.storage_id)
    last_ingestion = ingestions[-1].storage_id if ingestions else after_ingestion
    last_engagement = engagements[-1].storage_id if engagements else after_engagement
    closed = set(DAILY_PARTITIONS.get_partition_keys())  # today is not a partition until it closes
    stale = [
        day for day in sorted(set(last_touched) & closed) if not _built_after(context, day, last_touched[day])
    ]
    # The run key names what it answers: the same ingestion or run never triggers the same day twice.
    requests = [RunRequest(run_key=f"{day}@{last_touched[day]}", partition_key=day) for day in stale]
    return SensorResult(run_requests=requests, cursor=f"{last_ingestion or 0},{last_engagement or 0}")


def _built_after(context: SensorEvaluationContext, day: str, ingestion_storage_id: int) -> bool:
    """Whether daily_engagement's partition `day` was materialized after that ingestion (a backfill, the nightly
    schedule, `make demo`): then it already holds the day's late events and needs no rerun."""
    latest = context.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey(DAILY_ENGAGEMENT), asset_partitions=[day]), limit=1
    ).records
    return bool(latest) and latest[0].storage_id > ingestion_storage_id
