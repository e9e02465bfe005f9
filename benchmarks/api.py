"""The HTTP API under an open-loop load: `GET /v1/users/{id}/recommendations` beside the bare MongoDB lookup.

    .venv/bin/python benchmarks/api.py [--users 10000] [--per-user 20] [--limit 10] [--workers 4]
                                       [--rates 50,500] [--rounds 2] [--seconds 8]
                                       [--capacity-rates 250,500,750,1000,1500,2000,3000] [--capacity-seconds 8]
                                       [--capacity-retries 2] [--skip-capacity] [--concurrency 32] [--client-procs 1]

A private Tansu (Kafka) and SecantusDB (MongoDB) on free loopback ports (`_common.local_services`; or the servers
KAFKA_BOOTSTRAP_SERVERS / MONGO_URI name), `user_recommendations` seeded for `--users` listeners of `--per-user`
recommendations each (`user_document`, what serving reads), the impressions topic created, then `podrec serve
--workers N` on a free port in a session of its own (its process group is stopped at the end), ready on /readyz.

The load (open loop, the same method for both paths): requests are scheduled at fixed times, start + k / rate, and
each one's latency counts from its *scheduled* time, so a stall is charged for every request queued behind it (no
coordinated omission). Load-generator processes (`--client-procs`, separate from this one) each run
`--concurrency` threads; thread t of process p owns the requests k = p + t*P (mod P*T) and one persistent
connection: for the API a raw HTTP/1.1 keep-alive socket (a 200 with `--limit` recommendations for the right
listener, or it counts as an error), for MongoDB the pymongo pool's (`find_one({"_id": user})` on the same
collection, a document with `--per-user` episodes, or an error). Threads rather than asyncio: `time.sleep` wakes
to the microsecond while asyncio's timers (epoll, uvloop) have a 1 ms grain that would be charged to the API only.
Both paths see the same listener sequence (a random listener per request, the same seeds). `lag99` is the p99 of
how late requests left the client after their scheduled time (queued behind a slow answer on their connection, or a
slow client): if it is a large part of the latency while the server is not saturated, the client is the bottleneck;
`client` CPU shows how busy it was. A keep-alive connection the server closed is opened again (counted).

1. Overhead: at each of `--rates`, `--rounds` rounds of one `--seconds` slice of the API then one of MongoDB, on
   the same (noisy, shared 2-core) machine; pooled per rate, API p50 / Mongo p50 and API p99 / Mongo p99.
2. Capacity: the API alone at each of `--capacity-rates` until a rate misses (p99 >= 10 ms, an error, or under
   97 % of the scheduled rate); a missed rate is run once more (`--capacity-retries` in all: other jobs on a shared
   machine come and go) and the capacity is the highest rate that passed.
Every slice prints the CPU each party used (% of one core; the machine has `nproc`): the API's processes, the
MongoDB and Kafka servers, the load generator, every other process (`other`: another job on a shared machine shows
there) and the whole machine (`busy`: 100 x cores less /proc/stat's idle time); for the API also its CPU per
request, its in-app time (the mean of its own latency histogram over the slice: what the middleware sees, without
uvicorn's HTTP work) and how many client connections each uvicorn worker holds.
Goal: p99 < 10 ms at 500 QPS (met or not met; the exit code is 0 either way: this is a measurement, not a test).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import multiprocessing
import os
import random
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import _free_port, local_services

GOAL_RATE, GOAL_P99_MS = 500, 10.0
MIN_ACHIEVED = 0.97  # of the scheduled rate, for a step to count
ROUTE = "/v1/users/{user_id}/recommendations"
TICK = os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------------------------------------ load generation
# Runs in the load-generator processes (multiprocessing, spawn): nothing here imports podrec.


class KeepAlive:
    """One persistent HTTP/1.1 connection on a blocking socket: GET, read the status and a Content-Length body."""

    def __init__(self, port: int, timeout_s: float):
        self.port, self.timeout_s, self.sock, self.buffer, self.connects = port, timeout_s, None, b"", 0

    def _connect(self) -> None:
        self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout_s)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer, self.connects = b"", self.connects + 1

    def close(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
        self.sock, self.buffer = None, b""

    def get(self, request: bytes) -> tuple[int, bytes]:
        for attempt in (0, 1):
            if self.sock is None:
                self._connect()
            try:
                self.sock.sendall(request)
                return self._response()
            except (ConnectionResetError, BrokenPipeError, EOFError):
                # the server closed an idle keep-alive connection before answering: what any client does, again
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _recv(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed by the server")
        self.buffer += chunk

    def _response(self) -> tuple[int, bytes]:
        while (end := self.buffer.find(b"\r\n\r\n")) < 0:
            self._recv()
        head, self.buffer = self.buffer[:end].decode("latin-1"), self.buffer[end + 4 :]
        lines = head.split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        while len(self.buffer) < length:
            self._recv()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, body


def _api_call(job: dict):
    import orjson

    connection = KeepAlive(job["port"], job["timeout_s"])
    limit = job["limit"]

    def call(u: int) -> None:
        user = f"user-{u}"
        request = f"GET /v1/users/{user}/recommendations?limit={limit} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        status, body = connection.get(request.encode())
        if status != 200:
            raise ValueError(f"HTTP {status}")
        got = orjson.loads(body)
        if got.get("user_id") != user or len(got.get("recommendations") or ()) != limit:
            raise ValueError("wrong body")

    return call, connection.close, lambda: connection.connects


def _mongo_call(job: dict, collection):
    per_user = job["per_user"]

    def call(u: int) -> None:
        document = collection.find_one({"_id": f"user-{u}"})
        if document is None or len(document["episode_ids"]) != per_user:
            raise ValueError("missing or short document")

    return call, lambda: None, lambda: 0


def _slice(pipe, job: dict, proc: int, procs: int) -> None:
    """One slice: warm `threads` connections, say ready, wait for the start time, run the schedule, send results."""
    threads = job["threads"]
    client = None
    if job["kind"] == "mongo":
        from pymongo import MongoClient

        client = MongoClient(job["mongo_uri"], tz_aware=True, maxPoolSize=threads + 4,
                             socketTimeoutMS=int(job["timeout_s"] * 1000))  # fmt: skip
        collection = client[job["mongo_db"]]["user_recommendations"]
    ready, gate, go = threading.Barrier(threads + 1), threading.Event(), {}
    latencies: list[list[float]] = [[] for _ in range(threads)]
    lags: list[list[float]] = [[] for _ in range(threads)]
    errors: list[dict[str, int]] = [{} for _ in range(threads)]
    ends: list[float] = [0.0] * threads
    connects = [0] * threads

    def worker(t: int) -> None:
        rng = random.Random(job["seed"] * 7919 + proc * 1009 + t)  # the same listeners for both paths
        users = job["users"]
        if job["kind"] == "api":
            call, close, count = _api_call(job)
        else:
            call, close, count = _mongo_call(job, collection)
        warm = random.Random(-1 - t)
        for _ in range(job["warmup"]):  # opens the connection; a failure here shows in the slice itself
            with contextlib.suppress(Exception):
                call(warm.randrange(users))
        ready.wait()
        gate.wait()
        start, rate, total, stride = go["start"], job["rate"], go["total"], procs * threads
        for k in range(proc + t * procs, total, stride):
            due = start + k / rate
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            sent = time.monotonic()
            try:
                call(rng.randrange(users))
            except Exception as error:  # noqa: BLE001 - counted by kind, never retried here
                name = str(error) if isinstance(error, ValueError) else type(error).__name__
                errors[t][name] = errors[t].get(name, 0) + 1
                ends[t] = time.monotonic()
                continue
            done = time.monotonic()
            latencies[t].append(done - due)
            lags[t].append(sent - due)
            ends[t] = done
        connects[t] = count()
        close()

    pool = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(threads)]
    for thread in pool:
        thread.start()
    ready.wait()
    pipe.send("ready")
    go.update(pipe.recv())
    # no cycle collection pauses in the client while it measures (reference counting still frees)
    gc.disable()
    used = resource.getrusage(resource.RUSAGE_SELF)
    gate.set()
    for thread in pool:
        thread.join()
    after = resource.getrusage(resource.RUSAGE_SELF)
    gc.enable()
    if client is not None:
        client.close()
    merged: dict[str, int] = {}
    for counted in errors:
        for name, n in counted.items():
            merged[name] = merged.get(name, 0) + n
    pipe.send({
        "latencies": [x for part in latencies for x in part], "lags": [x for part in lags for x in part],
        "errors": merged, "end": max(ends), "connects": sum(connects),
        "cpu": (after.ru_utime + after.ru_stime) - (used.ru_utime + used.ru_stime),
    })  # fmt: skip


def load_generator(pipe, proc: int, procs: int) -> None:
    """A load-generator process: runs the slices it is sent until it is sent None."""
    sys.setswitchinterval(0.001)  # a thread whose answer came in waits less for the GIL
    while (job := pipe.recv()) is not None:
        _slice(pipe, job, proc, procs)


# ------------------------------------------------------------------------------------------------ measuring


def percentile(ordered: list[float], p: float) -> float:
    """Nearest rank, in ms."""
    if not ordered:
        return float("nan")
    return ordered[max(0, min(len(ordered) - 1, math.ceil(p * len(ordered)) - 1))] * 1e3


def summarize(parts: list[dict], rate: float, seconds_scheduled: float, wall: float) -> dict:
    latencies = sorted(x for part in parts for x in part["latencies"])
    lags = sorted(x for part in parts for x in part["lags"])
    errors: dict[str, int] = {}
    for part in parts:
        for name, n in part["errors"].items():
            errors[name] = errors.get(name, 0) + n
    answered = len(latencies) + sum(errors.values())
    return {
        "rate": rate, "n": len(latencies), "errors": errors, "error_count": sum(errors.values()),
        "achieved": answered / max(seconds_scheduled, wall) if answered else 0.0,
        "p50": percentile(latencies, 0.50), "p90": percentile(latencies, 0.90),
        "p99": percentile(latencies, 0.99), "max": latencies[-1] * 1e3 if latencies else float("nan"),
        "mean": sum(latencies) / len(latencies) * 1e3 if latencies else float("nan"),
        "lag_p99": percentile(lags, 0.99), "latencies": latencies,
    }  # fmt: skip


def pooled(runs: list[dict]) -> dict:
    """Several slices at one rate as one: their latencies together."""
    latencies = sorted(x for run in runs for x in run["latencies"])
    errors: dict[str, int] = {}
    for run in runs:
        for name, n in run["errors"].items():
            errors[name] = errors.get(name, 0) + n
    return {
        "rate": runs[0]["rate"], "n": len(latencies), "errors": errors, "error_count": sum(errors.values()),
        "achieved": min(run["achieved"] for run in runs),
        "p50": percentile(latencies, 0.50), "p90": percentile(latencies, 0.90),
        "p99": percentile(latencies, 0.99), "max": latencies[-1] * 1e3 if latencies else float("nan"),
        "lag_p99": max(run["lag_p99"] for run in runs), "latencies": latencies,
    }  # fmt: skip


def passes(s: dict) -> bool:
    return s["error_count"] == 0 and s["achieved"] >= MIN_ACHIEVED * s["rate"] and s["p99"] < GOAL_P99_MS


# -- CPU from /proc, per process


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def all_ticks() -> dict[int, tuple[int, int]]:
    """{pid: (process group, utime + stime in clock ticks)} of every process (threads included). Per process, not
    /proc/stat's machine total: the kernel samples that one at ticks, which undercounts bursty work like this."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat(int(entry))) is not None:
            found[int(entry)] = (int(fields[2]), int(fields[11]) + int(fields[12]))
    return found


