"""Near-real-time lists: after each ingestion, every listener with new events gets a fresh list, without waiting for
a retrain. For each of them: their whole history read straight from raw_user_events (so the event that just
arrived counts, and is never recommended back), their ALS vector folded in against the current model's episode
factors (models/foldin.py), their anchors and affinities updated, candidates recalled and ranked by the serving
strategy (the same code as the nightly lists), and their `user_recommendations` document replaced on its own.

Exactly which listeners: those in the rows the Delta versions of raw_user_events after a cursor added (the stats'
version batches, stats/batches.py). The cursor lives in MongoDB beside the documents and moves after they are
written, so a crash repeats a refresh (harmless: it writes the same lists) and never skips one.

Never older over newer: every document carries `as_of`, the raw_user_events version its history was read at, and
a write replaces a document only if the stored one is not newer (an atomic conditional replace per document). A
nightly publish swaps the whole collection with lists as of its own version, then refreshes everyone whose events
came after it (published_recommendations), so a swap never leaves a listener behind their own events.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable
from pymongo import ReplaceOne
from pymongo.database import Database
from pymongo.errors import BulkWriteError

from podrec_assets.lib.engagement.weights import EventWeights
from podrec_assets.lib.lakehouse import read_table
from podrec_assets.lib.ranking.history import pairs_from_events
from podrec_assets.lib.serving.lookup import final_documents, user_document
from podrec_assets.lib.serving.recommendations import ServingContext, list_rows
from podrec_assets.lib.stats.batches import version_batches
from podrec_assets.lib.stats.store import DUPLICATE_KEY, advance_cursor, read_cursor
from podrec_assets.names import USER_RECOMMENDATIONS

STREAM = "fresh_recommendations"
# event_id: ties
HISTORY_COLUMNS = ["user_id", "episode_id", "event_type", "rating", "played_pct", "ts", "event_id"]
WRITE_CHUNK = 500


@dataclass
class RefreshReport:
    listeners: int = 0
    written: int = 0
    kept_newer: int = 0  # documents already as of a newer version (a concurrent refresh got there first)
    empty_lists: int = 0
    from_version: int = -1
    to_version: int = -1
    user_ids: list[str] = field(default_factory=list)


def touched_listeners(raw_uri: str, after: int, until: int, storage_options=None) -> set[str]:
    """Listeners with events in the rows Delta versions after+1..until of raw_user_events added."""
    users: set[str] = set()
    for batch in version_batches(raw_uri, after, until, storage_options):
        if batch.rows.num_rows:
            users.update(pc.unique(batch.rows.column("user_id")).to_pylist())
    return users


def listener_history(
    raw_uri: str,
    user_ids: Iterable[str],
    version: int,
    storage_options=None,
    weights: EventWeights | None = None,
) -> pd.DataFrame:
    """The history pairs of `user_ids` from every one of their raw events at `version` (exact: late events too).

    A filtered scan of the table (user_id is not a partition column): fine for millions of events; beyond that a
    per-listener engagement table kept by the same version batches would take its place (docs/ranking.md)."""
    wanted = pa.array(sorted(set(user_ids)), pa.string())
    events = read_table(
        raw_uri, HISTORY_COLUMNS, storage_options, version=version, filters=pc.field("user_id").isin(wanted)
    )
    return pairs_from_events(events, weights or EventWeights())


def user_documents(
    rows: pa.Table, user_ids: Iterable[str], as_of: int, now: datetime, model_version: str
) -> Iterator[dict]:
    """One `user_recommendations` document per listener in `user_ids`: their ranked list, or an empty one when
    nothing is left (so they are never given the cold-start list, which may hold what they heard)."""
    ranked = final_documents(rows.sort_by([("user_id", "ascending"), ("rank", "ascending")]))
    served = set()
    for user_id, documents in itertools.groupby(ranked, key=lambda document: document["user_id"]):
        served.add(user_id)
        yield {**user_document(user_id, list(documents)), "as_of": as_of}
    for user_id in sorted(set(user_ids) - served):
        yield {**user_document(user_id, [], model_version, now), "as_of": as_of}


def write_newer(db: Database, documents: Iterable[dict]) -> tuple[int, int]:
    """Replace each document by `_id` unless the stored one is as of a newer version. Returns (written, kept)."""
    written = kept = 0
    batch = []

    def flush() -> None:
        nonlocal written, kept
        if not batch:
            return
        try:
            result = db[USER_RECOMMENDATIONS].bulk_write(batch, ordered=False)
            written += result.upserted_count + result.matched_count
        except BulkWriteError as error:
            details = error.details
            newer = sum(1 for e in details.get("writeErrors", []) if e.get("code") == DUPLICATE_KEY)
            others = [e for e in details.get("writeErrors", []) if e.get("code") != DUPLICATE_KEY]
            if others:
                raise
            kept += newer
            written += details.get("nUpserted", 0) + details.get("nMatched", 0)
        batch.clear()

    for document in documents:
        # the upsert inserts when no document is as old or older; if a newer one exists, that insert is a
        # duplicate _id, which is exactly "keep the newer one"
        stale = {"$or": [{"as_of": {"$lte": document["as_of"]}}, {"as_of": {"$exists": False}}]}
        batch.append(ReplaceOne({"_id": document["_id"], **stale}, document, upsert=True))
        if len(batch) >= WRITE_CHUNK:
            flush()
    flush()
    return written, kept


def refresh_listeners(
    db: Database,
    ctx: ServingContext,
    raw_uri: str,
    user_ids: Iterable[str],
    version: int,
    now: datetime,
    storage_options=None,
) -> RefreshReport:
    """Fresh lists for `user_ids` from their raw events at `version`, written one document per listener."""
    users = sorted(set(user_ids))
    report = RefreshReport(listeners=len(users), to_version=version, user_ids=users)
    if not users:
        return report
    pairs = listener_history(raw_uri, users, version, storage_options)
    rows = list_rows(ctx, pairs, users, now)
    documents = list(user_documents(rows, users, version, now, ctx.policy.als_version))
    report.empty_lists = sum(1 for d in documents if not d["episode_ids"])
    report.written, report.kept_newer = write_newer(db, documents)
    return report


def refresh_since_cursor(
    db: Database,
    ctx: ServingContext,
    raw_uri: str,
    now: datetime,
    storage_options=None,
    at_least_after: int | None = None,
) -> RefreshReport:
    """Refresh the listeners of every raw_user_events version after the cursor (or after `at_least_after`, if
    that is earlier: the nightly publish asks for everyone after its own version), then move the cursor."""
    if not DeltaTable.is_deltatable(raw_uri, storage_options=storage_options):
        return RefreshReport()
    table = DeltaTable(raw_uri, storage_options=storage_options)
    # str(): deltalake's stubs type the id as int, but it is the table's UUID, a str already
    table_id, latest = str(table.metadata().id), table.version()
    cursor = read_cursor(db, STREAM)
    after = cursor["version"] if cursor and cursor.get("table_id") == table_id else -1
    if at_least_after is not None:
        after = min(after, at_least_after)
    users = touched_listeners(raw_uri, after, latest, storage_options)
    report = refresh_listeners(db, ctx, raw_uri, users, latest, now, storage_options)
    report.from_version = after
    advance_cursor(db, STREAM, latest, table_id, now)
    return report
