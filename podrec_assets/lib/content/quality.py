"""What the checks on the content tables measure: problem counts (defs/content/checks.py turns them into pass/fail)."""

import numpy as np
import pyarrow as pa

from podrec_assets.lib.content.embedding import DIMENSION
from podrec_assets.lib.content.tables import vector_matrix

NORM_TOLERANCE = 1e-3


def embedding_problems(embeddings: pa.Table) -> dict[str, int]:
    matrix = vector_matrix(embeddings)
    finite = np.isfinite(matrix).all(axis=1)
    norms = np.linalg.norm(np.where(np.isfinite(matrix), matrix, 0), axis=1)
    return {
        "wrong_dimension": 0 if matrix.shape[1] == DIMENSION or not len(matrix) else embeddings.num_rows,
        "nan_or_inf": int((~finite).sum()),
        "not_unit_norm": int((finite & (np.abs(norms - 1) > NORM_TOLERANCE)).sum()),
    }


def similarity_problems(similarity: pa.Table, episodes: int, k: int) -> dict[str, int]:
    """Self-pairs, scores outside [-1, 1], lists not sorted by rank/score, and episodes with a neighbour count other
    than min(k, episodes - 1)."""
    frame = similarity.select(["episode_id", "similar_episode_id", "rank", "score"]).to_pandas()
    frame = frame.sort_values(["episode_id", "rank"])
    by_episode = frame.groupby("episode_id")
    expected = min(k, max(episodes - 1, 0))
    sizes = by_episode.size()
    return {
        "self_pairs": int((frame["episode_id"] == frame["similar_episode_id"]).sum()),
        "scores_out_of_range": int(
            ((frame["score"] < -1) | (frame["score"] > 1) | frame["score"].isna()).sum()
        ),
        "unsorted_lists": int(
            (~by_episode["score"].apply(lambda s: bool((s.diff().dropna() <= 1e-6).all()))).sum()
        ),
        "wrong_neighbour_count": int((sizes != expected).sum() + (episodes - len(sizes) if expected else 0)),
    }
