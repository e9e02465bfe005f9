"""Nightly training: after the day's engagement partition (00:30 UTC), a new ALS model, its lists, a new ranker, and
every listener's list rebuilt and published. Each step's blocking check stops the steps after it in the same run:
a model that does not beat popularity, a ranker that does not beat ALS alone and the hybrid, or lists that fail
their checks never reach MongoDB (the previous set stays live, and the near-real-time lists go on)."""

from dagster import AssetSelection, DefaultScheduleStatus, ScheduleDefinition, define_asset_job

from podrec_assets.names import (
    ALS_MODEL,
    ALS_RECOMMENDATIONS,
    FINAL_RECOMMENDATIONS,
    PUBLISHED_RECOMMENDATIONS,
    RANKER_MODEL,
)

ALS_TRAINING_JOB = "als_training_job"  # also started by the drift sensor (defs/monitoring/sensors.py)
als_training_job = define_asset_job(
    ALS_TRAINING_JOB,
    selection=AssetSelection.assets(
        ALS_MODEL, ALS_RECOMMENDATIONS, RANKER_MODEL, FINAL_RECOMMENDATIONS, PUBLISHED_RECOMMENDATIONS
    ),
    description="ALS (held-out fit, gate, serving refit), its top-N, the ranker (gate), the final lists "
    "(checks) and their publication to MongoDB.",
)

als_training_schedule = ScheduleDefinition(
    name="als_training_schedule",
    job=als_training_job,
    cron_schedule="0 2 * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
)
