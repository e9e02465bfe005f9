"""`final_recommendations` from the tables: history from daily_engagement, the current ALS model's factors, the
episode_similarity neighbour lists and the catalog, put into one index space for `hybrid.hybrid_top_n`, and the
result as rows with a reason each."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
from dagster import Config
from pydantic import Field

from podrec_assets.content.tables import UTC_TIMESTAMP
from podrec_assets.models.als import Factors
from podrec_assets.models.ranking import pair_matrix
from podrec_assets.models.recommend import AlsModel
from podrec_assets.serving.hybrid import (
    SOURCE_ALS,
    SOURCE_CONTENT,
    HybridInputs,
    choose_anchors,
    hybrid_top_n,
    similarity_matrix,
)
from podrec_assets.serving.lookup import (  # shared with serving-time reads
    COLD_START_USER,
)

FINAL_RECOMMENDATIONS_SCHEMA = pa.schema(
    [
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("rank", pa.int32(), nullable=False),
        pa.field("episode_id", pa.string(), nullable=False),
        ("title", pa.string()),
        pa.field("score", pa.float32(), nullable=False),  # blended, see serving/hybrid.py
        ("als_part", pa.float32()),  # the ALS score scaled to [0, 1] for this user
        ("content_part", pa.float32()),  # the content score in [0, 1]
        ("source", pa.string()),  # als | content | popular
        ("reason", pa.string()),
        ("anchor_episode_id", pa.string()),  # the episode a content pick is like
        ("model_version", pa.string()),  # the ALS version used ("" if none was promoted yet)
        pa.field("generated_at", UTC_TIMESTAMP, nullable=False),
    ]
)


EMPTY_SIMILARITY = pa.table(
    {"episode_id": pa.array([], pa.string()), "similar_episode_id": pa.array([], pa.string()),
     "score": pa.array([], pa.float32())}
)  # fmt: skip


class HybridConfig(Config):
    top_n: int = Field(default=20, ge=1, le=1000, description="recommendations per user")
    als_weight: float = Field(
        default=1.0,
        ge=0.0,
        le=1.0,
        description="w in score = w·ALS + (1−w)·content for episodes ALS knows (content alone for the rest); "
        "1.0 was best on the MovieLens validation split (README: Quality)",
    )
    anchors: int = Field(
        default=5, ge=0, description="engaged episodes per user whose neighbours are candidates"
    )
    recency_half_life_days: float = Field(
        default=14.0, gt=0, description="an anchor's weight halves every this many days"
    )
    popular_window_days: int = Field(
        default=7, ge=1, description="'popular this week': the window popularity counts"
    )


def history_pairs(daily: pa.Table) -> pd.DataFrame:
    """Per (user, episode) over all history: engagement (sum of daily sums) and the latest event time."""
    frame = daily.select(["user_id", "episode_id", "weight_sum", "last_ts"]).to_pandas()
    return (
        frame.groupby(["user_id", "episode_id"], sort=False)
        .agg(engagement=("weight_sum", "sum"), last_ts=("last_ts", "max"))
        .reset_index()
    )


def recent_popularity(daily: pa.Table, catalog: pd.Index, days: int) -> np.ndarray:
    """Per catalog episode: listeners with positive engagement in the `days` days ending at the newest day."""
    frame = daily.select(["user_id", "episode_id", "event_date", "weight_sum"]).to_pandas()
    if frame.empty:
        return np.zeros(len(catalog), dtype=np.float32)
    newest = frame["event_date"].max()
    recent = frame[(frame["event_date"] > newest - timedelta(days=days)) & (frame["weight_sum"] > 0)]
    listeners = recent.groupby("episode_id")["user_id"].nunique()
    return listeners.reindex(catalog).fillna(0).to_numpy(dtype=np.float32)


def _aligned(factors: Factors, ids: list[str], index: pd.Index) -> tuple[np.ndarray, np.ndarray]:
    """A model's factors re-indexed to `index` (rows the model lacks are zero) and which rows it has."""
    vectors = np.zeros((len(index), factors.vectors.shape[1]), dtype=np.float32)
    known = np.zeros(len(index), dtype=bool)
    positions = index.get_indexer(np.asarray(ids, dtype=object)[factors.ids])
    present = positions >= 0
    vectors[positions[present]] = factors.vectors[present]
    known[positions[present]] = True
    return vectors, known


