"""`als_recommendations`: the current model's top-N per user, minus every episode the user already engaged with."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from scipy import sparse

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


@dataclass(frozen=True)
class ItemSide:
    """What every listener is scored against: the model's episode factors, the episodes' names by index and the
    list length. Episodes × rank floats: small enough to ship with the scoring function to every Spark task."""

    episode_ids: np.ndarray  # (C,) object: the episode id of each model index
    episodes: Factors
    n: int

    @classmethod
    def of(cls, model_dir: Path, n: int) -> ItemSide:
        names = read_ids(model_dir / "episode_ids.parquet", "episode_id")
        return cls(np.asarray(names, dtype=object), read_factors(model_dir / "item_factors.parquet"), n)

    def excluded(self, rows: np.ndarray, episode_ids: np.ndarray, users: int) -> sparse.csr_matrix:
        """The (users × C) matrix of engaged pairs, from row numbers and episode ids; episodes the model does not
        know cannot be recommended anyway and are dropped."""
        codes = pd.Index(self.episode_ids).get_indexer(episode_ids)
        known = codes >= 0
        return pair_matrix(rows[known], codes[known], (users, len(self.episode_ids)))


def score_users(
    user_ids: np.ndarray, user_vectors: np.ndarray, exclude: sparse.csr_matrix, side: ItemSide
) -> pa.Table:
    """THE scoring step of both paths (the driver's and Spark's): each listener's top-n episodes by user · episode
    factors, minus their row of `exclude`, as (user_id, episode_id, rank, score) rows. Every listener's list depends
    on their own row only, so the paths can differ by how they cut the listeners into blocks and nothing else."""
    items, scores = rank_with_factors(user_vectors, side.episodes, exclude, side.n)
    rows, ranks = np.nonzero(items >= 0)
    return pa.table(
        {
            "user_id": pa.array(np.asarray(user_ids, dtype=object)[rows], pa.string()),
            "episode_id": pa.array(side.episode_ids[items[rows, ranks]], pa.string()),
            "rank": pa.array((ranks + 1).astype(np.int32), pa.int32()),
            "score": pa.array(scores[rows, ranks], pa.float32()),
        }
    )


def finish(scored: pa.Table, version: str, now: datetime) -> pa.Table:
    """Scored rows (either path's) as ALS_RECOMMENDATIONS_SCHEMA, by user and rank."""
    table = scored.append_column(
        "model_version", pa.array([version] * scored.num_rows, pa.string())
    ).append_column("generated_at", pa.array([now] * scored.num_rows, pa.timestamp("us", tz="UTC")))
    return table.cast(ALS_RECOMMENDATIONS_SCHEMA).sort_by([("user_id", "ascending"), ("rank", "ascending")])


def model_users(model_dir: Path) -> int:
    """How many listeners a version scores (what chooses the driver or the Spark path), without reading them."""
    return pq.ParquetFile(model_dir / "user_ids.parquet").metadata.num_rows


def recommend_all_users(model_dir: Path, version: str, engaged: pa.Table, n: int, now: datetime) -> pa.Table:
    """Top-`n` episodes for every user the model knows, on the driver. `engaged` (user_id, episode_id) holds every
    pair with any engagement in the whole history — heard, skipped, rated: none of them is recommended. The Spark
    path (recommend_spark.py) gives the same rows."""
    model = read_model(model_dir, version)
    side = ItemSide(np.asarray(model.episode_ids, dtype=object), model.episodes, n)
    # Engaged pairs in the model's index space; users the model does not know get no list.
    user_codes = pd.Categorical(engaged.column("user_id").to_pandas(), categories=model.user_ids).codes
    known = user_codes >= 0
    episodes = engaged.column("episode_id").to_numpy(zero_copy_only=False)
    exclude = side.excluded(user_codes[known].astype(np.int64), episodes[known], len(model.user_ids))
    user_names = np.asarray(model.user_ids, dtype=object)[model.users.ids]
    return finish(score_users(user_names, model.users.vectors, exclude[model.users.ids], side), version, now)