def machine_idle_ticks() -> int:
    """Ticks every core spent idle (or waiting for I/O) since boot, from /proc/stat. Busy time is the wall time
    times the cores less this: the kernel measures idle time exactly, while its busy fields are sampled at ticks,
    which misses short bursts like a lookup's."""
    with open("/proc/stat") as stat:
        ticks = [int(t) for t in stat.readline().split()[1:]]
    return ticks[3] + ticks[4]


def group_ticks(pgid: int) -> dict[int, int]:
    """{pid: CPU ticks} of every process in process group `pgid`."""
    return {pid: ticks for pid, (group, ticks) in all_ticks().items() if group == pgid}


def api_workers(serve_pid: int) -> list[int]:
    """The uvicorn worker processes of `podrec serve` (its children that run a multiprocessing spawn)."""
    workers = []
    for pid in group_ticks(serve_pid):
        fields = _stat(pid)
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if fields is not None and int(fields[1]) == serve_pid and b"spawn_main" in command:
            workers.append(pid)
    return sorted(workers) or [serve_pid]


def connections_per_worker(workers: list[int], port: int) -> list[int]:
    """How many established TCP connections on `port` each worker holds (the kernel hands each accepted
    connection to one worker, for good: keep-alive clients stay where they landed)."""
    established = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as rows:
            for row in list(rows)[1:]:
                cols = row.split()
                if int(cols[1].rsplit(":", 1)[1], 16) == port and cols[3] == "01":
                    established.add(cols[9])
    counts = []
    for pid in workers:
        inodes = set()
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    link = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if link.startswith("socket:["):
                        inodes.add(link[8:-1])
        counts.append(len(inodes & established))
    return counts


