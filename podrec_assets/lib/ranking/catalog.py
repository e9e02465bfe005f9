"""The episode side of ranking, in one index space (episode i = row i everywhere): what the catalog says about each
episode, its content vector and nearest neighbours, the ALS model's factors for it, and what listeners have done
with it up to a reference time (`EpisodeStats`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
from scipy import sparse

from podrec_assets.lib.content.tables import vector_matrix
from podrec_assets.lib.models.foldin import gramian
from podrec_assets.lib.models.recommend import AlsModel
from podrec_assets.lib.serving.hybrid import similarity_matrix

DAY = 86_400.0


def epoch_seconds(values) -> np.ndarray:
    """Timestamps (any pandas-readable form, NaT → NaN) as float epoch seconds, whatever their resolution."""
    times = pd.Series(pd.to_datetime(values, utc=True))
    return (times - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy(dtype=np.float64)


@dataclass(frozen=True)
class Catalog:
    ids: pd.Index  # episode ids, sorted; position = index
    titles: np.ndarray  # (C,) object
    show_codes: np.ndarray  # (C,) int, −1 where the episode names no show
    show_names: np.ndarray  # (S,) object: show_codes index it
    categories: sparse.csr_matrix  # (C, G) bool: the episode's categories (genres for MovieLens)
    published: np.ndarray  # (C,) float epoch seconds, NaN where unknown
    vectors: np.ndarray  # (C, d) float32 unit content vectors, zero rows where an episode has none
    has_vector: np.ndarray  # (C,) bool
    similarity: sparse.csr_matrix  # (C, C) cosine to each episode's top-k neighbours (episode_similarity)

    def __len__(self) -> int:
        return len(self.ids)


def build_catalog(
    episodes: pa.Table, embeddings: pa.Table | None = None, neighbours: pa.Table | None = None
) -> Catalog:
    """From the Delta tables `episodes` (episode_id, title, show, categories, published_at), `transcript_embeddings`
    (episode_id, vector) and `episode_similarity` (episode_id, similar_episode_id, score); the last two optional."""
    frame = episodes.select(["episode_id", "title", "show", "categories", "published_at"]).to_pandas()
    frame = frame.drop_duplicates("episode_id").sort_values("episode_id").reset_index(drop=True)
    ids = pd.Index(frame["episode_id"])
    shows = frame["show"].fillna("").astype(str)
    codes, uniques = pd.factorize(shows)
    show_codes = np.where(shows.to_numpy() != "", codes, -1).astype(np.int64)
    category_lists = [list(c) if c is not None else [] for c in frame["categories"]]
    names = sorted({str(c).lower() for cs in category_lists for c in cs})
    position = {name: j for j, name in enumerate(names)}
    rows = [i for i, cs in enumerate(category_lists) for _ in {str(c).lower() for c in cs}]
    cols = [position[c] for cs in category_lists for c in sorted({str(c).lower() for c in cs})]
    categories = sparse.csr_matrix(
        (np.ones(len(rows), dtype=bool), (rows, cols)), shape=(len(ids), max(len(names), 1)), dtype=bool
    )
    published_s = epoch_seconds(frame["published_at"])

    vectors = np.zeros((len(ids), 0), dtype=np.float32)
    has_vector = np.zeros(len(ids), dtype=bool)
    if embeddings is not None and embeddings.num_rows:
        matrix = vector_matrix(embeddings)
        width = matrix.shape[1]
        where = ids.get_indexer(embeddings.column("episode_id").to_pandas())
        keep = where >= 0
        vectors = np.zeros((len(ids), width), dtype=np.float32)
        vectors[where[keep]] = matrix[keep]
        has_vector[where[keep]] = True
    similarity = sparse.csr_matrix((len(ids), len(ids)), dtype=np.float32)
    if neighbours is not None and neighbours.num_rows:
        similarity = similarity_matrix(
            ids.get_indexer(neighbours.column("episode_id").to_pandas()),
            ids.get_indexer(neighbours.column("similar_episode_id").to_pandas()),
            neighbours.column("score").to_numpy(),
            len(ids),
        )
    return Catalog(
        ids=ids,
        titles=frame["title"].fillna(frame["episode_id"]).to_numpy(dtype=object),
        show_codes=show_codes,
        show_names=np.asarray(uniques, dtype=object),
        categories=categories,
        published=published_s,
        vectors=vectors,
        has_vector=has_vector,
        similarity=similarity,
    )


@dataclass(frozen=True)
class ModelSide:
    """An ALS model's episode factors aligned to the catalog, and what a fold-in against them needs."""

    version: str
    item_vectors: np.ndarray  # (C, r) float32, zero rows where the model has no factor
    item_known: np.ndarray  # (C,) bool
    yty: np.ndarray  # (r, r) float64 Gramian of the model's own factors (not of the zero rows)
    reg_param: float
    alpha: float


