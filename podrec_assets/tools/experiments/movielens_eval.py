"""`podrec evaluate --dataset movielens-100k`: the asset's model code on real data, under microsoft/recommenders'
protocol, beside published figures.

Protocol: `python_stratified_split(ratio=0.75, seed=42)` re-implemented exactly (a uniform random number per rating
in file order, seeded with numpy; each user's ratings sorted by it; the first 75% train), top-10 over the catalog
with each user's training items removed, relevance = any held-out rating (binary), metrics by Spark's
`RankingEvaluator`. A MovieLens rating says the user watched the movie, so it is an interaction whose value (1–5) is
the confidence ALS gets; the podcast event weights (rating − 3) are not used here, because under this protocol a
1-star rating is a hit. Tuning used `--split validation` (a second split of the training part, seed 2024) only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from pyspark.sql import SparkSession

from podrec_assets.lib.datasets.movielens import episode_id, load_ratings, user_id
from podrec_assets.lib.models.als import AlsParams
from podrec_assets.lib.models.evaluation import Evaluation, fit_and_evaluate, temporal_holdout
from podrec_assets.lib.models.factors import index_ids

# The setting chosen for this protocol on its validation split (docs/quality.md). The asset's own
# defaults (AlsParams) are tuned for what production meets, the temporal protocol, and may differ.
RANDOM_PROTOCOL_PARAMS = AlsParams(rank=64, max_iter=15, reg_param=0.3, alpha=0.3)

# Reference figures on this protocol (microsoft/recommenders' benchmark, see ENVIRONMENT.md): nDCG@10 and P@10.
PUBLISHED = {"BPR": (0.442, 0.388), "LightGCN": (0.420, None), "SAR": (0.383, None), "BiVAE": (0.475, None)}
TEST_SEED, VALIDATION_SEED = 42, 2024


def stratified_split(users: np.ndarray, ratio: float, seed: int) -> np.ndarray:
    """recommenders' python_stratified_split (filter_by="user"): True where a row is held out."""
    np.random.seed(seed)  # the legacy global generator, exactly as recommenders does it
    frame = pd.DataFrame({"user": users, "random": np.random.rand(len(users))})
    frame = frame.sort_values(["user", "random"])
    groups = frame.groupby("user")
    rank = (groups.cumcount() + 1) / groups["user"].transform("count")
    return (rank > ratio).reindex(range(len(users))).to_numpy()


def movielens_interactions(split: str) -> pd.DataFrame:
    """Ratings as interactions, with `held_out` marking the test part (or, for split="validation", the validation
    part carved from the training part; the test part is then dropped and never seen)."""
    ratings = load_ratings()
    frame = pd.DataFrame(
        {
            "user": [int(r.user) for r in ratings],
            "user_id": [user_id(r.user) for r in ratings],
            "episode_id": [episode_id(r.item) for r in ratings],
            "engagement": [float(r.rating) for r in ratings],
            "last_ts": pd.to_datetime([r.timestamp for r in ratings], unit="s", utc=True),
        }
    )
    frame["held_out"] = stratified_split(frame["user"].to_numpy(), 0.75, TEST_SEED)
    if split == "validation":
        frame = frame[~frame["held_out"]].reset_index(drop=True)
        frame["held_out"] = stratified_split(frame["user"].to_numpy(), 0.75, VALIDATION_SEED)
    return frame.drop(columns="user")


@dataclass
class MovieLensReport:
    random_split: Evaluation
    temporal_split: Evaluation | None


def evaluate_movielens(
    spark: SparkSession, params: AlsParams, split: str = "test", temporal: bool = True
) -> MovieLensReport:
    indexed, ids = index_ids(movielens_interactions(split))
    catalog = (len(ids.user_ids), len(ids.episode_ids))
    random_split = fit_and_evaluate(spark, indexed, catalog, params, k=10)
    temporal_split = None
    if temporal:  # the asset's own protocol: each user's most recent 20% held out
        recent = temporal_holdout(indexed, fraction=0.2, min_interactions=5)
        temporal_split = fit_and_evaluate(spark, recent, catalog, params, k=10)
    return MovieLensReport(random_split, temporal_split)


def report_lines(report: MovieLensReport, split: str) -> list[str]:
    header = f"{'model':<28}{'P@10':>8}{'R@10':>8}{'nDCG@10':>9}{'MAP@10':>8}"
    lines = [
        f"MovieLens-100k, recommenders protocol (stratified 75/25 per user, seed 42), {split} split",
        header,
    ]

    def row(name: str, metrics: dict) -> str:
        values = [metrics.get(m) for m in ("precision@10", "recall@10", "ndcg@10", "map@10")]
        return f"{name:<28}" + "".join(f"{v:>8.3f}" if v is not None else f"{'—':>8}" for v in values)

    lines.append(row("podrec ALS (Spark)", report.random_split.metrics["als"]))
    lines.append(row("popularity", report.random_split.metrics["popularity"]))
    for name, (ndcg, precision) in PUBLISHED.items():
        lines.append(row(f"{name} (published)", {"ndcg@10": ndcg, "precision@10": precision}))
    if report.temporal_split:
        lines += [
            "",
            "temporal hold-out (each user's most recent 20%, as the als_model asset evaluates)",
            header,
        ]
        lines.append(row("podrec ALS (Spark)", report.temporal_split.metrics["als"]))
        lines.append(row("popularity", report.temporal_split.metrics["popularity"]))
    lines.append(f"(users evaluated: {report.random_split.users_evaluated}; MAP@10 is Spark's, normalized by "
                 "min(k, relevant); published MAP figures use another normalization and are not shown)")  # fmt: skip
    return lines
