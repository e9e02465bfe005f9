"""Atomic publication of whole collections and the lookups, against a real MongoDB-wire server: readers
hammering the collection while it is replaced again and again only ever see one complete set; leftovers of
crashed runs are dropped; an empty or broken set never replaces the live one; `podrec recommend`'s text."""

import random
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from pymongo import MongoClient

from podrec_assets.lib.serving.lookup import (
    ALS_TOP_N_INDEXES,
    COLD_START_USER,
    FINAL_RECOMMENDATIONS_INDEXES,
    SERVED_ARRAYS,
    als_top_n_for,
    format_recommendations,
    recommendations_for,
    top_n,
    user_document,
    user_stats_for,
)
from podrec_assets.lib.serving.publish import (
    STAGING_MARK,
    EmptyPublishError,
    publish_collection,
    staging_created_at,
    staging_name,
)
from podrec_assets.names import ALS_TOP_N, FINAL_RECOMMENDATIONS, USER_RECOMMENDATIONS, USER_STATS

GENERATED_AT = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
REASONS = {"als": "listeners with similar taste enjoyed this", "popular": "popular this week"}


def final_rows(set_id: str, users: int = 200, per_user: int = 20, prefix: str = "u"):
    """One complete set: `per_user` ranked documents per user, all tagged with `set_id` (as model_version)."""
    for u in range(users):
        user = f"{prefix}{u}"
        for rank in range(1, per_user + 1):
            source = ("als", "content", "popular")[rank % 3]
            yield {
                "_id": f"{user}:{rank}",
                "user_id": user,
                "recommended_episode_id": f"ep-{(u * 7 + rank) % 500}",
                "score": round(1.0 - rank / 100, 4),
                "rank": rank,
                "reason": REASONS.get(source, f"because you liked Episode {rank}"),
                "source": source,
                "title": f"Episode {rank} of {set_id}",
                "model_version": set_id,
                "generated_at": GENERATED_AT,
            }


def collection_names(db) -> set[str]:
    return set(db.list_collection_names())


