"""Ingestion against a real Kafka-protocol broker and real Delta tables."""

import signal
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from deltalake import DeltaTable
from deltalake.exceptions import CommitFailedError

from podrec_assets.defs.ingestion.assets import open_sink
from podrec_assets.lib.ingestion.delta_sink import Messages, build_batch
from podrec_assets.lib.ingestion.kafka_to_delta import assign_at, pending_partitions, read_positions
from podrec_assets.lib.ingestion.tables import RAW_USER_EVENTS_SCHEMA
from podrec_assets.names import QUARANTINED_EVENTS, RAW_USER_EVENTS
from podrec_assets_tests.helpers import (
    ingest,
    ingest_in_subprocess,
    produce,
    quarantine,
    table,
    v1_events,
)
from podrec_assets_tests.test_contract import EXPECTED, INVALID


def test_every_invalid_kind_is_quarantined_with_its_reason_and_valid_events_around_them_land(kafka, delta):
    valid = v1_events(len(INVALID) + 1)
    messages, bad = [valid[0]], {}
    for i, case in enumerate(sorted(INVALID)):  # bad, good, bad, good, ...
        raw = INVALID[case] if isinstance(INVALID[case], bytes) else orjson.dumps(INVALID[case])
        messages += [raw, valid[i + 1]]
        bad[raw] = EXPECTED[case]
    produce(kafka, messages)

    report = ingest(kafka, delta)

    assert report.accepted == len(valid) and report.quarantined == len(INVALID)
    assert sorted(table(delta)["event_id"].to_pylist()) == sorted(e["event_id"] for e in valid)
    rejected = quarantine(delta)
    got = dict(zip(rejected["raw_value"].to_pylist(), rejected["reason_code"].to_pylist(), strict=True))
    assert got == bad  # every bad message, byte for byte, with its specific reason
    assert all(rejected["reason"].to_pylist()) and set(rejected["kafka_topic"].to_pylist()) == {kafka.topic}


def test_rows_keep_their_kafka_position_and_match_the_schema(kafka, delta):
    produce(kafka, v1_events(30))
    ingest(kafka, delta)
    rows = table(delta)
    assert rows.schema.remove_metadata().names == RAW_USER_EVENTS_SCHEMA.names
    positions = set(zip(rows["kafka_partition"].to_pylist(), rows["kafka_offset"].to_pylist(), strict=True))
    assert len(positions) == 30
    stored = read_positions(delta.table_uri(RAW_USER_EVENTS), kafka.topic, kafka.topic_id(), range(3))
    for partition in range(3):
        offsets = [o for p, o in positions if p == partition]
        assert stored[partition] == (max(offsets) + 1 if offsets else None)


def test_rerun_ingests_nothing_and_resent_event_ids_are_dropped(kafka, delta):
    events = v1_events(200)
    produce(kafka, events)
    first = ingest(kafka, delta)
    again = ingest(kafka, delta)
    assert (first.accepted, again.messages, again.accepted) == (200, 0, 0)

    produce(
        kafka, events[:50] + v1_events(10, prefix="new") + events[:5]
    )  # a replay and a retry, mixed with news
    third = ingest(kafka, delta)
    assert (third.messages, third.accepted, third.duplicates) == (65, 10, 55)
    ids = table(delta)["event_id"].to_pylist()
    assert len(ids) == len(set(ids)) == 210


def test_bounded_runs_resume_where_the_last_one_stopped(kafka, delta):
    produce(kafka, v1_events(1000))
    reports = []
    while not reports or not reports[-1].caught_up:
        reports.append(ingest(kafka, delta, max_events=300, batch_events=100))
    assert sum(r.messages for r in reports) == 1000
    assert all(r.messages <= 300 for r in reports) and len(reports) >= 4
    assert table(delta).num_rows == 1000


def test_crash_after_quarantine_commit_neither_loses_nor_doubles(kafka, delta):
    produce(kafka, v1_events(100) + [b"garbage-1", b"garbage-2"] + v1_events(100, prefix="late"))
    crashed = ingest_in_subprocess(kafka, delta, {"PODREC_CRASH_AT": QUARANTINED_EVENTS})
    assert crashed.wait(timeout=120) == -signal.SIGKILL
    assert quarantine(delta).num_rows == 2 and table(delta).num_rows == 0  # quarantine committed, events not

    report = ingest(kafka, delta)
    assert report.accepted == 200
    assert quarantine(delta).num_rows == 2  # not quarantined twice
    assert table(delta).num_rows == 200


