"""`als_recommendations`: the current model's top-N per user, minus every episode the user already engaged with."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from podrec_assets.lib.models.factors import Factors, read_factors
from podrec_assets.lib.models.ranking import pair_matrix, rank_with_factors
from podrec_assets.lib.models.registry import MANIFEST, read_ids

ALS_RECOMMENDATIONS_SCHEMA = pa.schema(
    [
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("episode_id", pa.string(), nullable=False),
        pa.field("rank", pa.int32(), nullable=False),  # 1 = best
        pa.field("score", pa.float32(), nullable=False),  # user · episode factors
        pa.field("model_version", pa.string(), nullable=False),
        pa.field("generated_at", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
)


@dataclass(frozen=True)
class AlsModel:
    """A model version as serving needs it: the id mappings, the factors and the two parameters a fold-in needs
    (models/foldin.py), no Spark."""

    version: str
    user_ids: list[str]
    episode_ids: list[str]
    users: Factors
    episodes: Factors
    reg_param: float
    alpha: float


def read_model(model_dir: Path, version: str, fit: str = "serving") -> AlsModel:
    """The files `training.save_version` wrote into a version folder: the serving fit (trained on every pair of
    the window) or, with fit="heldout", the fit the gate judged (trained without each user's newest pairs)."""
    factors = model_dir if fit == "serving" else model_dir / fit
    params = json.loads((model_dir / MANIFEST).read_text())["params"]
    return AlsModel(
        version=version,
        user_ids=read_ids(model_dir / "user_ids.parquet", "user_id"),
        episode_ids=read_ids(model_dir / "episode_ids.parquet", "episode_id"),
        users=read_factors(factors / "user_factors.parquet"),
        episodes=read_factors(factors / "item_factors.parquet"),
        reg_param=float(params["reg_param"]),
        alpha=float(params["alpha"]),
    )


def recommend_all_users(model_dir: Path, version: str, engaged: pa.Table, n: int, now: datetime) -> pa.Table:
    """Top-`n` episodes for every user the model knows. `engaged` (user_id, episode_id) holds every pair with any
    engagement in the whole history — heard, skipped, rated: none of them is recommended."""
    model = read_model(model_dir, version)
    user_ids, episode_ids, users, episodes = model.user_ids, model.episode_ids, model.users, model.episodes

    # Engaged pairs in the model's index space; episodes or users the model does not know cannot be recommended.
    user_codes = pd.Categorical(engaged.column("user_id").to_pandas(), categories=user_ids).codes
    episode_codes = pd.Categorical(engaged.column("episode_id").to_pandas(), categories=episode_ids).codes
    known = (user_codes >= 0) & (episode_codes >= 0)
    engaged_matrix = pair_matrix(user_codes[known], episode_codes[known], (len(user_ids), len(episode_ids)))

    items, scores = rank_with_factors(users.vectors, episodes, engaged_matrix[users.ids], n)
    rows, ranks = np.nonzero(items >= 0)
    user_names = np.asarray(user_ids, dtype=object)
    episode_names = np.asarray(episode_ids, dtype=object)
    table = pa.table(
        {
            "user_id": user_names[users.ids[rows]],
            "episode_id": episode_names[items[rows, ranks]],
            "rank": (ranks + 1).astype(np.int32),
            "score": scores[rows, ranks],
            "model_version": np.full(len(rows), version, dtype=object),
            "generated_at": pa.array([now] * len(rows), pa.timestamp("us", tz="UTC")),
        }
    )
    return table.cast(ALS_RECOMMENDATIONS_SCHEMA).sort_by([("user_id", "ascending"), ("rank", "ascending")])
