"""Pure unit tests of the multi-stage ranker (ranking/): history pairs, recall, re-ranking, metrics, and the gate
refusing a ranker that learned from shuffled labels. ALS factors come from a small numpy ALS made of fold-ins
(the same closed-form steps Spark runs), so no service is needed."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from podrec_assets.lib.engagement.weights import EventWeights
from podrec_assets.lib.models.factors import Factors, index_ids, training_rows
from podrec_assets.lib.models.foldin import fold_in
from podrec_assets.lib.models.recommend import AlsModel
from podrec_assets.lib.ranking.candidates import FEATURES, RecallConfig, recall, row_dots
from podrec_assets.lib.ranking.catalog import align_model, build_catalog
from podrec_assets.lib.ranking.history import pairs_from_daily, pairs_from_events
from podrec_assets.lib.ranking.listeners import build_listeners
from podrec_assets.lib.ranking.metrics import coverage, ndcg_per_query, paired_bootstrap, ranking_metrics
from podrec_assets.lib.ranking.ranker import REASON_GROUPS, RankerParams
from podrec_assets.lib.ranking.rerank import limit_per_show
from podrec_assets.lib.ranking.strategies import StrategyConfig, fill_short, lists_for
from podrec_assets.lib.ranking.training import (
    RankerTrainingConfig,
    learns_from,
    lists_of,
    make_snapshot,
    query_set,
    snapshot_stats,
    train_and_gate,
)
from podrec_assets.tools.producers.synthetic import generate_events, sample_catalog

END = datetime(2026, 6, 30, 22, tzinfo=UTC)


def numpy_als(pairs: pd.DataFrame, name: str, rank: int = 16, iterations: int = 8) -> AlsModel:
    """Implicit ALS by alternating fold-ins (what Spark does, on the driver): good enough for unit tests."""
    indexed, ids = index_ids(pairs)
    rows = training_rows(indexed, negative_feedback=True)
    u, i, r = rows["user_idx"].to_numpy(), rows["episode_idx"].to_numpy(), rows["engagement"].to_numpy()
    y = np.random.default_rng(0).normal(scale=0.1, size=(len(ids.episode_ids), rank)).astype(np.float32)
    for _ in range(iterations):
        x, users = fold_in(y, u, i, r, len(ids.user_ids), 0.1, 2.0)
        y, items = fold_in(x, i, u, r, len(ids.episode_ids), 0.1, 2.0)
    x, users = fold_in(y, u, i, r, len(ids.user_ids), 0.1, 2.0)
    return AlsModel(name, ids.user_ids, ids.episode_ids, Factors(np.flatnonzero(users), x[users]),
                    Factors(np.flatnonzero(items), y[items]), 0.1, 2.0)  # fmt: skip


def episodes_table(catalog) -> pa.Table:
    return pa.table(
        {
            "episode_id": [e.episode_id for e in catalog],
            "title": [e.title for e in catalog],
            "show": [e.show for e in catalog],
            "categories": [[e.category] for e in catalog],
            "published_at": pa.array([None] * len(catalog), pa.timestamp("us", tz="UTC")),
        }
    )


@pytest.fixture(scope="module")
def world():
    """Synthetic listeners with real tastes over the generator's catalog, as history pairs with times."""
    catalog = sample_catalog()
    events = list(generate_events(users=120, days=28, sessions_per_user=16, catalog=catalog, seed=4, end=END))
    raw = pa.table(
        {
            "user_id": [e["user_id"] for e in events],
            "episode_id": [e.get("episode_id") for e in events],
            "event_type": [e["event_type"] for e in events],
            "rating": pa.array([e.get("rating") for e in events], pa.int8()),
            "played_pct": pa.array([e.get("played_pct") for e in events], pa.float64()),
            "ts": pa.array(pd.to_datetime([e["ts"] for e in events], utc=True)),
        }
    )
    return catalog, raw


