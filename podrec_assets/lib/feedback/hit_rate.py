"""The online hit rate: the share of served lists (impressions) whose listener played, completed or liked one of the
shown episodes within 24 hours (seed 004's CTR; Gorse's online evaluator), per day, model version, strategy and A/B
arm, with a Wilson confidence interval per arm.

Only impressions whose 24 hours have passed are judged: a list served an hour ago has not had its chance yet, and
counting it would make the newest day look worse than it is (they are reported as `pending`).

Each run judges only the newest days again (`rejudge_from`); older days are settled and kept as they were, so an
hourly run reads a few days of impressions and events, not the whole history (which may also have been pruned).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import pandas as pd
import pyarrow as pa

from podrec_assets.lib.monitoring.drift import band

POSITIVE_EVENTS = ("play", "complete", "like")
WINDOW = timedelta(hours=24)
# the newest judged days are judged again by every run: events can land in the lake up to a day or so late
REJUDGE_DAYS = 3
COLUMNS = ["day", "model_version", "strategy", "arm", "impressions", "hits", "hit_rate"]
HIT_RATE_SCHEMA = pa.schema(
    [
        pa.field("day", pa.date32(), nullable=False),
        pa.field("model_version", pa.string()),
        pa.field("strategy", pa.string(), nullable=False),
        pa.field("arm", pa.string(), nullable=False),
        pa.field("impressions", pa.int64(), nullable=False),
        pa.field("hits", pa.int64(), nullable=False),
        pa.field("hit_rate", pa.float64(), nullable=False),
    ]
)


@dataclass(frozen=True)
class HitRates:
    rates: pd.DataFrame  # COLUMNS, one row per (day, model_version, strategy, arm)
    judged: int  # impressions whose window has closed
    pending: int  # impressions still inside their window

    def table(self) -> pa.Table:
        if self.rates.empty:  # nothing judged yet (every impression is inside its 24 h)
            return HIT_RATE_SCHEMA.empty_table()
        return pa.Table.from_pandas(self.rates[COLUMNS], schema=HIT_RATE_SCHEMA, preserve_index=False)


def rejudge_from(judged_days: Iterable[date], days: int = REJUDGE_DAYS) -> date | None:
    """The first day to judge again, with every day after it: the newest `days` days already judged. None when
    nothing has been judged yet: judge everything.

    The days before are settled: a day is in the table only once one of its impressions' 24 hours has ended, so
    the day before it had ended 24 hours earlier still; the extra days leave room for events that land late."""
    newest = max(judged_days, default=None)
    return None if newest is None else newest - timedelta(days=days - 1)


def with_settled_days(judged: pd.DataFrame | None, start: date | None, fresh: pd.DataFrame) -> pd.DataFrame:
    """Every day's rates: the settled days of the table (before `start`) and the days just judged again."""
    if judged is None or start is None:
        return fresh
    return pd.concat([judged[judged["day"] < start][COLUMNS], fresh[COLUMNS]], ignore_index=True)


def hit_rates(
    impressions: pd.DataFrame, events: pd.DataFrame | None, as_of: datetime, window: timedelta = WINDOW
) -> HitRates:
    """`impressions`: impression_id, user_id, served_at, episode_ids, model_version, strategy, arm;
    `events`: user_id, episode_id, event_type, ts (the listeners' events, any types)."""
    closed = impressions[impressions["served_at"] + window <= as_of]
    pending = len(impressions) - len(closed)
    if closed.empty:
        return HitRates(pd.DataFrame({c: [] for c in COLUMNS}), 0, pending)
    shown = closed[["impression_id", "user_id", "served_at", "episode_ids"]].explode("episode_ids")
    shown = shown.rename(columns={"episode_ids": "episode_id"}).dropna(subset=["episode_id"])
    hits: set[str] = set()
    if events is not None and len(events):
        positive = events.loc[events["event_type"].isin(POSITIVE_EVENTS), ["user_id", "episode_id", "ts"]]
        taken = shown.merge(positive, on=["user_id", "episode_id"])
        taken = taken[(taken["ts"] >= taken["served_at"]) & (taken["ts"] <= taken["served_at"] + window)]
        hits = set(taken["impression_id"])
    judged = closed.assign(
        hit=closed["impression_id"].isin(hits),
        day=closed["served_at"].dt.date,
        model_version=closed["model_version"].fillna(""),
    )
    rates = (
        judged.groupby(["day", "model_version", "strategy", "arm"], as_index=False)
        .agg(impressions=("impression_id", "size"), hits=("hit", "sum"))
        .astype({"impressions": "int64", "hits": "int64"})
    )
    rates["hit_rate"] = rates["hits"] / rates["impressions"]
    return HitRates(rates[COLUMNS], len(closed), pending)


def wilson_interval(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion (well-behaved near 0 and 1 and for small n)."""
    if n == 0:
        return (0.0, 1.0)
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def by_arm(rates: pd.DataFrame) -> dict[str, dict]:
    """Each arm's hit rate over every judged day, with its 95% interval: what the A/B comparison reads."""
    summary = {}
    for arm, group in rates.groupby("arm"):
        n, hits = int(group["impressions"].sum()), int(group["hits"].sum())
        low, high = wilson_interval(hits, n)
        summary[str(arm)] = {
            "strategy": ", ".join(sorted(set(group["strategy"]))),
            "impressions": n,
            "hits": hits,
            "hit_rate": round(hits / n, 4) if n else None,
            "ci95": [round(low, 4), round(high, 4)],
        }
    return summary


def newest_day_in_band(rates: pd.DataFrame, min_days: int = 7) -> dict[str, dict]:
    """Per arm: the newest judged day's hit rate against the band of its earlier days' rates (median ± 4 robust
    standard deviations, at least ± 25%, lib/monitoring/drift.py). Arms with fewer than `min_days` earlier days are
    listed as not judged."""
    verdicts = {}
    for arm, group in rates.groupby("arm"):
        daily = (
            group.groupby("day").agg(impressions=("impressions", "sum"), hits=("hits", "sum")).sort_index()
        )
        daily_rates = (daily["hits"] / daily["impressions"]).tolist()
        newest, earlier = daily_rates[-1], daily_rates[:-1]
        if len(earlier) < min_days:
            verdicts[str(arm)] = {"judged": False, "hit_rate": round(newest, 4), "earlier_days": len(earlier)}
            continue
        low, high = band(earlier)
        verdicts[str(arm)] = {"judged": True, "hit_rate": round(newest, 4), "band": [round(low, 4), round(high, 4)],
                              "in_band": low <= newest <= high, "below_band": newest < low,
                              "day": str(daily.index[-1])}  # fmt: skip
    return verdicts
