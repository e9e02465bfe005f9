"""Offline evaluation of a model: hold-out splits, top-10 lists with already-seen items removed, and ranking metrics
computed by Spark's `RankingEvaluator`, for the model and for a popularity baseline on the same split."""

from __future__ import annotations

import time
from collections.abc import Generator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from pyspark.ml.evaluation import RankingEvaluator
from pyspark.sql import SparkSession
from pyspark.sql.types import ArrayType, DoubleType, StructField, StructType

from podrec_assets.lib.models.als import AlsParams, fit_als, model_factors
from podrec_assets.lib.models.factors import EPISODE_IDX, USER_IDX, Factors, training_rows
from podrec_assets.lib.models.ranking import pair_matrix, popularity, rank_with_factors, top_n

# The RankingEvaluator metrics podrec reports (RankingEvaluator's metricName accepts only its own names).
RankingMetric = Literal["precisionAtK", "recallAtK", "ndcgAtK", "meanAveragePrecisionAtK"]

# RankingEvaluator's metric names → the names podrec reports.
METRICS: dict[RankingMetric, str] = {
    "precisionAtK": "precision@{k}",
    "recallAtK": "recall@{k}",
    "ndcgAtK": "ndcg@{k}",
    "meanAveragePrecisionAtK": "map@{k}",
}


def temporal_holdout(indexed: pd.DataFrame, fraction: float, min_interactions: int) -> pd.DataFrame:
    """Adds `held_out`: each user's most recent `fraction` of pairs (at least one), for users with at least
    `min_interactions` pairs; users with fewer stay wholly in training."""
    newest_first = indexed.sort_values([USER_IDX, "last_ts", EPISODE_IDX], ascending=[True, False, True])
    by_user = newest_first.groupby(USER_IDX, sort=False)
    recency = by_user.cumcount() + 1
    pairs = by_user[USER_IDX].transform("size")
    held_out = (pairs >= min_interactions) & (recency <= np.maximum(1, np.floor(pairs * fraction)))
    return indexed.assign(held_out=held_out.reindex(indexed.index))


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
    test_users: np.ndarray | None = None  # the evaluated users and their held-out positive episodes
    labels: list[list[int]] | None = None

    @property
    def ndcg(self) -> tuple[float, float]:
        key = next(name for name in self.metrics["als"] if name.startswith("ndcg@"))
        return self.metrics["als"][key], self.metrics["popularity"][key]


@contextmanager
def timed(timings: dict[str, float], phase: str) -> Generator[None, None, None]:
    started = time.perf_counter()
    yield
    timings[phase] = time.perf_counter() - started


def ranking_metrics(
    spark: SparkSession, predictions: dict[str, list[list[int]]], labels: list[list[int]], k: int
) -> dict[str, dict[str, float]]:
    """precision, recall, nDCG and MAP at k of each model's lists, by Spark's RankingEvaluator (binary relevance).

    RankingEvaluator computes one metric per call, each a small Spark job: the calls run concurrently (a Spark
    Connect session takes requests from several threads), so they cost about one job, not eight."""
    models = list(predictions)
    column = {
        model: f"prediction_{i}" for i, model in enumerate(models)
    }  # any model name, a safe column name
    schema = StructType(
        [StructField(column[model], ArrayType(DoubleType())) for model in models]
        + [StructField("label", ArrayType(DoubleType()))]
    )
    frame = pd.DataFrame(
        {
            **{column[model]: [[float(i) for i in p] for p in lists] for model, lists in predictions.items()},
            "label": [[float(i) for i in label] for label in labels],
        }
    )
    lists = spark.createDataFrame(frame, schema=schema).cache()
    jobs = [(model, spark_name) for model in models for spark_name in METRICS]

    def evaluate(job: tuple[str, RankingMetric]) -> float:
        model, spark_name = job
        evaluator = RankingEvaluator(
            metricName=spark_name, k=k, predictionCol=column[model], labelCol="label"
        )
        return round(float(evaluator.evaluate(lists)), 6)

    with ThreadPoolExecutor(max_workers=min(len(jobs), 8)) as pool:
        values = list(pool.map(evaluate, jobs))
    metrics: dict[str, dict[str, float]] = {model: {} for model in models}
    for (model, spark_name), value in zip(jobs, values, strict=True):
        metrics[model][METRICS[spark_name].format(k=k)] = value
    return metrics


def held_out_labels(split: pd.DataFrame) -> tuple[np.ndarray, list[list[int]]]:
    """The evaluated users (held-out positive pairs and at least one positive training pair: no model can place a
    user it has never seen) and, per user, the held-out positive episodes."""
    held_out = split["held_out"].to_numpy(dtype=bool)
    positive = split["engagement"].to_numpy() > 0
    user, item = split[USER_IDX].to_numpy(), split[EPISODE_IDX].to_numpy()
    relevant = held_out & positive & np.isin(user, np.unique(user[~held_out & positive]))
    test_users = np.unique(user[relevant])
    labels = pd.Series(item[relevant]).groupby(user[relevant]).apply(list).reindex(test_users).tolist()
    return test_users, labels


def fit_and_evaluate(
    spark: SparkSession, split: pd.DataFrame, catalog: tuple[int, int], params: AlsParams, k: int = 10
) -> Evaluation:
    """Fit ALS on the rows of `split` not `held_out`; rank the whole catalog for every held-out user (their training
    items removed) and score both ALS and popularity against the held-out items with positive engagement.

    `split` holds indexed pairs (user_idx, episode_idx, engagement, held_out) on the driver; only the training rows
    go to Spark, for the fit. Only users with a positive training pair are evaluated: neither model can place a user
    it has never seen (those users get popular episodes in serving). `catalog` is (number of users, of episodes)."""
    timings: dict[str, float] = {}
    user = split[USER_IDX].to_numpy()
    item = split[EPISODE_IDX].to_numpy()
    held_out = split["held_out"].to_numpy(dtype=bool)
    train, positive = ~held_out, split["engagement"].to_numpy() > 0

    with timed(timings, "fit_s"):
        rows = spark.createDataFrame(training_rows(split[train], params.negative_feedback))
        model = fit_als(rows, params)

    with timed(timings, "rank_s"):
        user_factors, item_factors = model_factors(model)
        test_users, labels = held_out_labels(split)
        seen = pair_matrix(user[train], item[train], catalog)[test_users]
        als_items, _ = rank_with_factors(user_factors.dense(catalog[0])[test_users], item_factors, seen, k)
        popular = popularity(item[train & positive], catalog[1])
        pop_items, _ = top_n(np.ones((len(test_users), 1), dtype=np.float32), popular, seen, k)

    def lists(items: np.ndarray) -> list[list[int]]:
        return [[int(i) for i in row if i >= 0] for row in items]

    with timed(timings, "metrics_s"):
        metrics = ranking_metrics(spark, {"als": lists(als_items), "popularity": lists(pop_items)}, labels, k)
    return Evaluation(user_factors, item_factors, metrics, len(test_users), int(train.sum()), int(held_out.sum()),
                      timings, test_users, labels)  # fmt: skip