def test_history_from_raw_events_equals_history_from_daily_sums(world):
    _, raw = world
    weights = EventWeights()
    direct = pairs_from_events(raw, weights)
    frame = raw.to_pandas().assign(weight=weights.of_events(raw), day=lambda f: f["ts"].dt.date)
    daily = frame.groupby(["user_id", "episode_id", "day"]).agg(
        weight_sum=("weight", "sum"), event_count=("weight", "size"), last_ts=("ts", "max")
    )
    via_daily = pairs_from_daily(pa.Table.from_pandas(daily.reset_index(), preserve_index=False))
    pd.testing.assert_frame_equal(direct[["user_id", "episode_id", "engagement", "events", "last_ts"]],
                                  via_daily[["user_id", "episode_id", "engagement", "events", "last_ts"]],
                                  check_dtype=False)  # fmt: skip


def test_recall_never_proposes_what_a_listener_heard_and_reaches_a_new_episode_through_content(world):
    catalog_list, raw = world
    pairs = pairs_from_events(raw, EventWeights())
    new_episode = "unheard-twin"
    twin_of = pairs.loc[pairs["engagement"].idxmax(), "episode_id"]  # someone's favourite
    episodes = episodes_table(catalog_list).to_pylist()
    episodes.append({**next(e for e in episodes if e["episode_id"] == twin_of), "episode_id": new_episode})
    neighbours = pa.table({"episode_id": [twin_of, new_episode], "similar_episode_id": [new_episode, twin_of],
                           "score": pa.array([0.95, 0.95], pa.float32())})  # fmt: skip
    catalog = build_catalog(pa.Table.from_pylist(episodes), None, neighbours)
    model = align_model(numpy_als(pairs, "m"), catalog)
    t_ref = END.timestamp()
    listeners = build_listeners(pairs, catalog, model, t_ref)
    stats = snapshot_stats(pairs, catalog, t_ref)
    users = np.arange(len(listeners))
    found = recall(
        listeners, users, catalog, model, stats, RecallConfig(als=30, content=10, popular=10, new=5)
    )

    assert not listeners.seen[found.user, found.item].any()  # nothing heard, skipped or rated comes back
    assert found.features.shape == (len(found), len(FEATURES))
    new = found.item == catalog.ids.get_loc(new_episode)
    lovers = listeners.positive[:, catalog.ids.get_loc(twin_of)].toarray().ravel()
    assert new.any() and lovers[found.user[new]].all()  # proposed to those who liked its twin...
    assert found.sources["content"][new].all()  # ...through content
    assert (found.feature("als_known")[new] == 0).all() and np.isnan(found.feature("als_score")[new]).all()


def test_served_lists_are_full_when_als_alone_serves_a_listener_it_cannot_score(world):
    """ALS alone (the fallback when the ranker's gate refuses) has no vector for a listener whose every episode was
    skipped: found by a temporal validation run, where that listener's empty list failed every_active_user_served
    and so blocked the publish. Served lists are completed with the week's most liked unheard episodes."""
    catalog_list, raw = world
    pairs = pairs_from_events(raw, EventWeights())
    skipped = pairs["episode_id"].drop_duplicates().head(3)
    skipper = pd.DataFrame({"user_id": "only-skips", "episode_id": skipped, "engagement": -1.0, "events": 1,
                            "first_ts": pairs["last_ts"].max(), "last_ts": pairs["last_ts"].max()})  # fmt: skip
    pairs = pd.concat([pairs, skipper], ignore_index=True)
    catalog = build_catalog(episodes_table(catalog_list))
    model = align_model(numpy_als(pairs, "m"), catalog)
    listeners = build_listeners(pairs, catalog, model, END.timestamp())
    stats = snapshot_stats(pairs, catalog, END.timestamp())
    users = np.arange(len(listeners))
    me = listeners.ids.get_loc("only-skips")
    assert not listeners.solved[me]

    plain = lists_for("als", users, listeners, catalog, model, stats, StrategyConfig(n=20))
    assert (plain.items[me] < 0).all()  # what ALS alone gives them: nothing
    full = fill_short(plain, users, listeners, stats)
    mine = full.items[me]
    assert (mine >= 0).all() and len(set(mine.tolist())) == 20
    assert not listeners.seen[me, mine].toarray().any()  # never what they skipped
    assert set(full.sources[me]) == {"popular"}
    assert (np.diff(full.scores[me]) <= 0).all()
    solved = np.flatnonzero(listeners.solved)
    assert (full.items[solved] >= 0).all() and (np.diff(full.scores[solved], axis=1) <= 1e-7).all()


