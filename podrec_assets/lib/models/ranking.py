"""Where a recommendation gets its score: top-N by dot product of user and item vectors, minus excluded pairs.

ALS scores are `user_factors · episode_factors`; the popularity baseline is the same computation with a user vector of
1 and an item "vector" of its popularity. Scoring runs in numpy a block of users at a time, on the driver or, above
PODREC_SPARK_PATH_MIN_LISTENERS listeners, in Spark tasks (recommend_spark.py); memory stays at block × catalog
floats either way (2,048 × 100k episodes ≈ 800 MB is the practical ceiling per process).
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

from podrec_assets.lib.models.factors import Factors

BLOCK_USERS = 2048


def top_n(
    user_vectors: np.ndarray, item_vectors: np.ndarray, exclude: sparse.csr_matrix, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """For each row of `user_vectors`, the `n` best items not in that row of `exclude`, best first.

    Returns (items, scores), both of shape (users, n); rows with fewer than n candidates are padded with item -1
    and score NaN. Ties are broken by the lower item index, so results are deterministic."""
    users, catalog = len(user_vectors), len(item_vectors)
    k = min(n, catalog)
    items = np.full((users, n), -1, dtype=np.int64)
    scores = np.full((users, n), np.nan, dtype=np.float32)
    if users == 0 or k == 0:
        return items, scores
    exclude = exclude.tocsr()
    for start in range(0, users, BLOCK_USERS):
        stop = min(start + BLOCK_USERS, users)
        block = (user_vectors[start:stop] @ item_vectors.T).astype(np.float32)
        rows, cols = exclude[start:stop].nonzero()
        block[rows, cols] = -np.inf
        best, best_scores = best_k(block, k)
        valid = np.isfinite(best_scores)
        items[start:stop, :k] = np.where(valid, best, -1)
        scores[start:stop, :k] = np.where(valid, best_scores, np.nan)
    return items, scores


def best_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the column indices of the k highest scores and those scores, best first, ties broken by the lower
    index (deterministic). Excluded entries should be −inf; they come last."""
    scores = np.where(np.isnan(scores), -np.inf, scores)  # a NaN never outranks a real score
    # The k-th best score per row; everything above it is in, and of the entries equal to it the lowest indices
    # fill the remaining places (argpartition alone would pick arbitrary ones among ties).
    threshold = -np.partition(-scores, k - 1, axis=1)[:, k - 1 : k]
    above = scores > threshold
    tied = scores == threshold
    places_left = k - above.sum(axis=1, keepdims=True)
    chosen = above | (tied & (np.cumsum(tied, axis=1) <= places_left))
    candidates = np.nonzero(chosen)[1].reshape(scores.shape[0], k)
    candidate_scores = np.take_along_axis(scores, candidates, axis=1)
    order = np.lexsort((candidates, -candidate_scores), axis=1)
    return np.take_along_axis(candidates, order, axis=1), np.take_along_axis(candidate_scores, order, axis=1)


def popularity(item_indices: np.ndarray, catalog: int) -> np.ndarray:
    """Item popularity as an (items × 1) "vector": how many positive pairs each item has."""
    return np.bincount(item_indices, minlength=catalog).astype(np.float32).reshape(-1, 1)


def pair_matrix(
    user_indices: np.ndarray, item_indices: np.ndarray, shape: tuple[int, int]
) -> sparse.csr_matrix:
    """A boolean users × items matrix with the given pairs set (duplicates collapse)."""
    data = np.ones(len(user_indices), dtype=bool)
    matrix = sparse.csr_matrix((data, (user_indices, item_indices)), shape=shape, dtype=bool)
    matrix.sum_duplicates()
    return matrix


def rank_with_factors(
    user_vectors: np.ndarray, items: Factors, exclude: sparse.csr_matrix, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """`top_n` over the items the model has factors for (ALS cannot place an item it never saw), with `exclude`
    and the returned indices in catalog item indices."""
    best, scores = top_n(user_vectors, items.vectors, exclude[:, items.ids], n)
    return np.where(best >= 0, items.ids[np.maximum(best, 0)], -1), scores
