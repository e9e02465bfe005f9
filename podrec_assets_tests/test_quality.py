"""What the asset checks measure (lib/*/quality.py), on small tables: each kind of problem is counted."""

from datetime import date

import numpy as np
import pyarrow as pa

from podrec_assets.lib.content.embedding import DIMENSION
from podrec_assets.lib.content.quality import embedding_problems, similarity_problems
from podrec_assets.lib.ingestion.quality import (
    duplicate_event_ids,
    null_key_counts,
    schema_differences,
    unknown_event_types,
)
from podrec_assets.lib.ingestion.tables import RAW_USER_EVENTS_SCHEMA
from podrec_assets.lib.models.quality import engaged_pairs_recommended, inconsistent_rankings
from podrec_assets.lib.serving.lookup import COLD_START_USER
from podrec_assets.lib.serving.quality import shortfalls


def test_schema_differences_name_missing_unexpected_and_retyped_columns():
    assert schema_differences(RAW_USER_EVENTS_SCHEMA) == []
    fields = [f for f in RAW_USER_EVENTS_SCHEMA if f.name != "device"]
    fields = [pa.field("rating", pa.string()) if f.name == "rating" else f for f in fields]
    problems = schema_differences(pa.schema([*fields, pa.field("extra", pa.int8())]))
    assert problems == ["missing column device", "unexpected column extra", "rating is string, expected int8"]


def test_null_keys_duplicates_and_unknown_types_are_counted():
    events = pa.table({
        "event_id": ["a", "a", None], "user_id": ["u", "u", "u"], "event_type": ["like", "search", "warp"],
        "ts": [1, 2, 3], "event_date": [date(2026, 1, 1)] * 3, "episode_id": [None, None, "e"],
    })  # fmt: skip
    # one null event_id; a content event (like) without an episode; a search needs none
    assert null_key_counts(events) == {"event_id": 1, "episode_id (content events)": 1}
    assert duplicate_event_ids(events.column("event_id")) == 1
    assert unknown_event_types(events.column("event_type")) == ["warp"]


def test_embedding_problems_count_each_kind():
    unit = np.eye(DIMENSION, dtype=np.float32)[:3]
    unit[1] *= 2  # not unit length
    unit[2, 0] = np.nan
    table = pa.table({"vector": [list(map(float, v)) for v in unit]})
    assert embedding_problems(table) == {"wrong_dimension": 0, "nan_or_inf": 1, "not_unit_norm": 1}
    short = pa.table({"vector": [[1.0, 0.0]]})
    assert embedding_problems(short)["wrong_dimension"] == 1


def test_similarity_problems_count_each_kind():
    rows = pa.table({
        "episode_id": ["a", "a", "b", "b", "c"],
        "similar_episode_id": ["b", "c", "b", "a", "a"],
        "rank": [1, 2, 1, 2, 1],
        "score": [0.9, 0.95, 0.5, -1.5, 0.3],
    })  # fmt: skip
    problems = similarity_problems(rows, episodes=3, k=2)
    # b lists itself; -1.5 is out of range; a's scores rise with rank; c has one neighbour of two
    assert problems == {
        "self_pairs": 1,
        "scores_out_of_range": 1,
        "unsorted_lists": 1,
        "wrong_neighbour_count": 1,
    }


def test_list_checks_find_engaged_pairs_and_inconsistent_rankings():
    recommendations = pa.table({
        "user_id": ["u", "u", "v", "v"], "episode_id": ["a", "b", "a", "a"],
        "rank": [1, 2, 1, 3], "score": [0.9, 0.8, 0.5, 0.7],
    })  # fmt: skip
    engaged = pa.table({"user_id": ["u", "u", "w"], "episode_id": ["b", "b", "a"]})
    assert engaged_pairs_recommended(recommendations, engaged) == 1  # (u, b), counted once
    # v: ranks 1, 3; episode a twice; the score rises from rank 1 to rank 3
    problems = inconsistent_rankings(recommendations)
    assert problems == {"ranks_not_1_to_n": 1, "duplicate_episodes": 1, "scores_rising": 1}


def test_shortfalls_are_active_listeners_served_less_than_the_catalog_allows():
    daily = pa.table({
        "user_id": ["u", "v", "old"], "episode_id": ["a", "a", "a"],
        "event_date": [date(2026, 3, 30), date(2026, 3, 30), date(2026, 1, 1)],
    })  # fmt: skip
    served = pa.table({"user_id": ["u", "u", "v", COLD_START_USER, COLD_START_USER, COLD_START_USER]})
    # catalog a, b, c: u and v engaged with a, so two each; v gets one; the cold-start list needs three
    report = shortfalls(served, daily, {"a", "b", "c"}, top_n=5, active_days=30)
    assert report == {"active_users": 2, "short_without_reason": 1, "examples": ["v"]}
