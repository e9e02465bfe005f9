"""Forgetting a listener: nothing of theirs remains in Delta or MongoDB, nothing of anyone else changes, and the
incremental stats stay exact (their events in versions not yet read are skipped, the erasure's rewrite is not
counted again)."""

from datetime import UTC, datetime

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

from podrec_assets.lib.privacy.erasure import erase_listener
from podrec_assets.lib.serving.lookup import user_document
from podrec_assets.names import (
    ALS_TOP_N,
    DAILY_ENGAGEMENT,
    FINAL_RECOMMENDATIONS,
    QUARANTINED_EVENTS,
    RAW_USER_EVENTS,
    RECOMMENDATION_IMPRESSIONS,
    USER_AFFINITIES,
    USER_RECOMMENDATIONS,
    USER_STATS,
)
from podrec_assets_tests.helpers import write_raw_events
from podrec_assets_tests.test_stats import (
    CATALOG,
    START,
    USERS,
    assert_exact,
    make_events,
    run_stats,
    stored,
    write_catalog,
)

# one of test_stats' listeners, and a hostile id: it must reach no query as an operator
FORGOTTEN = "$where.a"
NOW = datetime(2026, 4, 10, tzinfo=UTC)


def rows_of(delta, name: str) -> list[dict]:
    return DeltaTable(delta.table_uri(name)).to_pyarrow_table().to_pylist()


def test_forgetting_a_listener_leaves_no_trace_and_changes_nobody_else(delta, db):
    write_catalog(delta, CATALOG)
    write_raw_events(delta, make_events(120, "a", START, 21))
    run_stats(db, delta)  # the stats have read version 0 ...
    # ... not yet version 1, which has their events too
    write_raw_events(delta, make_events(120, "b", START, 22))
    others = [u for u in USERS if u != FORGOTTEN]
    for name, rows in {
        DAILY_ENGAGEMENT: {"user_id": USERS, "episode_id": ["ep-0"] * 5, "weight_sum": [1.0] * 5},
        FINAL_RECOMMENDATIONS: {"user_id": USERS, "rank": [1] * 5, "episode_id": ["ep-1"] * 5},
        RECOMMENDATION_IMPRESSIONS: {"impression_id": [f"i{i}" for i in range(5)], "user_id": USERS},
        QUARANTINED_EVENTS: {"raw_text": [f'{{"user_id": "{u}", "event_type": "teleport"}}' for u in USERS]},
    }.items():
        write_deltalake(delta.table_uri(name), pa.table(rows))
    db[USER_RECOMMENDATIONS].insert_many([user_document(u, [], "v1", NOW) for u in USERS])
    db[ALS_TOP_N].insert_many([{"_id": f"{u}:1", "user_id": u, "rank": 1} for u in USERS])
    before_others = {name: [r for r in rows_of(delta, name) if r.get("user_id") != FORGOTTEN]
                     for name in (DAILY_ENGAGEMENT, FINAL_RECOMMENDATIONS, RECOMMENDATION_IMPRESSIONS)}  # fmt: skip
    assert FORGOTTEN in stored(db, USER_STATS)

    report = erase_listener(FORGOTTEN, delta.table_uri, db)
    assert report.delta_rows[RAW_USER_EVENTS] > 0 and report.delta_rows[QUARANTINED_EVENTS] == 1
    assert report.mongo_documents[USER_STATS] == 1 and report.mongo_documents[USER_RECOMMENDATIONS] == 1

    stats = run_stats(db, delta)  # reads version 1 without their events, and the erasure as no rows
    assert stats.operations.get("ERASURE") == 1
    assert_exact(db, delta)  # everybody else's stats are exactly what the remaining events say
    assert FORGOTTEN not in stored(db, USER_STATS)
    assert not db[USER_AFFINITIES].count_documents({"user_id": FORGOTTEN})
    for name in (RAW_USER_EVENTS, DAILY_ENGAGEMENT, FINAL_RECOMMENDATIONS, RECOMMENDATION_IMPRESSIONS):
        assert FORGOTTEN not in {r["user_id"] for r in rows_of(delta, name)}, name
    assert not [r for r in rows_of(delta, QUARANTINED_EVENTS) if FORGOTTEN in r["raw_text"]]
    for name, rows in before_others.items():
        assert rows_of(delta, name) == rows, name  # nobody else's rows changed
    for collection in (USER_RECOMMENDATIONS, ALS_TOP_N):
        assert not db[collection].count_documents({"$or": [{"_id": FORGOTTEN}, {"user_id": FORGOTTEN}]})
    assert sorted(d["_id"] for d in db[USER_RECOMMENDATIONS].find()) == sorted(others)
    assert len(rows_of(delta, QUARANTINED_EVENTS)) == 4

    again = erase_listener(FORGOTTEN, delta.table_uri, db)  # idempotent: nothing left to remove
    assert not any(again.delta_rows.values()) and not any(again.mongo_documents.values())
    assert run_stats(db, delta).events_applied == 0
    assert_exact(db, delta)


def test_the_forget_listener_job_erases(delta, mongo, db):
    from podrec_assets.defs.privacy.jobs import forget_listener

    write_raw_events(delta, make_events(60, "c", START, 23))
    db[USER_RECOMMENDATIONS].insert_one(user_document(FORGOTTEN, [], "v1", NOW))
    result = forget_listener.execute_in_process(
        run_config={"ops": {"erase_listener_everywhere": {"config": {"user_id": FORGOTTEN}}}},
        resources={"delta": delta, "mongo": mongo},
    )
    assert result.success
    assert FORGOTTEN not in {r["user_id"] for r in rows_of(delta, RAW_USER_EVENTS)}
    assert db[USER_RECOMMENDATIONS].find_one({"_id": FORGOTTEN}) is None
