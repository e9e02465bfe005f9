"""`ranker_model`: the LightGBM ranker (ranking/), trained on time splits of the current ALS version's data, judged
against ALS alone and the hybrid, and promoted only when it beats both (the blocking `beats_als_and_hybrid`)."""

from datetime import UTC, date, datetime, time, timedelta
from typing import Literal

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    Config,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)
from dagster_pyspark import PySparkResource
from pydantic import Field

from podrec_assets.defs.resources import DeltaLakeResource, ModelStoreResource
from podrec_assets.lib.lakehouse import read_table
from podrec_assets.lib.models.als import AlsParams, fit_als, model_factors
from podrec_assets.lib.models.evaluation import timed
from podrec_assets.lib.models.factors import index_ids, training_rows
from podrec_assets.lib.models.recommend import AlsModel, read_model
from podrec_assets.lib.models.registry import RunRecord, flatten, numeric
from podrec_assets.lib.models.training import load_interactions, read_split
from podrec_assets.lib.ranking.candidates import RecallConfig
from podrec_assets.lib.ranking.catalog import align_model, build_catalog
from podrec_assets.lib.ranking.listeners import ANCHORS, HALF_LIFE_DAYS
from podrec_assets.lib.ranking.ranker import RankerParams
from podrec_assets.lib.ranking.strategies import StrategyConfig
from podrec_assets.lib.ranking.training import RankerTrainingConfig, make_snapshot, query_set, train_and_gate
from podrec_assets.names import (
    ALS_MODEL,
    DAILY_ENGAGEMENT,
    EPISODE_SIMILARITY,
    EPISODES,
    RANKER_MODEL,
    SPARK_POOL,
    TRANSCRIPT_EMBEDDINGS,
)


class RankerConfig(Config):
    """The launchpad's view of the ranker's settings; every default is the plain code's own (ranking/)."""

    label_days: int = Field(
        default=14, ge=1, description="days after each global cut whose positives are labels"
    )
    cuts: int = Field(
        default=3, ge=0, description="global cuts (each one more ALS fit) besides the per-user split"
    )
    cut_weight: float = Field(
        default=RankerTrainingConfig.cut_weight,
        gt=0,
        description="weight of a cut's query against a per-user one",
    )
    folds: int = Field(
        default=RankerTrainingConfig.folds, ge=2, description="listener folds of the cross-fitted gate"
    )
    n_estimators: int = Field(default=RankerParams.n_estimators, ge=1)
    learning_rate: float = Field(default=RankerParams.learning_rate, gt=0)
    num_leaves: int = Field(default=RankerParams.num_leaves, ge=2)
    min_child_samples: int = Field(default=RankerParams.min_child_samples, ge=1)
    objective: Literal["rank_xendcg", "lambdarank", "binary"] = Field(
        default=RankerParams.objective,
        description="LightGBM objective: XE-NDCG (listwise), LambdaRank (pairwise) or binary (pointwise)",
    )
    seed: int = Field(
        default=RankerParams.seed,
        description="LightGBM's seed (row and feature sampling, the objective's own)",
    )
    recall_als: int = Field(default=RecallConfig.als, ge=0, description="candidates from ALS per listener")
    recall_content: int = Field(
        default=RecallConfig.content, ge=0, description="candidates from content neighbours"
    )
    recall_popular: int = Field(
        default=RecallConfig.popular, ge=0, description="candidates from the week's most liked"
    )
    recall_new: int = Field(
        default=RecallConfig.new, ge=0, description="candidates among the newest episodes"
    )
    anchors: int = Field(
        default=ANCHORS,
        ge=0,
        description="a listener's strongest engaged episodes whose neighbours are candidates",
    )
    half_life_days: float = Field(
        default=HALF_LIFE_DAYS, gt=0, description="an anchor's weight halves every this many days"
    )
    per_show: int = Field(
        default=StrategyConfig.per_show,
        ge=0,
        description="re-rank: at most this many of one show in a top 10",
    )
    rerank_budget: float = Field(
        default=RankerTrainingConfig.rerank_budget,
        ge=0,
        le=1,
        description="the largest relative nDCG@10 loss the re-rank rule may cost",
    )
    als_weight: float = Field(
        default=StrategyConfig.als_weight, ge=0, le=1, description="the hybrid baseline's blend weight"
    )
    cold_weight: float = Field(
        default=StrategyConfig.cold_weight,
        ge=0,
        le=1,
        description="the hybrid baseline's weight on new episodes",
    )
    max_training_listeners: int = Field(
        default=RankerTrainingConfig.max_training_listeners,
        ge=0,
        description="per snapshot, the most listeners the rankers learn from (a stable sample past it; 0: all); "
        "the gate still judges every listener",
    )
    shuffle_labels: bool = Field(
        default=False, description="sanity switch: train on permuted labels (the gate must refuse the result)"
    )

    def strategy(self) -> StrategyConfig:
        return StrategyConfig(
            recall=RecallConfig(self.recall_als, self.recall_content, self.recall_popular, self.recall_new),
            als_weight=self.als_weight,
            cold_weight=self.cold_weight,
            per_show=self.per_show,
        )

    def training(self) -> RankerTrainingConfig:
        params = RankerParams(
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            num_leaves=self.num_leaves,
            min_child_samples=self.min_child_samples,
            objective=self.objective,
            seed=self.seed,
        )
        return RankerTrainingConfig(
            params=params,
            folds=self.folds,
            cut_weight=self.cut_weight,
            shuffle_labels=self.shuffle_labels,
            rerank_budget=self.rerank_budget,
            max_training_listeners=self.max_training_listeners,
        )


