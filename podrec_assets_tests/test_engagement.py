"""daily_engagement on a real Spark Connect server and real Delta tables: weights, idempotent days, late events."""

from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
import pytest
from dagster import DagsterInstance, RunRequest, SkipReason, build_sensor_context, materialize
from deltalake import DeltaTable

from podrec_assets.defs.engagement.assets import daily_engagement
from podrec_assets.defs.engagement.sensors import late_events_sensor
from podrec_assets.defs.ingestion.assets import user_event_tables
from podrec_assets.lib.engagement.daily import count_mismatches, weight_bound_violations
from podrec_assets.lib.engagement.weights import EventWeights
from podrec_assets.lib.ingestion.contract import make_v1_event
from podrec_assets.names import DAILY_ENGAGEMENT
from podrec_assets_tests.helpers import partition_range_tags, produce, write_raw_events

DAY = date(2026, 3, 14)
NOON = datetime(2026, 3, 14, 12, tzinfo=UTC)


def event(
    n: int, event_type: str, user: str = "u1", episode: str | None = None, day_offset: int = 0, **fields
):
    return make_v1_event(
        event_id=f"ev-{event_type}-{n}-{day_offset}",
        user_id=user,
        episode_id=episode if episode is not None else f"ep-{n}",
        event_type=event_type,
        ts=NOON + timedelta(days=day_offset, minutes=n),
        **fields,
    )


def engagement_rows(delta) -> dict[tuple[str, str, date], dict]:
    table = DeltaTable(delta.table_uri(DAILY_ENGAGEMENT)).to_pyarrow_table()
    return {(r["user_id"], r["episode_id"], r["event_date"]): r for r in table.to_pylist()}


def run_days(first: date, last: date | None, resources: dict, instance=None, config: dict | None = None):
    last = last or first
    result = materialize(
        [daily_engagement],
        partition_key=first.isoformat() if first == last else None,
        tags=partition_range_tags(first, last) if first != last else None,
        resources=resources,
        instance=instance,
        run_config={"ops": {DAILY_ENGAGEMENT: {"config": config}}} if config else None,
    )
    assert result.success
    return result


@pytest.fixture
def resources(delta, pyspark_resource):
    return {"delta": delta, "pyspark": pyspark_resource}


def test_every_event_type_gets_its_weight(delta, resources):
    events = [
        event(1, "like"),
        event(2, "complete", played_pct=1.0),
        event(3, "rate", rating=5),
        event(4, "rate", rating=1),
        event(5, "rate", rating=3),
        event(6, "pause", played_pct=0.4),
        event(7, "abandon", played_pct=0.1),
        event(8, "skip"),
        event(9, "play"),
        event(10, "search_click"),
        event(11, "view"),
        event(12, "resume"),
        event(13, "search", episode=None, metadata={"query": "history"}),  # no episode: not engagement
        event(14, "login", episode=None),
        # two events on one pair add up, and the latest time is kept
        event(20, "play", episode="ep-sum"),
        event(21, "like", episode="ep-sum"),
    ]
    write_raw_events(delta, events)
    result = run_days(DAY, None, resources)

    rows = engagement_rows(delta)
    weights = {episode: row["weight_sum"] for (_, episode, _), row in rows.items()}
    assert weights == {
        "ep-1": 3.0, "ep-2": 2.0, "ep-3": 2.0, "ep-4": -2.0, "ep-5": 0.0, "ep-6": 0.4, "ep-7": -0.4,
        "ep-8": -2.0, "ep-9": 0.25, "ep-10": 0.5, "ep-11": 0.0, "ep-12": 0.0, "ep-sum": 3.25,
    }  # fmt: skip
    summed = rows[("u1", "ep-sum", DAY)]
    assert summed["event_count"] == 2 and summed["last_ts"] == NOON + timedelta(minutes=21)
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {"counts_match_raw_events": True, "no_null_keys": True, "weights_within_bounds": True}


def test_weights_are_configuration(delta, resources):
    write_raw_events(delta, [event(1, "skip"), event(2, "like")])
    run_days(DAY, None, resources, config={"weights": {"skip": -5.0, "like": 1.5}})
    assert {k[1]: r["weight_sum"] for k, r in engagement_rows(delta).items()} == {"ep-1": -5.0, "ep-2": 1.5}


