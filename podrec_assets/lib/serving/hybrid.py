"""Where a final recommendation gets its score: a blend of collaborative (ALS) and content (embedding similarity)
evidence, each normalized per user to [0, 1] first.

    score(u, e) = w · als(u, e) + (1 − w) · content(u, e)

- als(u, e): the current ALS model's user · episode score, min-max scaled over the episodes the user may still get
  (so 1 = the model's best remaining pick for that user). Where ALS has no opinion (an episode or a user it never
  saw), the score is content(u, e) alone: the blend is over the evidence there is.
- content(u, e): max over the user's anchors a of weight(a) · cosine(a, e), over each anchor's top-k neighbours,
  divided by the user's largest such value (1 = the closest match to what the user liked most). Anchors are the
  user's positively engaged episodes ranked by engagement × recency (half-life decay), the best few kept; weights
  are scaled so the best anchor has weight 1. Because it needs no interactions with e, a new episode can be
  recommended through content alone.
- Users with neither signal (no history, or only skips) get the most popular episodes of the recent window.

Nothing the user ever engaged with (heard, skipped, rated, anything) is recommended. Each recommendation says why:
"because you liked <anchor title>" when the content term carries more of its score, "listeners with similar taste
enjoyed this" when ALS does, "popular this week" for the popularity fallback.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from podrec_assets.lib.models.ranking import best_k

BLOCK_USERS = 1024
POPULARITY_TIEBREAK = 1e-3
SOURCE_ALS, SOURCE_CONTENT, SOURCE_POPULAR = "als", "content", "popular"


@dataclass(frozen=True)
class HybridInputs:
    """Everything in catalog index space (episodes 0..C-1, users 0..U-1)."""

    user_vectors: np.ndarray  # (U, r) ALS user factors; rows of users the model does not know are all zero
    user_known: np.ndarray  # (U,) bool: ALS knows the user
    item_vectors: np.ndarray  # (C, r) ALS episode factors; zero for episodes the model does not know
    item_known: np.ndarray  # (C,) bool: ALS knows the episode
    similarity: sparse.csr_matrix  # (C, C) cosine of each episode to its top-k neighbours (0 elsewhere)
    anchors: np.ndarray  # (U, A) episode index of each user's best anchors, -1 where fewer
    anchor_weights: np.ndarray  # (U, A) in [0, 1], the best anchor 1
    exclude: sparse.csr_matrix  # (U, C) bool: every engaged pair
    popularity: np.ndarray  # (C,) recent popularity (>= 0)


@dataclass(frozen=True)
class HybridLists:
    """Per user the top-n episodes (−1 padded), their blended score and the two normalized parts, the source and,
    for content picks, the anchor episode behind them (−1 otherwise)."""

    items: np.ndarray  # (U, n) int
    scores: np.ndarray  # (U, n) float32, NaN where padded
    als: np.ndarray  # (U, n) float32
    content: np.ndarray  # (U, n) float32
    source: np.ndarray  # (U, n) object: "als" | "content" | "popular" | ""
    anchor: np.ndarray  # (U, n) int


def _minmax(scores: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Per row, scale the valid entries to [0, 1] (all equal → 1 if positive else 0); invalid entries → 0."""
    low = np.where(valid, scores, np.inf).min(axis=1, keepdims=True)
    high = np.where(valid, scores, -np.inf).max(axis=1, keepdims=True)
    span = np.where(valid.any(axis=1, keepdims=True), high - low, 0)
    with np.errstate(invalid="ignore"):
        scaled = np.where(
            span > 0, (scores - low) / np.where(span > 0, span, 1), (scores > 0).astype(np.float32)
        )
    return np.where(valid, scaled, 0).astype(np.float32)


