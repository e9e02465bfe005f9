"""The dashboard (`podrec dashboard`, apps/dashboard/ over lib/dashboard/).

- lib/dashboard's queries on small Delta tables written here, through DuckDB's delta extension and through
  delta-rs's Arrow datasets (the fallback), and on tables that do not exist yet;
- each page through Streamlit's AppTest (a two-line script that renders it), with the environment pointing at this
  test's Delta root, model root, MongoDB database and Dagster instance: the figures shown are the data written;
- every page on an empty system, and a listener id that looks like a MongoDB operator;
- one real browser (e2e, slow): `podrec dashboard` on a free port, each page opened in headless Chromium.
  PODREC_SCREENSHOTS=1 saves each page to docs/screenshots/dashboard-<page>.png.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from deltalake import write_deltalake

from podrec_assets.defs.resources import DeltaLakeResource
from podrec_assets.lib.content.tables import EPISODE_SIMILARITY_SCHEMA, EPISODES_SCHEMA
from podrec_assets.lib.dashboard.activity import live_activity, quarantine_over_time, quarantine_reasons
from podrec_assets.lib.dashboard.episodes import engagement_window, episodes_with_neighbours, similar_episodes
from podrec_assets.lib.dashboard.lake import Lake, delta_extension_path
from podrec_assets.lib.dashboard.listeners import (
    clean_listener_id,
    listener_history,
    listener_ids,
)
from podrec_assets.lib.dashboard.models import hit_rate_by_day, hit_rate_by_version_and_arm, registry_view
from podrec_assets.lib.engagement.daily import DAILY_ENGAGEMENT_SCHEMA
from podrec_assets.lib.feedback.hit_rate import HIT_RATE_SCHEMA
from podrec_assets.lib.ingestion.contract import MAX_ID_LENGTH, make_v1_event
from podrec_assets.lib.ingestion.tables import QUARANTINED_EVENTS_SCHEMA
from podrec_assets.lib.models.registry import ModelRegistry
from podrec_assets.lib.serving.lookup import COLD_START_USER, recommendations_for, stats_figures
from podrec_assets.names import (
    DAILY_ENGAGEMENT,
    EPISODE_SIMILARITY,
    EPISODES,
    ONLINE_HIT_RATE,
    QUARANTINED_EVENTS,
    RAW_USER_EVENTS,
    USER_RECOMMENDATIONS,
    USER_STATS,
)
from podrec_assets_tests.helpers import write_raw_events

REPO = Path(__file__).resolve().parents[1]
PODREC = Path(sys.executable).parent / "podrec"
CHROMIUM = os.environ.get("PODREC_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = REPO / "docs" / "screenshots"
PAGES = ("live", "episodes", "listener", "models", "quality")
READERS = ["duckdb", "delta-rs"]

# --- a small, fully known state -------------------------------------------------------------------------------------

CATALOG = [
    {"episode_id": "ep-1", "title": "Black Holes and Gravitational Waves", "show": "Cosmos Weekly",
     "categories": ["science"]},
    {"episode_id": "ep-2", "title": "We Tried to Start a Food Truck", "show": "Bad Ideas Hour",
     "categories": ["comedy", "business"]},
    {"episode_id": "ep-3", "title": "Trade Summit Ends With New Tariff Deal", "show": "World Desk Daily",
     "categories": ["news", "business"]},
    {"episode_id": "ep-4", "title": "A History of Pasta", "show": "Everyday Pasts", "categories": ["history"]},
]  # fmt: skip
TITLES = {e["episode_id"]: e["title"] for e in CATALOG}
ODD_ID = (
    "a.b$c 'quoted'"  # a listener id the contract accepts: it must be looked up as the plain string it is
)


def events(now: datetime) -> list[dict]:
    """Six events in the last hour by three listeners (u-1 three, u-2 two, u-3 one), two older ones."""
    rows = [
        ("u-1", "ep-1", "play", 50), ("u-1", "ep-1", "complete", 45), ("u-1", "ep-2", "like", 20),
        ("u-2", "ep-2", "play", 30), ("u-2", "ep-3", "skip", 10), ("u-3", "ep-3", "play", 5),
        ("u-4", "ep-4", "play", 180), (ODD_ID, "ep-4", "play", 2 * 24 * 60),
    ]  # fmt: skip
    return [
        make_v1_event(event_id=f"dash-{i}", user_id=user, episode_id=episode, event_type=kind,
                      ts=now - timedelta(minutes=minutes), played_pct=0.5 if kind == "play" else None)
        for i, (user, episode, kind, minutes) in enumerate(rows)
    ]  # fmt: skip


def write_quarantine(root: str, now: datetime) -> None:
    """Two messages quarantined five minutes ago, one three hours ago."""
    rows = [("not_json", 5), ("unknown_event_type", 5), ("not_json", 180)]
    table = pa.Table.from_pylist(
        [{"kafka_topic": "user-events", "kafka_partition": 0, "kafka_offset": i, "raw_text": f"bad {i}",
          "reason_code": code, "reason": f"{code} #{i}", "quarantined_at": now - timedelta(minutes=minutes)}
         for i, (code, minutes) in enumerate(rows)],
        schema=QUARANTINED_EVENTS_SCHEMA,
    )  # fmt: skip
    write_deltalake(f"{root}/{QUARANTINED_EVENTS}", table, mode="append")


def write_catalog(root: str) -> None:
    write_deltalake(f"{root}/{EPISODES}", pa.Table.from_pylist(CATALOG, schema=EPISODES_SCHEMA))


def write_daily(root: str, end: date) -> None:
    """Engagement over the 7 days up to `end`: ep-2 8.0 (u-1 5, u-2 3), ep-1 6.0, ep-5 (not in the catalog) 2.0,
    ep-3 -1.0; in the 7 days before: ep-1 4.0, ep-3 2.0."""
    rows = [("u-1", "ep-2", 0, 5.0), ("u-2", "ep-2", 1, 3.0), ("u-1", "ep-1", 2, 6.0), ("u-3", "ep-5", 3, 2.0),
            ("u-2", "ep-3", 0, -1.0), ("u-4", "ep-1", 8, 4.0), ("u-3", "ep-3", 10, 2.0)]  # fmt: skip
    table = pa.Table.from_pylist(
        [{"user_id": user, "episode_id": episode, "event_date": end - timedelta(days=back), "weight_sum": weight,
          "event_count": 2, "last_ts": datetime.combine(end - timedelta(days=back), datetime.min.time(), UTC)}
         for user, episode, back, weight in rows],
        schema=DAILY_ENGAGEMENT_SCHEMA,
    )  # fmt: skip
    write_deltalake(f"{root}/{DAILY_ENGAGEMENT}", table, partition_by=["event_date"])


def write_similarity(root: str) -> None:
    rows = [
        ("ep-1", "ep-2", 1, 0.8),
        ("ep-1", "ep-3", 2, 0.5),
        ("ep-2", "ep-1", 1, 0.8),
        ("ep-2", "ep-4", 2, 0.3),
    ]
    table = pa.Table.from_pylist(
        [
            {"episode_id": a, "similar_episode_id": b, "rank": r, "score": s, "model": "test"}
            for a, b, r, s in rows
        ],
        schema=EPISODE_SIMILARITY_SCHEMA,
    )
    write_deltalake(f"{root}/{EPISODE_SIMILARITY}", table)


def write_hit_rate(root: str, end: date) -> None:
    """Arm A (the ranker): 25 hits in 100 impressions; arm B (ALS alone): 15 in 100; 20.0% over all."""
    rows = [(end - timedelta(days=1), "A", "ranker", 40, 12), (end - timedelta(days=1), "B", "als", 40, 8),
            (end, "A", "ranker", 60, 13), (end, "B", "als", 60, 7)]  # fmt: skip
    table = pa.Table.from_pylist(
        [{"day": day, "model_version": "als-2", "strategy": strategy, "arm": arm, "impressions": shown, "hits": hits,
          "hit_rate": hits / shown} for day, arm, strategy, shown, hits in rows],
        schema=HIT_RATE_SCHEMA,
    )  # fmt: skip
    write_deltalake(f"{root}/{ONLINE_HIT_RATE}", table)


def publish_models(root: Path, now: datetime) -> None:
    """Two ALS versions (als-1, then als-2, current) and one ranker (current), judged against als-2."""
    import lightgbm as lgb

    from podrec_assets.lib.ranking.candidates import FEATURES
    from podrec_assets.lib.ranking.ranker import Ranker

    als = ModelRegistry(root, "als")
    for version, days_ago, ndcg in (("als-1", 2, 0.30), ("als-2", 1, 0.35)):
        als.staging(version)
        als.publish(version, {
            "version": version, "created_at": (now - timedelta(days=days_ago)).isoformat(),
            "evaluation": {"k": 10, "users_evaluated": 50, "protocol": "temporal hold-out",
                           "metrics": {"als": {"ndcg@10": ndcg, "recall@10": 0.5},
                                       "popularity": {"ndcg@10": 0.20, "recall@10": 0.3}}},
            "gate": {"passed": True, "verdict": f"nDCG {ndcg} beats popularity's 0.2"},
        })  # fmt: skip
        als.promote(version, "test")
    rankers = ModelRegistry(root, "ranker")
    staged = rankers.staging("ranker-1")
    rng = np.random.default_rng(0)
    params = {"objective": "regression", "verbose": -1, "num_leaves": 2, "min_data_in_leaf": 1}
    data = lgb.Dataset(rng.random((20, len(FEATURES))), label=rng.random(20))
    booster = lgb.train(params, data, num_boost_round=1)
    Ranker(booster).save(staged)
    metrics = {"ranker": 0.40, "als": 0.35, "hybrid": 0.36, "popularity": 0.20}
    rankers.publish("ranker-1", {
        "version": "ranker-1", "created_at": (now - timedelta(hours=20)).isoformat(), "als_version": "als-2",
        "gate": {"k": 10, "passed": True, "policy": "ranker", "listeners_judged": 40, "verdict": "the ranker serves",
                 "metrics": {model: {"ndcg@10": value} for model, value in metrics.items()}},
    })  # fmt: skip
    rankers.promote("ranker-1", "test")


def write_mongo(db) -> None:
    generated = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
    lists = {"u-1": ["ep-3", "ep-4", "ep-2"], ODD_ID: ["ep-1"], COLD_START_USER: ["ep-2", "ep-1"]}
    db[USER_RECOMMENDATIONS].insert_many([
        {"_id": user, "model_version": "als-2", "generated_at": generated, "strategy": "ranker",
         "episode_ids": episodes, "titles": [TITLES[e] for e in episodes],
         "scores": [0.9 - 0.1 * i for i in range(len(episodes))],
         "reasons": ["because you liked Food Trucks"] * len(episodes), "sources": ["als"] * len(episodes)}
        for user, episodes in lists.items()
    ])  # fmt: skip
    db[USER_STATS].insert_one({"_id": "u-1", "user_id": "u-1", "events_total": 12, "completes": 4, "likes": 3,
                               "skips": 1, "listening_ms": 5_400_000, "ratings": {"count": 2, "sum": 9},
                               "first_event_at": generated, "last_event_at": generated})  # fmt: skip


@dataclass
class State:
    delta: str
    models: Path
    dagster_home: Path
    now: datetime


def build_state(delta: DeltaLakeResource, tmp_path: Path, dagster: bool = True) -> State:
    """Every table and model the pages read, written now (the Live window is the wall clock's last hour)."""
    now = datetime.now(UTC)
    write_raw_events(delta, events(now))
    write_quarantine(delta.root, now)
    write_catalog(delta.root)
    write_daily(delta.root, now.date() - timedelta(days=1))
    write_similarity(delta.root)
    write_hit_rate(delta.root, now.date() - timedelta(days=1))
    publish_models(tmp_path / "models", now)
    home = tmp_path / "dagster_home"
    if dagster:
        report_checks(home)
    return State(delta.root, tmp_path / "models", home, now)


def report_checks(home: Path) -> None:
    """Check outcomes in a Dagster instance of its own: quarantine_rate failed after passing, unique_event_id
    passed, catalog_well_formed warned (non-blocking)."""
    from dagster import AssetCheckEvaluation, AssetCheckSeverity, AssetKey, DagsterInstance

    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    previous = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(home)
    try:
        with DagsterInstance.get() as instance:
            for evaluation in (
                AssetCheckEvaluation(asset_key=AssetKey(RAW_USER_EVENTS), check_name="quarantine_rate", passed=True,
                                     metadata={"rate": 0.01}, blocking=True),
                AssetCheckEvaluation(asset_key=AssetKey(RAW_USER_EVENTS), check_name="unique_event_id", passed=True),
                AssetCheckEvaluation(asset_key=AssetKey(RAW_USER_EVENTS), check_name="quarantine_rate", passed=False,
                                     metadata={"rate": 0.2, "max_rate": 0.05}, blocking=True),
                AssetCheckEvaluation(asset_key=AssetKey(EPISODES), check_name="catalog_well_formed", passed=False,
                                     severity=AssetCheckSeverity.WARN),
            ):  # fmt: skip
                instance.report_runless_asset_event(evaluation)
    finally:
        if previous is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = previous


def point_at(monkeypatch, state: State, mongo=None) -> None:
    """The dashboard's environment: this test's Delta root, models, Dagster instance and MongoDB database."""
    monkeypatch.setenv("PODREC_DELTA_ROOT", state.delta)
    monkeypatch.setenv("PODREC_MODEL_ROOT", str(state.models))
    monkeypatch.setenv("DAGSTER_HOME", str(state.dagster_home))
    if mongo is not None:
        monkeypatch.setenv("MONGO_URI", mongo.uri)
        monkeypatch.setenv("MONGO_DB", mongo.database)


def page(tmp_path: Path, name: str):
    """AppTest of one page: a script that renders just that view, run once."""
    from streamlit.testing.v1 import AppTest

    script = tmp_path / f"dashboard_{name}.py"
    script.write_text(f"from podrec_assets.apps.dashboard.views import {name}\n\n{name}.render()\n")
    app = AppTest.from_file(str(script), default_timeout=60)
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def metrics(app) -> dict[str, str]:
    return {m.label: m.value for m in app.metric}


def texts(elements) -> str:
    return "\n".join(e.value for e in elements)


# --- lib/dashboard --------------------------------------------------------------------------------------------------


def test_the_delta_extension_ships_with_the_package():
    path = delta_extension_path()
    assert path is not None and path.is_file(), "duckdb-ext-delta's delta.duckdb_extension not found"
    with Lake("/nonexistent") as lake:
        assert lake.reader == "duckdb"


def test_without_the_extension_delta_rs_reads_the_tables(delta, monkeypatch):
    from podrec_assets.lib.dashboard import lake as lake_module

    write_catalog(delta.root)
    write_similarity(delta.root)
    monkeypatch.setattr(lake_module, "_shared", {})  # a process that has not loaded it yet...
    monkeypatch.setattr(lake_module, "delta_extension_path", lambda: None)  # ...and cannot
    with Lake(delta.root) as lake:
        assert lake.reader == "delta-rs"
        assert list(similar_episodes(lake, "ep-1")["title"]) == [TITLES["ep-2"], TITLES["ep-3"]]


@pytest.mark.parametrize("reader", READERS)
def test_live_activity_counts_the_window(delta, reader):
    written = datetime.now(UTC)
    write_raw_events(delta, events(written))
    write_quarantine(delta.root, written)
    with Lake(delta.root, reader=reader) as lake:
        assert lake.reader == reader
        activity = live_activity(lake, 60)
    assert (activity.events, activity.listeners) == (6, 3)
    assert activity.per_minute["events"].sum() == 6
    by_type = activity.per_minute.groupby("event_type")["events"].sum().to_dict()
    assert by_type == {"play": 3, "complete": 1, "like": 1, "skip": 1}
    assert str(activity.per_minute["minute"].dtype) == "datetime64[us, UTC]"
    # every stored event arrived just now; two of the three quarantined messages arrived in the window
    assert (activity.stored, activity.quarantined) == (8, 2)
    assert activity.quarantine_rate == pytest.approx(2 / 10)
    assert activity.quarantine_rate_total == pytest.approx(3 / 11)
    assert activity.newest_event is not None
    assert abs(activity.newest_event - (written - timedelta(minutes=5))) < timedelta(seconds=1)
    assert activity.events_per_minute == pytest.approx(6 / 60)


@pytest.mark.parametrize("reader", READERS)
def test_every_query_answers_nothing_yet_without_tables(tmp_path, reader):
    with Lake(str(tmp_path / "no-delta-here"), reader=reader) as lake:
        activity = live_activity(lake, 30)
        assert not activity.has_events and not activity.has_quarantine
        assert activity.events == activity.listeners == 0 and activity.per_minute.empty
        assert activity.quarantine_rate is None and activity.newest_event is None
        window = engagement_window(lake, 7)
        assert window.end is None and window.top_episodes.empty and window.categories.empty
        assert episodes_with_neighbours(lake).empty and similar_episodes(lake, "ep-1").empty
        assert listener_history(lake, "u-1").empty
        assert quarantine_over_time(lake).empty and quarantine_reasons(lake).empty
        assert hit_rate_by_version_and_arm(lake) is None and hit_rate_by_day(lake) is None
    view = registry_view(tmp_path / "no-models", "als")
    assert view.current is None and view.versions.empty and view.metrics.empty


@pytest.mark.parametrize("reader", READERS)
def test_engagement_window_top_episodes_and_categories(delta, reader):
    end = date(2026, 11, 26)
    write_catalog(delta.root)
    write_daily(delta.root, end)
    with Lake(delta.root, reader=reader) as lake:
        week = engagement_window(lake, 7)
        month = engagement_window(lake, 30, top_n=2)
    assert (week.start, week.end) == (end - timedelta(days=6), end)
    assert (week.engagement, week.listeners, week.episodes, week.events) == (15.0, 3, 4, 10)
    top = week.top_episodes
    assert list(top["episode_id"]) == ["ep-2", "ep-1", "ep-5", "ep-3"]
    assert list(top["rank"]) == [1, 2, 3, 4]
    assert top.iloc[0]["title"] == TITLES["ep-2"] and top.iloc[0]["show"] == "Bad Ideas Hour"
    assert top.iloc[0]["listeners"] == 2 and top.iloc[0]["engagement"] == 8.0
    assert top.iloc[2]["title"] is None  # ep-5 is not in the catalog: it keeps its id only
    categories = week.categories.set_index("category")
    assert list(week.categories["category"]) == ["comedy", "business", "science", "news"]
    assert categories.loc["business", "engagement"] == 7.0  # ep-2's 8 and ep-3's -1
    assert categories.loc["business", "previous_engagement"] == 2.0
    assert categories.loc["science", "change"] == 2.0 and categories.loc["news", "change"] == -3.0
    assert categories.loc["business", "episodes"] == 2
    assert list(month.top_episodes["episode_id"]) == ["ep-1", "ep-2"]  # ep-1: 6 + 4
    assert month.top_episodes.iloc[0]["engagement"] == 10.0


@pytest.mark.parametrize("reader", READERS)
def test_similar_episodes_with_titles(delta, reader):
    write_catalog(delta.root)
    write_similarity(delta.root)
    with Lake(delta.root, reader=reader) as lake:
        options = episodes_with_neighbours(lake)
        neighbours = similar_episodes(lake, "ep-1")
        none = similar_episodes(lake, "ep-1' OR '1'='1")
    assert list(options["episode_id"]) == ["ep-1", "ep-2"]  # by title: Black Holes, We Tried
    assert list(neighbours["similar_episode_id"]) == ["ep-2", "ep-3"]
    assert list(neighbours["title"]) == [TITLES["ep-2"], TITLES["ep-3"]]
    assert list(neighbours["score"]) == pytest.approx([0.8, 0.5])
    assert none.empty


@pytest.mark.parametrize("reader", READERS)
def test_listener_history_newest_first_with_titles(delta, reader):
    now = datetime.now(UTC)
    write_raw_events(delta, events(now))
    write_catalog(delta.root)
    with Lake(delta.root, reader=reader) as lake:
        history = listener_history(lake, "u-1")
        odd = listener_history(lake, ODD_ID)
        injected = listener_history(lake, "u-1' OR '1'='1")
    assert list(history["event_type"]) == ["like", "complete", "play"]
    assert list(history["title"]) == [TITLES["ep-2"], TITLES["ep-1"], TITLES["ep-1"]]
    assert history["ts"].is_monotonic_decreasing
    assert list(odd["episode_id"]) == ["ep-4"]
    assert injected.empty


def test_short_version():
    from podrec_assets.apps.dashboard.views.models import short_version

    assert short_version("20261127T121552Z-c86139b4") == "2026-11-27 12:15"
    assert short_version("als-2") == "als-2" and short_version("") == "none"


def test_clean_listener_id():
    assert clean_listener_id("  u-1 ") == "u-1"
    assert clean_listener_id(ODD_ID) == ODD_ID  # `$`, `.` and quotes are plain characters of an id
    assert clean_listener_id('{"$ne": null}') == '{"$ne": null}'
    for bad in ("", "   ", "x" * (MAX_ID_LENGTH + 1), "a\nb", "nul\x00", None, 7, {"$ne": None}, ["u-1"]):
        assert clean_listener_id(bad) is None, bad


def test_stats_figures():
    figures = stats_figures({"events_total": 12, "completes": 4, "likes": 3, "skips": 1,
                             "listening_ms": 5_400_000, "ratings": {"count": 2, "sum": 9}})  # fmt: skip
    assert figures == {"events": 12, "completes": 4, "likes": 3, "skips": 1, "hours": 1.5, "mean_rating": 4.5}
    assert set(stats_figures(None).values()) == {None}


def test_registry_view_and_online_hit_rate(delta, tmp_path):
    now = datetime.now(UTC)
    publish_models(tmp_path / "models", now)
    als, ranker = registry_view(tmp_path / "models", "als"), registry_view(tmp_path / "models", "ranker")
    assert als.current == "als-2" and list(als.versions["version"]) == ["als-1", "als-2"]
    assert list(als.versions["current"]) == [False, True] and als.versions["passed"].all()
    ndcg = als.metrics[(als.metrics["metric"] == "ndcg@10") & (als.metrics["model"] == "als")]
    assert list(ndcg["value"]) == [0.30, 0.35]
    assert ranker.versions.iloc[0]["als_version"] == "als-2" and ranker.versions.iloc[0]["judged"] == 40
    assert set(ranker.metrics["model"]) == {"ranker", "als", "hybrid", "popularity"}
    write_hit_rate(delta.root, date(2026, 11, 26))
    with Lake(delta.root) as lake:
        arms, days = hit_rate_by_version_and_arm(lake), hit_rate_by_day(lake)
    assert arms is not None and days is not None
    by_arm = arms.set_index("arm")
    assert by_arm.loc["A", "impressions"] == 100 and by_arm.loc["A", "hits"] == 25
    assert by_arm.loc["A", "hit_rate"] == pytest.approx(0.25) and by_arm.loc[
        "B", "hit_rate"
    ] == pytest.approx(0.15)
    assert by_arm.loc["A", "days"] == 2 and by_arm.loc["A", "strategy"] == "ranker"
    assert len(days) == 4 and days["hit_rate"].between(0, 1).all()


@pytest.mark.parametrize("reader", READERS)
def test_quarantine_over_time_and_reasons(delta, reader):
    now = datetime(2026, 11, 27, 12, 30, tzinfo=UTC)
    write_quarantine(delta.root, now)
    with Lake(delta.root, reader=reader) as lake:
        hourly, daily = quarantine_over_time(lake, "hour"), quarantine_over_time(lake, "day")
        reasons = quarantine_reasons(lake)
        with pytest.raises(ValueError):
            quarantine_over_time(lake, "minute; DROP TABLE x")  # type: ignore[arg-type]
    assert daily["messages"].sum() == 3 and len(daily) == 2  # one day, two reasons
    assert len(hourly) == 3  # 09:00 not_json, 12:00 not_json and unknown_event_type
    assert list(reasons["reason_code"]) == ["not_json", "unknown_event_type"]
    assert list(reasons["messages"]) == [2, 1] and reasons.iloc[0]["topics"] == "user-events"
    assert reasons.iloc[0]["example"] == "not_json #0"  # the newest message's reason


def test_check_history_from_a_dagster_instance(tmp_path, monkeypatch):
    from podrec_assets.apps.dashboard.checks import load_check_history

    report_checks(tmp_path / "dagster_home")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    history = load_check_history()
    assert history.problem is None
    assert len(history.executions) == 4
    latest = history.latest.set_index("check")["outcome"].to_dict()
    assert latest == {
        "quarantine_rate": "failed",
        "catalog_well_formed": "warned",
        "unique_event_id": "passed",
    }
    assert list(history.latest["check"])[0] == "quarantine_rate"  # failing first
    failed = history.latest.iloc[0]
    assert failed["blocking"]
    assert "rate=0.2" in failed["details"]
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "no-instance"))
    missing = load_check_history()
    assert missing.executions.empty and "does not exist" in (missing.problem or "")
    assert not (tmp_path / "no-instance").exists()  # nothing created


