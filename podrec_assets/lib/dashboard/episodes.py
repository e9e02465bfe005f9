"""Episodes by engagement, trending categories and similar episodes: what the Episodes page shows.

Engagement is `daily_engagement`'s weighted sum (lib/engagement/weights.py: what ALS learns from), over a window of
`days` days that ends at the table's newest day (not the wall clock, as `global_stats` does, so a replayed history
has windows too). Titles, shows and categories come from the `episodes` catalog; an episode it does not know keeps
its id. A category's change compares the window with the `days` days before it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import pandas as pd
from pymongo.database import Database

from podrec_assets.lib.dashboard.lake import Lake
from podrec_assets.lib.stats.global_stats import window_id
from podrec_assets.names import DAILY_ENGAGEMENT, EPISODE_SIMILARITY, EPISODES, GLOBAL_STATS

# The catalog's columns the pages use, as an empty relation where the catalog does not exist yet.
_NO_CATALOG = (
    '(SELECT NULL::VARCHAR AS episode_id, NULL::VARCHAR AS title, NULL::VARCHAR AS "show", '
    "NULL::VARCHAR[] AS categories WHERE false)"
)


def _catalog(lake: Lake) -> str:
    """The catalog as a relation with one row per episode_id (a join never multiplies engagement)."""
    if not lake.has(EPISODES):
        return _NO_CATALOG
    return (
        '(SELECT episode_id, any_value(title) AS title, any_value("show") AS "show", '
        f"any_value(categories) AS categories FROM {EPISODES} GROUP BY episode_id)"
    )


def _empty(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame({column: [] for column in columns})


TOP_COLUMNS = ["rank", "episode_id", "title", "show", "engagement", "events", "listeners"]
CATEGORY_COLUMNS = ["category", "engagement", "previous_engagement", "change", "listeners", "episodes"]


@dataclass(frozen=True)
class EngagementWindow:
    days: int
    start: date | None = None  # None: no engagement yet
    end: date | None = None
    engagement: float = 0.0
    events: int = 0
    listeners: int = 0
    episodes: int = 0
    top_episodes: pd.DataFrame = field(default_factory=lambda: _empty(TOP_COLUMNS))
    categories: pd.DataFrame = field(default_factory=lambda: _empty(CATEGORY_COLUMNS))


def engagement_window(lake: Lake, days: int, top_n: int = 10) -> EngagementWindow:
    """Top episodes by engagement and categories by engagement over the `days` days ending at the newest day."""
    if days < 1 or top_n < 1:
        raise ValueError("days and top_n must be at least 1")
    if not lake.has(DAILY_ENGAGEMENT):
        return EngagementWindow(days)
    end = lake.scalar(f"SELECT max(event_date) FROM {DAILY_ENGAGEMENT}")
    if not isinstance(end, date):
        return EngagementWindow(days)
    start, previous_start = end - timedelta(days=days - 1), end - timedelta(days=2 * days - 1)
    totals = lake.connection.execute(
        f"""SELECT coalesce(sum(weight_sum), 0), coalesce(sum(event_count), 0), count(DISTINCT user_id),
                   count(DISTINCT episode_id)
            FROM {DAILY_ENGAGEMENT} WHERE event_date BETWEEN ? AND ?""",
        [start, end],
    ).fetchone() or (0, 0, 0, 0)
    catalog = _catalog(lake)
    top = lake.query(
        f"""SELECT row_number() OVER (ORDER BY sum(d.weight_sum) DESC, count(DISTINCT d.user_id) DESC,
                                      d.episode_id)::BIGINT AS rank,
                   d.episode_id, any_value(e.title) AS title, any_value(e."show") AS "show",
                   sum(d.weight_sum) AS engagement, sum(d.event_count)::BIGINT AS events,
                   count(DISTINCT d.user_id)::BIGINT AS listeners
            FROM {DAILY_ENGAGEMENT} d LEFT JOIN {catalog} e ON e.episode_id = d.episode_id
            WHERE d.event_date BETWEEN ? AND ?
            GROUP BY d.episode_id ORDER BY rank LIMIT ?""",
        [start, end, top_n],
    )
    categories = lake.query(
        f"""WITH links AS (SELECT DISTINCT episode_id, unnest(categories) AS category FROM {catalog}),
                 engaged AS (SELECT d.*, l.category FROM {DAILY_ENGAGEMENT} d JOIN links l USING (episode_id)
                             WHERE d.event_date BETWEEN ? AND ?)
            SELECT category,
                   coalesce(sum(weight_sum) FILTER (WHERE event_date >= ?), 0) AS engagement,
                   coalesce(sum(weight_sum) FILTER (WHERE event_date < ?), 0) AS previous_engagement,
                   engagement - previous_engagement AS change,
                   count(DISTINCT user_id) FILTER (WHERE event_date >= ?)::BIGINT AS listeners,
                   count(DISTINCT episode_id) FILTER (WHERE event_date >= ?)::BIGINT AS episodes
            FROM engaged GROUP BY category HAVING count(*) FILTER (WHERE event_date >= ?) > 0
            ORDER BY engagement DESC, category LIMIT ?""",
        [previous_start, end, start, start, start, start, start, top_n],
    )
    return EngagementWindow(
        days=days, start=start, end=end, engagement=float(totals[0]), events=int(totals[1]),
        listeners=int(totals[2]), episodes=int(totals[3]), top_episodes=top[TOP_COLUMNS],
        categories=categories[CATEGORY_COLUMNS],
    )  # fmt: skip


def global_stats_window(db: Database, days: int) -> dict | None:
    """MongoDB `global_stats`' document of the `days`-day window (lib/stats/global_stats.py), if it has one:
    top episodes by positive engagement and trending categories by content events, kept by the stats assets."""
    return db[GLOBAL_STATS].find_one({"_id": window_id(days)})


def episodes_with_neighbours(lake: Lake) -> pd.DataFrame:
    """episode_id, title: every episode `episode_similarity` has neighbours for, by title."""
    if not lake.has(EPISODE_SIMILARITY):
        return _empty(["episode_id", "title"])
    return lake.query(
        f"""SELECT s.episode_id, coalesce(e.title, s.episode_id) AS title
            FROM (SELECT DISTINCT episode_id FROM {EPISODE_SIMILARITY}) s
            LEFT JOIN {_catalog(lake)} e ON e.episode_id = s.episode_id
            ORDER BY lower(coalesce(e.title, s.episode_id)), s.episode_id"""
    )


def similar_episodes(lake: Lake, episode_id: str, limit: int = 10) -> pd.DataFrame:
    """rank, similar_episode_id, title, show, score (cosine similarity of their transcripts), best first."""
    columns = ["rank", "similar_episode_id", "title", "show", "score"]
    if limit < 1:
        raise ValueError("limit must be at least 1")
    if not lake.has(EPISODE_SIMILARITY):
        return _empty(columns)
    return lake.query(
        f"""SELECT s.rank, s.similar_episode_id, e.title, e."show", s.score
            FROM {EPISODE_SIMILARITY} s LEFT JOIN {_catalog(lake)} e ON e.episode_id = s.similar_episode_id
            WHERE s.episode_id = ? ORDER BY s.rank, s.similar_episode_id LIMIT ?""",
        [episode_id, limit],
    )[columns]
