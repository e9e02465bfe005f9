"""The lists each serving strategy gives a set of listeners, in one shape, so that the gate, the offline evaluation,
the nightly lists and the near-real-time lists all call the same code.

| strategy | how a list is made | its `score` |
|---|---|---|
| `ranker` | recall → LightGBM ranker (XE-NDCG) → re-rank | calibrated chance the listener likes it, [0, 1] |
| | (candidates.py, ranker.py, rerank.py) | |
| `als` | the ALS model's best unheard episodes | the ALS preference estimate user · episode |
| | | (≈ 0..1, may slightly exceed 1) |
| `hybrid` | ALS blended with content similarity (serving/hybrid.py) | the blend, [0, 1] |
| `content` | content similarity to the listener's anchors alone | [0, 1], 1 = closest to what they liked most |
| `popularity` | most listeners with positive engagement in the window | listeners ÷ the most popular episode's, |
| | | [0, 1] |
| `trending` | most listeners with positive engagement in the last 7 days (the cold-start list) | the same, [0, 1] |

A served list the strategy leaves short is completed from `trending` (`fill_short`; source `popular`, each score
at most the one above it), so every listener with history gets a full list whatever serves.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from podrec_assets.lib.models.ranking import best_k
from podrec_assets.lib.ranking.candidates import Candidates, RecallConfig, recall
from podrec_assets.lib.ranking.catalog import Catalog, EpisodeStats, ModelSide
from podrec_assets.lib.ranking.listeners import Listeners
from podrec_assets.lib.ranking.ranker import Ranker
from podrec_assets.lib.ranking.rerank import limit_per_show
from podrec_assets.lib.serving.hybrid import HybridInputs, hybrid_top_n

STRATEGIES = ("ranker", "als", "hybrid", "content", "popularity", "trending")


@dataclass
class Lists:
    """Per listener (rows in the order asked for) the top-n episodes, best first; −1 / NaN / "" where shorter."""

    items: np.ndarray  # (U, n) catalog index
    scores: np.ndarray  # (U, n) float32
    sources: np.ndarray  # (U, n) object: the reason group (als | content | show | popular | new)
    anchors: np.ndarray  # (U, n) catalog index of the anchor a content pick is like, −1 otherwise

    @classmethod
    def empty(cls, users: int, n: int) -> Lists:
        return cls(
            np.full((users, n), -1, np.int64),
            np.full((users, n), np.nan, np.float32),
            np.full((users, n), "", dtype=object),
            np.full((users, n), -1, np.int64),
        )

    def as_lists(self) -> list[list[int]]:
        return [[int(i) for i in row if i >= 0] for row in self.items]


@dataclass(frozen=True)
class StrategyConfig:
    n: int = 20
    recall: RecallConfig = field(default_factory=RecallConfig)
    als_weight: float = 1.0  # hybrid: w in w·ALS + (1 − w)·content
    cold_weight: float = 1.0  # hybrid: content scores of episodes ALS has no opinion on are scaled by this
    per_show: int = 3  # re-rank: at most this many episodes of one show in the top 10 (0 = no limit)


def lists_for(
    strategy: str,
    users: np.ndarray,
    listeners: Listeners,
    catalog: Catalog,
    model: ModelSide,
    stats: EpisodeStats,
    config: StrategyConfig,
    ranker: Ranker | None = None,
    candidates: Candidates | None = None,
    explain: bool = True,
) -> Lists:
    """The `strategy`'s lists for the listeners at indices `users` (ascending), `candidates` their recall if
    already made. `explain=False`: the ranker's lists without their reasons (for judging: the same episodes and
    scores, without the per-feature contributions that cost several predictions each)."""
    if strategy == "ranker":
        if ranker is None:
            raise ValueError("the ranker strategy needs a ranker")
        return ranked_lists(users, listeners, catalog, model, stats, config, ranker, candidates, explain)
    if strategy == "popularity":
        return _popularity(users, listeners, stats.listeners, config.n)
    if strategy == "trending":  # the week first, all-time breaks its ties
        return _popularity(users, listeners, stats.trending, config.n)
    if strategy == "als":
        return _als(users, listeners, model, config.n)
    if strategy in ("hybrid", "content"):
        weight = config.als_weight if strategy == "hybrid" else 0.0
        inputs = HybridInputs(
            user_vectors=listeners.vectors[users],
            user_known=listeners.solved[users],
            item_vectors=model.item_vectors,
            item_known=model.item_known,
            similarity=catalog.similarity,
            anchors=listeners.anchors[users],
            anchor_weights=listeners.anchor_weights[users],
            exclude=listeners.seen[users],
            popularity=stats.recent_7d,
        )
        out = hybrid_top_n(inputs, config.n, weight, cold_weight=config.cold_weight)
        return Lists(out.items, out.scores, out.source, out.anchor)
    raise ValueError(f"unknown strategy {strategy!r}; one of {STRATEGIES}")


def fill_short(lists: Lists, users: np.ndarray, listeners: Listeners, stats: EpisodeStats) -> Lists:
    """Served lists are full: a list the strategy left short (ALS alone for a listener with no positive episode,
    so no vector; or a strategy that knows few episodes) is completed with this week's most liked unheard
    episodes it does not hold yet, marked `popular`, each scored at most the score above it."""
    n = lists.items.shape[1]
    short = np.flatnonzero((lists.items < 0).any(axis=1))
    if len(short) == 0:
        return lists
    trending = _popularity(users[short], listeners, stats.trending, 2 * n)
    for k, row in enumerate(short):
        have = int((lists.items[row] >= 0).sum())
        fresh = (trending.items[k] >= 0) & ~np.isin(trending.items[k], lists.items[row, :have])
        items, scores = trending.items[k][fresh][: n - have], trending.scores[k][fresh][: n - have]
        if have:
            scores = np.minimum(scores, lists.scores[row, have - 1])
        end = have + len(items)
        lists.items[row, have:end] = items
        lists.scores[row, have:end] = scores
        lists.sources[row, have:end] = "popular"
        lists.anchors[row, have:end] = -1
    return lists


def _best_unheard(scores: np.ndarray, valid: np.ndarray, n: int, source: str) -> Lists:
    """Each row's n best `scores` where `valid` (the listener has not engaged with it), best first."""
    out = Lists.empty(len(scores), n)
    k = min(n, scores.shape[1])
    if k == 0 or len(scores) == 0:
        return out
    best, values = best_k(np.where(valid & np.isfinite(scores), scores, -np.inf).astype(np.float32), k)
    ok = np.isfinite(values)
    out.items[:, :k] = np.where(ok, best, -1)
    out.scores[:, :k] = np.where(ok, values, np.nan)
    out.sources[:, :k] = np.where(ok, source, "")
    return out


