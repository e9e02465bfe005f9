"""Implicit-feedback ALS (Spark ML) on engagement: id indexing, the training rows and every hyper-parameter.

How engagement reaches the model: Spark's implicit ALS (Hu, Koren & Volinsky 2008) reads a pair's engagement r as a
confidence c = 1 + alpha·|r| in a preference p = 1 if r > 0 else 0. A positive sum is "likes it, this much"; a
negative sum (skips, low ratings) is kept as a *confident zero*, a stronger "not this" than never having met the
episode (the seed's successor clamped it to zero, which made a skip count the same as nothing). Zero sums are dropped
(identical to unobserved). Negative pairs are kept only for users and episodes that also have a positive pair:
Spark scales the regularization by each user's/episode's number of positive pairs, so one with none at all would
make the least-squares system singular (measured: LAPACK dppsv fails).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from dagster import Config
from pydantic import Field
from pyspark.ml.recommendation import ALS, ALSModel
from pyspark.sql import DataFrame

USER_IDX = "user_idx"
EPISODE_IDX = "episode_idx"


class AlsParams(Config):
    """Every ALS hyper-parameter, set explicitly (Spark's defaults are not what its docs suggest)."""

    # Defaults chosen on the temporal protocol's validation cut of MovieLens-100k (README, "Quality"): alpha 1 over
    # 0.3 (the random protocol's choice, kept in models/movielens_eval.py), 3 and 10; reg 0.3 over 1; rank and
    # iterations as before.
    rank: int = Field(default=64, description="latent factors")
    max_iter: int = Field(default=15, description="alternating iterations")
    reg_param: float = Field(
        default=0.3, description="L2 weight, scaled by each user's/item's positive pairs"
    )
    alpha: float = Field(default=1.0, description="confidence per unit of engagement: c = 1 + alpha·|r|")
    nonnegative: bool = Field(default=False, description="non-negative least squares")
    negative_feedback: bool = Field(default=True, description="keep negative engagement as confident zeros")
    seed: int = Field(default=42, description="factor initialization seed")
    num_blocks: int = Field(default=2, description="user and item blocks (≈ cores)")
    checkpoint_interval: int = Field(default=10, description="iterations between lineage checkpoints")


def als_estimator(params: AlsParams) -> ALS:
    return ALS(
        userCol=USER_IDX,
        itemCol=EPISODE_IDX,
        ratingCol="engagement",
        implicitPrefs=True,
        rank=params.rank,
        maxIter=params.max_iter,
        regParam=params.reg_param,
        alpha=params.alpha,
        nonnegative=params.nonnegative,
        seed=params.seed,
        numUserBlocks=params.num_blocks,
        numItemBlocks=params.num_blocks,
        checkpointInterval=params.checkpoint_interval,
        coldStartStrategy="drop",
        blockSize=4096,
        intermediateStorageLevel="MEMORY_AND_DISK",
        finalStorageLevel="MEMORY_AND_DISK",
    )


@dataclass(frozen=True)
class IdMapping:
    """String ids ↔ the dense integers ALS needs; position = index (alphabetical, so deterministic)."""

    user_ids: list[str]
    episode_ids: list[str]


def index_ids(interactions: pd.DataFrame) -> tuple[pd.DataFrame, IdMapping]:
    """Adds `user_idx` and `episode_idx` (int32): each id's position in the sorted list of distinct ids.

    Done on the driver with `pandas.factorize`: the window's interactions come to the driver anyway (ranking and
    the id files need them), and a Spark StringIndexer fit cost a second pass over them."""
    users, user_ids = pd.factorize(interactions["user_id"], sort=True)
    episodes, episode_ids = pd.factorize(interactions["episode_id"], sort=True)
    indexed = interactions.assign(
        **{USER_IDX: users.astype(np.int32), EPISODE_IDX: episodes.astype(np.int32)}
    )
    return indexed, IdMapping(list(user_ids), list(episode_ids))


def training_rows(pairs: pd.DataFrame, negative_feedback: bool) -> pd.DataFrame:
    """The (user_idx, episode_idx, engagement) rows ALS is fitted on (see the module docstring)."""
    columns = [USER_IDX, EPISODE_IDX, "engagement"]
    positive = pairs["engagement"] > 0
    if not negative_feedback:
        return pairs.loc[positive, columns].reset_index(drop=True)
    negative = (
        (pairs["engagement"] < 0)
        & pairs[USER_IDX].isin(pairs.loc[positive, USER_IDX])
        & pairs[EPISODE_IDX].isin(pairs.loc[positive, EPISODE_IDX])
    )
    return pairs.loc[positive | negative, columns].reset_index(drop=True)


def fit_als(rows: DataFrame, params: AlsParams) -> ALSModel:
    return als_estimator(params).fit(rows)


@dataclass(frozen=True)
class Factors:
    """A fitted model's factors on the driver: row i of `vectors` belongs to index `ids[i]`."""

    ids: np.ndarray
    vectors: np.ndarray

    def dense(self, size: int) -> np.ndarray:
        """Vectors by index 0..size-1; indices the model never saw get zero vectors (score 0)."""
        out = np.zeros((size, self.vectors.shape[1]), dtype=np.float32)
        out[self.ids] = self.vectors
        return out


def write_factors(path, factors: Factors) -> None:
    """Factors as Parquet (index, vector): with the id mappings, all a version needs to score (no Spark)."""
    vectors = pa.FixedSizeListArray.from_arrays(
        pa.array(factors.vectors.ravel(), pa.float32()), factors.vectors.shape[1]
    )
    pq.write_table(pa.table({"idx": pa.array(factors.ids, pa.int32()), "vector": vectors}), path)


def read_factors(path) -> Factors:
    table = pq.read_table(path)
    vectors = table.column("vector").combine_chunks()
    flat = vectors.flatten().to_numpy(zero_copy_only=False).astype(np.float32)
    return Factors(
        table.column("idx").to_numpy().astype(np.int64), flat.reshape(len(table), vectors.type.list_size)
    )


def model_factors(model: ALSModel) -> tuple[Factors, Factors]:
    """User and item factors of a fitted or loaded model, fetched once as Arrow."""

    def fetch(frame: DataFrame) -> Factors:
        table = frame.toArrow()
        ids = table.column("id").to_numpy().astype(np.int64)
        flat = table.column("features").combine_chunks().flatten().to_numpy()
        return Factors(ids, flat.reshape(len(ids), -1).astype(np.float32))

    return fetch(model.userFactors), fetch(model.itemFactors)
