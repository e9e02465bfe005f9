"""The Dagster layer of the stats: `user_stats` + `user_affinities` (one multi-asset) and `global_stats`.

`user_stats` and `user_affinities` are one `multi_asset` with two specs: both are built from the same batches
(the Delta versions of raw_user_events) and share one cursor, so one pass reads each new version once and
moves the cursor once both collections have it; two assets would read every version twice and need two
cursors. Two specs still give each collection its own node, lineage and metadata in the UI.

Both assets run in every ingestion run (the `ingest_user_events` job) and follow a hand-made ingestion too (eager
automation); `global_stats` follows every ten minutes at most (a cron automation condition). `episodes` is a
dependency but is ignored by the automation: the stats run without a catalog (affinities of unknown episodes are
skipped and counted) and a catalog change does not re-attribute past events.
"""

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetSelection,
    AssetSpec,
    AutomationCondition,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
    multi_asset,
)

from podrec_assets.defs.resources import DeltaLakeResource, MongoResource
from podrec_assets.lib.stats.aggregate import load_catalog
from podrec_assets.lib.stats.batches import UnsupportedTableChange
from podrec_assets.lib.stats.global_stats import compute_global_stats, write_global_stats
from podrec_assets.lib.stats.incremental import STREAM, StreamMismatch, update_user_stats
from podrec_assets.lib.stats.store import CURSORS
from podrec_assets.names import (
    EPISODES,
    GLOBAL_STATS,
    RAW_USER_EVENTS,
    USER_AFFINITIES,
    USER_EPISODE_RATINGS,
    USER_STATS,
)

STATS_DEPS = [AssetKey(RAW_USER_EVENTS), AssetKey(EPISODES)]
FOLLOWS_INGESTION = AutomationCondition.eager().ignore(AssetSelection.assets(EPISODES))
# 7- and 30-day windows move slowly and each run re-reads 60 days of events: every 10 minutes at most, if there
# were new events, rather than after every ingestion (which comes every few seconds under load).
EVERY_TEN_MINUTES_IF_NEW = (
    AutomationCondition.cron_tick_passed("*/10 * * * *").since_last_handled()
    & AutomationCondition.any_deps_updated().ignore(AssetSelection.assets(EPISODES)).since_last_handled()
    & ~AutomationCondition.in_progress()
).with_label("every 10 minutes, if events arrived")


@multi_asset(
    specs=[
        AssetSpec(
            USER_STATS,
            deps=STATS_DEPS,
            automation_condition=FOLLOWS_INGESTION,
            description="Per listener (MongoDB `user_stats`, _id = user id): events by type, completes, "
            "likes, skips, reported listening time, ratings per star (each episode's latest rating: a re-rating "
            "replaces), events per month and device, first and last event. Incremental by Delta version of "
            "raw_user_events, exactly once (see stats/store.py).",
        ),
        AssetSpec(
            USER_AFFINITIES,
            deps=STATS_DEPS,
            automation_condition=FOLLOWS_INGESTION,
            description="Per (listener, show|author|category, value) (MongoDB `user_affinities`, hashed "
            "_id): content events, likes, completes, skips, ratings and their sum. Written with user_stats.",
        ),
    ],
    can_subset=False,
)
def user_stats(context: AssetExecutionContext, delta: DeltaLakeResource, mongo: MongoResource):
    options = delta.storage_options()
    client = mongo.client()
    try:
        report = update_user_stats(
            mongo.db(client),
            delta.table_uri(RAW_USER_EVENTS),
            delta.table_uri(EPISODES),
            options,
            log=context.log.info,
        )
    except (UnsupportedTableChange, StreamMismatch) as error:
        raise Failure(str(error)) from error
    finally:
        client.close()
    if not report.catalog_present:
        context.log.warning("no episodes table: affinities skipped for every content event")
    common = {
        "versions_applied": len(report.versions_applied),
        "versions": MetadataValue.json(report.versions_applied[:1000]),
        "cursor_version": report.cursor_version,
        "events_applied": report.events_applied,
        "stream": STREAM,
        "cursor_collection": CURSORS,
    }
    yield MaterializeResult(
        asset_key=USER_STATS,
        metadata={
            **common,
            "documents_written": report.user_stats.written,
            "documents_skipped_already_applied": report.user_stats.skipped,
            "re_ratings": report.re_ratings,
            "rating_documents_written": report.ratings.written,
            "ratings_collection": USER_EPISODE_RATINGS,
            "delta_operations": MetadataValue.json(report.operations),
        },
    )
    yield MaterializeResult(
        asset_key=USER_AFFINITIES,
        metadata={
            **common,
            "documents_written": report.affinities.written,
            "documents_skipped_already_applied": report.affinities.skipped,
            "content_events": report.content_events,
            "unknown_episode_events": report.unknown_episode_events,
            "catalog_present": report.catalog_present,
        },
    )


@asset(
    name=GLOBAL_STATS,
    deps=STATS_DEPS,
    automation_condition=EVERY_TEN_MINUTES_IF_NEW,
    description="Top episodes (positive engagement) and trending categories over the last 7 and 30 days "
    "ending at the newest event day; one MongoDB document per window, recomputed from the window's "
    "partitions.",
)
def global_stats(
    context: AssetExecutionContext, delta: DeltaLakeResource, mongo: MongoResource
) -> MaterializeResult:
    options = delta.storage_options()
    catalog = load_catalog(delta.table_uri(EPISODES), options)
    result = compute_global_stats(delta.table_uri(RAW_USER_EVENTS), catalog, options)
    client = mongo.client()
    try:
        written = write_global_stats(mongo.db(client), result.documents)
    finally:
        client.close()
    if not result.documents:
        context.log.info("raw_user_events has no events yet: nothing written")
    return MaterializeResult(
        metadata={
            "documents_written": written,
            "windows": MetadataValue.json([d["_id"] for d in result.documents]),
            "end_date": result.end_date.isoformat() if result.end_date else "",
            "events_read": result.events_read,
            "source_version": result.source_version if result.source_version is not None else -1,
            "events_per_window": MetadataValue.json({d["_id"]: d["events"] for d in result.documents}),
            "catalog_present": catalog.present,
        }
    )
