"""The steps of a training run that are not ALS itself: which engagement it learns from and what it leaves on disk."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from podrec_assets.lib.engagement.daily import DAILY_ENGAGEMENT_SPARK_SCHEMA, WEIGHT_DECIMALS
from podrec_assets.lib.lakehouse import date_filter, read_delta
from podrec_assets.lib.models.evaluation import Evaluation
from podrec_assets.lib.models.factors import EPISODE_IDX, USER_IDX, Factors, IdMapping, write_factors
from podrec_assets.lib.models.registry import ModelRegistry, RunRecord, write_ids


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
        F.min("last_ts").alias("first_ts"),  # the pair's first day (its latest event that day)
        F.max("last_ts").alias("last_ts"),
    )
    return pairs.toPandas()


# The files of a version folder (see models/registry.py). The serving fit is at the top level, so everything that
# scores (als_recommendations, final_recommendations, the near-real-time lists) reads the model trained on all pairs.
# the held-out fit's factors: what the gate judged, and what the ranker learns its labels against
HELDOUT = "heldout"
PAIRS_FILE = (
    "pairs.parquet"  # the window's indexed pairs and which were held out: the ranker's per-user split
)


def save_version(
    registry: ModelRegistry,
    version: str,
    serving: tuple[Factors, Factors],
    heldout: Evaluation,
    ids: IdMapping,
    split: pd.DataFrame,
    manifest: dict,
    record: RunRecord | None = None,
) -> Path:
    """Both fits, the id mappings, the split and the manifest (params, metrics of both fits, data versions) as a
    new, never-overwritten registered version (its MLflow run carries `record`). Factors are stored as fetched: a
    version scores without Spark."""
    staged = registry.staging(version)
    write_factors(staged / "user_factors.parquet", serving[0])
    write_factors(staged / "item_factors.parquet", serving[1])
    (staged / HELDOUT).mkdir()
    write_factors(staged / HELDOUT / "user_factors.parquet", heldout.user_factors)
    write_factors(staged / HELDOUT / "item_factors.parquet", heldout.item_factors)
    write_ids(staged / "user_ids.parquet", "user_id", ids.user_ids)
    write_ids(staged / "episode_ids.parquet", "episode_id", ids.episode_ids)
    columns = [USER_IDX, EPISODE_IDX, "engagement", "events", "first_ts", "last_ts", "held_out"]
    frame = split[columns].copy()
    frame.attrs = {}  # Spark's toPandas leaves query metrics there, which Parquet metadata cannot hold
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), staged / PAIRS_FILE)
    return registry.publish(version, manifest, record)


def read_split(model_dir: Path) -> pd.DataFrame:
    """The indexed pairs a version was trained on, with `held_out` marking the held-out fit's test part."""
    return pq.read_table(model_dir / PAIRS_FILE).to_pandas()
