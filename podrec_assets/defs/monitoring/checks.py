"""Drift and decay as asset checks with history: each check's figures are metadata, so Dagster plots them over time,
and a check beyond its threshold warns (it does not block: drift is a reason to look, not to stop the lists).
What each figure means and its threshold: lib/monitoring/drift.py."""

from collections.abc import Iterator
from datetime import date, timedelta
from statistics import median

from dagster import (
    AssetCheckEvaluation,
    AssetCheckExecutionContext,
    AssetCheckKey,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    MetadataValue,
    asset_check,
    multi_asset_check,
)
from deltalake import DeltaTable

from podrec_assets.defs.resources import DeltaLakeResource, ModelStoreResource
from podrec_assets.lib.lakehouse import read_table
from podrec_assets.lib.monitoring.drift import PSI_WARN, TRAILING_DAYS, day_drift
from podrec_assets.lib.serving.quality import list_quality, quality_shift
from podrec_assets.lib.stats.global_stats import newest_event_day
from podrec_assets.names import ALS_MODEL, DAILY_ENGAGEMENT, EPISODES, FINAL_RECOMMENDATIONS, RAW_USER_EVENTS

DECAY_TOLERANCE = 0.10  # a new model may be this much below its predecessors' median nDCG@10 before it warns
DECAY_HISTORY = 5  # predecessors compared with


def _newest_day(uri: str, storage_options: dict | None) -> date | None:
    """The newest `event_date` partition of a table (from the Delta log: no data read), or None."""
    if not DeltaTable.is_deltatable(uri, storage_options=storage_options):
        return None
    return newest_event_day(DeltaTable(uri, storage_options=storage_options))


@multi_asset_check(
    specs=[
        AssetCheckSpec(
            "event_mix_stable",
            asset=DAILY_ENGAGEMENT,
            description=f"the newest day's event types and devices against the trailing {TRAILING_DAYS} days: "
            f"PSI ≤ {PSI_WARN}",
        ),
        AssetCheckSpec(
            "event_volume_in_band",
            asset=DAILY_ENGAGEMENT,
            description="the newest day's events within the trailing days' robust band",
        ),
        AssetCheckSpec(
            "new_listener_share_in_band",
            asset=DAILY_ENGAGEMENT,
            description="the newest day's share of listeners not seen in the trailing days, within those days' "
            "band",
        ),
    ]
)
def incoming_events_drift(delta: DeltaLakeResource) -> Iterator[AssetCheckResult]:
    options = delta.storage_options()
    # the newest closed day the graph has aggregated
    day = _newest_day(delta.table_uri(DAILY_ENGAGEMENT), options)
    if day is None:
        for name in ("event_mix_stable", "event_volume_in_band", "new_listener_share_in_band"):
            yield AssetCheckResult(check_name=name, passed=True, metadata={"note": "no closed day yet"})
        return
    events = read_table(
        delta.table_uri(RAW_USER_EVENTS), ["event_date", "event_type", "device", "user_id"], options,
        [("event_date", ">=", day - timedelta(days=2 * TRAILING_DAYS)), ("event_date", "<=", day)],
    )  # fmt: skip
    drift = day_drift(events, day)
    common = {"day": day.isoformat(), "history_days": drift.history_days, "judged": drift.judged}
    low, high = drift.volume_band
    yield AssetCheckResult(
        check_name="event_mix_stable", passed=drift.mix_ok, severity=AssetCheckSeverity.WARN,
        metadata={**common, "psi_event_types": round(drift.psi_event_types, 4),
                  "psi_devices": round(drift.psi_devices, 4), "threshold": PSI_WARN},
    )  # fmt: skip
    yield AssetCheckResult(
        check_name="event_volume_in_band", passed=drift.volume_ok, severity=AssetCheckSeverity.WARN,
        metadata={**common, "events": drift.events, "band_low": round(low, 1), "band_high": round(high, 1)},
    )  # fmt: skip
    low, high = drift.new_listener_band
    yield AssetCheckResult(
        check_name="new_listener_share_in_band", passed=drift.new_listeners_ok, severity=AssetCheckSeverity.WARN,
        metadata={**common, "new_listener_share": round(drift.new_listener_share, 4), "band_low": round(low, 4),
                  "band_high": round(high, 4)},
    )  # fmt: skip


@asset_check(
    asset=ALS_MODEL,
    description=f"the newest version's held-out nDCG@10 is within {DECAY_TOLERANCE:.0%} of the median of the "
    f"{DECAY_HISTORY} versions before it",
)
def ndcg_not_decayed(models: ModelStoreResource) -> AssetCheckResult:
    registry = models.registry("als")
    scores = [registry.manifest(v)["evaluation"]["metrics"]["als"]["ndcg@10"] for v in registry.versions()]
    if len(scores) < 2:
        return AssetCheckResult(
            passed=True, metadata={"versions": len(scores), "note": "nothing to compare yet"}
        )
    newest, before = scores[-1], median(scores[-1 - DECAY_HISTORY : -1])
    return AssetCheckResult(
        passed=newest >= (1 - DECAY_TOLERANCE) * before,
        severity=AssetCheckSeverity.WARN,
        metadata={"ndcg@10": round(newest, 4), "median_before": round(before, 4),
                  "change": round(newest / before - 1, 4) if before else 0.0,
                  "history": MetadataValue.json([round(s, 4) for s in scores[-1 - DECAY_HISTORY :]])},
    )  # fmt: skip


LIST_QUALITY = AssetCheckKey(AssetKey(FINAL_RECOMMENDATIONS), "list_quality_stable")


@asset_check(
    asset=FINAL_RECOMMENDATIONS,
    name=LIST_QUALITY.name,
    description="the top 10s' catalog coverage, popularity bias and show diversity (lib/serving/quality.py) against "
    "the previous lists': coverage or diversity down by > 30%, or popularity bias up by > 0.2, warns",
)
def list_quality_stable(context: AssetCheckExecutionContext, delta: DeltaLakeResource) -> AssetCheckResult:
    options = delta.storage_options()
    lists = read_table(delta.table_uri(FINAL_RECOMMENDATIONS), ["user_id", "rank", "episode_id"], options)
    catalog = read_table(delta.table_uri(EPISODES), ["episode_id", "show"], options)
    if lists is None or catalog is None:
        return AssetCheckResult(passed=True, metadata={"note": "no lists yet"})
    uri, newest = delta.table_uri(DAILY_ENGAGEMENT), _newest_day(delta.table_uri(DAILY_ENGAGEMENT), options)
    last_30_days = [("event_date", ">", newest - timedelta(days=30))] if newest else None
    engagement = read_table(uri, ["episode_id", "event_count"], options, last_30_days) if newest else None
    figures = list_quality(lists, catalog, engagement)
    before = None  # the figures of the newest earlier evaluation (this run's own is only planned)
    for record in context.instance.event_log_storage.get_asset_check_execution_history(LIST_QUALITY, limit=5):
        evaluation = record.evaluation
        if record.run_id != context.run.run_id and isinstance(evaluation, AssetCheckEvaluation):
            before = {k: getattr(v, "value", v) for k, v in evaluation.metadata.items()}
            break
    problems = quality_shift(figures, before)
    return AssetCheckResult(
        passed=not problems, severity=AssetCheckSeverity.WARN,
        metadata={**figures, "problems": MetadataValue.json(problems)},
    )  # fmt: skip
