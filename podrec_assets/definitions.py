"""Assembles podrec's Dagster definitions. Nothing is defined here; each domain folder defines its own pieces."""

from dagster import (
    AssetSelection,
    AutomationConditionSensorDefinition,
    DefaultSensorStatus,
    Definitions,
)

from podrec_assets.defs.content.assets import episode_similarity, episodes, transcript_embeddings, transcripts
from podrec_assets.defs.content.checks import content_checks
from podrec_assets.defs.content.schedules import episode_catalog_job, episode_catalog_schedule
from podrec_assets.defs.engagement.assets import daily_engagement
from podrec_assets.defs.engagement.sensors import (
    daily_engagement_job,
    daily_engagement_schedule,
    late_events_sensor,
)
from podrec_assets.defs.ingestion.assets import user_event_tables
from podrec_assets.defs.ingestion.checks import raw_user_events_checks
from podrec_assets.defs.ingestion.sensors import ingest_user_events_job, user_events_kafka_sensor
from podrec_assets.defs.models.assets import als_model, als_recommendations
from podrec_assets.defs.models.checks import als_recommendations_checks
from podrec_assets.defs.models.ranker import ranker_model
from podrec_assets.defs.models.schedules import als_training_job, als_training_schedule
from podrec_assets.defs.resources import build_resources
from podrec_assets.defs.serving.assets import (
    final_recommendations,
    fresh_recommendations,
    published_recommendations,
)
from podrec_assets.defs.serving.checks import final_recommendations_checks
from podrec_assets.defs.stats.assets import global_stats, user_stats

# Dagster 1.13 starts its default automation sensor stopped; this one evaluates every asset's automation condition
# (stats and fresh lists after a hand-made ingestion, content after the catalog) and runs under `make dev` at once.
automation_sensor = AutomationConditionSensorDefinition(
    "automation_sensor",
    target=AssetSelection.all(),
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=15,
)

defs = Definitions(
    assets=[
        user_event_tables,
        daily_engagement,
        als_model,
        als_recommendations,
        ranker_model,
        episodes,
        transcripts,
        transcript_embeddings,
        episode_similarity,
        final_recommendations,
        published_recommendations,
        fresh_recommendations,
        user_stats,
        global_stats,
    ],
    asset_checks=[
        *raw_user_events_checks,
        *als_recommendations_checks,
        *content_checks,
        *final_recommendations_checks,
    ],
    jobs=[ingest_user_events_job, daily_engagement_job, als_training_job, episode_catalog_job],
    sensors=[user_events_kafka_sensor, late_events_sensor, automation_sensor],
    schedules=[daily_engagement_schedule, als_training_schedule, episode_catalog_schedule],
    resources=build_resources(),
)
