"""Listeners' lists as rows: the tables → one index space (ranking/) → the serving strategy's lists → rows with a
score, a reason and where they came from. The nightly `final_recommendations` and the near-real-time refresh call
the same functions; only the set of listeners and where their history is read from differ.

Where a recommendation gets its score: ranking/strategies.py (which strategy, and each one's scale) and, for the
ranker, ranking/candidates.py (its features) and ranking/ranker.py (the model and its calibration).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow as pa

from podrec_assets.lib.content.tables import UTC_TIMESTAMP
from podrec_assets.lib.models.recommend import AlsModel
from podrec_assets.lib.ranking.catalog import Catalog, EpisodeStats, ModelSide, align_model, build_catalog
from podrec_assets.lib.ranking.listeners import ANCHORS, HALF_LIFE_DAYS, build_listeners
from podrec_assets.lib.ranking.strategies import Lists, StrategyConfig, fill_short, lists_for
from podrec_assets.lib.ranking.training import snapshot_stats
from podrec_assets.lib.serving.lookup import COLD_START_USER  # shared with serving-time reads
from podrec_assets.lib.serving.policy import Policy

FINAL_RECOMMENDATIONS_SCHEMA = pa.schema(
    [
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("rank", pa.int32(), nullable=False),
        pa.field("episode_id", pa.string(), nullable=False),
        ("title", pa.string()),
        pa.field("score", pa.float32(), nullable=False),  # on the strategy's scale (ranking/strategies.py)
        ("source", pa.string()),  # what the score came from: als | content | show | popular | new
        ("reason", pa.string()),
        ("anchor_episode_id", pa.string()),  # the episode a content pick is like
        ("strategy", pa.string()),  # ranker | als | hybrid | popularity (cold start)
        ("model_version", pa.string()),  # the ALS version used ("" if none was promoted yet)
        ("ranker_version", pa.string()),  # the ranker used, or whose gate chose the strategy
        pa.field("generated_at", UTC_TIMESTAMP, nullable=False),
    ]
)


@dataclass(frozen=True)
class ListsConfig:
    strategy: StrategyConfig = field(default_factory=StrategyConfig)
    anchors: int = ANCHORS
    half_life_days: float = HALF_LIFE_DAYS


@dataclass(frozen=True)
class ServingContext:
    """What every listener's list is made from: the catalog, the model, the episode statistics and the policy."""

    catalog: Catalog
    model: ModelSide
    stats: EpisodeStats
    policy: Policy
    config: ListsConfig
    t_ref: float


def build_context(
    episodes: pa.Table,
    embeddings: pa.Table | None,
    similarity: pa.Table | None,
    everyone: pd.DataFrame,
    model: AlsModel | None,
    policy: Policy,
    config: ListsConfig,
    now: datetime,
) -> ServingContext:
    """`everyone`: every listener's history pairs (ranking/history.py), for the episode statistics.

    Features are measured at the newest event in the data, not the wall clock: in production the two are seconds
    apart, and a replay of old data (an evaluation, a backfill) then sees what the model was trained to see."""
    catalog = build_catalog(episodes, embeddings, similarity)
    t_ref = now.timestamp()
    if len(everyone):
        t_ref = min(t_ref, float(pd.to_datetime(everyone["last_ts"], utc=True).max().timestamp()))
    return ServingContext(
        catalog=catalog,
        model=align_model(model, catalog),
        stats=snapshot_stats(everyone, catalog, t_ref),
        policy=policy,
        config=config,
        t_ref=t_ref,
    )


def reason(source: str, anchor_title: str | None, show: str | None) -> str:
    """The sentence a listener reads, from the part of the score that weighed most (ranking/ranker.py)."""
    if source == "content":
        return f"because you liked {anchor_title}" if anchor_title else "close to what you listen to"
    if source == "show" and show:
        return f"more from {show}"
    if source == "als":
        return "listeners with similar taste enjoyed this"
    if source == "new":
        return "new episode"
    return "popular this week"


