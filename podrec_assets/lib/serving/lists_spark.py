"""`final_recommendations` in Spark: every listener's list made by the same function as on the driver (`list_rows`
in recommendations.py: fold-in, recall, the ranker, the re-rank, the reasons), run by `mapInArrow` over blocks of
listeners, so a Spark cluster takes the per-listener work the driver does below the threshold (`scoring_path` in
lib/settings.py).

The ServingContext (catalog, content vectors and neighbours, the model's episode side, the episode statistics, the
policy with the LightGBM ranker, which pickles as its model text) is built on the driver as before and shipped with
the function to every task: it grows with the catalog, not with the listeners. The listeners' history pairs are
still gathered on the driver (the statistics need all of them, and the open day's raw events are merged there:
serving_history); they go to Spark grouped by listener, one row each, and the lists come back as Arrow to be
written with delta-rs. The server's Python workers import this module (podrec_assets, lightgbm, scikit-learn).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow as pa
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema

from podrec_assets.lib.ranking.history import PAIR_COLUMNS
from podrec_assets.lib.serving.recommendations import FINAL_RECOMMENDATIONS_SCHEMA, ServingContext, list_rows

# Times cross into Spark as integer microseconds: Spark would shift naive and zoned timestamps by its session time
# zone on the way in and out of Arrow; integers come back as they went.
TIME_COLUMNS = ("first_ts", "last_ts")
# The schema of the rows a task returns: FINAL_RECOMMENDATIONS_SCHEMA but `generated_at` (one value, added after).
RANKED_SCHEMA = pa.schema([f for f in FINAL_RECOMMENDATIONS_SCHEMA if f.name != "generated_at"])
RANKED_SPARK_SCHEMA = from_arrow_schema(RANKED_SCHEMA)
# What goes into Spark: the history pairs, times as microseconds.
PAIRS_DDL = "user_id string, episode_id string, engagement double, events long, first_ts long, last_ts long"
# Listeners per Spark task: two recall blocks (candidates.py). Small tasks spread evenly over the cores (9,000
# listeners make 9 tasks, not 3 for 2 cores); each unpickles the context once.
LISTENERS_PER_TASK = 1024


def _microseconds(times: pd.Series) -> np.ndarray:
    return pd.to_datetime(times, utc=True).dt.as_unit("us").astype("int64").to_numpy()


@dataclass(frozen=True)
class RankBlocks:
    """The function each Spark task runs over its Arrow batches of (user_id, pairs) rows, one row per listener."""

    ctx: ServingContext
    now: datetime

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            if batch.num_rows == 0:
                continue
            user_ids = batch.column("user_id").to_pylist()
            nested = batch.column("pairs")
            lengths = nested.value_lengths().fill_null(0).to_numpy(zero_copy_only=False)
            flat = nested.flatten()  # a struct array, one entry per pair (null lists have none)
            fields = {flat.type.field(i).name: values for i, values in enumerate(flat.flatten())}
            pairs = pd.DataFrame(
                {
                    "user_id": np.repeat(np.asarray(user_ids, dtype=object), lengths),
                    **{name: fields[name].to_numpy(zero_copy_only=False) for name in PAIR_COLUMNS[1:4]},
                    **{name: pd.to_datetime(fields[name].to_numpy(zero_copy_only=False), unit="us", utc=True)
                       for name in TIME_COLUMNS},
                }
            )[PAIR_COLUMNS]  # fmt: skip
            rows = list_rows(self.ctx, pairs, user_ids, self.now)
            yield from rows.drop_columns(["generated_at"]).cast(RANKED_SCHEMA).to_batches()


def list_rows_spark(
    spark: SparkSession,
    ctx: ServingContext,
    pairs: pd.DataFrame,
    user_ids: list[str],
    now: datetime,
    listeners_per_task: int = LISTENERS_PER_TASK,
) -> pa.Table:
    """The rows `list_rows(ctx, pairs, user_ids, now)` gives (same listeners, episodes, order, scores and reasons),
    made in Spark."""
    wanted = sorted(set(user_ids))
    if not wanted:
        return FINAL_RECOMMENDATIONS_SCHEMA.empty_table()
    flat = pairs[pairs["user_id"].isin(wanted)][PAIR_COLUMNS].copy()
    flat["events"] = flat["events"].astype("int64")
    for name in TIME_COLUMNS:
        flat[name] = _microseconds(flat[name])
    grouped = (
        spark.createDataFrame(flat, PAIRS_DDL)
        .groupBy("user_id")
        .agg(F.collect_list(F.struct(*PAIR_COLUMNS[1:])).alias("pairs"))
    )
    # every listener asked for, also one without pairs (list_rows gives them no rows, as on the driver)
    listeners = spark.createDataFrame(pd.DataFrame({"user_id": wanted}), "user_id string")
    tasks = max(1, -(-len(wanted) // listeners_per_task))
    ranked = (
        listeners.join(grouped, "user_id", "left")
        .repartition(tasks, "user_id")
        .mapInArrow(RankBlocks(ctx, now), RANKED_SPARK_SCHEMA)
    )
    table = ranked.toArrow()
    generated = pa.array([now] * table.num_rows, FINAL_RECOMMENDATIONS_SCHEMA.field("generated_at").type)
    return (
        table.append_column("generated_at", generated)
        .cast(FINAL_RECOMMENDATIONS_SCHEMA)
        .sort_by([("user_id", "ascending"), ("rank", "ascending")])
    )
