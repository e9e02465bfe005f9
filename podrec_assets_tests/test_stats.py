"""user_stats, user_affinities and global_stats against a real MongoDB-wire server and real Delta tables:
exact against a from-scratch recomputation after several ingestion versions, unchanged by replays, exact after
a SIGKILL in the middle of a run, safe with hostile ids and names."""

import random
import re
import signal
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from dagster import (
    AssetMaterialization,
    AssetSpec,
    DagsterInstance,
    Definitions,
    evaluate_automation_conditions,
    materialize,
)
from deltalake import DeltaTable, write_deltalake

from podrec_assets.defs.stats.assets import global_stats, user_stats
from podrec_assets.lib.content.tables import EPISODES_SCHEMA
from podrec_assets.lib.ingestion.contract import CONTENT_EVENT_TYPES, make_v1_event
from podrec_assets.lib.stats.aggregate import DocIncrement, load_catalog
from podrec_assets.lib.stats.batches import UnsupportedTableChange
from podrec_assets.lib.stats.global_stats import compute_global_stats, write_global_stats
from podrec_assets.lib.stats.incremental import STREAM, StreamMismatch, update_user_stats
from podrec_assets.lib.stats.keys import MAX_KEY_LENGTH, affinity_id, rating_id, safe_key
from podrec_assets.lib.stats.store import CURSORS, apply_increments
from podrec_assets.names import (
    EPISODES,
    GLOBAL_STATS,
    RAW_USER_EVENTS,
    USER_AFFINITIES,
    USER_EPISODE_RATINGS,
    USER_STATS,
)
from podrec_assets_tests.helpers import write_raw_events

REPO = Path(__file__).resolve().parents[1]
LONG_SHOW = ("Show.With.Dots " * 400)[:5000]
USERS = ["u-1", "u-2", "$where.a", "user.with.dots", "ünïcode-用户"]
DEVICES = ["ios", "a.b", "$x", "", "Pixel 8 Pro", "web", None]
CATALOG = {  # episode -> (show, author, categories); ep-9 is not in the catalog
    "ep-0": ("Tech Talk", "Ann", ["Technology", "News"]),
    "ep-1": (LONG_SHOW, "$author.x", ["Technology", "Technology"]),
    "ep-2": ("Daily", None, None),
    "ep-3": ("Daily", "Bob", ["News", ""]),
    "ep-4": ("Laughs", "Cy", ["Comedy"]),
}


def write_catalog(delta, catalog: dict) -> None:
    rows = [{"episode_id": e, "title": f"Title of {e}", "show": s, "author": a, "categories": c}
            for e, (s, a, c) in catalog.items()]  # fmt: skip
    write_deltalake(delta.table_uri(EPISODES), pa.Table.from_pylist(rows, schema=EPISODES_SCHEMA))


def make_events(n: int, prefix: str, start: datetime, seed: int) -> list[dict]:
    """Varied v1 events over ~50 days: every event type, segments, ratings, hostile user ids and devices."""
    rng = random.Random(seed)
    events = []
    for i in range(n):
        kind = rng.choice(
            ["play", "pause", "skip", "complete", "abandon", "rate", "like", "unlike", "view", "search"]
        )
        fields: dict = {}
        if kind in ("pause", "skip") or (kind == "complete" and rng.random() < 0.5):
            begin = round(rng.uniform(0, 300), 1)
            fields = {"from_sec": begin, "to_sec": round(begin + rng.uniform(0.1, 900), 1)}
        elif kind in ("play", "abandon", "complete"):
            fields = {"position_sec": round(rng.uniform(0, 900), 1)}  # a position: not listening time
        if kind == "rate":
            fields["rating"] = rng.randint(1, 5)
        events.append(make_v1_event(
            event_id=f"{prefix}-{i}",
            user_id=rng.choice(USERS),
            episode_id=None if kind == "search" else f"ep-{rng.choice([0, 1, 2, 3, 4, 9])}",
            event_type=kind,
            ts=start + timedelta(minutes=rng.randrange(0, 50 * 24 * 60), milliseconds=rng.randrange(1000)),
            device=rng.choice(DEVICES),
            **fields,
        ))  # fmt: skip
    return events


