"""`als_model` (a new model version per run, promoted only past the quality gate) and `als_recommendations`."""

from datetime import UTC, datetime

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
from deltalake import DeltaTable, write_deltalake
from pydantic import Field

from podrec_assets.defs.resources import DeltaLakeResource, ModelStoreResource
from podrec_assets.lib.lakehouse import delta_version
from podrec_assets.lib.models.als import AlsParams, fit_als, model_factors
from podrec_assets.lib.models.evaluation import fit_and_evaluate, temporal_holdout, timed
from podrec_assets.lib.models.factors import index_ids, training_rows
from podrec_assets.lib.models.recommend import recommend_all_users
from podrec_assets.lib.models.registry import RunRecord, flatten, numeric
from podrec_assets.lib.models.training import engagement_window, load_interactions, save_version
from podrec_assets.names import ALS_MODEL, ALS_RECOMMENDATIONS, DAILY_ENGAGEMENT, SPARK_POOL


class AlsParamsConfig(AlsParams, Config):
    """The plain `AlsParams` (lib/models/als.py) as Dagster run config."""


class AlsTrainingConfig(Config):
    params: AlsParamsConfig = Field(
        default_factory=AlsParamsConfig, description="ALS hyper-parameters (lib/models/als.py)"
    )
    candidate_params: list[AlsParamsConfig] = Field(
        default_factory=list,
        description="more settings to try besides `params`: each is fitted on the held-out split and the best "
        "nDCG is chosen (and refitted for serving); every candidate costs one more fit",
    )
    # two years: a listener back after a year away is still known, and more history was better on MovieLens
    # (a 90-day window 0.168 against 365 days' 0.203, docs/quality.md); a data set replayed over more than a year
    # would otherwise train on its last year only
    window_days: int = Field(
        default=730, ge=1, description="days of engagement to learn from, ending at the newest day"
    )
    holdout_fraction: float = Field(
        default=0.2, description="each user's most recent share of pairs held out"
    )
    min_user_pairs: int = Field(default=5, description="users with fewer pairs are not held out from")
    k: int = Field(default=10, description="list length the metrics are computed at")
    min_users_evaluated: int = Field(default=10, description="fewer evaluated users than this fails the gate")


def gate(ndcg_model: float, ndcg_popularity: float, users: int, min_users: int) -> tuple[bool, str]:
    """The promotion rule: the model must beat popularity on nDCG, measured on enough users."""
    if users < min_users:
        return (
            False,
            f"only {users} users could be evaluated (need {min_users}): not enough evidence to promote",
        )
    if ndcg_model <= ndcg_popularity:
        return False, f"nDCG {ndcg_model:.4f} does not beat popularity's {ndcg_popularity:.4f}"
    return True, f"nDCG {ndcg_model:.4f} beats popularity's {ndcg_popularity:.4f}"


