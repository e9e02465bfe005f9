"""The hybrid on MovieLens-100k, under the same protocol as `podrec evaluate` (models/movielens_eval.py), and the
cold-item experiment: can content similarity reach items nobody has interacted with yet?

Content for a movie is its catalog text (title, genres, year: content/sources.py `movielens_episodes`), embedded
with the same model and chunking as transcripts and turned into top-k neighbour lists with the same function as
`episode_similarity`. The blend weight is chosen on the validation split (carved from the training part) only.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from pyspark.sql import SparkSession
from scipy import sparse

from podrec_assets.lib.content.embedding import embed_texts, load_model
from podrec_assets.lib.content.similarity import top_k_similar
from podrec_assets.lib.content.sources import movielens_episodes
from podrec_assets.lib.models.als import AlsParams
from podrec_assets.lib.models.evaluation import Evaluation, fit_and_evaluate, ranking_metrics
from podrec_assets.lib.models.factors import EPISODE_IDX, USER_IDX, IdMapping, index_ids
from podrec_assets.lib.models.ranking import pair_matrix, popularity
from podrec_assets.lib.ranking.strategies import StrategyConfig
from podrec_assets.lib.serving.hybrid import HybridInputs, choose_anchors, hybrid_top_n, similarity_matrix
from podrec_assets.tools.experiments.movielens_eval import movielens_interactions

NEIGHBOURS = 20
ANCHORS = 5
HALF_LIFE_DAYS = 14.0
COLD_ITEM_SHARE, COLD_ITEM_SEED, COLD_TOP = 0.10, 7, 50


@dataclass
class HybridReport:
    evaluation: Evaluation  # ALS and popularity on the same split
    hybrid: dict[float, dict[str, float]]  # als_weight → metrics
    cold_items: dict[str, float] | None


def content_neighbours(ids: IdMapping) -> np.ndarray:
    """Unit vectors of every movie's catalog text, in the index order of `ids.episode_ids`."""
    texts = {e.episode_id: f"{e.title}\n{e.description}" for e in movielens_episodes().episodes}
    return embed_texts(load_model(), [texts[episode] for episode in ids.episode_ids]).vectors


def _inputs(
    split: pd.DataFrame, evaluation: Evaluation, vectors: np.ndarray, catalog: tuple[int, int]
) -> HybridInputs:
    train = split[~split["held_out"]]
    user, item = train[USER_IDX].to_numpy(), train[EPISODE_IDX].to_numpy()
    engagement = train["engagement"].to_numpy()
    age_days = ((train["last_ts"].max() - train["last_ts"]).dt.total_seconds() / 86400).to_numpy()
    anchors, weights = choose_anchors(user, item, engagement, age_days, catalog[0], ANCHORS, HALF_LIFE_DAYS)
    neighbours, scores = top_k_similar(vectors, NEIGHBOURS)
    source = np.repeat(np.arange(catalog[1]), neighbours.shape[1])
    users_known = np.zeros(catalog[0], bool)
    users_known[evaluation.user_factors.ids] = True
    items_known = np.zeros(catalog[1], bool)
    items_known[evaluation.item_factors.ids] = True
    return HybridInputs(
        user_vectors=evaluation.user_factors.dense(catalog[0]),
        user_known=users_known,
        item_vectors=evaluation.item_factors.dense(catalog[1]),
        item_known=items_known,
        similarity=similarity_matrix(source, neighbours.ravel(), scores.ravel(), catalog[1]),
        anchors=anchors,
        anchor_weights=weights,
        exclude=pair_matrix(user, item, catalog),
        popularity=popularity(item[engagement > 0], catalog[1]).ravel(),
    )


def _rows(inputs: HybridInputs, users: np.ndarray) -> HybridInputs:
    """The inputs of some users only (the ones evaluated)."""
    return replace(
        inputs,
        user_vectors=inputs.user_vectors[users],
        user_known=inputs.user_known[users],
        anchors=inputs.anchors[users],
        anchor_weights=inputs.anchor_weights[users],
        exclude=inputs.exclude[users],
    )


