"""Checks of the content tables, reading the committed Delta tables (re-runnable from the UI). The pure functions
count problems; the checks turn counts into pass/fail."""

from collections.abc import Iterator

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    asset_check,
    multi_asset_check,
)

from podrec_assets.defs.resources import DeltaLakeResource
from podrec_assets.lib.content.embedding import DIMENSION, texts_to_encode
from podrec_assets.lib.content.quality import embedding_problems, similarity_problems
from podrec_assets.lib.lakehouse import read_table
from podrec_assets.names import EPISODE_SIMILARITY, EPISODES, TRANSCRIPT_EMBEDDINGS, TRANSCRIPTS

# (check name, the problem count it fails on, blocking, description): one read of the vectors serves all three
VECTOR_CHECKS = [
    ("dimension_is_384", "wrong_dimension", True, f"every vector has {DIMENSION} dimensions"),
    ("no_nan_vectors", "nan_or_inf", True, "no NaN or infinite component"),
    ("unit_norm", "not_unit_norm", False, "every vector has unit length (cosine = dot product)"),
]


@multi_asset_check(
    specs=[
        AssetCheckSpec(name, asset=TRANSCRIPT_EMBEDDINGS, blocking=blocking, description=description)
        for name, _, blocking, description in VECTOR_CHECKS
    ]
)
def vectors_well_formed(delta: DeltaLakeResource) -> Iterator[AssetCheckResult]:
    embeddings = read_table(delta.table_uri(TRANSCRIPT_EMBEDDINGS), ["vector"], delta.storage_options())
    problems = embedding_problems(embeddings)
    for name, problem, _, _ in VECTOR_CHECKS:
        yield AssetCheckResult(check_name=name, passed=problems[problem] == 0, metadata=problems)


@asset_check(
    asset=TRANSCRIPT_EMBEDDINGS, description="every episode with text has a vector of its current text"
)
def every_text_has_a_vector(delta: DeltaLakeResource) -> AssetCheckResult:
    options = delta.storage_options()
    texts = read_table(delta.table_uri(TRANSCRIPTS), ["episode_id", "text"], options)
    stored = read_table(delta.table_uri(TRANSCRIPT_EMBEDDINGS), ["episode_id", "text_hash"], options)
    current = dict(
        zip(stored.column("episode_id").to_pylist(), stored.column("text_hash").to_pylist(), strict=True)
    )
    todo = texts_to_encode(texts.column("episode_id").to_pylist(), texts.column("text").to_pylist(), current)
    missing = sorted(e for e, _, _ in todo if e not in current)
    stale = sorted(e for e, _, _ in todo if e in current)
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
    vectors_well_formed,
    every_text_has_a_vector,
    neighbour_lists_valid,
]
