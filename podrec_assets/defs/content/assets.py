"""The content side of the graph: `episodes` → `transcripts` → `transcript_embeddings` → `episode_similarity`.

Each asset reads its upstream Delta table itself (deps, not IO managers) and writes only what changed; the three
downstream assets follow the catalog automatically (declarative automation), and `episode_catalog_schedule` refreshes
the catalog."""

import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
from dagster import (
    AssetExecutionContext,
    AutomationCondition,
    Config,
    Failure,
    FreshnessPolicy,
    MaterializeResult,
    MetadataValue,
    asset,
)
from deltalake import write_deltalake
from pydantic import Field

from podrec_assets.defs.resources import CatalogResource, DeltaLakeResource, MongoResource
from podrec_assets.lib.content.catalog import mirror_episodes
from podrec_assets.lib.content.embedding import MODEL_NAME, OVERLAP, embed_texts, load_model, texts_to_encode
from podrec_assets.lib.content.similarity import top_k_similar
from podrec_assets.lib.content.tables import (
    EPISODE_SIMILARITY_SCHEMA,
    TRANSCRIPT_EMBEDDINGS_SCHEMA,
    episodes_table,
    vector_matrix,
)
from podrec_assets.lib.content.transcript_text import NoSpeechToText, fetch_transcript
from podrec_assets.lib.content.transcripts import (
    MAX_ATTEMPTS,
    PLAN_EPISODE_COLUMNS,
    PLAN_TRANSCRIPT_COLUMNS,
    plan,
    run_jobs,
)
from podrec_assets.lib.lakehouse import delta_version, read_table, upsert_by_key
from podrec_assets.names import (
    EPISODE_SIMILARITY,
    EPISODES,
    TRANSCRIPT_EMBEDDINGS,
    TRANSCRIPTS,
)

FOLLOWS_UPSTREAM = AutomationCondition.eager()


def _require(table: pa.Table | None, name: str) -> pa.Table:
    if table is None:
        raise Failure(f"{name} does not exist yet: materialize it first")
    return table


@asset(
    name=EPISODES,
    # the catalog schedule runs every 6 hours: two missed runs warn, three fail
    freshness_policy=FreshnessPolicy.time_window(
        fail_window=timedelta(hours=19), warn_window=timedelta(hours=13)
    ),
    description="The episode catalog from the configured sources (PodcastIndex, RSS feeds, MovieLens items, the "
    "sample). Upserted by episode_id (only changed rows are written) and mirrored into MongoDB `episodes`.",
)
def episodes(
    context: AssetExecutionContext, catalog: CatalogResource, delta: DeltaLakeResource, mongo: MongoResource
) -> MaterializeResult:
    now = datetime.now(UTC)
    collected = catalog.collect()
    for error in collected.errors:
        context.log.warning(f"{error.source} {error.kind}: {error.feed}: {error.message}")
    rows = episodes_table(collected.episodes, now)
    if rows.num_rows == 0 and collected.errors:
        raise Failure("no source gave any episode", metadata={"errors": len(collected.errors)})
    uri, options = delta.table_uri(EPISODES), delta.storage_options()
    inserted, updated = upsert_by_key(uri, rows, "episode_id", "content_hash", options)
    stored = _require(read_table(uri, storage_options=options), EPISODES)
    client = mongo.client()
    try:
        mirrored = mirror_episodes(mongo.db(client)[EPISODES], stored, now)
    finally:
        client.close()
    return MaterializeResult(
        metadata={
            "sources": catalog.sources,
            "episodes_seen": rows.num_rows,
            "inserted": inserted,
            "updated": updated,
            "unchanged": rows.num_rows - inserted - updated,
            "catalog_size": stored.num_rows,
            "feed_errors": len(collected.errors),
            "errors": MetadataValue.json([vars(e) for e in collected.errors[:50]]),
            "mongo_documents_written": mirrored,
            "delta_version": delta_version(uri, options),
        }
    )


@asset(
    name=TRANSCRIPTS,
    deps=[EPISODES],
    automation_condition=FOLLOWS_UPSTREAM,
    description=f"Clean text per episode: its linked transcript (SRT, WebVTT, JSON, text, HTML), else title + "
    f"description. Failed fetches are retried on later runs, at most {MAX_ATTEMPTS} times per episode version.",
)
def transcripts(context: AssetExecutionContext, delta: DeltaLakeResource) -> MaterializeResult:
    options = delta.storage_options()
    catalog = _require(read_table(delta.table_uri(EPISODES), PLAN_EPISODE_COLUMNS, options), EPISODES)
    uri = delta.table_uri(TRANSCRIPTS)
    jobs, exhausted = plan(catalog, read_table(uri, PLAN_TRANSCRIPT_COLUMNS, options))
    rows = run_jobs(jobs, fetch_transcript, NoSpeechToText(), datetime.now(UTC))
    for failure in rows.filter(pa.compute.equal(rows.column("status"), "failed")).to_pylist()[:20]:
        context.log.warning(f"transcript of {failure['episode_id']} (attempt {failure['attempts']}): "
                            f"{failure['last_error']}")  # fmt: skip
    inserted, updated = upsert_by_key(uri, rows, "episode_id", "row_hash", options)
    statuses = rows.column("status").to_pylist()
    sources = rows.column("text_source").to_pylist()
    return MaterializeResult(
        metadata={
            "episodes_considered": len(jobs),
            "fetched": statuses.count("fetched") - sources.count("speech_to_text"),
            "speech_to_text": sources.count("speech_to_text"),
            "fell_back": statuses.count("fallback"),
            "failed": statuses.count("failed"),
            "gave_up_after_max_attempts": exhausted,
            "unchanged": catalog.num_rows - len(jobs) - exhausted,
            "rows_written": inserted + updated,
            "delta_version": delta_version(uri, options),
        }
    )


