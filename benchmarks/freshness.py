"""Freshness: how long from a listener's event on Kafka until their stats and their list reflect it, under `make dev`.

    .venv/bin/python benchmarks/freshness.py [--listeners 50] [--spacing 2.0] [--timeout 180] [--users 300]
                                             [--rounds 3]

A private stack (Tansu, SecantusDB, Spark Connect) and DAGSTER_HOME; the graph is bootstrapped with the CLI as
`make demo` does (untimed, one line per stage), then `dagster dev` (webserver + daemon) runs as `make dev` does,
and the measurement waits until no run has been in progress for 30 s (the runs the daemon started on its own are
printed: right after the bootstrap, late_events_sensor re-requests every closed day of daily_engagement).
1. Latency: `--listeners` listeners that have a list each get ONE `skip` of the episode first in their list,
   `--spacing` s apart (so sends fall on every phase of the sensor's 10 s tick). Nothing else is run by hand: the
   Kafka sensor requests `ingest_user_events`, whose one run ingests, updates `user_stats` and refreshes the lists.
   MongoDB is polled every 0.2 s for (a) `user_stats.events_total` and (b) `user_recommendations.as_of` moving
   past their values before the send; a refreshed list still holding the skipped episode is a violation.
   Target: p95 <= 60 s for both. The runs' records split the time into sensor wait, queue, process start and steps.
2. Fold-in vs retrain, on the current ALS version's own training rows: `fold_in` for every listener against
   a full Spark ALS refit (fit + fetching factors), per listener; and the fold-in's max |difference| from the
   model's own user vectors (the fold-in is Spark's last user half-step, so it should be ~0).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import _free_port, local_services, stop_spark_connect_session

REPO = Path(__file__).resolve().parents[1]
BIN = REPO / ".venv" / "bin"
TARGET_P95_S = 60.0
INGEST_JOB = "ingest_user_events"


def bootstrap(users: int, log: Path) -> None:
    """What `make demo` runs (tools/demo.py), less starting the services, with `users` listeners."""
    from podrec_assets.tools import demo

    demo.run(demo.stages(BIN, users)[1:], log, out=lambda line: print(f"  bootstrap {line}", flush=True))


def graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", json.dumps({"query": query}).encode(),
                                     {"Content-Type": "application/json"})  # fmt: skip
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)


def start_dagster_dev(port: int, log: Path) -> subprocess.Popen:
    command = [BIN / "dg", "dev", "--host", "127.0.0.1", "--port", str(port)]  # what `make dev` runs
    with log.open("a") as out:
        return subprocess.Popen(
            command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def wait_until_ready(port: int, process: subprocess.Popen, timeout: float = 240) -> float:
    """Seconds until the webserver answers and the sensor and run-queue daemons report healthy."""
    started = time.time()
    query = "{ instance { daemonHealth { allDaemonStatuses { daemonType healthy } } } }"
    while time.time() - started < timeout:
        if process.poll() is not None:
            raise SystemExit(f"dagster dev exited with {process.returncode}")
        try:
            statuses = graphql(port, query)["data"]["instance"]["daemonHealth"]["allDaemonStatuses"]
            healthy = {s["daemonType"] for s in statuses if s["healthy"]}
            if {"SENSOR", "QUEUED_RUN_COORDINATOR"} <= healthy:
                return time.time() - started
        except (OSError, KeyError, TypeError, ValueError):
            pass
        time.sleep(1)
    raise SystemExit(f"dagster dev not ready after {timeout}s")


def stop_dagster_dev(process: subprocess.Popen) -> None:
    """SIGTERM to its process group, SIGKILL after 30 s (ENVIRONMENT.md)."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        return
    # children (code server, run workers) share the group: make sure none is left
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def wait_for_quiet(instance, quiet: float = 30, timeout: float = 600) -> None:
    """Wait until no run has been in progress for `quiet` s: what the sensors and the automation start on their own
    when the daemon first looks at the bootstrapped instance is not what is measured (it is printed, though)."""
    from collections import Counter

    from dagster import RunsFilter

    from podrec_assets.defs.ingestion.sensors import IN_PROGRESS

    started = last_busy = time.time()
    while time.time() - last_busy < quiet and time.time() - started < timeout:
        if instance.get_runs(RunsFilter(statuses=IN_PROGRESS), limit=1):
            last_busy = time.time()
        time.sleep(2)
    jobs = Counter(
        r.job_name for r in instance.get_runs(RunsFilter(created_after=datetime.fromtimestamp(started, UTC)))
    )
    print(f"settled in {time.time() - started:.0f}s; runs the daemon started on its own meanwhile: "
          f"{dict(jobs) or 'none'}", flush=True)  # fmt: skip


