"""Forgetting a listener from the Dagster UI (launch `forget_listener` with its user_id); `podrec listeners forget`
runs the same function (lib/privacy/erasure.py)."""

from dagster import Config, OpExecutionContext, job, op
from pydantic import Field

from podrec_assets.defs.resources import DeltaLakeResource, MongoResource
from podrec_assets.lib.privacy.erasure import erase_listener


class ForgetListenerConfig(Config):
    user_id: str = Field(description="the listener to remove from every table and collection")
    vacuum_days: float = Field(
        default=7.0, description="deleted files older than this leave the disk (VACUUM)"
    )


@op
def erase_listener_everywhere(
    context: OpExecutionContext, config: ForgetListenerConfig, delta: DeltaLakeResource, mongo: MongoResource
) -> None:
    client = mongo.client()
    try:
        report = erase_listener(config.user_id, delta.table_uri, mongo.db(client), delta.storage_options(),
                                config.vacuum_days)  # fmt: skip
    finally:
        client.close()
    context.log.info(f"erased: Delta rows {report.delta_rows}, MongoDB documents {report.mongo_documents}")


@job(
    description="Remove one listener from every Delta table and MongoDB collection (lib/privacy/erasure.py)."
)
def forget_listener():
    erase_listener_everywhere()
