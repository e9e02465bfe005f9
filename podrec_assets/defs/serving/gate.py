"""Publish only a table version that passed its blocking checks.

Dagster's blocking checks stop downstream steps of the *same* run. A later run that publishes alone (a re-run from
the UI, a schedule, the demo's next step) would otherwise publish whatever the table holds, checked or not. So each
gating check records the Delta version it read (metadata CHECKED_VERSION) and the publisher reads exactly the version
all of them last passed on; if the latest evaluation of any of them failed, nothing is published and the live set
stays.
"""

from __future__ import annotations

from collections.abc import Sequence

from dagster import AssetCheckEvaluation, AssetCheckKey, AssetKey, DagsterInstance, Failure

from podrec_assets.lib.lakehouse import CHECKED_VERSION


class NotVerifiedError(Failure):
    """The table has no version that passed all its gating checks on their latest evaluation."""


def verified_version(instance: DagsterInstance, asset: str, check_names: Sequence[str]) -> int:
    """The Delta version of `asset` that the latest evaluations of `check_names` all passed on; raises
    NotVerifiedError if one never ran, failed, or they read different versions."""
    versions: dict[str, int] = {}
    for name in check_names:
        record = instance.get_latest_asset_check_evaluation_record(AssetCheckKey(AssetKey(asset), name))
        event = record.event.dagster_event if record and record.event else None
        evaluation = event.event_specific_data if event else None
        if not isinstance(evaluation, AssetCheckEvaluation):
            raise NotVerifiedError(f"{asset}: check {name} has no evaluation yet; nothing published")
        if not evaluation.passed:
            raise NotVerifiedError(
                f"{asset}: check {name} failed on its latest evaluation (run {record.run_id}); "
                "the published set stays as it was"
            )
        version = evaluation.metadata.get(CHECKED_VERSION)
        if version is None:
            raise NotVerifiedError(f"{asset}: check {name} did not record the version it read")
        versions[name] = int(version.value)
    if len(set(versions.values())) != 1:
        raise NotVerifiedError(f"{asset}: its checks last read different versions {versions}; run them again")
    return next(iter(versions.values()))
