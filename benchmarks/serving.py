"""Serving latency: one listener's recommendations (`recommendations_for`) under concurrent load on loopback.

    python benchmarks/serving.py [--users 5000] [--per-user 20] [--seconds 4] [--threads 16]
                                 [--open-processes 1,2,4] [--open-threads 16] [--open-seconds 6] [--no-async]

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
2b. the same open loop at our target rate (500 QPS) for lookup and floor, by client driver, to tell client
   overhead from server latency: `--open-processes` P spawned processes, each with its own MongoClient and
   `--open-threads` / P threads, sending every P-th request of one shared schedule (rate / P each; the same
   start time; latency from each request's scheduled time; the parent merges the latencies), P = 1 being the
   same harness in one process; and one asyncio process with `pymongo.AsyncMongoClient` (a task per request,
   no cap on requests in flight; asyncio's timers have epoll's 1 ms resolution, so a request may start up to
   1 ms late, and that lateness is charged). The serving query is the same: lookup = one `find_one({"_id"})`
   in `user_recommendations` (the asyncio driver mirrors `recommendations_for`, which takes a sync Database).
3. lookup at 50 QPS while `user_recommendations` is published again, then `final_recommendations` is published
   again (SecantusDB renames under its one lock; the PublishReport says how long the rename took).
Targets, for the lookup path: seed 004, p99 < 200 ms at >= 50 QPS; ours, p99 < 10 ms at >= 500 QPS. The last
line gives ours for the best driver of 2b (the lowest lookup p99 among those reaching the rate).
`--users` defaults to 5,000 (was 10,000): publishing `final_recommendations` (users x per-user documents, twice
with part 3) dominated the run; 5,000 keeps the default run under ~7 minutes on 2 cores (lookups are by _id).
"""

from __future__ import annotations

import argparse
import asyncio
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


def open_loop(
    db, op, rate, seconds, users, per_user, threads=16, stop_when=None, start=None, part=0, parts=1
):
    """Requests scheduled every 1/rate s, spread over `threads`; latency from the scheduled time. With `parts` > 1
    this process sends only requests `part`, `part` + `parts`, ... of the schedule that starts at `start` (a
    time.perf_counter() value)."""
    results: list[list[float]] = [[] for _ in range(threads)]
    start = time.perf_counter() + 0.2 if start is None else start
    total = int(rate * seconds)

    def worker(i: int) -> None:
        call = make_call(db, op, users, per_user, random.Random(i + 1000 * part))
        for k in range(part + i * parts, total if stop_when is None else 10**12, threads * parts):
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


def make_async_call(db, op: str, users: int, per_user: int, rng: random.Random):
    """`make_call` for an AsyncMongoClient database: lookup mirrors `recommendations_for` (same query)."""
    from podrec_assets.serving.lookup import COLD_START_USER, USER_RECOMMENDATIONS

    if op == "lookup":

        async def call() -> None:
            collection = db[USER_RECOMMENDATIONS]
            document = await collection.find_one({"_id": f"user-{rng.randrange(users)}"})
            if document is None:
                document = await collection.find_one({"_id": COLD_START_USER})
            owner = document["_id"] if document else None
            got = (
                [{"user_id": owner, **row} for row in document["recommendations"][:per_user]]
                if document
                else []
            )
            if len(got) != per_user:
                raise AssertionError(f"{len(got)} recommendations, expected {per_user}")

    elif op == FLOOR:

        async def call() -> None:
            if await db[FLOOR].find_one({"_id": rng.randrange(100)}) is None:
                raise AssertionError("floor document missing")

    else:
        raise ValueError(f"no asyncio driver for {op}")
    return call


def _synchronise(ready, start_at) -> float:
    """Wait for every process of a driver, then return the shared start as this process's perf_counter()."""
    ready.wait(timeout=300)  # every process connected and warm; the parent then sets start_at
    ready.wait(timeout=60)
    return time.perf_counter() + (start_at.value - time.time())


