"""Models: which strategy and versions serve, ALS and ranker versions with their held-out metrics over time, and
the online hit rate per model version and A/B arm."""

from __future__ import annotations

import re

import altair as alt
import pandas as pd
import streamlit as st

from podrec_assets.apps.dashboard import common
from podrec_assets.lib.dashboard.models import (
    RegistryView,
    hit_rate_by_day,
    hit_rate_by_version_and_arm,
    registry_view,
)
from podrec_assets.lib.serving.policy import ALS, RANKER, Policy, serving_policy

DEFAULT_METRIC = "ndcg@10"
POLICY_TTL_SECONDS = 30


@st.cache_resource(ttl=POLICY_TTL_SECONDS, show_spinner=False)
def current_policy(model_root: str, tracking_uri: str | None) -> Policy:
    """The serving policy, shared by every session for 30 s: deciding it reads each ranker's manifest and loads the
    serving LightGBM model, too much for every rerun of the page (an error is not cached: the next run retries)."""
    return serving_policy(model_root, tracking_uri)


@common.guarded
def render() -> None:
    st.title("Models")
    source = common.settings()
    als = registry_view(source.model_root, ALS, source.tracking_uri)
    ranker = registry_view(source.model_root, RANKER, source.tracking_uri)
    policy, problem = None, None
    try:
        policy = current_policy(source.model_root, source.tracking_uri)
    except (
        Exception
    ) as error:  # a manifest or model file from another version of the code: say so, show the rest
        problem = (
            f"which strategy serves cannot be decided from the registries: {type(error).__name__}: {error}"
        )
    with common.lake(source) as lake:
        arms, days = hit_rate_by_version_and_arm(lake), hit_rate_by_day(lake)
    serving(policy, problem, arms)
    if als.versions.empty and ranker.versions.empty:
        common.nothing_yet(
            f"No model trained yet: the MLflow registry ({source.tracking_uri or source.model_root}) holds no ALS or "
            "ranker version (the nightly "
            "`als_training_schedule` trains both; `dg launch --assets als_model,ranker_model` does it now)."
        )
    else:
        offline(als, ranker)
    online(arms, days)


def serving(policy: Policy | None, problem: str | None, arms: pd.DataFrame | None) -> None:
    strategy, als_version, ranker_version, online_rate = st.columns([1, 2, 2, 1])
    strategy.metric("Serving strategy", policy.strategy if policy else "-", border=True)
    als, ranker = (policy.als_version, policy.ranker_version) if policy else ("", "")
    als_version.metric("ALS version", short_version(als), border=True, help=f"version {als or 'none'}")
    ranker_version.metric("Ranker version", short_version(ranker), border=True,
                          help=f"version {ranker or 'none'}: the ranker that serves, or whose judgement chose the "
                          "fallback")  # fmt: skip
    impressions = int(arms["impressions"].sum()) if arms is not None and not arms.empty else 0
    rate = float(arms["hits"].sum()) / impressions if impressions and arms is not None else None
    online_rate.metric("Online hit rate", common.percent(rate, 1), border=True,
                       help=f"hits ÷ impressions over {impressions:,} impressions, every arm and day")  # fmt: skip
    if policy is not None:
        st.caption(f"Why: {policy.why}.")
    if problem:
        st.warning(problem)


def short_version(version: str) -> str:
    """A registry version (`20261127T121552Z-c86139b4`: when it was trained, then its run) as the time it was
    trained, `2026-11-27 12:15 UTC`, short enough for a headline (the caption and tables name it in full); other
    names as they are."""
    match = re.fullmatch(r"(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})\d{2}Z-\w+", version)
    if not match:
        return version or "none"
    year, month, day, hour, minute = match.groups()
    return f"{year}-{month}-{day} {hour}:{minute}"


def offline(als: RegistryView, ranker: RegistryView) -> None:
    st.subheader("Offline: held-out metrics by version")
    metrics = sorted(set(als.metrics["metric"]) | set(ranker.metrics["metric"]))
    metric = st.selectbox("Metric", metrics, index=metrics.index(DEFAULT_METRIC) if DEFAULT_METRIC in metrics else 0,
                          key="models_metric")  # fmt: skip
    left, right = st.columns(2)
    for column, view, what in (
        (left, als, "ALS (temporal hold-out; gate: beat popularity)"),
        (right, ranker, "Ranker (held-out listeners; gate: beat ALS alone and the hybrid)"),
    ):
        with column:
            st.markdown(f"**{what}**")
            if view.versions.empty:
                common.nothing_yet(f"No {view.name} version yet.")
                continue
            st.altair_chart(metric_chart(view, metric), width="stretch")
            table = view.versions.copy()
            table["current"] = table["current"].map({True: "current", False: ""})
            columns = [c for c in ("version", "created_at", "current", "passed", "verdict", "als_version", "judged")
                       if view.name == RANKER or c != "als_version"]  # fmt: skip
            st.dataframe(table[columns].iloc[::-1], hide_index=True, column_config={
                "created_at": st.column_config.DatetimeColumn("trained (UTC)", format="YYYY-MM-DD HH:mm"),
            })  # fmt: skip
            for problem in view.unreadable:
                st.warning(f"unreadable manifest: {problem}")


def metric_chart(view: RegistryView, metric: str) -> alt.LayerChart:
    rows = view.metrics[view.metrics["metric"] == metric].copy()
    rows["served"] = rows["current"].map({True: "the current version", False: "an earlier version"})
    base = alt.Chart(rows).encode(
        x=alt.X(
            "created_at:T",
            title="trained (UTC)",
            scale=alt.Scale(type="utc"),
            axis=alt.Axis(format="%m-%d %H:%M", labelAngle=-30),
        ),  # fmt: skip
        y=alt.Y("value:Q", title=metric, scale=alt.Scale(zero=False)),
        color=alt.Color("model:N", title="model"),
        tooltip=["version:N", "model:N", alt.Tooltip("value:Q", format=".4f"), "served:N"],
    )
    return (base.mark_line() + base.mark_point(filled=True, size=70)).properties(height=280)


def online(arms: pd.DataFrame | None, days: pd.DataFrame | None) -> None:
    st.subheader("Online: hit rate by model version and A/B arm")
    if arms is None or days is None:
        common.nothing_yet(
            "No impressions yet: `online_hit_rate` does not exist. It is computed from the lists the HTTP API "
            "served (`podrec serve` logs each as an impression) and the plays that followed them."
        )
        return
    if arms.empty:
        common.nothing_yet("No impressions yet: `online_hit_rate` has no rows.")
        return
    st.caption(
        "A hit is a served list followed by a play of one of its episodes; rates are hits ÷ impressions."
    )
    chart = (
        alt.Chart(days)
        .mark_line(point=True)
        .encode(
            x=alt.X("day:T", title="day", scale=alt.Scale(type="utc")),
            y=alt.Y("hit_rate:Q", title="hit rate", axis=alt.Axis(format="%")),
            color=alt.Color("arm:N", title="arm"),
            strokeDash=alt.StrokeDash("model_version:N", title="model version"),
            tooltip=["day:T", "arm:N", "model_version:N", "impressions:Q", "hits:Q",
                     alt.Tooltip("hit_rate:Q", format=".1%")],
        )
        .properties(height=280)
    )  # fmt: skip
    st.altair_chart(chart, width="stretch")
    st.dataframe(arms, hide_index=True, column_config={
        "hit_rate": st.column_config.NumberColumn("hit rate", format="percent"),
    })  # fmt: skip