START = datetime(2025, 3, 10, tzinfo=UTC)


def latest_ratings(frame: pd.DataFrame) -> dict[tuple[str, str], int]:
    """Each (user, episode)'s latest rating: the greatest (ts, event_id), ts at full resolution."""
    latest: dict = {}
    for e in frame[(frame["event_type"] == "rate") & frame["rating"].notna()].itertuples():
        key = (e.user_id, e.episode_id)
        if key not in latest or (e.ts, e.event_id) > latest[key][:2]:
            latest[key] = (e.ts, e.event_id, int(e.rating))
    return {key: rating for key, (_, _, rating) in latest.items()}


def recompute(delta, catalog: dict | None) -> tuple[dict, dict]:
    """user_stats and user_affinities from scratch: pandas over the whole raw table, row by row."""
    frame = DeltaTable(delta.table_uri(RAW_USER_EVENTS)).to_pandas()
    ratings = latest_ratings(frame)
    frame["ts"] = [t.to_pydatetime() for t in frame["ts"].dt.floor("ms")]  # BSON keeps milliseconds
    users: dict = {}
    affinities: dict = {}
    for e in frame.itertuples():
        ts = e.ts
        u = users.setdefault(e.user_id, {
            "_id": e.user_id, "user_id": e.user_id, "events_total": 0, "completes": 0, "likes": 0, "skips": 0,
            "listening_ms": 0, "listening_segments": 0, "ratings": {"count": 0, "sum": 0},
            "events": {}, "months": {}, "first_event_at": ts, "last_event_at": ts,
        })  # fmt: skip
        u["events_total"] += 1
        u["first_event_at"], u["last_event_at"] = min(u["first_event_at"], ts), max(u["last_event_at"], ts)
        for name, kind in (("completes", "complete"), ("likes", "like"), ("skips", "skip")):
            u[name] += e.event_type == kind
        u["likes"] -= e.event_type == "unlike"  # takes a like back
        if not pd.isna(e.from_sec) and not pd.isna(e.to_sec):
            u["listening_ms"] += round((e.to_sec - e.from_sec) * 1000)
            u["listening_segments"] += 1
        for field, name in (
            ("events", e.event_type),
            ("months", ts.strftime("%Y-%m")),
            ("devices", e.device),
        ):
            if name is None:
                continue
            key = safe_key(name)
            u.setdefault(field, {})[key] = u.get(field, {}).get(key, 0) + 1
            if key != name:
                u.setdefault("key_names", {}).setdefault(field, {})[key] = name[:256]
        if catalog is None or e.episode_id not in catalog or e.event_type not in CONTENT_EVENT_TYPES:
            continue
        show, author, categories = catalog[e.episode_id]
        pairs = [("show", show), ("author", author)] + [
            ("category", c) for c in dict.fromkeys(categories or [])
        ]
        for dimension, value in pairs:
            if not value:
                continue
            doc_id = affinity_id(e.user_id, dimension, value)
            a = affinities.setdefault(doc_id, {
                "_id": doc_id, "user_id": e.user_id, "dimension": dimension, "value": value, "count": 0,
                "likes": 0, "completes": 0, "skips": 0, "ratings": 0, "rating_sum": 0, "last_event_at": ts,
            })  # fmt: skip
            a["count"] += 1
            a["likes"] += (e.event_type == "like") - (e.event_type == "unlike")
            a["completes"] += e.event_type == "complete"
            a["skips"] += e.event_type == "skip"
            a["last_event_at"] = max(a["last_event_at"], ts)
    for (user, episode), rating in ratings.items():  # only each pair's latest rating counts
        u = users[user]["ratings"]
        u["count"] += 1
        u["sum"] += rating
        u.setdefault("by_star", {})[str(rating)] = u.get("by_star", {}).get(str(rating), 0) + 1
        if catalog is None or episode not in catalog:
            continue
        show, author, categories = catalog[episode]
        for dimension, value in [("show", show), ("author", author)] + [
            ("category", c) for c in dict.fromkeys(categories or [])
        ]:
            if value:
                a = affinities[affinity_id(user, dimension, value)]
                a["ratings"] += 1
                a["rating_sum"] += rating
    return users, affinities


