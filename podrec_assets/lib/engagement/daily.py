"""`daily_engagement`: per (user, episode, day) the sum of event weights, the number of events and the latest event
time (seed 000), computed in Spark from that day's partition of `raw_user_events` only."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema

from podrec_assets.lib.engagement.weights import EventWeights
from podrec_assets.lib.ingestion.tables import RAW_USER_EVENTS_SCHEMA
from podrec_assets.lib.lakehouse import date_filter, read_delta, read_table

DAILY_ENGAGEMENT_SCHEMA = pa.schema(
    [
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("episode_id", pa.string(), nullable=False),
        pa.field("event_date", pa.date32(), nullable=False),  # Delta partition column
        pa.field("weight_sum", pa.float64(), nullable=False),
        pa.field("event_count", pa.int64(), nullable=False),
        pa.field("last_ts", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
)

# The same schemas for Spark (Spark prunes the raw columns the aggregation does not use).
RAW_USER_EVENTS_SPARK_SCHEMA = from_arrow_schema(RAW_USER_EVENTS_SCHEMA)
DAILY_ENGAGEMENT_SPARK_SCHEMA = from_arrow_schema(DAILY_ENGAGEMENT_SCHEMA)

# Sums are rounded so that re-computing a day gives bit-identical rows whatever order Spark adds them in.
WEIGHT_DECIMALS = 6


def raw_events_for_days(
    spark: SparkSession,
    raw_uri: str,
    first: date,
    last: date,
    version: int | None = None,
    storage_options=None,
) -> DataFrame:
    """Only the Delta partitions of those days are read: a new day costs what it holds, not what history holds."""
    filters = date_filter("event_date", first, last)
    return read_delta(spark, raw_uri, RAW_USER_EVENTS_SPARK_SCHEMA, filters, storage_options, version)


def read_days(
    uri: str, first: date, last: date, columns: list[str], version: int | None = None, storage_options=None
):
    """Those days of a date-partitioned Delta table as Arrow, read with delta-rs (independently of Spark)."""
    return read_table(uri, columns, storage_options, date_filter("event_date", first, last), version)


def weight_column(weights: EventWeights) -> Column:
    """The weight of each row of `raw_user_events`, as a Spark column expression (`EventWeights.of_events` is the
    same table for the driver; a test holds them equal)."""
    event = F.col("event_type")
    listened = F.coalesce(F.col("played_pct"), F.lit(0.0))
    return (
        F.when(event == "like", F.lit(weights.like))
        .when(event == "unlike", F.lit(weights.unlike))
        .when(event == "complete", F.lit(weights.complete))
        .when(event == "rate", F.col("rating").cast("double") - F.lit(weights.rating_neutral))
        .when(event == "pause", listened * F.lit(weights.pause_per_listened))
        .when(
            event == "abandon", listened * F.lit(weights.abandon_per_listened) - F.lit(weights.abandon_penalty)
        )
        .when(event == "skip", F.lit(weights.skip))
        .when(event == "play", F.lit(weights.play))
        .when(event == "search_click", F.lit(weights.search_click))
        .when(event == "view", F.lit(weights.view))
        .when(event == "resume", F.lit(weights.resume))
        .otherwise(F.lit(0.0))
    )



def aggregate_daily_engagement(events: DataFrame, weights: EventWeights) -> DataFrame:
    """Content events (those naming an episode) grouped by user, episode and day."""
    return (
        events.where(F.col("episode_id").isNotNull())
        .withColumn("weight", weight_column(weights))
        .groupBy("user_id", "episode_id", "event_date")
        .agg(
            F.round(F.sum("weight"), WEIGHT_DECIMALS).alias("weight_sum"),
            F.count(F.lit(1)).alias("event_count"),
            F.max("ts").alias("last_ts"),
        )
    )


def to_arrow_rows(frame: DataFrame) -> pa.Table:
    """The aggregate as Arrow in the table's schema, in a stable order (identical files for identical input)."""
    table = frame.toArrow()
    if table.num_rows == 0:
        return DAILY_ENGAGEMENT_SCHEMA.empty_table()
    table = table.select(DAILY_ENGAGEMENT_SCHEMA.names).cast(DAILY_ENGAGEMENT_SCHEMA)
    return table.sort_by([("event_date", "ascending"), ("user_id", "ascending"), ("episode_id", "ascending")])


def days_between(first: date, last: date) -> list[date]:
    return [date.fromordinal(n) for n in range(first.toordinal(), last.toordinal() + 1)]


def _per_day(table: pa.Table, column: str, aggregation: str) -> dict[date, int]:
    grouped = table.group_by("event_date").aggregate([(column, aggregation)])
    values = grouped.column(f"{column}_{aggregation}").to_pylist()
    return dict(zip(grouped.column("event_date").to_pylist(), values, strict=True))


def content_event_counts(raw: pa.Table) -> dict[date, int]:
    """Per day, the number of events that name an episode (what engagement must account for)."""
    return _per_day(raw.filter(pc.is_valid(raw.column("episode_id"))), "episode_id", "count")


def engagement_event_counts(engagement: pa.Table) -> dict[date, int]:
    return _per_day(engagement, "event_count", "sum")


def count_mismatches(
    days: Sequence[date], expected: dict[date, int], actual: dict[date, int]
) -> dict[str, dict]:
    """Days whose engagement does not account for exactly the day's content events."""
    return {
        d.isoformat(): {"raw_content_events": expected.get(d, 0), "engagement_events": actual.get(d, 0)}
        for d in days
        if expected.get(d, 0) != actual.get(d, 0)
    }


def weight_bound_violations(engagement: pa.Table, weights: EventWeights) -> int:
    """Rows whose weight sum lies outside event_count × the per-event bounds the weights imply."""
    if engagement.num_rows == 0:
        return 0
    low, high = weights.event_bounds()
    count = engagement.column("event_count")
    total = engagement.column("weight_sum")
    tolerance = 10**-WEIGHT_DECIMALS
    below = pc.less(total, pc.subtract(pc.multiply(count, low), tolerance))
    above = pc.greater(total, pc.add(pc.multiply(count, high), tolerance))
    return pc.sum(pc.or_(below, above)).as_py() or 0


def null_key_rows(engagement: pa.Table) -> int:
    return sum(engagement.column(c).null_count for c in ("user_id", "episode_id", "event_date"))
