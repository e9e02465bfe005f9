"""The sensor that evaluates every asset's automation condition (the stats and fresh lists after a hand-made
ingestion, transcripts → embeddings → similarity after the catalog).

Dagster 1.13 starts its own default automation sensor stopped; this one runs under `make dev` without a click."""

from dagster import AssetSelection, AutomationConditionSensorDefinition, DefaultSensorStatus

automation_sensor = AutomationConditionSensorDefinition(
    "automation_sensor",
    target=AssetSelection.all(),
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=15,
)
