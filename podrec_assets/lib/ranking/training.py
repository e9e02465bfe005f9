"""How the ranker learns and when it may serve.

LABELS COME FROM TIME SPLITS. A *snapshot* is the world as it was at a reference time: the history before it, an
ALS fit that never saw anything after it, the episode statistics of that moment, and as labels each listener's
positive engagement after it (never an episode they had already engaged with). Two kinds of snapshot are used:
- `user`: each listener's most recent 20% of pairs held out (the ALS gate's own split, with its held-out fit):
  every listener with enough history contributes a query;
- `cut`: one global cut-off time, labels from the following days (a fit per cut): the future as production meets
  it, where what is new and trending matters.

THE GATE. Listeners are split into folds by a stable hash of their id. For each fold, a ranker trained on the
other folds' listeners makes that fold's lists (across every snapshot), scored beside ALS alone, the hybrid,
content alone and popularity on the same listeners: every listener is judged once, by a ranker that never saw
their labels (cross-fitting; one held-out fifth was too few listeners to tell the ranker from ALS reliably). The
ranker may serve only if it beats both ALS alone and the hybrid on nDCG@10 there; otherwise the better of those
two serves. The ranker that then serves is retrained with the same settings on every listener it learns from
(as ALS is refitted), and its scores are calibrated on the out-of-fold predictions.

A SAMPLE TEACHES, EVERYONE IS JUDGED. Past `max_training_listeners` in a snapshot, the rankers learn from a stable
sample of its listeners (the same ones every night, by a hash of their id); the gate still judges every listener.
Training cost then stops growing with the audience, while the judgement covers all of it.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from podrec_assets.lib.ranking.candidates import Candidates, RecallConfig, recall
from podrec_assets.lib.ranking.catalog import Catalog, EpisodeStats, ModelSide, episode_stats, epoch_seconds
from podrec_assets.lib.ranking.listeners import ANCHORS, HALF_LIFE_DAYS, Listeners, build_listeners
from podrec_assets.lib.ranking.metrics import coverage, ranking_metrics
from podrec_assets.lib.ranking.ranker import Ranker, RankerParams
from podrec_assets.lib.ranking.strategies import Lists, StrategyConfig, lists_for

FALLBACKS = ("als", "hybrid")  # what serves when the ranker does not beat them
NO_RERANK = "ranker without re-rank"


def show_diversity(lists: list[list[int]], show_codes: np.ndarray, k: int) -> dict[str, float]:
    """Mean over lists of the most episodes one show has in the first k, and of the distinct shows there."""
    most, distinct = [], []
    for found in lists:
        codes = [int(show_codes[i]) for i in found[:k] if show_codes[i] >= 0]
        counts = np.bincount(codes) if codes else np.zeros(1, int)
        most.append(int(counts.max()))
        distinct.append(int((counts > 0).sum()))
    return {
        f"max_per_show@{k}": round(float(np.mean(most)), 4) if most else 0.0,
        f"shows@{k}": round(float(np.mean(distinct)), 4) if distinct else 0.0,
    }


@dataclass(frozen=True)
class Snapshot:
    name: str
    kind: str  # "user" | "cut"
    catalog: Catalog
    model: ModelSide
    stats: EpisodeStats
    listeners: Listeners
    truth: dict[int, set[int]]  # listener index → catalog indices they later engaged with positively


def snapshot_stats(pairs: pd.DataFrame, catalog: Catalog, t_ref: float) -> EpisodeStats:
    return episode_stats(
        catalog.ids.get_indexer(pairs["episode_id"]),
        pairs["engagement"].to_numpy(dtype=np.float64),
        epoch_seconds(pairs["first_ts"]),
        epoch_seconds(pairs["last_ts"]),
        len(catalog),
        t_ref,
    )


def make_snapshot(
    name: str,
    kind: str,
    history: pd.DataFrame,
    later: pd.DataFrame,
    catalog: Catalog,
    model: ModelSide,
    t_ref: float,
    anchors: int = ANCHORS,
    half_life_days: float = HALF_LIFE_DAYS,
) -> Snapshot:
    """`history`: pairs before t_ref; `later`: pairs after it (the labels)."""
    listeners = build_listeners(history, catalog, model, t_ref, anchors, half_life_days)
    stats = snapshot_stats(history, catalog, t_ref)
    positive = later[later["engagement"] > 0]
    u = listeners.ids.get_indexer(positive["user_id"])
    e = catalog.ids.get_indexer(positive["episode_id"])
    keep = (u >= 0) & (e >= 0)
    truth: dict[int, set[int]] = {}
    for user, item in zip(u[keep], e[keep], strict=True):
        if listeners.positives[user] > 0 and not listeners.seen[user, item]:
            truth.setdefault(int(user), set()).add(int(item))
    return Snapshot(name, kind, catalog, model, stats, listeners, truth)


@dataclass
class QuerySet:
    """A snapshot's listeners with labels, their candidates and each candidate's label."""

    snapshot: Snapshot
    users: np.ndarray  # sorted listener indices
    candidates: Candidates
    labels: np.ndarray  # (R,) 0/1

    def rows_of(self, users: np.ndarray) -> np.ndarray:
        return np.isin(self.candidates.user, users)


def query_set(snapshot: Snapshot, config: RecallConfig) -> QuerySet:
    users = np.asarray(sorted(snapshot.truth), dtype=np.int64)
    candidates = recall(snapshot.listeners, users, snapshot.catalog, snapshot.model, snapshot.stats, config)
    labels = np.fromiter(
        (item in snapshot.truth[user] for user, item in zip(candidates.user, candidates.item, strict=True)),
        dtype=np.float32,
        count=len(candidates),
    )
    return QuerySet(snapshot, users, candidates, labels)


def fold_of(user_id: str, folds: int) -> int:
    """Stable across runs and processes: the same listener is always in the same fold."""
    return zlib.crc32(user_id.encode()) % folds


def learns_from(query: QuerySet, limit: int) -> np.ndarray:
    """(len(query.users),) bool: the listeners the rankers learn from, all of them up to `limit` (0: no limit),
    else the `limit` with the lowest hash of their id (stable across runs, independent of the folds' hash)."""
    if limit <= 0 or len(query.users) <= limit:
        return np.ones(len(query.users), dtype=bool)
    names = query.snapshot.listeners.ids[query.users]
    keys = np.fromiter((zlib.crc32(f"learn:{name}".encode()) for name in names), np.int64, len(names))
    chosen = np.zeros(len(query.users), dtype=bool)
    chosen[np.argsort(keys, kind="stable")[:limit]] = True
    return chosen


@dataclass(frozen=True)
class RankerTrainingConfig:
    params: RankerParams = field(default_factory=RankerParams)
    folds: int = 3
    min_gate_listeners: int = 20
    rerank_budget: float = (
        0.01  # the largest relative nDCG@10 loss the re-rank rule may cost, or it is dropped
    )
    cut_weight: float = (
        3.0  # a cut query counts this many per-user queries: it is the future production meets
    )
    shuffle_labels: bool = (
        False  # a sanity switch: learn from permuted labels (the gate must refuse the result)
    )
    # per snapshot, the most listeners the rankers learn from (0: all); the gate judges every one
    max_training_listeners: int = 3_000
    k: int = 10


@dataclass
class GateResult:
    passed: bool
    verdict: str
    policy: str  # what serves: "ranker" or the better fallback
    metrics: dict[str, dict[str, float]]  # strategy → metrics@k and coverage@k on the gate listeners
    by_kind: dict[str, dict[str, float]]  # snapshot kind → strategy → nDCG@k
    gate_listeners: int
    train_listeners: int
    train_rows: int
    calibration: dict[str, float] = field(default_factory=dict)
    importance: dict[str, float] = field(default_factory=dict)
    rerank_kept: bool = True  # the re-rank rule cost no more than its budget, so the served lists apply it


def _training_arrays(
    sets: list[QuerySet], pick: list[np.ndarray], config: RankerTrainingConfig, rng: np.random.Generator
):
    features, labels, groups, weights = [], [], [], []
    for query, users in zip(sets, pick, strict=True):
        rows = query.rows_of(users)
        user, label = query.candidates.user[rows], query.labels[rows]
        if config.shuffle_labels:
            label = rng.permutation(label)
        starts = np.flatnonzero(np.r_[True, user[1:] != user[:-1]]) if len(user) else np.zeros(0, np.int64)
        sizes = np.diff(np.r_[starts, len(user)])
        has_positive = np.add.reduceat(label, starts) > 0 if len(user) else np.zeros(0, bool)
        keep = np.repeat(has_positive, sizes)  # a query with no positive candidate teaches nothing
        features.append(query.candidates.features[rows][keep])
        labels.append(label[keep])
        groups.append(sizes[has_positive])
        weight = config.cut_weight if query.snapshot.kind == "cut" else 1.0
        weights.append(np.full(int(keep.sum()), weight, dtype=np.float32))
    return (np.concatenate(features), np.concatenate(labels), np.concatenate(groups), np.concatenate(weights))


def lists_of(
    strategy: str, query: QuerySet, users: np.ndarray, config: StrategyConfig, ranker: Ranker | None
) -> Lists:
    """A strategy's lists for some of the query set's listeners, to be judged: the ranker reuses their recall and
    gives no reasons (judging needs only the episodes)."""
    s = query.snapshot
    candidates = query.candidates.of(users) if strategy == "ranker" else None
    return lists_for(
        strategy, users, s.listeners, s.catalog, s.model, s.stats, config, ranker, candidates, explain=False
    )


def train_and_gate(
    sets: list[QuerySet], strategy: StrategyConfig, config: RankerTrainingConfig = RankerTrainingConfig()
) -> tuple[Ranker, GateResult]:
    """Cross-fitted judgement of everyone, then the serving ranker trained on every listener it learns from
    (module docstring)."""
    rng = np.random.default_rng(config.params.seed)
    fold_of_user = []
    learning = [learns_from(query, config.max_training_listeners) for query in sets]
    for query in sets:
        names = query.snapshot.listeners.ids[query.users]
        fold_of_user.append(np.fromiter((fold_of(str(n), config.folds) for n in names), np.int64, len(names)))

    k = config.k
    compared = ("ranker", *FALLBACKS, "content", "popularity", "trending")
    lists: dict[str, list[list[int]]] = {name: [] for name in compared}
    lists[NO_RERANK] = []  # the same ranker without the re-rank rule: what the rule costs or buys
    truth: list[set[int]] = []
    kinds: list[str] = []
    margins, margin_labels = [], []
    trained_on = 0
    for fold in range(config.folds):
        held = [query.users[folds == fold] for query, folds in zip(sets, fold_of_user, strict=True)]
        rest = [
            query.users[(folds != fold) & learn]
            for query, folds, learn in zip(sets, fold_of_user, learning, strict=True)
        ]
        features, labels, groups, weights = _training_arrays(sets, rest, config, rng)
        if len(groups) == 0:
            continue
        trained_on = max(trained_on, len(groups))
        evaluated = Ranker.train(features, labels, groups, config.params, weights)
        for query, users in zip(sets, held, strict=True):
            if len(users) == 0:
                continue
            for name in lists:
                if name == NO_RERANK:
                    plain = replace(strategy, per_show=0)
                    lists[name] += lists_of("ranker", query, users, plain, evaluated).as_lists()
                else:
                    lists[name] += lists_of(name, query, users, strategy, evaluated).as_lists()
            truth += [query.snapshot.truth[int(u)] for u in users]
            kinds += [query.snapshot.kind] * len(users)
            rows = query.rows_of(users)
            margins.append(evaluated.margin(query.candidates.features[rows]))
            margin_labels.append(query.labels[rows])
    if not truth:
        raise ValueError("no listener has a positive among their candidates: nothing to learn from")
    shows = sets[0].snapshot.catalog.show_codes
    metrics = {
        name: {
            **ranking_metrics(found, truth, k),
            f"coverage@{k}": coverage(found, len(sets[0].snapshot.catalog), k),
            **show_diversity(found, shows, k),
        }
        for name, found in lists.items()
    }
    by_kind = {
        kind: {
            name: ranking_metrics(
                [ranked for ranked, x in zip(found, kinds, strict=True) if x == kind],
                [t for t, x in zip(truth, kinds, strict=True) if x == kind],
                k,
            )[f"ndcg@{k}"]
            for name, found in lists.items()
        }
        for kind in sorted(set(kinds))
    }
    key = f"ndcg@{k}"
    ndcg = {name: values[key] for name, values in metrics.items()}
    fallback = max(FALLBACKS, key=lambda name: ndcg[name])
    # a re-rank rule trades a little accuracy for variety, within a budget; past it, the lists go without it
    rerank_kept = ndcg["ranker"] >= ndcg[NO_RERANK] * (1 - config.rerank_budget)
    if len(truth) < config.min_gate_listeners:
        passed = False
        verdict = (
            f"only {len(truth)} listeners to judge on (need {config.min_gate_listeners}): not enough evidence"
        )
    else:
        ranker = ndcg["ranker"] if rerank_kept else ndcg[NO_RERANK]
        passed = ranker > ndcg["als"] and ranker > ndcg["hybrid"]
        verdict = (
            f"ranker nDCG@{k} {ranker:.4f} vs ALS alone {ndcg['als']:.4f}, hybrid {ndcg['hybrid']:.4f}, "
            f"popularity {ndcg['popularity']:.4f} on {len(truth)} held-out listeners"
            + (
                ""
                if rerank_kept
                else f" (re-rank rule dropped: it cost {1 - ndcg['ranker'] / ndcg[NO_RERANK]:.1%})"
            )
            + (": the ranker serves" if passed else f": {fallback} serves")
        )

    learners = [query.users[learn] for query, learn in zip(sets, learning, strict=True)]
    features, labels, groups, weights = _training_arrays(sets, learners, config, rng)
    serving = Ranker.train(features, labels, groups, config.params, weights)
    serving.calibrate(np.concatenate(margins), np.concatenate(margin_labels))
    result = GateResult(
        passed=passed,
        verdict=verdict,
        policy="ranker" if passed else fallback,
        metrics=metrics,
        by_kind=by_kind,
        gate_listeners=len(truth),
        train_listeners=trained_on,
        train_rows=len(labels),
        calibration={"slope": serving.slope, "intercept": serving.intercept},
        importance=serving.importance(),
        rerank_kept=rerank_kept,
    )
    return serving, result
