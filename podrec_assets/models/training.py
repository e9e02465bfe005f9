"""The steps of a training run that are not ALS itself: which engagement it learns from and what it leaves on disk."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pandas as pd
from deltalake import DeltaTable
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from podrec_assets.engagement.daily import DAILY_ENGAGEMENT_SPARK_SCHEMA, WEIGHT_DECIMALS
from podrec_assets.lakehouse import date_filter, read_delta
from podrec_assets.models.als import IdMapping, write_factors
from podrec_assets.models.evaluation import Evaluation
from podrec_assets.models.registry import ModelRegistry, write_ids


def engagement_window(
    uri: str, days: int, storage_options=None, version: int | None = None
) -> tuple[date, date] | None:
    """The `days` days ending with the newest day in daily_engagement (None if it has none): anchoring on the data,
    not on today, lets a replay of old events train a model too."""
    if not DeltaTable.is_deltatable(uri, storage_options=storage_options):
        return None
    partitions = DeltaTable(uri, version=version, storage_options=storage_options).partitions()
    if not partitions:
        return None
    newest = max(date.fromisoformat(p["event_date"]) for p in partitions)
    return newest - timedelta(days=days - 1), newest


def load_interactions(
    spark: SparkSession, uri: str, first: date, last: date, version: int | None, storage_options=None
) -> pd.DataFrame:
    """Per (user, episode) over the window: engagement (sum of daily weight sums), events and the latest time.

    Spark reads the window's days and aggregates them; the result (one row per pair) comes to the driver, where
    the split and the ranking use it."""
    daily = read_delta(
        spark,
        uri,
        DAILY_ENGAGEMENT_SPARK_SCHEMA,
        date_filter("event_date", first, last),
        storage_options,
        version,
    )
    pairs = daily.groupBy("user_id", "episode_id").agg(
        F.round(F.sum("weight_sum"), WEIGHT_DECIMALS).alias("engagement"),
        F.sum("event_count").alias("events"),
        F.max("last_ts").alias("last_ts"),
    )
    return pairs.toPandas()


def save_version(
    registry: ModelRegistry, version: str, evaluation: Evaluation, ids: IdMapping, manifest: dict
) -> Path:
    """Model, id mappings and manifest (params, metrics, data versions) into a new, never-overwritten folder."""
    staged = registry.staging(version)
    # The factors the run already fetched to rank: a version can score without Spark (and without shared storage).
    write_factors(staged / "user_factors.parquet", evaluation.user_factors)
    write_factors(staged / "item_factors.parquet", evaluation.item_factors)
    write_ids(staged / "user_ids.parquet", "user_id", ids.user_ids)
    write_ids(staged / "episode_ids.parquet", "episode_id", ids.episode_ids)
    return registry.publish(version, manifest)
