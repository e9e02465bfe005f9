"""Forgetting a listener: their rows leave every Delta table and their documents every MongoDB collection.

- Delta: one DELETE per table that has a `user_id` column, and the quarantined messages that name them. Each
  DELETE commit carries `podrec.operation = erasure` and the SHA-256 of the id (never the id itself), so the
  incremental readers of `raw_user_events` (lib/stats/batches.py) know it removed only that listener's rows: the
  other listeners' rows it rewrote were counted already, and the listener's events in versions not read yet are
  skipped. The deleted files stay on disk until VACUUM removes them after the retention window (`vacuum_days`).
- MongoDB: their stats, affinities, latest ratings, lists (served, per rank, ALS alone).
- Models: the factors of existing versions still hold a vector for them; the next training has none of their data.
  Aggregates without listener ids (global stats, hit rates) are recomputed from the tables on their next run.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from deltalake import CommitProperties, DeltaTable
from pymongo.database import Database

from podrec_assets.names import (
    ALS_RECOMMENDATIONS,
    ALS_TOP_N,
    DAILY_ENGAGEMENT,
    FINAL_RECOMMENDATIONS,
    QUARANTINED_EVENTS,
    RAW_USER_EVENTS,
    RECOMMENDATION_IMPRESSIONS,
    USER_AFFINITIES,
    USER_EPISODE_RATINGS,
    USER_RECOMMENDATIONS,
    USER_STATS,
)

ERASURE = "erasure"  # the podrec.operation of a commit that removed one listener's rows
ERASED_HASH = "podrec.erased_user_sha256"
TABLES_WITH_USER_ID = [RAW_USER_EVENTS, DAILY_ENGAGEMENT, ALS_RECOMMENDATIONS, FINAL_RECOMMENDATIONS,
                       RECOMMENDATION_IMPRESSIONS]  # fmt: skip
COLLECTIONS_BY_ID = [USER_STATS, USER_RECOMMENDATIONS]  # `_id` is the listener's id
# a `user_id` field
COLLECTIONS_BY_FIELD = [USER_AFFINITIES, USER_EPISODE_RATINGS, FINAL_RECOMMENDATIONS, ALS_TOP_N]


def user_hash(user_id: str) -> str:
    return hashlib.sha256(user_id.encode()).hexdigest()


def _literal(value: str) -> str:
    """A SQL string literal (the DELETE predicate is SQL)."""
    return "'" + value.replace("'", "''") + "'"


@dataclass
class ErasureReport:
    delta_rows: dict[str, int] = field(default_factory=dict)
    mongo_documents: dict[str, int] = field(default_factory=dict)


def erase_listener(
    user_id: str, table_uri, db: Database, storage_options: dict | None = None, vacuum_days: float = 7.0
) -> ErasureReport:
    """Remove `user_id` everywhere (see the module docstring). `table_uri(name)` gives a Delta table's URI."""
    report = ErasureReport()
    properties = CommitProperties(
        custom_metadata={"podrec.operation": ERASURE, ERASED_HASH: user_hash(user_id)}
    )
    predicates = {name: f"user_id = {_literal(user_id)}" for name in TABLES_WITH_USER_ID}
    predicates[QUARANTINED_EVENTS] = f"strpos(raw_text, {_literal(user_id)}) > 0"  # messages that name them
    for name, predicate in predicates.items():
        uri = table_uri(name)
        if not DeltaTable.is_deltatable(uri, storage_options=storage_options):
            continue
        table = DeltaTable(uri, storage_options=storage_options)
        metrics = table.delete(predicate, commit_properties=properties)
        report.delta_rows[name] = int(metrics.get("num_deleted_rows", 0))
        # files removed longer ago than the window (earlier erasures) leave the disk now; this one's, next time
        table.vacuum(retention_hours=int(vacuum_days * 24), dry_run=False, enforce_retention_duration=False)
    for name in COLLECTIONS_BY_ID:
        report.mongo_documents[name] = db[name].delete_many({"_id": user_id}).deleted_count
    for name in COLLECTIONS_BY_FIELD:
        report.mongo_documents[name] = db[name].delete_many({"user_id": user_id}).deleted_count
    return report