def fit_in_memory(spark, pairs: pd.DataFrame, params: AlsParams, name: str) -> AlsModel:
    """An ALS fit (Spark) of `pairs` with the version's parameters, kept in memory (a cut's model is not served)."""
    indexed, ids = index_ids(pairs)
    users, items = model_factors(
        fit_als(spark.createDataFrame(training_rows(indexed, params.negative_feedback)), params)
    )
    return AlsModel(name, ids.user_ids, ids.episode_ids, users, items, params.reg_param, params.alpha)


def _day_end(day: date) -> float:
    return datetime.combine(day + timedelta(days=1), time(), UTC).timestamp()


@asset(
    name=RANKER_MODEL,
    deps=[ALS_MODEL, DAILY_ENGAGEMENT, EPISODES, TRANSCRIPT_EMBEDDINGS, EPISODE_SIMILARITY],
    pool=SPARK_POOL,
    description="A LightGBM ranker (XE-NDCG) over candidates from ALS, content, popularity and new episodes "
    "(ranking/), trained with labels from time splits of the champion ALS version's window. Each run is an "
    "MLflow run and a version of the registered model podrec-ranker; it gets the `champion` alias (and serves) "
    "only if, judged on held-out listeners, it beats ALS alone and the hybrid; otherwise the better of those two "
    "serves (serving/policy.py).",
    check_specs=[
        AssetCheckSpec(
            "beats_als_and_hybrid",
            asset=RANKER_MODEL,
            blocking=True,
            description="nDCG@10 on held-out listeners (cross-fitted, per-user and global time splits) above both "
            "ALS alone and the hybrid; else not promoted",
        )
    ],
)
def ranker_model(
    context: AssetExecutionContext,
    config: RankerConfig,
    pyspark: PySparkResource,
    delta: DeltaLakeResource,
    models: ModelStoreResource,
):
    als_registry = models.registry("als")
    als_version = als_registry.current()
    if als_version is None:
        raise Failure("no ALS model is promoted yet: the ranker learns on top of one")
    manifest = als_registry.manifest(als_version)
    model_dir = als_registry.path(als_version)
    params = AlsParams(**manifest["params"])
    options = delta.storage_options()
    episodes = read_table(
        delta.table_uri(EPISODES), ["episode_id", "title", "show", "categories", "published_at"], options
    )
    if episodes is None:
        raise Failure("episodes must be materialized first")
    catalog = build_catalog(
        episodes,
        read_table(delta.table_uri(TRANSCRIPT_EMBEDDINGS), ["episode_id", "vector"], options),
        read_table(
            delta.table_uri(EPISODE_SIMILARITY), ["episode_id", "similar_episode_id", "score"], options
        ),
    )
    timings: dict[str, float] = {}
    sets, described = [], []

    with timed(timings, "user_split_s"):
        heldout = read_model(model_dir, als_version, fit="heldout")
        split = read_split(model_dir)
        named = split.assign(
            user_id=pd.Series(heldout.user_ids, dtype=object).to_numpy()[split["user_idx"]],
            episode_id=pd.Series(heldout.episode_ids, dtype=object).to_numpy()[split["episode_idx"]],
        )
        history, later = named[~named["held_out"]], named[named["held_out"]]
        t_ref = pd.to_datetime(history["last_ts"], utc=True).max().timestamp()
        snapshot = make_snapshot(
            "each listener's newest 20%",
            "user",
            history,
            later,
            catalog,
            align_model(heldout, catalog),
            t_ref,
            config.anchors,
            config.half_life_days,
        )
        sets.append(query_set(snapshot, config.strategy().recall))
        described.append({"name": snapshot.name, "kind": "user", "listeners": len(snapshot.truth)})

    spark = pyspark.spark_session
    uri = delta.table_uri(DAILY_ENGAGEMENT)
    data_version = manifest["training_data"]["daily_engagement_version"]
    first, last = (date.fromisoformat(d) for d in manifest["training_data"]["window"])
    for k in range(1, config.cuts + 1):
        history_last = last - timedelta(days=k * config.label_days)
        if history_last < first:
            break
        label_first, label_last = (
            history_last + timedelta(days=1),
            history_last + timedelta(days=config.label_days),
        )
        with timed(timings, f"cut_{k}_s"):
            history = load_interactions(spark, uri, first, history_last, data_version, options)
            later = load_interactions(spark, uri, label_first, label_last, data_version, options)
            if history.empty or later.empty:
                continue
            fitted = fit_in_memory(spark, history, params, f"{als_version}@cut{k}")
            snapshot = make_snapshot(
                f"cut {label_first}",
                "cut",
                history,
                later,
                catalog,
                align_model(fitted, catalog),
                _day_end(history_last),
                config.anchors,
                config.half_life_days,
            )
            sets.append(query_set(snapshot, config.strategy().recall))
            described.append(
                {
                    "name": snapshot.name,
                    "kind": "cut",
                    "history_until": history_last.isoformat(),
                    "labels": [label_first.isoformat(), label_last.isoformat()],
                    "listeners": len(snapshot.truth),
                }
            )

    with timed(timings, "train_and_gate_s"):
        ranker, gate = train_and_gate(sets, config.strategy(), config.training())
    registry = models.registry("ranker")
    version = registry.new_version(context.run.run_id)
    staged = registry.staging(version)
    ranker.save(staged)
    record = RunRecord(
        params=flatten(config.model_dump()),
        metrics=numeric(
            {
                **flatten(gate.metrics),
                **{f"seconds.{phase.removesuffix('_s')}": s for phase, s in timings.items()},
                "listeners_judged": gate.gate_listeners,
                "training_rows": gate.train_rows,
            }
        ),
        tags={
            "dagster_run_id": context.run.run_id,
            "als_version": als_version,
            "gate_passed": str(gate.passed),
            "gate_verdict": gate.verdict,
            "serving_policy": gate.policy,
        },
    )
    path = registry.publish(
        version,
        {
            "version": version,
            "created_at": datetime.now(UTC).isoformat(),
            "dagster_run_id": context.run.run_id,
            "als_version": als_version,
            "config": config.model_dump(),
            "snapshots": described,
            "gate": {
                "passed": gate.passed,
                "verdict": gate.verdict,
                "policy": gate.policy,
                "k": 10,
                "metrics": gate.metrics,
                "ndcg_by_split_kind": gate.by_kind,
                "listeners_judged": gate.gate_listeners,
                "rerank_kept": gate.rerank_kept,
            },
            "training": {
                "rows": gate.train_rows,
                "calibration": gate.calibration,
                "importance": gate.importance,
            },
            "phase_seconds": {k: round(v, 2) for k, v in timings.items()},
        },
        record,
    )
    if gate.passed:
        registry.promote(version, reason=gate.verdict)
    context.log.info(f"ranker {version}: {gate.verdict}")
    ndcg = {name: values["ndcg@10"] for name, values in gate.metrics.items()}
    yield MaterializeResult(
        metadata={
            "version": version,
            "mlflow_model_version": registry.mlflow_version(version),
            "path": MetadataValue.path(str(path)),
            "promoted": gate.passed,
            "serving_strategy": gate.policy,
            "rerank_kept": gate.rerank_kept,
            "als_version": als_version,
            **{f"{name}_ndcg@10": value for name, value in ndcg.items()},
            "metrics": MetadataValue.json(gate.metrics),
            "ndcg_by_split_kind": MetadataValue.json(gate.by_kind),
            "listeners_judged": gate.gate_listeners,
            "snapshots": MetadataValue.json(described),
            "feature_importance": MetadataValue.json(gate.importance),
            "phase_seconds": MetadataValue.json({k: round(v, 2) for k, v in timings.items()}),
        },
        check_results=[
            AssetCheckResult(
                check_name="beats_als_and_hybrid",
                passed=gate.passed,
                metadata={
                    "verdict": gate.verdict,
                    **{f"{n}_ndcg@10": v for n, v in ndcg.items()},
                    "version": version,
                },
            )
        ],
    )
