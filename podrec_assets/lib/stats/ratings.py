"""A re-rating replaces: each (listener, episode) counts only its latest rating in the stats.

"Latest" is by event time, then `event_id` (a total order that does not depend on arrival), so a rating that
arrives late but is older than the one already counted changes nothing, and replaying events changes nothing.

The latest rating counted so far for each pair is kept in `user_episode_ratings` (one document per pair, hashed
`_id`, with the same per-document version mark as the stats). A batch compares its own latest rating of each pair
with that document: a newer one is a `RatingChange` (old → new), which the listener's and the affinities'
increments turn into moves (one count from the old star to the new, the sum by new − old) and which then becomes
the pair's document. Why this stays exact across a crash is in `incremental.py`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pandas as pd
from pymongo.collection import Collection

from podrec_assets.lib.stats.aggregate import DocIncrement
from podrec_assets.lib.stats.keys import rating_id

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Ids per `$in` query when the batch's pairs are looked up.
LOOKUP_CHUNK = 1000

Pair = tuple[str, str]  # (user_id, episode_id)


@dataclass(frozen=True, slots=True)
class Rating:
    rating: int
    ts_us: int  # event time in microseconds since the epoch (BSON dates keep milliseconds only)
    event_id: str

    def order(self) -> tuple[int, str]:
        return self.ts_us, self.event_id


@dataclass(frozen=True, slots=True)
class RatingChange:
    """A pair's latest rating moves from `old` (None: its first rating) to `new`."""

    user_id: str
    episode_id: str
    old: Rating | None
    new: Rating

    @property
    def count_delta(self) -> int:
        return 1 if self.old is None else 0

    @property
    def sum_delta(self) -> int:
        return self.new.rating - (self.old.rating if self.old else 0)


def batch_latest_ratings(df: pd.DataFrame) -> dict[Pair, Rating]:
    """Each pair's latest rating among the batch's `rate` events (df from `event_frame`: it has `ts_us`)."""
    rated = df[(df["event_type"] == "rate") & df["rating"].notna() & df["episode_id"].notna()]
    if rated.empty:
        return {}
    latest = rated.sort_values(["ts_us", "event_id"]).groupby(["user_id", "episode_id"], sort=False).tail(1)
    return {
        (user, episode): Rating(int(rating), int(ts_us), event_id)
        for user, episode, rating, ts_us, event_id in zip(
            latest["user_id"],
            latest["episode_id"],
            latest["rating"],
            latest["ts_us"],
            latest["event_id"],
            strict=True,
        )
    }


def rating_changes(batch: dict[Pair, Rating], counted: dict[Pair, Rating]) -> list[RatingChange]:
    """The pairs whose batch rating is newer than the one counted so far (or the first), as changes."""
    changes = []
    for (user, episode), rating in batch.items():
        old = counted.get((user, episode))
        if old is None or rating.order() > old.order():
            changes.append(RatingChange(user, episode, old, rating))
    return changes


def read_counted_ratings(collection: Collection, pairs: Iterable[Pair]) -> dict[Pair, Rating]:
    """The latest rating counted so far for each of `pairs` that has one."""
    wanted = {rating_id(u, e): (u, e) for u, e in pairs}
    ids = list(wanted)
    counted = {}
    for start in range(0, len(ids), LOOKUP_CHUNK):
        query = {"_id": {"$in": ids[start : start + LOOKUP_CHUNK]}}
        for doc in collection.find(query, {"rating": 1, "ts_us": 1, "event_id": 1}):
            counted[wanted[doc["_id"]]] = Rating(int(doc["rating"]), int(doc["ts_us"]), str(doc["event_id"]))
    return counted


def rating_documents(changes: Iterable[RatingChange]) -> list[DocIncrement]:
    """The new state of each changed pair (a `user_episode_ratings` document, set whole)."""
    return [
        DocIncrement(
            rating_id(c.user_id, c.episode_id),
            set={
                "rating": c.new.rating,
                "ts_us": c.new.ts_us,
                "event_id": c.new.event_id,
                "rated_at": EPOCH + timedelta(microseconds=c.new.ts_us),  # readable; ts_us orders
            },
            set_on_insert={"user_id": c.user_id, "episode_id": c.episode_id},
        )
        for c in changes
    ]