def stored(db, collection: str, strip: tuple = ("applied", "updated_at")) -> dict:
    documents = {d["_id"]: {k: v for k, v in d.items() if k not in strip} for d in db[collection].find()}
    for d in documents.values():  # a star a re-rating emptied keeps its key, at 0
        if collection == USER_STATS and "by_star" in d["ratings"]:
            d["ratings"]["by_star"] = {k: v for k, v in d["ratings"]["by_star"].items() if v}
    return documents


def run_stats(db, delta, **kwargs):
    return update_user_stats(db, delta.table_uri(RAW_USER_EVENTS), delta.table_uri(EPISODES), **kwargs)


def assert_exact(db, delta, catalog: dict | None = CATALOG) -> None:
    users, affinities = recompute(delta, catalog)
    assert stored(db, USER_STATS) == users
    assert stored(db, USER_AFFINITIES) == affinities
    ratings = latest_ratings(DeltaTable(delta.table_uri(RAW_USER_EVENTS)).to_pandas())
    assert {d["_id"]: d["rating"] for d in db[USER_EPISODE_RATINGS].find()} == {
        rating_id(*pair): rating for pair, rating in ratings.items()
    }
    latest = DeltaTable(delta.table_uri(RAW_USER_EVENTS)).version()
    assert db[CURSORS].find_one({"_id": STREAM})["version"] == latest
    marks = {d["applied"][STREAM] for c in (USER_STATS, USER_AFFINITIES) for d in db[c].find()}
    assert marks and max(marks) <= latest


# ---------------------------------------------------------------------------------------------- keys and ids


def test_safe_key_keeps_safe_names_and_hashes_the_others():
    for name in ("play", "2025-03", "ios", "search_click", "a" * MAX_KEY_LENGTH):
        assert safe_key(name) == name
    hostile = ["$where", "a.b", "", "x" * 10_000, "ünïcode 用户", "$", ".", "a b", "a" * (MAX_KEY_LENGTH + 1)]
    keys = [safe_key(name) for name in hostile]
    for name, key in zip(hostile, keys, strict=True):
        assert re.fullmatch(r"[A-Za-z0-9_-]+", key) and len(key) <= MAX_KEY_LENGTH, (name, key)
        assert key != name and safe_key(name) == key  # changed, and deterministically
    assert len(set(keys)) == len(keys)
    assert safe_key("a.b") != safe_key("a_b") == "a_b"
    assert safe_key(safe_key("a.b")) != safe_key(
        "a.b"
    )  # a name that looks changed is changed again: no collision
    ids = {affinity_id("u", "show", "a"), affinity_id("u", "show", 'a", "b'), affinity_id("u", "author", "a")}
    assert len(ids) == 3 and all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)


# ------------------------------------------------------------------------------------ exactness and replays