def test_row_dots_in_chunks_equal_the_dots_of_all_rows_at_once():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(40, 16)).astype(np.float32)
    item, others = rng.integers(0, 40, size=1000), rng.integers(0, 40, size=(1000, 5))
    at_once = np.einsum("rd,rld->rl", vectors[item], vectors[others])
    chunked = row_dots(vectors, item, others, chunk=64)  # 1000 rows: 15 whole chunks and a partial one
    assert chunked.shape == (1000, 5)
    np.testing.assert_allclose(chunked, at_once, rtol=1e-6, atol=1e-6)


def test_limit_per_show_moves_the_surplus_below_the_top_and_drops_nothing():
    shows = np.array([0, 0, 0, 0, 1, 2, 1, 0])
    items = np.arange(8)
    order = limit_per_show(items, shows, per_show=2, top=4)
    assert sorted(order) == list(range(8))
    assert list(items[order][:4]) == [0, 1, 4, 5]  # the third and fourth of show 0 wait below the top 4
    assert list(limit_per_show(items, shows, per_show=0)) == list(range(8))


def test_metrics_by_hand():
    lists, truth = [[1, 2, 3], [9, 8]], [{2, 7}, {5}]
    m = ranking_metrics(lists, truth, k=3)
    ndcg_first = (1 / np.log2(3)) / (1 + 1 / np.log2(3))
    assert m["ndcg@3"] == pytest.approx(ndcg_first / 2, abs=1e-6)
    assert m["precision@3"] == pytest.approx((1 / 3) / 2, abs=1e-6)
    assert m["recall@3"] == pytest.approx(0.5 / 2, abs=1e-6)
    assert m["map@3"] == pytest.approx((0.5 / 2) / 2, abs=1e-6)
    assert coverage(lists, 20, k=3) == 5 / 20
    per_query = ndcg_per_query(lists, truth, k=3)
    assert per_query.mean() == pytest.approx(m["ndcg@3"], abs=1e-6)
    ci = paired_bootstrap(per_query, np.zeros(2))
    assert ci["difference_low"] <= m["ndcg@3"] <= ci["difference_high"]


def test_a_clustered_bootstrap_resamples_whole_listeners():
    """A listener judged on several cuts is one piece of evidence: duplicating every query must not narrow the
    interval when queries are clustered by listener, and does narrow it when they are taken as independent."""
    rng = np.random.default_rng(7)
    ours, theirs = rng.uniform(0.1, 0.5, 60), rng.uniform(0.05, 0.4, 60)
    listeners = np.arange(60)
    once = paired_bootstrap(ours, theirs, clusters=listeners)
    twice = paired_bootstrap(np.tile(ours, 2), np.tile(theirs, 2), clusters=np.tile(listeners, 2))
    naive = paired_bootstrap(np.tile(ours, 2), np.tile(theirs, 2))

    def width(ci):
        return ci["ratio_high"] - ci["ratio_low"]

    assert width(twice) == pytest.approx(width(once), rel=0.1)
    assert width(naive) < 0.85 * width(once)
    assert once["ratio_low"] < ours.mean() / theirs.mean() < once["ratio_high"]