def pick_listeners(db, n: int) -> list[str]:
    documents = db["user_recommendations"].find({"episode_ids.0": {"$exists": True}}, {"_id": 1})
    with_lists = [d["_id"] for d in documents]
    with_stats = {d["_id"] for d in db["user_stats"].find({"_id": {"$in": with_lists}}, {"_id": 1})}
    return random.Random(7).sample(sorted(set(with_lists) & with_stats), n)


def measure(db, producer, topic: str, listeners: list[str], spacing: float, timeout: float) -> list[dict]:
    """Send one skip per listener, `spacing` s apart, and poll MongoDB every 0.2 s until each is seen or gives up."""
    from podrec_assets.lib.ingestion.contract import make_v1_event

    states, pending, start = [], {}, time.time()
    while len(states) < len(listeners) or pending:
        if len(states) < len(listeners) and time.time() >= start + len(states) * spacing:
            user = listeners[len(states)]
            doc = db["user_recommendations"].find_one({"_id": user})
            stats = db["user_stats"].find_one({"_id": user}) or {}
            state = {"user": user, "episode": doc["episode_ids"][0], "as_of": doc.get("as_of", -1),
                     "total": stats.get("events_total", 0), "stats_s": None, "list_s": None,
                     "violation": False}  # fmt: skip
            event = make_v1_event(event_id=f"bench-{uuid.uuid4()}", user_id=user, episode_id=state["episode"],
                                  event_type="skip", ts=datetime.now(UTC), from_sec=0.0, to_sec=8.0)  # fmt: skip
            producer.send(topic, key=user.encode(), value=json.dumps(event).encode()).get(timeout=30)
            producer.flush()
            state["sent"] = time.time()
            states.append(state)
            pending[user] = state
        now = time.time()
        users = list(pending)
        for d in db["user_stats"].find({"_id": {"$in": users}}, {"events_total": 1}):
            s = pending[d["_id"]]
            if s["stats_s"] is None and d.get("events_total", 0) > s["total"]:
                s["stats_s"] = now - s["sent"]
        for d in db["user_recommendations"].find({"_id": {"$in": users}}, {"as_of": 1, "episode_ids": 1}):
            s = pending[d["_id"]]
            if s["list_s"] is None and d.get("as_of", -1) > s["as_of"]:
                s["list_s"], s["violation"] = now - s["sent"], s["episode"] in d["episode_ids"]
        for user in users:
            s = pending[user]
            if (s["stats_s"] is not None and s["list_s"] is not None) or now - s["sent"] > timeout:
                del pending[user]
        time.sleep(0.2)
    return states


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]  # nearest rank


def print_latency(name: str, latencies: list[float | None], timeout: float) -> None:
    """p50/p95/max over every listener, a miss counting as longer than the timeout."""
    values = [math.inf if x is None else x for x in latencies]
    misses = sum(x is None for x in latencies)

    def fmt(x: float) -> str:
        return f"{x:.1f}s" if math.isfinite(x) else f">{timeout:.0f}s"

    p95 = percentile(values, 0.95)
    print(f"{name}: p50 {fmt(percentile(values, 0.5))}, p95 {fmt(p95)}, max {fmt(max(values))}, "
          f"misses {misses} of {len(values)}")  # fmt: skip
    print(f"  target p95 <= {TARGET_P95_S:.0f} s -> {'OK' if p95 <= TARGET_P95_S else 'MISSED'}")


def created_at(record) -> float:
    """A run record's creation time in epoch seconds (SQLite storage hands back naive UTC datetimes)."""
    stamp = record.create_timestamp
    return (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).timestamp()