@asset(
    name=ALS_MODEL,
    deps=[DAILY_ENGAGEMENT],
    pool=SPARK_POOL,
    description="Implicit ALS trained on daily_engagement over a window. Each run fits once without each user's "
    "newest pairs (the held-out fit: it chooses the parameters and is judged against popularity), then refits the "
    "chosen parameters on every pair (the serving fit), and logs both as an MLflow run and a version of the registered "
    "model podrec-als, which gets the `champion` alias (and serves) only if the held-out fit beats popularity on nDCG.",
    check_specs=[
        AssetCheckSpec(
            "beats_popularity",
            asset=ALS_MODEL,
            blocking=True,
            description="nDCG@k on a temporal hold-out above the popularity baseline's; else not promoted",
        ),
    ],
)
def als_model(
    context: AssetExecutionContext,
    config: AlsTrainingConfig,
    pyspark: PySparkResource,
    delta: DeltaLakeResource,
    models: ModelStoreResource,
):
    uri, options = delta.table_uri(DAILY_ENGAGEMENT), delta.storage_options()
    data_version = delta_version(uri, options)
    window = engagement_window(uri, config.window_days, options, data_version)
    if window is None:
        raise Failure("daily_engagement has no data yet: materialize some of its partitions first")
    spark = pyspark.spark_session

    timings: dict[str, float] = {}
    with timed(timings, "load_s"):
        interactions = load_interactions(spark, uri, *window, data_version, options)
    with timed(timings, "split_s"):
        indexed, ids = index_ids(interactions)
        split = temporal_holdout(indexed, config.holdout_fraction, config.min_user_pairs)
    catalog = (len(ids.user_ids), len(ids.episode_ids))
    tried = []
    for params in [config.params, *config.candidate_params]:
        tried.append((params, fit_and_evaluate(spark, split, catalog, params, config.k)))
    params, evaluation = max(tried, key=lambda pair: pair[1].ndcg[0])  # first of equals: the configured one
    timings.update(evaluation.timings)
    ndcg, ndcg_popularity = evaluation.ndcg
    passed, verdict = gate(ndcg, ndcg_popularity, evaluation.users_evaluated, config.min_users_evaluated)

    # The held-out fit never saw each user's newest pairs, which predict the future best: serve a refit on all.
    with timed(timings, "refit_s"):
        serving_rows = training_rows(split, params.negative_feedback)
        serving = model_factors(fit_als(spark.createDataFrame(serving_rows), params))

    registry = models.registry("als")
    version = registry.new_version(context.run.run_id)
    record = RunRecord(
        params={**params.model_dump(), **config.model_dump(exclude={"params", "candidate_params"})},
        metrics=numeric(
            {
                **flatten(evaluation.metrics),
                **{f"seconds.{phase.removesuffix('_s')}": s for phase, s in timings.items()},
                "users_evaluated": evaluation.users_evaluated,
                "users": len(ids.user_ids),
                "episodes": len(ids.episode_ids),
                "train_pairs": evaluation.train_pairs,
                "held_out_pairs": evaluation.held_out_pairs,
                "serving_train_pairs": len(serving_rows),
            }
        ),
        tags={
            "dagster_run_id": context.run.run_id,
            "gate_passed": str(passed),
            "gate_verdict": verdict,
            "daily_engagement_version": str(data_version),
            "window": f"{window[0]}..{window[1]}",
        },
    )
    with timed(timings, "save_s"):
        path = save_version(
            registry,
            version,
            serving,
            evaluation,
            ids,
            split,
            manifest={
                "version": version,
                "created_at": datetime.now(UTC).isoformat(),
                "dagster_run_id": context.run.run_id,
                "params": params.model_dump(),
                "evaluation": {
                    "protocol": "temporal hold-out",
                    "holdout_fraction": config.holdout_fraction,
                    "min_user_pairs": config.min_user_pairs,
                    "k": config.k,
                    "users_evaluated": evaluation.users_evaluated,
                    "metrics": evaluation.metrics,
                },
                "fits": {
                    "heldout": {
                        "purpose": "chooses the parameters and is gated: trained without each user's newest pairs",
                        "train_pairs": evaluation.train_pairs,
                        "held_out_pairs": evaluation.held_out_pairs,
                        "users": len(evaluation.user_factors.ids),
                        "episodes": len(evaluation.item_factors.ids),
                        "metrics": evaluation.metrics,
                        "candidates": [{"params": p.model_dump(), "ndcg": e.ndcg[0]} for p, e in tried],
                    },
                    "serving": {
                        "purpose": "what scores: the chosen parameters refitted on every pair of the window",
                        "train_pairs": len(serving_rows),
                        "users": len(serving[0].ids),
                        "episodes": len(serving[1].ids),
                        "metrics": "not measurable offline: no pair is left to judge it on; the held-out fit's "
                        "metrics stand for it",
                    },
                },
                "training_data": {
                    "daily_engagement_version": data_version,
                    "window": [d.isoformat() for d in window],
                    "users": len(ids.user_ids),
                    "episodes": len(ids.episode_ids),
                    "train_pairs": evaluation.train_pairs,
                    "held_out_pairs": evaluation.held_out_pairs,
                },
                "gate": {"passed": passed, "verdict": verdict},
            },
            record=record,
        )
    if passed:
        registry.promote(version, reason=verdict)
    context.log.info(f"model {version}: {verdict}; current model: {registry.current()}")
    context.log.info("phases (s): " + ", ".join(f"{k} {v:.2f}" for k, v in timings.items()))

    yield MaterializeResult(
        metadata={
            "version": version,
            "mlflow_model_version": registry.mlflow_version(version),
            "path": MetadataValue.path(str(path)),
            "promoted": passed,
            "current_version": registry.current() or "",
            **{f"als_{name}": value for name, value in evaluation.metrics["als"].items()},
            **{f"popularity_{name}": value for name, value in evaluation.metrics["popularity"].items()},
            "users_evaluated": evaluation.users_evaluated,
            "users": len(ids.user_ids),
            "episodes": len(ids.episode_ids),
            "train_pairs": evaluation.train_pairs,
            "serving_train_pairs": len(serving_rows),
            "window": MetadataValue.json([d.isoformat() for d in window]),
            "daily_engagement_version": data_version,
            "params": MetadataValue.json(params.model_dump()),
            "phase_seconds": MetadataValue.json({k: round(v, 2) for k, v in timings.items()}),
        },
        check_results=[
            AssetCheckResult(
                check_name="beats_popularity",
                passed=passed,
                metadata={
                    "verdict": verdict,
                    "ndcg": ndcg,
                    "popularity_ndcg": ndcg_popularity,
                    "version": version,
                },
            )
        ],
    )


