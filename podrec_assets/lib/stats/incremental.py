"""`user_stats` and `user_affinities`, kept up to date incrementally and exactly (seed 002's design, made
replay-safe).

A run takes every Delta version of `raw_user_events` after the cursor, one version at a time: it reads the
rows the version added (batches.py), turns them into per-document increments (aggregate.py), applies them with
one atomic, version-marked update per document, and only then moves the cursor past the version (store.py).
Work is proportional to the new events; a crash anywhere is repaired by simply running again.

**Re-ratings** (ratings.py): a version's rating figures are moves against each pair's latest rating counted before
that version, read from `user_episode_ratings`. Those documents are written last, after every user_stats and
user_affinities document of the version, so a re-run reads the same "before" for every document it still has to
write: a crash before the ratings are written leaves them as they were; a crash while they are written comes after
every stats document already carries the version, so those are skipped whatever a re-read says. Each ratings
document carries the same version mark, so none is written twice.

Compaction of raw_user_events (`OPTIMIZE`) is recognised and skipped (it changes no rows); deletes, updates,
merges or overwrites of already-counted rows stop the run (`UnsupportedTableChange`): following those needs
the table's Change Data Feed instead of added files. A re-created table (new Delta table id) stops it too
(`StreamMismatch`): stats must then be rebuilt (drop user_stats, user_affinities, user_episode_ratings and the cursor).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pymongo.database import Database

from podrec_assets.lib.stats.aggregate import (
    Catalog,
    affinity_increments,
    event_frame,
    load_catalog,
    user_increments,
)
from podrec_assets.lib.stats.batches import table_identity, version_batches
from podrec_assets.lib.stats.ratings import (
    batch_latest_ratings,
    rating_changes,
    rating_documents,
    read_counted_ratings,
)
from podrec_assets.lib.stats.store import (
    WriteCount,
    advance_cursor,
    apply_increments,
    ensure_indexes,
    read_cursor,
)
from podrec_assets.names import RAW_USER_EVENTS, USER_AFFINITIES, USER_EPISODE_RATINGS, USER_STATS

STREAM = RAW_USER_EVENTS  # the cursor's and the markers' name


class StreamMismatch(RuntimeError):
    """The cursor belongs to another incarnation of the events table (it was re-created)."""


@dataclass
class UserStatsReport:
    table_id: str | None = None
    start_version: int = -1  # the cursor before the run (-1: nothing applied yet)
    cursor_version: int = -1  # and after
    versions_applied: list[int] = field(default_factory=list)
    events_applied: int = 0
    user_stats: WriteCount = field(default_factory=WriteCount)
    affinities: WriteCount = field(default_factory=WriteCount)
    ratings: WriteCount = field(default_factory=WriteCount)  # user_episode_ratings documents
    re_ratings: int = 0  # ratings that replaced an earlier one of the same pair
    content_events: int = 0
    unknown_episode_events: int = 0  # content events whose episode the catalog lacks: no affinity
    catalog_present: bool = True
    operations: dict[str, int] = field(default_factory=dict)  # Delta operations of the applied versions


def update_user_stats(
    db: Database,
    events_uri: str,
    episodes_uri: str,
    storage_options: dict | None = None,
    catalog: Catalog | None = None,
    max_versions: int | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> UserStatsReport:
    """Apply every version of `events_uri` after the cursor (at most `max_versions`) to user_stats and
    user_affinities. A missing events table is nothing to do."""
    report = UserStatsReport()
    identity = table_identity(events_uri, storage_options)
    if identity is None:
        return report
    table_id, latest = identity
    cursor = read_cursor(db, STREAM)
    if cursor and cursor.get("table_id") not in (None, table_id):
        raise StreamMismatch(
            f"the stats cursor is for table {cursor['table_id']}, {events_uri} is now {table_id} "
            "(re-created): "
            "rebuild the stats (drop user_stats, user_affinities, user_episode_ratings and the stats_cursors "
            "document)"
        )
    after = cursor["version"] if cursor else -1
    until = latest if max_versions is None else min(latest, after + max_versions)
    report.table_id, report.start_version, report.cursor_version = table_id, after, after
    catalog = catalog or load_catalog(episodes_uri, storage_options)
    report.catalog_present = catalog.present
    ensure_indexes(db)
    for batch in version_batches(events_uri, after, until, storage_options):
        events = event_frame(batch.rows)
        latest = batch_latest_ratings(events)
        changes = rating_changes(latest, read_counted_ratings(db[USER_EPISODE_RATINGS], latest))
        users = user_increments(events, changes)
        affinities = affinity_increments(events, catalog, changes)
        now = datetime.now(UTC)
        written_users = apply_increments(db[USER_STATS], users, STREAM, batch.version, now)
        written_affinities = apply_increments(
            db[USER_AFFINITIES], affinities.documents, STREAM, batch.version, now
        )
        # last: see the module docstring
        written_ratings = apply_increments(
            db[USER_EPISODE_RATINGS], rating_documents(changes), STREAM, batch.version, now
        )
        advance_cursor(db, STREAM, batch.version, table_id, now)
        report.cursor_version = batch.version
        report.versions_applied.append(batch.version)
        report.events_applied += batch.rows.num_rows
        report.user_stats += written_users
        report.affinities += written_affinities
        report.ratings += written_ratings
        report.re_ratings += sum(c.old is not None for c in changes)
        report.content_events += affinities.content_events
        report.unknown_episode_events += affinities.unknown_episode_events
        report.operations[batch.operation] = report.operations.get(batch.operation, 0) + 1
        log(
            f"{batch.batch_id(STREAM)}: {batch.rows.num_rows} events, user_stats "
            f"{written_users.written} written / {written_users.skipped} already applied, affinities "
            f"{written_affinities.written} / "
            f"{written_affinities.skipped}"
        )
    return report