def _threaded_open(spec: dict, ready, start_at) -> tuple[list[float], float]:
    from pymongo import MongoClient

    client = MongoClient(spec["uri"], maxPoolSize=max(spec["threads"], 100))
    db = client[spec["database"]]
    try:

        def warm(i: int) -> None:
            call = make_call(db, spec["op"], spec["users"], spec["per_user"], random.Random(-i))
            for _ in range(20):
                call()

        warmers = [threading.Thread(target=warm, args=(i,)) for i in range(spec["threads"])]
        for thread in warmers:
            thread.start()
        for thread in warmers:
            thread.join()
        start = _synchronise(ready, start_at)
        return open_loop(db, spec["op"], spec["rate"], spec["seconds"], spec["users"], spec["per_user"],
                         spec["threads"], start=start, part=spec["part"], parts=spec["parts"])  # fmt: skip
    finally:
        client.close()


async def _async_open(spec: dict, ready, start_at) -> tuple[list[float], float]:
    from pymongo import AsyncMongoClient

    client = AsyncMongoClient(spec["uri"])
    db = client[spec["database"]]
    try:
        warm = [
            make_async_call(db, spec["op"], spec["users"], spec["per_user"], random.Random(-i))
            for i in range(8)
        ]
        for _ in range(20):
            await asyncio.gather(*(call() for call in warm))
        start = await asyncio.to_thread(_synchronise, ready, start_at)
        call = make_async_call(db, spec["op"], spec["users"], spec["per_user"], random.Random(spec["part"]))
        latencies: list[float] = []

        async def one(due: float) -> None:
            await call()
            latencies.append(time.perf_counter() - due)

        rate, parts, tasks = spec["rate"], spec["parts"], []
        for k in range(spec["part"], int(rate * spec["seconds"]), parts):
            due = start + k / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(due)))
        await asyncio.gather(*tasks)
        return latencies, time.perf_counter() - start
    finally:
        await client.close()


def _open_worker(spec: dict, ready, start_at, out) -> None:
    try:
        if spec["kind"] == "async":
            result = asyncio.run(_async_open(spec, ready, start_at))
        else:
            result = _threaded_open(spec, ready, start_at)
        out.put((spec["part"], result, None))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        ready.abort()
        out.put((spec["part"], None, f"{type(exc).__name__}: {exc}"))


def open_loop_processes(
    uri, database, op, rate, seconds, users, per_user, processes, threads, kind="threads"
):
    """The open loop of `open_loop` driven by `processes` spawned processes, each with its own client and
    `threads` threads (kind "threads") or one asyncio loop (kind "async"), sending every `processes`-th request
    of one schedule from one shared start; returns the merged latencies and the longest wall time."""
    context = multiprocessing.get_context("spawn")
    ready, start_at, out = context.Barrier(processes + 1), context.Value("d", 0.0), context.Queue()
    workers = []
    for part in range(processes):
        spec = {"kind": kind, "uri": uri, "database": database, "op": op, "rate": rate, "seconds": seconds,
                "users": users, "per_user": per_user, "threads": threads, "part": part, "parts": processes}  # fmt: skip
        workers.append(context.Process(target=_open_worker, args=(spec, ready, start_at, out), daemon=True))
    for worker in workers:
        worker.start()
    try:
        ready.wait(timeout=300)
        start_at.value = time.time() + 0.3
        ready.wait(timeout=60)
    except threading.BrokenBarrierError:
        pass  # a worker failed: its error comes through `out`
    try:
        results = [out.get(timeout=seconds + 300) for _ in workers]
    finally:
        for worker in workers:
            worker.join(timeout=30)
            if worker.is_alive():
                worker.terminate()
    errors = [error for _, _, error in results if error]
    if errors:
        raise RuntimeError(f"open-loop {kind} driver failed: {errors[0]}")
    merged = [x for _, (latencies, _), _ in results for x in latencies]
    return merged, max(wall for _, (_, wall), _ in results)


