"""Model versions, their held-out metrics, which one serves, and how the served lists do online: the Models page.

Offline metrics come from each version's manifest in the model registries (lib/models/registry.py):
- ALS (`<model root>/als`): `evaluation.metrics` (ALS and popularity on a temporal hold-out) and its `gate`;
- the ranker (`<model root>/ranker`): `gate.metrics` (the ranker, ALS alone, the hybrid, content, popularity,
  trending on held-out listeners), its `gate` verdict and the ALS version it was judged against.
Which strategy and versions serve is `serving_policy` (lib/serving/policy.py). The online hit rate is the Delta
table `online_hit_rate` (per day, model version, strategy and A/B arm); rates are recomputed from summed hits and
impressions, never averaged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from podrec_assets.lib.dashboard.lake import Lake
from podrec_assets.lib.models.registry import ModelRegistry
from podrec_assets.names import ONLINE_HIT_RATE

VERSION_COLUMNS = ["version", "created_at", "current", "passed", "verdict", "als_version", "judged", "k"]
METRIC_COLUMNS = ["version", "created_at", "current", "model", "metric", "value"]


@dataclass(frozen=True)
class RegistryView:
    name: str
    current: str | None
    versions: pd.DataFrame  # VERSION_COLUMNS, oldest first
    metrics: pd.DataFrame  # METRIC_COLUMNS (long: one row per version, model and metric)
    unreadable: list[str]  # versions whose manifest could not be read, with why


def _metrics_of(manifest: dict) -> dict[str, dict[str, float]]:
    gate, evaluation = manifest.get("gate") or {}, manifest.get("evaluation") or {}
    metrics = gate.get("metrics") or evaluation.get("metrics") or {}
    return {
        str(model): {str(k): float(v) for k, v in values.items() if isinstance(v, int | float)}
        for model, values in metrics.items()
        if isinstance(values, dict)
    }


def _when(value: object) -> datetime | None:
    """A manifest's ISO timestamp as an aware UTC datetime (None if absent or unreadable)."""
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)


def registry_view(model_root: str | Path, name: str, tracking_uri: str | None = None) -> RegistryView:
    """Every version of registry `name` with its gate and metrics; empty if there is none."""
    registry = ModelRegistry(Path(model_root), name, tracking_uri)
    current = registry.current()
    rows, metric_rows, unreadable = [], [], []
    for version in registry.versions():
        try:
            manifest = registry.manifest(version)
        except (OSError, ValueError) as error:
            unreadable.append(f"{version}: {error}")
            continue
        gate, evaluation = manifest.get("gate") or {}, manifest.get("evaluation") or {}
        created = _when(manifest.get("created_at"))
        rows.append({
            "version": version,
            "created_at": created,
            "current": version == current,
            "passed": gate.get("passed"),
            "verdict": gate.get("verdict"),
            "als_version": manifest.get("als_version"),
            "judged": gate.get("listeners_judged", evaluation.get("users_evaluated")),
            "k": gate.get("k", evaluation.get("k")),
        })  # fmt: skip
        for model, values in _metrics_of(manifest).items():
            for metric, value in values.items():
                metric_rows.append({"version": version, "created_at": created, "current": version == current,
                                    "model": model, "metric": metric, "value": value})  # fmt: skip
    versions = pd.DataFrame({column: [row[column] for row in rows] for column in VERSION_COLUMNS})
    metrics = pd.DataFrame({column: [row[column] for row in metric_rows] for column in METRIC_COLUMNS})
    return RegistryView(name, current, versions, metrics, unreadable)


def hit_rate_by_version_and_arm(lake: Lake) -> pd.DataFrame | None:
    """model_version, strategy, arm, days, first_day, last_day, impressions, hits, hit_rate (= hits ÷ impressions
    over all days); None when `online_hit_rate` does not exist yet."""
    if not lake.has(ONLINE_HIT_RATE):
        return None
    return lake.query(
        f"""SELECT coalesce(model_version, '-') AS model_version, strategy, arm, count(DISTINCT day)::BIGINT AS days,
                   min(day) AS first_day, max(day) AS last_day, sum(impressions)::BIGINT AS impressions,
                   sum(hits)::BIGINT AS hits, sum(hits) / nullif(sum(impressions), 0) AS hit_rate
            FROM {ONLINE_HIT_RATE} GROUP BY ALL ORDER BY last_day DESC, model_version, arm"""
    )


def hit_rate_by_day(lake: Lake) -> pd.DataFrame | None:
    """day, arm, model_version, impressions, hits, hit_rate per day; None when the table does not exist yet."""
    if not lake.has(ONLINE_HIT_RATE):
        return None
    return lake.query(
        f"""SELECT day, arm, coalesce(model_version, '-') AS model_version, sum(impressions)::BIGINT AS impressions,
                   sum(hits)::BIGINT AS hits, sum(hits) / nullif(sum(impressions), 0) AS hit_rate
            FROM {ONLINE_HIT_RATE} GROUP BY ALL ORDER BY day, arm, model_version"""
    )
