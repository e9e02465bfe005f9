"""What the checks on recommendation lists measure (ALS alone's and the final ones): plain counts on Arrow tables."""

import pyarrow as pa


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
