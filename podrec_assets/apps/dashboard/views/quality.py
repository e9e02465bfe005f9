"""Data quality: asset check outcomes over time (the Dagster instance) and quarantined messages by reason over time
(`quarantined_events`)."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from podrec_assets.apps.dashboard import common
from podrec_assets.apps.dashboard.checks import CheckHistory, load_check_history
from podrec_assets.lib.dashboard.activity import quarantine_over_time, quarantine_reasons

OUTCOME_COLOURS = {"passed": "#2e9d5b", "warned": "#e0a800", "failed": "#d62728", "execution failed": "#7f1d1d",
                   "running": "#1f77b4", "skipped": "#c7c7c7", "planned": "#9e9e9e"}  # fmt: skip


@common.guarded
def render() -> None:
    st.title("Data quality")
    source = common.settings()
    st.subheader("Asset checks")
    checks(load_check_history())  # the instance in DAGSTER_HOME
    st.subheader("Quarantined messages")
    with common.lake(source) as lake:
        reasons = quarantine_reasons(lake)
        span = reasons["last"].max() - reasons["first"].min() if not reasons.empty else None
        hourly = span is not None and span < pd.Timedelta(
            days=3
        )  # a few days of history read best by the hour
        bucket = st.radio(
            "Per", ["day", "hour"], index=1 if hourly else 0, horizontal=True, key="quality_bucket"
        )
        over_time = quarantine_over_time(lake, bucket)
    if reasons.empty:
        common.nothing_yet("Nothing quarantined yet: `quarantined_events` does not exist or is empty, so every "
                           "message read so far has passed the event contract.")  # fmt: skip
        return
    total, kinds, newest = st.columns(3)
    total.metric("Quarantined messages", common.count(int(reasons["messages"].sum())), border=True)
    kinds.metric("Reasons", common.count(len(reasons)), border=True)
    last = reasons["last"].max().to_pydatetime()
    newest.metric("Last quarantined", f"{common.ago(last)} ago", border=True, help=common.when(last))
    chart = (
        alt.Chart(over_time, title=f"Quarantined messages per {bucket} by reason")
        .mark_bar()
        .encode(
            x=alt.X(
                f"utcyearmonthdate{'hours' if bucket == 'hour' else ''}(period):O",
                title=f"{bucket} (UTC)",
                axis=alt.Axis(labelAngle=-45),
            ),
            y=alt.Y("sum(messages):Q", title="messages", stack=True),
            color=alt.Color("reason_code:N", title="reason"),
            tooltip=[alt.Tooltip("period:T", formatType="utc"), "reason_code:N", "messages:Q"],
        )
        .properties(height=280)
    )
    st.altair_chart(chart, width="stretch")
    st.dataframe(reasons, hide_index=True, column_config={
        "first": st.column_config.DatetimeColumn("first (UTC)", format="YYYY-MM-DD HH:mm"),
        "last": st.column_config.DatetimeColumn("last (UTC)", format="YYYY-MM-DD HH:mm"),
        "example": st.column_config.TextColumn("newest reason"),
    })  # fmt: skip


def checks(history: CheckHistory) -> None:
    if history.problem:
        common.nothing_yet(history.problem)
        return
    if history.executions.empty:
        common.nothing_yet("No asset check has run yet in this Dagster instance: checks run with their assets "
                           "(`make demo`, `make dev`).")  # fmt: skip
        return
    latest = history.latest
    failing = latest["outcome"].isin(["failed", "execution failed"])
    seen, passing, failed, warned = st.columns(4)
    seen.metric("Checks", common.count(len(latest)), border=True, help="checks this instance has run")
    passing.metric("Passing", common.count(int((latest["outcome"] == "passed").sum())), border=True,
                   help="latest execution passed")  # fmt: skip
    failed.metric("Failing", common.count(int(failing.sum())), border=True,
                  help="latest execution failed, or raised before deciding")  # fmt: skip
    warned.metric("Warning", common.count(int((latest["outcome"] == "warned").sum())), border=True)
    frame = history.executions.assign(
        check_key=history.executions["asset"] + " · " + history.executions["check"]
    )
    domain = [o for o in OUTCOME_COLOURS if o in set(frame["outcome"])]
    chart = (
        alt.Chart(frame, title="Check outcomes over time")
        .mark_point(filled=True, size=90)
        .encode(
            x=alt.X("at:T", title="time (UTC)", scale=alt.Scale(type="utc"), axis=alt.Axis(format="%m-%d %H:%M")),
            y=alt.Y("check_key:N", title=None, sort=sorted(set(frame["check_key"])), axis=alt.Axis(labelLimit=320)),
            color=alt.Color("outcome:N", scale=alt.Scale(domain=domain, range=[OUTCOME_COLOURS[o] for o in domain])),
            shape=alt.Shape("outcome:N", scale=alt.Scale(domain=domain)),
            tooltip=[alt.Tooltip("at:T", format="%Y-%m-%d %H:%M:%S", formatType="utc"), "asset:N", "check:N",
                     "outcome:N", "run_id:N", "details:N"],
        )
        .properties(height=max(160, 22 * frame["check_key"].nunique()))
    )  # fmt: skip
    st.altair_chart(chart, width="stretch")
    st.caption("Latest execution of each check (failing first):")
    st.dataframe(latest, hide_index=True, column_config={
        "at": st.column_config.DatetimeColumn("when (UTC)", format="YYYY-MM-DD HH:mm:ss"),
    })  # fmt: skip