def stats(latencies: list[float], wall: float) -> dict:
    ordered = sorted(latencies)
    if not ordered:  # a row too short (or too stalled) to complete one request
        return {
            "n": 0,
            "qps": 0.0,
            "p50": float("nan"),
            "p99": float("nan"),
            "p999": float("nan"),
            "max": float("nan"),
        }

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
    parser.add_argument("--users", type=int, default=5_000)
    parser.add_argument("--per-user", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--threads", default="16")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument(
        "--open-processes",
        default="1,2,4",
        help="part 2b: client process counts for the open loop at 500 QPS",
    )
    parser.add_argument(
        "--open-threads", type=int, default=16, help="part 2b: threads in all, split over processes"
    )
    parser.add_argument("--open-seconds", type=float, default=6.0, help="part 2b: seconds per row")
    parser.add_argument("--no-async", action="store_true", help="part 2b: skip the AsyncMongoClient driver")
    parser.add_argument(
        "--skip-publish-load", action="store_true", help="skip part 3 (it republishes both sets)"
    )
    args = parser.parse_args()
    levels = [int(x) for x in args.threads.split(",")]
    began = time.perf_counter()
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
    print(f"whole run: {time.perf_counter() - began:.0f} s")


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

    drivers = open_drivers(args, uri, database)

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
    if drivers:
        who, rate, p99 = TARGETS[1]
        reached = {k: v for k, v in drivers.items() if v["lookup"]["qps"] >= rate * 0.98} or drivers
        name = min(reached, key=lambda k: reached[k]["lookup"]["p99"])
        got, floor = drivers[name]["lookup"], drivers[name]["floor"]
        ok = got["qps"] >= rate * 0.98 and got["p99"] < p99
        first = next(iter(drivers))
        print(f"  verdict, {who}: p99 < {p99:.0f} ms at >= {rate} QPS, best driver {name} (part 2b): lookup "
              f"{got['qps']:.0f} QPS, p50 {got['p50']:.2f} ms, p99 {got['p99']:.2f} ms (floor p99 "
              f"{floor['p99']:.2f} ms; {first}: lookup p99 {drivers[first]['lookup']['p99']:.2f} ms, part 2's "
              f"threads {paced['lookup', rate]['p99']:.2f} ms): {'OK' if ok else 'MISSED'}")  # fmt: skip


def open_drivers(args, uri, database) -> dict[str, dict[str, dict]]:
    """Part 2b: lookup and floor at our target rate by client driver; {driver: {op: stats}}."""
    rate, seconds = TARGETS[1][1], args.open_seconds
    arrangements = []
    for processes in (int(x) for x in args.open_processes.split(",") if x.strip()):
        threads = max(1, args.open_threads // processes)
        arrangements.append((f"{processes} proc x {threads} thr", "threads", processes, threads))
    if not args.no_async:
        arrangements.append(("asyncio, 1 proc", "async", 1, 1))
    if not arrangements:
        return {}
    print(f"\n2b. open loop at {rate} QPS by client driver, {seconds:g} s each (spawned client processes, "
          f"each its own MongoClient; latency from each request's scheduled time)")  # fmt: skip
    print(HEADER)
    drivers: dict[str, dict[str, dict]] = {name: {} for name, *_ in arrangements}
    for op in ("lookup", FLOOR):
        for name, kind, processes, threads in arrangements:
            got = open_loop_processes(uri, database, op, rate, seconds, args.users, args.per_user, processes,
                                      threads, kind)  # fmt: skip
            drivers[name][op] = stats(*got)
            print(line(f"{op}, {rate} QPS, {name}", drivers[name][op]), flush=True)
    for name in drivers:
        lookup, floor = drivers[name]["lookup"], drivers[name][FLOOR]
        print(f"  -> {name}: lookup p99 {lookup['p99']:.2f} ms, floor p99 {floor['p99']:.2f} ms; "
              f"lookup / floor: {ratio(lookup, floor)}")  # fmt: skip
    return drivers


if __name__ == "__main__":
    main()
