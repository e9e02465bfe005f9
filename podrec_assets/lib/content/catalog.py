"""The catalog from the configured sources, and its mirror in MongoDB `episodes` (seed 000's generator reads episode
ids from there)."""

from __future__ import annotations

from datetime import datetime

import pyarrow as pa
from pymongo import ReplaceOne
from pymongo.collection import Collection

from podrec_assets.lib.content.episode import FeedError, SourceResult
from podrec_assets.lib.content.sources import (
    PodcastIndexClient,
    longtail_episodes,
    movielens_episodes,
    podcastindex_episodes,
    rss_episodes,
    sample_episodes,
)

SOURCES = ("podcastindex", "rss", "movielens", "sample", "longtail")


def collect_catalog(
    sources: list[str],
    rss_feeds: list[str],
    podcastindex: PodcastIndexClient | None,
    max_feeds: int,
    longtail: int = 3000,
) -> SourceResult:
    """Every configured source's episodes and per-feed errors; one failing source never stops the others."""
    unknown = sorted(set(sources) - set(SOURCES))
    if unknown:
        raise ValueError(f"unknown catalog source(s) {unknown}; choose from {list(SOURCES)}")
    result = SourceResult()
    for source in sources:
        if source == "podcastindex":
            if podcastindex is None:
                message = "PODCASTINDEX_API_KEY and PODCASTINDEX_API_SECRET must be set to use PodcastIndex"
                result.errors.append(FeedError("podcastindex", "/podcasts/trending", "auth", message))
            else:
                result.extend(podcastindex_episodes(podcastindex, max_feeds=max_feeds))
        elif source == "rss":
            result.extend(rss_episodes(rss_feeds))
        elif source == "movielens":
            result.extend(movielens_episodes())
        elif source == "longtail":
            result.extend(longtail_episodes(longtail))
        else:
            result.extend(sample_episodes())
    return result


def episode_document(row: dict) -> dict:
    document = {"_id": row["episode_id"], **row}
    return {k: v for k, v in document.items() if v is not None}


def mirror_episodes(collection: Collection, episodes: pa.Table, now: datetime) -> int:
    """Make `collection` hold every catalog row as of `episodes` (the Delta table): documents whose content hash
    differs (or that are missing) are replaced in one unordered bulk write. Comparing with MongoDB itself, not
    with what this run changed, repairs a mirror a crash left behind. Returns how many documents were written."""
    stored = {d["_id"]: d.get("content_hash") for d in collection.find({}, {"content_hash": 1})}
    writes = [
        ReplaceOne({"_id": row["episode_id"]}, {**episode_document(row), "mirrored_at": now}, upsert=True)
        for row in episodes.to_pylist()
        if stored.get(row["episode_id"]) != row["content_hash"]
    ]
    if writes:
        collection.bulk_write(writes, ordered=False)
    return len(writes)
