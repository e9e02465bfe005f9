"""`als_recommendations` in Spark: the same scoring function as the driver path (`score_users` in recommend.py), run
by `mapInArrow` over blocks of listeners, so a Spark cluster takes the work the driver does below the threshold
(`scoring_path` in lib/settings.py).

What stays on the driver: the model's episode side (factors and names, episodes × rank floats), shipped with the
function to every task, and the result (n rows per listener), which comes back as Arrow to be written with delta-rs
(Spark writes no Delta here: lib/lakehouse.py). What moves to Spark: the listeners' factors and ids (read by the
server from the version folder, which it must see: PODREC_MODEL_ROOT), their engaged episodes (read from
daily_engagement's snapshot) and every product and top-n. The server's Python workers import this module, so they
need podrec_assets and its dependencies (the local server runs the venv's Python: tools/stack.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from podrec_assets.lib.engagement.daily import DAILY_ENGAGEMENT_SPARK_SCHEMA
from podrec_assets.lib.lakehouse import read_delta
from podrec_assets.lib.models.recommend import ItemSide, finish, model_users, score_users

SCORED_SCHEMA = "user_id string, episode_id string, rank int, score float"
# Listeners per Spark task: a few top_n blocks each (recommend's BLOCK_USERS), so tasks are few but spread.
LISTENERS_PER_TASK = 8192


def vectors_of(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A list<float> column of equal-length vectors as a (rows, rank) float32 matrix."""
    lists = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    flat = lists.flatten().to_numpy(zero_copy_only=False).astype(np.float32)
    return flat.reshape(len(lists), -1) if len(lists) else np.zeros((0, 0), np.float32)


@dataclass(frozen=True)
class ScoreBlocks:
    """The function each Spark task runs over its Arrow batches of (user_id, vector, engaged) rows."""

    side: ItemSide

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            if batch.num_rows == 0:
                continue
            engaged = batch.column("engaged")
            lengths = engaged.value_lengths().fill_null(0).to_numpy(zero_copy_only=False)
            rows = np.repeat(np.arange(batch.num_rows), lengths)
            episodes = engaged.flatten().to_numpy(zero_copy_only=False)  # null lists have no values
            exclude = self.side.excluded(rows, episodes, batch.num_rows)
            user_ids = batch.column("user_id").to_numpy(zero_copy_only=False)
            yield from score_users(
                user_ids, vectors_of(batch.column("vector")), exclude, self.side
            ).to_batches()


def recommend_all_users_spark(
    spark: SparkSession,
    model_dir: Path,
    version: str,
    engagement_uri: str,
    n: int,
    now: datetime,
    storage_options: dict | None = None,
    listeners_per_task: int = LISTENERS_PER_TASK,
) -> pa.Table:
    """The rows `recommend_all_users` gives (same listeners, episodes, order and scores), computed in Spark."""
    side = ItemSide.of(model_dir, n)
    factors = spark.read.parquet(str(model_dir / "user_factors.parquet"))
    ids = spark.read.parquet(str(model_dir / "user_ids.parquet")).withColumnRenamed("user_id_idx", "idx")
    users = factors.join(ids, "idx").select("user_id", "vector")
    engaged = (
        read_delta(spark, engagement_uri, DAILY_ENGAGEMENT_SPARK_SCHEMA, storage_options=storage_options)
        .groupBy("user_id")
        .agg(F.collect_set("episode_id").alias("engaged"))
    )
    tasks = max(1, -(-model_users(model_dir) // listeners_per_task))
    scored = (
        users.join(engaged, "user_id", "left")
        .repartition(tasks, "user_id")
        .mapInArrow(ScoreBlocks(side), SCORED_SCHEMA)
    )
    return finish(scored.toArrow(), version, now)
