"""`global_stats`: top episodes and trending categories over the last 7 and 30 days, one document per window.

Windows end at the newest event day in raw_user_events (not the wall clock, so a replayed history has windows
too) and are recomputed on every run from the partitions they cover, plus the window before each one (for the
categories' change): delta-rs prunes by `event_date`, so a run reads at most twice the longest window,
whatever the history. Each window's document is replaced whole (`replace_one`, atomic for one document), so
readers see either the previous or the new ranking, and a re-run writes the same thing.

- **positive engagement** of an episode: its likes + completes + ratings of 4 or 5 stars; top episodes are
  ranked by it, then completes, then distinct listeners. A rating counts only if it is the listener's latest of
  that episode among the days read (by time, then event id): a re-rating replaces, as in user_stats (a rating
  older than the days read is not known here, so a re-rating of it counts as the listener's only one).
- **trending categories**: content events per catalog category in the window (each event counts once for each
  of its episode's categories), with the same count in the previous window of equal length and the change;
  ranked by events, then positive engagement. Events of episodes the catalog does not know are counted apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pandas as pd
from deltalake import DeltaTable
from pymongo import ReplaceOne
from pymongo.database import Database

from podrec_assets.lib.ingestion.contract import CONTENT_EVENT_TYPES
from podrec_assets.lib.lakehouse import date_filter
from podrec_assets.lib.stats.aggregate import Catalog
from podrec_assets.names import GLOBAL_STATS

WINDOWS_DAYS = (7, 30)
TOP_N = 10
POSITIVE_MIN_RATING = 4
_COLUMNS = ["event_id", "user_id", "episode_id", "event_type", "ts", "event_date", "rating"]


@dataclass(frozen=True)
class GlobalStatsResult:
    documents: list[dict]
    source_version: int | None
    end_date: date | None
    events_read: int


def window_id(days: int) -> str:
    return f"window_{days}d"


def newest_event_day(table: DeltaTable) -> date | None:
    """The newest `event_date` partition (from the Delta log: no data is read)."""
    days = [p["event_date"] for p in table.partitions() if p.get("event_date")]
    return date.fromisoformat(max(days)) if days else None


def latest_rating_rows(df: pd.DataFrame) -> pd.Series:
    """True for each `rate` row that is its (user, episode)'s latest rating in `df` (by ts, then event_id)."""
    rated = df[(df["event_type"] == "rate") & df["rating"].notna() & df["episode_id"].notna()]
    latest = rated.sort_values(["ts", "event_id"]).groupby(["user_id", "episode_id"], sort=False).tail(1)
    return pd.Series(df.index.isin(latest.index), index=df.index)


