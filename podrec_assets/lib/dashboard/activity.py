"""Listener activity and rejected messages: what the Live and Data quality pages show.

- **events per minute** count `raw_user_events` by event time (`ts`, UTC minute) and event type; **active
  listeners** are the distinct `user_id`s with an event in the window. The window is (now - minutes, now]; the
  table's `event_date` partitions outside it are not read.
- **quarantine rate** is quarantined ÷ all messages, all counted by arrival: messages quarantined in the window
  (`quarantined_at`) over those plus the listener events and served-list impressions stored in it (`ingested_at`
  of `raw_user_events` and `recommendation_impressions`, the two topics that are ingested). A late event counts
  when it arrives, as the ingestion's own `quarantine_rate` check counts it. The same ratio over all time too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import pandas as pd

from podrec_assets.lib.dashboard.lake import Lake
from podrec_assets.names import QUARANTINED_EVENTS, RAW_USER_EVENTS, RECOMMENDATION_IMPRESSIONS

Bucket = Literal["hour", "day"]


@dataclass(frozen=True)
class LiveActivity:
    minutes: int
    start: datetime
    end: datetime
    per_minute: pd.DataFrame  # minute (UTC), event_type, events
    events: int
    listeners: int
    stored: int  # events and impressions that arrived (ingested_at) in the window
    quarantined: int  # messages quarantined in the window
    stored_total: int  # events and impressions, all time
    quarantined_total: int
    newest_event: datetime | None  # the newest `ts` in the table (None: no table or no rows)
    has_events: bool  # raw_user_events exists
    has_quarantine: bool  # quarantined_events exists

    @property
    def events_per_minute(self) -> float:
        return self.events / self.minutes

    @property
    def quarantine_rate(self) -> float | None:
        """Quarantined ÷ all messages that arrived in the window; None when none arrived."""
        messages = self.stored + self.quarantined
        return self.quarantined / messages if messages else None

    @property
    def quarantine_rate_total(self) -> float | None:
        messages = self.stored_total + self.quarantined_total
        return self.quarantined_total / messages if messages else None


def _count(lake: Lake, sql: str, params: list[object] | None = None) -> int:
    value = lake.scalar(sql, params)
    return int(value) if isinstance(value, int | float) else 0


def _utc(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, pd.Timestamp) and not pd.isna(value):
        stamp = value.to_pydatetime()
        return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
    return None


def live_activity(lake: Lake, minutes: int, now: datetime | None = None) -> LiveActivity:
    """Events per minute by type, active listeners and the quarantine rate over the last `minutes` minutes."""
    if minutes < 1:
        raise ValueError("minutes must be at least 1")
    end = (now or datetime.now(UTC)).astimezone(UTC)
    start = end - timedelta(minutes=minutes)
    per_minute = pd.DataFrame({"minute": pd.Series([], dtype="datetime64[us, UTC]"),
                               "event_type": pd.Series([], dtype="object"),
                               "events": pd.Series([], dtype="int64")})  # fmt: skip
    events = listeners = stored = stored_total = quarantined = quarantined_total = 0
    newest = None
    has_events, has_quarantine = lake.has(RAW_USER_EVENTS), lake.has(QUARANTINED_EVENTS)
    if has_events:
        window = "event_date BETWEEN ? AND ? AND ts > ? AND ts <= ?"
        params: list[object] = [start.date(), end.date(), start, end]
        per_minute = lake.query(
            f"""SELECT date_trunc('minute', ts) AS minute, event_type, count(*)::BIGINT AS events
                FROM {RAW_USER_EVENTS} WHERE {window} GROUP BY ALL ORDER BY minute, event_type""",
            params,
        )
        row = lake.connection.execute(
            f"SELECT count(*), count(DISTINCT user_id) FROM {RAW_USER_EVENTS} WHERE {window}", params
        ).fetchone()
        events, listeners = (int(row[0]), int(row[1])) if row else (0, 0)
        newest = _utc(lake.scalar(f"SELECT max(ts) FROM {RAW_USER_EVENTS}"))
    for table in (RAW_USER_EVENTS, RECOMMENDATION_IMPRESSIONS):
        if lake.has(table):
            arrived = f"SELECT count(*) FROM {table} WHERE ingested_at > ? AND ingested_at <= ?"
            stored += _count(lake, arrived, [start, end])
            stored_total += _count(lake, f"SELECT count(*) FROM {table}")
    if has_quarantine:
        quarantined = _count(
            lake,
            f"SELECT count(*) FROM {QUARANTINED_EVENTS} WHERE quarantined_at > ? AND quarantined_at <= ?",
            [start, end],
        )
        quarantined_total = _count(lake, f"SELECT count(*) FROM {QUARANTINED_EVENTS}")
    return LiveActivity(
        minutes=minutes, start=start, end=end, per_minute=per_minute, events=events, listeners=listeners,
        stored=stored, quarantined=quarantined, stored_total=stored_total, quarantined_total=quarantined_total,
        newest_event=newest, has_events=has_events, has_quarantine=has_quarantine,
    )  # fmt: skip


def quarantine_over_time(lake: Lake, bucket: Bucket = "day") -> pd.DataFrame:
    """Quarantined messages per `bucket` (UTC hour or day of `quarantined_at`) and reason_code: period, reason_code,
    messages. Empty when the table does not exist."""
    if bucket not in ("hour", "day"):
        raise ValueError(f"bucket must be hour or day, not {bucket!r}")
    if not lake.has(QUARANTINED_EVENTS):
        return pd.DataFrame({"period": [], "reason_code": [], "messages": []})
    return lake.query(
        f"""SELECT date_trunc('{bucket}', quarantined_at) AS period, reason_code, count(*)::BIGINT AS messages
            FROM {QUARANTINED_EVENTS} GROUP BY ALL ORDER BY period, reason_code"""
    )


def quarantine_reasons(lake: Lake) -> pd.DataFrame:
    """One row per reason_code: messages, the topics they came from, first and last quarantined_at, the newest
    one's reason and raw text (cut to 200 characters), most frequent first."""
    if not lake.has(QUARANTINED_EVENTS):
        return pd.DataFrame({"reason_code": [], "messages": [], "topics": [], "first": [], "last": [],
                             "example": [], "raw_text": []})  # fmt: skip
    return lake.query(
        f"""SELECT reason_code, count(*)::BIGINT AS messages,
                   string_agg(DISTINCT kafka_topic, ', ' ORDER BY kafka_topic) AS topics, min(quarantined_at) AS first,
                   max(quarantined_at) AS last, arg_max(reason, quarantined_at) AS example,
                   left(arg_max(raw_text, quarantined_at), 200) AS raw_text
            FROM {QUARANTINED_EVENTS} GROUP BY reason_code ORDER BY messages DESC, reason_code"""
    )