class AlsRecommendationsConfig(Config):
    top_n: int = Field(default=20, description="recommendations per user")


@asset(
    name=ALS_RECOMMENDATIONS,
    deps=[ALS_MODEL],
    description="Top-N episodes per user from the champion ALS model; no episode the user ever engaged with "
    "(heard, skipped, rated) is included. Replaced as a whole on each run.",
)
def als_recommendations(
    context: AssetExecutionContext,
    config: AlsRecommendationsConfig,
    delta: DeltaLakeResource,
    models: ModelStoreResource,
    pyspark: PySparkResource,
) -> MaterializeResult:
    from podrec_assets.lib.models.recommend import model_users
    from podrec_assets.lib.models.recommend_spark import recommend_all_users_spark
    from podrec_assets.lib.settings import SPARK, scoring_path, spark_path_min_listeners

    registry = models.registry("als")
    version = registry.current()
    if version is None:
        raise Failure("no ALS model has been promoted yet (see the als_model beats_popularity check)")
    options = delta.storage_options()
    path = scoring_path(model_users(registry.path(version)))
    # above the threshold a Spark cluster scores the listeners (lib/models/recommend_spark.py)
    if path == SPARK:
        recommendations = recommend_all_users_spark(pyspark.spark_session, registry.path(version), version,
                                                    delta.table_uri(DAILY_ENGAGEMENT), config.top_n,
                                                    datetime.now(UTC), options)  # fmt: skip
    else:
        engagement = DeltaTable(delta.table_uri(DAILY_ENGAGEMENT), storage_options=options)
        engaged = engagement.to_pyarrow_table(columns=["user_id", "episode_id"])
        recommendations = recommend_all_users(
            registry.path(version), version, engaged, config.top_n, datetime.now(UTC)
        )
    uri = delta.table_uri(ALS_RECOMMENDATIONS)
    write_deltalake(uri, recommendations, mode="overwrite", schema_mode="overwrite", storage_options=options)
    return MaterializeResult(
        metadata={
            "model_version": version,
            "path": path,
            "spark_path_min_listeners": spark_path_min_listeners(),
            "rows": recommendations.num_rows,
            "users": len(set(recommendations.column("user_id").to_pylist())),
            "delta_version": delta_version(uri, options),
            "table_uri": MetadataValue.path(uri),
        }
    )
