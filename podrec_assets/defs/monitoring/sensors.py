"""Retrain on drift or decay: when a drift check on the incoming events warns, or the online hit rate falls below
its band, the nightly training job runs now, with the reason in the run's tags (`podrec/retrain_reason`,
`podrec/retrain_check`). At most one such run a day per check, and never while the training job is already running.

Not on the checks that judge a model just trained (`ndcg_not_decayed`, `list_quality_stable`): a retrain would learn
from the same data and land where it did. They warn, and a person looks (docs/monitoring.md)."""

import json
from collections.abc import Callable

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
from podrec_assets.names import DAILY_ENGAGEMENT, ONLINE_HIT_RATE


def _any_warning(metadata: dict) -> bool:
    return True


def _a_decay(metadata: dict) -> bool:
    """A hit rate above its band is good news, not a reason to retrain."""
    return bool(getattr(metadata.get("arms_below_band"), "value", None))


# The checks whose warning means "the data moved" or "what listeners get got worse": the model should learn from the
# newest data now rather than tonight. Each with what, in a failed evaluation, calls for a retrain.
RETRAIN_ON: dict[AssetCheckKey, Callable[[dict], bool]] = {
    AssetCheckKey(AssetKey(DAILY_ENGAGEMENT), "event_mix_stable"): _any_warning,
    AssetCheckKey(AssetKey(DAILY_ENGAGEMENT), "new_listener_share_in_band"): _any_warning,
    AssetCheckKey(AssetKey(ONLINE_HIT_RATE), "hit_rate_in_band"): _a_decay,
}
RETRAIN_REASON_TAG = "podrec/retrain_reason"
RUNNING = [DagsterRunStatus.QUEUED, DagsterRunStatus.STARTING, DagsterRunStatus.STARTED]


def _reason(check: AssetCheckKey, metadata: dict) -> str:
    figures = {
        k: getattr(v, "value", v) for k, v in metadata.items() if k not in ("judged", "history_days", "arms")
    }
    return f"{check.name} warned: {json.dumps(figures, default=str, sort_keys=True)}"[:1000]


@sensor(
    job_name=ALS_TRAINING_JOB,  # by name: the job is defined once, in defs/models/schedules.py
    minimum_interval_seconds=300,
    default_status=DefaultSensorStatus.RUNNING,
    description="Retrains (the nightly job, now) when a drift check on the incoming events warns or the online hit "
    "rate decays below its band; the reason is in the run's tags.",
)
def drift_retrain_sensor(context: SensorEvaluationContext):
    seen = json.loads(context.cursor) if context.cursor else {}
    requests, cursor = [], dict(seen)
    for check, calls_for_retrain in RETRAIN_ON.items():
        record = context.instance.get_latest_asset_check_evaluation_record(check)
        evaluation = record.evaluation if record else None
        if record is None or evaluation is None or record.id <= seen.get(check.name, -1):
            continue
        cursor[check.name] = record.id
        if evaluation.passed or not calls_for_retrain(dict(evaluation.metadata)):
            continue
        day = str(getattr(evaluation.metadata.get("day"), "value", "unknown"))
        requests.append(RunRequest(
            run_key=f"retrain-{check.name}-{day}",  # one retrain a day per check, however often it warns
            tags={RETRAIN_REASON_TAG: _reason(check, dict(evaluation.metadata)), "podrec/retrain_check": check.name},
        ))  # fmt: skip
    busy = context.instance.get_runs(RunsFilter(job_name=ALS_TRAINING_JOB, statuses=RUNNING), limit=1)
    if requests and busy:
        return SkipReason(
            "a drift check warned, but the training job is running already: it learns from the same data"
        )
    if not requests:
        return SensorResult(skip_reason="no new drift or decay warning", cursor=json.dumps(cursor))
    return SensorResult(run_requests=requests[:1], cursor=json.dumps(cursor))
