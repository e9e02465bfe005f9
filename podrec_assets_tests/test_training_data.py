"""Pure unit tests of what ALS is fitted and judged on: id indexing, the temporal hold-out, the training rows."""

import pandas as pd

from podrec_assets.lib.models.evaluation import temporal_holdout
from podrec_assets.lib.models.factors import EPISODE_IDX, USER_IDX, index_ids, training_rows


def pairs(rows: list[tuple[str, str, float, int]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["user_id", "episode_id", "engagement", "last_ts"]).assign(
        last_ts=lambda f: pd.to_datetime(f["last_ts"], unit="s", utc=True)
    )


def test_ids_are_indexed_alphabetically_and_the_mapping_inverts_them():
    indexed, ids = index_ids(pairs([("u2", "e9", 1, 0), ("u1", "e9", 1, 0), ("u2", "e1", 1, 0)]))
    assert ids.user_ids == ["u1", "u2"] and ids.episode_ids == ["e1", "e9"]
    assert [ids.user_ids[i] for i in indexed[USER_IDX]] == list(indexed["user_id"])
    assert [ids.episode_ids[i] for i in indexed[EPISODE_IDX]] == list(indexed["episode_id"])
    assert indexed[USER_IDX].dtype == "int32"


def test_temporal_holdout_takes_each_users_newest_share_and_spares_light_users():
    rows = [("heavy", f"e{i}", 1.0, i) for i in range(10)] + [("light", f"e{i}", 1.0, i) for i in range(3)]
    split = temporal_holdout(index_ids(pairs(rows))[0], fraction=0.2, min_interactions=5)
    held = split[split["held_out"]]
    assert set(held["user_id"]) == {"heavy"}
    assert sorted(held["episode_id"]) == ["e8", "e9"]  # the two most recent of ten


def test_training_rows_keep_negatives_only_where_both_sides_have_a_positive_pair():
    rows = [
        ("u1", "e1", 2.0, 0),
        ("u1", "e2", -2.0, 0),  # kept: u1 and e2 both have positive pairs
        ("u2", "e2", 1.0, 0),
        ("u3", "e1", -1.0, 0),  # dropped: u3 has no positive pair (would make ALS's system singular)
        ("u1", "e3", -1.0, 0),  # dropped: e3 has no positive pair
        ("u2", "e1", 0.0, 0),  # dropped: zero is the same as unobserved
    ]
    indexed, ids = index_ids(pairs(rows))
    kept = training_rows(indexed, negative_feedback=True)
    named = {(ids.user_ids[u], ids.episode_ids[e], w) for u, e, w in kept.itertuples(index=False)}
    assert named == {("u1", "e1", 2.0), ("u1", "e2", -2.0), ("u2", "e2", 1.0)}
    assert list(kept.columns) == [USER_IDX, EPISODE_IDX, "engagement"]
    assert len(training_rows(indexed, negative_feedback=False)) == 2