class EmbeddingConfig(Config):
    batch_size: int = Field(default=64, description="chunks per forward pass")
    overlap_tokens: int = Field(
        default=OVERLAP, description="tokens shared by consecutive chunks of a long text"
    )


@asset(
    name=TRANSCRIPT_EMBEDDINGS,
    deps=[TRANSCRIPTS],
    automation_condition=FOLLOWS_UPSTREAM,
    description=f"One unit vector per episode text ({MODEL_NAME}, offline): long texts are split into overlapping "
    "256-token chunks whose normalized vectors are averaged. Only texts whose hash changed are encoded.",
)
def transcript_embeddings(
    context: AssetExecutionContext, config: EmbeddingConfig, delta: DeltaLakeResource
) -> MaterializeResult:
    options = delta.storage_options()
    texts = _require(read_table(delta.table_uri(TRANSCRIPTS), ["episode_id", "text"], options), TRANSCRIPTS)
    uri = delta.table_uri(TRANSCRIPT_EMBEDDINGS)
    existing = read_table(uri, ["episode_id", "text_hash"], options)
    stored = {} if existing is None else dict(zip(*existing.to_pydict().values(), strict=True))
    todo = texts_to_encode(texts.column("episode_id").to_pylist(), texts.column("text").to_pylist(), stored)
    started = time.perf_counter()
    chunks = 0
    if todo:
        embedded = embed_texts(
            load_model(), [t for _, t, _ in todo], config.batch_size, config.overlap_tokens
        )
        chunks = embedded.total_chunks
        now = datetime.now(UTC)
        rows = pa.Table.from_pydict(
            {
                "episode_id": [e for e, _, _ in todo],
                "model": [MODEL_NAME] * len(todo),
                "text_hash": [d for _, _, d in todo],
                "chunks": [int(c) for c in embedded.chunks_per_text],
                "vector": pa.FixedSizeListArray.from_arrays(
                    pa.array(embedded.vectors.astype(np.float32).ravel()), embedded.vectors.shape[1]
                ),
                "updated_at": [now] * len(todo),
            },
            schema=TRANSCRIPT_EMBEDDINGS_SCHEMA,
        )
        upsert_by_key(uri, rows, "episode_id", "text_hash", options)
    seconds = time.perf_counter() - started
    context.log.info(f"encoded {len(todo)} texts ({chunks} chunks) in {seconds:.1f}s")
    return MaterializeResult(
        metadata={
            "encoded": len(todo),
            "chunks_encoded": chunks,
            "unchanged": texts.num_rows - len(todo),
            "encode_seconds": round(seconds, 2),
            "texts_per_second": round(len(todo) / seconds, 1) if todo else 0.0,
            "model": MODEL_NAME,
            "delta_version": delta_version(uri, options),
        }
    )


class SimilarityConfig(Config):
    k: int = Field(default=20, description="neighbours kept per episode")


@asset(
    name=EPISODE_SIMILARITY,
    deps=[TRANSCRIPT_EMBEDDINGS],
    automation_condition=FOLLOWS_UPSTREAM,
    description="The k most similar other episodes of each episode by cosine of their embeddings, computed "
    "exactly, a block of episodes at a time so memory stays bounded. Replaced as a whole on each run.",
)
def episode_similarity(
    context: AssetExecutionContext, config: SimilarityConfig, delta: DeltaLakeResource
) -> MaterializeResult:
    options = delta.storage_options()
    embeddings = _require(
        read_table(delta.table_uri(TRANSCRIPT_EMBEDDINGS), ["episode_id", "vector"], options),
        TRANSCRIPT_EMBEDDINGS,
    )
    ids = np.array(embeddings.column("episode_id").to_pylist(), dtype=object)
    matrix = vector_matrix(embeddings)
    started = time.perf_counter()
    neighbours, scores = top_k_similar(matrix, config.k)
    seconds = time.perf_counter() - started
    per_row = neighbours.shape[1]
    rows = pa.table(
        {
            "episode_id": pa.array(np.repeat(ids, per_row).tolist(), pa.string()),
            "similar_episode_id": pa.array(ids[neighbours.ravel()].tolist() if per_row else [], pa.string()),
            "rank": pa.array(np.tile(np.arange(1, per_row + 1, dtype=np.int32), len(ids))),
            "score": pa.array(scores.ravel().astype(np.float32)),
            "model": pa.array([MODEL_NAME] * (len(ids) * per_row), pa.string()),
        },
        schema=EPISODE_SIMILARITY_SCHEMA,
    )
    uri = delta.table_uri(EPISODE_SIMILARITY)
    write_deltalake(uri, rows, mode="overwrite", schema_mode="overwrite", storage_options=options)
    context.log.info(f"top-{config.k} of {len(ids)} episodes in {seconds:.1f}s")
    return MaterializeResult(
        metadata={
            "episodes": len(ids),
            "k": config.k,
            "pairs": rows.num_rows,
            "similarity_seconds": round(seconds, 2),
            "delta_version": delta_version(uri, options),
        }
    )
