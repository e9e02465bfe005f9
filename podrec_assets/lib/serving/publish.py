"""Replace a whole MongoDB collection so that readers see the previous complete set or the new one, never a
mix, never an empty or missing collection.

How: the documents go into a staging collection `<name>__staging__<UTC stamp>_<random>` (indexes first, then
`insert_many(ordered=False)` in batches), its count and indexes are verified, and one
`renameCollection(staging, to=name, dropTarget=True)` swaps it in. On MongoDB the rename is a metadata
operation, atomic for readers. On SecantusDB (the local server) it is atomic for readers too: the rename runs
under the server's one storage lock, which every read also takes, so a read runs wholly before or wholly after
it (measured: no mixed, partial or empty read in thousands of reads during renames). Two costs particular to
SecantusDB:

- the rename copies the rows (documents and index entries) and deletes the old target's, all under that lock,
  so every read waits until it is done: ~0.6 s for 4,000 documents, tens of seconds for 200,000
  (`benchmarks/serving.py` measures it). Inserting in batches with the indexes already built keeps the other
  steps' waits to one batch each (an index build over the full collection holds the lock for seconds), which
  is also why `batch_size` is 1,000: 5,000 made no faster publish and a 2.4 s wait per batch.
- its rows are moved one autocommit write at a time, so a *server* crash in the middle of a rename can leave
  `name` with part of the new set, until the next successful publish replaces it whole. MongoDB has no such
  window.

An empty document set is refused (`EmptyPublishError`) and nothing is touched. A failed publish drops its
staging collection and leaves the live one as it was; staging collections left by crashed runs are dropped at
the start of the next publish once they are older than `stale_after` (a concurrent run's is left alone).
"""

from __future__ import annotations

import contextlib
import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import islice

from pymongo import IndexModel
from pymongo.database import Database

STAGING_MARK = "__staging__"
_STAMP_FORMAT = "%Y%m%dT%H%M%S%fZ"
_STAMP = re.compile(r"^(\d{8}T\d{12}Z)_[0-9a-f]+$")
DEFAULT_BATCH_SIZE = 1_000
DEFAULT_STALE_AFTER = timedelta(minutes=10)


class PublishError(RuntimeError):
    """The new set could not be published; the live collection is unchanged."""


class EmptyPublishError(PublishError, ValueError):
    """Publishing no documents is refused: the previous set stays live."""


@dataclass(frozen=True)
class PublishReport:
    collection: str
    staging: str
    documents: int
    batches: int
    indexes: list[str]
    replaced_existing: bool  # a previous set was live and has been replaced
    leftovers_dropped: list[str] = field(default_factory=list)
    cleanup_seconds: float = 0.0
    index_seconds: float = 0.0
    insert_seconds: float = 0.0
    verify_seconds: float = 0.0
    swap_seconds: float = 0.0
    total_seconds: float = 0.0

    def metadata(self) -> dict:
        """Plain values for a Dagster MaterializeResult."""
        values = asdict(self)
        values["indexes"] = ", ".join(self.indexes)
        values["leftovers_dropped"] = ", ".join(self.leftovers_dropped)
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in values.items()}


def staging_name(name: str, now: datetime | None = None) -> str:
    stamp = (now or datetime.now(UTC)).astimezone(UTC).strftime(_STAMP_FORMAT)
    return f"{name}{STAGING_MARK}{stamp}_{secrets.token_hex(4)}"


def staging_created_at(name: str, staging: str) -> datetime | None:
    """When a staging collection of `name` was created (from its name); None if it is not one of ours."""
    prefix = f"{name}{STAGING_MARK}"
    if not staging.startswith(prefix):
        return None
    match = _STAMP.match(staging[len(prefix) :])
    if match is None:
        return None
    return datetime.strptime(match.group(1), _STAMP_FORMAT).replace(tzinfo=UTC)


def drop_leftover_stagings(
    db: Database, name: str, older_than: timedelta = DEFAULT_STALE_AFTER, now: datetime | None = None
) -> list[str]:
    """Drop `name`'s staging collections created more than `older_than` ago, and those whose stamp cannot be
    read (they carry our prefix but no run of this code made them). Returns the names dropped."""
    prefix = f"{name}{STAGING_MARK}"
    cutoff = (now or datetime.now(UTC)) - older_than
    dropped = []
    for candidate in sorted(db.list_collection_names()):
        if not candidate.startswith(prefix):
            continue
        created = staging_created_at(name, candidate)
        if created is None or created < cutoff:
            db.drop_collection(candidate)
            dropped.append(candidate)
    return dropped


def _index_names(indexes: list[IndexModel]) -> list[str]:
    return [model.document["name"] for model in indexes]


def publish_collection(
    db: Database,
    name: str,
    documents: Iterable[dict],
    indexes: list[IndexModel],
    batch_size: int = DEFAULT_BATCH_SIZE,
    *,
    stale_after: timedelta = DEFAULT_STALE_AFTER,
) -> PublishReport:
    """Replace `db[name]` by `documents` atomically for readers (module docstring). `documents` is consumed
    once, `batch_size` at a time (it may be a generator). Raises EmptyPublishError if there are none,
    PublishError if the staging collection does not hold exactly what was inserted; the live collection is
    then unchanged."""
    if not name or STAGING_MARK in name or "." in name or name.startswith("system."):
        raise ValueError(f"not a collection name podrec publishes: {name!r}")
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    started = time.perf_counter()
    rows = iter(documents)
    first = list(islice(rows, batch_size))
    if not first:
        raise EmptyPublishError(f"refusing to publish an empty {name}: the previous set stays live")

    leftovers = drop_leftover_stagings(db, name, stale_after)
    cleaned = time.perf_counter()

    staging = staging_name(name)
    expected_indexes = _index_names(indexes)
    inserted = batches = 0
    try:
        db.create_collection(staging)
        if indexes:
            db[staging].create_indexes(indexes)
        indexed = time.perf_counter()
        batch = first
        while batch:
            result = db[staging].insert_many(batch, ordered=False)
            inserted += len(result.inserted_ids)
            batches += 1
            batch = list(islice(rows, batch_size))
        loaded = time.perf_counter()

        count = db[staging].count_documents({})
        if count != inserted:
            raise PublishError(f"{staging} holds {count} documents, {inserted} were inserted")
        missing = set(expected_indexes) - set(db[staging].index_information())
        if missing:
            raise PublishError(f"{staging} lacks the indexes {sorted(missing)}")
        verified = time.perf_counter()

        replaced = name in db.list_collection_names(filter={"name": name})
        db.client.admin.command(
            "renameCollection", f"{db.name}.{staging}", to=f"{db.name}.{name}", dropTarget=True
        )
        swapped = time.perf_counter()
    except BaseException:
        # The original error matters; if the drop fails too, the next publish drops the leftover.
        with contextlib.suppress(Exception):
            db.drop_collection(staging)
        raise

    return PublishReport(
        collection=name,
        staging=staging,
        documents=inserted,
        batches=batches,
        indexes=expected_indexes,
        replaced_existing=replaced,
        leftovers_dropped=leftovers,
        cleanup_seconds=cleaned - started,
        index_seconds=indexed - cleaned,
        insert_seconds=loaded - indexed,
        verify_seconds=verified - loaded,
        swap_seconds=swapped - verified,
        total_seconds=swapped - started,
    )
