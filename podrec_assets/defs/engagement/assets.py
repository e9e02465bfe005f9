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
    DAILY_ENGAGEMENT_SPARK_SCHEMA,
    aggregate_daily_engagement,
    content_event_counts,
    count_mismatches,
    days_between,
    earlier_ratings,
    engagement_event_counts,
    later_days_to_rebuild,
    newest_day,
    null_key_rows,
    raw_events_for_days,
    read_days,
    to_arrow_rows,
    weight_bound_violations,
)
from podrec_assets.lib.engagement.weights import EventWeights
from podrec_assets.lib.lakehouse import date_filter, delta_version, read_delta, replace_partitions
from podrec_assets.lib.settings import first_partition_day
from podrec_assets.names import DAILY_ENGAGEMENT, RAW_USER_EVENTS, SPARK_POOL

# single-run backfills are stable in practice but still flagged beta; the warning would repeat on every CLI call
warnings.filterwarnings("ignore", category=BetaWarning, message=".*backfill_policy.*")

# A day is a partition once it has closed (UTC); the schedule materializes it just after midnight.
DAILY_PARTITIONS = DailyPartitionsDefinition(start_date=first_partition_day(), timezone="UTC")
# Metadata naming later days whose sums a late rating made stale; late_events_sensor rebuilds them.
LATER_DAYS_TO_REBUILD = "later_days_to_rebuild"


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
    "content events and the latest event time. Negative sums (skips, low ratings) are kept. A re-rating weighs "
    "the difference to the rating it replaces, so summed over days only a pair's latest rating counts.",
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

    spark = pyspark.spark_session
    events = raw_events_for_days(spark, raw_uri, first, last, raw_version, options)
    since = DAILY_PARTITIONS.start.date()  # what a rating replaces is looked for from the first partition on
    earlier = earlier_ratings(spark, raw_uri, since, first, raw_version, options) if first > since else None
    rows = to_arrow_rows(aggregate_daily_engagement(events, config.weights, earlier))
    version = replace_partitions(uri, rows, "event_date", days, options)
    context.log.info(f"{len(days)} day(s) {first}..{last}: {rows.num_rows} rows, Delta version {version}")

    # A late rating on these days changes what the pair's next rating (on a later, built day) replaces.
    stale = []
    newest = newest_day(uri, version, options)
    if newest is not None and newest > last:
        after = last + timedelta(days=1)
        later = raw_events_for_days(spark, raw_uri, after, newest, raw_version, options)
        later_days = date_filter("event_date", after, newest)
        stored = read_delta(spark, uri, DAILY_ENGAGEMENT_SPARK_SCHEMA, later_days, options, version)
        stale = later_days_to_rebuild(events, earlier, later, stored, config.weights)
        if stale:
            context.log.info(f"later days to rebuild (a pair's next rating replaces another now): {stale}")

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
            LATER_DAYS_TO_REBUILD: MetadataValue.json([d.isoformat() for d in stale]),
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
