"""Implicit-feedback ALS (Spark ML) on engagement: every hyper-parameter, the fit, and its factors fetched to the
driver. The id indexing, the training rows and the factors on the driver are plain code in `factors.py`.

How engagement reaches the model: Spark's implicit ALS (Hu, Koren & Volinsky 2008) reads a pair's engagement r as a
confidence c = 1 + alpha·|r| in a preference p = 1 if r > 0 else 0. A positive sum is "likes it, this much"; a
negative sum (skips, low ratings) is kept as a *confident zero*, a stronger "not this" than never having met the
episode (the seed's successor clamped it to zero, which made a skip count the same as nothing). Zero sums are dropped
(identical to unobserved). Negative pairs are kept only for users and episodes that also have a positive pair:
Spark scales the regularization by each user's/episode's number of positive pairs, so one with none at all would
make the least-squares system singular (measured: LAPACK dppsv fails).
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, Field
from pyspark.ml.recommendation import ALS, ALSModel
from pyspark.sql import DataFrame

from podrec_assets.lib.models.factors import EPISODE_IDX, USER_IDX, Factors


class AlsParams(BaseModel):
    """Every ALS hyper-parameter, set explicitly (Spark's defaults are not what its docs suggest)."""

    # Defaults chosen on the temporal protocol's validation cut of MovieLens-100k (docs/quality.md): alpha 1 over
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


def fit_als(rows: DataFrame, params: AlsParams) -> ALSModel:
    return als_estimator(params).fit(rows)


def model_factors(model: ALSModel) -> tuple[Factors, Factors]:
    """User and item factors of a fitted or loaded model, fetched once as Arrow."""

    def fetch(frame: DataFrame) -> Factors:
        table = frame.toArrow()
        ids = table.column("id").to_numpy().astype(np.int64)
        flat = table.column("features").combine_chunks().flatten().to_numpy()
        return Factors(ids, flat.reshape(len(ids), -1).astype(np.float32))

    return fetch(model.userFactors), fetch(model.itemFactors)
