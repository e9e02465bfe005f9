"""What every page shares: where the data is, the connections to it, and how a page says "nothing yet" or
reports a source it cannot read instead of failing."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import ParamSpec

import duckdb
import streamlit as st
from pymongo import MongoClient
from pymongo.database import Database
from pymongo.errors import PyMongoError

from podrec_assets.lib.dashboard.lake import Lake, TableUnreadable
from podrec_assets.lib.dashboard.settings import DashboardSettings

P = ParamSpec("P")
MONGO_TIMEOUT_MS = 3_000  # a MongoDB that is down is reported in 3 s, not pymongo's 30


def settings() -> DashboardSettings:
    """The sources, from the environment as it is now (the tests change it between runs)."""
    return DashboardSettings.from_env()


@contextmanager
def lake(source: DashboardSettings) -> Iterator[Lake]:
    """DuckDB over the Delta tables, for one page run (each run sees the tables' current snapshots)."""
    with Lake(source.delta_root, source.storage_options()) as opened:
        yield opened


@st.cache_resource(show_spinner=False)
def _client(uri: str) -> MongoClient:
    # one client (a connection pool, thread-safe) per URI for the whole server
    return MongoClient(uri, serverSelectionTimeoutMS=MONGO_TIMEOUT_MS, connectTimeoutMS=MONGO_TIMEOUT_MS,
                       tz_aware=True, appname="podrec-dashboard")  # fmt: skip


def mongo(source: DashboardSettings) -> Database:
    return _client(source.mongo_uri)[source.mongo_db]


def redacted(uri: str) -> str:
    """A connection URI without its credentials, fit to show."""
    return re.sub(r"//[^/@]*@", "//***@", uri)


def nothing_yet(message: str) -> None:
    st.info(message, icon=":material/hourglass_empty:")


def guarded(render: Callable[P, None]) -> Callable[P, None]:
    """A page (or a fragment of one) that reports an unreachable MongoDB or an unreadable table on the page
    instead of failing."""

    @functools.wraps(render)
    def page(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            render(*args, **kwargs)
        except PyMongoError as error:
            source = settings()
            st.error(f"MongoDB is not reachable at {redacted(source.mongo_uri)} (database {source.mongo_db}): "
                     f"{type(error).__name__}", icon=":material/cloud_off:")  # fmt: skip
        except (TableUnreadable, duckdb.Error) as error:
            st.error(f"A Delta table could not be read: {error}", icon=":material/error:")

    return page


def sidebar() -> None:
    source = settings()
    st.sidebar.caption(
        f"Delta: `{source.delta_root}`  \nMongoDB: `{redacted(source.mongo_uri)}` / `{source.mongo_db}`  \n"
        f"Models: `{source.model_root}`  \nDagster: `{source.dagster_home}`"
    )


def when(value: object) -> str:
    """A timestamp as 'YYYY-MM-DD HH:MM UTC' ('-' for none)."""
    if not isinstance(value, datetime):
        return "-"
    value = value if value.tzinfo else value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def ago(value: datetime, now: datetime | None = None) -> str:
    """How long before `now` (default: now) `value` was, roughly: '3 min', '5 h', '2 days'."""
    seconds = ((now or datetime.now(UTC)) - value).total_seconds()
    if seconds < 90:
        return f"{max(seconds, 0):.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"


def percent(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}%}"


def count(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"
