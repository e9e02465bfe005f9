"""How each stage grows with the data: 1×, 10× and 30× the demo's listeners, episodes and events.

    python benchmarks/scale.py                      # 1×, 10×, 30×: ~20 minutes on an idle 2-core machine
    python benchmarks/scale.py --scales 1,2         # a quick run (~5 minutes)
    python benchmarks/scale.py --scales 60 --stages ranker --stage-timeout 900   # one stage further out

The demo (`make demo`) is 300 synthetic listeners over 14 days on the 48-episode sample catalog (~13k events). At
scale s: 300·s listeners (the same sessions each, so ~13k·s events) and 48·s episodes (the sample catalog plus
48·(s−1) synthetic `longtail` episodes, which the listeners hear too). Per scale, each stage is one Dagster
materialization in a fresh process (so its peak RSS is its own), against private Kafka and MongoDB servers and a
Spark Connect server restarted for each scale (so its RSS is that scale's), in this order:

  ingest       raw_user_events + quarantined_events from Kafka, with the ingestion checks
  stats        user_stats + user_affinities (every version since the start), then global_stats
  engagement   daily_engagement of the newest full day (the 13 days before it: untimed setup)
  als_model    both ALS fits, the evaluation, the version
  als_top_n    als_recommendations, with its checks                 } each on both paths: first the one the
  ranker       ranker_model (LightGBM, the cross-fitted gate)       } threshold (PODREC_SPARK_PATH_MIN_LISTENERS,
  ranking      final_recommendations, with its blocking check       } lib/settings.py) did not choose, then the
  publish      published_recommendations (three MongoDB swaps)        one it chose, which the stages after read

Untimed setup per scale: the catalog and its content assets, generating the events and producing them to Kafka.

Printed per stage and scale: seconds; the driver's CPU seconds; the driver process's peak RSS (getrusage: the
whole worker process, imports included) and its own share, peak minus the RSS just before the stage; the Spark
server's peak RSS during the stage (the JVM and its Python workers, sampled every 0.2 s). Then growth against the
smallest scale of the same run: time ratio, and that ÷ the scale ratio (≈ 1 linear, > 1 superlinear, < 1 fixed
costs still weigh), the same for the stage's own memory. A stage that fails or passes --stage-timeout is where
that scale broke (the stages that need it are not run); stages past --budget-minutes are not reached. Last, which
path each scale took and the size from which the Spark path takes over.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DEMO_LISTENERS, DEMO_EPISODES, DEMO_DAYS, DEMO_SESSIONS = 300, 48, 14, 12.0
# Sessions start up to 6 h before END: 2026-06-30 is the newest full day, 2026-07-01 the open one (its first
# hours: the lists read it from raw events, as they do today's).
END = datetime(2026, 7, 1, 6, tzinfo=UTC)
TIMED_DAY = date(2026, 6, 30)
STAGES = ["ingest", "stats", "engagement", "als_model", "als_top_n", "ranker", "ranking", "publish"]
# Setup (untimed in the table) in between: the catalog and the events before ingesting them, the days before the
# timed one before it. The stats follow ingestion, as in the ingestion job.
ORDER = ["setup", "ingest", "stats", "engagement_history", "engagement", "als_model", "als_top_n", "ranker",
         "ranking", "publish"]  # fmt: skip
# What a stage needs to have run (a stage that broke takes its dependents with it, and nothing else).
DEPENDS = {"ingest": "setup", "stats": "ingest", "engagement_history": "ingest", "engagement": "engagement_history",
           "als_model": "engagement", "als_top_n": "als_model", "ranker": "als_model", "ranking": "als_model",
           "publish": "ranking"}  # fmt: skip
TWO_PATHS = (
    "als_top_n",
    "ranking",
)  # the steps with a driver and a Spark path (lib/settings.py scoring_path)
RESULT = "RESULT "


# ---------------------------------------------------------------------------------------------------------------
# The worker: one stage in its own process.
# ---------------------------------------------------------------------------------------------------------------


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def worker(stage: str, scale: int, workspace: Path) -> None:
    from dagster import DagsterInstance, materialize
    from dagster_pyspark import PySparkResource

    from podrec_assets.defs.resources import (
        CatalogResource,
        DeltaLakeResource,
        KafkaResource,
        ModelStoreResource,
        MongoResource,
    )

    state = json.loads((workspace / "workspace.json").read_text())
    resources = {
        "delta": DeltaLakeResource(root=str(workspace / "delta")),
        "models": ModelStoreResource(root=str(workspace / "models")),
        "mongo": MongoResource(uri=os.environ["MONGO_URI"], database=state["database"]),
        "kafka": KafkaResource(bootstrap_servers=os.environ["KAFKA_BOOTSTRAP_SERVERS"], topic=state["topic"],
                               partitions=6),
        "pyspark": PySparkResource(spark_config={"spark.remote": os.environ["SPARK_REMOTE"]}),
        "catalog": CatalogResource(sources="sample,longtail" if scale > 1 else "sample",
                                   longtail_episodes=DEMO_EPISODES * (scale - 1)),
    }  # fmt: skip
    # One instance for the whole scale, as a deployment has: the publish reads which versions passed their checks.
    instance = DagsterInstance.local_temp(str(workspace / "dagster"))
    quiet = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}

    def run(assets: list, ops: dict | None = None, **kwargs) -> dict:
        config = {**quiet, "ops": ops} if ops else quiet
        result = materialize(assets, resources=resources, instance=instance, run_config=config, **kwargs)
        if not result.success:
            raise RuntimeError(f"run {result.run_id} failed")
        figures = {}
        for event in result.get_asset_materialization_events():
            materialization = event.event_specific_data.materialization
            for key, value in materialization.metadata.items():
                figures[f"{materialization.asset_key.to_user_string()}.{key}"] = getattr(
                    value, "value", value
                )
        return figures

    prepare, timed, details = STAGE_FUNCTIONS[stage](scale, workspace, resources, run)
    if prepare is not None:
        prepare()
    base = rss_mb()
    own = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    figures = timed()
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    peak = after.ru_maxrss / 1024  # KiB on Linux
    print(RESULT + json.dumps({
        "seconds": seconds,
        "cpu_s": after.ru_utime + after.ru_stime - own.ru_utime - own.ru_stime,
        "base_mb": base,
        "peak_mb": peak,
        "children_peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "details": details(figures),
    }, default=str), flush=True)  # fmt: skip


def _setup(scale, workspace, resources, run):
    import orjson

    from podrec_assets.defs.content.assets import (
        episode_similarity,
        episodes,
        transcript_embeddings,
        transcripts,
    )
    from podrec_assets.lib.lakehouse import read_table
    from podrec_assets.names import EPISODES
    from podrec_assets.tools.producers.kafka_send import send_messages
    from podrec_assets.tools.producers.synthetic import catalog_from_documents, generate_events

    def timed():
        figures = run([episodes, transcripts, transcript_embeddings, episode_similarity])
        kafka = resources["kafka"]
        kafka.ensure_topic()
        documents = read_table(resources["delta"].table_uri(EPISODES)).to_pylist()
        events = generate_events(users=DEMO_LISTENERS * scale, days=DEMO_DAYS, sessions_per_user=DEMO_SESSIONS,
                                 catalog=catalog_from_documents(documents), seed=42, end=END)  # fmt: skip
        keyed = ((e["user_id"].encode(), orjson.dumps(e)) for e in events)
        report = send_messages(kafka, keyed, progress=False)
        if report.failed:
            raise RuntimeError(f"{report.failed} events not acknowledged: {report.first_error}")
        return {"episodes": figures.get("episodes.catalog_size"), "events": report.sent}

    return None, timed, lambda f: f


def _ingest(scale, workspace, resources, run):
    from podrec_assets.defs.ingestion.assets import user_event_tables
    from podrec_assets.defs.ingestion.checks import raw_user_events_checks

    def timed():
        return run([user_event_tables, *raw_user_events_checks])

    return None, timed, lambda f: {"events": f.get("raw_user_events.events_accepted")}


def _engagement_history(scale, workspace, resources, run):
    from podrec_assets.defs.engagement.assets import daily_engagement
    from podrec_assets_tests.helpers import partition_range_tags

    first = (END - timedelta(days=DEMO_DAYS)).date()

    def timed():
        return run([daily_engagement], tags=partition_range_tags(first, TIMED_DAY - timedelta(days=1)))

    return None, timed, lambda f: {}


def _engagement(scale, workspace, resources, run):
    from podrec_assets.defs.engagement.assets import daily_engagement

    def timed():
        return run([daily_engagement], partition_key=TIMED_DAY.isoformat())

    return None, timed, lambda f: {"rows": f.get("daily_engagement.rows")}


def _als_model(scale, workspace, resources, run):
    from podrec_assets.defs.models.assets import als_model

    def details(f):
        return {"users": f.get("als_model.users"), "episodes": f.get("als_model.episodes"),
                "pairs": f.get("als_model.serving_train_pairs"), "promoted": f.get("als_model.promoted")}  # fmt: skip

    return None, lambda: run([als_model]), details


def _als_top_n(scale, workspace, resources, run):
    from podrec_assets.defs.models.assets import als_recommendations
    from podrec_assets.defs.models.checks import als_recommendations_checks

    def details(f):
        return {"path": f.get("als_recommendations.path"), "rows": f.get("als_recommendations.rows")}

    return None, lambda: run([als_recommendations, *als_recommendations_checks]), details


def _ranker(scale, workspace, resources, run):
    from podrec_assets.defs.models.ranker import ranker_model

    def details(f):
        return {key.split(".", 1)[1]: value for key, value in f.items()
                if key.split(".", 1)[1] in ("promoted", "serving_policy", "listeners_judged", "ranker_ndcg@10",
                                            "als_ndcg@10")}  # fmt: skip

    # --ranker FIELD=VALUE (RankerConfig), passed to each worker in the environment
    config = json.loads(os.environ.get("PODREC_BENCH_RANKER", "{}"))
    ops = {"ranker_model": {"config": config}} if config else None
    return None, lambda: run([ranker_model], ops=ops), details


def _ranking(scale, workspace, resources, run):
    from podrec_assets.defs.serving.assets import final_recommendations
    from podrec_assets.defs.serving.checks import final_recommendations_checks

    def details(f):
        return {"path": f.get("final_recommendations.path"), "users": f.get("final_recommendations.users"),
                "strategy": f.get("final_recommendations.strategy")}  # fmt: skip

    return None, lambda: run([final_recommendations, *final_recommendations_checks]), details


def _publish(scale, workspace, resources, run):
    from deltalake import DeltaTable

    from podrec_assets.defs.serving.assets import published_recommendations
    from podrec_assets.lib.serving.realtime import STREAM
    from podrec_assets.lib.stats.store import advance_cursor
    from podrec_assets.names import RAW_USER_EVENTS

    def prepare():
        # The steady state: the ingestion job's fresh_recommendations has kept up with every event, so the swap
        # refreshes only listeners with events after the lists were built (none here), not everyone.
        table = DeltaTable(resources["delta"].table_uri(RAW_USER_EVENTS))
        client = resources["mongo"].client()
        try:
            advance_cursor(resources["mongo"].db(client), STREAM, table.version(), str(table.metadata().id))
        finally:
            client.close()

    def details(f):
        return {key.split(".", 1)[1]: value for key, value in f.items()
                if key.endswith("_documents") or key.endswith("refreshed_after_swap")}  # fmt: skip

    return prepare, lambda: run([published_recommendations]), details


def _stats(scale, workspace, resources, run):
    from podrec_assets.defs.stats.assets import global_stats, user_stats

    def details(f):
        return {
            "events": f.get("user_stats.events_applied"),
            "versions": f.get("user_stats.versions_applied"),
        }

    return None, lambda: run([user_stats, global_stats]), details


STAGE_FUNCTIONS = {
    "setup": _setup,
    "engagement_history": _engagement_history,
    "ingest": _ingest,
    "engagement": _engagement,
    "als_model": _als_model,
    "als_top_n": _als_top_n,
    "ranker": _ranker,
    "ranking": _ranking,
    "publish": _publish,
    "stats": _stats,
}


# ---------------------------------------------------------------------------------------------------------------
# The parent: services, one worker per stage and scale, the Spark server's RSS meanwhile, the table.
# ---------------------------------------------------------------------------------------------------------------


def _tree(root: int) -> list[int]:
    """`root` and its descendants (the Spark server's JVM and the Python workers it forks)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, stack = [], [root]
    while stack:
        pid = stack.pop()
        out.append(pid)
        stack.extend(children.get(pid, []))
    return out


def _tree_rss_mb(root: int) -> float:
    total = 0
    for pid in _tree(root):
        try:
            with open(f"/proc/{pid}/statm") as statm:
                total += int(statm.read().split()[1])
        except OSError:
            continue
    return total * os.sysconf("SC_PAGE_SIZE") / 2**20


class PeakSampler:
    """Peak RSS of a process tree while a stage runs (None when the server is not ours to see)."""

    def __init__(self, root: int | None, every_s: float = 0.2):
        self.root, self.every_s, self.peak = root, every_s, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _tree_rss_mb(self.root)) if self.root else 0.0
            self._stop.wait(self.every_s)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class Outcome:
    stage: str
    scale: int
    forced: str = ""  # "driver" / "spark": the path forced for this run ("" = the threshold's choice)
    seconds: float | None = None
    cpu_s: float | None = None
    base_mb: float | None = None
    peak_mb: float | None = None
    spark_mb: float | None = None
    details: dict = field(default_factory=dict)
    error: str = ""
    skipped: bool = False  # not run at all (a stage it needs broke, or the budget was spent)

    @property
    def own_mb(self) -> float | None:
        return None if self.peak_mb is None or self.base_mb is None else max(self.peak_mb - self.base_mb, 0.0)

    @property
    def row(self) -> str:
        """The table row: a stage, and for the two with two paths, which path ran."""
        path = self.forced or self.details.get("path")
        return f"{self.stage} ({path})" if self.stage in TWO_PATHS and path else self.stage