def test_incremental_versions_match_recomputation_and_replays_change_nothing(delta, db):
    write_catalog(delta, CATALOG)
    write_raw_events(delta, make_events(150, "a", START, 1))
    write_raw_events(delta, make_events(150, "b", START, 2))
    first = run_stats(db, delta)
    assert first.versions_applied == [0, 1] and first.events_applied == 300
    assert first.user_stats.skipped == first.affinities.skipped == 0
    assert first.unknown_episode_events > 0 and first.affinities.written > 20
    assert_exact(db, delta)
    for seed, prefix in ((3, "c"), (4, "d")):  # two more ingestion versions
        write_raw_events(delta, make_events(100, prefix, START, seed))
    second = run_stats(db, delta)
    assert second.versions_applied == [2, 3] and second.events_applied == 200
    assert_exact(db, delta)

    everything = (stored(db, USER_STATS, ()), stored(db, USER_AFFINITIES, ()))
    again = run_stats(db, delta)  # nothing new
    assert again.versions_applied == [] and again.user_stats.written == 0
    db[CURSORS].update_one({"_id": STREAM}, {"$set": {"version": 1}})  # moved back two versions
    replay = run_stats(db, delta)
    assert replay.versions_applied == [2, 3] and replay.events_applied == 200
    assert replay.user_stats.written == replay.affinities.written == 0
    assert replay.user_stats.skipped == second.user_stats.written
    assert replay.affinities.skipped == second.affinities.written
    db[CURSORS].delete_one({"_id": STREAM})  # cursor lost: starts over from version 0, still nothing doubles
    assert run_stats(db, delta).user_stats.written == 0
    assert (stored(db, USER_STATS, ()), stored(db, USER_AFFINITIES, ())) == everything  # not even updated_at
    assert_exact(db, delta)


def test_duplicate_key_of_an_already_marked_document_counts_as_skipped(db):
    collection = db["marks"]
    one = DocIncrement("doc", inc={"n": 1}, set_on_insert={"name": "doc"})
    assert apply_increments(collection, [one], STREAM, 5).written == 1  # inserted
    skipped = apply_increments(collection, [one, DocIncrement("new", inc={"n": 2})], STREAM, 5)
    assert (skipped.written, skipped.skipped) == (1, 1)  # E11000 for "doc" handled; "new" still inserted
    assert apply_increments(collection, [one], STREAM, 3).skipped == 1  # an older version is applied already
    assert apply_increments(collection, [one], STREAM, 6).written == 1  # the next one updates
    assert collection.find_one({"_id": "doc"}) | {"updated_at": None} == {
        "_id": "doc", "n": 2, "name": "doc", "applied": {STREAM: 6}, "updated_at": None
    }  # fmt: skip


def test_sigkill_in_the_middle_of_a_run_then_rerun_is_exact(delta, db, mongo):
    write_catalog(delta, CATALOG)
    for seed, prefix in ((5, "a"), (6, "b"), (7, "c")):
        write_raw_events(delta, make_events(60, prefix, START, seed))
    code = (
        "import sys\nfrom pymongo import MongoClient\n"
        "from podrec_assets.lib.stats import store\n"
        "from podrec_assets.lib.stats.incremental import update_user_stats\n"
        # fault injection: one document per request, SIGKILL after argv[5] of them
        "import os, signal\nstore.BULK_CHUNK, bulk, done = 1, store._bulk, [0]\n"
        "def counted(collection, operations):\n"
        "    result = bulk(collection, operations)\n"
        "    done[0] += len(operations)\n"
        "    if done[0] >= int(sys.argv[5]): os.kill(os.getpid(), signal.SIGKILL)\n"
        "    return result\n"
        "store._bulk = counted\n"
        "update_user_stats(MongoClient(sys.argv[1])[sys.argv[2]], sys.argv[3], sys.argv[4])"
    )
    args = [sys.executable, "-c", code, mongo.uri, mongo.database]
    args += [delta.table_uri(RAW_USER_EVENTS), delta.table_uri(EPISODES)]
    expected_users, expected_affinities = recompute(delta, CATALOG)
    # version 0 writes 5 user_stats, then 46 user_affinities, then 12 user_episode_ratings documents: the first kill
    # comes among its ratings (written last), the next (re-doing what was written first) in version 1's affinities
    for crash_after, ratings_written in ((55, 4), (70, 12)):
        process = subprocess.run(
            [*args, str(crash_after)], check=False, cwd=REPO, capture_output=True, timeout=120
        )
        assert process.returncode == -signal.SIGKILL, process.stderr.decode()[-2000:]
        cursor = db[CURSORS].find_one({"_id": STREAM})
        assert cursor is None or cursor["version"] < 2
        assert db[USER_EPISODE_RATINGS].count_documents({}) == ratings_written  # where each kill came
        users, affinities = stored(db, USER_STATS), stored(db, USER_AFFINITIES)
        assert users or affinities  # some documents were written ...
        assert (users, affinities) != (expected_users, expected_affinities)  # ... but not all
    report = run_stats(db, delta)
    assert (
        report.user_stats.skipped + report.affinities.skipped > 0
    )  # what the killed runs wrote is not redone
    assert_exact(db, delta)


