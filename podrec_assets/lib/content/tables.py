"""The content side's Delta tables: names, Arrow schemas, and how rows are built.

Each table is keyed by `episode_id` and carries a hash of what it was made from, so a run writes only rows whose
input changed (see `lakehouse.upsert_by_key`)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from podrec_assets.lib.content.embedding import DIMENSION
from podrec_assets.lib.content.episode import Episode

UTC_TIMESTAMP = pa.timestamp("us", tz="UTC")

EPISODES_SCHEMA = pa.schema(
    [
        pa.field("episode_id", pa.string(), nullable=False),
        ("source", pa.string()),
        ("title", pa.string()),
        ("description", pa.string()),
        ("show", pa.string()),
        ("author", pa.string()),
        ("categories", pa.list_(pa.string())),
        ("language", pa.string()),
        ("published_at", UTC_TIMESTAMP),
        ("audio_url", pa.string()),
        ("duration_sec", pa.int64()),
        ("transcript_url", pa.string()),
        ("transcript_type", pa.string()),
        ("feed_url", pa.string()),
        ("content_hash", pa.string()),  # of every field above: a change re-fetches the transcript
        ("updated_at", UTC_TIMESTAMP),
    ]
)

# status: "fetched" (the linked transcript), "fallback" (no transcript link: title + description), "failed" (the
# link could not be read; title + description meanwhile, retried until `attempts` reaches the cap).
TRANSCRIPTS_SCHEMA = pa.schema(
    [
        pa.field("episode_id", pa.string(), nullable=False),
        ("content_hash", pa.string()),  # the episode version this row was made from
        ("status", pa.string()),
        ("text_source", pa.string()),  # "transcript" | "speech_to_text" | "title_description"
        ("text", pa.string()),
        ("transcript_url", pa.string()),
        ("attempts", pa.int32()),  # failed fetches of this episode version
        ("last_error", pa.string()),
        ("row_hash", pa.string()),  # of the row's content: identical rows are not rewritten
        ("updated_at", UTC_TIMESTAMP),
    ]
)

TRANSCRIPT_EMBEDDINGS_SCHEMA = pa.schema(
    [
        pa.field("episode_id", pa.string(), nullable=False),
        ("model", pa.string()),
        ("text_hash", pa.string()),  # sha256 of model name + text: only a changed hash is encoded again
        ("chunks", pa.int32()),
        ("vector", pa.list_(pa.float32(), DIMENSION)),
        ("updated_at", UTC_TIMESTAMP),
    ]
)

EPISODE_SIMILARITY_SCHEMA = pa.schema(
    [
        pa.field("episode_id", pa.string(), nullable=False),
        pa.field("similar_episode_id", pa.string(), nullable=False),
        ("rank", pa.int32()),  # 1 = most similar
        ("score", pa.float32()),  # cosine similarity
        ("model", pa.string()),
    ]
)

_EPISODE_FIELDS = [f.name for f in EPISODES_SCHEMA if f.name not in ("content_hash", "updated_at")]


def episode_record(episode: Episode) -> dict:
    record = {name: getattr(episode, name) for name in _EPISODE_FIELDS}
    record["categories"] = list(episode.categories)
    return record


def content_hash(record: dict) -> str:
    """sha256 of an episode's catalog fields (stable key order; datetimes as ISO strings)."""
    canonical = json.dumps(
        {k: record[k] for k in _EPISODE_FIELDS},
        sort_keys=True,
        default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def episodes_table(episodes: Iterable[Episode], now: datetime) -> pa.Table:
    """One row per episode id (the first occurrence wins when sources overlap), with its content hash."""
    records, seen = [], set()
    for episode in episodes:
        if episode.episode_id in seen:
            continue
        seen.add(episode.episode_id)
        record = episode_record(episode)
        records.append({**record, "content_hash": content_hash(record), "updated_at": now})
    return pa.Table.from_pylist(records, schema=EPISODES_SCHEMA)


def row_hash(row: dict, fields: Iterable[str]) -> str:
    return hashlib.sha256(json.dumps([row[f] for f in fields], ensure_ascii=False).encode()).hexdigest()


def vector_matrix(embeddings: pa.Table) -> np.ndarray:
    """The `vector` column as a (rows × width) float32 matrix, read through Arrow without Python lists. Delta has no
    fixed-size list type, so vectors come back as variable lists: a row of the wrong length shows up as a width that
    is not DIMENSION, and ragged or null rows give width 0 (all NaN)."""
    vectors = embeddings.column("vector").combine_chunks()
    lengths = pc.list_value_length(vectors).to_numpy(zero_copy_only=False)
    if vectors.null_count or len(set(lengths.tolist())) > 1:
        return np.full((len(vectors), 0), np.nan, dtype=np.float32)
    width = int(lengths[0]) if len(lengths) else DIMENSION
    return vectors.flatten().to_numpy(zero_copy_only=False).astype(np.float32).reshape(len(vectors), width)
