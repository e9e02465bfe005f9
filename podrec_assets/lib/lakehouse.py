"""Delta tables seen from Spark, and Arrow written to Delta, with delta-rs (`deltalake`).

No Delta jars can be had for Spark here (see ENVIRONMENT.md), so Spark never reads `_delta_log` itself: delta-rs
names the exact files of the current snapshot and Spark reads those Parquet files. A plain `spark.read.parquet(dir)`
would also read files that Delta has removed. Writes of small results (a day of engagement, a model's
recommendations) go through Arrow and `write_deltalake`; the Spark server and the driver must see the same storage
(a local folder here, an object store in production).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import StructType

# Metadata key under which a check records the table version it read (serving/gate.py publishes only that version).
CHECKED_VERSION = "delta_version"


def delta_version(uri: str, storage_options: dict | None = None) -> int | None:
    """The table's current version, or None if there is no table yet."""
    if not DeltaTable.is_deltatable(uri, storage_options=storage_options):
        return None
    return DeltaTable(uri, storage_options=storage_options).version()


def read_delta(
    spark: SparkSession,
    uri: str,
    schema: StructType,
    partition_filters: list[tuple] | None = None,
    storage_options: dict | None = None,
    version: int | None = None,
) -> DataFrame:
    """The current snapshot of a Delta table (only the partitions matching `partition_filters`) as a Spark DataFrame.

    `schema` is the full table schema, partition columns included: Spark takes their values from the Hive-style
    folder names under `basePath`. `version` pins a snapshot (default: the latest). A missing table or an empty
    selection gives an empty DataFrame of that schema."""
    if not DeltaTable.is_deltatable(uri, storage_options=storage_options):
        return spark.createDataFrame([], schema)
    files = DeltaTable(uri, version=version, storage_options=storage_options).file_uris(
        file_pruning_predicate=partition_filters
    )
    if not files:
        return spark.createDataFrame([], schema)
    return spark.read.schema(schema).option("basePath", uri).parquet(*files)


def date_filter(column: str, first: date, last: date) -> list[tuple]:
    """delta-rs filters for `first <= column <= last` (file pruning and Arrow reads both take them)."""
    return [(column, ">=", first), (column, "<=", last)]


def replace_partitions(
    uri: str,
    rows: pa.Table,
    partition_column: str,
    days: Sequence[date],
    storage_options: dict | None = None,
) -> int:
    """Replace exactly the given days of a date-partitioned table with `rows`, in one Delta commit. Returns the version.

    Days without rows end up empty (their old rows are removed), other days are untouched: re-running a day is
    idempotent. Every row must belong to one of `days`."""
    day_list = ", ".join(f"'{d.isoformat()}'" for d in sorted(set(days)))
    present = set(rows.column(partition_column).to_pylist())
    if not present <= set(days):
        raise ValueError(f"rows for {sorted(present - set(days))} are outside the days being replaced")
    write_deltalake(
        uri,
        rows,
        mode="overwrite",
        partition_by=[partition_column],
        predicate=f"{partition_column} IN ({day_list})",
        storage_options=storage_options,
    )
    return DeltaTable(uri, storage_options=storage_options).version()


def upsert_by_key(
    uri: str,
    rows: pa.Table,
    key: str,
    version_column: str,
    storage_options: dict | None = None,
) -> tuple[int, int]:
    """Insert new keys and update keys whose `version_column` (a content hash) changed, in one Delta commit; rows
    identical to the table's are not written, so an unchanged input makes no commit at all.

    Returns (inserted, updated). A MERGE by key is idempotent: re-running after a crash re-applies the same rows."""
    if not DeltaTable.is_deltatable(uri, storage_options=storage_options):
        if rows.num_rows:
            write_deltalake(uri, rows, mode="error", storage_options=storage_options)
        return rows.num_rows, 0
    table = DeltaTable(uri, storage_options=storage_options)
    current = table.to_pyarrow_table(columns=[key, version_column])
    stored = dict(
        zip(current.column(key).to_pylist(), current.column(version_column).to_pylist(), strict=True)
    )
    keys, versions = rows.column(key).to_pylist(), rows.column(version_column).to_pylist()
    changed = [i for i, (k, v) in enumerate(zip(keys, versions, strict=True)) if stored.get(k) != v]
    if not changed:
        return 0, 0
    source = rows.take(changed)
    inserted = sum(1 for i in changed if keys[i] not in stored)
    (
        table.merge(source, predicate=f"t.{key} = s.{key}", source_alias="s", target_alias="t")
        .when_matched_update_all()
        .when_not_matched_insert_all()
        .execute()
    )
    return inserted, len(changed) - inserted


def read_table(
    uri: str,
    columns: list[str] | None = None,
    storage_options: dict | None = None,
    filters: list[tuple] | None = None,
    version: int | None = None,
) -> pa.Table | None:
    """A Delta table (its rows matching `filters`, at `version`, default the latest) as Arrow, read with delta-rs;
    None if the table does not exist yet."""
    if not DeltaTable.is_deltatable(uri, storage_options=storage_options):
        return None
    table = DeltaTable(uri, version=version, storage_options=storage_options)
    return table.to_pyarrow_table(columns=columns, filters=filters)