def test_a_check_that_raises_in_a_run_is_an_execution_failure(tmp_path, monkeypatch):
    from dagster import AssetCheckResult, DagsterInstance, asset, asset_check, materialize

    from podrec_assets.apps.dashboard.checks import load_check_history

    @asset(name="checked")
    def checked():  # no annotations: this module's are strings, which Dagster cannot resolve in a local scope
        return None

    @asset_check(asset=checked)
    def holds():
        return AssetCheckResult(passed=True)

    @asset_check(asset=checked)
    def breaks():
        raise RuntimeError("the check's own bug")

    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with DagsterInstance.get() as instance:
        assert not materialize([checked, holds, breaks], instance=instance, raise_on_error=False).success
    latest = load_check_history().latest.set_index("check")
    assert (
        latest.loc["breaks", "outcome"] == "execution failed" and latest.loc["holds", "outcome"] == "passed"
    )
    assert latest.loc["breaks", "run_id"] == latest.loc["holds", "run_id"] != ""


def test_listener_ids_and_exact_lookups(db):
    write_mongo(db)
    assert listener_ids(db) == sorted(["u-1", ODD_ID])  # the cold-start list is not a listener
    own = recommendations_for(db, ODD_ID)
    assert [r["recommended_episode_id"] for r in own] == ["ep-1"] and own[0]["user_id"] == ODD_ID
    for operator_like in ('{"$ne": null}', "$where", "u-1.x", "u-1' || '1'=='1"):
        found = recommendations_for(db, operator_like)
        assert {r["user_id"] for r in found} == {COLD_START_USER}, (
            operator_like
        )  # only the new listeners' list


