"""Checks of `final_recommendations` (the Delta table, before anything is published). The blocking ones stop
`published_recommendations`, so MongoDB keeps serving the previous set."""

from collections.abc import Iterator

import numpy as np
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSpec,
    AssetKey,
    MetadataValue,
    multi_asset_check,
)

from podrec_assets.defs.resources import DeltaLakeResource
from podrec_assets.lib.lakehouse import CHECKED_VERSION, delta_version, read_table
from podrec_assets.lib.models.quality import engaged_pairs_recommended, inconsistent_rankings
from podrec_assets.lib.serving.quality import shortfalls
from podrec_assets.names import DAILY_ENGAGEMENT, EPISODES, FINAL_RECOMMENDATIONS

ACTIVE_DAYS = 30


# The blocking checks a version of final_recommendations must pass before MongoDB shows it (serving/gate.py).
FINAL_RECOMMENDATIONS_GATE = ("no_heard_or_skipped", "lists_consistent", "every_active_user_served")


@multi_asset_check(
    specs=[
        AssetCheckSpec(
            "no_heard_or_skipped",
            asset=FINAL_RECOMMENDATIONS,
            blocking=True,
            description="no episode a user engaged with is recommended",
        ),
        AssetCheckSpec(
            "lists_consistent",
            asset=FINAL_RECOMMENDATIONS,
            blocking=True,
            description="ranks 1..n per user, no episode twice, scores finite and falling with rank, "
            "every episode in the catalog",
        ),
        AssetCheckSpec(
            "every_active_user_served",
            asset=FINAL_RECOMMENDATIONS,
            blocking=True,
            description=f"every user active in the last {ACTIVE_DAYS} days, and the cold-start list, has top_n "
            "recommendations (fewer only when the catalog has fewer episodes they have not heard)",
        ),
    ]
)
def final_recommendations_valid(
    context: AssetCheckExecutionContext, delta: DeltaLakeResource
) -> Iterator[AssetCheckResult]:
    """The three checks over one read of each table they need."""
    options = delta.storage_options()
    uri = delta.table_uri(FINAL_RECOMMENDATIONS)
    version = delta_version(
        uri, options
    )  # pinned and recorded: the publisher takes only a version that passed
    recommendations = read_table(uri, ["user_id", "episode_id", "rank", "score"], options, version=version)
    checked = {CHECKED_VERSION: version}
    daily = read_table(delta.table_uri(DAILY_ENGAGEMENT), ["user_id", "episode_id", "event_date"], options)
    catalog = set(
        read_table(delta.table_uri(EPISODES), ["episode_id"], options).column("episode_id").to_pylist()
    )

    found = engaged_pairs_recommended(recommendations, daily)
    yield AssetCheckResult(
        check_name="no_heard_or_skipped",
        passed=found == 0,
        metadata={"engaged_pairs_recommended": found, **checked},
    )

    problems = inconsistent_rankings(recommendations)
    problems["unknown_episodes"] = sum(
        1 for e in recommendations.column("episode_id").to_pylist() if e not in catalog
    )
    scores = recommendations.column("score").to_numpy()
    problems["scores_not_finite"] = int((~np.isfinite(scores)).sum())
    yield AssetCheckResult(
        check_name="lists_consistent",
        passed=not any(problems.values()),
        metadata={"problems": MetadataValue.json(problems), **checked},
    )

    event = context.instance.get_latest_materialization_event(AssetKey(FINAL_RECOMMENDATIONS))
    top_n = int(event.asset_materialization.metadata["top_n"].value)
    result = shortfalls(recommendations, daily, catalog, top_n, ACTIVE_DAYS)
    yield AssetCheckResult(
        check_name="every_active_user_served",
        passed=result["short_without_reason"] == 0,
        metadata={
            **{k: v for k, v in result.items() if k != "examples"},
            "examples": ", ".join(result["examples"]),
            **checked,
        },
    )


final_recommendations_checks = [final_recommendations_valid]