def hybrid_top_n(inputs: HybridInputs, n: int, als_weight: float, cold_weight: float = 1.0) -> HybridLists:
    """The blended top-n for every user (see the module docstring), a block of users at a time. `cold_weight`
    scales the content score of episodes ALS has no opinion on (1.0: they compete on content alone, as before)."""
    users, catalog = inputs.exclude.shape
    k = min(n, catalog)
    out = HybridLists(
        items=np.full((users, n), -1, dtype=np.int64),
        scores=np.full((users, n), np.nan, dtype=np.float32),
        als=np.zeros((users, n), dtype=np.float32),
        content=np.zeros((users, n), dtype=np.float32),
        source=np.full((users, n), "", dtype=object),
        anchor=np.full((users, n), -1, dtype=np.int64),
    )
    if users == 0 or k == 0:
        return out
    popular = (
        inputs.popularity / inputs.popularity.max() if inputs.popularity.max() > 0 else inputs.popularity
    )
    for start in range(0, users, BLOCK_USERS):
        stop = min(start + BLOCK_USERS, users)
        rows = np.arange(stop - start)
        allowed = ~inputs.exclude[start:stop].toarray()

        als_raw = inputs.user_vectors[start:stop] @ inputs.item_vectors.T
        # a non-finite ALS score (a diverged model) is no opinion, not a tie at the top
        als_valid = (
            allowed & inputs.item_known[None, :] & inputs.user_known[start:stop, None] & np.isfinite(als_raw)
        )
        als = _minmax(als_raw, als_valid)

        content = np.zeros((stop - start, catalog), dtype=np.float32)
        anchor_of = np.full((stop - start, catalog), -1, dtype=np.int64)
        for slot in range(inputs.anchors.shape[1]):
            anchor = inputs.anchors[start:stop, slot]
            has = anchor >= 0
            if not has.any():
                continue
            weighted = (
                inputs.similarity[np.where(has, anchor, 0)].toarray()
                * inputs.anchor_weights[start:stop, slot, None]
            )
            weighted[~has] = 0
            better = weighted > content
            content = np.where(better, weighted, content)
            anchor_of = np.where(better, anchor[:, None], anchor_of)
        content = np.where(allowed, np.clip(content, 0, None), 0).astype(np.float32)
        # Scaled per user like the ALS side, so 1 = the closest match to what this user liked most.
        content = content / np.maximum(content.max(axis=1, keepdims=True), 1e-12)

        # Recent popularity only orders what neither side has any evidence for (its weight is far below any
        # evidence), so a short list is filled with popular episodes rather than arbitrary ones.
        # Where ALS has no opinion (an episode or a user it never saw), the blend is over the evidence there is:
        # content alone, on the same [0, 1] scale, so a new episode very like what the user loved can compete.
        # (Imputing the user's average ALS score instead kept new episodes out of every top-50 on MovieLens.)
        evidence = np.where(als_valid, als_weight * als + (1 - als_weight) * content, cold_weight * content)
        # the tie-break shares the [0, 1] scale instead of adding to it (a score never exceeds 1)
        blended = (1 - POPULARITY_TIEBREAK) * evidence + POPULARITY_TIEBREAK * popular[None, :]
        has_signal = (als_valid.any(axis=1)) | (content > 0).any(axis=1)
        # Users without any signal: recent popularity (scaled to [0, 1]) is their whole score.
        blended = np.where(has_signal[:, None], blended, popular[None, :])
        blended = np.where(allowed, blended, -np.inf).astype(np.float32)

        best, best_scores = best_k(blended, k)
        valid = np.isfinite(best_scores)
        part_als = als[rows[:, None], best]
        part_content = content[rows[:, None], best]
        part_valid = als_valid[rows[:, None], best]
        no_evidence = ~has_signal[:, None] | ((part_als <= 0) & (part_content <= 0))
        source = np.where(
            no_evidence,
            SOURCE_POPULAR,
            np.where(
                ~part_valid | ((1 - als_weight) * part_content > als_weight * part_als),
                SOURCE_CONTENT,
                SOURCE_ALS,
            ),
        )
        out.items[start:stop, :k] = np.where(valid, best, -1)
        out.scores[start:stop, :k] = np.where(valid, best_scores, np.nan)
        out.als[start:stop, :k] = np.where(valid, part_als, 0)
        out.content[start:stop, :k] = np.where(valid, part_content, 0)
        out.source[start:stop, :k] = np.where(valid, source, "")
        out.anchor[start:stop, :k] = np.where(
            valid & (source == SOURCE_CONTENT), anchor_of[rows[:, None], best], -1
        )
    return out


def choose_anchors(
    user_index: np.ndarray,
    item_index: np.ndarray,
    engagement: np.ndarray,
    age_days: np.ndarray,
    users: int,
    per_user: int,
    half_life_days: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Each user's best `per_user` positively engaged episodes by engagement × 0.5^(age / half-life), with weights
    scaled so the best is 1. Returns (anchors, weights), both (users, per_user), anchors −1 where fewer."""
    anchors = np.full((users, per_user), -1, dtype=np.int64)
    weights = np.zeros((users, per_user), dtype=np.float32)
    positive = engagement > 0
    strength = engagement[positive] * np.power(0.5, age_days[positive] / half_life_days)
    u, i = user_index[positive], item_index[positive]
    order = np.lexsort((i, -strength, u))  # by user, strongest first, ties by episode index
    u, i, strength = u[order], i[order], strength[order]
    starts = np.searchsorted(u, u, side="left")
    position = np.arange(len(u)) - starts
    keep = position < per_user
    anchors[u[keep], position[keep]] = i[keep]
    # rows are strongest first within each user, so a user's best is at their first row
    weights[u[keep], position[keep]] = (strength[keep] / strength[starts[keep]]).astype(np.float32)
    return anchors, weights


def similarity_matrix(
    source: np.ndarray, target: np.ndarray, score: np.ndarray, catalog: int
) -> sparse.csr_matrix:
    """The (catalog × catalog) sparse matrix of neighbour scores, from episode_similarity rows in index space."""
    keep = (source >= 0) & (target >= 0)
    return sparse.csr_matrix(
        (score[keep].astype(np.float32), (source[keep], target[keep])), shape=(catalog, catalog)
    )