# --- the pages, through AppTest -------------------------------------------------------------------------------------


def test_live_page(delta, tmp_path, monkeypatch):
    state = build_state(delta, tmp_path, dagster=False)
    point_at(monkeypatch, state)
    app = page(tmp_path, "live")
    assert metrics(app) == {"Events": "6", "Events per minute": "0.1", "Active listeners": "3",
                            "Quarantine rate": "20.00%"}  # fmt: skip
    assert app.get("vega_lite_chart"), "no chart of events per minute"
    assert "quarantine rate all time 27.27%" in texts(app.caption)
    app.slider(key="live_minutes").set_value(
        5
    ).run()  # only u-3's play (5 min ago) is at the edge: none inside
    assert metrics(app)["Events"] == "0" and "Widen the window" in texts(app.info)
    app.slider(key="live_minutes").set_value(240).run()
    assert metrics(app)["Events"] == "7" and metrics(app)["Active listeners"] == "4"


def test_episodes_page(delta, tmp_path, monkeypatch):
    state = build_state(delta, tmp_path, dagster=False)
    point_at(monkeypatch, state)
    app = page(tmp_path, "episodes")
    assert metrics(app) == {"Top episode": TITLES["ep-2"], "Top category": "comedy", "Engagement": "15",
                            "Listeners": "3", "Episodes listened to": "4"}  # fmt: skip
    top, categories, similar = (frame.value for frame in app.dataframe)
    assert list(top["label"]) == [
        TITLES["ep-2"],
        TITLES["ep-1"],
        "ep-5",
        TITLES["ep-3"],
    ]  # ep-5: not in the catalog
    assert list(categories["category"]) == ["comedy", "business", "science", "news"]
    assert list(similar["title"]) == [TITLES["ep-2"], TITLES["ep-3"]]  # ep-1 is first by title
    app.selectbox(key="similar_to").select("ep-2").run()
    assert list(app.dataframe[2].value["title"]) == [TITLES["ep-1"], TITLES["ep-4"]]
    app.radio(key="episodes_days").set_value(30).run()
    assert metrics(app)["Top episode"] == TITLES["ep-1"] and metrics(app)["Engagement"] == "21"


