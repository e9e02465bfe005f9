"""The rows each Delta version of `raw_user_events` added: the batches the incremental stats consume.

Ingestion only appends (one commit per batch, each event exactly once), so the rows version v added are
exactly the Parquet files of snapshot v that snapshot v-1 did not have. Reading only those files makes a stats
run cost what the new events cost; the Delta log is replayed incrementally (`load_as_version`) and the file
lists compared are metadata.

A version that removes files is handled by its operation:
- `OPTIMIZE` (compaction, Z-order) rewrites rows without changing them (the Delta protocol's
  `dataChange=false`): its new files hold rows already counted, so it is a batch with no rows.
- an erasure (lib/privacy/erasure.py: a DELETE tagged `podrec.operation = erasure` with the SHA-256 of one
  listener's id) removes that listener's rows only: the rows it rewrote for others were counted already (a batch
  with no rows), the listener's documents are deleted by the erasure itself, and their rows in earlier versions not
  read yet are dropped from those batches (the readers never count a forgotten listener again).
- anything else that removes files (DELETE, UPDATE, MERGE, an overwrite, RESTORE) changes rows already
  counted, and `UnsupportedTableChange` is raised: following those would need the table's Change Data Feed
  (`delta.enableChangeDataFeed`, `DeltaTable.load_cdf`), which gives removed rows as well as added ones, and
  decrements for the removed rows.
- VACUUM removes physical files, not snapshot entries: stats that lag behind by more than the retention period
  could find an older version's added files gone after a compaction (a read error, never a wrong count).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pa_fs
from deltalake import DeltaTable
from deltalake.fs import DeltaStorageHandler

from podrec_assets.lib.privacy.erasure import ERASED_HASH, ERASURE, user_hash

# Operations whose removed and added files hold the same rows (Delta `dataChange=false`).
NO_DATA_CHANGE_OPERATIONS = frozenset({"OPTIMIZE"})

# The columns the stats read from raw_user_events.
EVENT_COLUMNS = [
    "event_id",
    "user_id",
    "episode_id",
    "event_type",
    "ts",
    "device",
    "rating",
    "from_sec",
    "to_sec",
]


class UnsupportedTableChange(RuntimeError):
    """A version of the events table changed rows that were already counted (see the module docstring)."""


@dataclass(frozen=True)
class VersionBatch:
    """The rows one Delta version added (`rows` has `EVENT_COLUMNS`; empty for versions that add no data)."""

    version: int
    operation: str
    rows: pa.Table

    def batch_id(self, stream: str) -> str:
        return f"{stream}@v{self.version}"


def table_identity(uri: str, storage_options: dict | None = None) -> tuple[str, int] | None:
    """(the table's id, its current version), or None if there is no table. The id changes if the table is
    re-created, which restarts version numbers."""
    if not DeltaTable.is_deltatable(uri, storage_options=storage_options):
        return None
    table = DeltaTable(uri, storage_options=storage_options)
    # str(): deltalake's stubs type the id as int, but it is the table's UUID, a str already
    return str(table.metadata().id), table.version()


def _reader(table: DeltaTable, storage_options: dict | None):
    """A function reading the given file URIs of `table` (only those) as Arrow, `EVENT_COLUMNS` only.

    Local tables are read with Arrow's own file system; others (s3://...) through delta-rs' storage handler,
    which knows the store's credentials and endpoint. Files lacking a column (older schema) give nulls for
    it."""
    partition_columns = set(table.metadata().partition_columns)
    schema = pa.schema([f for f in pa.schema(table.schema().to_arrow()) if f.name not in partition_columns])
    root = table.table_uri.rstrip("/") + "/"
    if root.startswith("file://"):
        filesystem, locate = pa_fs.LocalFileSystem(), lambda uri: uri
    else:
        filesystem = pa_fs.PyFileSystem(DeltaStorageHandler(table.table_uri, storage_options))

        def locate(uri: str) -> str:
            return uri.removeprefix(root)

    def read(files: list[str]) -> pa.Table:
        dataset = ds.dataset(
            [locate(f) for f in files], schema=schema, format="parquet", filesystem=filesystem
        )
        return dataset.to_table(columns=EVENT_COLUMNS)

    return read


ERASURE_OPERATION = "ERASURE"


def _operations(table: DeltaTable, first: int, last: int) -> tuple[dict[int, str], dict[int, str]]:
    """The operation of each version in [first, last] (from the commits' commitInfo, newest first), and the erased
    listener's id hash of each erasure among them."""
    operations, erased = {}, {}
    for commit in table.history(limit=last - first + 1):
        version = commit["version"]
        if commit.get("podrec.operation") == ERASURE:
            operations[version], erased[version] = ERASURE_OPERATION, commit[ERASED_HASH]
        else:
            operations[version] = commit.get("operation", "")
    return operations, erased


def _without(rows: pa.Table, hashes: set[str]) -> pa.Table:
    """`rows` less those of the listeners whose id hashes to one of `hashes`."""
    if not hashes or rows.num_rows == 0:
        return rows
    keep = [user_hash(u) not in hashes for u in rows.column("user_id").to_pylist()]
    return rows.filter(pa.array(keep, pa.bool_()))


def version_batches(
    uri: str, after: int, until: int, storage_options: dict | None = None
) -> Iterator[VersionBatch]:
    """The batches of versions after+1 .. until, in order, one at a time (each read only when asked for)."""
    if until <= after:
        return
    table = DeltaTable(uri, version=until, storage_options=storage_options)
    operations, erased = _operations(table, after + 1, until)
    read = _reader(table, storage_options)
    previous: set[str] = set()
    if after >= 0:
        table.load_as_version(after)
        previous = set(table.file_uris())
    for version in range(after + 1, until + 1):
        table.load_as_version(version)
        current = set(table.file_uris())  # the snapshot's file list (metadata, from the log)
        operation = operations.get(version, "")
        added = sorted(current - previous)
        removed = previous - current
        if removed and operation not in NO_DATA_CHANGE_OPERATIONS and operation != ERASURE_OPERATION:
            raise UnsupportedTableChange(
                f"version {version} of {uri} ({operation or 'unknown operation'}) removed "
                f"{len(removed)} files: rows already counted changed; incremental stats need the Change Data "
                "Feed for that"
            )
        rows = read([] if removed else added)  # a compaction or an erasure adds no rows
        yield VersionBatch(version, operation, _without(rows, {h for v, h in erased.items() if v > version}))
        previous = current