def _popularity(users: np.ndarray, listeners: Listeners, counts: np.ndarray, n: int) -> Lists:
    top = float(counts.max()) if len(counts) else 0.0
    score = np.broadcast_to(counts / top if top > 0 else counts, (len(users), len(counts)))
    return _best_unheard(score, ~listeners.seen[users].toarray(), n, "popular")


def _als(users: np.ndarray, listeners: Listeners, model: ModelSide, n: int) -> Lists:
    scores = listeners.vectors[users] @ model.item_vectors.T
    valid = ~listeners.seen[users].toarray() & model.item_known[None, :] & listeners.solved[users, None]
    return _best_unheard(scores, valid, n, "als")


def ranked_lists(
    users: np.ndarray,
    listeners: Listeners,
    catalog: Catalog,
    model: ModelSide,
    stats: EpisodeStats,
    config: StrategyConfig,
    ranker: Ranker,
    candidates: Candidates | None = None,
    explain: bool = True,
) -> Lists:
    """Recall (unless `candidates` are given), rank with the ranker, re-rank; scores calibrated, reasons from the
    features' contributions (`explain=False`: no reasons, sources left empty)."""
    out = Lists.empty(len(users), config.n)
    if candidates is None:
        candidates = recall(listeners, users, catalog, model, stats, config.recall)
    if len(candidates) == 0:
        return out
    margins = ranker.margin(candidates.features)
    position = np.searchsorted(users, candidates.user)
    # by listener, best first; the ranker's output is piecewise constant, so ties are common: ALS's finer order
    # decides them, then the episode index (deterministic)
    als = np.nan_to_num(candidates.feature("als_score"), nan=-np.inf)
    order = np.lexsort((candidates.item, -als, -margins, position))
    position, ranked = position[order], order
    starts = np.searchsorted(position, np.arange(len(users)), side="left")
    ends = np.searchsorted(position, np.arange(len(users)), side="right")
    scores = ranker.score(margins)
    picks = []
    for row, (start, end) in enumerate(zip(starts, ends, strict=True)):
        picked = ranked[start : min(end, start + config.n * 2)]  # room for the re-rank to pull from
        items = candidates.item[picked]
        permutation = limit_per_show(items, catalog.show_codes, config.per_show)
        picked = picked[permutation][: config.n]
        k = len(picked)
        out.items[row, :k] = candidates.item[picked]
        # a re-ranked list still reads in order: a demoted episode shows at most the score above it
        out.scores[row, :k] = np.minimum.accumulate(scores[picked])
        picks.append(picked)
    if not explain:
        return out
    # only the rows that are served need their reasons explained, all at once (one prediction call)
    reasons = ranker.reasons(candidates.features[np.concatenate(picks)])
    per_row = np.split(np.asarray(reasons, dtype=object), np.cumsum([len(p) for p in picks])[:-1])
    for row, (picked, why) in enumerate(zip(picks, per_row, strict=True)):
        k = len(picked)
        out.sources[row, :k] = why
        out.anchors[row, :k] = np.where(why == "content", candidates.anchor[picked], -1)
    return out