def test_listener_page(delta, tmp_path, monkeypatch, mongo, db):
    state = build_state(delta, tmp_path, dagster=False)
    write_mongo(db)
    point_at(monkeypatch, state, mongo)
    app = page(tmp_path, "listener")
    assert app.selectbox(key="listener_pick").value == ODD_ID  # the first id: "a" < "u"
    app.selectbox(key="listener_pick").select("u-1").run()
    assert metrics(app) == {"Recommendations": "3", "Events": "12", "Completes": "4", "Likes": "3", "Skips": "1",
                            "Hours listened": "1.5"}  # fmt: skip
    recommendations, history = (frame.value for frame in app.dataframe)
    assert list(recommendations["title"]) == [TITLES[e] for e in ("ep-3", "ep-4", "ep-2")]
    assert list(recommendations["score"].round(2)) == [0.9, 0.8, 0.7]
    assert set(recommendations["reason"]) == {"because you liked Food Trucks"}
    assert list(history["event_type"]) == ["like", "complete", "play"]  # newest first
    assert list(history["title"]) == [TITLES["ep-2"], TITLES["ep-1"], TITLES["ep-1"]]
    # an id holding `$`, `.`, spaces and quotes is a listener like any other
    app.text_input(key="listener_typed").input(ODD_ID).run()
    assert not app.exception and metrics(app)["Recommendations"] == "1"
    assert list(app.dataframe[1].value["episode_id"]) == ["ep-4"]
    # what looks like an operator is looked up as a string: nobody, so the new listeners' list is shown
    app.text_input(key="listener_typed").input('{"$ne": null}').run()
    assert not app.exception
    assert "No listener" in texts(app.warning) and COLD_START_USER in texts(app.info)
    assert metrics(app)["Recommendations"] == "0"


