"""Episodes: the top episodes by engagement and the trending categories over 7 or 30 days, and the episodes most
like a chosen one."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st
from pymongo.errors import PyMongoError

from podrec_assets.apps.dashboard import common
from podrec_assets.lib.dashboard.episodes import (
    EngagementWindow,
    engagement_window,
    episodes_with_neighbours,
    global_stats_window,
    similar_episodes,
)
from podrec_assets.lib.dashboard.lake import Lake
from podrec_assets.lib.dashboard.settings import DashboardSettings

WINDOWS = (7, 30)


@common.guarded
def render() -> None:
    st.title("Episodes")
    days = st.radio(
        "Window", WINDOWS, horizontal=True, format_func=lambda d: f"last {d} days", key="episodes_days"
    )
    source = common.settings()
    with common.lake(source) as lake:
        window = engagement_window(lake, days)
        if window.end is not None:
            engagement(window)
        else:
            from_global_stats(source, days)
        similar(lake)


def engagement(window: EngagementWindow) -> None:
    st.caption(
        f"From `daily_engagement` (weighted events, what ALS learns from), {window.start} – {window.end}: the "
        f"{window.days} days up to the newest day it holds, with titles from the `episodes` catalog."
    )
    top = window.top_episodes.copy()
    top["label"] = top["title"].fillna(top["episode_id"])
    first = top.iloc[0] if not top.empty else None
    top_category = window.categories.iloc[0]["category"] if not window.categories.empty else "-"
    headline, category = st.columns([3, 1])
    headline.metric("Top episode", first["label"] if first is not None else "-", border=True,
                    help=f"{first['show'] or 'unknown show'}: {first['engagement']:,.1f} engagement from "
                    f"{first['listeners']:,} listeners" if first is not None else None)  # fmt: skip
    category.metric("Top category", top_category, border=True)
    total, listeners, episodes = st.columns(3)
    total.metric("Engagement", f"{window.engagement:,.0f}", border=True,
                 help=f"summed event weights of {window.events:,} events")  # fmt: skip
    listeners.metric("Listeners", common.count(window.listeners), border=True)
    episodes.metric("Episodes listened to", common.count(window.episodes), border=True)
    left, right = st.columns(2)
    with left:
        st.subheader("Top episodes")
        bars = (
            alt.Chart(top)
            .mark_bar()
            .encode(
                x=alt.X("engagement:Q", title="engagement"),
                y=alt.Y("label:N", sort="-x", title=None, axis=alt.Axis(labelLimit=260)),
                tooltip=[
                    "label:N",
                    "show:N",
                    alt.Tooltip("engagement:Q", format=",.1f"),
                    "events:Q",
                    "listeners:Q",
                ],
            )
            .properties(height=max(120, 28 * len(top)))
        )
        st.altair_chart(bars, width="stretch")
        st.dataframe(
            top[["rank", "label", "show", "engagement", "events", "listeners", "episode_id"]],
            hide_index=True,
            column_config={
                "label": st.column_config.TextColumn("title"),
                "engagement": st.column_config.NumberColumn(format="%.1f"),
            },
        )
    with right:
        st.subheader("Trending categories")
        categories = window.categories
        if categories.empty:
            common.nothing_yet("No category yet: the engaged episodes are not in the `episodes` catalog.")
            return
        layered = categories.melt(id_vars=["category"], value_vars=["engagement", "previous_engagement"],
                                  var_name="window", value_name="value")  # fmt: skip
        layered["window"] = layered["window"].map(
            {
                "engagement": f"last {window.days} days",
                "previous_engagement": f"the {window.days} days before",
            }
        )
        chart = (
            alt.Chart(layered)
            .mark_bar()
            .encode(
                x=alt.X("value:Q", title="engagement"),
                y=alt.Y("category:N", sort=list(categories["category"]), title=None),
                yOffset="window:N",
                color=alt.Color("window:N", title=None, legend=alt.Legend(orient="bottom")),
                tooltip=["category:N", "window:N", alt.Tooltip("value:Q", format=",.1f")],
            )
            .properties(height=max(120, 40 * len(categories)))
        )
        st.altair_chart(chart, width="stretch")
        st.dataframe(categories, hide_index=True, column_config={
            column: st.column_config.NumberColumn(format="%.1f")
            for column in ("engagement", "previous_engagement", "change")
        })  # fmt: skip


def from_global_stats(source: DashboardSettings, days: int) -> None:
    """No daily_engagement yet: MongoDB's `global_stats` (kept by the stats assets from raw events) if present."""
    try:
        document = global_stats_window(common.mongo(source), days)
    except PyMongoError:
        document = None
    if not document or not document.get("top_episodes"):
        common.nothing_yet(
            "No engagement yet: `daily_engagement` does not exist (its daily partitions are materialized by the "
            "`daily_engagement_schedule`, or `dg launch --assets daily_engagement`), and MongoDB has no "
            f"`global_stats` for the last {days} days."
        )
        return
    st.caption(
        f"From MongoDB `global_stats` ({document.get('start_date')} – {document.get('end_date')}): "
        "`daily_engagement` does not exist yet. Episodes are ranked by positive engagement (likes, completes, "
        "ratings of 4 or 5), categories by content events."
    )
    top = pd.DataFrame(document["top_episodes"])
    first = top.iloc[0]
    headline, listeners, events = st.columns([2, 1, 1])
    headline.metric("Top episode", str(first.get("title") or first.get("episode_id")), border=True)
    listeners.metric("Listeners", common.count(document.get("active_users")), border=True)
    events.metric("Events", common.count(document.get("events")), border=True)
    left, right = st.columns(2)
    left.subheader("Top episodes")
    left.dataframe(top, hide_index=True)
    right.subheader("Trending categories")
    right.dataframe(pd.DataFrame(document.get("trending_categories") or []), hide_index=True)


def similar(lake: Lake) -> None:
    st.subheader("Similar episodes")
    options = episodes_with_neighbours(lake)
    if options.empty:
        common.nothing_yet(
            "No similarity yet: `episode_similarity` does not exist (it follows the catalog: `episodes` → "
            "`transcripts` → `transcript_embeddings` → `episode_similarity`)."
        )
        return
    titles = dict(zip(options["episode_id"], options["title"], strict=True))
    chosen = st.selectbox(
        "Episode", list(titles), format_func=lambda e: f"{titles[e]}  ({e})", key="similar_to"
    )
    if chosen is None:
        return
    neighbours = similar_episodes(lake, chosen, limit=10)
    neighbours["title"] = neighbours["title"].fillna(neighbours["similar_episode_id"])
    st.caption(f"Episodes whose transcripts are most like *{titles[chosen]}* (cosine similarity of their "
               "sentence-transformers embeddings).")  # fmt: skip
    st.dataframe(
        neighbours,
        hide_index=True,
        column_config={
            "score": st.column_config.ProgressColumn(
                "similarity", format="%.3f", min_value=0.0, max_value=1.0
            )
        },  # fmt: skip
    )
