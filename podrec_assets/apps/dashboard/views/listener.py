"""Listener: a listener's recommendations with their reasons and scores, beside their recent events and stats."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from podrec_assets.apps.dashboard import common
from podrec_assets.lib.dashboard.listeners import (
    clean_listener_id,
    listener_history,
    listener_ids,
)
from podrec_assets.lib.ingestion.contract import MAX_ID_LENGTH
from podrec_assets.lib.serving.lookup import (
    COLD_START_USER,
    recommendations_for,
    stats_figures,
    user_stats_for,
)

RECOMMENDATIONS = 20
HISTORY = 50


@common.guarded
def render() -> None:
    st.title("Listener")
    source = common.settings()
    db = common.mongo(source)
    known = listener_ids(db)
    pick, typed = st.columns([2, 3])
    chosen = pick.selectbox(
        "Listener with a published list", known, index=0 if known else None, key="listener_pick",
        placeholder="none published yet" if not known else "choose a listener",
    )  # fmt: skip
    written = typed.text_input("…or any listener id", key="listener_typed", max_chars=MAX_ID_LENGTH,
                               help="looked up exactly as typed (surrounding spaces removed)")  # fmt: skip
    raw = written if written.strip() else chosen
    if raw is None:
        common.nothing_yet(
            "Nothing yet: no listener has a published list (`user_recommendations` is empty; "
            "`published_recommendations` writes it). Type any listener id to see their events and stats."
        )
        return
    user_id = clean_listener_id(raw)
    if user_id is None:
        st.warning(f"Not a listener id: ids are 1 to {MAX_ID_LENGTH} printable characters.")
        return
    recommendations = recommendations_for(db, user_id, RECOMMENDATIONS)
    stats = user_stats_for(db, user_id)
    with common.lake(source) as lake:
        history = listener_history(lake, user_id, HISTORY)
    own = [r for r in recommendations if r["user_id"] == user_id]
    if not own and stats is None and history.empty:
        st.warning(f"No listener `{user_id}`: no list, no stats and no events under that id.")
    figures(user_id, own, stats)
    left, right = st.columns([1, 1])
    with left:
        show_recommendations(user_id, recommendations)
    with right:
        st.subheader("Recent events")
        if history.empty:
            common.nothing_yet("No event of this listener in `raw_user_events`.")
        else:
            st.caption(f"The newest {len(history)} events, newest first.")
            st.dataframe(history, hide_index=True, column_config={
                "ts": st.column_config.DatetimeColumn("time (UTC)", format="YYYY-MM-DD HH:mm:ss"),
                "played_pct": st.column_config.NumberColumn("played", format="percent"),
            })  # fmt: skip


def figures(user_id: str, own: list[dict], stats: dict | None) -> None:
    numbers = stats_figures(stats)
    columns = st.columns(6)
    columns[0].metric("Recommendations", common.count(len(own)), border=True)
    columns[1].metric("Events", common.count(numbers["events"]), border=True)
    columns[2].metric("Completes", common.count(numbers["completes"]), border=True)
    columns[3].metric("Likes", common.count(numbers["likes"]), border=True)
    columns[4].metric("Skips", common.count(numbers["skips"]), border=True)
    hours, rating = numbers["hours"], numbers["mean_rating"]
    columns[5].metric("Hours listened", "-" if hours is None else f"{hours:,.1f}", border=True,
                      help=None if rating is None else f"mean rating {rating:.1f}")  # fmt: skip
    if stats is not None:
        st.caption(f"`user_stats` of {user_id}: first event {common.when(stats.get('first_event_at'))}, "
                   f"last {common.when(stats.get('last_event_at'))}.")  # fmt: skip


def show_recommendations(user_id: str, recommendations: list[dict]) -> None:
    st.subheader("Recommendations")
    if not recommendations:
        common.nothing_yet("No list: none is published for this listener, nor a list for new listeners.")
        return
    first = recommendations[0]
    if first["user_id"] != user_id:
        st.info(f"`{user_id}` has no list of their own: this is the list new listeners get "
                f"(`{COLD_START_USER}`).")  # fmt: skip
    st.caption(
        f"Model {first.get('model_version') or '-'}, strategy {first.get('strategy') or '-'}, "
        f"generated {common.when(first.get('generated_at'))}."
    )
    table = pd.DataFrame(recommendations)[
        ["rank", "title", "score", "reason", "source", "recommended_episode_id"]
    ]
    st.dataframe(table, hide_index=True, column_config={
        "score": st.column_config.NumberColumn(format="%.3f"),
        "recommended_episode_id": st.column_config.TextColumn("episode_id"),
    })  # fmt: skip