def test_a_day_rematerialized_replaces_exactly_that_day(delta, resources):
    write_raw_events(
        delta, [event(n, "like", user=f"u{n % 3}", day_offset=d) for d in range(3) for n in range(12)]
    )
    run_days(DAY, DAY + timedelta(days=2), resources)  # one run for three days
    before = engagement_rows(delta)
    version = DeltaTable(delta.table_uri(DAILY_ENGAGEMENT)).version()

    run_days(DAY + timedelta(days=1), None, resources)
    run_days(DAY + timedelta(days=1), None, resources)
    after = engagement_rows(delta)
    assert after == before and len(after) == 36
    table = DeltaTable(delta.table_uri(DAILY_ENGAGEMENT))
    assert table.version() == version + 2
    # the other two days' files were not rewritten: only the re-run day's files changed
    added = {
        path.split("/")[0]
        for path in pa.table(table.get_add_actions(flatten=True)).column("path").to_pylist()
    }
    assert added == {f"event_date={DAY + timedelta(days=d)}" for d in range(3)}


def test_a_late_event_rematerializes_its_day(kafka, delta, pyspark_resource):
    """Ingest → engagement; a late event for that day arrives through Kafka; the sensor asks for that day again."""
    yesterday = (datetime.now(UTC) - timedelta(days=1)).replace(hour=10, minute=0, second=0, microsecond=0)
    day = yesterday.date().isoformat()
    on_time = [make_v1_event(event_id=f"a{i}", user_id="u1", episode_id="ep-1", event_type="play", ts=yesterday)
               for i in range(3)]  # fmt: skip
    resources = {"kafka": kafka, "delta": delta, "pyspark": pyspark_resource}
    with DagsterInstance.ephemeral() as instance:
        produce(kafka, on_time)
        materialize([user_event_tables], resources=resources, instance=instance)
        context = build_sensor_context(instance=instance)
        first = late_events_sensor(context)
        assert [r.partition_key for r in first.run_requests] == [day]
        materialize([daily_engagement], partition_key=day, resources=resources, instance=instance)
        assert engagement_rows(delta)[("u1", "ep-1", yesterday.date())]["event_count"] == 3

        context = build_sensor_context(instance=instance, cursor=first.cursor)
        assert not late_events_sensor(context).run_requests  # nothing new ingested since, nothing made stale
        context = build_sensor_context(instance=instance, cursor=late_events_sensor(context).cursor)
        assert isinstance(late_events_sensor(context), SkipReason)  # nothing new at all

        late = make_v1_event(event_id="late-1", user_id="u1", episode_id="ep-1", event_type="like",
                             ts=yesterday + timedelta(hours=3))  # fmt: skip
        produce(kafka, [late])
        materialize([user_event_tables], resources=resources, instance=instance)
        second = late_events_sensor(build_sensor_context(instance=instance, cursor=first.cursor))
        (request,) = second.run_requests
        assert isinstance(request, RunRequest) and request.partition_key == day and request.run_key != day
        materialize(
            [daily_engagement], partition_key=request.partition_key, resources=resources, instance=instance
        )
        row = engagement_rows(delta)[("u1", "ep-1", yesterday.date())]
        assert row["event_count"] == 4 and row["weight_sum"] == 3 * 0.25 + 3.0
        # a sensor with no cursor (the first `make dev` after `make demo`) does not rebuild a day that was built
        # after the ingestions that touched it
        assert late_events_sensor(build_sensor_context(instance=instance)).run_requests == []


def test_check_helpers_find_problems():
    days = [DAY, DAY + timedelta(days=1)]
    assert count_mismatches(days, {DAY: 3}, {DAY: 3}) == {}
    assert count_mismatches(days, {DAY: 3, days[1]: 1}, {DAY: 3}) == {
        days[1].isoformat(): {"raw_content_events": 1, "engagement_events": 0}
    }
    rows = pa.table({"event_count": [1, 2, 1, 1], "weight_sum": [3.0, 9.0, -4.5, -4.0]})
    # 9 > 2 × 4 and −4.5 < 1 × −4; −4 is a re-rating from 5 to 1
    assert weight_bound_violations(rows, EventWeights()) == 2
