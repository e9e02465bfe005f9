"""`make demo`: the whole product once, end to end, one line per stage; every command's own output goes to a log file.

Each stage is a command a newcomer could type (`podrec ...`, `dg launch --assets ...`). A Dagster stage's line says
what its run produced (a few figures from each materialization's metadata) and how its checks went, read back from
the Dagster instance. Re-running is safe: ingestion is exactly-once, the catalog upserts, models get new versions.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from podrec_assets.lib.settings import REPO_ROOT, podrec_home

# Metadata shown for each materialization, in this order of preference (the first three present).
FIGURES = [
    "catalog_size", "events_accepted", "quarantined", "rows", "users", "episodes", "pairs", "encoded",
    "rows_written", "promoted", "serving_strategy", "strategy", "listeners_judged", "documents_written",
    "user_documents", "als_top_n_documents",
]  # fmt: skip


@dataclass(frozen=True)
class Stage:
    name: str
    commands: list[list[str]]
    launches_run: bool = False


def stages(bin_dir: Path, users: int = 300) -> list[Stage]:
    podrec, dg = str(bin_dir / "podrec"), str(bin_dir / "dg")

    def launch(assets: str, *extra: str) -> list[str]:
        return [dg, "launch", "--assets", assets, *extra]

    return [  # fmt: off
        Stage("services", [[podrec, "services", "up", "--faces"]]),  # services, then API, dashboard, MLflow
        # the catalog first: the event generator draws episodes from its MongoDB mirror
        Stage("catalog", [launch("episodes")], True),
        Stage(
            "events",
            [
                [podrec, "events", "generate", "--users", str(users), "--days", "14"],
                [podrec, "events", "send", str(REPO_ROOT / "demo" / "bad_events.jsonl")],
            ],
        ),
        Stage("ingestion", [launch("raw_user_events,quarantined_events")], True),
        Stage("engagement", [launch("daily_engagement", "--partition-range", "{event_days}")], True),
        Stage("als", [launch("als_model,als_recommendations")], True),
        Stage("content", [launch("transcripts,transcript_embeddings,episode_similarity")], True),
        Stage("ranker", [launch("ranker_model")], True),
        Stage(
            "lists+stats",
            [
                launch(
                    "final_recommendations,published_recommendations,user_stats,user_affinities,global_stats"
                )
            ],
            True,
        ),
    ]  # fmt: on


def event_days(bin_dir: Path, log) -> str:
    """START...END of the closed days raw_user_events holds (each closed day is a daily_engagement partition)."""
    out = subprocess.run([str(bin_dir / "podrec"), "event-days"], capture_output=True, text=True, check=False)
    log.write(out.stdout + out.stderr)
    if out.returncode:
        raise SystemExit(f"no closed day of events yet: {out.stderr.strip()}")
    return out.stdout.strip()


def run_report(instance, run_id: str) -> str:
    """What one Dagster run produced: per asset a few metadata figures, then its checks."""
    from dagster import DagsterEventType

    produced: dict[str, tuple[list[str], int]] = {}  # asset → (figures of its last materialization, how many)
    for record in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION):
        materialization = record.dagster_event.event_specific_data.materialization
        metadata = {k: getattr(v, "value", v) for k, v in materialization.metadata.items()}
        figures = [
            f"{k} {metadata[k]}" for k in FIGURES if k in metadata and not isinstance(metadata[k], dict)
        ]
        key = materialization.asset_key.to_user_string()
        produced[key] = (figures[:3], produced.get(key, ([], 0))[1] + 1)
    parts, passed, failed = [], 0, []
    for key, (figures, times) in produced.items():
        partitions = f"{times} partitions, " if times > 1 else ""
        parts.append(f"{key} ({partitions}{', '.join(figures)})" if partitions or figures else key)
    for record in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION):
        evaluation = record.dagster_event.event_specific_data
        if evaluation.passed:
            passed += 1
        else:
            failed.append(evaluation.check_name)
    checks = f"checks {passed} passed" + (f", FAILED: {', '.join(failed)}" if failed else "")
    return "; ".join(parts) + ("; " + checks if passed or failed else "")


def newest_run_id(instance) -> str | None:
    runs = instance.get_runs(limit=1)
    return runs[0].run_id if runs else None


def run(plan: list[Stage], log_path: Path, out=print) -> None:
    """Runs each stage's commands with their output in `log_path`; one line per stage through `out`."""
    from dagster import DagsterInstance

    log_path.parent.mkdir(parents=True, exist_ok=True)
    bin_dir = Path(sys.executable).parent
    with log_path.open("a") as log, DagsterInstance.get() as instance:
        for stage in plan:
            before = newest_run_id(instance)
            begun = time.monotonic()
            for command in stage.commands:
                if "{event_days}" in command:
                    command = [event_days(bin_dir, log) if c == "{event_days}" else c for c in command]
                log.write(f"\n$ {' '.join(command)}\n")
                log.flush()
                code = subprocess.run(
                    command, check=False, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT
                )
                if code := code.returncode:
                    out(f"✗ {stage.name:<12} failed (exit {code}) after {time.monotonic() - begun:.0f}s: "
                        f"{' '.join(command)}\n  see {log_path}")  # fmt: skip
                    raise SystemExit(code)
            took = time.monotonic() - begun
            after = newest_run_id(instance)
            produced = run_report(instance, after) if stage.launches_run and after != before else "done"
            out(f"✓ {stage.name:<12} {took:5.0f}s  {produced}")


def main() -> None:
    bin_dir = Path(sys.executable).parent
    log_path = podrec_home() / "logs" / "demo.log"
    log_path.unlink(missing_ok=True)
    print(f"make demo: one line per stage; every command's full output goes to {log_path}")
    started = time.monotonic()
    run(stages(bin_dir), log_path)
    print(f"all stages in {time.monotonic() - started:.0f}s\n")
    width = shutil.get_terminal_size((110, 20)).columns
    print("-" * min(width, 110))
    for command in (["summary"], ["recommend", "--examples", "2", "-n", "5"]):
        subprocess.run([str(bin_dir / "podrec"), *command], check=True, cwd=REPO_ROOT, env=os.environ)
        print()


if __name__ == "__main__":
    main()