def test_the_rolling_report_pools_every_cut_listener_by_listener():
    """`podrec evaluate --protocol temporal --split rolling`: the pooled nDCG is the mean over every (cut,
    listener) query, whichever strategy served each cut."""
    from podrec_assets.tools.experiments.temporal import (
        BASELINES,
        POPULARITY,
        RollingReport,
        TemporalReport,
        TemporalSplit,
    )

    def report(name, users, served, popular, strategy):
        lists = {f"final list (MongoDB, {strategy})": np.asarray(served), POPULARITY: np.asarray(popular)}
        lists.update({b: np.asarray(popular) * 0.9 for b in BASELINES if b != POPULARITY})
        split = TemporalSplit(name, END - timedelta(days=14), END)
        return TemporalReport({}, split, len(users), 0, 100, {}, {}, strategy, "", {}, {}, users, lists)

    rolling = RollingReport(
        [
            report("validation", ["a", "b"], [0.4, 0.2], [0.1, 0.1], "ranker"),
            report("test", ["a", "c", "d"], [0.3, 0.0, 0.3], [0.2, 0.2, 0.2], "als"),
        ]
    )
    per_list, listeners = rolling.pooled()
    assert list(listeners) == ["a", "b", "a", "c", "d"]
    assert per_list["final list"].mean() == pytest.approx(1.2 / 5)
    assert per_list[POPULARITY].mean() == pytest.approx(0.8 / 5)
    lines = rolling.lines()
    pooled = next(line for line in lines if line.startswith("pooled "))
    assert pooled.split()[1] == "5" and pooled.split()[-1] == "1.50"
    assert "4 distinct listeners" in "\n".join(lines)


@pytest.fixture(scope="module")
def query_sets(world):
    """A per-listener snapshot (each listener's newest 20%) and a global cut a week before the end."""
    catalog_list, raw = world
    pairs = pairs_from_events(raw, EventWeights())
    catalog = build_catalog(episodes_table(catalog_list))
    ordered = pairs.sort_values(["user_id", "last_ts"])
    newest = ordered.groupby("user_id").cumcount(ascending=False) < (
        ordered.groupby("user_id")["user_id"].transform("size") * 0.2
    ).astype(int)  # fmt: skip
    history, later = ordered[~newest], ordered[newest]
    snapshot = make_snapshot("newest 20%", "user", history, later, catalog,
                             align_model(numpy_als(history, "heldout"), catalog), END.timestamp())  # fmt: skip
    cut = END - timedelta(days=7)
    before = pairs_from_events(raw.filter(pa.compute.less(raw.column("ts"), pa.scalar(cut))), EventWeights())
    after = pairs_from_events(
        raw.filter(pa.compute.greater_equal(raw.column("ts"), pa.scalar(cut))), EventWeights()
    )
    cut_snapshot = make_snapshot("cut", "cut", before, after, catalog, align_model(numpy_als(before, "cut"), catalog),
                                 cut.timestamp())  # fmt: skip
    config = RecallConfig(als=40, content=10, popular=10, new=0)
    return [query_set(snapshot, config), query_set(cut_snapshot, config)], config


@pytest.mark.parametrize("objective", ["rank_xendcg", "lambdarank"])
def test_the_gate_refuses_a_ranker_trained_on_shuffled_labels(query_sets, objective):
    sets, config = query_sets
    strategy = StrategyConfig(recall=config)
    small = RankerParams(n_estimators=60, objective=objective)
    _, honest = train_and_gate(sets, strategy, RankerTrainingConfig(small, min_gate_listeners=10))
    _, shuffled = train_and_gate(
        sets, strategy, RankerTrainingConfig(small, min_gate_listeners=10, shuffle_labels=True)
    )
    assert honest.gate_listeners >= 80
    assert not shuffled.passed and shuffled.policy in ("als", "hybrid")
    ndcg = {
        name: result.metrics["ranker"]["ndcg@10"]
        for name, result in (("honest", honest), ("shuffled", shuffled))
    }
    assert ndcg["shuffled"] < ndcg["honest"] and ndcg["shuffled"] < shuffled.metrics["als"]["ndcg@10"]


