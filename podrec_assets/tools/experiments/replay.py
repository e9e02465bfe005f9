"""`podrec evaluate --protocol replay`: the future after the cut replayed one day at a time, as production meets it.

The temporal protocol judges one list per listener, made at the cut, against six weeks of future. Production does
not serve that list for six weeks: every ingestion run refreshes the lists of the listeners it saw
(`fresh_recommendations`: fold-in, anchors, re-rank). This protocol measures what that buys.

The graph is built on the past exactly as the temporal protocol builds it (`temporal.run_graph`). Then, for each
day of the future in order (the first one starts at the cut):
1. the list each listener holds at the start of the day is read from MongoDB `user_recommendations`, as the API
   reads it; a listener without one gets the day's cold-start list (this week's most liked, as the nightly publish
   would have stored it). Beside it, from the same moment: the list they held at the cut (never refreshed), the
   same with the episodes they have heard since dropped (no re-ranking), and popularity, the last 7 days'
   popularity and ALS alone (folded in), by the library from the same tables;
2. the day's events go to Kafka and one ingestion run takes them (`user_event_tables`, then
   `fresh_recommendations`, the near-real-time lists), as the sensor would; then that day's `daily_engagement`
   partition is rebuilt, as the late-events sensor does for a closed day that received events.

Every `--retrain-every` days (7 by default; production runs it nightly, which here would take an hour) the nightly
job runs first: daily engagement, ALS, the ranker and its gate, the final lists and their publish.

A query is a (listener, day) with positives that day on episodes the listener had not engaged with before it;
those positives are its truth. With `--retrain-every 0` the models stay the cut's, and what the lists gain over the
cut's comes from the near-real-time path alone.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from podrec_assets.lib.ranking.metrics import ndcg_per_query, paired_bootstrap

K = 10
FOLLOWING = "following (MongoDB, refreshed by each ingestion)"
AT_CUT = "held since the cut (never refreshed)"
AT_CUT_UNHEARD = "held since the cut, heard episodes dropped"
POPULARITY = "popularity"
LAST_7_DAYS = "popularity of the last 7 days"
ALS_FOLDED = "ALS alone (folded in)"
LISTS = (FOLLOWING, AT_CUT, AT_CUT_UNHEARD, POPULARITY, LAST_7_DAYS, ALS_FOLDED)
# who a query's listener is, on that day
RETURNING = "listeners with history before the cut"
FIRST_DAY = "new listeners, first day (no events yet)"
LATER_DAYS = "new listeners, later days"
GROUPS = (RETURNING, FIRST_DAY, LATER_DAYS)


def day_windows(cut: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """[start, stop) per UTC day from the cut to the end: the first starts at the cut, the rest at midnight."""
    windows, start = [], cut
    while start < end:
        midnight = datetime.combine(start.date() + timedelta(days=1), datetime.min.time(), UTC)
        windows.append((start, min(midnight, end)))
        start = midnight
    return windows


@dataclass(frozen=True)
class DayQueries:
    """A day's queries: the listeners with new positives that day, their truth and who they are."""

    users: list[str]
    truth: list[set[str]]
    groups: list[str]


def day_queries(
    day: pd.DataFrame, heard: dict[str, set[str]], known_at_cut: set[str], active: set[str]
) -> DayQueries:
    """The queries of one day's ratings: per listener, the episodes rated above 3 that day and never engaged with
    before it (`heard`, as of the day's start). `known_at_cut`: listeners with history before the cut; `active`:
    every listener with an event before the day."""
    positives: dict[str, set[str]] = {}
    for user, episode, rating in zip(day["user_id"], day["episode_id"], day["rating"], strict=True):
        if rating > 3 and episode not in heard.get(user, ()):
            positives.setdefault(user, set()).add(episode)
    users = sorted(positives)
    groups = [RETURNING if u in known_at_cut else LATER_DAYS if u in active else FIRST_DAY for u in users]
    return DayQueries(users, [positives[u] for u in users], groups)


