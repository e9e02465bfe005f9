"""Offline evaluation of a model: hold-out splits, top-10 lists with already-seen items removed, and ranking metrics
computed by Spark's `RankingEvaluator`, for the model and for a popularity baseline on the same split."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pyspark.ml.evaluation import RankingEvaluator
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, DoubleType, StructField, StructType

from podrec_assets.models.als import (
    EPISODE_IDX,
    USER_IDX,
    AlsParams,
    Factors,
    fit_als,
    model_factors,
    training_rows,
)
from podrec_assets.models.ranking import pair_matrix, popularity, rank_with_factors, top_n

# RankingEvaluator's metric names → the names podrec reports.
METRICS = {
    "precisionAtK": "precision@{k}",
    "recallAtK": "recall@{k}",
    "ndcgAtK": "ndcg@{k}",
    "meanAveragePrecisionAtK": "map@{k}",
}


def temporal_holdout(indexed: DataFrame, fraction: float, min_interactions: int) -> DataFrame:
    """Adds `held_out`: each user's most recent `fraction` of pairs (at least one), for users with at least
    `min_interactions` pairs; users with fewer stay wholly in training."""
    by_user = Window.partitionBy(USER_IDX)
    newest_first = by_user.orderBy(F.col("last_ts").desc(), F.col(EPISODE_IDX))
    pairs = F.count(F.lit(1)).over(by_user)
    recency = F.row_number().over(newest_first)
    return indexed.withColumn(
        "held_out",
        (pairs >= min_interactions) & (recency <= F.greatest(F.lit(1), F.floor(pairs * F.lit(fraction)))),
    )


def random_holdout(indexed: DataFrame, test_ratio: float, seed: int) -> DataFrame:
    """Adds `held_out`: a random `test_ratio` of each user's pairs (microsoft/recommenders' stratified split: the
    first round((1 − ratio)·n) of a user's shuffled pairs train). The shuffle is a hash of (seed, user, item), so
    it does not depend on how Spark partitions the data."""
    by_user = Window.partitionBy(USER_IDX)
    shuffled = by_user.orderBy(
        F.xxhash64(F.lit(seed), F.col(USER_IDX), F.col(EPISODE_IDX)), F.col(EPISODE_IDX)
    )
    pairs = F.count(F.lit(1)).over(by_user)
    position = F.row_number().over(shuffled)
    return indexed.withColumn("held_out", position > F.round(pairs * F.lit(1.0 - test_ratio)))


@dataclass
class Evaluation:
    """A model fitted on the training part of a split (its factors: all a version keeps), and the metrics of it and
    of popularity on the held-out part."""

    user_factors: Factors
    item_factors: Factors
    metrics: dict[str, dict[str, float]]
    users_evaluated: int
    train_pairs: int
    held_out_pairs: int
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase, shown as asset metadata

    @property
    def ndcg(self) -> tuple[float, float]:
        key = next(name for name in self.metrics["als"] if name.startswith("ndcg@"))
        return self.metrics["als"][key], self.metrics["popularity"][key]


@contextmanager
def timed(timings: dict[str, float], phase: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    timings[phase] = time.perf_counter() - started


def ranking_metrics(
    spark: SparkSession, predictions: list[list[int]], labels: list[list[int]], k: int
) -> dict:
    """precision, recall, nDCG and MAP at k, by Spark's RankingEvaluator (binary relevance)."""
    schema = StructType(
        [StructField("prediction", ArrayType(DoubleType())), StructField("label", ArrayType(DoubleType()))]
    )
    frame = pd.DataFrame(
        {
            "prediction": [[float(i) for i in p] for p in predictions],
            "label": [[float(i) for i in l] for l in labels],
        }
    )
    lists = spark.createDataFrame(frame, schema=schema).cache()
    metrics = {}
    for spark_name, name in METRICS.items():
        evaluator = RankingEvaluator(metricName=spark_name, k=k, predictionCol="prediction", labelCol="label")
        metrics[name.format(k=k)] = round(float(evaluator.evaluate(lists)), 6)
    return metrics


def fit_and_evaluate(
    spark: SparkSession, split: DataFrame, catalog: tuple[int, int], params: AlsParams, k: int = 10
) -> Evaluation:
    """Fit ALS on the rows of `split` not `held_out`; rank the whole catalog for every held-out user (their training
    items removed) and score both ALS and popularity against the held-out items with positive engagement.

    Only users with a positive training pair are evaluated: neither model can place a user it has never seen
    (those users get popular episodes in serving). `catalog` is (number of users, number of episodes)."""
    timings: dict[str, float] = {}
    with timed(timings, "prepare_s"):
        # Materialize the split once on the server: the driver's copy and the ALS input both read it.
        split = split.select(USER_IDX, EPISODE_IDX, "engagement", "held_out").localCheckpoint(eager=True)
        rows = split.toArrow()
    user = rows.column(USER_IDX).to_numpy()
    item = rows.column(EPISODE_IDX).to_numpy()
    engagement = rows.column("engagement").to_numpy()
    held_out = rows.column("held_out").to_numpy(zero_copy_only=False)
    train, positive = ~held_out, engagement > 0

    with timed(timings, "fit_s"):
        model = fit_als(training_rows(split.where(~F.col("held_out")), params.negative_feedback), params)

    with timed(timings, "rank_s"):
        user_factors, item_factors = model_factors(model)
        known_users = np.unique(user[train & positive])
        relevant = held_out & positive & np.isin(user, known_users)
        test_users = np.unique(user[relevant])
        labels = pd.Series(item[relevant]).groupby(user[relevant]).apply(list).reindex(test_users).tolist()
        seen = pair_matrix(user[train], item[train], catalog)[test_users]
        als_items, _ = rank_with_factors(user_factors.dense(catalog[0])[test_users], item_factors, seen, k)
        popular = popularity(item[train & positive], catalog[1])
        pop_items, _ = top_n(np.ones((len(test_users), 1), dtype=np.float32), popular, seen, k)

    def lists(items: np.ndarray) -> list[list[int]]:
        return [[int(i) for i in row if i >= 0] for row in items]

    with timed(timings, "metrics_s"):
        metrics = {
            "als": ranking_metrics(spark, lists(als_items), labels, k),
            "popularity": ranking_metrics(spark, lists(pop_items), labels, k),
        }
    return Evaluation(user_factors, item_factors, metrics, len(test_users), int(train.sum()), int(held_out.sum()),
                      timings)  # fmt: skip
