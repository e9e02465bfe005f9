"""Asset check outcomes over time, read from the Dagster instance (DAGSTER_HOME) through Dagster's public API.

The dashboard is not a code location and does not load the graph's definitions: the checks it shows are those the
instance has seen planned or evaluated (its event log), each with its execution history (newest first), as the UI's
check pages show them. A check that has never run is not listed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from dagster import (
    AssetCheckEvaluation,
    AssetCheckKey,
    AssetCheckSeverity,
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    EventRecordsFilter,
)

COLUMNS = ["at", "asset", "check", "outcome", "blocking", "run_id", "details"]
DISCOVER = 5_000  # newest planned/evaluated events read to find the checks the instance knows
PER_CHECK = 100  # executions shown per check

# an execution's status → what the page calls it (a failed evaluation with WARN severity is "warned")
OUTCOMES = {"SUCCEEDED": "passed", "FAILED": "failed", "EXECUTION_FAILED": "execution failed",
            "SKIPPED": "skipped"}  # fmt: skip


@dataclass(frozen=True)
class CheckHistory:
    executions: pd.DataFrame  # COLUMNS, newest first
    problem: str | None = None  # why there is no history (no instance yet, unreadable instance)

    @property
    def latest(self) -> pd.DataFrame:
        """The newest execution of each check, failing ones first."""
        if self.executions.empty:
            return self.executions
        latest = self.executions.drop_duplicates(["asset", "check"], keep="first")
        order = latest["outcome"].map({"failed": 0, "execution failed": 1, "warned": 2}).fillna(3)
        return latest.assign(_order=order).sort_values(["_order", "asset", "check"]).drop(columns="_order")


def _empty() -> pd.DataFrame:
    return pd.DataFrame({column: [] for column in COLUMNS})


def open_instance() -> DagsterInstance | str:
    """The instance DAGSTER_HOME names (as `DagsterInstance.get()` finds it), or why there is none: a folder that
    does not exist is not created."""
    home = os.environ.get("DAGSTER_HOME", "")
    if not home or not Path(home).is_dir():
        return (
            f"No Dagster instance yet: DAGSTER_HOME ({home or 'unset'}) does not exist. Check outcomes appear once "
            "the graph has run there (`make demo`, `make dev`)."
        )
    try:
        return DagsterInstance.get()
    except Exception as error:  # a broken dagster.yaml, an unreachable Postgres: say so, do not fail the page
        return f"The Dagster instance in {home} cannot be opened: {type(error).__name__}: {error}"


def _details(evaluation: AssetCheckEvaluation | None, limit: int = 4) -> str:
    if evaluation is None:
        return ""
    parts = []
    for name, entry in list(evaluation.metadata.items())[:limit]:
        value = getattr(entry, "value", entry)
        if isinstance(value, float):
            value = f"{value:.4g}"
        text = str(value)
        parts.append(f"{name}={text if len(text) <= 40 else text[:39] + '…'}")
    return ", ".join(parts)


class _RunOutcomes:
    """What a check that was planned but never evaluated in a run came to, from that run's status (as the UI
    resolves it): skipped when the run succeeded without it, execution failed when the run failed or was
    canceled, running while the run goes on."""

    def __init__(self, instance: DagsterInstance):
        self.instance = instance
        self.known: dict[str, str] = {}

    def planned_outcome(self, run_id: str) -> str:
        if run_id not in self.known:
            run = self.instance.get_run_by_id(run_id) if run_id else None
            if run is None:
                self.known[run_id] = "planned"
            elif run.status == DagsterRunStatus.SUCCESS:
                self.known[run_id] = "skipped"
            elif run.status in (DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED):
                self.known[run_id] = "execution failed"
            else:
                self.known[run_id] = "running"
        return self.known[run_id]


def check_history(instance: DagsterInstance, per_check: int = PER_CHECK) -> CheckHistory:
    """Every check the instance knows, with its newest `per_check` executions: when, outcome, run, details."""
    storage = instance.event_log_storage
    keys: set[AssetCheckKey] = set()
    for event_type in (
        DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED,
        DagsterEventType.ASSET_CHECK_EVALUATION,
    ):
        for record in storage.get_event_records(EventRecordsFilter(event_type=event_type), limit=DISCOVER):
            event = record.event_log_entry.dagster_event
            data = event.event_specific_data if event else None
            asset_key, name = getattr(data, "asset_key", None), getattr(data, "check_name", None)
            if asset_key is not None and name:
                keys.add(AssetCheckKey(asset_key, name))
    rows, runs = [], _RunOutcomes(instance)
    for key in sorted(keys, key=lambda k: (k.asset_key.to_user_string(), k.name)):
        executions = storage.get_asset_check_execution_history(key, limit=per_check)
        decided = {e.run_id for e in executions if e.status.value != "PLANNED"}
        shown: set[tuple[str, str]] = set()
        for execution in executions:
            entry = execution.event
            data = entry.dagster_event.event_specific_data if entry and entry.dagster_event else None
            evaluation = data if isinstance(data, AssetCheckEvaluation) else None
            if execution.status.value == "PLANNED":
                if execution.run_id in decided:  # a partition range planned per partition, evaluated once
                    continue
                outcome = runs.planned_outcome(execution.run_id)
            else:
                outcome = OUTCOMES.get(execution.status.value, execution.status.value.lower())
            if (
                evaluation is not None
                and not evaluation.passed
                and evaluation.severity == AssetCheckSeverity.WARN
            ):
                outcome = "warned"
            if (execution.run_id, outcome) in shown and execution.run_id:
                continue
            shown.add((execution.run_id, outcome))
            at = (
                entry.timestamp
                if evaluation is not None and entry is not None
                else execution.create_timestamp
            )
            rows.append({
                "at": datetime.fromtimestamp(at, UTC),
                "asset": key.asset_key.to_user_string(),
                "check": key.name,
                "outcome": outcome,
                "blocking": bool(evaluation.blocking) if evaluation is not None else None,
                "run_id": execution.run_id,
                "details": _details(evaluation),
            })  # fmt: skip
    if not rows:
        return CheckHistory(_empty())
    executions = pd.DataFrame(rows).sort_values("at", ascending=False, kind="stable").reset_index(drop=True)
    return CheckHistory(executions[COLUMNS])


def load_check_history() -> CheckHistory:
    """The check history of the instance in DAGSTER_HOME, or why there is none."""
    instance = open_instance()
    if isinstance(instance, str):
        return CheckHistory(_empty(), instance)
    try:
        with instance:  # disposed (its storage connections closed) on the way out
            return check_history(instance)
    except Exception as error:  # an instance whose storage needs a migration, say
        return CheckHistory(_empty(), f"The Dagster instance's check history cannot be read: "
                                      f"{type(error).__name__}: {error}")  # fmt: skip
