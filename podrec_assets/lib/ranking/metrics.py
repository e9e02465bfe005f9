"""Ranking metrics at k with binary relevance, defined exactly as Spark's `RankingEvaluator` defines them (a test
holds the two equal), computed on the driver so ranking needs no Spark:

- precision@k = hits in the first k ÷ k
- recall@k = hits in the first k ÷ relevant
- nDCG@k = Σ hit_i / log2(i + 2) over the first k, ÷ the same for an ideal list of min(k, relevant) hits
- MAP@k = Σ over hits in the first k of (hits so far ÷ position) ÷ min(k, relevant)  (Spark's normalization)

plus catalog coverage: the share of the catalog that appears in at least one list's first k.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

METRIC_NAMES = ("precision", "recall", "ndcg", "map")


def ndcg_per_query(lists: Sequence[Sequence], truth: Sequence[set | Sequence], k: int = 10) -> np.ndarray:
    """nDCG@k of each query (the mean of these is ranking_metrics' ndcg@k); queries with no relevant item: NaN."""
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    out = np.full(len(truth), np.nan)
    for q, (predicted, relevant) in enumerate(zip(lists, truth, strict=True)):
        relevant = set(relevant)
        if relevant:
            hits = np.asarray([item in relevant for item in list(predicted)[:k]], dtype=float)
            out[q] = (hits * discounts[: len(hits)]).sum() / discounts[: min(k, len(relevant))].sum()
    return out


def paired_bootstrap(
    ours: np.ndarray,
    theirs: np.ndarray,
    resamples: int = 2000,
    seed: int = 0,
    clusters: np.ndarray | None = None,
) -> dict[str, float]:
    """95% intervals of mean(ours) − mean(theirs) and mean(ours) ÷ mean(theirs) over queries resampled with
    replacement (the same queries for both: a paired comparison). With `clusters` (a label per query, e.g. the
    listener when one listener is judged on several cuts) whole clusters are resampled, so queries that move
    together are not counted as independent evidence."""
    keep = ~(np.isnan(ours) | np.isnan(theirs))
    ours, theirs = ours[keep], theirs[keep]
    rng = np.random.default_rng(seed)
    if clusters is None:
        picks = rng.integers(0, len(ours), size=(resamples, len(ours)))
        a, b = ours[picks].mean(axis=1), theirs[picks].mean(axis=1)
    else:
        _, cluster = np.unique(np.asarray(clusters)[keep], return_inverse=True)
        n = int(cluster.max()) + 1 if len(cluster) else 0
        size = np.bincount(cluster, minlength=n).astype(float)
        sum_ours = np.bincount(cluster, ours, minlength=n)
        sum_theirs = np.bincount(cluster, theirs, minlength=n)
        drawn = rng.multinomial(n, np.full(n, 1.0 / n), size=resamples).astype(float)  # times each is drawn
        rows = drawn @ size
        a, b = drawn @ sum_ours / rows, drawn @ sum_theirs / rows
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = a / b
    low, high = np.percentile(a - b, [2.5, 97.5])
    ratio_low, ratio_high = (
        np.nanpercentile(ratio, [2.5, 97.5]) if np.isfinite(ratio).any() else (np.nan, np.nan)
    )
    return {
        "difference_low": round(float(low), 4),
        "difference_high": round(float(high), 4),
        "ratio_low": round(float(ratio_low), 3),
        "ratio_high": round(float(ratio_high), 3),
    }


def ranking_metrics(
    lists: Sequence[Sequence], truth: Sequence[set | Sequence], k: int = 10
) -> dict[str, float]:
    """Means over the queries (pairs of a list and its relevant items; queries with no relevant item are skipped)."""
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    sums = dict.fromkeys(METRIC_NAMES, 0.0)
    queries = 0
    for predicted, relevant in zip(lists, truth, strict=True):
        relevant = set(relevant)
        if not relevant:
            continue
        queries += 1
        top = list(predicted)[:k]
        hits = np.asarray([item in relevant for item in top], dtype=float)
        ideal = min(k, len(relevant))
        sums["precision"] += hits.sum() / k
        sums["recall"] += hits.sum() / len(relevant)
        sums["ndcg"] += float((hits * discounts[: len(hits)]).sum() / discounts[:ideal].sum())
        running = np.cumsum(hits) / np.arange(1, len(hits) + 1)
        sums["map"] += float((running * hits).sum() / ideal)
    if queries == 0:
        return {f"{name}@{k}": 0.0 for name in METRIC_NAMES}
    return {f"{name}@{k}": round(value / queries, 6) for name, value in sums.items()}


def coverage(lists: Sequence[Sequence], catalog_size: int, k: int = 10) -> float:
    """Share of the catalog recommended to at least one listener in the first k (items: indices or ids)."""
    if catalog_size == 0:
        return 0.0
    shown = {item for predicted in lists for item in list(predicted)[:k] if item is not None and item != -1}
    return round(len(shown) / catalog_size, 6)
