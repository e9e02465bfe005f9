"""Checks of the content tables, reading the committed Delta tables (re-runnable from the UI). The pure functions
count problems; the checks turn counts into pass/fail."""

import numpy as np
import pyarrow as pa
from dagster import AssetCheckExecutionContext, AssetCheckResult, AssetCheckSeverity, AssetKey, asset_check

from podrec_assets.content.embedding import DIMENSION
from podrec_assets.content.tables import EPISODE_SIMILARITY, EPISODES, TRANSCRIPT_EMBEDDINGS, TRANSCRIPTS
from podrec_assets.lakehouse import read_table
from podrec_assets.resources import DeltaLakeResource

NORM_TOLERANCE = 1e-3


def vector_matrix(embeddings: pa.Table) -> np.ndarray:
    """(rows × width) float32. Delta has no fixed-size list type: vectors come back as variable lists, so a row of
    the wrong length shows up as a width that is not DIMENSION (ragged rows give width 0)."""
    vectors = embeddings.column("vector").to_pylist()
    lengths = {len(v) for v in vectors if v is not None}
    if len(lengths) > 1 or None in vectors:
        return np.full((len(vectors), 0), np.nan, dtype=np.float32)
    width = lengths.pop() if lengths else DIMENSION
    return np.asarray(vectors, dtype=np.float32).reshape(len(vectors), width)


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


def _embeddings(delta: DeltaLakeResource) -> pa.Table:
    return read_table(delta.table_uri(TRANSCRIPT_EMBEDDINGS), storage_options=delta.storage_options())


@asset_check(
    asset=TRANSCRIPT_EMBEDDINGS, blocking=True, description=f"every vector has {DIMENSION} dimensions"
)
def dimension_is_384(delta: DeltaLakeResource) -> AssetCheckResult:
    problems = embedding_problems(_embeddings(delta))
    return AssetCheckResult(passed=problems["wrong_dimension"] == 0, metadata=problems)


@asset_check(asset=TRANSCRIPT_EMBEDDINGS, blocking=True, description="no NaN or infinite component")
def no_nan_vectors(delta: DeltaLakeResource) -> AssetCheckResult:
    problems = embedding_problems(_embeddings(delta))
    return AssetCheckResult(passed=problems["nan_or_inf"] == 0, metadata=problems)


@asset_check(asset=TRANSCRIPT_EMBEDDINGS, description="every vector has unit length (cosine = dot product)")
def unit_norm(delta: DeltaLakeResource) -> AssetCheckResult:
    problems = embedding_problems(_embeddings(delta))
    return AssetCheckResult(passed=problems["not_unit_norm"] == 0, metadata=problems)


@asset_check(
    asset=TRANSCRIPT_EMBEDDINGS, description="every episode with text has a vector of its current text"
)
def every_text_has_a_vector(delta: DeltaLakeResource) -> AssetCheckResult:
    from podrec_assets.content.embedding import text_hash

    texts = read_table(delta.table_uri(TRANSCRIPTS), ["episode_id", "text"], delta.storage_options())
    embeddings = _embeddings(delta).select(["episode_id", "text_hash"]).to_pylist()
    current = {row["episode_id"]: row["text_hash"] for row in embeddings}
    wanted = {e: text_hash(t) for e, t in zip(*texts.to_pydict().values(), strict=True) if t and t.strip()}
    missing = sorted(e for e in wanted if e not in current)
    stale = sorted(e for e, h in wanted.items() if e in current and current[e] != h)
    return AssetCheckResult(
        passed=not missing and not stale,
        metadata={
            "missing": len(missing),
            "stale": len(stale),
            "examples": ", ".join((missing + stale)[:10]),
        },
    )


@asset_check(
    asset=EPISODE_SIMILARITY,
    blocking=True,
    description="no self-pairs, scores in [-1, 1] and falling with rank, k neighbours where k others exist",
)
def neighbour_lists_valid(context: AssetCheckExecutionContext, delta: DeltaLakeResource) -> AssetCheckResult:
    options = delta.storage_options()
    similarity = read_table(delta.table_uri(EPISODE_SIMILARITY), storage_options=options)
    episodes = read_table(delta.table_uri(TRANSCRIPT_EMBEDDINGS), ["episode_id"], options).num_rows
    # k as the materialization that wrote the table was configured (its metadata), not as the table suggests
    event = context.instance.get_latest_materialization_event(AssetKey(EPISODE_SIMILARITY))
    k = int(event.asset_materialization.metadata["k"].value)
    problems = similarity_problems(similarity, episodes, k)
    return AssetCheckResult(passed=not any(problems.values()), metadata={**problems, "k": k})


@asset_check(asset=EPISODES, description="episode ids are unique and every episode has a title")
def catalog_well_formed(delta: DeltaLakeResource) -> AssetCheckResult:
    table = read_table(delta.table_uri(EPISODES), ["episode_id", "title"], delta.storage_options())
    ids = table.column("episode_id").to_pylist()
    untitled = sum(1 for t in table.column("title").to_pylist() if not (t and t.strip()))
    duplicates = len(ids) - len(set(ids))
    return AssetCheckResult(
        passed=duplicates == 0 and untitled == 0,
        severity=AssetCheckSeverity.WARN if duplicates == 0 else AssetCheckSeverity.ERROR,
        metadata={"episodes": len(ids), "duplicate_ids": duplicates, "untitled": untitled},
    )


content_checks = [
    catalog_well_formed,
    dimension_is_384,
    no_nan_vectors,
    unit_norm,
    every_text_has_a_vector,
    neighbour_lists_valid,
]
