"""Drift and decay checks: each fires on a constructed shift and stays quiet on a stable replay."""

import random
from datetime import date, timedelta

import pyarrow as pa
import pytest
from dagster import AssetSelection, materialize
from deltalake import write_deltalake

from podrec_assets.defs.monitoring.checks import incoming_events_drift, ndcg_not_decayed
from podrec_assets.lib.monitoring.drift import PSI_WARN, band, day_drift, psi
from podrec_assets.names import DAILY_ENGAGEMENT, RAW_USER_EVENTS

DAY = date(2026, 4, 30)
MIX = {"play": 0.4, "complete": 0.25, "like": 0.15, "skip": 0.15, "rate": 0.05}
DEVICES = {"ios": 0.5, "android": 0.4, "web": 0.1}


def events_for(
    day: date, n: int, users: list[str], rng: random.Random, mix=MIX, devices=DEVICES
) -> list[dict]:
    return [{"event_date": day, "event_type": rng.choices(list(mix), list(mix.values()))[0],
             "device": rng.choices(list(devices), list(devices.values()))[0], "user_id": rng.choice(users)}
            for _ in range(n)]  # fmt: skip


def history(rng: random.Random, days: int = 56, per_day: int = 400) -> list[dict]:
    """A stable past: the same mix, ~400 events a day, 300 regular listeners plus a few new ones each day."""
    regulars = [f"u{i}" for i in range(300)]
    rows = []
    for n in range(days, 0, -1):
        day = DAY - timedelta(days=n)
        newcomers = [f"new-{day}-{i}" for i in range(5)]
        rows += events_for(day, rng.randint(per_day - 40, per_day + 40), regulars + newcomers, rng)
    return rows


SCHEMA = pa.schema([("event_date", pa.date32()), ("event_type", pa.string()), ("device", pa.string()),
                    ("user_id", pa.string())])  # fmt: skip


# daily_engagement's shape, one row: the checks read the newest partition from the Delta log
ONE_DAY_OF_ENGAGEMENT = pa.table({"user_id": ["u0"], "episode_id": ["e0"], "event_count": [1],
                                  "event_date": pa.array([DAY], pa.date32())})  # fmt: skip


def table(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=SCHEMA)


def test_psi_is_zero_for_the_same_shares_and_large_for_a_shift():
    assert psi({"a": 10, "b": 30}, {"a": 100, "b": 300}) == pytest.approx(0.0)
    assert psi({"a": 50, "b": 50}, {"a": 52, "b": 48}) < 0.01
    assert psi({"a": 50, "b": 50}, {"a": 90, "b": 10}) > PSI_WARN
    assert psi({"a": 1}, {"b": 1}) > 1  # a category only on one side
    assert psi({}, {"a": 3}) == 0.0  # nothing to compare with


def test_band_is_robust_and_never_too_narrow():
    low, high = band([100, 102, 98, 101, 99, 1000])  # one outlier does not widen it
    # median 100.5 ± 25%: the spread (MAD 1.5) is smaller
    assert (round(low, 1), round(high, 1)) == (75.4, 125.6)
    assert band([100, 140, 60, 120, 80]) == pytest.approx((100 - 4 * 1.4826 * 20, 100 + 4 * 1.4826 * 20))
    assert band([100] * 10) == (75.0, 125.0)  # no spread at all: ± MIN_BAND of the median


def test_a_stable_replay_is_quiet():
    rng = random.Random(1)
    rows = history(rng)
    regulars = [f"u{i}" for i in range(300)] + [f"new-{DAY}-{i}" for i in range(5)]
    drift = day_drift(table(rows + events_for(DAY, 400, regulars, rng)), DAY)
    assert drift.judged and drift.history_days == 28
    assert drift.mix_ok and drift.volume_ok and drift.new_listeners_ok, drift
    assert drift.psi_event_types < 0.05 and drift.psi_devices < 0.05


def test_each_shift_is_caught():
    rng = random.Random(2)
    rows = history(rng)
    regulars = [f"u{i}" for i in range(300)]
    skips = day_drift(table(rows + events_for(DAY, 400, regulars, rng, mix={"skip": 0.8, "play": 0.2})), DAY)
    assert not skips.mix_ok and skips.psi_event_types > PSI_WARN and skips.volume_ok
    web = day_drift(table(rows + events_for(DAY, 400, regulars, rng, devices={"web": 1.0})), DAY)
    assert not web.mix_ok and web.psi_devices > PSI_WARN and web.psi_event_types < 0.05
    flood = day_drift(table(rows + events_for(DAY, 2000, regulars, rng)), DAY)
    assert not flood.volume_ok and flood.mix_ok
    silence = day_drift(table(rows + events_for(DAY, 40, regulars, rng)), DAY)
    assert not silence.volume_ok
    strangers = [f"stranger-{i}" for i in range(200)]
    invasion = day_drift(table(rows + events_for(DAY, 400, strangers, rng)), DAY)
    assert not invasion.new_listeners_ok and invasion.new_listener_share == 1.0