def list_rows(ctx: ServingContext, pairs: pd.DataFrame, user_ids: list[str], now: datetime) -> pa.Table:
    """Rows of FINAL_RECOMMENDATIONS_SCHEMA for `user_ids` from their history `pairs` (every pair they have: what
    they engaged with is never recommended). A listener with history but nothing left gets no rows."""
    ids = pd.Index(sorted(set(user_ids)))
    return _rows(ctx, strategy_lists(ctx, pairs, ids), ids, ctx.policy.strategy, now)


def strategy_lists(
    ctx: ServingContext, pairs: pd.DataFrame, ids: pd.Index, strategy: str | None = None, fill: bool = True
) -> Lists:
    """The lists `strategy` (default: the serving one) gives the listeners `ids` from their history `pairs`;
    `fill`: short lists completed as served (strategies.fill_short), not when a strategy is judged on its own."""
    listeners = build_listeners(
        pairs, ctx.catalog, ctx.model, ctx.t_ref, ctx.config.anchors, ctx.config.half_life_days, user_ids=ids
    )
    users = np.arange(len(ids))
    lists = lists_for(
        strategy or ctx.policy.strategy,
        users,
        listeners,
        ctx.catalog,
        ctx.model,
        ctx.stats,
        ctx.config.strategy,
        ctx.policy.ranker,
    )
    return fill_short(lists, users, listeners, ctx.stats) if fill else lists


def cold_start_rows(ctx: ServingContext, now: datetime) -> pa.Table:
    """The list for a listener without history (stored under COLD_START_USER): this week's most liked episodes."""
    n = ctx.config.strategy.n
    popular = ctx.stats.trending
    # a full list even where few episodes were liked this week: the rest in catalog order, with score 0
    order = np.lexsort((np.arange(len(popular)), -popular))[:n]
    top = float(popular[order[0]]) if len(order) else 1.0
    lists = Lists.empty(1, n)
    lists.items[0, : len(order)] = order
    lists.scores[0, : len(order)] = popular[order] / (top or 1.0)
    lists.sources[0, : len(order)] = "popular"
    return _rows(ctx, lists, pd.Index([COLD_START_USER]), "popularity", now)


def _names_or_none(names: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """`names[codes]` as an object array, None where a code is −1 (`names` may then be empty)."""
    out = np.full(codes.shape, None, dtype=object)
    present = codes >= 0
    out[present] = names[codes[present]]
    return out


def _rows(ctx: ServingContext, lists: Lists, ids: pd.Index, strategy: str, now: datetime) -> pa.Table:
    row, position = np.nonzero(lists.items >= 0)
    catalog = ctx.catalog
    picked = lists.items[row, position]
    anchor = lists.anchors[row, position]
    anchor_ids = _names_or_none(np.asarray(catalog.ids, dtype=object), anchor)
    anchor_titles = _names_or_none(catalog.titles, anchor)
    shows = _names_or_none(catalog.show_names, catalog.show_codes[picked])
    sources = lists.sources[row, position]
    n = len(row)
    return pa.table(
        {
            "user_id": pa.array(np.asarray(ids, dtype=object)[row], pa.string()),
            "rank": pa.array(position + 1, pa.int32()),
            "episode_id": pa.array(np.asarray(catalog.ids, dtype=object)[picked], pa.string()),
            "title": pa.array(catalog.titles[picked], pa.string()),
            "score": pa.array(lists.scores[row, position], pa.float32()),
            "source": pa.array(sources, pa.string()),
            "reason": pa.array(
                [reason(s, a, w) for s, a, w in zip(sources, anchor_titles, shows, strict=True)], pa.string()
            ),
            "anchor_episode_id": pa.array(anchor_ids, pa.string()),
            "strategy": pa.array([strategy] * n, pa.string()),
            "model_version": pa.array([ctx.policy.als_version] * n, pa.string()),
            "ranker_version": pa.array([ctx.policy.ranker_version] * n, pa.string()),
            "generated_at": pa.array([now] * n, UTC_TIMESTAMP),
        },
        schema=FINAL_RECOMMENDATIONS_SCHEMA,
    )
