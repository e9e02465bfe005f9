"""Pure unit tests of the hybrid scorer (serving/hybrid.py) and of the rows built from tables."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest
from scipy import sparse

from podrec_assets.lib.models.factors import Factors
from podrec_assets.lib.models.ranking import pair_matrix
from podrec_assets.lib.models.recommend import AlsModel
from podrec_assets.lib.ranking.history import pairs_from_daily
from podrec_assets.lib.ranking.strategies import StrategyConfig
from podrec_assets.lib.serving.hybrid import HybridInputs, choose_anchors, hybrid_top_n, similarity_matrix
from podrec_assets.lib.serving.lookup import COLD_START_USER
from podrec_assets.lib.serving.policy import Policy
from podrec_assets.lib.serving.recommendations import ListsConfig, build_context, cold_start_rows, list_rows

NOW = datetime(2026, 5, 1, tzinfo=UTC)


def inputs(**overrides) -> HybridInputs:
    """3 users × 5 episodes; ALS knows users 0, 1 and episodes 0-3 (episode 4 is new: no interactions)."""
    base = dict(  # noqa: C408 (keyword form reads like the dataclass)
        user_vectors=np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]], np.float32),
        user_known=np.array([True, True, False]),
        item_vectors=np.array([[1.0, 0.0], [0.9, 0.1], [0.1, 0.9], [0.0, 1.0], [0.0, 0.0]], np.float32),
        item_known=np.array([True, True, True, True, False]),
        similarity=similarity_matrix(np.array([0, 4, 3]), np.array([4, 0, 2]), np.array([0.9, 0.9, 0.5]), 5),
        anchors=np.array([[0, -1], [-1, -1], [-1, -1]]),
        anchor_weights=np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 0.0]], np.float32),
        exclude=pair_matrix(np.array([0, 1]), np.array([0, 3]), (3, 5)),
        popularity=np.array([5, 1, 2, 9, 0], np.float32),
    )
    return HybridInputs(**{**base, **overrides})


def test_engaged_episodes_are_never_recommended_and_lists_are_sorted():
    lists = hybrid_top_n(inputs(), n=5, als_weight=0.7)
    assert 0 not in lists.items[0] and 3 not in lists.items[1]
    for row in lists.scores:
        finite = row[np.isfinite(row)]
        assert np.all(np.diff(finite) <= 1e-6)


def test_a_new_episode_reaches_a_user_through_content_with_its_anchor_as_reason():
    lists = hybrid_top_n(inputs(), n=2, als_weight=0.5)
    # user 0 liked episode 0; episode 4 is new (no ALS factors) but is 0.9-similar to episode 0
    position = list(lists.items[0]).index(4)
    assert lists.source[0, position] == "content" and lists.anchor[0, position] == 0
    assert lists.als[0, position] == 0 and lists.content[0, position] > 0.8


def test_a_user_without_history_gets_popular_episodes():
    lists = hybrid_top_n(inputs(), n=3, als_weight=0.7)
    assert list(lists.items[2]) == [3, 0, 2]  # by popularity 9, 5, 2
    assert set(lists.source[2]) == {"popular"}


def test_weight_one_is_pure_als_and_zero_pure_content():
    als_only = hybrid_top_n(inputs(), n=1, als_weight=1.0)
    assert als_only.items[0, 0] == 1  # user 0's best remaining ALS item (0 is excluded)
    content_only = hybrid_top_n(inputs(), n=1, als_weight=0.0)
    assert content_only.items[0, 0] == 4


def test_short_catalogs_pad_and_an_excluded_everything_user_gets_nothing():
    everything = pair_matrix(np.repeat(np.arange(3), 5), np.tile(np.arange(5), 3), (3, 5))
    lists = hybrid_top_n(inputs(exclude=everything), n=3, als_weight=0.7)
    assert (lists.items == -1).all() and np.isnan(lists.scores).all()


def test_a_diverged_model_is_no_opinion_rather_than_a_tie_at_the_top():
    broken = np.array([[np.nan, np.nan], [0.0, 1.0], [0.0, 0.0]], np.float32)
    lists = hybrid_top_n(inputs(user_vectors=broken), n=4, als_weight=1.0)
    assert np.isfinite(lists.scores[0]).all() and set(lists.source[0]) <= {"content", "popular"}
    assert lists.items[0, 0] == 4  # content: 0.9-similar to the episode user 0 liked
    assert (lists.als[0] == 0).all()


def test_anchors_favour_strong_and_recent_engagement():
    anchors, weights = choose_anchors(
        user_index=np.array([0, 0, 0, 1]),
        item_index=np.array([3, 5, 7, 2]),
        engagement=np.array([4.0, 4.0, -2.0, 1.0]),
        age_days=np.array([28.0, 0.0, 0.0, 0.0]),
        users=2,
        per_user=2,
        half_life_days=14,
    )
    assert anchors.tolist() == [
        [5, 3],
        [2, -1],
    ]  # the skip (−2) is never an anchor; older one weighs a quarter
    assert np.allclose(weights, [[1.0, 0.25], [1.0, 0.0]])


def test_rows_carry_reasons_versions_and_the_cold_start_list():
    """The hybrid strategy end to end from tables: a new episode (no interactions) reaches a listener who liked its
    neighbour, with that reason; the cold-start list is this week's most liked; nothing heard comes back."""
    episodes = pa.table(
        {
            "episode_id": [f"e{i}" for i in range(5)],
            "title": [f"T{i}" for i in range(5)],
            "show": [None] * 5,
            "categories": [["news"]] * 5,
            "published_at": pa.array([None] * 5, pa.timestamp("us", tz="UTC")),
        }
    )
    pairs = pairs_from_daily(
        pa.table(
            {
                "user_id": ["u0", "u1"],
                "episode_id": ["e0", "e3"],
                "weight_sum": [3.0, 2.0],
                "event_count": [2, 1],
                "last_ts": pa.array([NOW - timedelta(hours=5)] * 2, pa.timestamp("us", tz="UTC")),
            }
        )
    )
    similarity = pa.table(
        {
            "episode_id": ["e0", "e4"],
            "similar_episode_id": ["e4", "e0"],
            "score": pa.array([0.9, 0.9], pa.float32()),
        }
    )
    model = AlsModel(
        version="v1",
        user_ids=["u0", "u1"],
        episode_ids=["e0", "e1", "e2", "e3"],
        users=Factors(np.array([0, 1]), np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)),
        episodes=Factors(np.arange(4), inputs().item_vectors[:4]),
        reg_param=0.1,
        alpha=1.0,
    )
    policy = Policy("hybrid", "v1", "", "a test")
    config = ListsConfig(strategy=StrategyConfig(n=3, als_weight=0.5))
    ctx = build_context(episodes, None, similarity, pairs, model, policy, config, NOW)
    rows = pa.concat_tables([list_rows(ctx, pairs, ["u0", "u1"], NOW), cold_start_rows(ctx, NOW)])
    by_user = {}
    for row in rows.to_pylist():
        by_user.setdefault(row["user_id"], []).append(row)
    assert set(by_user) == {"u0", "u1", COLD_START_USER}
    assert all(len(v) == 3 for v in by_user.values())
    new_episode = next(r for r in by_user["u0"] if r["episode_id"] == "e4")
    assert new_episode["reason"] == "because you liked T0" and new_episode["anchor_episode_id"] == "e0"
    assert {r["reason"] for r in by_user[COLD_START_USER]} == {"popular this week"}
    assert {r["model_version"] for r in rows.to_pylist()} == {"v1"}
    assert {r["strategy"] for r in by_user["u0"]} == {"hybrid"}
    assert not any(r["episode_id"] == "e0" for r in by_user["u0"])
    assert all(0.0 <= r["score"] <= 1.0 for r in rows.to_pylist())  # the hybrid's documented scale


def test_similarity_matrix_drops_unknown_episodes():
    matrix = similarity_matrix(np.array([0, -1]), np.array([1, 0]), np.array([0.5, 0.7]), 2)
    assert isinstance(matrix, sparse.csr_matrix) and matrix.nnz == 1 and matrix[0, 1] == np.float32(0.5)


def test_serving_configs_refuse_values_outside_their_range():
    import pydantic

    from podrec_assets.defs.models.ranker import RankerConfig
    from podrec_assets.defs.serving.assets import FinalRecommendationsConfig

    for bad in ({"als_weight": 1.5}, {"als_weight": -0.1}, {"cold_weight": 2.0}, {"half_life_days": 0},
                {"folds": 1}, {"label_days": 0}):  # fmt: skip
        with pytest.raises(pydantic.ValidationError):
            RankerConfig(**bad)
    with pytest.raises(pydantic.ValidationError):
        FinalRecommendationsConfig(top_n=0)
