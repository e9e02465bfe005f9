"""The serving layer in Dagster:
- `final_recommendations` (Delta): every listener's list by the serving strategy (serving/policy.py: the ranker
  when it passed its gate, else the better of ALS alone and the hybrid), gated by blocking checks;
- `published_recommendations` (MongoDB `user_recommendations`, `final_recommendations`, seed 000's `als_top_n`),
  each replaced atomically, only from a Delta version the blocking checks passed on (serving/gate.py);
- `fresh_recommendations` (MongoDB `user_recommendations`, one document at a time): after each ingestion, fresh
  lists for the listeners with new events (serving/realtime.py)."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc
from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetSelection,
    AutomationCondition,
    Config,
    Failure,
    FreshnessPolicy,
    MaterializeResult,
    MetadataValue,
    asset,
)
from dagster_pyspark import PySparkResource
from deltalake import write_deltalake
from pydantic import Field

from podrec_assets.defs.models.checks import ALS_RECOMMENDATIONS_GATE
from podrec_assets.defs.models.ranker import RankerConfig
from podrec_assets.defs.resources import DeltaLakeResource, ModelStoreResource, MongoResource
from podrec_assets.defs.serving.checks import FINAL_RECOMMENDATIONS_GATE
from podrec_assets.defs.serving.gate import NotVerifiedError, verified_version
from podrec_assets.lib.engagement.weights import EventWeights
from podrec_assets.lib.lakehouse import delta_version, read_table
from podrec_assets.lib.models.recommend import read_model
from podrec_assets.lib.ranking.history import merge_pairs, pairs_from_daily, pairs_from_events
from podrec_assets.lib.serving.lookup import ALS_TOP_N_INDEXES, FINAL_RECOMMENDATIONS_INDEXES, final_documents
from podrec_assets.lib.serving.policy import Policy, serving_policy
from podrec_assets.lib.serving.publish import publish_collection
from podrec_assets.lib.serving.realtime import HISTORY_COLUMNS, refresh_since_cursor, user_documents
from podrec_assets.lib.serving.recommendations import (
    ListsConfig,
    build_context,
    cold_start_rows,
    list_rows,
)
from podrec_assets.names import (
    ALS_MODEL,
    ALS_RECOMMENDATIONS,
    ALS_TOP_N,
    DAILY_ENGAGEMENT,
    EPISODE_SIMILARITY,
    EPISODES,
    FINAL_RECOMMENDATIONS,
    FRESH_RECOMMENDATIONS,
    PUBLISHED_RECOMMENDATIONS,
    RANKER_MODEL,
    RAW_USER_EVENTS,
    TRANSCRIPT_EMBEDDINGS,
    USER_RECOMMENDATIONS,
)


class FinalRecommendationsConfig(Config):
    top_n: int = Field(default=20, ge=1, le=1000, description="recommendations per listener")


def lists_config(models: ModelStoreResource, policy: Policy, top_n: int) -> ListsConfig:
    """Recall, re-rank and hybrid settings as the judging ranker was trained and judged with (defaults if none)."""
    settings, rerank_kept = {}, True
    if policy.ranker_version:
        manifest = models.registry("ranker").manifest(policy.ranker_version)
        settings, rerank_kept = manifest.get("config", {}), manifest["gate"].get("rerank_kept", True)
    ranker = RankerConfig(**settings)
    strategy = ranker.strategy()
    return ListsConfig(
        strategy=replace(strategy, n=top_n, per_show=strategy.per_show if rerank_kept else 0),
        anchors=ranker.anchors,
        half_life_days=ranker.half_life_days,
    )


def serving_history(delta: DeltaLakeResource, raw_version: int | None):
    """Every listener's history pairs: daily_engagement's closed days, plus the raw events of the days it does
    not hold yet (the open day), read at `raw_version`."""
    options = delta.storage_options()
    daily = read_table(delta.table_uri(DAILY_ENGAGEMENT), storage_options=options)
    newest = max(daily.column("event_date").to_pylist()) if daily is not None and daily.num_rows else None
    raw = earlier_ratings = None
    if raw_version is not None:
        filters = [("event_date", ">", newest)] if newest else None
        raw = read_table(delta.table_uri(RAW_USER_EVENTS), HISTORY_COLUMNS, options, filters, raw_version)
        if newest and raw is not None and pc.any(pc.equal(raw.column("event_type"), "rate")).as_py():
            # an open-day rating replaces the pair's closed-day one: read those, for the listeners who rated today
            raters = pc.unique(raw.filter(pc.equal(raw.column("event_type"), "rate")).column("user_id"))
            closed = [("event_date", "<=", newest), ("event_type", "=", "rate")]
            earlier_ratings = read_table(
                delta.table_uri(RAW_USER_EVENTS), HISTORY_COLUMNS, options, closed, raw_version
            )
            if earlier_ratings is not None:
                earlier_ratings = earlier_ratings.filter(pc.is_in(earlier_ratings.column("user_id"), raters))
    return merge_pairs(pairs_from_daily(daily), pairs_from_events(raw, EventWeights(), earlier_ratings))


def serving_context(
    delta: DeltaLakeResource, models: ModelStoreResource, top_n: int, now: datetime, raw_version: int | None
):
    """The ServingContext from the Delta tables and the registries, and everyone's history pairs."""
    options = delta.storage_options()
    episodes = read_table(
        delta.table_uri(EPISODES), ["episode_id", "title", "show", "categories", "published_at"], options
    )
    if episodes is None:
        raise Failure("episodes must be materialized first: nothing can be recommended without a catalog")
    policy = serving_policy(models.root, models.tracking_uri)
    model = None
    if policy.als_version:
        model = read_model(models.registry("als").path(policy.als_version), policy.als_version)
    everyone = serving_history(delta, raw_version)
    ctx = build_context(
        episodes,
        read_table(delta.table_uri(TRANSCRIPT_EMBEDDINGS), ["episode_id", "vector"], options),
        read_table(
            delta.table_uri(EPISODE_SIMILARITY), ["episode_id", "similar_episode_id", "score"], options
        ),
        everyone,
        model,
        policy,
        lists_config(models, policy, top_n),
        now,
    )
    return ctx, everyone