def align_model(model: AlsModel | None, catalog: Catalog, rank: int = 1) -> ModelSide:
    """The model's episode factors in catalog index space (episodes it never saw get no factor). Without a model,
    every episode is unknown and every listener gets no vector: recall falls back to content and popularity."""
    if model is None:
        zeros = np.zeros((len(catalog), rank), dtype=np.float32)
        return ModelSide("", zeros, np.zeros(len(catalog), bool), np.eye(rank), 1.0, 1.0)
    width = model.episodes.vectors.shape[1]
    vectors = np.zeros((len(catalog), width), dtype=np.float32)
    known = np.zeros(len(catalog), dtype=bool)
    names = np.asarray(model.episode_ids, dtype=object)[model.episodes.ids]
    where = catalog.ids.get_indexer(names)
    present = where >= 0
    vectors[where[present]] = model.episodes.vectors[present]
    known[where[present]] = True
    # The Gramian over all of the model's factors, as Spark's user step uses, including any episode that has
    # since left the catalog: a fold-in then equals Spark's own solve.
    return ModelSide(
        model.version, vectors, known, gramian(model.episodes.vectors), model.reg_param, model.alpha
    )


@dataclass(frozen=True)
class EpisodeStats:
    """What listeners did with each episode up to `t_ref` (epoch seconds), from history pairs."""

    t_ref: float
    listeners: np.ndarray  # (C,) listeners with positive engagement (the popularity baseline's count)
    recent_7d: np.ndarray  # (C,) of them whose latest event is within 7 days before t_ref
    recent_30d: np.ndarray  # (C,) … within 30 days
    first_seen: np.ndarray  # (C,) epoch seconds of the episode's first event, NaN if none
    mean_engagement: np.ndarray  # (C,) NaN if none
    negative_share: np.ndarray  # (C,) share of its listeners whose engagement is negative, NaN if none

    @property
    def trending(self) -> np.ndarray:
        """The week's most liked first, all-time listeners breaking its ties (recall, `trending`, cold start)."""
        return self.recent_7d + 1e-3 * self.listeners


def episode_stats(
    items: np.ndarray,
    engagement: np.ndarray,
    first_ts: np.ndarray,
    last_ts: np.ndarray,
    size: int,
    t_ref: float,
) -> EpisodeStats:
    """`items` are catalog indices of history pairs (−1 for episodes outside the catalog: ignored); times in epoch
    seconds."""
    keep = items >= 0
    items, engagement, first_ts, last_ts = items[keep], engagement[keep], first_ts[keep], last_ts[keep]
    positive = engagement > 0
    count = np.bincount(items, minlength=size).astype(np.float64)

    def positives_since(days: float) -> np.ndarray:
        recent = positive & (last_ts > t_ref - days * DAY)
        return np.bincount(items[recent], minlength=size).astype(np.float32)

    first = np.full(size, np.inf)
    np.minimum.at(first, items, first_ts)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(items, weights=engagement, minlength=size) / count
        negative = np.bincount(items[engagement < 0], minlength=size) / count
    return EpisodeStats(
        t_ref=t_ref,
        listeners=np.bincount(items[positive], minlength=size).astype(np.float32),
        recent_7d=positives_since(7),
        recent_30d=positives_since(30),
        first_seen=np.where(np.isfinite(first), first, np.nan),
        mean_engagement=np.where(count > 0, mean, np.nan).astype(np.float32),
        negative_share=np.where(count > 0, negative, np.nan).astype(np.float32),
    )