def _with_positive(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    rated_high = latest_rating_rows(df) & (df["rating"].fillna(0) >= POSITIVE_MIN_RATING)
    df["positive"] = (df["event_type"].isin(["like", "complete"]) | rated_high).astype("int64")
    df["complete"] = (df["event_type"] == "complete").astype("int64")
    df["like"] = (df["event_type"] == "like").astype("int64")
    df["high_rating"] = rated_high.astype("int64")
    return df


def _top_episodes(content: pd.DataFrame, catalog: Catalog, top_n: int) -> list[dict]:
    if content.empty:
        return []
    grouped = content.groupby("episode_id")
    table = grouped[["positive", "complete", "like", "high_rating"]].sum()
    table["events"] = grouped.size()
    table["listeners"] = grouped["user_id"].nunique()
    table = table.reset_index().sort_values(
        ["positive", "complete", "listeners", "episode_id"], ascending=[False, False, False, True]
    )
    top = []
    for row in table.head(top_n).itertuples(index=False):
        info = catalog.episodes.get(row.episode_id)
        top.append({
            "episode_id": row.episode_id,
            "title": info.title if info else None,
            "show": info.show if info else None,
            "positive": int(row.positive),
            "completes": int(row.complete),
            "likes": int(row.like),
            "high_ratings": int(row.high_rating),
            "events": int(row.events),
            "listeners": int(row.listeners),
        })  # fmt: skip
    return top


def _category_counts(content: pd.DataFrame, catalog: Catalog) -> pd.DataFrame:
    pairs = [
        (episode_id, category)
        for episode_id in content["episode_id"].unique()
        if episode_id in catalog.episodes
        for category in catalog.episodes[episode_id].categories
    ]
    # The ignores: pandas types `columns` as Axes, whose SequenceNotStr protocol a list fails under ty
    if not pairs:
        return pd.DataFrame(columns=["events", "positive", "listeners"])  # ty: ignore[invalid-argument-type]
    links = pd.DataFrame(pairs, columns=["episode_id", "category"])  # ty: ignore[invalid-argument-type]
    joined = content.merge(links, on="episode_id")
    grouped = joined.groupby("category")
    table = pd.DataFrame({"events": grouped.size(), "positive": grouped["positive"].sum()})
    table["listeners"] = grouped["user_id"].nunique()
    return table


def _trending(current: pd.DataFrame, previous: pd.DataFrame, catalog: Catalog, top_n: int) -> list[dict]:
    now, before = _category_counts(current, catalog), _category_counts(previous, catalog)
    if now.empty:
        return []
    now = now.reset_index(names="category").sort_values(
        ["events", "positive", "category"], ascending=[False, False, True]
    )
    top = now.head(top_n)
    trending = []
    for category, events, positive, listeners in zip(
        top["category"], top["events"], top["positive"], top["listeners"], strict=True
    ):
        previous_events = int(before["events"].get(category, 0)) if not before.empty else 0
        trending.append({
            "category": category,
            "events": int(events),
            "positive": int(positive),
            "listeners": int(listeners),
            "previous_events": previous_events,
            "change": int(events) - previous_events,
        })  # fmt: skip
    return trending


def compute_global_stats(
    events_uri: str,
    catalog: Catalog,
    storage_options: dict | None = None,
    windows_days: tuple[int, ...] = WINDOWS_DAYS,
    top_n: int = TOP_N,
    now: datetime | None = None,
) -> GlobalStatsResult:
    """One document per window, from the partitions of the longest window and the one before it only."""
    if not DeltaTable.is_deltatable(events_uri, storage_options=storage_options):
        return GlobalStatsResult([], None, None, 0)
    table = DeltaTable(events_uri, storage_options=storage_options)
    end = newest_event_day(table)
    if end is None:
        return GlobalStatsResult([], table.version(), None, 0)
    first = end - timedelta(days=2 * max(windows_days) - 1)
    # Pruned while the log is read, before any file is set up: the cost is the window's files, not the
    # table's.
    window = table.to_pyarrow_dataset(file_pruning_predicate=date_filter("event_date", first, end))
    rows = window.to_table(columns=_COLUMNS)
    df = _with_positive(rows.to_pandas())
    content = df[df["episode_id"].notna() & df["event_type"].isin(CONTENT_EVENT_TYPES)]
    computed_at = now or datetime.now(UTC)
    documents = []
    for days in windows_days:
        start, previous_start = end - timedelta(days=days - 1), end - timedelta(days=2 * days - 1)
        in_window = df[df["event_date"] >= start]
        current = content[content["event_date"] >= start]
        previous = content[(content["event_date"] >= previous_start) & (content["event_date"] < start)]
        documents.append({
            "_id": window_id(days),
            "window_days": days,
            "start_date": start.isoformat(),
            "end_date": end.isoformat(),
            "events": len(in_window),
            "content_events": len(current),
            "active_users": int(in_window["user_id"].nunique()),
            "top_episodes": _top_episodes(current, catalog, top_n),
            "trending_categories": _trending(current, previous, catalog, top_n),
            "unknown_episode_events": int((~current["episode_id"].isin(catalog.episodes.keys())).sum()),
            "catalog_present": catalog.present,
            "source_version": table.version(),
            "computed_at": computed_at,
        })  # fmt: skip
    return GlobalStatsResult(documents, table.version(), end, len(df))


def write_global_stats(db: Database, documents: list[dict]) -> int:
    """Replace each window's document whole (atomic per document). Returns how many were written."""
    if documents:
        db[GLOBAL_STATS].bulk_write([ReplaceOne({"_id": d["_id"]}, d, upsert=True) for d in documents])
    return len(documents)
