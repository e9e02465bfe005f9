"""Assembles podrec's Dagster definitions. Nothing is defined here; each domain folder defines its own pieces."""

from dagster import Definitions

from podrec_assets.ingestion.assets import user_event_tables
from podrec_assets.ingestion.checks import raw_user_events_checks
from podrec_assets.ingestion.sensors import ingest_user_events_job, user_events_kafka_sensor
from podrec_assets.resources import build_resources

defs = Definitions(
    assets=[user_event_tables],
    asset_checks=raw_user_events_checks,
    jobs=[ingest_user_events_job],
    sensors=[user_events_kafka_sensor],
    resources=build_resources(),
)
