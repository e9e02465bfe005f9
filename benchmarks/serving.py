"""Serving latency: one listener's recommendations (`recommendations_for`) under concurrent load on loopback.

    python benchmarks/serving.py [--users 5000] [--per-user 20] [--rounds 3] [--slice 10] [--threads 16]
                                 [--skip-per-rank] [--skip-publish-load] [--shapes]

Against a private local SecantusDB (or the server MONGO_URI names). Three reads, measured in the same run:
- lookup: `recommendations_for` (the serving path): one `find_one` by `_id` in `user_recommendations`, where
  `published_recommendations` keeps each listener's whole list in one document;
- per_rank: `top_n(db, FINAL_RECOMMENDATIONS, user, 20)`: seed 001's one-document-per-recommendation shape, read by
  `user_id` sorted by rank (what old readers do);
- floor: the server's own floor, a trivial `find_one({"_id": k})` in a 100-document collection: the baseline.

1. Targets (open loop): requests are scheduled at a fixed rate over `--threads` client threads and latency counts
   from each request's scheduled time, so a stalled server is charged for every request queued behind it. At
   each target rate, `--rounds` rounds of one `--slice`-second slice of lookup then one of floor: both see the
   same (noisy, shared 2-core) machine. Per-round p99s show the spread; the verdict is on the p99 of all the
   rounds' lookups pooled, and lookup / floor is the cost of our path over the server's.
2. Capacity (closed loop, 4 s each): `--threads` threads send their next read as soon as the last returns.
3. Seed 001's per-rank shape: `final_recommendations` (users x per-user documents) is published, then read at
   50 QPS and in a closed loop (skipped with --skip-per-rank).
4. Lookups at 50 QPS while each set is published again (skipped with --skip-publish-load; needs part 3).
5. With --shapes: the serving document's shape, parallel arrays (what `user_document` writes) against the same
   list as one sub-document per rank, in alternating rounds at 500 QPS.
Targets, for the lookup path: seed 004, p99 < 200 ms at >= 50 QPS; ours, p99 < 10 ms at >= 500 QPS.

Drivers other than threads (several client processes, one asyncio `AsyncMongoClient`) were tried as well: they
moved the p99 within the run-to-run spread, so the harness keeps one process of threads, one shared MongoClient.
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import statistics
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import local_services

FLOOR = "floor"
TARGETS = (("seed 004", 50, 200.0), ("ours", 500, 10.0))  # (who, QPS at least, p99 below ms)


def rows(users: int, per_user: int, version: str):
    now = datetime.now(UTC)
    for u in range(users):
        for rank in range(1, per_user + 1):
            yield {
                "_id": f"user-{u}:{rank}",
                "user_id": f"user-{u}",
                "recommended_episode_id": f"ep-{(u * 31 + rank * 7) % 5000}",
                "score": 1.0 - rank / (per_user + 1),
                "rank": rank,
                "reason": "listeners with similar taste enjoyed this",
                "source": "als",
                "title": f"Episode {(u * 31 + rank * 7) % 5000}: a title of ordinary length",
                "model_version": version,
                "generated_at": now,
            }


def by_user_rows(users: int, per_user: int, version: str):
    """The same sets as `rows`, as `user_recommendations` documents."""
    from podrec_assets.lib.serving.lookup import user_document

    ranked = rows(users, per_user, version)
    for user_id, documents in itertools.groupby(ranked, key=lambda row: row["user_id"]):
        yield user_document(user_id, list(documents))


SUB_DOCUMENTS = "user_recommendations_sub_documents"  # part 5: the earlier shape of the serving document


def sub_document_rows(users: int, per_user: int, version: str):
    """The same sets as `by_user_rows`, each list as one sub-document per rank (the shape before the arrays)."""
    for user_id, documents in itertools.groupby(
        rows(users, per_user, version), key=lambda row: row["user_id"]
    ):
        yield {"_id": user_id, "recommendations": [
            {k: v for k, v in row.items() if k not in ("_id", "user_id")} for row in documents]}  # fmt: skip


def make_call(db, op: str, users: int, per_user: int, rng: random.Random):
    from podrec_assets.lib.serving.lookup import recommendations_for, top_n
    from podrec_assets.names import FINAL_RECOMMENDATIONS

    if op == "lookup":

        def call() -> None:
            got = recommendations_for(db, f"user-{rng.randrange(users)}", per_user)
            if len(got) != per_user:
                raise AssertionError(f"{len(got)} recommendations, expected {per_user}")

    elif op == "per_rank":

        def call() -> None:
            got = top_n(db, FINAL_RECOMMENDATIONS, f"user-{rng.randrange(users)}", per_user)
            if len(got) != per_user:
                raise AssertionError(f"{len(got)} per-rank documents, expected {per_user}")

    elif op == "sub_documents":  # what `recommendations_for` did with that shape

        def call() -> None:
            document = db[SUB_DOCUMENTS].find_one({"_id": f"user-{rng.randrange(users)}"})
            got = [{"user_id": document["_id"], **row} for row in document["recommendations"][:per_user]]
            if len(got) != per_user:
                raise AssertionError(f"{len(got)} recommendations, expected {per_user}")

    else:

        def call() -> None:
            if db[FLOOR].find_one({"_id": rng.randrange(100)}) is None:
                raise AssertionError("floor document missing")

    return call


def _run_threads(threads: int, worker) -> None:
    errors: list[BaseException] = []

    def guarded(i: int) -> None:
        try:
            worker(i)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            errors.append(exc)

    pool = [threading.Thread(target=guarded, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    if errors:
        raise errors[0]


def closed_loop(db, op: str, threads: int, seconds: float, users: int, per_user: int):
    """`threads` threads calling back to back for `seconds`; returns (latencies in s, wall s)."""
    results: list[list[float]] = [[] for _ in range(threads)]
    barrier = threading.Barrier(threads)
    start_at = time.perf_counter() + 0.3

    def worker(i: int) -> None:
        call = make_call(db, op, users, per_user, random.Random(i))
        for _ in range(20):  # warm the connection
            call()
        barrier.wait()
        time.sleep(max(0.0, start_at - time.perf_counter()))
        end = start_at + seconds
        while time.perf_counter() < end:
            t0 = time.perf_counter()
            call()
            results[i].append(time.perf_counter() - t0)

    _run_threads(threads, worker)
    return [x for r in results for x in r], seconds


def open_loop(db, op, rate, seconds, users, per_user, threads=16, stop_when=None):
    """Requests scheduled every 1/rate s, spread over `threads`; latency from the scheduled time. With
    `stop_when` (an Event) the schedule runs until it is set instead of for `seconds`."""
    results: list[list[float]] = [[] for _ in range(threads)]
    start = time.perf_counter() + 0.2
    total = int(rate * seconds) if stop_when is None else 10**12

    def worker(i: int) -> None:
        call = make_call(db, op, users, per_user, random.Random(i + 1000))
        for k in range(i, total, threads):
            if stop_when is not None and stop_when.is_set():
                return
            due = start + k / rate
            time.sleep(max(0.0, due - time.perf_counter()))
            call()
            results[i].append(time.perf_counter() - due)

    _run_threads(threads, worker)
    return [x for r in results for x in r], time.perf_counter() - start


def stats(latencies: list[float], wall: float) -> dict:
    ordered = sorted(latencies)
    if not ordered:  # a row too short (or too stalled) to complete one request
        return {"n": 0, "qps": 0.0, **dict.fromkeys(("p50", "p99", "p999", "max"), float("nan"))}

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1e3

    return {"n": len(ordered), "qps": len(ordered) / wall, "p50": pct(0.50), "p99": pct(0.99),
            "p999": pct(0.999), "max": ordered[-1] * 1e3}  # fmt: skip


def line(label: str, s: dict) -> str:
    return (f"  {label:<44} {s['n']:>7,} {s['qps']:>8,.0f} {s['p50']:>8.2f} {s['p99']:>8.2f} "
            f"{s['p999']:>8.2f} {s['max']:>9.1f}")  # fmt: skip


HEADER = f"  {'load':<44} {'reads':>7} {'QPS':>8} {'p50 ms':>8} {'p99 ms':>8} {'p99.9 ms':>8} {'max ms':>9}"


def ratio(op: dict, floor: dict) -> str:
    return f"p50 {op['p50'] / floor['p50']:.2f}x, p99 {op['p99'] / floor['p99']:.2f}x"


def publish_line(what: str, report) -> str:
    return (
        f"{what}: {report.documents:,} documents in {report.total_seconds:.1f} s (insert "
        f"{report.insert_seconds:.1f} s, verify {report.verify_seconds:.1f} s, "
        f"rename {report.swap_seconds:.2f} s)"
    )


def publishers(db, users: int, per_user: int, version: str):
    """{collection: a function publishing it} for both shapes `published_recommendations` writes."""
    from podrec_assets.lib.serving.lookup import FINAL_RECOMMENDATIONS_INDEXES
    from podrec_assets.lib.serving.publish import publish_collection
    from podrec_assets.names import FINAL_RECOMMENDATIONS, USER_RECOMMENDATIONS

    return {
        USER_RECOMMENDATIONS: lambda: publish_collection(
            db, USER_RECOMMENDATIONS, by_user_rows(users, per_user, version), []
        ),
        FINAL_RECOMMENDATIONS: lambda: publish_collection(
            db, FINAL_RECOMMENDATIONS, rows(users, per_user, version), FINAL_RECOMMENDATIONS_INDEXES
        ),
    }


def targets(args, db, rates=tuple(rate for _, rate, _ in TARGETS), ops=("lookup", FLOOR)):
    """Part 1 (and 5): at each rate, rounds of one slice per op; {rate: {op: pooled stats}}."""
    print(HEADER)
    pooled: dict[int, dict[str, dict]] = {}
    for rate in rates:
        runs: dict[str, list] = {op: [] for op in ops}
        for round_ in range(1, args.rounds + 1):
            for op, parts in runs.items():
                latencies, wall = open_loop(db, op, rate, args.slice, args.users, args.per_user, args.threads)
                parts.append((latencies, wall))
                print(line(f"{rate} QPS, round {round_}, {op}", stats(latencies, wall)), flush=True)
        pooled[rate] = {
            op: stats([x for latencies, _ in parts for x in latencies], sum(wall for _, wall in parts))
            for op, parts in runs.items()
        }
        for op, got in pooled[rate].items():
            print(line(f"{rate} QPS, all rounds, {op}", got))
        first, second = ops
        spread = [stats(*part)["p99"] for part in runs[first]]
        print(f"  -> {rate} QPS: {first} / {second} {ratio(pooled[rate][first], pooled[rate][second])}; {first} "
              f"p99 by round {', '.join(f'{p:.1f}' for p in spread)} ms "
              f"(median {statistics.median(spread):.1f})")  # fmt: skip
    return pooled


def shapes(args, db) -> None:
    """Part 5: the serving document as parallel arrays (lookup) against one sub-document per rank."""
    rate = TARGETS[1][1]
    print(f"\n5. document shape at {rate} QPS: parallel arrays (lookup) vs one sub-document per rank, "
          f"{args.rounds} rounds of {args.slice:g} s each")  # fmt: skip
    db[SUB_DOCUMENTS].insert_many(sub_document_rows(args.users, args.per_user, "v1"))
    targets(args, db, (rate,), ("lookup", "sub_documents"))


def capacity(args, db, ops) -> dict[str, dict]:
    print(
        f"\n2. capacity: closed loop, {args.threads} threads, 4 s each (the next read when the last returns)"
    )
    print(HEADER)
    measured = {}
    for op in ops:
        measured[op] = stats(*closed_loop(db, op, args.threads, 4.0, args.users, args.per_user))
        print(line(f"{op}, closed loop", measured[op]), flush=True)
    return measured


def per_rank(args, db, publish) -> None:
    from podrec_assets.names import FINAL_RECOMMENDATIONS

    print(f"\n3. seed 001's per-rank shape ({FINAL_RECOMMENDATIONS}, a document per user and rank)")
    print(f"  {publish_line(f'published {FINAL_RECOMMENDATIONS}', publish[FINAL_RECOMMENDATIONS]())}")
    print(HEADER)
    paced = open_loop(db, "per_rank", 50, args.slice, args.users, args.per_user, args.threads)
    print(line("per_rank, 50 QPS scheduled", stats(*paced)))
    closed = stats(*closed_loop(db, "per_rank", args.threads, 4.0, args.users, args.per_user))
    print(line("per_rank, closed loop", closed), flush=True)


def publish_under_load(args, db) -> None:
    from podrec_assets.names import FINAL_RECOMMENDATIONS, USER_RECOMMENDATIONS

    rate = TARGETS[0][1]
    print(f"\n4. lookup at {rate} QPS scheduled while each set is published again")
    print(HEADER)
    publish = publishers(db, args.users, args.per_user, "v2")
    for target in (USER_RECOMMENDATIONS, FINAL_RECOMMENDATIONS):
        done, result = threading.Event(), {}

        def load(done=done, result=result) -> None:
            result["run"] = open_loop(db, "lookup", rate, 0, args.users, args.per_user, stop_when=done)

        loader = threading.Thread(target=load)
        loader.start()
        time.sleep(1.0)
        report = publish[target]()
        time.sleep(1.0)
        done.set()
        loader.join()
        during = stats(*result["run"])
        print(line(f"lookup, during a publish of {target}", during))
        print(f"  ({publish_line(f'the publish of {target}', report)}; the rename took "
              f"{report.swap_seconds * 1e3:,.0f} ms and lookups waited up to {during['max']:,.0f} ms)",
              flush=True)  # fmt: skip


def run(args, db, server_line: str) -> None:
    from podrec_assets.names import USER_RECOMMENDATIONS

    print(f"{args.users:,} users x {args.per_user} recommendations")
    publish = publishers(db, args.users, args.per_user, "v1")
    print(publish_line(f"published {USER_RECOMMENDATIONS}", publish[USER_RECOMMENDATIONS]()), flush=True)
    db[FLOOR].insert_many([{"_id": i, "v": i} for i in range(100)])

    print(f"\n1. targets: open loop, {args.rounds} rounds of {args.slice:g} s lookup then {args.slice:g} s floor "
          f"per rate, {args.threads} client threads (latency from each request's scheduled time)")  # fmt: skip
    pooled = targets(args, db)
    capacity(args, db, ("lookup", FLOOR))
    if not args.skip_per_rank:
        per_rank(args, db, publish)
        if not args.skip_publish_load:
            publish_under_load(args, db)

    if args.shapes:
        shapes(args, db)

    print(f"\ntargets, lookup path (recommendations_for), all rounds pooled, server {server_line}:")
    for who, rate, p99 in TARGETS:
        got, floor = pooled[rate]["lookup"], pooled[rate][FLOOR]
        ok = got["qps"] >= rate * 0.98 and got["p99"] < p99
        print(f"  {who}: p99 < {p99:.0f} ms at >= {rate} QPS -> {got['qps']:.0f} QPS, p50 {got['p50']:.2f} ms, "
              f"p99 {got['p99']:.2f} ms (floor p99 {floor['p99']:.2f} ms): {'OK' if ok else 'MISSED'}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=5_000)
    parser.add_argument("--per-user", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3, help="part 1: rounds per target rate")
    parser.add_argument("--slice", type=float, default=10.0, help="part 1: seconds per op and round")
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--skip-per-rank", action="store_true", help="skip parts 3 and 4")
    parser.add_argument("--skip-publish-load", action="store_true", help="skip part 4 (republishes both)")
    parser.add_argument(
        "--shapes", action="store_true", help="part 5: parallel arrays vs a sub-document per rank"
    )
    args = parser.parse_args()
    began = time.perf_counter()
    external = bool(os.environ.get("MONGO_URI"))

    with local_services(["mongo"]):  # MONGO_URI set: that server is used, nothing is started
        from pymongo import MongoClient

        uri, database = os.environ["MONGO_URI"], f"bench_serving_{uuid.uuid4().hex[:8]}"
        client = MongoClient(uri, tz_aware=True, maxPoolSize=max(args.threads, 100))
        db = client[database]
        info = client.admin.command("buildInfo")
        server = f"SecantusDB {info['secantusVersion']}" if "secantusVersion" in info else "MongoDB"
        where = "external (MONGO_URI)" if external else "private local, secantusd-py on 127.0.0.1"
        server_line = f"{server} (wire version {info.get('version')}), {where}; {os.cpu_count()} cores"
        print(f"server: {server_line}")
        try:
            run(args, db, server_line)
        finally:
            client.drop_database(database)
            client.close()
    print(f"whole run: {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