def heard_in_top(lists: Sequence[Sequence[str]], heard: Sequence[set[str]], k: int = K) -> np.ndarray:
    """Per list, how many of its first k episodes the listener had already engaged with."""
    return np.asarray(
        [sum(1 for e in found[:k] if e in seen) for found, seen in zip(lists, heard, strict=True)]
    )


@dataclass
class ReplayReport:
    name: str
    cut: datetime
    end: datetime
    days: int
    events: int  # ratings replayed
    strategy: str  # what served at the cut
    retrain_every: int = 0  # days between the nightly job's runs during the replay (0: never)
    strategies: list[str] = field(default_factory=list)  # what served after each retrain
    users: list[str] = field(default_factory=list)  # the listener of each query, in order
    groups: list[str] = field(default_factory=list)  # who each query's listener is (GROUPS)
    dates: list[str] = field(default_factory=list)  # each query's day
    ndcg: dict[str, list[float]] = field(default_factory=lambda: {name: [] for name in LISTS})
    heard: dict[str, list[int]] = field(default_factory=lambda: {FOLLOWING: [], AT_CUT: []})
    seconds: dict[str, float] = field(default_factory=dict)

    def add(
        self, day: str, queries: DayQueries, lists: dict[str, list[list[str]]], heard: list[set[str]]
    ) -> None:
        self.users += queries.users
        self.groups += queries.groups
        self.dates += [day] * len(queries.users)
        for name in LISTS:
            self.ndcg[name] += ndcg_per_query(lists[name], queries.truth, K).tolist()
        for name in self.heard:
            self.heard[name] += heard_in_top(lists[name], heard).tolist()

    def lines(self) -> list[str]:
        ndcg = {name: np.asarray(values) for name, values in self.ndcg.items()}
        groups, users = np.asarray(self.groups, dtype=object), np.asarray(self.users, dtype=object)
        short = {FOLLOWING: "following", AT_CUT: "at cut", AT_CUT_UNHEARD: "cut-heard", POPULARITY: "popular",
                 LAST_7_DAYS: "last 7d", ALS_FOLDED: "ALS"}  # fmt: skip
        retrains = (
            f"the nightly job every {self.retrain_every} days ({len(self.strategies)} runs; served after each: "
            f"{', '.join(self.strategies) or '-'})"
            if self.retrain_every
            else "no retrain"
        )
        out = [
            f"MovieLens-100k, replay protocol ({self.name}): the graph saw events before {self.cut:%Y-%m-%d %H:%M} "
            f"UTC; then {self.days} days ({self.events} ratings) replayed one day at a time, each day's events "
            f"through one ingestion run (near-real-time lists), {retrains}; served at the cut: {self.strategy}",
            f"a query = a listener and a day with positives on episodes new to them: {len(users)} queries from "
            f"{len(set(users))} listeners; nDCG@10 of the list held at the start of the day",
            f"{'who':<44}{'queries':>8}" + "".join(f"{short[n]:>10}" for n in LISTS) + f"{'× pop':>7}",
        ]
        for label, mask in [*((g, groups == g) for g in GROUPS), ("all", np.ones(len(groups), bool))]:
            if not mask.any():
                continue
            means = {n: float(np.nanmean(ndcg[n][mask])) for n in LISTS}
            out.append(
                f"{label:<44}{int(mask.sum()):>8}" + "".join(f"{means[n]:>10.4f}" for n in LISTS)
                + f"{means[FOLLOWING] / means[POPULARITY] if means[POPULARITY] else float('nan'):>7.2f}"
            )  # fmt: skip
        out.append(
            "episodes the listener had already engaged with, per top 10: "
            + ", ".join(f"{short[n]} {np.mean(v):.2f}" for n, v in self.heard.items())
        )
        for name in LISTS[1:]:
            ci = paired_bootstrap(ndcg[FOLLOWING], ndcg[name], clusters=users)
            out.append(
                f"following vs {name}: nDCG@10 ratio 95% CI [{ci['ratio_low']:.2f}, {ci['ratio_high']:.2f}], "
                f"difference [{ci['difference_low']:+.4f}, {ci['difference_high']:+.4f}] (listeners resampled)"
            )
        out.append("seconds: " + ", ".join(f"{k} {v}" for k, v in self.seconds.items()))
        return out


