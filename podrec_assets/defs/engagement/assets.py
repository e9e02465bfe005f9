"""`daily_engagement`: one Delta partition per day, computed in Spark from that day of `raw_user_events`."""

import warnings
from datetime import timedelta

from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    BackfillPolicy,
    BetaWarning,
    Config,
    DailyPartitionsDefinition,
    MaterializeResult,
    MetadataValue,
    asset,
)
from dagster_pyspark import PySparkResource
from pydantic import Field

from podrec_assets.defs.resources import DeltaLakeResource
from podrec_assets.lib.engagement.daily import (
    aggregate_daily_engagement,
    content_event_counts,
    count_mismatches,
    days_between,
    engagement_event_counts,
    null_key_rows,
    raw_events_for_days,
    read_days,
    to_arrow_rows,
    weight_bound_violations,
)
from podrec_assets.lib.engagement.weights import EventWeights
from podrec_assets.lib.lakehouse import delta_version, replace_partitions
from podrec_assets.lib.settings import first_partition_day
from podrec_assets.names import DAILY_ENGAGEMENT, RAW_USER_EVENTS, SPARK_POOL

# single-run backfills are stable in practice but still flagged beta; the warning would repeat on every CLI call
warnings.filterwarnings("ignore", category=BetaWarning, message=".*backfill_policy.*")

# A day is a partition once it has closed (UTC); the schedule materializes it just after midnight.
DAILY_PARTITIONS = DailyPartitionsDefinition(start_date=first_partition_day(), timezone="UTC")


class EventWeightsConfig(EventWeights, Config):
    """The plain `EventWeights` (lib/engagement/weights.py) as Dagster run config."""


class DailyEngagementConfig(Config):
    weights: EventWeightsConfig = Field(
        default_factory=EventWeightsConfig, description="event weights (lib/engagement/weights.py)"
    )


@asset(
    name=DAILY_ENGAGEMENT,
    partitions_def=DAILY_PARTITIONS,
    # A backfill of many days is one run: one Spark job over all of them, one Delta commit.
    backfill_policy=BackfillPolicy.single_run(),
    deps=[RAW_USER_EVENTS],
    pool=SPARK_POOL,
    description="Per user, episode and UTC day: the sum of event weights (engagement/weights.py), the number of "
    "content events and the latest event time. Negative sums (skips, low ratings) are kept.",
    check_specs=[
        AssetCheckSpec(
            "counts_match_raw_events",
            asset=DAILY_ENGAGEMENT,
            blocking=True,
            description="each day accounts for exactly that day's content events in raw_user_events",
        ),
        AssetCheckSpec("no_null_keys", asset=DAILY_ENGAGEMENT, blocking=True),
        AssetCheckSpec(
            "weights_within_bounds",
            asset=DAILY_ENGAGEMENT,
            description="every weight sum lies within event_count × the bounds the weights imply",
        ),
    ],
)
def daily_engagement(
    context: AssetExecutionContext,
    config: DailyEngagementConfig,
    pyspark: PySparkResource,
    delta: DeltaLakeResource,
):
    window = context.partition_time_window
    first, last = window.start.date(), (window.end - timedelta(days=1)).date()
    days = days_between(first, last)
    raw_uri, uri, options = (
        delta.table_uri(RAW_USER_EVENTS),
        delta.table_uri(DAILY_ENGAGEMENT),
        delta.storage_options(),
    )
    # Pin one snapshot of the events: ingestion may commit more while this runs, and the checks must see what
    # Spark saw.
    raw_version = delta_version(raw_uri, options)

    events = raw_events_for_days(pyspark.spark_session, raw_uri, first, last, raw_version, options)
    rows = to_arrow_rows(aggregate_daily_engagement(events, config.weights))
    version = replace_partitions(uri, rows, "event_date", days, options)
    context.log.info(f"{len(days)} day(s) {first}..{last}: {rows.num_rows} rows, Delta version {version}")

    # Checks read back what was committed and the source with delta-rs, independently of the Spark computation.
    written = read_days(uri, first, last, None, version, options)
    raw = read_days(raw_uri, first, last, ["event_date", "episode_id"], raw_version, options)
    expected = content_event_counts(raw) if raw is not None else {}
    mismatches = count_mismatches(days, expected, engagement_event_counts(written))
    null_keys = null_key_rows(written)
    out_of_bounds = weight_bound_violations(written, config.weights)
    low, high = config.weights.event_bounds()

    yield MaterializeResult(
        metadata={
            "days": MetadataValue.json([first.isoformat(), last.isoformat()]),
            "rows": rows.num_rows,
            "content_events": sum(expected.values()),
            "users": len(set(rows.column("user_id").to_pylist())),
            "episodes": len(set(rows.column("episode_id").to_pylist())),
            "delta_version": version,
            "raw_user_events_version": raw_version if raw_version is not None else -1,
            "weights": MetadataValue.json(config.weights.model_dump()),
            "table_uri": MetadataValue.path(uri),
        },
        check_results=[
            AssetCheckResult(
                check_name="counts_match_raw_events",
                passed=not mismatches,
                metadata={"mismatched_days": MetadataValue.json(mismatches), "days_checked": len(days)},
            ),
            AssetCheckResult(
                check_name="no_null_keys", passed=null_keys == 0, metadata={"null_keys": null_keys}
            ),
            AssetCheckResult(
                check_name="weights_within_bounds",
                passed=out_of_bounds == 0,
                metadata={
                    "rows_out_of_bounds": out_of_bounds,
                    "per_event_bounds": MetadataValue.json([low, high]),
                },
            ),
        ],
    )
