"""Reading what serving publishes: a listener's recommendations and stats, and what `podrec recommend` prints.

Collections (MongoDB, replaced whole by `publish.publish_collection`):
- `final_recommendations`: one document per user and rank, `_id` "<user_id>:<rank>", with user_id,
  recommended_episode_id, score (blended), rank (1..N), reason, source (als | content | popular), title,
  model_version, generated_at (UTC). The list of a user without history is stored under COLD_START_USER.
- `als_top_n` (seed 000's shape): `_id` "<user_id>:<rank>", user_id, new_episode_id, als_score, rank,
  model_version, generated_at.
- `user_recommendations` (what serving reads): one document per user, `_id` = user id, model_version,
  generated_at and the ranked list as parallel arrays (`user_document` writes it, `recommendations_for` reads it).
- `user_stats` (written by the stats assets): `_id` = user id; counters such as events_total, completes.

Serving's lookup is one `find_one` by `_id` in `user_recommendations`; seed readers' per-rank lookup is
`find({user_id}).sort(rank).limit(n)`, answered from the (user_id, rank) index.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from pymongo import ASCENDING, IndexModel
from pymongo.database import Database

from podrec_assets.names import ALS_TOP_N, USER_RECOMMENDATIONS, USER_STATS

# One document per user holding the ranked list: what serving reads (`final_recommendations` keeps seed 001's
# one-document-per-recommendation shape for existing readers; measured: 2-5x slower per lookup on SecantusDB).
# The list served to a listener without history (serving/recommendations.py builds it under this id).
COLD_START_USER = "__cold_start__"

# Both per-rank collections are read by user, in rank order.
FINAL_RECOMMENDATIONS_INDEXES = ALS_TOP_N_INDEXES = [
    IndexModel([("user_id", ASCENDING), ("rank", ASCENDING)], name="user_id_rank")
]


# A served recommendation's fields and the array each is kept in, entry i of every array being rank i + 1. Parallel
# arrays instead of one sub-document per rank: fewer BSON values for the server to encode and the client to decode
# (`benchmarks/serving.py --shapes` on SecantusDB at 500 QPS: p50 0.91x, p99 0.61x the sub-documents').
SERVED_ARRAYS = {
    "recommended_episode_id": "episode_ids",
    "title": "titles",
    "score": "scores",
    "reason": "reasons",
    "source": "sources",
}


def user_document(
    user_id: str,
    ranked: list[dict],
    model_version: str | None = None,
    generated_at: datetime | None = None,
) -> dict:
    """The `user_recommendations` document of `user_id` from its recommendations in rank order (dicts with the
    SERVED_ARRAYS fields, model_version and generated_at, the last two the same for the whole list). An empty
    list (a listener who has heard every episode) is stored too, so that listener is not given the cold-start
    list; it takes model_version and generated_at from the arguments."""
    if ranked:
        model_version, generated_at = ranked[0]["model_version"], ranked[0]["generated_at"]
    elif model_version is None or generated_at is None:
        raise ValueError(f"an empty list for {user_id!r} needs model_version and generated_at")
    document = {"_id": user_id, "model_version": model_version, "generated_at": generated_at}
    for shared in ("strategy", "ranker_version"):  # the same for the whole list
        if ranked and shared in ranked[0]:
            document[shared] = ranked[0][shared]
    for field, array in SERVED_ARRAYS.items():
        document[array] = [row[field] for row in ranked]
    return document


def final_documents(rows) -> Iterator[dict]:
    """MongoDB `final_recommendations` documents from final_recommendations rows (a pyarrow Table): seed 001's
    fields (user_id, recommended_episode_id, score, generated_at) and podrec's (rank, reason, source, title,
    anchor, strategy, the model versions)."""
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
            "anchor_episode_id": row["anchor_episode_id"],
            "strategy": row["strategy"],
            "model_version": row["model_version"],
            "ranker_version": row["ranker_version"],
        }


def top_n(db: Database, collection: str, user_id: str, limit: int = 20) -> list[dict]:
    """The first `limit` documents of `user_id` in `collection` by rank."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    cursor = db[collection].find({"user_id": user_id}).sort("rank", ASCENDING).limit(limit)
    return list(cursor)


