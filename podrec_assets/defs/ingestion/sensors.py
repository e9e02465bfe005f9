"""The sensor that turns new data on the events topic into bounded ingestion runs."""

import hashlib
import time

from dagster import (
    AssetSelection,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SkipReason,
    define_asset_job,
    in_process_executor,
    sensor,
)

from podrec_assets.defs.resources import DeltaLakeResource, KafkaResource
from podrec_assets.lib.ingestion.kafka_to_delta import pending_partitions, read_positions
from podrec_assets.names import (
    FRESH_RECOMMENDATIONS,
    INGEST_TAG,
    POSITIONS_TAG,
    QUARANTINED_EVENTS,
    RAW_USER_EVENTS,
    USER_AFFINITIES,
    USER_STATS,
)

# A run that has started and not ended (a queued run is not yet holding the ingestion's positions).
IN_PROGRESS = [
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
    DagsterRunStatus.SUSPENDED,
]

# One run per ingestion carries the events to everything a listener sees within a minute: the tables, their stats
# and their fresh list. The steps run in the run's own process (a step subprocess costs seconds at each step on
# these machines, and the freshness budget is a minute end to end).
ingest_user_events_job = define_asset_job(
    "ingest_user_events",
    selection=AssetSelection.assets(
        RAW_USER_EVENTS, QUARANTINED_EVENTS, USER_STATS, USER_AFFINITIES, FRESH_RECOMMENDATIONS
    ),
    description="Ingest pending Kafka events into raw_user_events / quarantined_events (with their checks), then "
    "update the listeners' stats and refresh the lists of listeners with new events.",
    tags={INGEST_TAG: "user-events"},
    executor_def=in_process_executor,
)

RETRY_BASE_SECONDS = 60
RETRY_MAX_SECONDS = 3600


def positions_key(topic: str, positions: dict[int, int | None]) -> str:
    """A readable, deterministic name of the stored positions, e.g. `user-events@0:120,1:98,2:start`."""
    parts = ",".join(f"{p}:{'start' if o is None else o}" for p, o in sorted(positions.items()))
    return f"{topic}@{parts}"


def ingest_run_key(topic: str, positions: dict[int, int | None], failed_attempts: int) -> str:
    """Same positions, same key: Dagster never launches two runs for one state of the topic. After a run for these
    positions failed (and its automatic retries too), a new attempt gets its own key."""
    key = positions_key(topic, positions)
    return key if failed_attempts == 0 else f"{key}#attempt{failed_attempts + 1}"


def retry_wait_seconds(failed_attempts: int) -> float:
    """Exponential back-off between sensor-level retries of a failing ingestion."""
    return min(RETRY_BASE_SECONDS * 2 ** max(failed_attempts - 1, 0), RETRY_MAX_SECONDS)


def positions_tag(key: str) -> str:
    return hashlib.sha1(key.encode()).hexdigest()[:16]


@sensor(
    job=ingest_user_events_job,
    # a tick is a few bounded fetches: cheap enough to look every 10 s (the freshness budget is a minute)
    minimum_interval_seconds=10,
    default_status=DefaultSensorStatus.RUNNING,
    description="Requests an ingestion run when a partition of the events topic has messages beyond the positions "
    "stored in raw_user_events' Delta log.",
)
def user_events_kafka_sensor(
    context: SensorEvaluationContext, kafka: KafkaResource, delta: DeltaLakeResource
):
    consumer = kafka.consumer(fetch_max_wait_ms=100, max_partition_fetch_bytes=64 * 1024)
    try:
        partitions = consumer.partitions_for_topic(kafka.topic)
        if not partitions:
            return SkipReason(f"topic {kafka.topic!r} does not exist yet")
        topic_id = kafka.topic_id()
        positions = read_positions(
            delta.table_uri(RAW_USER_EVENTS), kafka.topic, topic_id, partitions, delta.storage_options()
        )
        pending = pending_partitions(consumer, kafka.topic, positions, timeout_ms=3_000)
    finally:
        consumer.close()
    key = positions_key(kafka.topic, positions)
    if not pending:
        return SkipReason(f"no messages beyond the stored positions ({key})")

    in_flight = context.instance.get_runs(
        RunsFilter(job_name=ingest_user_events_job.name, statuses=IN_PROGRESS), limit=1
    )
    if in_flight:
        return SkipReason(f"ingestion run {in_flight[0].run_id} is still in progress")

    failed = context.instance.get_runs(
        RunsFilter(tags={POSITIONS_TAG: positions_tag(key)}, statuses=[DagsterRunStatus.FAILURE])
    )
    if failed:
        last_end = max((context.instance.get_run_record_by_id(r.run_id).end_time or 0) for r in failed)
        wait = retry_wait_seconds(len(failed)) - (time.time() - last_end)
        if wait > 0:
            return SkipReason(f"{len(failed)} ingestion run(s) for {key} failed; next attempt in {wait:.0f}s")
    return RunRequest(
        run_key=ingest_run_key(kafka.topic, positions, len(failed)),
        tags={POSITIONS_TAG: positions_tag(key)},
    )
