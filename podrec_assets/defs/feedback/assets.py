"""What listeners did with what they were shown: the impressions the API logged, landed exactly once, and the online
hit rate per day, model version and A/B arm (lib/feedback/). Both run on a clock through the automation sensor."""

from datetime import UTC, datetime

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AutomationCondition,
    MaterializeResult,
    MetadataValue,
    asset,
    asset_check,
)
from deltalake import write_deltalake

from podrec_assets.defs.resources import DeltaLakeResource, KafkaResource
from podrec_assets.lib.feedback.hit_rate import (
    POSITIVE_EVENTS,
    by_arm,
    hit_rates,
    newest_day_in_band,
    rejudge_from,
    with_settled_days,
)
from podrec_assets.lib.feedback.impressions import ingest_impressions
from podrec_assets.lib.lakehouse import read_table
from podrec_assets.names import (
    ONLINE_HIT_RATE,
    QUARANTINED_EVENTS,
    RAW_USER_EVENTS,
    RECOMMENDATION_IMPRESSIONS,
)


@asset(
    name=RECOMMENDATION_IMPRESSIONS,
    automation_condition=AutomationCondition.on_cron("*/5 * * * *"),
    description="Every list the API served (listener, episodes by position, model version, strategy, A/B arm), "
    "from the impressions topic, exactly once (positions in the Delta log; bad messages to quarantined_events).",
)
def recommendation_impressions(kafka: KafkaResource, delta: DeltaLakeResource) -> MaterializeResult:
    settings, topic = kafka.settings(), kafka.impressions_topic
    consumer = settings.consumer()
    try:
        topic_id = settings.topic_id(topic) if consumer.partitions_for_topic(topic) else None
        report = ingest_impressions(
            consumer, delta.table_uri(RECOMMENDATION_IMPRESSIONS), delta.table_uri(QUARANTINED_EVENTS), topic,
            topic_id, storage_options=delta.storage_options(),
        )  # fmt: skip
    finally:
        consumer.close()
    return MaterializeResult(
        metadata={
            "messages_read": report.messages,
            "impressions_accepted": report.accepted,
            "duplicates_dropped": report.duplicates,
            "quarantined": report.rejected,
            "quarantine_reasons": MetadataValue.json(dict(report.reasons)),
            "served_dates": MetadataValue.json(sorted(d.isoformat() for d in report.served_dates)),
            "caught_up": report.caught_up,
        }
    )


@asset(
    name=ONLINE_HIT_RATE,
    deps=[RECOMMENDATION_IMPRESSIONS, RAW_USER_EVENTS],
    automation_condition=AutomationCondition.on_cron("0 * * * *"),
    description="Per day, model version, strategy and A/B arm: the share of impressions whose listener played, "
    "completed or liked a shown episode within 24 h. Each arm's rate and 95% interval are in the metadata.",
)
def online_hit_rate(delta: DeltaLakeResource) -> MaterializeResult:
    options, now = delta.storage_options(), datetime.now(UTC)
    uri = delta.table_uri(ONLINE_HIT_RATE)
    judged = read_table(uri, storage_options=options)
    start = rejudge_from(judged.column("day").to_pylist()) if judged is not None else None
    columns = ["impression_id", "user_id", "served_at", "episode_ids", "model_version", "strategy", "arm"]
    impressions = read_table(delta.table_uri(RECOMMENDATION_IMPRESSIONS), columns, options,
                             [("served_date", ">=", start)] if start else None)  # fmt: skip
    if impressions is None or impressions.num_rows == 0:
        return MaterializeResult(metadata={"impressions_judged": 0, "note": "no impressions to judge"})
    first_day = min(impressions.column("served_at").to_pylist()).date()
    events = read_table(
        delta.table_uri(RAW_USER_EVENTS), ["user_id", "episode_id", "event_type", "ts"], options,
        [("event_date", ">=", first_day), ("event_type", "in", list(POSITIVE_EVENTS))],
    )  # fmt: skip
    result = hit_rates(impressions.to_pandas(), events.to_pandas() if events is not None else None, now)
    if start is None:
        write_deltalake(
            uri, result.table(), mode="overwrite", schema_mode="overwrite", storage_options=options
        )
    else:  # one commit replaces the days judged again; the settled days before them stay as they are
        write_deltalake(uri, result.table(), mode="overwrite", predicate=f"day >= '{start.isoformat()}'",
                        storage_options=options)  # fmt: skip
    arms = by_arm(with_settled_days(judged.to_pandas() if judged is not None else None, start, result.rates))
    return MaterializeResult(
        metadata={
            "judged_from": (start or first_day).isoformat(),  # days before were settled by earlier runs
            "impressions_judged": result.judged,
            "impressions_pending": result.pending,  # inside their 24 h: judged on a later run
            "arms": MetadataValue.json(arms),
            **{f"hit_rate_{arm}": summary["hit_rate"] for arm, summary in arms.items()},
        }
    )


@asset_check(asset=ONLINE_HIT_RATE, description="hits never exceed impressions and every rate is in [0, 1]")
def hit_rates_consistent(delta: DeltaLakeResource) -> AssetCheckResult:
    table = read_table(delta.table_uri(ONLINE_HIT_RATE), storage_options=delta.storage_options())
    if table is None:
        return AssetCheckResult(passed=True, metadata={"rows": 0})
    frame = table.to_pandas()
    bad = int(((frame["hits"] > frame["impressions"]) | ~frame["hit_rate"].between(0, 1)).sum())
    return AssetCheckResult(passed=bad == 0, metadata={"rows": len(frame), "inconsistent_rows": bad})


@asset_check(
    asset=ONLINE_HIT_RATE,
    description="each arm's newest judged day's hit rate within the band of its earlier days' (warns on a decay or "
    "a jump; needs 7 earlier days)",
)
def hit_rate_in_band(delta: DeltaLakeResource) -> AssetCheckResult:
    table = read_table(delta.table_uri(ONLINE_HIT_RATE), storage_options=delta.storage_options())
    if table is None or table.num_rows == 0:
        return AssetCheckResult(passed=True, metadata={"note": "no judged impressions yet"})
    verdicts = newest_day_in_band(table.to_pandas())
    outside = sorted(arm for arm, v in verdicts.items() if v["judged"] and not v["in_band"])
    # a decay: drift_retrain_sensor retrains
    below = sorted(arm for arm in outside if verdicts[arm]["below_band"])
    days = [v["day"] for v in verdicts.values() if v["judged"]]
    return AssetCheckResult(
        passed=not outside, severity=AssetCheckSeverity.WARN,
        metadata={"arms": MetadataValue.json(verdicts), "arms_outside_band": MetadataValue.json(outside),
                  "arms_below_band": MetadataValue.json(below), "day": max(days) if days else "",
                  **{f"hit_rate_{arm}": v["hit_rate"] for arm, v in verdicts.items()}},
    )  # fmt: skip