def recommendations_for(
    db: Database, user_id: str, limit: int = 20, *, fallback_user_id: str | None = COLD_START_USER
) -> list[dict]:
    """`user_id`'s recommendations by rank: one `find_one` by `_id` in `user_recommendations` (the whole list in
    one document: a single index lookup, the serving path), as dicts with user_id, rank, model_version,
    generated_at and the SERVED_ARRAYS fields. A user with none gets the list stored under
    `fallback_user_id` (the cold-start list; its entries keep that user_id), unless it is None."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    document = db[USER_RECOMMENDATIONS].find_one({"_id": user_id})
    if document is None and fallback_user_id is not None and fallback_user_id != user_id:
        document = db[USER_RECOMMENDATIONS].find_one({"_id": fallback_user_id})
    if document is None:
        return []
    shared = {"user_id": document["_id"], "model_version": document["model_version"],
              "generated_at": document["generated_at"]}  # fmt: skip
    shared |= {key: document[key] for key in ("strategy", "as_of") if key in document}
    columns = [document[array][:limit] for array in SERVED_ARRAYS.values()]
    return [
        {**shared, "rank": rank, **dict(zip(SERVED_ARRAYS, values, strict=True))}
        for rank, values in enumerate(zip(*columns, strict=True), start=1)
    ]


def als_top_n_for(db: Database, user_id: str, limit: int = 20) -> list[dict]:
    """Seed 000's `als_top_n` list of `user_id`, by rank."""
    return top_n(db, ALS_TOP_N, user_id, limit)


def user_stats_for(db: Database, user_id: str) -> dict | None:
    return db[USER_STATS].find_one({"_id": user_id})


def _number(stats: dict, *paths: str) -> float | None:
    """The first of `paths` present in `stats` as a number: a flat key (which may hold a dot) or a path."""
    for path in paths:
        value = stats.get(path)
        if value is None:
            value = stats
            for part in path.split("."):
                value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value
    return None


def _count(value: float | None) -> str:
    return "?" if value is None else f"{value:,.0f}"


def stats_figures(stats: dict | None) -> dict[str, float | None]:
    """The headline figures of a `user_stats` document (lib/stats/): events, completes, likes, skips, hours
    listened and mean rating; None for what the document does not hold."""
    stats = stats or {}
    ratings, rating_sum = _number(stats, "ratings.count"), _number(stats, "ratings.sum")
    listening_ms = _number(stats, "listening_ms")
    return {
        "events": _number(stats, "events_total", "total_events"),
        "completes": _number(stats, "completes"),
        "likes": _number(stats, "likes"),
        "skips": _number(stats, "skips"),
        "hours": listening_ms / 3_600_000 if listening_ms is not None else None,
        "mean_rating": rating_sum / ratings if ratings and rating_sum is not None else None,
    }


def format_stats(stats: dict) -> str:
    """One line: total events, completes, likes, skips, and listening time and ratings when present."""
    figures = stats_figures(stats)
    line = (
        f"Stats: {_count(figures['events'])} events, {_count(figures['completes'])} completes, "
        f"{_count(figures['likes'])} likes, {_count(figures['skips'])} skips"
    )
    if figures["hours"]:
        line += f", {figures['hours']:.1f} h listened"
    if figures["mean_rating"] is not None:
        line += f", {_number(stats, 'ratings.count'):,.0f} ratings (mean {figures['mean_rating']:.1f})"
    return line


def _when(value: object) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if isinstance(value, datetime) else "?"


def format_recommendations(user_id: str, recommendations: list[dict], stats: dict | None) -> str:
    """Plain text for `podrec recommend USER_ID`: a heading, one line per recommendation (rank, title, score,
    reason) and, if `stats` is given, a one-line summary of the listener's stats."""
    lines = []
    if not recommendations:
        lines.append(
            f"No recommendations for {user_id}: none published yet (is published_recommendations materialized?), "
            "or nothing in the catalog they have not heard"
        )
    else:
        first = recommendations[0]
        heading = f"Recommendations for {user_id}"
        if first.get("user_id") not in (None, user_id):
            heading += " (no listening history yet: the list for new listeners)"
        version, generated = first.get("model_version") or "-", _when(first.get("generated_at"))
        lines.append(f"{heading}, model {version}, generated {generated}")
        for row in recommendations:
            episode = row.get("recommended_episode_id") or row.get("new_episode_id") or "?"
            title = str(row.get("title") or episode)
            title = title if len(title) <= 48 else title[:47].rstrip() + "…"
            score = row.get("score", row.get("als_score"))
            score_text = f"{score:6.3f}" if isinstance(score, int | float) else "     -"
            reason = row.get("reason") or ""
            lines.append(f"{row.get('rank', '?'):>3}. {title:<48} {score_text}  {reason}".rstrip())
    if stats is not None:
        lines.append(format_stats(stats))
    return "\n".join(lines)