def test_models_page(delta, tmp_path, monkeypatch):
    state = build_state(delta, tmp_path, dagster=False)
    point_at(monkeypatch, state)
    app = page(tmp_path, "models")
    assert metrics(app) == {"Serving strategy": "ranker", "ALS version": "als-2", "Ranker version": "ranker-1",
                            "Online hit rate": "20.0%"}  # fmt: skip
    assert app.metric[1].help == "version als-2"
    assert "passed its gate against ALS als-2" in texts(app.caption)
    als_versions, ranker_versions, arms = (frame.value for frame in app.dataframe)
    assert list(als_versions["version"]) == ["als-2", "als-1"]  # newest first
    assert list(ranker_versions["als_version"]) == ["als-2"]
    assert dict(zip(arms["arm"], arms["hit_rate"].round(2), strict=True)) == {"A": 0.25, "B": 0.15}
    assert len(app.get("vega_lite_chart")) == 3  # ALS, ranker, online
    app.selectbox(key="models_metric").select("recall@10").run()
    assert not app.exception


def test_models_page_before_any_impression(delta, tmp_path, monkeypatch):
    state = build_state(delta, tmp_path, dagster=False)
    (Path(state.delta) / ONLINE_HIT_RATE).rename(Path(state.delta) / "set-aside")
    point_at(monkeypatch, state)
    app = page(tmp_path, "models")
    assert metrics(app)["Online hit rate"] == "-"
    assert "No impressions yet" in texts(app.info)


