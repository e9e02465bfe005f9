"""Fold-in: a listener's ALS vector from their engagement, against fixed episode factors, without a retrain.

Implicit ALS (Hu, Koren & Volinsky 2008, as Spark implements it) alternates two closed-form least-squares steps. With
the episode factors Y held fixed, a user's vector is the solution of

    (YᵀY + Σ_i c1_i · y_i y_iᵀ + λ · n⁺ · I) x = Σ_{i: r_i > 0} (1 + c1_i) · y_i,      c1_i = alpha · |r_i|

where the sums run over the episodes the user engaged with (r_i: engagement; negative r_i are confident zeros, they
enter the left side only), and n⁺ is the number of positive ones (Spark scales the regularization by it, ALS-WR).
This is exactly the user half-step Spark runs last in every iteration, so folding in a training user against the
final episode factors gives back Spark's own vector for them (a test holds this). A user with no positive
engagement has no vector (Spark leaves them out of training too).

Cost: one rank × rank solve per user after YᵀY, which is computed once per model: microseconds to a millisecond,
against minutes for a retrain (`benchmarks/freshness.py` measures both).
"""

from __future__ import annotations

import numpy as np


def gramian(item_vectors: np.ndarray) -> np.ndarray:
    """YᵀY of the episode factors (float64), shared by every fold-in against the same model."""
    y = item_vectors.astype(np.float64)
    return y.T @ y


def fold_in(
    item_vectors: np.ndarray,
    users: np.ndarray,
    items: np.ndarray,
    engagement: np.ndarray,
    n_users: int,
    reg_param: float,
    alpha: float,
    yty: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """User vectors for users 0..n_users-1 from their (user, item, engagement) rows, items indexing `item_vectors`.

    Returns (vectors float32 (n_users, rank), solved bool (n_users,)): users without a positive row get zeros and
    solved False. Rows with zero engagement carry no information and are ignored; duplicate (user, item) rows
    must have been summed by the caller (engagement is per pair)."""
    rank = item_vectors.shape[1]
    vectors = np.zeros((n_users, rank), dtype=np.float32)
    solved = np.zeros(n_users, dtype=bool)
    keep = engagement != 0
    users, items, engagement = users[keep], items[keep], engagement[keep].astype(np.float64)
    if len(users) == 0:
        return vectors, solved
    yty = gramian(item_vectors) if yty is None else yty
    y = item_vectors.astype(np.float64)
    order = np.argsort(users, kind="stable")
    users, items, engagement = users[order], items[order], engagement[order]
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    ends = np.r_[starts[1:], len(users)]
    eye = np.eye(rank)
    for start, end in zip(starts, ends, strict=True):
        r = engagement[start:end]
        positives = int((r > 0).sum())
        if positives == 0:
            continue
        yu = y[items[start:end]]
        c1 = alpha * np.abs(r)
        a = yty + (yu.T * c1) @ yu + reg_param * positives * eye
        b = ((r > 0) * (1.0 + c1)) @ yu
        user = users[start]
        vectors[user] = np.linalg.solve(a, b)
        solved[user] = True
    return vectors, solved
