"""A listener seen from the dashboard: who has a list, their recent events and their stats in figures.

Listener ids reach MongoDB only as the value of an exact `_id` equality (`recommendations_for`, `user_stats_for`
in lib/serving/lookup.py) and DuckDB only as a bound parameter, never as query text or a document key, so an id
holding `$`, `.` or quotes is looked up as the plain string it is. The event contract accepts any non-empty
string of up to MAX_ID_LENGTH characters as a user id, and so does the dashboard (`clean_listener_id`).
"""

from __future__ import annotations

import pandas as pd
from pymongo import ASCENDING
from pymongo.database import Database

from podrec_assets.lib.dashboard.lake import Lake
from podrec_assets.lib.ingestion.contract import MAX_ID_LENGTH
from podrec_assets.lib.serving.lookup import COLD_START_USER
from podrec_assets.names import EPISODES, RAW_USER_EVENTS, USER_RECOMMENDATIONS

HISTORY_COLUMNS = ["ts", "event_type", "title", "episode_id", "device", "rating", "played_pct"]


def clean_listener_id(value: object) -> str | None:
    """`value` as a listener id (surrounding whitespace removed, as the contract stores ids), or None if it cannot
    be one: not a string, empty, longer than the contract allows, or holding control characters."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    if not value or len(value) > MAX_ID_LENGTH or not value.isprintable():
        return None
    return value


def listener_ids(db: Database, limit: int = 500) -> list[str]:
    """The first `limit` listeners (by id) that have a `user_recommendations` document, without the cold-start
    list; answered from the `_id` index."""
    cursor = (
        db[USER_RECOMMENDATIONS]
        .find({"_id": {"$ne": COLD_START_USER}}, {"_id": 1})
        .sort("_id", ASCENDING)
        .limit(limit)
    )
    return [str(document["_id"]) for document in cursor]


def listener_history(lake: Lake, user_id: str, limit: int = 50) -> pd.DataFrame:
    """The listener's newest `limit` events in `raw_user_events`, newest first, with episode titles."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    if not lake.has(RAW_USER_EVENTS):
        return pd.DataFrame({column: [] for column in HISTORY_COLUMNS})
    titles = (
        f"(SELECT episode_id, any_value(title) AS title FROM {EPISODES} GROUP BY episode_id)"
        if lake.has(EPISODES)
        else "(SELECT NULL::VARCHAR AS episode_id, NULL::VARCHAR AS title WHERE false)"
    )
    return lake.query(
        f"""SELECT r.ts, r.event_type, e.title, r.episode_id, r.device, r.rating, r.played_pct
            FROM {RAW_USER_EVENTS} r LEFT JOIN {titles} e ON e.episode_id = r.episode_id
            WHERE r.user_id = ? ORDER BY r.ts DESC, r.event_id LIMIT ?""",
        [user_id, limit],
    )[HISTORY_COLUMNS]