def evaluate_hybrid(
    spark: SparkSession, params: AlsParams, weights: list[float], split: str = "test", cold_items: bool = True
) -> HybridReport:
    indexed, ids = index_ids(movielens_interactions(split))
    catalog = (len(ids.user_ids), len(ids.episode_ids))
    vectors = content_neighbours(ids)

    evaluation = fit_and_evaluate(spark, indexed, catalog, params, k=10)
    inputs = _inputs(indexed, evaluation, vectors, catalog)
    test_users, labels = evaluation.test_users, evaluation.labels
    predictions = {}
    for weight in weights:
        lists = hybrid_top_n(_rows(inputs, test_users), 10, weight)
        predictions[f"{weight}"] = [[int(i) for i in row if i >= 0] for row in lists.items]
    metrics = ranking_metrics(spark, predictions, labels, 10)
    hybrid = {weight: metrics[f"{weight}"] for weight in weights}
    # the cold-item experiment uses the configured default weight (chosen on the validation split), not the best
    # weight on this split
    weight = StrategyConfig().als_weight
    cold = cold_item_reach(spark, indexed, catalog, vectors, params, weight) if cold_items else None
    return HybridReport(evaluation, hybrid, cold)


def cold_item_reach(
    spark: SparkSession, indexed: pd.DataFrame, catalog: tuple[int, int], vectors: np.ndarray, params: AlsParams,
    weight: float,
) -> dict[str, float]:  # fmt: skip
    """Hide every interaction of 10% of the items from training; of the (user, hidden item) pairs where the user
    engaged with the item (in either part of the split) and has training history, the share where the item is in
    the user's top-50 — for the hybrid, content alone, ALS alone, and the chance level."""
    rng = np.random.default_rng(COLD_ITEM_SEED)
    hidden = rng.choice(catalog[1], size=round(COLD_ITEM_SHARE * catalog[1]), replace=False)
    is_hidden = np.isin(indexed[EPISODE_IDX].to_numpy(), hidden)
    split = indexed.assign(held_out=indexed["held_out"].to_numpy(bool) | is_hidden)
    evaluation = fit_and_evaluate(spark, split, catalog, params, k=10)
    inputs = _inputs(split, evaluation, vectors, catalog)

    train = split[~split["held_out"]]
    has_history = np.unique(train.loc[train["engagement"] > 0, USER_IDX].to_numpy())
    targets = indexed[is_hidden & np.isin(indexed[USER_IDX].to_numpy(), has_history)]
    users = np.unique(targets[USER_IDX].to_numpy())
    pairs = set(zip(targets[USER_IDX], targets[EPISODE_IDX], strict=True))
    position = {u: i for i, u in enumerate(users)}
    reach = {}
    no_content = replace(inputs, similarity=sparse.csr_matrix(inputs.similarity.shape, dtype=np.float32))
    for name, variant, w in (
        ("hybrid", inputs, weight),
        ("content only", inputs, 0.0),
        ("ALS alone", no_content, 1.0),
    ):
        lists = hybrid_top_n(_rows(variant, users), COLD_TOP, w).items
        reach[name] = sum(1 for u, e in pairs if e in lists[position[u]]) / len(pairs)
    seen = inputs.exclude[users].sum(axis=1).A.ravel()
    reach["chance"] = float(np.mean(COLD_TOP / (catalog[1] - seen)))
    reach["pairs"] = len(pairs)
    reach["hidden_items"] = len(hidden)
    reach["weight"] = weight
    return reach


def report_lines(report: HybridReport) -> list[str]:
    header = f"{'model':<28}{'P@10':>8}{'R@10':>8}{'nDCG@10':>9}{'MAP@10':>8}"
    lines = ["", "hybrid (serving/hybrid.py) on the same split: score = w·ALS + (1−w)·content", header]

    def row(name: str, metrics: dict) -> str:
        return f"{name:<28}" + "".join(
            f"{metrics[m]:>8.3f}" for m in ("precision@10", "recall@10", "ndcg@10", "map@10")
        )

    lines.append(row("ALS alone", report.evaluation.metrics["als"]))
    lines.append(row("popularity", report.evaluation.metrics["popularity"]))
    for weight, metrics in report.hybrid.items():
        lines.append(row(f"hybrid w={weight}", metrics))
    if report.cold_items:
        c = report.cold_items
        share = f"{COLD_ITEM_SHARE:.0%}"
        lines.append("")
        lines.append(f"cold items: {c['hidden_items']} items ({share}) hidden from training; {c['pairs']} "
                     f"(user, hidden item) pairs; share reaching the user's top-{COLD_TOP}:")  # fmt: skip
        lines.append(f"  hybrid w={c['weight']} {c['hybrid']:.3f}   content only {c['content only']:.3f}   "
                     f"ALS alone {c['ALS alone']:.3f}   chance {c['chance']:.3f}")  # fmt: skip
    return lines