@asset(
    name=FINAL_RECOMMENDATIONS,
    deps=[
        ALS_MODEL,
        RANKER_MODEL,
        EPISODE_SIMILARITY,
        TRANSCRIPT_EMBEDDINGS,
        EPISODES,
        DAILY_ENGAGEMENT,
        RAW_USER_EVENTS,
    ],
    description="Top-N per listener by the serving strategy (serving/policy.py: the ranker if it passed its gate, "
    "else the better of ALS alone and the hybrid), each with a score on the strategy's documented scale and the "
    "reason that produced it; listeners without history get this week's most liked. Replaced as a whole.",
)
def final_recommendations(
    context: AssetExecutionContext,
    config: FinalRecommendationsConfig,
    delta: DeltaLakeResource,
    models: ModelStoreResource,
    pyspark: PySparkResource,
) -> MaterializeResult:
    from podrec_assets.lib.serving.lists_spark import list_rows_spark
    from podrec_assets.lib.settings import SPARK, scoring_path, spark_path_min_listeners

    options = delta.storage_options()
    raw_version = delta_version(delta.table_uri(RAW_USER_EVENTS), options)
    now = datetime.now(UTC)
    ctx, everyone = serving_context(delta, models, config.top_n, now, raw_version)
    context.log.info(f"serving strategy {ctx.policy.strategy}: {ctx.policy.why}")
    users = sorted(set(everyone["user_id"]))
    path = scoring_path(len(users))
    if path == SPARK:  # above the threshold a Spark cluster ranks the listeners (lib/serving/lists_spark.py)
        listed = list_rows_spark(pyspark.spark_session, ctx, everyone, users, now)
    else:
        listed = list_rows(ctx, everyone, users, now)
    rows = pa.concat_tables([listed, cold_start_rows(ctx, now)])
    uri = delta.table_uri(FINAL_RECOMMENDATIONS)
    write_deltalake(uri, rows, mode="overwrite", schema_mode="overwrite", storage_options=options)
    sources = rows.group_by("source").aggregate([("source", "count")]).to_pylist()
    return MaterializeResult(
        metadata={
            "users": len(users),
            "rows": rows.num_rows,
            "path": path,
            "spark_path_min_listeners": spark_path_min_listeners(),
            "strategy": ctx.policy.strategy,
            "why": ctx.policy.why,
            "by_source": MetadataValue.json({r["source"]: r["source_count"] for r in sources}),
            "model_version": ctx.policy.als_version,
            "ranker_version": ctx.policy.ranker_version,
            "top_n": config.top_n,
            # the raw_user_events version the lists' history reaches (the publish refreshes anyone newer)
            "raw_user_events_version": raw_version if raw_version is not None else -1,
            "delta_version": delta_version(uri, options),
        }
    )