def test_too_little_history_is_not_judged():
    rng = random.Random(3)
    rows = history(rng, days=3) + events_for(DAY, 5000, ["x"], rng, mix={"skip": 1.0})
    drift = day_drift(table(rows), DAY)
    assert not drift.judged and drift.mix_ok and drift.volume_ok  # nothing to compare with yet


def test_the_drift_checks_warn_on_the_newest_day(delta):
    rng = random.Random(4)
    listeners = [f"u{i}" for i in range(300)] + [f"new-{DAY}-{i}" for i in range(5)]
    rows = history(rng) + events_for(DAY, 400, listeners, rng, mix={"skip": 1.0})
    write_deltalake(delta.table_uri(RAW_USER_EVENTS), table(rows), partition_by=["event_date"])
    write_deltalake(
        delta.table_uri(DAILY_ENGAGEMENT), ONE_DAY_OF_ENGAGEMENT, partition_by=["event_date"]
    )  # as daily_engagement is: one partition a day
    result = materialize([incoming_events_drift], resources={"delta": delta},
                         selection=AssetSelection.checks(incoming_events_drift))  # fmt: skip
    verdicts = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert not verdicts["event_mix_stable"].passed and verdicts["event_mix_stable"].severity.value == "WARN"
    assert verdicts["event_mix_stable"].metadata["psi_event_types"].value > PSI_WARN
    assert verdicts["event_volume_in_band"].passed and verdicts["new_listener_share_in_band"].passed
    assert verdicts["event_mix_stable"].metadata["day"].value == DAY.isoformat()


def test_a_model_worse_than_its_predecessors_warns(tmp_path):
    from podrec_assets.defs.resources import ModelStoreResource

    models = ModelStoreResource(root=str(tmp_path))
    registry = models.registry("als")

    def judged(scores: list[float]) -> bool:
        for score in scores:
            # sortable by time, as real versions are
            version = f"2026050{len(registry.versions())}T000000Z-test"
            registry.staging(version)
            registry.publish(version, {"evaluation": {"metrics": {"als": {"ndcg@10": score}}}})
        result = materialize([ndcg_not_decayed], resources={"models": models},
                             selection=AssetSelection.checks(ndcg_not_decayed))  # fmt: skip
        (evaluation,) = result.get_asset_check_evaluations()
        return evaluation.passed

    assert judged([0.30])  # nothing to compare with
    assert judged([0.31, 0.29, 0.30])  # within 10% of the median before it
    assert not judged([0.24])  # 20% below


def test_a_drift_warning_starts_a_retrain_once_with_its_reason(delta):
    from dagster import DagsterInstance, SensorResult, build_sensor_context

    from podrec_assets.defs.monitoring.sensors import RETRAIN_REASON_TAG, drift_retrain_sensor

    instance = DagsterInstance.ephemeral()

    def evaluate(mix: dict) -> None:
        rng = random.Random(5)
        listeners = [f"u{i}" for i in range(300)] + [f"new-{DAY}-{i}" for i in range(5)]
        rows = history(rng) + events_for(DAY, 400, listeners, rng, mix=mix)
        write_deltalake(
            delta.table_uri(RAW_USER_EVENTS), table(rows), partition_by=["event_date"], mode="overwrite"
        )
        write_deltalake(delta.table_uri(DAILY_ENGAGEMENT), ONE_DAY_OF_ENGAGEMENT,
                        mode="overwrite", partition_by=["event_date"])  # fmt: skip
        assert materialize([incoming_events_drift], resources={"delta": delta}, instance=instance,
                           selection=AssetSelection.checks(incoming_events_drift)).success  # fmt: skip

    def tick(cursor=None) -> SensorResult:
        result = drift_retrain_sensor(build_sensor_context(instance=instance, cursor=cursor))
        assert isinstance(result, SensorResult)
        return result

    evaluate(MIX)  # a stable day: nothing to do
    quiet = tick()
    assert not quiet.run_requests
    evaluate({"skip": 1.0})  # the mix moved
    fired = tick(quiet.cursor)
    (request,) = fired.run_requests
    assert request.tags["podrec/retrain_check"] == "event_mix_stable"
    assert "psi_event_types" in request.tags[RETRAIN_REASON_TAG] and DAY.isoformat() in request.run_key
    assert not tick(fired.cursor).run_requests  # the same warning starts nothing again


