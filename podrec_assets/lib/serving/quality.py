"""What the checks on `final_recommendations` measure, beyond the list checks in lib/models/quality.py."""

from datetime import timedelta

import pyarrow as pa

from podrec_assets.lib.serving.lookup import COLD_START_USER


def shortfalls(
    recommendations: pa.Table, daily: pa.Table, catalog: set[str], top_n: int, active_days: int
) -> dict:
    """Active users (engaged in the last `active_days` days) with fewer than top_n recommendations although the
    catalog holds enough episodes they have not engaged with; such a shortfall has no stated reason."""
    frame = daily.select(["user_id", "episode_id", "event_date"]).to_pandas()
    active: set[str] = set()
    if len(frame):
        newest = frame["event_date"].max()
        active = set(frame.loc[frame["event_date"] > newest - timedelta(days=active_days), "user_id"])
    engaged = frame[frame["episode_id"].isin(catalog)].groupby("user_id")["episode_id"].nunique()
    served = recommendations.select(["user_id"]).to_pandas().value_counts("user_id")
    missing = []
    for user in sorted(active | {COLD_START_USER}):
        wanted = min(top_n, max(len(catalog) - int(engaged.get(user, 0)), 0))
        if int(served.get(user, 0)) < wanted:
            missing.append(user)
    return {"active_users": len(active), "short_without_reason": len(missing), "examples": missing[:10]}