def als_top_n_documents(rows: pa.Table):
    """MongoDB `als_top_n` documents in seed 000's shape (user_id, new_episode_id, als_score) plus rank/version."""
    for row in rows.to_pylist():
        yield {
            "_id": f"{row['user_id']}:{row['rank']}",
            "user_id": row["user_id"],
            "new_episode_id": row["episode_id"],
            "als_score": float(row["score"]),
            "rank": row["rank"],
            "model_version": row["model_version"],
            "generated_at": row["generated_at"],
        }


def built_with(context: AssetExecutionContext, published: int) -> tuple[int, int]:
    """(the raw_user_events version the published final_recommendations version was built at, its top_n), from
    that materialization's metadata; (−1, 20) if unknown: the refresh after the swap then covers everyone."""
    records = context.instance.fetch_materializations(AssetKey(FINAL_RECOMMENDATIONS), limit=50).records
    for record in records:
        metadata = record.asset_materialization.metadata
        if "raw_user_events_version" in metadata and int(metadata["delta_version"].value) == published:
            return int(metadata["raw_user_events_version"].value), int(metadata["top_n"].value)
    return -1, 20


@asset(
    name=PUBLISHED_RECOMMENDATIONS,
    # the nightly run publishes every list: a day and a bit without one means the nightly job is not running
    freshness_policy=FreshnessPolicy.time_window(
        fail_window=timedelta(hours=27), warn_window=timedelta(hours=25)
    ),
    deps=[FINAL_RECOMMENDATIONS, ALS_RECOMMENDATIONS],
    description="MongoDB `user_recommendations` (one document per user: what serving reads), "
    "`final_recommendations` (seed 001's shape) and `als_top_n` (seed 000's), each replaced atomically: "
    "readers see the previous complete set or the new one. Publishes only the Delta version final_recommendations' "
    "blocking checks last passed on (serving/gate.py), so a bad set never goes live, even in a run of its own; "
    "then refreshes every listener whose events arrived after that version was built.",
)
def published_recommendations(
    context: AssetExecutionContext, delta: DeltaLakeResource, mongo: MongoResource, models: ModelStoreResource
) -> MaterializeResult:
    options = delta.storage_options()
    # Only versions that passed their blocking checks, even when this runs apart from the checks' run.
    final_version = verified_version(context.instance, FINAL_RECOMMENDATIONS, FINAL_RECOMMENDATIONS_GATE)
    final = read_table(delta.table_uri(FINAL_RECOMMENDATIONS), storage_options=options, version=final_version)
    as_of, top_n = built_with(context, final_version)
    als, als_version, als_kept = None, None, ""
    if delta_version(delta.table_uri(ALS_RECOMMENDATIONS), options) is not None:
        try:
            als_version = verified_version(context.instance, ALS_RECOMMENDATIONS, ALS_RECOMMENDATIONS_GATE)
            als = read_table(
                delta.table_uri(ALS_RECOMMENDATIONS), storage_options=options, version=als_version
            )
        except NotVerifiedError as error:  # seed 000's collection keeps its previous set; serving goes on
            als_kept = str(error)
            context.log.warning(f"als_top_n not republished: {error}")
    history = read_table(delta.table_uri(DAILY_ENGAGEMENT), ["user_id"], options)
    users_with_history = pc.unique(history.column("user_id")).to_pylist() if history else []
    users_with_history = sorted(set(users_with_history) | set(final.column("user_id").to_pylist()))
    first = final.slice(0, 1).to_pylist()[0] if final.num_rows else None
    client = mongo.client()
    try:
        db = mongo.db(client)
        # the serving collection first: readers of the per-rank collections tolerate a short lag, serving does not
        documents = user_documents(
            final,
            users_with_history,
            as_of,
            first["generated_at"] if first else datetime.now(UTC),
            first["model_version"] if first else "",
        )
        report = publish_collection(db, USER_RECOMMENDATIONS, documents, [])
        metadata = {f"user_{k}": v for k, v in report.metadata().items()}
        # Listeners whose events came after the lists were built get fresh ones now (the swap just replaced any
        # near-real-time list they had); the cursor moves with them.
        ctx, _ = serving_context(
            delta, models, top_n, datetime.now(UTC), delta_version(delta.table_uri(RAW_USER_EVENTS), options)
        )
        refreshed = refresh_since_cursor(
            db, ctx, delta.table_uri(RAW_USER_EVENTS), datetime.now(UTC), options, at_least_after=as_of
        )
        metadata["refreshed_after_swap"] = refreshed.listeners
        report = publish_collection(
            db, FINAL_RECOMMENDATIONS, final_documents(final), FINAL_RECOMMENDATIONS_INDEXES
        )
        metadata.update({f"final_{k}": v for k, v in report.metadata().items()})
        if als is not None and als.num_rows:
            als_report = publish_collection(db, ALS_TOP_N, als_top_n_documents(als), ALS_TOP_N_INDEXES)
            metadata.update({f"als_top_n_{k}": v for k, v in als_report.metadata().items()})
    finally:
        client.close()
    metadata.update(
        {
            "final_recommendations_version": final_version,
            "als_recommendations_version": als_version,
            "als_top_n_kept_because": als_kept,
            "as_of_raw_user_events_version": as_of,
        }
    )
    return MaterializeResult(metadata=metadata)


