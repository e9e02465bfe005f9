"""`daily_engagement`: per (user, episode, day) the sum of event weights, the number of events and the latest event
time (seed 000), computed in Spark from that day's partition of `raw_user_events`, and the earlier days' ratings.

**Re-ratings.** A rating weighs its rating minus the one it replaces (weights.py), so a day that holds a re-rating
needs the pair's latest rating before that day: `earlier_ratings` reads the `rate` events of every earlier day
(from the first partition day: a rating before it is in no partition, so nothing may be replaced against it), and
`with_replaced_ratings` chains them. Summed over the days from the first, a pair's rating weights come to its
latest rating's. A rating that arrives late for an earlier day changes what the pair's next rating replaces: that
next day's stored sum is then stale, and `later_days_to_rebuild` finds it (docs/events.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable
from pyspark.sql import Column, DataFrame, SparkSession, Window
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
# What a rating's place in its pair's history needs (ts, then event_id, order a pair's ratings).
RATING_COLUMNS = ["user_id", "episode_id", "ts", "event_id", "rating"]


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


def is_rating() -> Column:
    return (F.col("event_type") == "rate") & F.col("rating").isNotNull() & F.col("episode_id").isNotNull()


def earlier_ratings(
    spark: SparkSession,
    raw_uri: str,
    since: date,
    before: date,
    version: int | None = None,
    storage_options=None,
) -> DataFrame:
    """The ratings of the days `since` .. `before` − 1, any of which a rating on `before` or later may replace. It
    reads every earlier partition (five columns, the `rate` filter pushed down to Parquet): the cost grows with the
    history's ratings, not with the day's."""
    events = raw_events_for_days(spark, raw_uri, since, before - timedelta(days=1), version, storage_options)
    return events.where(is_rating()).select(*RATING_COLUMNS)


def with_replaced_ratings(events: DataFrame, earlier: DataFrame | None = None) -> DataFrame:
    """`events` with `replaced_rating`: for each rating, the pair's latest earlier rating among `events` and
    `earlier` (by ts, then event_id); null for other events and for a pair's first rating."""
    rows = events.withColumn("_current", F.lit(True)).withColumn("_rating", is_rating())
    if earlier is not None:
        rated = rows.where(F.col("_rating")).select("user_id", "episode_id").distinct()
        before = earlier.join(rated, ["user_id", "episode_id"], "left_semi").select(*RATING_COLUMNS)
        before = before.withColumn("_current", F.lit(False)).withColumn("_rating", F.lit(True))
        rows = rows.unionByName(before, allowMissingColumns=True)
    chain = Window.partitionBy("user_id", "episode_id", "_rating").orderBy("ts", "event_id")
    replaced = F.when(F.col("_rating"), F.lag("rating").over(chain))
    return rows.withColumn("replaced_rating", replaced).where(F.col("_current")).drop("_current", "_rating")


def read_days(
    uri: str, first: date, last: date, columns: list[str], version: int | None = None, storage_options=None
):
    """Those days of a date-partitioned Delta table as Arrow, read with delta-rs (independently of Spark)."""
    return read_table(uri, columns, storage_options, date_filter("event_date", first, last), version)


def weight_column(weights: EventWeights) -> Column:
    """The weight of each row of `raw_user_events` with `replaced_rating` (`with_replaced_ratings`), as a Spark
    column expression (`EventWeights.of_events` is the same table for the driver; a test holds them equal)."""
    event = F.col("event_type")
    listened = F.coalesce(F.col("played_pct"), F.lit(0.0))
    return (
        F.when(event == "like", F.lit(weights.like))
        .when(event == "unlike", F.lit(weights.unlike))
        .when(event == "complete", F.lit(weights.complete))
        .when(
            event == "rate",
            F.col("rating").cast("double")
            - F.coalesce(F.col("replaced_rating").cast("double"), F.lit(weights.rating_neutral)),
        )
        .when(event == "pause", listened * F.lit(weights.pause_per_listened))
        .when(
            event == "abandon",
            listened * F.lit(weights.abandon_per_listened) - F.lit(weights.abandon_penalty),
        )
        .when(event == "skip", F.lit(weights.skip))
        .when(event == "play", F.lit(weights.play))
        .when(event == "search_click", F.lit(weights.search_click))
        .when(event == "view", F.lit(weights.view))
        .when(event == "resume", F.lit(weights.resume))
        .otherwise(F.lit(0.0))
    )


def aggregate_daily_engagement(
    events: DataFrame, weights: EventWeights, earlier: DataFrame | None = None
) -> DataFrame:
    """Content events (those naming an episode) grouped by user, episode and day; `earlier` holds the ratings of
    the days before `events`' (`earlier_ratings`), which the days' ratings may replace."""
    return (
        with_replaced_ratings(events.where(F.col("episode_id").isNotNull()), earlier)
        .withColumn("weight", weight_column(weights))
        .groupBy("user_id", "episode_id", "event_date")
        .agg(
            F.round(F.sum("weight"), WEIGHT_DECIMALS).alias("weight_sum"),
            F.count(F.lit(1)).alias("event_count"),
            F.max("ts").alias("last_ts"),
        )
    )


def later_days_to_rebuild(
    events: DataFrame,
    earlier: DataFrame | None,
    later_events: DataFrame,
    later_stored: DataFrame,
    weights: EventWeights,
) -> list[date]:
    """Days after `events`' whose stored rows a rating in `events` has made stale.

    For each pair rated in `events` (the days just computed), its next later day with a rating is computed again
    (that pair's rows only) against the ratings up to then, and compared with what `daily_engagement` holds
    (`later_stored`); `later_events` are the raw events of the days after. Only the next day can change: the days
    after it replace ratings it still ends with. A nightly run has no later days, so this is for late ratings."""
    rated = events.where(is_rating())
    pairs = rated.select("user_id", "episode_id").distinct()
    next_days = (
        later_events.where(is_rating())
        .join(pairs, ["user_id", "episode_id"], "left_semi")
        .groupBy("user_id", "episode_id")
        .agg(F.min("event_date").alias("event_date"))
    )
    next_events = later_events.join(next_days, ["user_id", "episode_id", "event_date"], "left_semi")
    chain = rated.select(*RATING_COLUMNS)
    expected = aggregate_daily_engagement(
        next_events, weights, chain if earlier is None else chain.union(earlier)
    )
    stored = later_stored.select("user_id", "episode_id", "event_date", F.col("weight_sum").alias("stored"))
    differs = F.col("stored").isNull() | (F.abs(F.col("weight_sum") - F.col("stored")) > 10**-WEIGHT_DECIMALS)
    stale = expected.join(stored, ["user_id", "episode_id", "event_date"], "left").where(differs)
    return sorted(row["event_date"] for row in stale.select("event_date").distinct().collect())


def newest_day(uri: str, version: int | None = None, storage_options=None) -> date | None:
    """The newest `event_date` partition of a table (from the Delta log), or None."""
    if not DeltaTable.is_deltatable(uri, storage_options=storage_options):
        return None
    partitions = DeltaTable(uri, version=version, storage_options=storage_options).partitions()
    days = [p["event_date"] for p in partitions if p.get("event_date")]
    return date.fromisoformat(max(days)) if days else None


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
