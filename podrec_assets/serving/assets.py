"""`final_recommendations` (the hybrid, as a Delta table gated by blocking checks) and `published_recommendations`
(MongoDB `user_recommendations`, `final_recommendations` and seed 000's `als_top_n`, each replaced atomically). A
failing blocking check on the Delta table stops the publish, and the publish takes only the Delta version the
checks passed on (serving/gate.py), so the previous set stays live."""

import itertools
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc
from dagster import AssetExecutionContext, Failure, MaterializeResult, MetadataValue, asset
from deltalake import write_deltalake

from podrec_assets.content.tables import EPISODE_SIMILARITY, EPISODES
from podrec_assets.engagement.daily import DAILY_ENGAGEMENT
from podrec_assets.lakehouse import delta_version, read_table
from podrec_assets.models.assets import ALS_MODEL
from podrec_assets.models.checks import ALS_RECOMMENDATIONS_GATE
from podrec_assets.models.recommend import ALS_RECOMMENDATIONS, AlsModel, read_model
from podrec_assets.resources import DeltaLakeResource, ModelStoreResource, MongoResource
from podrec_assets.serving.checks import FINAL_RECOMMENDATIONS_GATE
from podrec_assets.serving.gate import NotVerifiedError, verified_version
from podrec_assets.serving.lookup import (
    ALS_TOP_N,
    ALS_TOP_N_INDEXES,
    FINAL_RECOMMENDATIONS,
    FINAL_RECOMMENDATIONS_INDEXES,
    USER_RECOMMENDATIONS,
    user_document,
)
from podrec_assets.serving.publish import publish_collection
from podrec_assets.serving.recommendations import HybridConfig
from podrec_assets.serving.recommendations import final_recommendations as build_final_recommendations

SERVING_GROUP = "serving"
PUBLISHED_RECOMMENDATIONS = "published_recommendations"


def current_als_model(models: ModelStoreResource) -> AlsModel | None:
    registry = models.registry("als")
    version = registry.current()
    if version is None:
        return None
    return read_model(registry.path(version), version)


@asset(
    name=FINAL_RECOMMENDATIONS,
    deps=[ALS_MODEL, EPISODE_SIMILARITY, EPISODES, DAILY_ENGAGEMENT],
    group_name=SERVING_GROUP,
    kinds={"delta"},
    description="Top-N per user blending the current ALS model and content similarity (serving/hybrid.py), each "
    "with a reason; users without history get popular episodes. Replaced as a whole on each run.",
)
def final_recommendations(
    context: AssetExecutionContext,
    config: HybridConfig,
    delta: DeltaLakeResource,
    models: ModelStoreResource,
) -> MaterializeResult:
    options = delta.storage_options()
    catalog = read_table(delta.table_uri(EPISODES), ["episode_id", "title"], options)
    daily = read_table(delta.table_uri(DAILY_ENGAGEMENT), storage_options=options)
    if catalog is None or daily is None:
        raise Failure("episodes and daily_engagement must be materialized first")
    similarity = read_table(delta.table_uri(EPISODE_SIMILARITY), storage_options=options)
    model = current_als_model(models)
    if model is None:
        context.log.warning(
            "no promoted ALS model: recommendations come from content similarity and popularity"
        )
    rows = build_final_recommendations(catalog, daily, similarity, model, config, datetime.now(UTC))
    uri = delta.table_uri(FINAL_RECOMMENDATIONS)
    write_deltalake(uri, rows, mode="overwrite", schema_mode="overwrite", storage_options=options)
    sources = rows.group_by("source").aggregate([("source", "count")]).to_pylist()
    return MaterializeResult(
        metadata={
            "users": len(set(rows.column("user_id").to_pylist())),
            "rows": rows.num_rows,
            "by_source": MetadataValue.json({r["source"]: r["source_count"] for r in sources}),
            "model_version": model.version if model else "",
            "als_weight": config.als_weight,
            "top_n": config.top_n,
            "delta_version": delta_version(uri, options),
        }
    )


