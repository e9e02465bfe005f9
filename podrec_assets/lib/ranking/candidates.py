"""Recall and features: a few hundred candidates per listener, and the numbers each is ranked on.

RECALL (per listener, never an episode they engaged with):
- `als`: the ALS model's best episodes (user · episode factors), the listener's vector folded in;
- `content`: the nearest neighbours (episode_similarity) of the listener's anchors, weighted by anchor strength;
- `popular`: the episodes most listeners liked in the last 7 days (trending), the same for everyone;
- `new`: the most recently published episodes (or, without a date, first heard), so a new episode can compete.

FEATURES (one row per listener and candidate; NaN = unknown, which LightGBM routes as its own branch):

| feature | what it says |
|---|---|
| als_score, als_rank, als_known | the collaborative evidence: dot product, position in the listener's ALS list, |
| | whether ALS knows the episode |
| content_max, content_best, content_mean | cosine of the episode's content vector with the listener's anchors: |
| | the best weighted match, the match with the strongest anchor, the mean |
| content_latest, als_latest | mean cosine with the listener's latest positive episodes, |
| | by content vector and by ALS episode factor (what they are into right now) |
| category_affinity, show_affinity | share of the listener's liked episodes in the episode's categories / on its show |
| listeners_log, recent_7d_log, recent_30d_log, trend | popularity: listeners who liked it, in all, |
| | in the last 7 and 30 days; 7-day vs 30-day pace |
| episode_age_days, published_age_days | days since its first event / since it was published |
| mean_engagement, negative_share | how its listeners took it: mean engagement, share of skips and low ratings |
| user_positives_log, user_events_log, user_idle_days | the listener: how much history, |
| | how long since their latest event |
| from_als, from_content, from_popular, from_new | which recall source(s) proposed it |
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from podrec_assets.lib.models.ranking import best_k
from podrec_assets.lib.ranking.catalog import DAY, Catalog, EpisodeStats, ModelSide
from podrec_assets.lib.ranking.listeners import Listeners

FEATURES = [
    "als_score",
    "als_rank",
    "als_known",
    "content_max",
    "content_best",
    "content_mean",
    "content_latest",
    "als_latest",
    "category_affinity",
    "show_affinity",
    "listeners_log",
    "recent_7d_log",
    "recent_30d_log",
    "trend",
    "episode_age_days",
    "published_age_days",
    "mean_engagement",
    "negative_share",
    "user_positives_log",
    "user_events_log",
    "user_idle_days",
    "from_als",
    "from_content",
    "from_popular",
    "from_new",
]
SOURCES = ("als", "content", "popular", "new")
BLOCK_USERS = 512


@dataclass(frozen=True)
class RecallConfig:
    """Candidates per listener from each source (their union is what the ranker orders)."""

    als: int = 200
    content: int = 50
    popular: int = 50
    new: int = 20


@dataclass
class Candidates:
    """One row per (listener, candidate episode), grouped by listener in the order of `users`."""

    user: np.ndarray  # (R,) listener index
    item: np.ndarray  # (R,) catalog index
    features: np.ndarray  # (R, len(FEATURES)) float32
    anchor: np.ndarray  # (R,) catalog index of the anchor the episode is most like, −1 if none
    sources: dict[str, np.ndarray] = field(default_factory=dict)  # name → (R,) bool

    def __len__(self) -> int:
        return len(self.user)

    def feature(self, name: str) -> np.ndarray:
        return self.features[:, FEATURES.index(name)]

    def of(self, users: np.ndarray) -> Candidates:
        """The rows of the listeners `users` only (in the same order)."""
        rows = np.isin(self.user, users)
        return Candidates(self.user[rows], self.item[rows], self.features[rows], self.anchor[rows],
                          {name: flags[rows] for name, flags in self.sources.items()})  # fmt: skip


def recall(
    listeners: Listeners,
    users: np.ndarray,
    catalog: Catalog,
    model: ModelSide,
    stats: EpisodeStats,
    config: RecallConfig = RecallConfig(),
) -> Candidates:
    """Candidates and their features for the listeners at indices `users` (see the module docstring)."""
    parts = [
        _block(listeners, users[start : start + BLOCK_USERS], catalog, model, stats, config)
        for start in range(0, len(users), BLOCK_USERS)
    ]
    if not parts:
        return Candidates(
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
            np.zeros((0, len(FEATURES)), np.float32),
            np.zeros(0, np.int64),
            {s: np.zeros(0, bool) for s in SOURCES},
        )
    return Candidates(
        user=np.concatenate([p.user for p in parts]),
        item=np.concatenate([p.item for p in parts]),
        features=np.concatenate([p.features for p in parts]),
        anchor=np.concatenate([p.anchor for p in parts]),
        sources={s: np.concatenate([p.sources[s] for p in parts]) for s in SOURCES},
    )


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    """(B, C) bool: each row's k best finite entries."""
    chosen = np.zeros(scores.shape, dtype=bool)
    k = min(k, scores.shape[1])
    if k <= 0:
        return chosen
    best, values = best_k(scores, k)
    rows = np.repeat(np.arange(scores.shape[0]), k)
    ok = np.isfinite(values).ravel()
    chosen[rows[ok], best.ravel()[ok]] = True
    return chosen


