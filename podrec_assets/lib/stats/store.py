"""How increments reach MongoDB exactly once: a per-document version mark, changed in the same atomic update
as the counters, and a per-stream cursor.

**The mark.** Every document keeps, per stream, the last version applied to it: `applied.<stream>` (e.g.
`applied.raw_user_events: 17`). The update of version v is ONE `UpdateOne`:

    filter  {_id, "applied.raw_user_events": {$not: {$gte: v}}}
    update  {$inc: counters, $max: {"applied.raw_user_events": v, last_event_at}, $min: {first_event_at},
             $setOnInsert: readable fields, $set: {updated_at, key_names...}},  upsert=True

A single-document update is atomic, so the counters and the mark change together or not at all. Versions are
applied in order (the cursor below) and a version is only started once every document of the one before
carries its mark, so "mark >= v" means "v was applied": a re-run after a crash at any point, a second run, a
cursor moved back, or even a lost cursor (starting over from version 0) skips exactly the documents that
already have v and writes the others.

**Why a version number and not a list of batch ids** (`applied: {$ne: batch_id}` with `$push ... $slice: -64`,
the first design): a bounded list forgets. A run stalled on version v while another run applies 64 later
versions to the same document, or a cursor moved back further than that, would find v's id gone and count v
again. A monotonic number never forgets, stays one field per stream whatever the history, and needs no
pruning. The ordering it relies on is the same the list needed for its window (one version in flight per
stream).

**The duplicate key.** When a document already carries v, the filter matches nothing and the upsert tries to
insert a new document with the same `_id`: MongoDB answers E11000 (duplicate key), SecantusDB too. Those
writes are re-sent once without upsert (the document exists now, so the answer is exact): not matched means
it already had v (skipped); matched means it did not (a racing writer inserted it between our two requests)
and now has it, counters included.

**The cursor** (`stats_cursors`, `_id` = stream) holds the last version all of whose documents are written and
the Delta table's id (a re-created table restarts version numbers and must not be mistaken for the old one).
It only moves forward (`$max`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Self

from pymongo import ASCENDING, DESCENDING, UpdateOne
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import BulkWriteError

from podrec_assets.lib.serving.lookup import USER_STATS  # noqa: F401 (re-exported: one name for writer and reader)
from podrec_assets.lib.stats.aggregate import DocIncrement
from podrec_assets.lib.stats.keys import safe_key
from podrec_assets.names import STATS_CURSORS, USER_AFFINITIES, USER_EPISODE_RATINGS

CURSORS = STATS_CURSORS
DUPLICATE_KEY = 11000
# Documents per bulk write (each write is still one atomic update per document).
BULK_CHUNK = 1000


@dataclass
class WriteCount:
    written: int = 0
    skipped: int = 0  # already carried this version

    def __iadd__(self, other: WriteCount) -> Self:
        self.written += other.written
        self.skipped += other.skipped
        return self


def mark_field(stream: str) -> str:
    return f"applied.{safe_key(stream)}"


def update_spec(increment: DocIncrement, stream: str, version: int, now: datetime) -> tuple[dict, dict]:
    """(filter, update) of the one atomic, idempotent update of a document for version `version` of
    `stream`."""
    mark = mark_field(stream)
    update: dict = {
        "$max": {**increment.max, mark: version},
        "$set": {**increment.set, "updated_at": now},
    }
    if increment.inc:  # user_episode_ratings documents have no counters
        update["$inc"] = increment.inc
    if increment.min:
        update["$min"] = increment.min
    if increment.set_on_insert:
        update["$setOnInsert"] = increment.set_on_insert
    return {"_id": increment.doc_id, mark: {"$not": {"$gte": version}}}, update


def _bulk(collection: Collection, operations: list[UpdateOne]) -> tuple[int, list[int]]:
    """(documents matched or inserted, indexes of the operations refused as duplicate keys)."""
    try:
        result = collection.bulk_write(operations, ordered=False).bulk_api_result
    except BulkWriteError as error:
        result = error.details
        if result.get("writeConcernErrors") or any(e["code"] != DUPLICATE_KEY for e in result["writeErrors"]):
            raise
    duplicates = [e["index"] for e in result["writeErrors"]]
    return result["nMatched"] + result["nUpserted"], duplicates


def apply_increments(
    collection: Collection,
    increments: Sequence[DocIncrement],
    stream: str,
    version: int,
    now: datetime | None = None,
) -> WriteCount:
    """Apply one version's increments to `collection`, each document exactly once (see the module
    docstring)."""
    now = now or datetime.now(UTC)
    chunk = BULK_CHUNK  # read at call time: the crash test writes one document per request
    count = WriteCount()
    for start in range(0, len(increments), chunk):
        specs = [update_spec(i, stream, version, now) for i in increments[start : start + chunk]]
        applied, duplicates = _bulk(collection, [UpdateOne(f, u, upsert=True) for f, u in specs])
        if duplicates:  # the document exists: ask again without upsert, which answers exactly
            retry = [UpdateOne(*specs[i], upsert=False) for i in duplicates]
            applied += collection.bulk_write(retry, ordered=False).matched_count
        count += WriteCount(applied, len(specs) - applied)
    return count


def read_cursor(db: Database, stream: str) -> dict | None:
    return db[CURSORS].find_one({"_id": stream})


def advance_cursor(
    db: Database, stream: str, version: int, table_id: str, now: datetime | None = None
) -> None:
    """Record that every document of `version` is written (never moves the cursor back)."""
    db[CURSORS].update_one(
        {"_id": stream},
        {
            "$max": {"version": version},
            "$set": {"table_id": table_id, "updated_at": now or datetime.now(UTC)},
        },
        upsert=True,
    )


def ensure_indexes(db: Database) -> None:
    """A user's strongest affinities of one dimension, by `find({user_id, dimension}).sort(count, -1)`; a
    listener's ratings, which an erasure deletes by `user_id`."""
    db[USER_AFFINITIES].create_index(
        [("user_id", ASCENDING), ("dimension", ASCENDING), ("count", DESCENDING)], name="user_dimension_count"
    )
    db[USER_EPISODE_RATINGS].create_index([("user_id", ASCENDING)], name="user_id")