def final_documents(rows: pa.Table) -> Iterator[dict]:
    """MongoDB `final_recommendations` documents: seed 001's fields (user_id, recommended_episode_id, score,
    generated_at) and podrec's (rank, reason, source, title, the two parts, anchor, model_version)."""
    for row in rows.to_pylist():
        yield {
            "_id": f"{row['user_id']}:{row['rank']}",
            "user_id": row["user_id"],
            "recommended_episode_id": row["episode_id"],
            "score": float(row["score"]),
            "generated_at": row["generated_at"],
            "rank": row["rank"],
            "reason": row["reason"],
            "source": row["source"],
            "title": row["title"],
            "als_part": float(row["als_part"]),
            "content_part": float(row["content_part"]),
            "anchor_episode_id": row["anchor_episode_id"],
            "model_version": row["model_version"],
        }


def user_documents(rows: pa.Table, users_with_history: Iterable[str]) -> Iterator[dict]:
    """MongoDB `user_recommendations`: one document per user with the ranked list (the serving read path), and
    an empty list for every user with history but nothing left to recommend, so such a user is never served the
    cold-start list (which may hold episodes they heard)."""
    ranked = final_documents(rows.sort_by([("user_id", "ascending"), ("rank", "ascending")]))
    served = set()
    for user_id, documents in itertools.groupby(ranked, key=lambda document: document["user_id"]):
        served.add(user_id)
        yield user_document(user_id, list(documents))
    if rows.num_rows:
        first = rows.slice(0, 1).to_pylist()[0]
        for user_id in sorted(set(users_with_history) - served):
            yield user_document(user_id, [], first["model_version"], first["generated_at"])


def als_top_n_documents(rows: pa.Table) -> Iterator[dict]:
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


@asset(
    name=PUBLISHED_RECOMMENDATIONS,
    deps=[FINAL_RECOMMENDATIONS, ALS_RECOMMENDATIONS],
    group_name=SERVING_GROUP,
    kinds={"mongodb"},
    description="MongoDB `user_recommendations` (one document per user: what serving reads), "
    "`final_recommendations` (seed 001's shape) and `als_top_n` (seed 000's), each replaced atomically: "
    "readers see the previous complete set or the new one. Publishes only the Delta version final_recommendations' "
    "blocking checks last passed on (serving/gate.py), so a bad set never goes live, even in a run of its own.",
)
def published_recommendations(
    context: AssetExecutionContext, delta: DeltaLakeResource, mongo: MongoResource
) -> MaterializeResult:
    options = delta.storage_options()
    # Only versions that passed their blocking checks, even when this runs apart from the checks' run.
    final_version = verified_version(context.instance, FINAL_RECOMMENDATIONS, FINAL_RECOMMENDATIONS_GATE)
    final = read_table(delta.table_uri(FINAL_RECOMMENDATIONS), storage_options=options, version=final_version)
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
    client = mongo.client()
    try:
        db = mongo.db(client)
        # the serving collection first: readers of the per-rank collections tolerate a short lag, serving does not
        report = publish_collection(db, USER_RECOMMENDATIONS, user_documents(final, users_with_history), [])
        metadata = {f"user_{k}": v for k, v in report.metadata().items()}
        report = publish_collection(
            db, FINAL_RECOMMENDATIONS, final_documents(final), FINAL_RECOMMENDATIONS_INDEXES
        )
        metadata.update({f"final_{k}": v for k, v in report.metadata().items()})
        if als is not None and als.num_rows:
            als_report = publish_collection(db, ALS_TOP_N, als_top_n_documents(als), ALS_TOP_N_INDEXES)
            metadata.update({f"als_top_n_{k}": v for k, v in als_report.metadata().items()})
    finally:
        client.close()
    metadata.update({"final_recommendations_version": final_version, "als_recommendations_version": als_version,
                     "als_top_n_kept_because": als_kept})  # fmt: skip
    return MaterializeResult(metadata=metadata)