class FreshRecommendationsConfig(Config):
    top_n: int = Field(default=20, ge=1, le=1000, description="recommendations per listener")


@asset(
    name=FRESH_RECOMMENDATIONS,
    deps=[RAW_USER_EVENTS, ALS_MODEL, RANKER_MODEL, EPISODES, EPISODE_SIMILARITY, TRANSCRIPT_EMBEDDINGS],
    # follows ingestion only; a new model reaches everyone through the nightly publish instead
    automation_condition=AutomationCondition.eager().ignore(
        AssetSelection.assets(ALS_MODEL, RANKER_MODEL, EPISODES, EPISODE_SIMILARITY, TRANSCRIPT_EMBEDDINGS)
    ),
    description="Near-real-time lists (serving/realtime.py): every listener with events in the raw_user_events "
    "versions since the last refresh gets a fresh list (fold-in against the current ALS model, anchors and "
    "candidates updated, re-ranked by the serving strategy), their `user_recommendations` document replaced on "
    "its own. Runs in the ingestion job, right after each ingestion.",
)
def fresh_recommendations(
    context: AssetExecutionContext,
    config: FreshRecommendationsConfig,
    delta: DeltaLakeResource,
    models: ModelStoreResource,
    mongo: MongoResource,
) -> MaterializeResult:
    options = delta.storage_options()
    raw_uri = delta.table_uri(RAW_USER_EVENTS)
    raw_version = delta_version(raw_uri, options)
    if raw_version is None or delta_version(delta.table_uri(EPISODES), options) is None:
        context.log.info("no events or no catalog yet: nothing to refresh")
        return MaterializeResult(metadata={"listeners_refreshed": 0})
    now = datetime.now(UTC)
    ctx, _ = serving_context(delta, models, config.top_n, now, raw_version)
    client = mongo.client()
    try:
        report = refresh_since_cursor(mongo.db(client), ctx, raw_uri, now, options)
    finally:
        client.close()
    context.log.info(
        f"refreshed {report.listeners} listeners (raw_user_events v{report.from_version}→"
        f"v{report.to_version}) with the {ctx.policy.strategy} strategy"
    )
    return MaterializeResult(
        metadata={
            "listeners_refreshed": report.listeners,
            "documents_written": report.written,
            "kept_newer": report.kept_newer,
            "empty_lists": report.empty_lists,
            "raw_user_events_versions": MetadataValue.json([report.from_version, report.to_version]),
            "strategy": ctx.policy.strategy,
            "model_version": ctx.policy.als_version,
            "ranker_version": ctx.policy.ranker_version,
            "examples": ", ".join(report.user_ids[:5]),
        }
    )