# -- the API's own metrics


def scrape(port: int) -> dict[str, float]:
    """The list route's latency sum and count (200s), and the impressions sent / dropped, from /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    got = {"sum": 0.0, "count": 0.0, "sent": 0.0, "dropped": 0.0}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        if f'route="{ROUTE}"' in line and 'status="200"' in line and 'method="GET"' in line:
            if line.startswith("podrec_api_request_seconds_sum"):
                got["sum"] += float(line.rsplit(" ", 1)[1])
            elif line.startswith("podrec_api_request_seconds_count"):
                got["count"] += float(line.rsplit(" ", 1)[1])
        elif match := re.match(r'podrec_api_impressions_total\{outcome="(\w+)"\} (\S+)', line):
            got[match[1]] = got.get(match[1], 0.0) + float(match[2])
    return got


# ------------------------------------------------------------------------------------------------ the bench


class Bench:
    def __init__(self, args, home: Path, port: int, serve: subprocess.Popen, database: str):
        self.args, self.port, self.serve, self.database = args, port, serve, database
        self.workers = api_workers(serve.pid)
        self.pgids = {"api": serve.pid}
        for role in ("mongo", "kafka"):  # our servers' process groups (none when they are external)
            with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
                self.pgids[role] = json.loads((home / "run" / f"{role}.json").read_text())["pid"]
        context = multiprocessing.get_context("spawn")
        self.pipes, self.procs = [], []
        for proc in range(args.client_procs):
            ours, theirs = context.Pipe()
            process = context.Process(
                target=load_generator, args=(theirs, proc, args.client_procs), daemon=True
            )
            process.start()
            self.pipes.append(ours)
            self.procs.append(process)
        self.client_pids = {process.pid for process in self.procs}
        self.idle_api = 0.0
        self.seed = 0

    def close(self) -> None:
        for pipe in self.pipes:
            with contextlib.suppress(OSError):
                pipe.send(None)
        for process in self.procs:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()

    def _cpu(self) -> dict:
        return {"at": time.monotonic(), "ticks": all_ticks(), "idle": machine_idle_ticks()}

    def _shares(self, cpu0: dict, cpu1: dict, client_cpu_s: float) -> dict[str, float | None]:
        """% of one core each party used between two snapshots: the API, MongoDB, Kafka, the load generator, and
        every other process on the machine (this one included: it mostly sleeps)."""
        elapsed, used = cpu1["at"] - cpu0["at"], {}
        for pid, (group, ticks) in cpu1["ticks"].items():
            delta = ticks - cpu0["ticks"].get(pid, (group, 0))[1]
            role = next((r for r, g in self.pgids.items() if g == group), None)
            if pid in self.client_pids:
                role = "client"
            used[role or "other"] = used.get(role or "other", 0) + delta
        shares: dict[str, float | None] = {
            role: (used.get(role, 0) / TICK / elapsed * 100 if role in self.pgids else None)
            for role in ("api", "mongo", "kafka")
        }
        # the generator's own count over its slice (getrusage, to the microsecond)
        shares["client"] = client_cpu_s / elapsed * 100
        shares["other"] = used.get("other", 0) / TICK / elapsed * 100
        idle = (cpu1["idle"] - cpu0["idle"]) / TICK / elapsed * 100
        shares["busy"] = max(0.0, (os.cpu_count() or 1) * 100 - idle)
        return shares

    def settle(self, limit_s: float = 20.0, quiet_pct: float = 5.0) -> float:
        """Wait until the API's processes are quiet: /readyz answers from the first worker ready, while the others
        may still be importing and connecting. Seconds waited."""
        began = time.monotonic()
        while time.monotonic() - began < limit_s:
            if (self.idle(1.0)["api"] or 0.0) < quiet_pct:
                break
        return time.monotonic() - began

    def idle(self, seconds: float) -> dict[str, float | None]:
        """What each party uses with no request at all (background threads: pymongo's monitors, Kafka's sender,
        uvicorn's supervisor)."""
        cpu0 = self._cpu()
        time.sleep(seconds)
        shares = self._shares(cpu0, self._cpu(), 0.0)
        self.idle_api = shares["api"] or 0.0
        return shares

    def run(self, kind: str, rate: float, seconds: float) -> dict:
        """One slice of `kind` (api | mongo) at `rate` for `seconds`; the summary with the CPU of each party."""
        self.seed += 1 if kind == "api" else 0  # the Mongo slice after an API slice replays its listeners
        job = {"kind": kind, "rate": rate, "threads": self.args.concurrency, "warmup": 3, "seed": self.seed,
               "port": self.port, "users": self.args.users, "per_user": self.args.per_user, "limit": self.args.limit,
               "mongo_uri": os.environ["MONGO_URI"], "mongo_db": self.database, "timeout_s": 5.0}  # fmt: skip
        for pipe in self.pipes:
            pipe.send(job)
        for pipe in self.pipes:
            if pipe.recv() != "ready":
                raise RuntimeError("a load generator did not get ready")
        before_metrics = scrape(self.port) if kind == "api" else None
        total = int(rate * seconds)
        cpu0 = self._cpu()
        start = time.monotonic() + 0.05
        for pipe in self.pipes:
            pipe.send({"start": start, "total": total})
        connections = None
        if kind == "api":
            time.sleep(seconds / 2)
            connections = connections_per_worker(self.workers, self.port)
        parts = [pipe.recv() for pipe in self.pipes]
        cpu1 = self._cpu()
        wall = max(part["end"] for part in parts) - start
        s = summarize(parts, rate, total / rate, wall)
        elapsed = cpu1["at"] - cpu0["at"]
        s["cpu"] = self._shares(cpu0, cpu1, sum(part["cpu"] for part in parts))
        s["kind"] = kind
        s["reconnects"] = max(0, sum(part["connects"] for part in parts) - len(parts) * self.args.concurrency)
        if kind == "api":
            after_metrics = scrape(self.port)
            served = after_metrics["count"] - before_metrics["count"]
            s["in_app_ms"] = (
                (after_metrics["sum"] - before_metrics["sum"]) / served * 1e3 if served else float("nan")
            )
            s["connections"] = connections
            s["worker_cpu"] = [(cpu1["ticks"].get(pid, (0, 0))[1] - cpu0["ticks"].get(pid, (0, 0))[1]) / TICK / elapsed
                               * 100 for pid in self.workers]  # fmt: skip
            s["cpu_ms_per_request"] = (s["cpu"]["api"] / 100 * elapsed) / max(1, s["n"]) * 1e3
            above = max(0.0, s["cpu"]["api"] - self.idle_api)  # what the requests cost beyond the background
            s["cpu_ms_above_idle"] = (above / 100 * elapsed) / max(1, s["n"]) * 1e3
        return s


HEADER = (f"  {'slice':<26} {'target':>6} {'got/s':>6} {'ok':>6} {'err':>4} {'p50':>6} {'p90':>6} {'p99':>6} "
          f"{'max':>7} {'lag99':>6}  cpu% api mongo kafka client other busy")  # fmt: skip


def _pct(x: float | None) -> str:
    return "   -" if x is None else f"{x:4.0f}"


def line(label: str, s: dict) -> str:
    cpu = s.get("cpu")
    tail = (f"       {_pct(cpu['api'])} {_pct(cpu['mongo'])}  {_pct(cpu['kafka'])}   {_pct(cpu['client'])}    "
            f"{_pct(cpu['other'])} {_pct(cpu['busy'])}") if cpu else ""  # fmt: skip
    head = f"  {label:<26} {s['rate']:>6.0f} {s['achieved']:>6.0f} {s['n']:>6} {s['error_count']:>4} "
    return (
        head
        + f"{s['p50']:>6.2f} {s['p90']:>6.2f} {s['p99']:>6.2f} {s['max']:>7.1f} {s['lag_p99']:>6.2f}{tail}"
    )


def detail(s: dict) -> str:
    workers = "/".join(f"{c:.0f}" for c in s["worker_cpu"])
    connections = "/".join(map(str, s["connections"] or []))
    text = (f"    api: {s['cpu_ms_per_request']:.2f} ms CPU/request ({s['cpu_ms_above_idle']:.2f} above idle); in-app "
            f"mean {s['in_app_ms']:.2f} ms vs client mean {s['mean']:.2f} ms; per worker cpu% {workers}, "
            f"connections {connections}")  # fmt: skip
    if s["reconnects"]:
        text += f"; {s['reconnects']} connections opened again"
    if s["errors"]:
        text += f"; errors {s['errors']}"
    return text


def _p99s(runs: list[dict]) -> str:
    return ", ".join(f"{run['p99']:.2f}" for run in runs)


def overhead(args, bench: Bench) -> dict[float, dict[str, dict]]:
    print(f"\n1. overhead: open loop, {args.rounds} rounds x ({args.seconds:g} s API, then {args.seconds:g} s bare "
          f"MongoDB) per rate; {args.client_procs} client process(es) x {args.concurrency} threads, one keep-alive "
          "connection each; ms from each request's scheduled time")  # fmt: skip
    print(HEADER)
    result = {}
    for rate in args.rates:
        runs: dict[str, list[dict]] = {"api": [], "mongo": []}
        for round_ in range(1, args.rounds + 1):
            for kind in runs:
                s = bench.run(kind, rate, args.seconds)
                runs[kind].append(s)
                print(line(f"{rate:g} QPS r{round_} {'API' if kind == 'api' else 'Mongo'}", s), flush=True)
                if kind == "api":
                    print(detail(s), flush=True)
                elif s["errors"]:
                    print(f"    errors {s['errors']}")
        both = {kind: pooled(r) for kind, r in runs.items()}
        result[rate] = {**both, "rounds": runs}
        for kind, s in both.items():
            print(line(f"{rate:g} QPS all {'API' if kind == 'api' else 'Mongo'}", s))
        api, mongo = both["api"], both["mongo"]
        print(f"  -> {rate:g} QPS: API / Mongo p50 {api['p50'] / mongo['p50']:.2f}x "
              f"(+{api['p50'] - mongo['p50']:.2f} ms), p99 {api['p99'] / mongo['p99']:.2f}x "
              f"(+{api['p99'] - mongo['p99']:.2f} ms); p99 by round API {_p99s(runs['api'])}, Mongo "
              f"{_p99s(runs['mongo'])}", flush=True)  # fmt: skip
    return result


def capacity(args, bench: Bench) -> tuple[float | None, list[dict]]:
    print(f"\n2. capacity: the API alone, {args.capacity_seconds:g} s per rate, until p99 >= {GOAL_P99_MS:g} ms, an "
          f"error or under {MIN_ACHIEVED:.0%} of the rate; a missed rate is run again once (at most "
          f"{args.capacity_retries} times in all), against a moment's noise from other jobs")  # fmt: skip
    print(HEADER)
    best, steps, retries = None, [], args.capacity_retries
    for rate in args.capacity_rates:
        for attempt in range(2):
            s = bench.run("api", rate, args.capacity_seconds)
            s["attempt"] = attempt + 1
            steps.append(s)
            ok = passes(s)
            print(line(f"{rate:g} QPS {'ok' if ok else 'MISSED'}{' (again)' if attempt else ''}", s))
            print(detail(s), flush=True)
            if ok or retries == 0:
                break
            retries -= 1
        if not ok:
            break
        best = rate
    return best, steps


def seed(db, users: int, per_user: int) -> float:
    """`user_recommendations` for `users` listeners (documents as `user_document` builds them); seconds taken."""
    from datetime import UTC, datetime

    from podrec_assets.lib.serving.lookup import user_document
    from podrec_assets.names import USER_RECOMMENDATIONS

    began, now, batch = time.perf_counter(), datetime.now(UTC), []
    db[USER_RECOMMENDATIONS].drop()
    for u in range(users):
        ranked = [{"recommended_episode_id": f"ep-{(u * 31 + rank * 7) % 5000}",
                   "title": f"Episode {(u * 31 + rank * 7) % 5000}: a title of ordinary length",
                   "score": 1.0 - rank / (per_user + 1), "reason": "listeners with similar taste enjoyed this",
                   "source": "als", "model_version": "bench-v1", "generated_at": now}
                  for rank in range(1, per_user + 1)]  # fmt: skip
        batch.append(user_document(f"user-{u}", ranked))
        if len(batch) == 1000:
            db[USER_RECOMMENDATIONS].insert_many(batch, ordered=False)
            batch = []
    if batch:
        db[USER_RECOMMENDATIONS].insert_many(batch, ordered=False)
    if db[USER_RECOMMENDATIONS].estimated_document_count() != users:
        raise RuntimeError("seeding user_recommendations fell short")
    return time.perf_counter() - began


def start_api(args, home: Path, port: int, database: str) -> subprocess.Popen:
    podrec = Path(sys.executable).parent / "podrec"
    command = [str(podrec)] if podrec.exists() else [sys.executable, "-m", "podrec_assets.tools.cli"]
    command += ["serve", "--port", str(port), "--workers", str(args.workers)]
    env = {
        **os.environ,
        "MONGO_DB": database,
    }  # MONGO_URI, KAFKA_BOOTSTRAP_SERVERS, topics, PODREC_DELTA_ROOT set
    log = open(home / "api.log", "ab")  # noqa: SIM115 - the child keeps it
    return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True, cwd=home)  # fmt: skip