# ---------------------------------------------------------------------------------- hostile ids, no catalog


def test_hostile_user_ids_devices_and_show_names_are_stored_safely(delta, db):
    write_catalog(delta, CATALOG)
    t, user = datetime(2025, 5, 1, tzinfo=UTC), "$where.a"
    write_raw_events(delta, [
        make_v1_event(event_id="x1", user_id=user, episode_id="ep-1", event_type="like", ts=t, device="a.b"),
        make_v1_event(event_id="x2", user_id=user, episode_id="ep-1", event_type="rate", ts=t, rating=4,
                      device="$x" + "y" * 300),
    ])  # fmt: skip
    run_stats(db, delta)
    doc = db[USER_STATS].find_one({"_id": "$where.a"})
    assert doc["user_id"] == "$where.a" and doc["ratings"] == {"count": 1, "sum": 4, "by_star": {"4": 1}}
    devices = doc["devices"]
    assert len(devices) == 2 and all(re.fullmatch(r"[A-Za-z0-9_-]{1,64}", k) for k in devices)
    assert set(doc["key_names"]["devices"].values()) == {"a.b", ("$x" + "y" * 300)[:256]}
    show = db[USER_AFFINITIES].find_one({"user_id": "$where.a", "dimension": "show"})
    assert (
        show["value"] == LONG_SHOW and len(LONG_SHOW) == 5000 and re.fullmatch(r"[0-9a-f]{32}", show["_id"])
    )
    assert (show["count"], show["likes"], show["ratings"], show["rating_sum"]) == (2, 1, 1, 4)
    categories = list(db[USER_AFFINITIES].find({"user_id": "$where.a", "dimension": "category"}))
    assert [(c["value"], c["count"]) for c in categories] == [("Technology", 2)]  # listed twice, counted once
    index = db[USER_AFFINITIES].index_information()["user_dimension_count"]["key"]
    assert [tuple(k) for k in index] == [("user_id", 1), ("dimension", 1), ("count", -1)]
    assert_exact(db, delta)


def test_without_catalog_user_stats_are_exact_and_affinities_skipped(delta, db):
    nothing = run_stats(db, delta)  # no events table yet: nothing to do
    assert nothing.versions_applied == [] and db[CURSORS].count_documents({}) == 0
    assert compute_global_stats(delta.table_uri(RAW_USER_EVENTS), load_catalog("/nowhere")).documents == []
    write_raw_events(delta, make_events(80, "a", START, 8))
    report = run_stats(db, delta)
    assert not report.catalog_present and report.affinities.written == 0
    assert report.unknown_episode_events == report.content_events > 0
    assert_exact(db, delta, catalog=None)


def test_compaction_is_skipped_deletes_and_recreated_tables_are_refused(delta, db, tmp_path):
    write_catalog(delta, CATALOG)
    write_raw_events(delta, make_events(40, "a", START, 9))
    write_raw_events(delta, make_events(40, "b", START, 10))
    run_stats(db, delta)
    uri = delta.table_uri(RAW_USER_EVENTS)
    DeltaTable(uri).optimize.compact()  # same rows in fewer files
    report = run_stats(db, delta)
    assert (
        report.versions_applied == [2] and report.operations == {"OPTIMIZE": 1} and report.events_applied == 0
    )
    write_raw_events(delta, make_events(40, "c", START, 11))  # and later appends still count
    assert run_stats(db, delta).events_applied == 40
    assert_exact(db, delta)
    DeltaTable(uri).delete("event_type = 'like'")
    with pytest.raises(UnsupportedTableChange, match="DELETE"):
        run_stats(db, delta)
    db[CURSORS].update_one({"_id": STREAM}, {"$set": {"table_id": "another-table"}})
    with pytest.raises(StreamMismatch):
        run_stats(db, delta)