def run_worker(
    stage: str, scale: int, workspace: Path, timeout_s: float, spark_pid: int | None, forced: str = ""
) -> Outcome:
    command = [
        sys.executable,
        __file__,
        "--worker",
        stage,
        "--scale",
        str(scale),
        "--workspace",
        str(workspace),
    ]
    env = dict(os.environ)
    if forced:  # 0 listeners: always Spark; more than any scale: always the driver
        env["PODREC_SPARK_PATH_MIN_LISTENERS"] = "0" if forced == "spark" else str(10**12)
    log = workspace / f"{stage}{'-' + forced if forced else ''}.log"
    outcome = Outcome(stage, scale, forced)
    with open(log, "wb") as err, PeakSampler(spark_pid) as sampler:
        # a session of its own, so a stage past its time is stopped with any child it started (a commit worker)
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=err, env=env, start_new_session=True
        )
        try:
            out, _ = process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            outcome.error = f"did not finish in {timeout_s:.0f} s"
            return outcome
    outcome.spark_mb = sampler.peak or None
    lines = [line for line in out.decode().splitlines() if line.startswith(RESULT)]
    if process.returncode or not lines:
        tail = [line for line in log.read_text(errors="replace").splitlines() if line.strip()][-1:]
        code = process.returncode
        ended = f"killed by signal {-code}" if code < 0 else f"exit {code}"
        outcome.error = f"{ended}: {tail[0][:200] if tail else ''} (log {log})"
        return outcome
    result = json.loads(lines[-1][len(RESULT) :])
    outcome.seconds, outcome.cpu_s = result["seconds"], result["cpu_s"]
    outcome.base_mb, outcome.peak_mb = result["base_mb"], result["peak_mb"]
    outcome.details = result["details"]
    return outcome