def test_readers_see_one_complete_set_while_it_is_replaced(db, mongo):
    users = 100
    publish_collection(db, FINAL_RECOMMENDATIONS, final_rows("A", users), FINAL_RECOMMENDATIONS_INDEXES)
    stop = threading.Event()
    publishing = threading.Event()
    reads_during_publish = [0]
    seen_sets: set[str] = set()
    failures: list[str] = []
    lock = threading.Lock()

    def reader(seed: int) -> None:
        rng = random.Random(seed)
        client = MongoClient(mongo.uri, tz_aware=True)  # half the readers share nothing with the publisher
        reader_db = client[mongo.database] if seed % 2 else db
        try:
            while not stop.is_set():
                user = f"u{rng.randrange(users)}"
                during = publishing.is_set()
                if rng.random() < 0.25:
                    got = reader_db[FINAL_RECOMMENDATIONS].count_documents({"user_id": user})
                    problem = None if got == 20 else f"count {got} for {user}"
                    sets: set[str] = set()
                else:
                    rows = top_n(reader_db, FINAL_RECOMMENDATIONS, user, 20)
                    sets = {r["model_version"] for r in rows}
                    ranks = [r["rank"] for r in rows]
                    ok = len(rows) == 20 and len(sets) == 1 and ranks == list(range(1, 21))
                    problem = None if ok else f"{user}: {len(rows)} rows of sets {sorted(sets)}"
                with lock:
                    seen_sets.update(sets)
                    reads_during_publish[0] += during and publishing.is_set()
                    if problem:
                        failures.append(problem)
                time.sleep(
                    0.002
                )  # SecantusDB's lock is not fair: back-to-back reads can starve the publisher
        except Exception as exc:  # noqa: BLE001 - reported by the main thread
            failures.append(f"reader raised {exc!r}")
        finally:
            client.close()

    threads = [threading.Thread(target=reader, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    reports = []
    try:
        time.sleep(0.2)
        publishing.set()
        for set_id in "BCD":
            reports.append(
                publish_collection(
                    db, FINAL_RECOMMENDATIONS, final_rows(set_id, users), FINAL_RECOMMENDATIONS_INDEXES
                )
            )
        publishing.clear()
        time.sleep(0.1)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert failures == []
    assert reads_during_publish[0] > 200, reads_during_publish
    assert {"A", "D"} <= seen_sets  # the readers did see the set change under them
    assert all(r.replaced_existing and r.documents == users * 20 for r in reports)
    assert db[FINAL_RECOMMENDATIONS].count_documents({}) == users * 20
    assert {r["model_version"] for r in db[FINAL_RECOMMENDATIONS].find({}, {"model_version": 1})} == {"D"}
    assert not any(STAGING_MARK in name for name in collection_names(db))


def test_indexes_counts_and_timings_after_publish(db):
    report = publish_collection(
        db, FINAL_RECOMMENDATIONS, final_rows("A", 30), FINAL_RECOMMENDATIONS_INDEXES, 64
    )
    assert (report.documents, report.batches, report.replaced_existing) == (600, 10, False)
    assert report.indexes == ["user_id_rank"] and report.total_seconds >= report.swap_seconds > 0
    assert report.metadata()["documents"] == 600
    indexes = {i["name"]: dict(i["key"]) for i in db[FINAL_RECOMMENDATIONS].list_indexes()}
    assert indexes["user_id_rank"] == {"user_id": 1, "rank": 1} and "_id_" in indexes

    seed000 = [
        {"_id": f"u{u}:{r}", "user_id": f"u{u}", "new_episode_id": f"ep-{r}", "als_score": 1 / r, "rank": r,
         "model_version": "v1", "generated_at": GENERATED_AT}
        for u in range(3) for r in range(1, 11)
    ]  # fmt: skip
    publish_collection(db, ALS_TOP_N, iter(seed000), ALS_TOP_N_INDEXES)
    assert "user_id_rank" in {i["name"] for i in db[ALS_TOP_N].list_indexes()}
    assert [r["new_episode_id"] for r in als_top_n_for(db, "u1", limit=3)] == ["ep-1", "ep-2", "ep-3"]


def test_leftover_stagings_of_crashed_runs_are_dropped_but_not_recent_ones(db):
    old = staging_name(FINAL_RECOMMENDATIONS, datetime.now(UTC) - timedelta(hours=2))
    recent = staging_name(FINAL_RECOMMENDATIONS)  # a concurrent run's, say
    foreign = f"{FINAL_RECOMMENDATIONS}{STAGING_MARK}not-a-stamp"
    other = staging_name(ALS_TOP_N, datetime.now(UTC) - timedelta(hours=2))  # another collection's: not ours
    for name in (old, recent, foreign, other):
        db[name].insert_one({"_id": 1})
    assert staging_created_at(FINAL_RECOMMENDATIONS, recent) > datetime.now(UTC) - timedelta(minutes=1)

    report = publish_collection(db, FINAL_RECOMMENDATIONS, final_rows("A", 5), FINAL_RECOMMENDATIONS_INDEXES)
    assert sorted(report.leftovers_dropped) == sorted([old, foreign])
    names = collection_names(db)
    assert {recent, other} <= names and not {old, foreign} & names


def test_an_empty_or_broken_set_never_replaces_the_live_one(db):
    publish_collection(db, FINAL_RECOMMENDATIONS, final_rows("A", 10), FINAL_RECOMMENDATIONS_INDEXES)
    before = collection_names(db)

    with pytest.raises(EmptyPublishError):
        publish_collection(db, FINAL_RECOMMENDATIONS, [], FINAL_RECOMMENDATIONS_INDEXES)
    with pytest.raises(EmptyPublishError):
        publish_collection(db, FINAL_RECOMMENDATIONS, iter(()), FINAL_RECOMMENDATIONS_INDEXES)

    duplicated = [*final_rows("B", 10), next(final_rows("B", 1))]  # "u0:1" twice: the insert fails
    with pytest.raises(Exception, match="E11000|duplicate"):
        publish_collection(
            db, FINAL_RECOMMENDATIONS, duplicated, FINAL_RECOMMENDATIONS_INDEXES, batch_size=50
        )

    def failing_rows():
        yield from final_rows("C", 3)
        raise RuntimeError("the producer of the rows broke")

    with pytest.raises(RuntimeError, match="broke"):
        publish_collection(
            db, FINAL_RECOMMENDATIONS, failing_rows(), FINAL_RECOMMENDATIONS_INDEXES, batch_size=7
        )

    assert collection_names(db) == before  # no staging left behind
    assert {r["model_version"] for r in db[FINAL_RECOMMENDATIONS].find()} == {"A"}
    assert db[FINAL_RECOMMENDATIONS].count_documents({}) == 200
    with pytest.raises(ValueError):
        publish_collection(db, f"x{STAGING_MARK}y", final_rows("A", 1), [])


def test_lookups_by_rank_with_the_cold_start_list_and_stats(db):
    from podrec_assets.lib.serving.recommendations import COLD_START_USER as BUILT_UNDER

    assert COLD_START_USER == BUILT_UNDER
    rows = [*final_rows("A", 2), *final_rows("A", 1, per_user=5, prefix=COLD_START_USER)]
    random.Random(1).shuffle(rows)
    for row in rows:  # the cold-start documents were made with user "__cold_start__0"
        if row["user_id"].startswith(COLD_START_USER):
            row["user_id"] = COLD_START_USER
            row["_id"] = f"{COLD_START_USER}:{row['rank']}"
    publish_collection(db, FINAL_RECOMMENDATIONS, rows, FINAL_RECOMMENDATIONS_INDEXES)
    lists: dict[str, list[dict]] = {}
    for row in sorted(rows, key=lambda r: (r["user_id"], r["rank"])):
        lists.setdefault(row["user_id"], []).append(row)
    publish_collection(db, USER_RECOMMENDATIONS, (user_document(u, r) for u, r in lists.items()), [])

    assert [r["rank"] for r in recommendations_for(db, "u1")] == list(range(1, 21))
    assert [r["rank"] for r in recommendations_for(db, "u1", limit=3)] == [1, 2, 3]
    served = recommendations_for(db, "u1")
    assert served == [
        {k: r[k] for k in served[0]} for r in top_n(db, FINAL_RECOMMENDATIONS, "u1")
    ]  # the serving document and seed 001's documents say the same
    assert set(served[0]) == {"user_id", "rank", "model_version", "generated_at", *SERVED_ARRAYS}
    newcomer = recommendations_for(db, "never-seen")
    assert [(r["user_id"], r["rank"]) for r in newcomer] == [(COLD_START_USER, k) for k in range(1, 6)]
    assert recommendations_for(db, "never-seen", fallback_user_id=None) == []
    assert recommendations_for(db, "u0")[0]["generated_at"] == GENERATED_AT  # tz-aware client: UTC back
    with pytest.raises(ValueError):
        recommendations_for(db, "u0", limit=0)

    db[USER_STATS].insert_one({"_id": "u1", "events_total": 42, "completes": 7, "likes": 3, "skips": 5})
    assert user_stats_for(db, "u1")["events_total"] == 42
    assert user_stats_for(db, "nobody") is None


def test_format_recommendations():
    recs = list(final_rows("als-20261120", users=1, per_user=3))
    recs[1]["title"] = "A very long episode title that goes on and on, well past the column it is given"
    stats = {"_id": "u0", "events_total": 1234, "completes": 56, "likes": 7, "skips": 8,
             "listening_ms": 5_400_000, "ratings": {"count": 4, "sum": 15}}  # fmt: skip
    text = format_recommendations("u0", recs, stats)
    lines = text.splitlines()
    assert lines[0] == "Recommendations for u0, model als-20261120, generated 2026-11-20 03:00 UTC"
    assert lines[1] == "  1. Episode 1 of als-20261120" + " " * 24 + " 0.990  because you liked Episode 1"
    assert lines[2] == "  2. A very long episode title that goes on and on,…   0.980  popular this week"
    assert lines[3].endswith("0.970  listeners with similar taste enjoyed this")
    assert (
        lines[4]
        == "Stats: 1,234 events, 56 completes, 7 likes, 8 skips, 1.5 h listened, 4 ratings (mean 3.8)"
    )
    assert all(len(line) <= 110 for line in lines)

    assert format_recommendations("u9", [], None).startswith("No recommendations for u9: none published yet")
    cold = [dict(recs[0], user_id=COLD_START_USER)]
    assert "no listening history yet" in format_recommendations("u9", cold, {}).splitlines()[0]
    assert (
        format_recommendations("u9", cold, {}).splitlines()[-1]
        == "Stats: ? events, ? completes, ? likes, ? skips"
    )
