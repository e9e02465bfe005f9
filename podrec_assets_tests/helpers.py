"""Small helpers shared by the integration tests."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import orjson
import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

from podrec_assets.defs.ingestion.assets import open_sink
from podrec_assets.defs.resources import DeltaLakeResource, KafkaResource
from podrec_assets.lib.ingestion.batch_validation import validate_batch
from podrec_assets.lib.ingestion.contract import make_v1_event
from podrec_assets.lib.ingestion.kafka_to_delta import IngestLimits, IngestReport, ingest_pending
from podrec_assets.lib.ingestion.tables import RAW_USER_EVENTS_PARTITION_BY, RAW_USER_EVENTS_SCHEMA
from podrec_assets.names import QUARANTINED_EVENTS, RAW_USER_EVENTS

FAULT_INJECTION = Path(__file__).parent / "fault_injection"  # see its sitecustomize.py


def v1_events(n: int, prefix: str = "e", users: int = 20, start: datetime | None = None) -> list[dict]:
    """n valid events 7 minutes apart, the last one an hour ago unless `start` is given."""
    start = start or datetime.now(UTC) - timedelta(minutes=7 * n + 60)
    return [
        make_v1_event(
            event_id=f"{prefix}-{i}",
            user_id=f"u-{i % users}",
            episode_id=f"ep-{i % 37}",
            event_type=("play", "pause", "like", "complete", "skip")[i % 5],
            ts=start + timedelta(minutes=7 * i),
            played_pct=0.5 if i % 5 == 1 else None,
        )
        for i in range(n)
    ]


def produce(kafka: KafkaResource, messages: list) -> None:
    """Send dicts (as JSON, keyed by user_id) or raw bytes (unkeyed), in order, and wait for the acks."""
    producer = kafka.producer()
    for m in messages:
        if isinstance(m, dict):
            producer.send(kafka.topic, key=str(m.get("user_id", "")).encode(), value=orjson.dumps(m))
        else:
            producer.send(kafka.topic, value=m)
    producer.flush()
    producer.close()


def ingest(kafka: KafkaResource, delta: DeltaLakeResource, **limits) -> IngestReport:
    return ingest_pending(kafka.consumer, open_sink(delta, kafka), IngestLimits(**limits))


def table(delta: DeltaLakeResource, name: str = RAW_USER_EVENTS) -> pa.Table:
    return DeltaTable(delta.table_uri(name)).to_pyarrow_table()


def quarantine(delta: DeltaLakeResource) -> pa.Table:
    return table(delta, QUARANTINED_EVENTS)


def ingest_in_subprocess(kafka: KafkaResource, delta: DeltaLakeResource, extra_env: dict | None = None,
                         args: tuple[str, ...] = ()) -> subprocess.Popen:  # fmt: skip
    """`podrec ingest` in its own process, so a test can SIGKILL it."""
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers, "PODREC_EVENTS_TOPIC": kafka.topic,
           "PODREC_DELTA_ROOT": delta.root, **(extra_env or {})}  # fmt: skip
    if "PODREC_CRASH_AT" in env:  # fault_injection/sitecustomize.py kills it right after that table's commit
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(FAULT_INJECTION), os.environ.get("PYTHONPATH")])
        )
    return subprocess.Popen([sys.executable, "-m", "podrec_assets.tools.cli", "ingest", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip


def write_raw_events(delta: DeltaLakeResource, events: list[dict]) -> pa.Table:
    """Validated events appended to raw_user_events directly (no Kafka), as ingestion would store them."""
    validation = validate_batch([orjson.dumps(e) for e in events], datetime.now(UTC))
    assert not validation.rejects, validation.rejects[:3]
    n = validation.events.num_rows
    rows = pa.Table.from_arrays(
        [
            *validation.events.columns,
            pa.array(["test"] * n, pa.string()),
            pa.array([0] * n, pa.int32()),
            pa.array(range(n), pa.int64()),
            pa.array([datetime.now(UTC)] * n, RAW_USER_EVENTS_SCHEMA.field("ingested_at").type),
        ],
        schema=RAW_USER_EVENTS_SCHEMA,
    )
    write_deltalake(
        delta.table_uri(RAW_USER_EVENTS), rows, mode="append", partition_by=RAW_USER_EVENTS_PARTITION_BY
    )
    return rows


def partition_range_tags(first: date, last: date) -> dict[str, str]:
    """Run tags that make `materialize` run a range of daily partitions as one run (a single-run backfill), as
    `dagster asset materialize --partition-range` does."""
    return {
        "dagster/asset_partition_range_start": first.isoformat(),
        "dagster/asset_partition_range_end": last.isoformat(),
    }


def check_outcomes(result, instance) -> dict[str, bool]:
    """check name → passed, for every asset check a `materialize` run evaluated. Read from the instance's event log:
    the in-process result does not list the evaluations of checks defined apart from their asset."""
    from dagster import DagsterEventType

    events = instance.all_logs(result.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION)
    return {
        e.dagster_event.event_specific_data.check_name: e.dagster_event.event_specific_data.passed
        for e in events
    }