def lists_at(
    workspace, users: list[str], snapshot: dict[str, list[str]], heard: list[set[str]], moment: datetime
) -> dict:
    """Every compared list of `users` (who had engaged with `heard`) at `moment`, from MongoDB and from the
    tables as they are now; `snapshot`: the whole lists MongoDB held at the cut."""
    from podrec_assets.defs.serving.assets import serving_context
    from podrec_assets.lib.lakehouse import delta_version
    from podrec_assets.lib.serving.lookup import COLD_START_USER
    from podrec_assets.lib.serving.recommendations import cold_start_rows
    from podrec_assets.names import RAW_USER_EVENTS, USER_RECOMMENDATIONS
    from podrec_assets.tools.experiments.temporal import library_lists

    delta, models, mongo = (workspace.resources[name] for name in ("delta", "models", "mongo"))
    raw_version = delta_version(delta.table_uri(RAW_USER_EVENTS), delta.storage_options())
    ctx, everyone = serving_context(delta, models, 20, moment, raw_version)
    cold = cold_start_rows(ctx, moment).sort_by("rank").column("episode_id").to_pylist()[:K]

    def library(strategy: str) -> list[list[str]]:
        return library_lists(ctx, everyone, users, strategy)

    client = mongo.client()
    try:
        found = mongo.db(client)[USER_RECOMMENDATIONS].find({"_id": {"$in": users}}, {"episode_ids": 1})
        stored = {d["_id"]: list(d["episode_ids"][:K]) for d in found}
    finally:
        client.close()
    return {
        # a listener without a document is served the cold-start list (lookup.recommendations_for)
        FOLLOWING: [stored.get(u, cold) for u in users],
        AT_CUT: [snapshot.get(u, snapshot[COLD_START_USER])[:K] for u in users],
        # what dropping heard episodes alone would give, without re-ranking (the cut's lists hold 20)
        AT_CUT_UNHEARD: [
            [e for e in snapshot.get(u, snapshot[COLD_START_USER]) if e not in seen][:K]
            for u, seen in zip(users, heard, strict=True)
        ],
        POPULARITY: library("popularity"),
        LAST_7_DAYS: library("trending"),
        # ALS has nothing for a listener without events: the service serves them the cold-start list
        ALS_FOLDED: [found or cold for found in library("als")],
    }


