"""The commit worker process: its failures reach the parent as exceptions, and it never outlives the parent."""

import os
import signal
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from deltalake import DeltaTable
from deltalake.exceptions import CommitFailedError

from podrec_assets.defs.ingestion.assets import open_sink
from podrec_assets.lib.ingestion.commit_worker import PARENT_PID_ENV, CommitWorkerError
from podrec_assets.lib.ingestion.delta_sink import Messages, build_batch
from podrec_assets.lib.ingestion.kafka_to_delta import IngestLimits, ingest_pending
from podrec_assets.names import RAW_USER_EVENTS
from podrec_assets_tests.helpers import ingest_in_subprocess, produce, table, v1_events


def commit_workers_of(parent_pid: int) -> list[int]:
    """PIDs of the live commit workers started by `parent_pid` (found by the variable it sets in their environment)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:  # gone, or not ours to read
            continue
        if f"{PARENT_PID_ENV}={parent_pid}".encode() in environ and state != "Z":
            found.append(int(entry.name))
    return found


def test_a_racing_writer_fails_the_run_with_commit_failed_error(kafka, delta):
    produce(kafka, v1_events(300))
    one_event = Messages(0, [0], [orjson.dumps(v1_events(1, prefix="rival")[0])], [None], [-1])

    def race(
        report,
    ):  # after the first commit, before the second is asked for: another run moves every position
        if report.commits == 1:
            rival = open_sink(delta, kafka)
            batch = build_batch([one_event], rival, {}, datetime.now(UTC))
            rival.commit(batch.events, batch.rejects, {p: 10**6 for p in range(kafka.partitions)})

    with pytest.raises(CommitFailedError) as raised:
        ingest_pending(kafka.consumer, open_sink(delta, kafka), IngestLimits(batch_events=100), on_batch=race)
    assert isinstance(raised.value.__cause__, CommitWorkerError)
    assert "Traceback" in str(raised.value.__cause__)  # the worker's own traceback comes along
    assert (
        table(delta).num_rows == 100 + 1
    )  # the first batch and the rival's event; nothing of the loser's second


def test_a_worker_that_dies_is_reported_not_waited_for(kafka, delta):
    produce(kafka, v1_events(300))

    def kill_worker(report):
        for pid in commit_workers_of(os.getpid()):
            os.kill(pid, signal.SIGKILL)

    started = time.monotonic()
    with pytest.raises(CommitWorkerError, match="exited with status -9"):
        ingest_pending(
            kafka.consumer, open_sink(delta, kafka), IngestLimits(batch_events=100), on_batch=kill_worker
        )
    assert time.monotonic() - started < 30
    assert commit_workers_of(os.getpid()) == []


@pytest.mark.slow
def test_the_worker_dies_with_its_parent(kafka, delta):
    produce(kafka, v1_events(20_000))
    process = ingest_in_subprocess(kafka, delta, args=("--batch-events", "500"))
    raw_uri = delta.table_uri(RAW_USER_EVENTS)
    deadline = time.monotonic() + 120
    while not DeltaTable.is_deltatable(raw_uri) or DeltaTable(raw_uri).version() < 1:  # committing by now
        assert process.poll() is None and time.monotonic() < deadline, (
            "the ingestion ended before it could be killed"
        )
        time.sleep(0.02)
    workers = commit_workers_of(process.pid)
    assert len(workers) == 1

    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=60) == -signal.SIGKILL
    deadline = time.monotonic() + 5
    while commit_workers_of(process.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert commit_workers_of(process.pid) == []  # no orphan left to commit later
    version = DeltaTable(raw_uri).version()
    time.sleep(1)
    assert DeltaTable(raw_uri).version() == version