def test_quality_page(delta, tmp_path, monkeypatch):
    state = build_state(delta, tmp_path)
    point_at(monkeypatch, state)
    app = page(tmp_path, "quality")
    assert metrics(app) == {"Checks": "3", "Passing": "1", "Failing": "1", "Warning": "1",
                            "Quarantined messages": "3", "Reasons": "2",
                            "Last quarantined": "5 min ago"}  # fmt: skip
    checks, reasons = (frame.value for frame in app.dataframe)
    assert list(checks["outcome"]) == ["failed", "warned", "passed"]
    assert list(reasons["reason_code"]) == ["not_json", "unknown_event_type"]
    assert len(app.get("vega_lite_chart")) == 2
    assert app.radio(key="quality_bucket").value == "hour"  # three hours of quarantine read best by the hour
    app.radio(key="quality_bucket").set_value("day").run()
    assert not app.exception and metrics(app)["Quarantined messages"] == "3"


@pytest.mark.parametrize("name", PAGES)
def test_every_page_on_an_empty_system(name, tmp_path, monkeypatch, mongo, db):
    empty = State(str(tmp_path / "delta"), tmp_path / "models", tmp_path / "dagster_home", datetime.now(UTC))
    point_at(monkeypatch, empty, mongo)
    app = page(tmp_path, name)
    said = texts(app.info)
    assert "yet" in said, said
    assert not app.error, texts(app.error)
    assert (
        not (tmp_path / "delta").exists() and not (tmp_path / "dagster_home").exists()
    )  # reading creates nothing


