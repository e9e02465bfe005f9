"""The Delta tables seen from DuckDB: each table the dashboard asks for becomes a temporary view of the same name.

The view reads the table's current snapshot with DuckDB's own delta extension (`delta_scan`), loaded from the file
the `duckdb-ext-delta` package ships (nothing is downloaded at run time). Where the extension cannot be loaded, or
the root is an object store (its credentials are delta-rs's `AWS_*` variables), the view is delta-rs's Arrow dataset
of the snapshot instead, which DuckDB scans with the same filter pushdown.

A table that does not exist yet has no view: `has(name)` is False and the query functions return empty results.
"""

from __future__ import annotations

import functools
import importlib.util
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import duckdb
import pandas as pd
from deltalake import DeltaTable
from deltalake.exceptions import DeltaError

from podrec_assets.lib.settings import table_uri

Reader = Literal["duckdb", "delta-rs"]

_lock = threading.Lock()
_shared: dict[str, duckdb.DuckDBPyConnection | None] = {}


@functools.cache
def delta_extension_path() -> Path | None:
    """The delta extension inside the installed `duckdb-ext-delta` package, for this DuckDB version and platform."""
    spec = importlib.util.find_spec("duckdb_ext")
    if spec is None or not spec.submodule_search_locations:
        return None
    with duckdb.connect() as connection:
        platform = connection.execute("SELECT platform FROM pragma_platform()").fetchone()
    folder = Path(next(iter(spec.submodule_search_locations))) / "extensions" / f"v{duckdb.__version__}"
    path = folder / (platform[0] if platform else "linux_amd64") / "delta.duckdb_extension"
    return path if path.is_file() else None


def load_delta_extension(connection: duckdb.DuckDBPyConnection) -> bool:
    """LOAD the shipped delta extension into `connection`'s database; False if it cannot be loaded."""
    path = delta_extension_path()
    if path is None:
        return False
    try:
        connection.execute(f"LOAD {sql_string(str(path))}")
    except duckdb.Error:
        return False
    return True


def shared_database() -> duckdb.DuckDBPyConnection | None:
    """One in-memory DuckDB database per process with the delta extension loaded (LOAD costs ~0.2 s, a cursor of
    it nothing); None if the extension cannot be loaded. Lakes take a cursor each: a cursor is its own connection
    (temporary views are per connection) and may be used from its own thread."""
    with _lock:
        if "database" not in _shared:
            connection = duckdb.connect()
            _shared["database"] = connection if load_delta_extension(connection) else None
        return _shared["database"]


def sql_string(value: str) -> str:
    """A SQL string literal (single quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"


class Lake:
    """DuckDB over the Delta tables under `root`. Use as a context manager, or close() it."""

    def __init__(
        self,
        root: str,
        storage_options: dict[str, str] | None = None,
        *,
        reader: Reader | None = None,
        connection: duckdb.DuckDBPyConnection | None = None,
    ):
        """`reader="delta-rs"` reads through delta-rs's Arrow datasets even where the extension loads (default:
        the extension for a folder, delta-rs for an object store); `connection` is a DuckDB connection to use
        (its database's delta extension is used if loaded), closed with the lake."""
        self.root = root
        self.storage_options = storage_options
        object_store = "://" in root
        use_extension = reader != "delta-rs" and not object_store
        if connection is None:
            shared = shared_database() if use_extension else None
            if shared is not None:
                with _lock:
                    connection = shared.cursor()
            else:
                connection = duckdb.connect()
        self.reader: Reader = "duckdb" if use_extension and _has_delta_scan(connection) else "delta-rs"
        self.connection = connection
        self.connection.execute("SET TimeZone = 'UTC'")
        self._views: dict[str, bool] = {}

    def __enter__(self) -> Lake:
        return self

    def __exit__(self, *_) -> None:
        self.close()

    def close(self) -> None:
        self.connection.close()

    def uri(self, name: str) -> str:
        return table_uri(self.root, name)

    def has(self, name: str) -> bool:
        """Whether table `name` exists; the first call creates its view (the snapshot current at that moment)."""
        if name not in self._views:
            self._views[name] = self._create_view(name)
        return self._views[name]

    def _create_view(self, name: str) -> bool:
        uri = self.uri(name)
        try:
            if not DeltaTable.is_deltatable(uri, storage_options=self.storage_options):
                return False
            if self.reader == "duckdb":
                self.connection.execute(
                    f'CREATE OR REPLACE TEMP VIEW "{name}" AS SELECT * FROM delta_scan({sql_string(uri)})'
                )
            else:
                dataset = DeltaTable(uri, storage_options=self.storage_options).to_pyarrow_dataset()
                self.connection.register(name, dataset)
        except (OSError, ValueError, duckdb.Error, DeltaError) as error:  # being created or removed right now
            raise TableUnreadable(name, uri, error) from error
        return True

    def query(self, sql: str, params: Sequence[object] | None = None) -> pd.DataFrame:
        """The result of `sql` (with `?` parameters) as a DataFrame; timestamps in UTC."""
        return self.connection.execute(sql, list(params or [])).df()

    def scalar(self, sql: str, params: Sequence[object] | None = None) -> object:
        row = self.connection.execute(sql, list(params or [])).fetchone()
        return row[0] if row else None


class TableUnreadable(RuntimeError):
    """A table exists but cannot be read (its log is being written, or its files are missing)."""

    def __init__(self, name: str, uri: str, error: Exception):
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        super().__init__(f"cannot read the Delta table {name} at {uri}: {first_line}")
        self.name = name


def _has_delta_scan(connection: duckdb.DuckDBPyConnection) -> bool:
    row = connection.execute(
        "SELECT count(*) FROM duckdb_functions() WHERE function_name = 'delta_scan'"
    ).fetchone()
    return bool(row and row[0])
