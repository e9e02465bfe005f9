"""Exact top-K cosine neighbours of unit vectors, computed one block of rows at a time.

Memory: the vectors themselves (n x d float32: 50k x 384 = 77 MB) plus, per block, a block x n score matrix
(float32) with its argpartition indices (int64) and a comparison mask: about 13 bytes x block x n, capped by
`max_block_bytes` (256 MB by default, so ~400 rows per block at n = 50k). Time grows as n^2 x d (every pair is
scored), fine up to some 10^5 episodes on a laptop; around 10^6 episodes exact search stops paying and an
approximate nearest-neighbour index (FAISS IVF/HNSW, hnswlib) takes over.
"""

from __future__ import annotations

import numpy as np

BYTES_PER_CELL = 13  # float32 score + int64 argpartition index + bool mask


def default_block_rows(n: int, max_block_bytes: int = 256 * 2**20) -> int:
    """Rows per block so that the per-block working set stays within `max_block_bytes`."""
    return int(max(1, min(max(n, 1), max_block_bytes // (BYTES_PER_CELL * max(n, 1)))))


def top_k_similar(
    vectors: np.ndarray, k: int, block_rows: int | None = None, max_block_bytes: int = 256 * 2**20
) -> tuple[np.ndarray, np.ndarray]:
    """For each row of `vectors` (n x d, unit rows), the indices (int64) and cosine scores (float32, clipped to
    [-1, 1]) of its k most similar OTHER rows, by score descending, ties by lower index; shape (n, min(k, n - 1))."""
    vecs = np.ascontiguousarray(vectors, dtype=np.float32)
    if vecs.ndim != 2:
        raise ValueError(f"vectors must be 2-D, got shape {vecs.shape}")
    n = vecs.shape[0]
    kk = max(0, min(int(k), n - 1))
    out_idx = np.zeros((n, kk), np.int64)
    out_scores = np.zeros((n, kk), np.float32)
    if kk == 0:
        return out_idx, out_scores
    rows = block_rows if block_rows is not None else default_block_rows(n, max_block_bytes)
    rows = max(1, min(int(rows), n))
    buf = np.empty((rows, n), np.float32)
    for s in range(0, n, rows):
        e = min(s + rows, n)
        b = e - s
        scores = buf[:b]
        np.matmul(vecs[s:e], vecs.T, out=scores)
        scores[np.arange(b), np.arange(s, e)] = -np.inf  # never one's own neighbour
        # The kk largest, unordered; copied so the b x n int64 index array is freed at once.
        part = np.argpartition(scores, n - kk, axis=1)[:, n - kk :].copy()
        part_scores = np.take_along_axis(scores, part, axis=1)
        # Ties at the k-th score: argpartition picks arbitrarily among equal scores; redo those rows stably.
        threshold = part_scores.min(axis=1)
        tied = np.flatnonzero((scores >= threshold[:, None]).sum(axis=1) > kk)
        for r in tied:
            part[r] = np.argsort(-scores[r], kind="stable")[:kk]
            part_scores[r] = scores[r, part[r]]
        order = np.lexsort((part, -part_scores), axis=1)  # score descending, then lower index
        out_idx[s:e] = np.take_along_axis(part, order, axis=1)
        out_scores[s:e] = np.take_along_axis(part_scores, order, axis=1)
    np.clip(out_scores, -1.0, 1.0, out=out_scores)
    return out_idx, out_scores
