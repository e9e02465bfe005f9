"""A model's two sides without Spark: dense ids for string ids, the rows ALS is fitted on, and fitted factors as numpy
(what serving, fold-in and the ranker read; `als.py` fits them with Spark)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

USER_IDX = "user_idx"
EPISODE_IDX = "episode_idx"


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