def test_a_re_rank_rule_that_costs_more_than_its_budget_is_dropped(query_sets):
    """At most one episode per show in a top 10 costs accuracy for listeners who love a few shows (the synthetic
    listeners do): measured against the same ranker without the rule, it is dropped when over its budget."""
    sets, config = query_sets
    strict = StrategyConfig(recall=config, per_show=1)
    small = RankerParams(n_estimators=60)
    _, result = train_and_gate(
        sets, strict, RankerTrainingConfig(small, min_gate_listeners=10, rerank_budget=0.0)
    )
    with_rule, without = result.metrics["ranker"], result.metrics["ranker without re-rank"]
    assert with_rule["max_per_show@10"] <= 1.0 < without["max_per_show@10"]  # the rule does what it says
    assert with_rule["ndcg@10"] < without["ndcg@10"] and not result.rerank_kept
    assert "re-rank rule dropped" in result.verdict
    _, lenient = train_and_gate(
        sets, strict, RankerTrainingConfig(small, min_gate_listeners=10, rerank_budget=1.0)
    )
    assert lenient.rerank_kept


def test_rankers_learn_from_a_stable_sample_and_the_gate_still_judges_everyone(query_sets):
    """Past `max_training_listeners` a snapshot teaches through a sample of its listeners (the same ones each run),
    so training stops growing with the audience; every listener is still judged."""
    sets, config = query_sets
    strategy, small = StrategyConfig(recall=config), RankerParams(n_estimators=30)
    limit = min(len(query.users) for query in sets) // 2  # binds on every snapshot
    picks = [learns_from(query, limit) for query in sets]
    assert [int(pick.sum()) for pick in picks] == [limit] * len(sets)
    assert all((learns_from(query, limit) == pick).all() for query, pick in zip(sets, picks, strict=True))
    assert all(learns_from(query, 0).all() for query in sets)  # 0: everyone
    _, everyone = train_and_gate(sets, strategy, RankerTrainingConfig(small, min_gate_listeners=10,
                                                                      max_training_listeners=0))  # fmt: skip
    _, sampled = train_and_gate(sets, strategy, RankerTrainingConfig(small, min_gate_listeners=10,
                                                                     max_training_listeners=limit))  # fmt: skip
    assert sampled.gate_listeners == everyone.gate_listeners
    assert sampled.train_rows < everyone.train_rows and sampled.train_listeners < everyone.train_listeners


def test_evaluate_ranker_settings_become_the_ranker_run_config():
    """`podrec evaluate --ranker FIELD=VALUE`: how a tuning run on a validation split is reproduced."""
    from podrec_assets.defs.models.ranker import RankerConfig
    from podrec_assets.tools.cli.evaluate import ranker_overrides

    fields = ranker_overrides(("objective=lambdarank", "cut_weight=10", "seed=1"))
    assert fields == {"objective": "lambdarank", "cut_weight": 10, "seed": 1}
    assert RankerConfig(**fields).training().params.objective == "lambdarank"
    with pytest.raises(SystemExit):  # a typo is refused by name, not silently ignored
        ranker_overrides(("cut_wieght=10",))


def test_lists_judged_without_reasons_hold_the_same_episodes_and_scores(query_sets):
    """The gate asks for no reasons (the per-feature contributions cost several predictions per row): what it judges
    must be exactly what the served lists hold."""
    sets, config = query_sets
    strategy = StrategyConfig(recall=config)
    training = RankerTrainingConfig(RankerParams(n_estimators=30), min_gate_listeners=10)
    ranker, _ = train_and_gate(sets, strategy, training)
    query = sets[0]
    s = query.snapshot
    served = lists_for("ranker", query.users, s.listeners, s.catalog, s.model, s.stats, strategy, ranker,
                       query.candidates)  # fmt: skip
    judged = lists_of("ranker", query, query.users, strategy, ranker)
    np.testing.assert_array_equal(judged.items, served.items)
    np.testing.assert_array_equal(judged.scores, served.scores)
    assert (judged.sources[judged.items >= 0] == "").all()
    assert set(served.sources[served.items >= 0]) <= set(REASON_GROUPS)
    assert (served.sources[served.items >= 0] != "").all()