def replay_future(
    workspace,
    past: pd.DataFrame,
    future: pd.DataFrame,
    cut: datetime,
    end: datetime,
    name: str,
    log: Callable[[str], None] = print,
    events: str = "ratings",
    retrain_every: int = 7,
    run_config: dict | None = None,
) -> ReplayReport:
    """Replay `future` (rows user_id, episode_id, rating, ts in [cut, end)) day by day on a workspace whose graph
    was built on `past`, scoring the lists held at the start of each day (module docstring). Every
    `retrain_every` days (0: never) the nightly job runs first on everything so far."""
    from podrec_assets.defs.engagement.assets import daily_engagement
    from podrec_assets.defs.ingestion.assets import user_event_tables
    from podrec_assets.defs.serving.assets import fresh_recommendations
    from podrec_assets.lib.serving.policy import serving_policy
    from podrec_assets.names import USER_RECOMMENDATIONS
    from podrec_assets.tools.experiments.temporal import GraphRunner, replay_messages
    from podrec_assets.tools.producers.kafka_send import send_messages

    mongo, models = workspace.resources["mongo"], workspace.resources["models"]
    client = mongo.client()
    try:
        snapshot = {d["_id"]: list(d["episode_ids"]) for d in mongo.db(client)[USER_RECOMMENDATIONS].find()}
    finally:
        client.close()
    heard: dict[str, set[str]] = {}
    for user, episode in zip(past["user_id"], past["episode_id"], strict=True):
        heard.setdefault(user, set()).add(episode)
    known_at_cut = set(heard)
    windows = day_windows(cut, end)
    strategy = serving_policy(models.root, models.tracking_uri).strategy
    report = ReplayReport(name, cut, end, len(windows), len(future), strategy, retrain_every)
    runner = GraphRunner(workspace, log, run_config)
    scoring = 0.0
    first_day = past["ts"].min().date() if len(past) else cut.date()
    for number, (start, stop) in enumerate(windows):
        if retrain_every and number and number % retrain_every == 0:
            runner.retrain(first_day, (start - timedelta(days=1)).date(), announce=False)
            report.strategies.append(serving_policy(models.root, models.tracking_uri).strategy)
        day = future[(future["ts"] >= start) & (future["ts"] < stop)]
        if day.empty:
            continue
        started = time.perf_counter()
        queries = day_queries(day, heard, known_at_cut, set(heard))
        if queries.users:
            before = [heard.get(u, set()) for u in queries.users]
            lists = lists_at(workspace, queries.users, snapshot, before, start)
            report.add(start.date().isoformat(), queries, lists, before)
        scoring += time.perf_counter() - started
        messages = replay_messages(day.sort_values(["ts", "user_id", "episode_id"], kind="stable"), events)
        send_messages(workspace.resources["kafka"], messages, total=len(messages), progress=False)
        runner.stage("ingestion_runs", [user_event_tables, fresh_recommendations], announce=False)
        # Every replayed day lies in the past, so its partition is closed: the late-events sensor would rebuild
        # it now (without it the cut's own day, built before the cut, would miss its later events).
        partition = start.date().isoformat()
        runner.stage("daily_engagement_late", [daily_engagement], announce=False, partition_key=partition)
        for user, episode in zip(day["user_id"], day["episode_id"], strict=True):
            heard.setdefault(user, set()).add(episode)
        if (number + 1) % 10 == 0 or number + 1 == len(windows):
            log(
                f"  replayed day {number + 1}/{len(windows)} ({start:%Y-%m-%d}): {len(report.users)} queries so far"
            )
    report.seconds = {**{f"replay_{k}": v for k, v in runner.seconds.items()}, "scoring": round(scoring, 1)}
    return report


def evaluate_replay(
    split_name: str = "test",
    workdir: Path | None = None,
    longtail: int = 3000,
    log: Callable[[str], None] = print,
    run_config: dict | None = None,
    events: str = "ratings",
    retrain_every: int = 7,
) -> ReplayReport:
    """The graph on the past of a temporal cut (temporal.run_graph), then its future replayed day by day."""
    from podrec_assets.tools.experiments.temporal import (
        make_workspace,
        movielens_frame,
        run_graph,
        temporal_split,
    )

    frame, shift = movielens_frame()
    split = temporal_split(frame, split_name)
    workspace = make_workspace(workdir, longtail)
    past = split.past(frame).sort_values(["ts", "user_id", "episode_id"], kind="stable")
    future = split.future(frame)
    log(
        f"replay {split.name}: {len(past)} ratings through the graph, then {len(future)} replayed day by day "
        f"(MovieLens times + {shift} days) → workspace {workspace.root}"
    )
    seconds = run_graph(workspace, past, log, run_config, events)
    report = replay_future(
        workspace, past, future, split.cut, split.end, split.name, log, events, retrain_every, run_config
    )
    report.seconds = {**seconds, **report.seconds}
    # every query's figures, for a closer look than the printed table
    fields = (
        "name",
        "cut",
        "end",
        "retrain_every",
        "strategies",
        "users",
        "groups",
        "dates",
        "ndcg",
        "heard",
    )
    (workspace.root / "replay.json").write_text(
        json.dumps({f: getattr(report, f) for f in fields}, default=str, indent=1)
    )
    return report
