"""Live: listener events per minute by type over the last N minutes, active listeners, the quarantine rate."""

from __future__ import annotations

import altair as alt
import streamlit as st

from podrec_assets.apps.dashboard import common
from podrec_assets.lib.dashboard.activity import LiveActivity, live_activity

REFRESH_SECONDS = 10
MAX_MINUTES = 24 * 60


@common.guarded
def render() -> None:
    st.title("Live")
    st.caption(
        f"Listener events in `raw_user_events` by event time, refreshed every {REFRESH_SECONDS} s. The quarantine "
        "rate counts messages by arrival: quarantined ÷ (quarantined + events and impressions stored)."
    )
    minutes = st.slider(
        "Window (minutes)", min_value=5, max_value=MAX_MINUTES, value=60, step=5, key="live_minutes"
    )
    figures(minutes)


@st.fragment(run_every=REFRESH_SECONDS)
@common.guarded
def figures(minutes: int) -> None:
    with common.lake(common.settings()) as lake:
        activity = live_activity(lake, minutes)
    if not activity.has_events and not activity.has_quarantine:
        common.nothing_yet(
            "Nothing yet: no listener event has been ingested (`raw_user_events` does not exist). Send some with "
            "`podrec events generate` and ingest them (`make dev` runs the Kafka sensor, or `podrec ingest`)."
        )
        return
    events, per_minute, listeners, rate = st.columns(4)
    events.metric("Events", common.count(activity.events), border=True,
                  help=f"listener events with a timestamp in the last {minutes} minutes")  # fmt: skip
    per_minute.metric("Events per minute", f"{activity.events_per_minute:,.1f}", border=True)
    listeners.metric("Active listeners", common.count(activity.listeners), border=True,
                     help="distinct listeners with an event in the window")  # fmt: skip
    rate.metric(
        "Quarantine rate",
        common.percent(activity.quarantine_rate),
        border=True,
        help=f"{activity.quarantined:,} of {activity.quarantined + activity.stored:,} messages that arrived in the "
        f"window; all time: {common.percent(activity.quarantine_rate_total)} "
        f"({activity.quarantined_total:,} of {activity.quarantined_total + activity.stored_total:,})",
    )
    if activity.events:
        st.altair_chart(chart(activity), width="stretch")
    elif activity.newest_event is not None:
        common.nothing_yet(
            f"No listener event in the last {minutes} minutes: the newest is from {common.when(activity.newest_event)}"
            f" ({common.ago(activity.newest_event, activity.end)} ago). Widen the window to see it."
        )
    else:
        common.nothing_yet("No listener event has been stored yet (only rejected messages).")
    st.caption(
        f"Window {common.when(activity.start)} – {common.when(activity.end)} · quarantine rate all time "
        f"{common.percent(activity.quarantine_rate_total)} · updated {activity.end:%H:%M:%S} UTC"
    )


def chart(activity: LiveActivity) -> alt.Chart:
    return (
        alt.Chart(activity.per_minute, title="Events per minute by type")
        .mark_bar()
        .encode(
            x=alt.X(
                "minute:T",
                title="minute (UTC)",
                scale=alt.Scale(type="utc", domain=[activity.start.isoformat(), activity.end.isoformat()]),
                axis=alt.Axis(format="%H:%M"),
            ),
            y=alt.Y("sum(events):Q", title="events", stack=True),
            color=alt.Color("event_type:N", title="event type"),
            tooltip=[
                alt.Tooltip("minute:T", format="%H:%M", formatType="utc", title="minute"),
                "event_type:N",
                "events:Q",
            ],
        )
        .properties(height=320)
    )
