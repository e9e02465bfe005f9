"""Checks of `als_recommendations`, reading the committed Delta table (re-runnable from the UI)."""

import pyarrow.compute as pc
from dagster import AssetCheckResult, MetadataValue, asset_check
from deltalake import DeltaTable

from podrec_assets.defs.resources import DeltaLakeResource
from podrec_assets.lib.lakehouse import CHECKED_VERSION
from podrec_assets.lib.models.quality import engaged_pairs_recommended, inconsistent_rankings
from podrec_assets.names import ALS_RECOMMENDATIONS, DAILY_ENGAGEMENT


@asset_check(
    asset=ALS_RECOMMENDATIONS, blocking=True, description="no episode a user engaged with is recommended"
)
def no_engaged_episodes(delta: DeltaLakeResource) -> AssetCheckResult:
    options = delta.storage_options()
    table = DeltaTable(delta.table_uri(ALS_RECOMMENDATIONS), storage_options=options)
    recommendations = table.to_pyarrow_table(columns=["user_id", "episode_id"])
    engaged = DeltaTable(delta.table_uri(DAILY_ENGAGEMENT), storage_options=options).to_pyarrow_table(
        columns=["user_id", "episode_id"]
    )
    found = engaged_pairs_recommended(recommendations, engaged)
    return AssetCheckResult(
        passed=found == 0,  # the version read: publishing als_top_n takes only a version that passed
        metadata={"engaged_pairs_recommended": found, CHECKED_VERSION: table.version()},
    )


@asset_check(
    asset=ALS_RECOMMENDATIONS, description="ranks 1..n per user, no episode twice, scores fall with rank"
)
def rankings_consistent(delta: DeltaLakeResource) -> AssetCheckResult:
    table = DeltaTable(delta.table_uri(ALS_RECOMMENDATIONS), storage_options=delta.storage_options())
    recommendations = table.to_pyarrow_table(columns=["user_id", "episode_id", "rank", "score"])
    problems = inconsistent_rankings(recommendations)
    problems["nan_scores"] = int(pc.sum(pc.is_nan(recommendations.column("score"))).as_py() or 0)
    return AssetCheckResult(
        passed=not any(problems.values()), metadata={"users_with": MetadataValue.json(problems)}
    )


als_recommendations_checks = [no_engaged_episodes, rankings_consistent]
# The blocking checks a version of als_recommendations must pass before MongoDB `als_top_n` shows it.
ALS_RECOMMENDATIONS_GATE = ("no_engaged_episodes",)
