"""What one batch of events adds to each user's stats and affinities: plain functions from Arrow rows to
increments.

Everything here is additive (counts and sums, exact integers) or idempotent (earliest / latest time), so the
stats of a history are the sum of the increments of its batches, which is what makes them incremental. (Ratings
are additive too, as moves between stars, given the pair's previous latest rating: see ratings.py.)

Definitions (per event, so that nothing depends on other batches):
- **listening time** (`listening_ms`): the listened segments events report, `to_sec - from_sec` for every
  event that carries both (pause, skip, abandon, complete, ... whatever the client reports), in whole
  milliseconds. A bare `position_sec` or `played_pct` is a position, not a duration: summing the positions of
  a pause and of the complete that follows would count the first part twice, and a seek makes a position say
  nothing about time listened. So listening time is what clients reported as listened, a lower bound when they
  report positions only (`listening_segments` says how many events contributed).
- **ratings**: each (listener, episode)'s latest rating only (a re-rating replaces the earlier one): count of
  rated episodes, sum and count per star. Which rating is the latest depends on other batches, so these figures
  arrive as `RatingChange`s worked out against `user_episode_ratings` (ratings.py), not from the rows alone.
- **months**: the UTC month of `ts` ("YYYY-MM"). **Devices**: events with a device, by device name.
- **affinities**: each content event of an episode the catalog knows counts once for its show, its author and
  each of its (distinct) categories; events of unknown episodes are counted in `unknown_episode_events` and
  skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa

from podrec_assets.lib.ingestion.contract import CONTENT_EVENT_TYPES
from podrec_assets.lib.lakehouse import read_table
from podrec_assets.lib.stats.batches import EVENT_COLUMNS
from podrec_assets.lib.stats.keys import affinity_id, safe_key

if TYPE_CHECKING:  # ratings.py builds on DocIncrement here
    from podrec_assets.lib.stats.ratings import RatingChange

# Original names of changed keys are kept (in `key_names`) up to this length.
MAX_KEY_NAME_CHARS = 256
CATALOG_COLUMNS = ["episode_id", "title", "show", "author", "categories"]
# Counters every user_stats document has (0 until an event adds to them); maps (events, months, devices,
# ratings.by_star) hold only the keys seen.
USER_COUNTERS = ("events_total", "completes", "likes", "skips", "listening_ms", "listening_segments",
                 "ratings.count", "ratings.sum")  # fmt: skip
AFFINITY_COUNTERS = ("count", "likes", "completes", "skips", "ratings", "rating_sum")


@dataclass(slots=True)
class DocIncrement:
    """One document's share of a batch: `$inc` counters, `$min`/`$max` times, fields set once or always."""

    doc_id: str
    inc: dict[str, int] = field(default_factory=dict)
    min: dict[str, datetime] = field(default_factory=dict)
    max: dict[str, datetime] = field(default_factory=dict)
    set_on_insert: dict[str, str] = field(default_factory=dict)
    set: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class EpisodeInfo:
    title: str | None
    show: str | None
    author: str | None
    categories: tuple[str, ...]

    def dimensions(self) -> list[tuple[str, str]]:
        pairs = [("show", self.show), ("author", self.author)]
        pairs += [("category", c) for c in self.categories]
        return [(d, v) for d, v in pairs if v]


@dataclass(frozen=True)
class Catalog:
    """Episode metadata by episode id; `present` is False when the episodes table does not exist."""

    episodes: dict[str, EpisodeInfo]
    present: bool = True


def catalog_from_table(table: pa.Table | None) -> Catalog:
    if table is None:
        return Catalog({}, present=False)
    episodes = {}
    for row in table.select(CATALOG_COLUMNS).to_pylist():
        categories = tuple(dict.fromkeys(c for c in row["categories"] or () if c))
        episodes[row["episode_id"]] = EpisodeInfo(row["title"], row["show"], row["author"], categories)
    return Catalog(episodes)


def load_catalog(uri: str, storage_options: dict | None = None) -> Catalog:
    """The current episodes table as a Catalog (one read of five columns; its size is the catalog's, not the
    events')."""
    return catalog_from_table(read_table(uri, CATALOG_COLUMNS, storage_options))


def event_frame(rows: pa.Table) -> pd.DataFrame:
    """A batch's events as pandas, once per batch (both increment functions read it)."""
    df = rows.select(EVENT_COLUMNS)
    # which rating is the latest is decided at the events' own resolution, as engagement decides it
    ts_us = df.column("ts").cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())
    df = df.to_pandas()
    df["ts_us"] = ts_us.to_numpy(zero_copy_only=False)
    df["ts"] = df["ts"].dt.floor("ms")  # what BSON keeps
    return df


def _py_time(value) -> datetime:
    return value.to_pydatetime()


def _pair_counts(df: pd.DataFrame, keys: list[str] | list[pd.Series]) -> pd.Series:
    """The number of rows of each pair of `keys` present in `df` (a Series on a two-level MultiIndex)."""
    counts = df.groupby(keys, sort=False).size()
    assert isinstance(counts, pd.Series)  # a DataFrame only with as_index=False
    return counts


def _add_counts(target: dict[str, DocIncrement], counts: pd.Series, prefix: str) -> None:
    """Add a (user, name) -> count series under `prefix.<safe name>`; a changed name is kept in
    `key_names`."""
    for (user, name), count in zip(counts.index, counts, strict=True):  # counts.items(), its keys unpacked
        key = safe_key(str(name))
        target[user].inc[f"{prefix}.{key}"] = int(count)
        if key != name:
            target[user].set[f"key_names.{prefix}.{key}"] = str(name)[:MAX_KEY_NAME_CHARS]