def wait_ready(process: subprocess.Popen, port: int, home: Path, timeout_s: float = 90.0) -> float:
    began = time.monotonic()
    last = ""
    while time.monotonic() - began < timeout_s:
        if process.poll() is not None:
            raise RuntimeError(f"podrec serve exited with {process.returncode}; see {home / 'api.log'}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=3) as response:
                if response.status == 200:
                    return time.monotonic() - began
        except (urllib.error.URLError, OSError) as error:
            last = str(error)
        time.sleep(0.3)
    raise RuntimeError(f"podrec serve not ready after {timeout_s:.0f} s ({last}); see {home / 'api.log'}")


def stop_group(process: subprocess.Popen, timeout_s: float = 15.0) -> None:
    """SIGTERM to the process group we started (uvicorn and its workers), SIGKILL if it lingers."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)
    deadline = time.monotonic() + 5  # workers may outlive the master by a moment
    while group_ticks(process.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if group_ticks(process.pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


def _rounds(runs: list[dict]) -> str:
    return ", ".join(f"{run['p99']:.2f} ({run['cpu']['other']:.0f}%)" for run in runs)


def summary(args, result, best, steps, impressions: dict, began: float) -> None:
    print(f"\nsummary ({args.users:,} listeners x {args.per_user}, limit={args.limit}, podrec serve --workers "
          f"{args.workers}, {os.cpu_count()} cores, {args.client_procs} client process(es) x {args.concurrency} "
          "threads):")  # fmt: skip
    for rate, both in result.items():
        api, mongo, rounds = both["api"], both["mongo"], both["rounds"]
        api_cpu = sum(r["cpu_ms_per_request"] for r in rounds["api"]) / len(rounds["api"])
        api_above = sum(r["cpu_ms_above_idle"] for r in rounds["api"]) / len(rounds["api"])
        mongo_cpu = [r["cpu"]["mongo"] * 10 / rate for r in rounds["mongo"] if r["cpu"]["mongo"] is not None]
        server = f"{sum(mongo_cpu) / len(mongo_cpu):.2f} ms" if mongo_cpu else "? (external)"
        print(f"  {rate:g} QPS: API p50 {api['p50']:.2f} / p90 {api['p90']:.2f} / p99 {api['p99']:.2f} / max "
              f"{api['max']:.1f} ms, {api['error_count']} errors, got {api['achieved']:.0f}/s; Mongo p50 "
              f"{mongo['p50']:.2f} / p90 {mongo['p90']:.2f} / p99 {mongo['p99']:.2f} / max {mongo['max']:.1f} ms, "
              f"{mongo['error_count']} errors")  # fmt: skip
        print(f"    API / Mongo: p50 {api['p50'] / mongo['p50']:.2f}x, p99 {api['p99'] / mongo['p99']:.2f}x; CPU: the "
              f"API {api_cpu:.2f} ms per request ({api_above:.2f} above its idle), the MongoDB server {server} per "
              f"lookup; p99 by round (other processes' CPU %): API {_rounds(rounds['api'])}; Mongo "
              f"{_rounds(rounds['mongo'])}")  # fmt: skip
    if steps:
        missed = steps[-1] if not passes(steps[-1]) else None
        why = " (no step missed: raise --capacity-rates)"
        if missed:
            why = (f" (missed at {missed['rate']:g} QPS: p99 {missed['p99']:.2f} ms, got {missed['achieved']:.0f}/s, "
                   f"{missed['error_count']} errors)")  # fmt: skip
        print(
            f"  capacity at p99 < {GOAL_P99_MS:g} ms: {f'{best:g} QPS' if best else 'below the first step'}{why}"
        )
    goal = result.get(GOAL_RATE)
    if goal is None:
        print(
            f"  goal p99 < {GOAL_P99_MS:g} ms at {GOAL_RATE} QPS: not measured (add {GOAL_RATE} to --rates)"
        )
    else:
        api = goal["api"]
        met = passes(api)
        print(f"  goal p99 < {GOAL_P99_MS:g} ms at {GOAL_RATE} QPS: {'MET' if met else 'NOT MET'} (p99 "
              f"{api['p99']:.2f} ms over {api['n']:,} requests, {api['error_count']} errors, "
              f"got {api['achieved']:.0f}/s)")  # fmt: skip
    print(f"  impressions: {impressions.get('sent', 0):,.0f} sent to Kafka, {impressions.get('dropped', 0):,.0f} "
          "dropped (the API's own counters)")  # fmt: skip
    print(f"whole run: {time.perf_counter() - began:.0f} s")


def _rates(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--per-user", type=int, default=20, help="recommendations stored per listener")
    parser.add_argument("--limit", type=int, default=10, help="the route's ?limit=")
    parser.add_argument("--workers", type=int, default=2, help="podrec serve --workers (its default)")
    parser.add_argument("--rates", type=_rates, default=[50, 500], help="part 1, QPS (comma-separated)")
    parser.add_argument("--rounds", type=int, default=2, help="part 1: rounds per rate")
    parser.add_argument("--seconds", type=float, default=8.0, help="part 1: seconds per slice")
    parser.add_argument("--capacity-rates", type=_rates, default=[250, 500, 750, 1000, 1500, 2000, 3000])
    parser.add_argument("--capacity-seconds", type=float, default=8.0, help="part 2: seconds per rate")
    parser.add_argument(
        "--capacity-retries", type=int, default=2, help="part 2: missed rates run again, in all"
    )
    parser.add_argument("--skip-capacity", action="store_true")
    parser.add_argument(
        "--concurrency", type=int, default=32, help="client threads (= connections) per process"
    )
    parser.add_argument("--client-procs", type=int, default=1, help="load-generator processes")
    args = parser.parse_args()
    began = time.perf_counter()

    with local_services(["kafka", "mongo"]) as home:  # servers named by the environment are used as they are
        from pymongo import MongoClient

        from podrec_assets.lib.ingestion.kafka_clients import KafkaSettings

        print(f"services up in {time.perf_counter() - began:.1f} s: Kafka {os.environ['KAFKA_BOOTSTRAP_SERVERS']}, "
              f"MongoDB {os.environ['MONGO_URI']} (home {home})", flush=True)  # fmt: skip
        database = "podrec_bench_api"
        client = MongoClient(os.environ["MONGO_URI"], tz_aware=True)
        took = seed(client[database], args.users, args.per_user)
        print(
            f"seeded user_recommendations: {args.users:,} listeners x {args.per_user} in {took:.1f} s",
            flush=True,
        )
        # the impressions topic exists before the first list is served, as in a deployment
        KafkaSettings.from_env().ensure_topic(os.environ["PODREC_IMPRESSIONS_TOPIC"], 3)

        port = _free_port()
        serve = start_api(args, home, port, database)
        bench = None
        try:
            ready = wait_ready(serve, port, home)
            bench = Bench(args, home, port, serve, database)
            print(f"podrec serve --workers {args.workers} on 127.0.0.1:{port}: ready in {ready:.1f} s "
                  f"(pid {serve.pid}, worker pids {bench.workers})", flush=True)  # fmt: skip
            waited = bench.settle()
            quiet = bench.idle(3.0)
            print(f"idle for 3 s (after {waited:.0f} s settling): the API's {len(bench.workers)} workers use "
                  f"{quiet['api']:.1f}% of a core, MongoDB {_pct(quiet['mongo']).strip()}%, Kafka "
                  f"{_pct(quiet['kafka']).strip()}%, other processes {quiet['other']:.0f}%", flush=True)  # fmt: skip
            result = overhead(args, bench)
            best, steps = (None, []) if args.skip_capacity else capacity(args, bench)
            impressions = scrape(port)
            summary(args, result, best, steps, impressions, began)
        finally:
            if bench is not None:
                bench.close()
            stop_group(serve)
            with contextlib.suppress(Exception):
                client.drop_database(database)
            client.close()
            shutil.rmtree(home / "run" / f"prometheus-{port}", ignore_errors=True)


if __name__ == "__main__":
    main()
