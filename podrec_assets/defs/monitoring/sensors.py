"""Retrain on drift or decay: when a drift check warns (a new evaluation that did not pass), the nightly training job
runs now, with the reason in the run's tags (`podrec/retrain_reason`, `podrec/retrain_check`). At most one such run a
day per check, and never while the training job is already running."""

import json

from dagster import (
    AssetCheckKey,
    AssetKey,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from podrec_assets.defs.models.schedules import ALS_TRAINING_JOB
from podrec_assets.names import DAILY_ENGAGEMENT

# The checks whose warning means "the data moved": the model should learn from it now rather than tonight.
RETRAIN_ON = [
    AssetCheckKey(AssetKey(DAILY_ENGAGEMENT), "event_mix_stable"),
    AssetCheckKey(AssetKey(DAILY_ENGAGEMENT), "new_listener_share_in_band"),
]
RETRAIN_REASON_TAG = "podrec/retrain_reason"
RUNNING = [DagsterRunStatus.QUEUED, DagsterRunStatus.STARTING, DagsterRunStatus.STARTED]


def _reason(check: AssetCheckKey, metadata: dict) -> str:
    figures = {k: getattr(v, "value", v) for k, v in metadata.items() if k not in ("judged", "history_days")}
    return f"{check.name} warned: {json.dumps(figures, default=str, sort_keys=True)}"[:1000]


@sensor(
    job_name=ALS_TRAINING_JOB,  # by name: the job is defined once, in defs/models/schedules.py
    minimum_interval_seconds=300,
    default_status=DefaultSensorStatus.RUNNING,
    description="Retrains (the nightly job, now) when a drift check on the incoming events warns; the reason is in "
    "the run's tags.",
)
def drift_retrain_sensor(context: SensorEvaluationContext):
    seen = json.loads(context.cursor) if context.cursor else {}
    requests, cursor = [], dict(seen)
    for check in RETRAIN_ON:
        record = context.instance.get_latest_asset_check_evaluation_record(check)
        evaluation = record.evaluation if record else None
        if record is None or evaluation is None or record.id <= seen.get(check.name, -1):
            continue
        cursor[check.name] = record.id
        if evaluation.passed:
            continue
        day = str(getattr(evaluation.metadata.get("day"), "value", "unknown"))
        requests.append(RunRequest(
            run_key=f"retrain-{check.name}-{day}",  # one retrain a day per check, however often it warns
            tags={RETRAIN_REASON_TAG: _reason(check, dict(evaluation.metadata)), "podrec/retrain_check": check.name},
        ))  # fmt: skip
    busy = context.instance.get_runs(RunsFilter(job_name=ALS_TRAINING_JOB, statuses=RUNNING), limit=1)
    if requests and busy:
        return SkipReason("a drift check warned, but the training job is running already: it learns from the same data")
    if not requests:
        return SensorResult(skip_reason="no new drift warning", cursor=json.dumps(cursor))
    return SensorResult(run_requests=requests[:1], cursor=json.dumps(cursor))
