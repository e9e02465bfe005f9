"""Checks of `als_recommendations`, reading the committed Delta table (re-runnable from the UI)."""

import pyarrow as pa
import pyarrow.compute as pc
from dagster import AssetCheckResult, MetadataValue, asset_check
from deltalake import DeltaTable

from podrec_assets.defs.resources import DeltaLakeResource
from podrec_assets.lib.lakehouse import CHECKED_VERSION
from podrec_assets.names import ALS_RECOMMENDATIONS, DAILY_ENGAGEMENT


def engaged_pairs_recommended(recommendations: pa.Table, engaged: pa.Table) -> int:
    """How many recommended (user, episode) pairs the user already engaged with."""
    keys = ["user_id", "episode_id"]
    return (
        recommendations.select(keys)
        .join(engaged.select(keys).group_by(keys).aggregate([]), keys, join_type="inner")
        .num_rows
    )


def inconsistent_rankings(recommendations: pa.Table) -> dict[str, int]:
    """Users whose ranks are not 1..n, who get an episode twice, or whose scores rise with rank."""
    frame = recommendations.select(["user_id", "episode_id", "rank", "score"]).to_pandas()
    frame = frame.sort_values(["user_id", "rank"])
    by_user = frame.groupby("user_id")
    ranks_ok = by_user["rank"].apply(lambda r: list(r) == list(range(1, len(r) + 1)))
    unique_ok = by_user["episode_id"].apply(lambda e: e.is_unique)
    scores_ok = by_user["score"].apply(lambda s: bool((s.diff().dropna() <= 1e-6).all()))
    return {
        "ranks_not_1_to_n": int((~ranks_ok).sum()),
        "duplicate_episodes": int((~unique_ok).sum()),
        "scores_rising": int((~scores_ok).sum()),
    }


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