# ---------------------------------------------------------------------------------------------- global_stats


def test_global_stats_windows(delta, db):
    write_catalog(delta, {"ep-0": ("S0", "A", ["Tech"]), "ep-1": ("S1", "A", ["Tech", "News"]),
                          "ep-2": ("S2", "B", ["News"]), "ep-3": ("S3", "C", ["Comedy"])})  # fmt: skip
    n = iter(range(1000))

    def ev(day: date, user: int, episode: str | None, kind: str, **fields) -> dict:
        ts = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
        return make_v1_event(event_id=f"g-{next(n)}", user_id=f"u{user}", episode_id=episode, event_type=kind,
                             ts=ts, **fields)  # fmt: skip

    end = date(2025, 6, 30)
    week = [ev(end, u, "ep-0", "complete") for u in (1, 2, 3)] + [ev(end, 1, "ep-0", "like")]
    week += [ev(date(2025, 6, 25), u, "ep-1", "like") for u in (1, 2)]
    week += [ev(end, 3, "ep-1", "rate", rating=5), ev(end, 4, "ep-1", "rate", rating=2)]
    week += [ev(date(2025, 6, 24), u, "ep-2", "play") for u in (1, 2, 3, 4, 5)] + [ev(end, 6, None, "search")]
    month = [ev(date(2025, 6, 20), u, "ep-2", "complete") for u in (1, 2, 3, 4)]
    before = [ev(date(2025, 5, 15), 1, "ep-3", "play"), ev(date(2025, 5, 20), 2, "ep-1", "like")]
    old = [
        ev(date(2025, 4, 1), 1, "ep-3", "play") for _ in range(3)
    ]  # outside both windows and their previous
    write_raw_events(delta, week + month)
    write_raw_events(delta, before + old)

    catalog = load_catalog(delta.table_uri(EPISODES))
    result = compute_global_stats(delta.table_uri(RAW_USER_EVENTS), catalog)
    assert result.end_date == end and result.events_read == len(week + month + before)  # old days never read
    assert write_global_stats(db, result.documents) == 2
    docs = {d["_id"]: d for d in db[GLOBAL_STATS].find()}
    w7, w30 = docs["window_7d"], docs["window_30d"]
    assert (w7["start_date"], w7["end_date"], w7["events"], w7["content_events"], w7["active_users"]) == (
        "2025-06-24", "2025-06-30", 14, 13, 6)  # fmt: skip
    top = [(e["episode_id"], e["positive"], e["completes"], e["listeners"]) for e in w7["top_episodes"]]
    assert top == [("ep-0", 4, 3, 3), ("ep-1", 3, 0, 4), ("ep-2", 0, 0, 5)]
    assert w7["top_episodes"][0]["title"] == "Title of ep-0" and w7["top_episodes"][1]["high_ratings"] == 1
    trending = [
        (c["category"], c["events"], c["positive"], c["previous_events"]) for c in w7["trending_categories"]
    ]
    assert trending == [("News", 9, 3, 4), ("Tech", 8, 7, 0)]
    assert (w30["start_date"], w30["events"]) == ("2025-06-01", 18)
    top = [(e["episode_id"], e["positive"], e["completes"]) for e in w30["top_episodes"]]
    assert top == [("ep-2", 4, 4), ("ep-0", 4, 3), ("ep-1", 3, 0)]
    trending = [
        (c["category"], c["events"], c["previous_events"], c["change"]) for c in w30["trending_categories"]
    ]
    assert trending == [("News", 13, 1, 12), ("Tech", 8, 1, 7)]
    assert w30["source_version"] == 1 and w30["unknown_episode_events"] == 0

    write_global_stats(db, compute_global_stats(delta.table_uri(RAW_USER_EVENTS), catalog).documents)
    again = {d["_id"]: d for d in db[GLOBAL_STATS].find()}
    assert len(again) == 2 and all(
        again[k] | {"computed_at": 0} == docs[k] | {"computed_at": 0} for k in docs
    )


