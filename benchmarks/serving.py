"""Serving latency: one listener's recommendations (`recommendations_for`) under concurrent load on loopback.

    python benchmarks/serving.py [--users 10000] [--per-user 20] [--seconds 4] [--threads 16]

Against a private local SecantusDB (or the server MONGO_URI names): publishes users x per-user recommendations
with `publish_collection` in both shapes `published_recommendations` writes: `user_recommendations` (one
document per user, what `recommendations_for` reads) and `final_recommendations` (one document per user and
rank, seed 001's shape, read with `top_n`). Operations: "lookup" = `recommendations_for` (the serving path),
"per_rank" = `top_n(db, FINAL_RECOMMENDATIONS, user, per_user)` (what seed-001 readers do), and the server's
floor, a trivial `find_one({"_id": k})` on a 100-document collection.
1. closed loop: N client threads each send the next read as soon as the last one returns, random users, for
   `--seconds`; lookup with one MongoClient shared by all threads, with one per thread, and split over
   `--processes` processes (Python threads share one interpreter lock); per_rank and floor in lookup's best
   arrangement. Achieved QPS, p50/p99/p99.9, and lookup / floor.
2. open loop at the targets' rates (50 and 500 QPS) for lookup, per_rank and floor: requests are scheduled at a
   fixed rate and latency counts from the scheduled time, so a stalled server is charged for the requests
   queued behind it; lookup / floor.
3. lookup at 50 QPS while `user_recommendations` is published again, then `final_recommendations` is published
   again (SecantusDB renames under its one lock; the PublishReport says how long the rename took).
Targets, for the lookup path: seed 004, p99 < 200 ms at >= 50 QPS; ours, p99 < 10 ms at >= 500 QPS.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import local_services

FLOOR = "floor"
OPS = (("lookup", "lookup (recommendations_for)"), ("per_rank", "per_rank (top_n)"), ("floor", "floor"))
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
    batch: list[dict] = []
    for row in rows(users, per_user, version):
        batch.append({k: v for k, v in row.items() if k not in ("_id", "user_id")})
        if len(batch) == per_user:
            yield {"_id": row["user_id"], "recommendations": batch}
            batch = []


def make_call(db, op: str, users: int, per_user: int, rng: random.Random):
    from podrec_assets.serving.lookup import FINAL_RECOMMENDATIONS, recommendations_for, top_n

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

    else:

        def call() -> None:
            if db[FLOOR].find_one({"_id": rng.randrange(100)}) is None:
                raise AssertionError("floor document missing")

    return call


def closed_loop(uri, database, op, threads, seconds, users, per_user, shared=True, start_at=None):
    """`threads` threads calling back to back for `seconds`; returns (latencies in s, wall s)."""
    from pymongo import MongoClient

    clients = [MongoClient(uri, maxPoolSize=max(threads, 100))]
    if not shared:
        clients = [MongoClient(uri, maxPoolSize=2) for _ in range(threads)]
    for client in clients:
        client.admin.command("ping")
    results: list[list[float]] = [[] for _ in range(threads)]
    errors: list[BaseException] = []
    start_at = start_at or time.time() + 0.3
    barrier = threading.Barrier(threads)

    def worker(i: int) -> None:
        rng = random.Random(i * 7919 + os.getpid())
        call = make_call(clients[i % len(clients)][database], op, users, per_user, rng)
        for _ in range(20):  # warm the connection
            call()
        barrier.wait()
        time.sleep(max(0.0, start_at - time.time()))
        end = start_at + seconds
        out = results[i]
        try:
            while time.time() < end:
                t0 = time.perf_counter()
                call()
                out.append(time.perf_counter() - t0)
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    for client in clients:
        client.close()
    if errors:
        raise errors[0]
    return [x for r in results for x in r], seconds


def _process_worker(args):
    return closed_loop(*args)[0]


def multi_process(uri, database, op, threads, processes, seconds, users, per_user):
    context = multiprocessing.get_context("spawn")
    start_at = time.time() + 6.0  # every process imported and connected by then
    each = [max(1, threads // processes)] * processes
    jobs = [(uri, database, op, n, seconds, users, per_user, True, start_at) for n in each]
    with context.Pool(processes) as pool:
        parts = pool.map(_process_worker, jobs)
    return [x for part in parts for x in part], seconds


def open_loop(db, op, rate, seconds, users, per_user, threads=16, stop_when=None):
    """Requests scheduled every 1/rate s, spread over `threads`; latency from the scheduled time."""
    results: list[list[float]] = [[] for _ in range(threads)]
    start = time.perf_counter() + 0.2
    total = int(rate * seconds)

    def worker(i: int) -> None:
        call = make_call(db, op, users, per_user, random.Random(i))
        for k in range(i, total if stop_when is None else 10**12, threads):
            due = start + k / rate
            if stop_when is not None and stop_when.is_set():
                return
            time.sleep(max(0.0, due - time.perf_counter()))
            call()
            results[i].append(time.perf_counter() - due)

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return [x for r in results for x in r], time.perf_counter() - start


def stats(latencies: list[float], wall: float) -> dict:
    ordered = sorted(latencies)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1e3

    return {"n": len(ordered), "qps": len(ordered) / wall, "p50": pct(0.50), "p99": pct(0.99),
            "p999": pct(0.999), "max": ordered[-1] * 1e3}  # fmt: skip


def line(label: str, s: dict) -> str:
    return (f"  {label:<44} {s['n']:>7,} {s['qps']:>8,.0f} {s['p50']:>8.2f} {s['p99']:>8.2f} "
            f"{s['p999']:>8.2f} {s['max']:>9.1f}")  # fmt: skip


HEADER = f"  {'load':<44} {'reads':>7} {'QPS':>8} {'p50 ms':>8} {'p99 ms':>8} {'p99.9 ms':>8} {'max ms':>9}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--per-user", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--threads", default="16")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument(
        "--skip-publish-load", action="store_true", help="skip part 3 (it republishes both sets)"
    )
    args = parser.parse_args()
    levels = [int(x) for x in args.threads.split(",")]
    external = bool(os.environ.get("MONGO_URI"))

    with local_services(["mongo"]):  # MONGO_URI set: that server is used, nothing is started
        from pymongo import MongoClient

        uri, database = os.environ["MONGO_URI"], f"bench_serving_{uuid.uuid4().hex[:8]}"
        client = MongoClient(uri, tz_aware=True)
        db = client[database]
        info = client.admin.command("buildInfo")
        server = f"SecantusDB {info['secantusVersion']}" if "secantusVersion" in info else "MongoDB"
        where = "external (MONGO_URI)" if external else "private local, secantusd-py on 127.0.0.1"
        server_line = f"{server} (wire version {info.get('version')}), {where}; {os.cpu_count()} cores"
        print(f"server: {server_line}")
        try:
            run(args, levels, uri, database, db, server_line)
        finally:
            client.drop_database(database)
            client.close()


def publish_line(what: str, report) -> str:
    return (
        f"{what}: {report.documents:,} documents in {report.total_seconds:.1f} s (insert "
        f"{report.insert_seconds:.1f} s, verify {report.verify_seconds:.1f} s, "
        f"rename {report.swap_seconds:.2f} s)"
    )


def ratio(op: dict, floor: dict) -> str:
    return f"p50 {op['p50'] / floor['p50']:.2f}x, QPS {op['qps'] / floor['qps']:.2f}x"


def publish_both(db, users: int, per_user: int, version: str):
    from podrec_assets.serving.lookup import (
        FINAL_RECOMMENDATIONS,
        FINAL_RECOMMENDATIONS_INDEXES,
        USER_RECOMMENDATIONS,
    )
    from podrec_assets.serving.publish import publish_collection

    return {
        USER_RECOMMENDATIONS: lambda: publish_collection(
            db, USER_RECOMMENDATIONS, by_user_rows(users, per_user, version), []
        ),
        FINAL_RECOMMENDATIONS: lambda: publish_collection(
            db, FINAL_RECOMMENDATIONS, rows(users, per_user, version), FINAL_RECOMMENDATIONS_INDEXES
        ),
    }


def run(args, levels, uri, database, db, server_line) -> None:
    from podrec_assets.serving.lookup import FINAL_RECOMMENDATIONS, USER_RECOMMENDATIONS

    users, per_user, seconds = args.users, args.per_user, args.seconds
    print(f"{users:,} users x {per_user} recommendations")
    publish = publish_both(db, users, per_user, "v1")
    print(
        publish_line(
            f"published {USER_RECOMMENDATIONS} (a document per user)", publish[USER_RECOMMENDATIONS]()
        )
    )
    print(publish_line(f"published {FINAL_RECOMMENDATIONS} (a document per user and rank)",
                       publish[FINAL_RECOMMENDATIONS]()), flush=True)  # fmt: skip
    db[FLOOR].insert_many([{"_id": i, "v": i} for i in range(100)])

    print(f"\n1. closed loop, {seconds:g} s per row (each thread sends its next read when the last returns)")
    print(HEADER)
    best: dict[str, dict] = {}
    for threads in levels:
        arrangements = {}
        for label, shared in (("shared client", True), ("client per thread", False)):
            latencies, wall = closed_loop(uri, database, "lookup", threads, seconds, users, per_user, shared)
            arrangements[label] = stats(latencies, wall)
            print(line(f"{threads:>2} thr, lookup, {label}", arrangements[label]), flush=True)
        if args.processes > 1:
            latencies, wall = multi_process(uri, database, "lookup", threads, args.processes, seconds, users,
                                            per_user)  # fmt: skip
            label = f"{args.processes} processes x {max(1, threads // args.processes)}"
            arrangements[label] = stats(latencies, wall)
            print(line(f"{threads:>2} thr, lookup, {label}", arrangements[label]), flush=True)
        top = max(arrangements, key=lambda k: arrangements[k]["qps"])
        measured = {"lookup": arrangements[top]}
        best[f"{threads} threads, {top}"] = measured["lookup"]
        shared = top != "client per thread"
        for op in ("per_rank", "floor"):
            if "processes" in top:
                latencies, wall = multi_process(uri, database, op, threads, args.processes, seconds, users,
                                                per_user)  # fmt: skip
            else:
                latencies, wall = closed_loop(uri, database, op, threads, seconds, users, per_user, shared)
            measured[op] = stats(latencies, wall)
            print(line(f"{threads:>2} thr, {op}, {top}", measured[op]), flush=True)
        floor = measured["floor"]
        print(f"  -> lookup / floor: {ratio(measured['lookup'], floor)}; "
              f"per_rank / floor: {ratio(measured['per_rank'], floor)}")  # fmt: skip

    print(f"\n2. open loop at fixed rates, {seconds:g} s each (latency from each request's scheduled time)")
    print(HEADER)
    paced = {}
    for _, rate, _ in TARGETS:
        for op, label in OPS:
            paced[op, rate] = stats(*open_loop(db, op, rate, seconds, users, per_user))
            print(line(f"{label}, {rate} QPS scheduled", paced[op, rate]), flush=True)
        print(f"  -> at {rate} QPS, lookup / floor: {ratio(paced['lookup', rate], paced['floor', rate])}")

    if not args.skip_publish_load:
        rate = TARGETS[0][1]
        print(f"\n3. lookup at {rate} QPS scheduled while each set is published again")
        print(HEADER)
        publish = publish_both(db, users, per_user, "v2")
        reports, during = {}, {}
        for target in (USER_RECOMMENDATIONS, FINAL_RECOMMENDATIONS):
            done = threading.Event()
            result: dict = {}

            def load(done=done, result=result) -> None:
                result["run"] = open_loop(db, "lookup", rate, 0, users, per_user, stop_when=done)

            loader = threading.Thread(target=load)
            loader.start()
            time.sleep(1.0)
            reports[target] = publish[target]()
            time.sleep(1.0)
            done.set()
            loader.join()
            during[target] = stats(*result["run"])
            print(line(f"lookup, during a publish of {target}", during[target]))
            print(f"  ({publish_line(f'the publish of {target}', reports[target])})", flush=True)
        final = reports[FINAL_RECOMMENDATIONS]
        print(f"  a {FINAL_RECOMMENDATIONS} republish ({final.documents:,} documents) takes "
              f"{final.total_seconds:.1f} s, built in a staging collection; the rename swapping it in took "
              f"{final.swap_seconds * 1e3:,.0f} ms (PublishReport.swap_seconds), and lookups of "
              f"{USER_RECOMMENDATIONS} meanwhile waited up to {during[FINAL_RECOMMENDATIONS]['max']:,.0f} ms")  # fmt: skip

    print(
        f"\ntargets, lookup path (recommendations_for), open loop at the target rate, server {server_line}:"
    )
    for who, rate, p99 in TARGETS:
        got = paced["lookup", rate]
        ok = got["qps"] >= rate * 0.98 and got["p99"] < p99
        print(f"  {who}: p99 < {p99:.0f} ms at >= {rate} QPS -> {got['qps']:.0f} QPS, "
              f"p99 {got['p99']:.2f} ms: {'OK' if ok else 'MISSED'}")  # fmt: skip
    top = max(best, key=lambda k: best[k]["qps"])
    got = best[top]
    print(f"  most closed-loop lookup throughput: {got['qps']:,.0f} QPS ({top}), p99 {got['p99']:.2f} ms")


if __name__ == "__main__":
    main()
