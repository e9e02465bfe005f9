"""The listener side of ranking: for each listener, what they engaged with (never recommended again), their ALS
vector folded in against the model's episode factors (models/foldin.py: for a listener the model was trained on,
the same vector Spark computed; for anyone else, their vector as of their latest event), their anchors (the
episodes they engaged with most, recently) and their category and show affinities."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse

from podrec_assets.lib.models.foldin import fold_in
from podrec_assets.lib.models.ranking import pair_matrix
from podrec_assets.lib.ranking.catalog import DAY, Catalog, ModelSide, epoch_seconds
from podrec_assets.lib.serving.hybrid import choose_anchors

# A listener's anchors, the same in training and serving (RankerConfig's defaults too)
ANCHORS = 5  # a listener's strongest engaged episodes whose neighbours are candidates
HALF_LIFE_DAYS = 14.0  # an anchor's weight halves every this many days


@dataclass(frozen=True)
class Listeners:
    ids: pd.Index  # user ids; position = index
    seen: sparse.csr_matrix  # (U, C) bool: every pair with any event, positive, negative or zero
    positive: sparse.csr_matrix  # (U, C) bool: pairs with positive engagement
    vectors: np.ndarray  # (U, r) float32 ALS vectors, zero where not solved
    solved: (
        np.ndarray
    )  # (U,) bool: the listener has a vector (a positive pair with an episode the model knows)
    anchors: np.ndarray  # (U, A) catalog index of the listener's anchors, strongest first, −1 where fewer
    anchor_weights: np.ndarray  # (U, A) engagement × recency, the strongest 1
    recent: (
        np.ndarray
    )  # (U, R) catalog index of the listener's latest positive episodes, newest first, −1 where fewer
    category_affinity: np.ndarray  # (U, G) share of the listener's positive pairs in each category
    show_affinity: sparse.csr_matrix  # (U, S) share of the listener's positive pairs on each show
    positives: np.ndarray  # (U,) positive pairs
    events: np.ndarray  # (U,) events
    last_event: np.ndarray  # (U,) epoch seconds of the listener's latest event, NaN if none

    def __len__(self) -> int:
        return len(self.ids)


def build_listeners(
    pairs: pd.DataFrame,
    catalog: Catalog,
    model: ModelSide,
    t_ref: float,
    anchors: int = ANCHORS,
    half_life_days: float = HALF_LIFE_DAYS,
    user_ids: pd.Index | None = None,
    recent: int = 5,
) -> Listeners:
    """Listeners from history pairs (ranking/history.py). `user_ids` fixes who is included and in which order
    (listeners without pairs get empty rows); by default everyone in `pairs`, sorted. Pairs of episodes outside
    the catalog still count as events but cannot be anchors or recommendations."""
    ids = user_ids if user_ids is not None else pd.Index(sorted(pairs["user_id"].unique()))
    u = ids.get_indexer(pairs["user_id"])
    pairs, u = pairs[u >= 0], u[u >= 0]
    e = catalog.ids.get_indexer(pairs["episode_id"])
    engagement = pairs["engagement"].to_numpy(dtype=np.float64)
    last_ts = epoch_seconds(pairs["last_ts"])
    users, size = len(ids), len(catalog)
    inside = e >= 0
    ui, ei, wi = u[inside], e[inside], engagement[inside]

    seen = pair_matrix(ui, ei, (users, size))
    pos = wi > 0
    positive = pair_matrix(ui[pos], ei[pos], (users, size))

    on_model = model.item_known[ei]
    vectors, solved = fold_in(
        model.item_vectors,
        ui[on_model],
        ei[on_model],
        wi[on_model],
        users,
        model.reg_param,
        model.alpha,
        model.yty,
    )

    age_days = (t_ref - last_ts[inside]) / DAY
    anchor_idx, anchor_w = choose_anchors(ui, ei, wi, age_days, users, anchors, half_life_days)

    # the latest positive episodes, newest first: what a listener is into right now
    order = np.lexsort((ei[pos], -last_ts[inside][pos], ui[pos]))
    ru, ri = ui[pos][order], ei[pos][order]
    slot = np.arange(len(ru)) - np.searchsorted(ru, ru, side="left")
    latest = np.full((users, recent), -1, dtype=np.int64)
    latest[ru[slot < recent], slot[slot < recent]] = ri[slot < recent]

    per_user = np.maximum(np.bincount(ui[pos], minlength=users), 1).astype(np.float32)
    category_counts = np.asarray(
        (positive.astype(np.float32) @ catalog.categories.astype(np.float32)).todense()
    )
    shows = catalog.show_codes
    n_shows = int(shows.max()) + 1 if len(shows) and shows.max() >= 0 else 1
    has_show = shows >= 0
    show_matrix = sparse.csr_matrix(
        (np.ones(int(has_show.sum()), np.float32), (np.flatnonzero(has_show), shows[has_show])),
        shape=(size, n_shows),
    )
    show_counts = (positive.astype(np.float32) @ show_matrix).tocsr()
    scale = sparse.diags(1.0 / per_user)

    last_event = np.full(users, -np.inf)
    np.maximum.at(last_event, u, last_ts)
    return Listeners(
        ids=ids,
        seen=seen,
        positive=positive,
        vectors=vectors,
        solved=solved,
        anchors=anchor_idx,
        anchor_weights=anchor_w,
        recent=latest,
        category_affinity=(category_counts / per_user[:, None]).astype(np.float32),
        show_affinity=(scale @ show_counts).tocsr(),
        positives=np.bincount(ui[pos], minlength=users).astype(np.float32),
        events=np.bincount(u, weights=pairs["events"].to_numpy(dtype=np.float64), minlength=users).astype(
            np.float32
        ),
        last_event=np.where(np.isfinite(last_event), last_event, np.nan),
    )
