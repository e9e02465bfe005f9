"""Where the dashboard reads from: the same environment variables as the graph's resources (defs/resources.py),
with the local stack's defaults filled in (lib/settings.py)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from podrec_assets.lib.settings import apply_local_defaults, table_uri


@dataclass(frozen=True)
class DashboardSettings:
    mongo_uri: str
    mongo_db: str
    delta_root: str
    model_root: str
    dagster_home: str
    aws_endpoint_url: str | None = None
    tracking_uri: str | None = None  # MLFLOW_TRACKING_URI; unset: the registry's SQLite file under model_root

    @classmethod
    def from_env(cls) -> DashboardSettings:
        """MONGO_URI, MONGO_DB, PODREC_DELTA_ROOT, PODREC_MODEL_ROOT, DAGSTER_HOME (and AWS_ENDPOINT_URL for an
        S3-compatible Delta root, MLFLOW_TRACKING_URI for an MLflow server), read now: a change of the environment is
        seen by the next call."""
        apply_local_defaults()
        env = os.environ
        return cls(
            mongo_uri=env["MONGO_URI"],
            mongo_db=env["MONGO_DB"],
            delta_root=env["PODREC_DELTA_ROOT"],
            model_root=env["PODREC_MODEL_ROOT"],
            dagster_home=env["DAGSTER_HOME"],
            aws_endpoint_url=env.get("AWS_ENDPOINT_URL") or None,
            tracking_uri=env.get("MLFLOW_TRACKING_URI") or None,
        )

    def table_uri(self, name: str) -> str:
        return table_uri(self.delta_root, name)

    def storage_options(self) -> dict[str, str] | None:
        return {"AWS_ENDPOINT_URL": self.aws_endpoint_url} if self.aws_endpoint_url else None