def final_recommendations(
    catalog: pa.Table,
    daily: pa.Table,
    similarity: pa.Table | None,
    model: AlsModel | None,
    config: HybridConfig,
    now: datetime,
) -> pa.Table:
    """Rows of FINAL_RECOMMENDATIONS_SCHEMA for every user with history, plus the cold-start list."""
    episodes = pd.Index(sorted(set(catalog.column("episode_id").to_pylist())))
    titles = dict(
        zip(catalog.column("episode_id").to_pylist(), catalog.column("title").to_pylist(), strict=True)
    )
    history = history_pairs(daily)
    users = pd.Index(sorted(set(history["user_id"])) + [COLD_START_USER])
    u = users.get_indexer(history["user_id"])
    e = episodes.get_indexer(
        history["episode_id"]
    )  # −1: an episode outside the catalog (cannot be recommended)
    in_catalog = e >= 0

    rank = model.users.vectors.shape[1] if model else 1
    user_vectors, user_known = (np.zeros((len(users), rank), np.float32), np.zeros(len(users), bool))
    item_vectors, item_known = (np.zeros((len(episodes), rank), np.float32), np.zeros(len(episodes), bool))
    if model:
        user_vectors, user_known = _aligned(model.users, model.user_ids, users)
        item_vectors, item_known = _aligned(model.episodes, model.episode_ids, episodes)

    neighbours = similarity if similarity is not None else EMPTY_SIMILARITY
    sim = similarity_matrix(
        episodes.get_indexer(neighbours.column("episode_id").to_pandas()),
        episodes.get_indexer(neighbours.column("similar_episode_id").to_pandas()),
        neighbours.column("score").to_numpy(),
        len(episodes),
    )

    newest = history["last_ts"].max() if len(history) else now
    age_days = ((newest - history["last_ts"]).dt.total_seconds() / 86400).to_numpy()
    anchors, weights = choose_anchors(
        u[in_catalog],
        e[in_catalog],
        history["engagement"].to_numpy()[in_catalog],
        age_days[in_catalog],
        len(users),
        config.anchors,
        config.recency_half_life_days,
    )
    inputs = HybridInputs(
        user_vectors=user_vectors,
        user_known=user_known,
        item_vectors=item_vectors,
        item_known=item_known,
        similarity=sim,
        anchors=anchors,
        anchor_weights=weights,
        exclude=pair_matrix(u[in_catalog], e[in_catalog], (len(users), len(episodes))),
        popularity=recent_popularity(daily, episodes, config.popular_window_days),
    )
    lists = hybrid_top_n(inputs, config.top_n, config.als_weight)
    return _rows(lists, users, episodes, titles, model.version if model else "", now)


def reason(source: str, anchor_title: str | None) -> str:
    if source == SOURCE_CONTENT and anchor_title:
        return f"because you liked {anchor_title}"
    if source == SOURCE_ALS:
        return "listeners with similar taste enjoyed this"
    return "popular this week"


def _rows(lists, users: pd.Index, episodes: pd.Index, titles: dict, version: str, now: datetime) -> pa.Table:
    row, position = np.nonzero(lists.items >= 0)
    episode_names = np.asarray(episodes, dtype=object)
    anchor = lists.anchor[row, position]
    anchor_ids = np.where(anchor >= 0, episode_names[np.maximum(anchor, 0)], None)
    picked = episode_names[lists.items[row, position]]
    sources = lists.source[row, position]
    table = pa.table(
        {
            "user_id": pa.array(np.asarray(users, dtype=object)[row], pa.string()),
            "rank": pa.array(position + 1, pa.int32()),
            "episode_id": pa.array(picked, pa.string()),
            "title": pa.array([titles.get(p) for p in picked], pa.string()),
            "score": pa.array(lists.scores[row, position], pa.float32()),
            "als_part": pa.array(lists.als[row, position], pa.float32()),
            "content_part": pa.array(lists.content[row, position], pa.float32()),
            "source": pa.array(sources, pa.string()),
            "reason": pa.array(
                [reason(s, titles.get(a)) for s, a in zip(sources, anchor_ids, strict=True)], pa.string()
            ),
            "anchor_episode_id": pa.array(anchor_ids, pa.string()),
            "model_version": pa.array([version] * len(row), pa.string()),
            "generated_at": pa.array([now] * len(row), UTC_TIMESTAMP),
        },
        schema=FINAL_RECOMMENDATIONS_SCHEMA,
    )
    return table