def row_dots(vectors: np.ndarray, item: np.ndarray, others: np.ndarray, chunk: int = 8192) -> np.ndarray:
    """(R, L): the dot product of row r's `item` vector with each of its `others` (indices ≥ 0). Gathered a chunk
    of rows at a time: all at once, a 512-listener block's (R, L, d) content vectors took ~1.2 GB."""
    out = np.empty(others.shape, dtype=np.float32)
    for start in range(0, len(item), chunk):
        rows = slice(start, start + chunk)
        out[rows] = np.einsum("rd,rld->rl", vectors[item[rows]], vectors[others[rows]])
    return out


def _mean_cosine(unit: np.ndarray, present: np.ndarray, item: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Per row, the mean cosine of `item`'s vector with the vectors of the row's `others` (−1 = none); NaN where
    no pair has both vectors."""
    slots = np.maximum(others, 0)
    cosines = row_dots(unit, item, slots)
    valid = (others >= 0) & present[slots] & present[item][:, None]
    counted = valid.sum(axis=1)
    total = np.where(valid, cosines, 0).sum(axis=1)
    return np.where(counted > 0, total / np.maximum(counted, 1), np.nan)


def _block(
    listeners: Listeners,
    users: np.ndarray,
    catalog: Catalog,
    model: ModelSide,
    stats: EpisodeStats,
    config: RecallConfig,
) -> Candidates:
    size = len(catalog)
    allowed = ~listeners.seen[users].toarray()

    als = (listeners.vectors[users] @ model.item_vectors.T).astype(np.float32)
    als_valid = allowed & model.item_known[None, :] & listeners.solved[users, None] & np.isfinite(als)
    als_masked = np.where(als_valid, als, -np.inf)
    k_als = min(config.als, size)
    als_rank = np.full(als.shape, np.nan, dtype=np.float32)
    from_als = np.zeros(als.shape, dtype=bool)
    if k_als > 0:
        best, values = best_k(als_masked, k_als)
        rows = np.repeat(np.arange(len(users)), k_als)
        ok = np.isfinite(values).ravel()
        als_rank[rows[ok], best.ravel()[ok]] = np.tile(np.arange(k_als, dtype=np.float32), len(users))[ok]
        from_als[rows[ok], best.ravel()[ok]] = True

    content = np.zeros((len(users), size), dtype=np.float32)
    anchors, weights = listeners.anchors[users], listeners.anchor_weights[users]
    for slot in range(anchors.shape[1]):
        has = anchors[:, slot] >= 0
        if not has.any():
            continue
        rows = catalog.similarity[np.where(has, anchors[:, slot], 0)].toarray() * weights[:, slot, None]
        rows[~has] = 0
        content = np.maximum(content, rows)
    from_content = _top(np.where(allowed & (content > 0), content, -np.inf), config.content)

    trending = stats.trending
    from_popular = _top(
        np.where(allowed & (trending > 0)[None, :], trending[None, :], -np.inf), config.popular
    )
    newness = np.where(np.isfinite(catalog.published), catalog.published, stats.first_seen)
    from_new = _top(np.where(allowed & np.isfinite(newness)[None, :], newness[None, :], -np.inf), config.new)

    chosen = from_als | from_content | from_popular | from_new
    row, item = np.nonzero(chosen)
    user = users[row]
    features = np.full((len(row), len(FEATURES)), np.nan, dtype=np.float32)

    def put(name: str, values) -> None:
        features[:, FEATURES.index(name)] = values

    put("als_score", np.where(als_valid[row, item], als[row, item], np.nan))
    put("als_rank", als_rank[row, item])
    put("als_known", model.item_known[item])

    best_anchor = np.full(len(row), -1, dtype=np.int64)
    if catalog.vectors.shape[1] and anchors.shape[1]:
        slots = anchors[row]  # (R, A)
        valid = (slots >= 0) & catalog.has_vector[np.maximum(slots, 0)] & catalog.has_vector[item][:, None]
        cosines = row_dots(catalog.vectors, item, np.maximum(slots, 0))
        cosines = np.where(valid, cosines, np.nan)
        weighted = np.where(valid, cosines * weights[row], -np.inf)
        any_valid = valid.any(axis=1)
        pick = np.argmax(weighted, axis=1)
        put("content_max", np.where(any_valid, weighted[np.arange(len(row)), pick], np.nan))
        put("content_best", cosines[:, 0])
        counted = valid.sum(axis=1)
        total = np.where(valid, cosines, 0).sum(axis=1)
        put("content_mean", np.where(counted > 0, total / np.maximum(counted, 1), np.nan))
        best_anchor = np.where(any_valid, slots[np.arange(len(row)), pick], -1)

    latest = listeners.recent[user]  # (R, L), −1 where fewer
    if catalog.vectors.shape[1]:
        put("content_latest", _mean_cosine(catalog.vectors, catalog.has_vector, item, latest))
    norms = np.maximum(np.linalg.norm(model.item_vectors, axis=1), 1e-12)[:, None]
    put("als_latest", _mean_cosine(model.item_vectors / norms, model.item_known, item, latest))

    categories = catalog.categories[item].astype(np.float32)
    per_episode = np.maximum(np.asarray(categories.sum(axis=1)).ravel(), 1)
    affinity = np.asarray(categories.multiply(listeners.category_affinity[user]).sum(axis=1)).ravel()
    put("category_affinity", affinity / per_episode)
    show = catalog.show_codes[item]
    has_show = show >= 0
    show_affinity = np.zeros(len(row), dtype=np.float32)
    if has_show.any() and listeners.show_affinity.shape[1]:
        show_affinity[has_show] = np.asarray(listeners.show_affinity[user[has_show], show[has_show]]).ravel()
    put("show_affinity", show_affinity)

    put("listeners_log", np.log1p(stats.listeners[item]))
    put("recent_7d_log", np.log1p(stats.recent_7d[item]))
    put("recent_30d_log", np.log1p(stats.recent_30d[item]))
    put("trend", (stats.recent_7d[item] + 1) / (stats.recent_30d[item] * 7 / 30 + 1))
    put("episode_age_days", (stats.t_ref - stats.first_seen[item]) / DAY)
    put("published_age_days", (stats.t_ref - catalog.published[item]) / DAY)
    put("mean_engagement", stats.mean_engagement[item])
    put("negative_share", stats.negative_share[item])
    put("user_positives_log", np.log1p(listeners.positives[user]))
    put("user_events_log", np.log1p(listeners.events[user]))
    put("user_idle_days", (stats.t_ref - listeners.last_event[user]) / DAY)
    sources = {
        "als": from_als[row, item],
        "content": from_content[row, item],
        "popular": from_popular[row, item],
        "new": from_new[row, item],
    }
    for name, flags in sources.items():
        put(f"from_{name}", flags)
    return Candidates(user=user, item=item, features=features, anchor=best_anchor, sources=sources)