def run_phases(instance, record) -> dict[str, float]:
    """Seconds of each phase of one run, in order: queued, process start, then each step (checks together)."""
    from dagster import DagsterEventType as T

    events = instance.all_logs(
        record.dagster_run.run_id, of_type={T.RUN_STARTING, T.STEP_START, T.STEP_SUCCESS}
    )
    starting = next(
        (e.timestamp for e in events if e.dagster_event.event_type == T.RUN_STARTING), record.start_time
    )
    phases = {"queued (created -> STARTING)": starting - created_at(record),
              "process start (STARTING -> START)": record.start_time - starting}  # fmt: skip
    at = record.start_time
    for e in sorted(events, key=lambda e: e.timestamp):
        if e.dagster_event.event_type == T.STEP_SUCCESS:
            name = "checks" if "raw_user_events_" in e.step_key else e.step_key
            phases[name] = phases.get(name, 0.0) + e.timestamp - at
            at = e.timestamp
    phases["to run end"] = record.end_time - at
    return phases


def run_breakdown(instance, since: float, states: list[dict]) -> None:
    """The ingestion runs launched during the measurement, and where each listener's time went."""
    from dagster import RunsFilter

    records = instance.get_run_records(RunsFilter(created_after=datetime.fromtimestamp(since, UTC)))
    ingest = [r for r in records if r.dagster_run.job_name == INGEST_JOB]
    others = sorted(f"{r.dagster_run.job_name}" for r in records if r.dagster_run.job_name != INGEST_JOB)
    done = [r for r in ingest if r.start_time and r.end_time]
    print(f"{INGEST_JOB} runs launched by the daemon during the measurement: {len(ingest)} ({len(done)} finished); "
          f"other runs: {len(others)} ({', '.join(sorted(set(others))) or 'none'})")  # fmt: skip
    if not done:
        return
    print(f"  median run duration (start -> end) {statistics.median(r.end_time - r.start_time for r in done):.1f}s; "
          f"created -> started {statistics.median(r.start_time - created_at(r) for r in done):.1f}s")  # fmt: skip
    phases: dict[str, list[float]] = {}
    for r in done:
        for name, seconds in run_phases(instance, r).items():
            phases.setdefault(name, []).append(seconds)
    print("  per run, median: " + ", ".join(f"{k} {statistics.median(v):.1f}s" for k, v in phases.items()))
    parts: dict[str, list[float]] = {"send -> run created (sensor)": [], "-> run started": [], "-> seen": []}
    for s in states:
        if s["stats_s"] is None:
            continue
        seen = s["sent"] + s["stats_s"]
        covering = [r for r in done if r.start_time <= seen <= r.end_time + 0.5]
        if not covering:
            continue
        run = max(covering, key=lambda r: r.start_time)
        created = max(created_at(run), s["sent"])  # a run created before the send can still read the event
        started = max(run.start_time, created)
        for name, value in zip(parts, (created - s["sent"], started - created, seen - started), strict=True):
            parts[name].append(value)
    if parts["-> seen"]:  # means, not medians: they add up to the mean latency
        total = sum(statistics.mean(v) for v in parts.values())
        print(f"  a listener's user_stats latency, mean {total:.1f}s = "
              + " + ".join(f"{k} {statistics.mean(v):.1f}s" for k, v in parts.items()))  # fmt: skip