def test_two_writers_racing_on_the_same_positions_cannot_both_commit(kafka, delta):
    produce(kafka, v1_events(20))
    first, second = open_sink(delta, kafka), open_sink(delta, kafka)
    consumer = kafka.consumer()
    messages = []
    assign_at(consumer, kafka.topic, {p: None for p in range(3)})
    while sum(len(m.offsets) for m in messages) < 20:
        messages += [
            Messages.from_records(tp.partition, rs) for tp, rs in consumer.poll(timeout_ms=2000).items()
        ]
    consumer.close()
    now = datetime.now(UTC)
    b1, b2 = build_batch(messages, first, {}, now), build_batch(messages, second, {}, now)
    first.commit(b1.events, b1.rejects, b1.next_offsets)
    with pytest.raises(CommitFailedError):
        second.commit(b2.events, b2.rejects, b2.next_offsets)
    assert DeltaTable(delta.table_uri(RAW_USER_EVENTS)).to_pyarrow_table().num_rows == 20


def test_pending_partitions_reads_the_broker_not_end_offsets(kafka, delta):
    consumer = kafka.consumer()
    try:
        assert pending_partitions(consumer, kafka.topic, {0: None, 1: None, 2: None}, timeout_ms=1500) == {}
        produce(kafka, v1_events(12))  # one batch per partition: Tansu's end_offsets() would say base + 1
        found = pending_partitions(consumer, kafka.topic, {0: None, 1: None, 2: None})
        assert found and all(offset == 0 for offset in found.values())
    finally:
        consumer.close()
    ingest(kafka, delta)
    positions = read_positions(delta.table_uri(RAW_USER_EVENTS), kafka.topic, kafka.topic_id(), range(3))
    consumer = kafka.consumer()
    try:
        assert pending_partitions(consumer, kafka.topic, positions, timeout_ms=1500) == {}
    finally:
        consumer.close()


def test_events_outside_a_days_window_land_in_their_own_date_partition(kafka, delta):
    start = datetime.now(UTC).replace(hour=23, minute=50, second=0, microsecond=0) - timedelta(days=2)
    produce(kafka, v1_events(5, start=start))  # 23:50, 23:57, 00:04 (next day), ...
    report = ingest(kafka, delta)
    assert report.event_dates == {start.date(), start.date() + timedelta(days=1)}
    partitions = DeltaTable(delta.table_uri(RAW_USER_EVENTS)).partitions()
    assert {p["event_date"] for p in partitions} == {d.isoformat() for d in report.event_dates}


def test_a_replay_restamped_onto_another_day_is_still_a_duplicate(kafka, delta):
    original = v1_events(10)
    produce(kafka, original)
    ingest(kafka, delta)
    restamped = [{**e, "ts": (datetime.now(UTC) - timedelta(days=40)).isoformat()} for e in original]
    produce(kafka, restamped)
    report = ingest(kafka, delta)
    assert (report.accepted, report.duplicates) == (0, 10)
    assert table(delta).num_rows == 10


def test_a_recreated_topic_is_read_from_its_start_and_nothing_lands_twice(kafka, delta):
    """Tansu loses its log on restart and Kafka topics get re-created: offsets start again at 0 under a new topic
    id. Positions are kept per topic id, so the new log is read from its start, not from offsets it never had."""
    from kafka.admin import KafkaAdminClient

    produce(kafka, v1_events(50))
    ingest(kafka, delta)
    old_id = kafka.topic_id()
    admin = KafkaAdminClient(**kafka.client_config())
    admin.delete_topics([kafka.topic])
    admin.close()
    kafka.ensure_topic()
    assert kafka.topic_id() != old_id

    produce(
        kafka, v1_events(50)[:10] + v1_events(20, prefix="after-reset")
    )  # a replay of 10 old ones, 20 new
    # a topic re-created a moment ago may serve nothing to the first poll (Tansu; seen once in CI): the sensor would
    # simply run again, and so does the test, a bounded number of times
    accepted = duplicates = runs = 0
    while (accepted, duplicates) != (20, 10) and runs < 5:
        report = ingest(kafka, delta)
        accepted, duplicates, runs = accepted + report.accepted, duplicates + report.duplicates, runs + 1
    assert (accepted, duplicates) == (20, 10)
    assert table(delta).num_rows == 70
