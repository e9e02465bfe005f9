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


TOP = 10
POPULAR_SHARE = 0.1  # "popular" = the catalog's 10% most engaged episodes over the engagement given


def list_quality(lists: pa.Table, catalog: pa.Table, engagement: pa.Table | None) -> dict[str, float]:
    """What the served top-10s look like as a whole: `lists` (user_id, rank, episode_id), `catalog` (episode_id,
    show), `engagement` (episode_id, event_count) over a recent window.

    - coverage: the share of the catalog that appears in anyone's top 10;
    - popularity_bias: the mean share of a listener's top 10 taken by the catalog's 10% most engaged episodes
      (0.1 would be no bias at all);
    - show_diversity: the mean number of distinct shows in a top 10, divided by its length (1 = all different).
    """
    frame = lists.select(["user_id", "rank", "episode_id"]).to_pandas()
    frame = frame[(frame["rank"] <= TOP) & (frame["user_id"] != COLD_START_USER)]
    episodes = catalog.column("episode_id").to_pylist()
    if frame.empty or not episodes:
        return {"listeners": 0, "coverage": 0.0, "popularity_bias": 0.0, "show_diversity": 0.0}
    popular: set[str] = set()
    if engagement is not None and engagement.num_rows:
        counts = (
            engagement.select(["episode_id", "event_count"])
            .to_pandas()
            .groupby("episode_id")["event_count"]
            .sum()
        )
        popular = set(counts.sort_values(ascending=False).index[: max(1, int(len(episodes) * POPULAR_SHARE))])
    shows = dict(zip(episodes, catalog.column("show").to_pylist(), strict=True))
    frame["popular"] = frame["episode_id"].isin(popular)
    frame["show"] = frame["episode_id"].map(shows).fillna(frame["episode_id"])  # unknown show: its own
    per_listener = frame.groupby("user_id").agg(
        n=("episode_id", "size"), popular=("popular", "mean"), shows=("show", "nunique")
    )
    return {
        "listeners": len(per_listener),
        "coverage": round(frame["episode_id"].nunique() / len(episodes), 4),
        "popularity_bias": round(float(per_listener["popular"].mean()), 4),
        "show_diversity": round(float((per_listener["shows"] / per_listener["n"]).mean()), 4),
    }


def quality_shift(now: dict[str, float], before: dict[str, float] | None) -> list[str]:
    """What moved too far since the previous lists: coverage or diversity down by more than 30% of what it was,
    popularity bias up by more than 0.2. Empty if nothing did, or there is nothing to compare with."""
    if not before or not before.get("listeners"):
        return []
    problems = []
    for name in ("coverage", "show_diversity"):
        if before.get(name) and now[name] < 0.7 * before[name]:
            problems.append(f"{name} fell from {before[name]} to {now[name]}")
    if now["popularity_bias"] > before.get("popularity_bias", 0.0) + 0.2:
        problems.append(f"popularity_bias rose from {before['popularity_bias']} to {now['popularity_bias']}")
    return problems