def test_a_page_says_so_when_mongodb_is_down(tmp_path, monkeypatch):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    try:
        empty = State(
            str(tmp_path / "delta"), tmp_path / "models", tmp_path / "dagster_home", datetime.now(UTC)
        )
        point_at(monkeypatch, empty)
        monkeypatch.setenv("MONGO_URI", f"mongodb://someone:secret@127.0.0.1:{closed.getsockname()[1]}")
        app = page(tmp_path, "listener")
    finally:
        closed.close()
    said = texts(app.error)
    assert "MongoDB is not reachable" in said and "secret" not in said


def test_the_app_has_every_page(delta, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from podrec_assets.apps.dashboard import APP

    state = build_state(delta, tmp_path, dagster=False)
    point_at(monkeypatch, state)
    app = AppTest.from_file(str(APP), default_timeout=60)
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    assert app.title[0].value == "Live" and metrics(app)["Events"] == "6"  # the default page


# --- a real browser -------------------------------------------------------------------------------------------------

# the figure each page is checked by: the label of one of its st.metric and the value it must show
HEADLINES = {
    "live": ("Active listeners", "3"),
    "episodes": ("Top episode", TITLES["ep-2"]),
    "listener": ("Recommendations", "1"),  # the first listener by id is ODD_ID, with one recommendation
    "models": ("Online hit rate", "20.0%"),
    "quality": ("Failing", "1"),
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(url: str, process: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"`podrec dashboard` exited with {process.returncode}")
        with suppress(OSError), urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
            if response.status == 200:
                return
        time.sleep(0.3)
    raise AssertionError(f"the dashboard did not answer on {url} within {timeout:.0f} s")


def stop(process: subprocess.Popen) -> None:
    """SIGTERM to the dashboard's process group, SIGKILL after 10 s."""
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def visit_pages(
    base_url: str, screenshots: Path | None = None, headlines: dict | None = None
) -> dict[str, list]:
    """Open every page in headless Chromium, wait for its figures, and return each page's metric (label, value)
    pairs; with `screenshots`, save each page (all of it) as dashboard-<page>.png there."""
    from playwright.sync_api import sync_playwright

    shown: dict[str, list] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            view = browser.new_page(viewport={"width": 1440, "height": 1000})
            outside: list[str] = []  # a page must not reach beyond this machine (fonts, icons, telemetry)
            local = ("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:")
            view.on("request", lambda r: None if r.url.startswith(local) else outside.append(r.url))
            for name in PAGES:
                view.goto(f"{base_url}/{'' if name == 'live' else name}")  # the default page is the root
                view.get_by_test_id("stMetricValue").first.wait_for(timeout=60_000)
                if headlines and name in headlines:
                    label, value = headlines[name]
                    metric = view.get_by_test_id("stMetric").filter(has_text=label).first
                    metric.get_by_test_id("stMetricValue").filter(has_text=value).wait_for(timeout=30_000)
                view.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').wait_for(
                    timeout=60_000
                )
                view.wait_for_timeout(1500)  # charts draw after the script run ends
                labels = view.get_by_test_id("stMetricLabel").all_inner_texts()
                values = view.get_by_test_id("stMetricValue").all_inner_texts()
                shown[name] = list(zip((label.strip() for label in labels), values, strict=False))
                if screenshots is not None:
                    height = view.evaluate(
                        "document.querySelector('[data-testid=\"stMainBlockContainer\"]').scrollHeight"
                    )
                    view.set_viewport_size({"width": 1440, "height": min(int(height) + 80, 4000)})
                    view.wait_for_timeout(800)
                    view.screenshot(path=str(screenshots / f"dashboard-{name}.png"))
                    view.set_viewport_size({"width": 1440, "height": 1000})
            assert not outside, f"the dashboard reached beyond the machine: {outside[:5]}"
        finally:
            browser.close()
    return shown


@pytest.mark.e2e
@pytest.mark.slow
def test_dashboard_in_a_real_browser(delta, tmp_path, mongo, db):
    state = build_state(delta, tmp_path)
    write_mongo(db)
    port = free_port()
    env = {**os.environ, "PODREC_DELTA_ROOT": state.delta, "PODREC_MODEL_ROOT": str(state.models),
           "DAGSTER_HOME": str(state.dagster_home), "MONGO_URI": mongo.uri, "MONGO_DB": mongo.database}  # fmt: skip
    log = tmp_path / "dashboard.log"
    with log.open("wb") as out:
        process = subprocess.Popen([str(PODREC), "dashboard", "--port", str(port)], cwd=REPO, env=env,
                                   stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, process)
        bound = [line for line in Path(f"/proc/{process.pid}/net/tcp").read_text().splitlines()[1:]
                 if line.split()[1].endswith(f":{port:04X}") and line.split()[3] == "0A"]  # fmt: skip
        assert bound and all(line.split()[1].startswith("0100007F:") for line in bound), (
            "not bound to 127.0.0.1"
        )
        shots = None
        if os.environ.get("PODREC_SCREENSHOTS") == "1":
            shots = SCREENSHOTS
            shots.mkdir(parents=True, exist_ok=True)
        shown = visit_pages(url, shots, HEADLINES)
        for name, (label, value) in HEADLINES.items():
            assert (label, value) in shown[name], (name, shown[name], log.read_text(errors="replace")[-2000:])
        assert ("Serving strategy", "ranker") in shown["models"]
        assert ("Quarantine rate", "20.00%") in shown["live"]
    finally:
        stop(process)
    assert "Traceback" not in log.read_text(errors="replace"), log.read_text(errors="replace")[-3000:]
