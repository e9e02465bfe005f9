"""Nightly training: after the day's engagement partition (00:30 UTC), a new model and, if promoted, its lists."""

from dagster import DefaultScheduleStatus, ScheduleDefinition, define_asset_job

from podrec_assets.models.assets import als_model, als_recommendations

als_training_job = define_asset_job("als_training_job", selection=[als_model, als_recommendations])

# The blocking beats_popularity check stops als_recommendations when the new model is not promoted.
als_training_schedule = ScheduleDefinition(
    name="als_training_schedule",
    job=als_training_job,
    cron_schedule="0 2 * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
)