# ---------------------------------------------------------------------------------------------- Dagster layer


def test_assets_materialize_with_metadata(delta, mongo, db):
    write_catalog(delta, CATALOG)
    write_raw_events(delta, make_events(50, "a", START, 12))
    write_raw_events(delta, make_events(50, "b", START, 13))
    resources = {"delta": delta, "mongo": mongo}
    result = materialize([user_stats, global_stats], resources=resources)
    assert result.success
    materializations = [
        e.event_specific_data.materialization for e in result.get_asset_materialization_events()
    ]
    metadata = {
        m.asset_key.to_user_string(): {k: v.value for k, v in m.metadata.items()} for m in materializations
    }
    assert metadata[USER_STATS]["versions_applied"] == 2 and metadata[USER_STATS]["events_applied"] == 100
    assert metadata[USER_STATS]["documents_written"] == 2 * len(USERS)  # every user in both versions
    assert metadata[USER_AFFINITIES]["documents_written"] >= db[USER_AFFINITIES].count_documents({}) > 0
    assert metadata[GLOBAL_STATS]["documents_written"] == 2
    again = materialize([user_stats], resources=resources)
    stats = [e.event_specific_data.materialization for e in again.get_asset_materialization_events()]
    assert {m.asset_key.to_user_string(): m.metadata["versions_applied"].value for m in stats} == {
        USER_STATS: 0, USER_AFFINITIES: 0}  # fmt: skip
    assert_exact(db, delta)


@pytest.mark.filterwarnings("ignore:Parameter `include_sources`")  # inside Dagster's automation tester
def test_stats_follow_ingestion_even_without_a_catalog(delta, mongo):
    defs = Definitions(
        assets=[AssetSpec(RAW_USER_EVENTS), AssetSpec(EPISODES), user_stats, global_stats],
        resources={"delta": delta, "mongo": mongo},
    )
    instance = DagsterInstance.ephemeral()
    first = evaluate_automation_conditions(defs=defs, instance=instance)
    assert first.total_requested == 0  # no events yet
    instance.report_runless_asset_event(AssetMaterialization(RAW_USER_EVENTS))  # an ingestion run
    after = evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
    requested = {r.key.to_user_string() for r in after.results if r.true_subset.size}
    assert requested == {USER_STATS, USER_AFFINITIES}  # episodes never materialized
    # global_stats follows at the next ten-minute tick, if events arrived since the one before
    later = evaluate_automation_conditions(defs=defs, instance=instance, cursor=after.cursor,
                                           evaluation_time=datetime.now(UTC) + timedelta(minutes=10))  # fmt: skip
    assert {r.key.to_user_string() for r in later.results if r.true_subset.size} >= {GLOBAL_STATS}


def test_an_unlike_takes_a_like_back_in_stats_and_engagement(delta, db):
    from podrec_assets.lib.engagement.weights import EventWeights
    from podrec_assets.lib.ranking.history import pairs_from_events

    write_catalog(delta, CATALOG)
    t = datetime(2025, 5, 1, tzinfo=UTC)
    events = [make_v1_event(event_id="l1", user_id="u-1", episode_id="ep-0", event_type="like", ts=t),
              make_v1_event(event_id="l2", user_id="u-1", episode_id="ep-1", event_type="like", ts=t),
              make_v1_event(event_id="l3", user_id="u-1", episode_id="ep-0", event_type="unlike",
                            ts=t + timedelta(hours=1))]  # fmt: skip
    raw = write_raw_events(delta, events)
    run_stats(db, delta)
    assert stored(db, USER_STATS)["u-1"]["likes"] == 1  # two likes, one taken back
    assert_exact(db, delta)
    pairs = pairs_from_events(raw, EventWeights())
    by_episode = dict(zip(pairs["episode_id"], pairs["engagement"], strict=True))
    assert by_episode.get("ep-0", 0.0) == 0.0 and by_episode["ep-1"] == 3.0  # the like and its unlike cancel
