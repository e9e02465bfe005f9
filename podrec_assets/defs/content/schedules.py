"""The catalog refreshes on a schedule; transcripts, embeddings and similarity follow it by declarative automation
(`AutomationCondition.eager()` on each), so only the catalog needs a clock."""

from dagster import AssetSelection, DefaultScheduleStatus, ScheduleDefinition, define_asset_job

from podrec_assets.names import EPISODES

episode_catalog_job = define_asset_job("episode_catalog_job", selection=AssetSelection.assets(EPISODES))

episode_catalog_schedule = ScheduleDefinition(
    name="episode_catalog_schedule",
    job=episode_catalog_job,
    cron_schedule="0 */6 * * *",  # four times a day: trending lists move within a day
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,  # runs under `make dev` without a click
)