def foldin_vs_retrain(rounds: int) -> None:
    import numpy as np
    from pyspark.sql import SparkSession

    from podrec_assets.lib.models.als import AlsParams, fit_als, model_factors
    from podrec_assets.lib.models.factors import training_rows
    from podrec_assets.lib.models.foldin import fold_in, gramian
    from podrec_assets.lib.models.recommend import read_model
    from podrec_assets.lib.models.registry import ModelRegistry
    from podrec_assets.lib.models.training import read_split

    registry = ModelRegistry(
        Path(os.environ["PODREC_MODEL_ROOT"]), "als", os.environ.get("MLFLOW_TRACKING_URI")
    )
    version = registry.current()
    if version is None:
        version = registry.versions()[-1]
        print(f"no promoted ALS version: using the newest, {version}")
    model = read_model(registry.path(version), version)
    params = AlsParams(**registry.manifest(version)["params"])
    rows = training_rows(read_split(registry.path(version)), params.negative_feedback)
    items = model.episodes.dense(len(model.episode_ids))
    u, i, r = (rows[c].to_numpy() for c in ("user_idx", "episode_idx", "engagement"))

    def fold() -> tuple[float, np.ndarray, np.ndarray]:
        started = time.perf_counter()
        vectors, solved = fold_in(items, u, i, r, len(model.user_ids), model.reg_param, model.alpha,
                                  yty=gramian(model.episodes.vectors))  # fmt: skip
        return time.perf_counter() - started, vectors, solved

    folds = [fold() for _ in range(3)]
    fold_s, vectors, solved = statistics.median(f[0] for f in folds), folds[0][1], folds[0][2]
    listeners = int(solved.sum())
    difference = float(np.abs(vectors[model.users.ids] - model.users.vectors).max())
    spark = SparkSession.builder.remote(os.environ["SPARK_REMOTE"]).getOrCreate()
    frame = spark.createDataFrame(rows).cache()
    frame.count()
    fits = []
    for _ in range(rounds):
        started = time.perf_counter()
        model_factors(fit_als(frame, params))
        fits.append(time.perf_counter() - started)
    fit_s = statistics.median(fits)
    per_fold, per_fit = fold_s / listeners, fit_s / listeners
    print(f"ALS version {version}: {len(rows):,} training rows, {listeners} listeners, rank {params.rank}, "
          f"{params.max_iter} iterations")  # fmt: skip
    print(
        f"fold-in, every listener: {fold_s * 1000:.1f} ms (median of 3) -> {per_fold * 1e6:.0f} us per listener"
    )
    print(f"Spark ALS refit + factors: {fit_s:.1f}s (runs {', '.join(f'{x:.1f}' for x in fits)}) -> "
          f"{per_fit * 1000:.1f} ms per listener")  # fmt: skip
    print(f"retrain / fold-in per listener: {per_fit / per_fold:,.0f}x")
    print(f"fold-in vs the model's own user vectors: max |difference| {difference:.2e} "
          f"(solved {listeners} of {len(model.users.ids)} model users: "
          f"{'same set' if set(np.flatnonzero(solved)) == set(model.users.ids) else 'DIFFERENT sets'})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--listeners", type=int, default=50)
    parser.add_argument("--spacing", type=float, default=2.0, help="seconds between two listeners' events")
    parser.add_argument(
        "--timeout", type=float, default=180.0, help="seconds before a listener counts as missed"
    )
    parser.add_argument("--users", type=int, default=300, help="synthetic listeners to bootstrap with")
    parser.add_argument("--rounds", type=int, default=3, help="Spark ALS refits to time")
    args = parser.parse_args()

    with local_services(["kafka", "mongo", "spark"]) as home:
        os.environ.update(DAGSTER_HOME=str(home / "dagster"), PODREC_CATALOG_SOURCES="sample",
                          SPARK_LOCAL_IP="127.0.0.1", HF_HUB_OFFLINE="1")  # fmt: skip
        Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / "dagster.yaml", Path(os.environ["DAGSTER_HOME"]) / "dagster.yaml")
        logs = home / "bench-logs"
        logs.mkdir()
        print(f"state and logs under {home}", flush=True)
        bootstrap(args.users, logs / "bootstrap.log")

        from dagster import DagsterInstance

        from podrec_assets.defs.resources import build_resources

        resources = build_resources(resolved=True)
        kafka, mongo = resources["kafka"], resources["mongo"]
        port = _free_port()
        process = start_dagster_dev(port, logs / "dagster-dev.log")
        client = mongo.client()
        try:
            print(
                "dagster dev ready (webserver + sensor and run-queue daemons) in "
                f"{wait_until_ready(port, process):.0f}s"
            )
            instance = DagsterInstance.get()
            wait_for_quiet(instance)
            db = mongo.db(client)
            listeners = pick_listeners(db, args.listeners)
            producer = kafka.producer(linger_ms=0)
            since = time.time()
            try:
                states = measure(db, producer, kafka.topic, listeners, args.spacing, args.timeout)
            finally:
                producer.close(timeout=10)
            print(f"{len(states)} listeners, one skip each, {args.spacing:g}s apart; polled every 0.2 s")
            print_latency("(a) user_stats updated", [s["stats_s"] for s in states], args.timeout)
            print_latency("(b) user_recommendations refreshed", [s["list_s"] for s in states], args.timeout)
            refreshed = [s for s in states if s["list_s"] is not None]
            print(f"  skipped episode still in the refreshed list: {sum(s['violation'] for s in refreshed)} "
                  f"of {len(refreshed)}")  # fmt: skip
            run_breakdown(instance, since, states)
        finally:
            client.close()
            stop_dagster_dev(process)
        try:
            foldin_vs_retrain(args.rounds)
        finally:
            stop_spark_connect_session()


if __name__ == "__main__":
    main()