def test_an_online_hit_rate_decay_starts_a_retrain_and_a_jump_does_not(delta):
    from dagster import DagsterInstance, build_sensor_context

    from podrec_assets.defs.feedback.assets import hit_rate_in_band, online_hit_rate
    from podrec_assets.defs.monitoring.sensors import RETRAIN_REASON_TAG, drift_retrain_sensor
    from podrec_assets.names import ONLINE_HIT_RATE

    instance = DagsterInstance.ephemeral()

    def judge(newest: float) -> None:
        rows = [{"day": date(2026, 4, d), "model_version": "v1", "strategy": "served", "arm": "main",
                 "impressions": 1000, "hits": 300 + (d % 3) * 10} for d in range(1, 11)]  # fmt: skip
        rows.append({"day": date(2026, 4, 11), "model_version": "v2", "strategy": "served", "arm": "main",
                     "impressions": 1000, "hits": int(newest * 1000)})  # fmt: skip
        frame = pa.Table.from_pylist(rows)
        frame = frame.append_column("hit_rate", pa.compute.divide(pa.compute.cast(frame["hits"], pa.float64()),
                                                                  frame["impressions"]))  # fmt: skip
        write_deltalake(delta.table_uri(ONLINE_HIT_RATE), frame, mode="overwrite", schema_mode="overwrite")
        assert materialize([online_hit_rate, hit_rate_in_band], resources={"delta": delta}, instance=instance,
                           selection=AssetSelection.checks(hit_rate_in_band)).success  # fmt: skip

    judge(0.60)  # twice the usual rate: out of band, but good news
    jump = drift_retrain_sensor(build_sensor_context(instance=instance))
    assert not jump.run_requests
    judge(0.05)  # listeners stopped playing what they are shown
    (request,) = drift_retrain_sensor(
        build_sensor_context(instance=instance, cursor=jump.cursor)
    ).run_requests
    assert request.tags["podrec/retrain_check"] == "hit_rate_in_band" and "2026-04-11" in request.run_key
    assert '"arms_below_band": ["main"]' in request.tags[RETRAIN_REASON_TAG]


def lists_table(top: dict[str, list[str]]) -> pa.Table:
    rows = [{"user_id": u, "rank": r, "episode_id": e}
            for u, episodes in top.items() for r, e in enumerate(episodes, 1)]  # fmt: skip
    return pa.Table.from_pylist(rows)


CATALOG = pa.table({"episode_id": [f"e{i}" for i in range(20)], "show": [f"s{i // 2}" for i in range(20)]})
ENGAGEMENT = pa.table({"episode_id": [f"e{i}" for i in range(20)], "event_count": list(range(100, 80, -1))})


def test_list_quality_measures_coverage_bias_and_diversity():
    from podrec_assets.lib.serving.quality import list_quality, quality_shift

    varied = {"u1": [f"e{i}" for i in range(0, 20, 2)], "u2": [f"e{i}" for i in range(1, 20, 2)]}
    figures = list_quality(lists_table(varied), CATALOG, ENGAGEMENT)
    # every episode shown; e0 and e1 (the 10% most engaged) are one of ten in each list; every show differs
    assert figures == {"listeners": 2, "coverage": 1.0, "popularity_bias": 0.1, "show_diversity": 1.0}
    samey = {u: ["e0", "e1"] + [f"e{i}" for i in range(2, 10)] for u in ("u1", "u2")}
    narrow = list_quality(lists_table(samey), CATALOG, ENGAGEMENT)
    assert narrow["coverage"] == 0.5 and narrow["show_diversity"] == 0.5 and narrow["popularity_bias"] == 0.2
    assert quality_shift(narrow, figures) == [
        "coverage fell from 1.0 to 0.5",
        "show_diversity fell from 1.0 to 0.5",
    ]
    assert quality_shift(figures, figures) == [] and quality_shift(figures, None) == []


def test_the_list_quality_check_warns_when_the_lists_narrow(delta):
    from dagster import DagsterInstance

    from podrec_assets.defs.monitoring.checks import list_quality_stable
    from podrec_assets.names import EPISODES, FINAL_RECOMMENDATIONS

    instance = DagsterInstance.ephemeral()
    write_deltalake(delta.table_uri(EPISODES), CATALOG)
    engagement = ENGAGEMENT.append_column("event_date", pa.array([DAY] * 20, pa.date32()))
    write_deltalake(delta.table_uri(DAILY_ENGAGEMENT), engagement, partition_by=["event_date"])

    def evaluate(top: dict[str, list[str]]):
        write_deltalake(delta.table_uri(FINAL_RECOMMENDATIONS), lists_table(top), mode="overwrite")
        result = materialize([list_quality_stable], resources={"delta": delta}, instance=instance,
                             selection=AssetSelection.checks(list_quality_stable))  # fmt: skip
        (evaluation,) = result.get_asset_check_evaluations()
        return evaluation

    assert evaluate(
        {"u1": [f"e{i}" for i in range(0, 20, 2)], "u2": [f"e{i}" for i in range(1, 20, 2)]}
    ).passed
    narrowed = evaluate({u: [f"e{i}" for i in range(10)] for u in ("u1", "u2")})
    assert not narrowed.passed and narrowed.severity.value == "WARN"
    assert "coverage fell from 1.0 to 0.5" in narrowed.metadata["problems"].value
