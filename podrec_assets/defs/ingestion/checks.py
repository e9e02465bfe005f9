"""Data-quality checks on `raw_user_events`. The plain functions take Arrow tables; the checks wrap them."""

import pyarrow as pa
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetKey,
    Config,
    asset_check,
)
from deltalake import DeltaTable
from pydantic import Field

from podrec_assets.defs.resources import DeltaLakeResource
from podrec_assets.lib.ingestion.quality import (
    REQUIRED_KEYS,
    days_before,
    duplicate_event_ids,
    null_key_counts,
    schema_differences,
    unknown_event_types,
)
from podrec_assets.lib.settings import first_partition_day
from podrec_assets.names import RAW_USER_EVENTS


def _raw_table(delta: DeltaLakeResource) -> DeltaTable:
    return DeltaTable(delta.table_uri(RAW_USER_EVENTS), storage_options=delta.storage_options())


def _last_ingest_metadata(context: AssetCheckExecutionContext) -> dict:
    event = context.instance.get_latest_materialization_event(AssetKey(RAW_USER_EVENTS))
    if event is None or event.asset_materialization is None:
        return {}
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def _touched_dates_filter(context: AssetCheckExecutionContext):
    """Row checks look at the days the last run wrote to: the only rows that can have changed."""
    dates = _last_ingest_metadata(context).get("event_dates") or []
    return [("event_date", "in", list(dates))] if dates else None


@asset_check(
    asset=RAW_USER_EVENTS,
    name="schema_matches_contract",
    description="The Delta table has exactly the columns and types of the contract.",
)
def raw_user_events_schema(delta: DeltaLakeResource) -> AssetCheckResult:
    actual = pa.schema(_raw_table(delta).schema().to_arrow())
    problems = schema_differences(actual)
    return AssetCheckResult(passed=not problems, metadata={"problems": problems or "none"})


@asset_check(
    asset=RAW_USER_EVENTS,
    name="no_null_keys",
    description="No null event_id, user_id, type or ts; content events name an episode.",
)
def raw_user_events_no_null_keys(
    context: AssetCheckExecutionContext, delta: DeltaLakeResource
) -> AssetCheckResult:
    partitions = _touched_dates_filter(context)
    if partitions is None:
        return AssetCheckResult(passed=True, metadata={"rows_checked": 0, "note": "last run wrote no events"})
    events = _raw_table(delta).to_pyarrow_table(filters=partitions, columns=[*REQUIRED_KEYS, "episode_id"])
    nulls = null_key_counts(events)
    return AssetCheckResult(
        passed=not nulls, metadata={"rows_checked": events.num_rows, "nulls": nulls or "none"}
    )


@asset_check(
    asset=RAW_USER_EVENTS,
    name="unique_event_id",
    description="Every event_id appears once in the whole table.",
)
def raw_user_events_unique_event_id(delta: DeltaLakeResource) -> AssetCheckResult:
    ids = _raw_table(delta).to_pyarrow_table(columns=["event_id"])["event_id"]
    duplicates = duplicate_event_ids(ids)
    return AssetCheckResult(
        passed=duplicates == 0, metadata={"rows": len(ids), "duplicate_event_ids": duplicates}
    )


@asset_check(
    asset=RAW_USER_EVENTS,
    name="known_event_types",
    description="Every event_type is one of the contract's canonical types.",
)
def raw_user_events_known_event_types(
    context: AssetCheckExecutionContext, delta: DeltaLakeResource
) -> AssetCheckResult:
    partitions = _touched_dates_filter(context)
    if partitions is None:
        return AssetCheckResult(passed=True, metadata={"note": "last run wrote no events"})
    types = _raw_table(delta).to_pyarrow_table(filters=partitions, columns=["event_type"])["event_type"]
    unknown = unknown_event_types(types)
    return AssetCheckResult(passed=not unknown, metadata={"unknown_event_types": unknown or "none"})


class QuarantineRateConfig(Config):
    max_rate: float = Field(
        default=0.05, description="largest share of a run's messages that may be quarantined"
    )


@asset_check(
    asset=RAW_USER_EVENTS,
    name="quarantine_rate",
    blocking=True,
    description="Blocks downstream assets when the last ingestion run quarantined more than max_rate of its "
    "messages: a broken producer should stop training, not feed it.",
)
def raw_user_events_quarantine_rate(
    context: AssetCheckExecutionContext, config: QuarantineRateConfig
) -> AssetCheckResult:
    metadata = _last_ingest_metadata(context)
    messages, quarantined = int(metadata.get("messages_read", 0)), int(metadata.get("quarantined", 0))
    rate = quarantined / messages if messages else 0.0
    return AssetCheckResult(
        passed=rate <= config.max_rate,
        severity=AssetCheckSeverity.ERROR,
        metadata={
            "messages": messages,
            "quarantined": quarantined,
            "rate": rate,
            "max_rate": config.max_rate,
        },
    )


@asset_check(
    asset=RAW_USER_EVENTS,
    name="events_within_engagement_days",
    description="Warns when the last run wrote events dated before PODREC_FIRST_DAY: they are kept in "
    "raw_user_events but no daily_engagement partition covers them, so no model or list learns from them.",
)
def raw_user_events_within_engagement_days(
    context: AssetCheckExecutionContext, delta: DeltaLakeResource
) -> AssetCheckResult:
    first_day = first_partition_day()
    early = days_before(_last_ingest_metadata(context).get("event_dates") or [], first_day)
    events = 0
    if early:
        table = _raw_table(delta).to_pyarrow_table(
            filters=[("event_date", "in", early)], columns=["event_id"]
        )
        events = table.num_rows
    return AssetCheckResult(
        passed=not early,
        severity=AssetCheckSeverity.WARN,
        metadata={
            "first_day": first_day,
            "days_before_first_day": len(early),
            "events_on_those_days": events,
            "earliest": early[0] if early else "none",
            "remedy": "set PODREC_FIRST_DAY on or before the earliest day, reload, backfill daily_engagement",
        },
    )


raw_user_events_checks = [
    raw_user_events_schema,
    raw_user_events_no_null_keys,
    raw_user_events_unique_event_id,
    raw_user_events_known_event_types,
    raw_user_events_quarantine_rate,
    raw_user_events_within_engagement_days,
]