def _spark_up(home: Path):
    """A Spark Connect server of its own for one scale (None: SPARK_REMOTE names an external one)."""
    from benchmarks._common import _free_port
    from podrec_assets.lib.settings import external_services
    from podrec_assets.tools.stack import LocalStack

    if "spark" in external_services():
        return None, None
    port = _free_port()
    os.environ["PODREC_LOCAL_SPARK_PORT"] = str(port)
    os.environ["SPARK_REMOTE"] = f"sc://127.0.0.1:{port}"
    stack = LocalStack(home)
    stack.up(["spark"], log=lambda m: None)
    pid = json.loads((home / "run" / "spark.json").read_text())["pid"]
    return stack, pid


def fmt(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def growth(value: float | None, first: float | None, ratio: float) -> str:
    """`value` ÷ `first`, and that ÷ the scale ratio (1 linear, above 1 superlinear)."""
    if value is None or not first:
        return ""
    return f"{value / first:.2f}× ({value / first / ratio:.2f})"


def print_table(outcomes: list[Outcome], scales: list[int]) -> None:
    rows = list(dict.fromkeys(o.row for o in outcomes))
    rows.sort(key=lambda r: STAGES.index(r.split(" ")[0]))
    by = {(o.row, o.scale): o for o in outcomes}
    print("\nstage               scale       s  driver CPU s  driver peak MB  own MB  Spark MB   time growth     "
          "memory growth   details")  # fmt: skip
    for row in rows:
        first = next((by[(row, s)] for s in scales if (row, s) in by and not by[(row, s)].error), None)
        for scale in scales:
            o = by.get((row, scale))
            if o is None:
                continue
            if o.error:
                print(f"{row:<19} {scale:>4}×  {'' if o.skipped else 'BROKE: '}{o.error}")
                continue
            ratio = scale / first.scale if first else 1.0
            time_growth = growth(o.seconds, first.seconds, ratio) if first and o is not first else ""
            memory_growth = growth(o.own_mb, first.own_mb, ratio) if first and o is not first else ""
            details = ", ".join(f"{k} {v}" for k, v in o.details.items() if v is not None and k != "path")
            print(f"{row:<19} {scale:>4}×  {fmt(o.seconds):>6}  {fmt(o.cpu_s):>12}  {fmt(o.peak_mb, 0):>14}  "
                  f"{fmt(o.own_mb, 0):>6}  {fmt(o.spark_mb, 0):>8}   {time_growth:<15} {memory_growth:<15} "
                  f"{details}")  # fmt: skip
    print("growth: this scale's figure ÷ the first scale's, and in brackets that ÷ the scale ratio (1 = linear, "
          "above 1 = superlinear, below 1 = fixed costs still weigh); memory growth on the stage's own MB (peak "
          "minus the RSS just before it)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scales", default="1,10,30", help="comma-separated multiples of the demo's sizes")
    parser.add_argument(
        "--stage-timeout", type=float, default=300, help="seconds before a stage counts as broken"
    )
    parser.add_argument("--budget-minutes", type=float, default=24, help="the whole run's time; stages past it "
                        "are reported as not reached")  # fmt: skip
    parser.add_argument("--other-path", default=",".join(TWO_PATHS), help="stages also timed on the path the "
                        "threshold did not choose (comma-separated; empty: none)")  # fmt: skip
    parser.add_argument("--stages", default=",".join(STAGES), help="the stages to time (comma-separated); the "
                        "ones they need run too, as setup")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the run's folder (Delta tables, models, logs; "
                        "~1 GB at 30×), which is otherwise removed unless a stage broke")  # fmt: skip
    parser.add_argument("--ranker", action="append", default=[], metavar="FIELD=VALUE",
                        help="a ranker_model run-config field (RankerConfig), e.g. max_training_listeners=3000; "
                        "repeatable")  # fmt: skip
    parser.add_argument("--worker", choices=list(STAGE_FUNCTIONS), help=argparse.SUPPRESS)
    parser.add_argument("--scale", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--workspace", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.scale, args.workspace)
        return

    from benchmarks._common import local_services

    if args.ranker:  # parsed and checked as `podrec evaluate --ranker` does; the workers read it from the env
        from podrec_assets.tools.cli.evaluate import ranker_overrides

        os.environ["PODREC_BENCH_RANKER"] = json.dumps(ranker_overrides(tuple(args.ranker)))
    from podrec_assets.lib.settings import DRIVER, SPARK, scoring_path, spark_path_min_listeners

    scales = sorted({int(s) for s in args.scales.split(",")})
    wanted = {s for s in args.stages.split(",") if s}
    other_path = {s for s in args.other_path.split(",") if s} & wanted
    timed_or_needed = set(wanted)  # and every stage those need
    for stage in wanted:
        while stage in DEPENDS:
            stage = DEPENDS[stage]
            timed_or_needed.add(stage)
    outcomes: list[Outcome] = []
    failed = False  # any stage, setup included: then the run's folder is kept for its logs
    started = time.perf_counter()
    deadline = started + args.budget_minutes * 60
    threshold = spark_path_min_listeners()
    print(f"threshold: PODREC_SPARK_PATH_MIN_LISTENERS = {threshold:,} listeners ({threshold / DEMO_LISTENERS:.0f}× "
          f"the demo); stage timeout {args.stage_timeout:.0f} s; budget {args.budget_minutes:g} min")  # fmt: skip
    with local_services(["kafka", "mongo"]) as home:
        for scale in scales:
            workspace = home / f"x{scale}"
            (workspace / "dagster").mkdir(parents=True)
            (workspace / "workspace.json").write_text(json.dumps(
                {"topic": f"scale-x{scale}-{uuid.uuid4().hex[:6]}", "database": f"scale_x{scale}"}))  # fmt: skip
            listeners = DEMO_LISTENERS * scale
            chosen = scoring_path(listeners)
            print(f"\n{scale}×: {listeners:,} listeners, {DEMO_EPISODES * scale:,} episodes, {DEMO_DAYS} days; "
                  f"the threshold chooses the {chosen} path", flush=True)  # fmt: skip
            spark_started = time.perf_counter()
            stack, spark_pid = _spark_up(workspace / "spark")
            print(f"  Spark Connect server up in {time.perf_counter() - spark_started:.1f} s", flush=True)
            broken: set[str] = set()
            try:
                for stage in [s for s in ORDER if s in timed_or_needed]:
                    runs = [""]
                    if stage in other_path:  # the other path first: what runs downstream is the chosen one's
                        runs = [SPARK if chosen == DRIVER else DRIVER, ""]
                    for forced in runs:
                        prerequisite = DEPENDS.get(stage, "")
                        left = deadline - time.perf_counter()
                        if prerequisite in broken:
                            broken.add(stage)
                            outcome = Outcome(
                                stage, scale, forced, error=f"not run: {prerequisite} broke", skipped=True
                            )
                        elif left < 10:
                            outcome = Outcome(stage, scale, forced, error="not reached: the run's time budget is "
                                              "spent", skipped=True)  # fmt: skip
                        else:
                            outcome = run_worker(stage, scale, workspace, min(args.stage_timeout, left), spark_pid,
                                                 forced)  # fmt: skip
                        label = f"{stage}{f' ({forced})' if forced else ''}"
                        if outcome.error:
                            print(
                                f"  {label}: {'' if outcome.skipped else 'BROKE: '}{outcome.error}",
                                flush=True,
                            )
                            if not forced:
                                broken.add(stage)
                        else:
                            print(f"  {label}: {outcome.seconds:.1f} s, driver peak {outcome.peak_mb:.0f} MB "
                                  f"(own {outcome.own_mb:.0f}), Spark {fmt(outcome.spark_mb, 0)} MB  "
                                  f"{outcome.details}", flush=True)  # fmt: skip
                        failed = failed or bool(outcome.error and not outcome.skipped)
                        if stage in wanted:
                            outcomes.append(outcome)
            finally:
                if stack is not None:
                    stack.down(log=lambda m: None)
        print_table(outcomes, scales)
    print(f"\nwhole run {time.perf_counter() - started:.0f} s")
    paths = "; ".join(
        f"{s}× ({DEMO_LISTENERS * s:,} listeners) {scoring_path(DEMO_LISTENERS * s)}" for s in scales
    )
    print(f"paths the threshold chose: {paths}. The Spark path takes over from {threshold:,} listeners "
          f"({threshold / DEMO_LISTENERS:.0f}× the demo).")  # fmt: skip
    broke = [o for o in outcomes if o.error and not o.skipped and not o.forced]
    if broke:
        first = min(broke, key=lambda o: (o.scale, STAGES.index(o.stage)))
        print(f"first to break: {first.stage} at {first.scale}× ({first.error})")
    else:
        print("nothing broke at these scales")
    if args.keep or failed:
        print(f"the run's folder, logs included: {home}")
    else:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("PODREC_FIRST_DAY", "2026-01-01")
    main()