def user_increments(df: pd.DataFrame, ratings: Sequence[RatingChange]) -> list[DocIncrement]:
    """One increment per user present in `df` (user_stats documents, `_id` = the user id); `ratings` are the
    batch's changes of latest ratings (their users all have events in `df`)."""
    if df.empty:
        return []
    by_user = df.groupby("user_id", sort=False)
    users: dict[str, DocIncrement] = {}
    for user, n in by_user.size().items():
        user_id = str(user)  # already a str: user_id is a string column (and groupby drops nulls)
        counters = {**dict.fromkeys(USER_COUNTERS, 0), "events_total": int(n)}
        users[user_id] = DocIncrement(user_id, inc=counters, set_on_insert={"user_id": user_id})
    for user, first in by_user["ts"].min().items():
        users[user].min["first_event_at"] = _py_time(first)
    for user, last in by_user["ts"].max().items():
        users[user].max["last_event_at"] = _py_time(last)
    _add_counts(users, _pair_counts(df, ["user_id", "event_type"]), "events")
    for event_type, field_name, sign in (("complete", "completes", 1), ("like", "likes", 1),
                                         ("unlike", "likes", -1), ("skip", "skips", 1)):  # fmt: skip
        for user, n in df[df["event_type"] == event_type].groupby("user_id", sort=False).size().items():
            users[user].inc[field_name] += sign * int(n)  # an unlike takes a like back
    segments = df.dropna(subset=["from_sec", "to_sec"])
    if len(segments):
        ms = ((segments["to_sec"] - segments["from_sec"]) * 1000).round().astype("int64")
        grouped = ms.groupby(segments["user_id"], sort=False)
        for user, total in grouped.sum().items():
            users[user].inc["listening_ms"] = int(total)
        for user, n in grouped.size().items():
            users[user].inc["listening_segments"] = int(n)
    for change in ratings:  # a re-rating moves one count between stars (a star left at 0 keeps its key)
        inc = users[change.user_id].inc
        inc["ratings.count"] += change.count_delta
        inc["ratings.sum"] += change.sum_delta
        if change.old is not None and change.old.rating != change.new.rating:
            old_star = f"ratings.by_star.{change.old.rating}"
            inc[old_star] = inc.get(old_star, 0) - 1
        if change.old is None or change.old.rating != change.new.rating:
            new_star = f"ratings.by_star.{change.new.rating}"
            inc[new_star] = inc.get(new_star, 0) + 1
    year_month = (df["ts"].dt.year * 100 + df["ts"].dt.month).rename(
        "month"
    )  # formatted per group, not per row
    per_month = _pair_counts(df, [df["user_id"], year_month])
    months = per_month.index
    assert isinstance(months, pd.MultiIndex)  # (user, month)
    per_month.index = months.set_levels([f"{m // 100:04d}-{m % 100:02d}" for m in months.levels[1]], level=1)
    _add_counts(users, per_month, "months")
    devices = df.dropna(subset=["device"])
    _add_counts(users, _pair_counts(devices, ["user_id", "device"]), "devices")
    return list(users.values())


@dataclass
class AffinityIncrements:
    documents: list[DocIncrement]
    content_events: int  # content events in the batch
    unknown_episode_events: int  # of which the catalog does not know the episode (no affinity counted)


def affinity_increments(
    df: pd.DataFrame, catalog: Catalog, ratings: Sequence[RatingChange]
) -> AffinityIncrements:
    """One increment per (user, dimension, value) the batch touches (user_affinities documents); `ratings` (the
    batch's changes of latest ratings) give `ratings` and `rating_sum`."""
    if df.empty:
        return AffinityIncrements([], 0, 0)
    df = df[df["episode_id"].notna() & df["event_type"].isin(CONTENT_EVENT_TYPES)]
    known = df["episode_id"].isin(catalog.episodes.keys())
    pairs = [
        (episode_id, dimension, value)
        for episode_id in df.loc[known, "episode_id"].unique()
        for dimension, value in catalog.episodes[episode_id].dimensions()
    ]
    if not pairs:
        return AffinityIncrements([], len(df), int((~known).sum()))
    # pandas types `columns` as Axes, whose SequenceNotStr protocol a list fails under ty (`index` signature)
    links = pd.DataFrame(pairs, columns=["episode_id", "dimension", "value"])  # ty: ignore[invalid-argument-type]
    joined = df[known].merge(links, on="episode_id")
    joined["likes"] = (joined["event_type"] == "like").astype("int64") - (joined["event_type"] == "unlike")
    joined["completes"] = (joined["event_type"] == "complete").astype("int64")
    joined["skips"] = (joined["event_type"] == "skip").astype("int64")
    joined["ratings"] = joined["rating_sum"] = 0  # from the rating changes below
    joined["count"] = 1
    grouped = joined.groupby(["user_id", "dimension", "value"], sort=False)
    sums = grouped[list(AFFINITY_COUNTERS)].sum()
    sums["last_event_at"] = grouped["ts"].max()
    documents = {
        (user, dimension, value): DocIncrement(
            affinity_id(user, dimension, value),
            inc={c: int(n) for c, n in zip(AFFINITY_COUNTERS, counts, strict=True)},
            max={"last_event_at": _py_time(last)},
            set_on_insert={"user_id": user, "dimension": dimension, "value": value},
        )
        for (user, dimension, value), *counts, last in sums.itertuples(name=None)
    }
    for change in ratings:  # its rate event is in the batch, so its documents are too
        info = catalog.episodes.get(change.episode_id)
        for dimension, value in info.dimensions() if info else ():
            inc = documents[(change.user_id, dimension, value)].inc
            inc["ratings"] += change.count_delta
            inc["rating_sum"] += change.sum_delta
    return AffinityIncrements(list(documents.values()), len(df), int((~known).sum()))
