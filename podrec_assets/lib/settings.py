"""Where podrec keeps its state and which services it talks to.

Every service is chosen by an environment variable. When a variable is unset, podrec uses the local stack that
`podrec services up` starts (all on 127.0.0.1). `apply_local_defaults()` writes those defaults into the process
environment so that Dagster resources can always be configured from `EnvVar`s, whichever stack is in use.
"""

from __future__ import annotations

import os
from pathlib import Path

from podrec_assets.names import EVENTS_TOPIC, IMPRESSIONS_TOPIC

REPO_ROOT = Path(__file__).resolve().parents[2]

# Local ports of the local stack (override with the variables below to point at real services).
LOCAL_KAFKA_PORT = 9092
LOCAL_MONGO_PORT = 27017
LOCAL_SPARK_CONNECT_PORT = 15002
# The faces (`make dev`): the HTTP API, the dashboard and the MLflow UI over the model registry.
LOCAL_API_PORT = 8000
LOCAL_DASHBOARD_PORT = 8501
LOCAL_MLFLOW_PORT = 5000


# First day of the daily partitions (engagement). Events before it are kept in raw_user_events but not aggregated.
DEFAULT_FIRST_DAY = "2025-01-01"


def first_partition_day() -> str:
    return os.environ.get("PODREC_FIRST_DAY") or DEFAULT_FIRST_DAY


# From this many listeners on, the steps that score or rank every listener (ALS top-N in als_recommendations, the
# lists of final_recommendations) run in Spark (mapInArrow over blocks of listeners) instead of on the driver, so a
# Spark cluster takes them. Both paths run the same function and give the same lists (a test holds it). Where it
# sits (benchmarks/scale.py, docs/benchmarks.md): with the Spark server on the driver's own 2 cores, the lists took
# 1.2x the driver's time in Spark at 3,000 listeners and 0.94-1.1x at 9,000 (two runs), with 1.4 GB less on the
# driver; a cluster only moves the crossing lower. ALS top-N pays Spark's ~4 s of round trips, small in a nightly run.
DEFAULT_SPARK_PATH_MIN_LISTENERS = 5_000
DRIVER, SPARK = "driver", "spark"


def spark_path_min_listeners() -> int:
    """PODREC_SPARK_PATH_MIN_LISTENERS, or the default; 0 sends everything to Spark."""
    return int(os.environ.get("PODREC_SPARK_PATH_MIN_LISTENERS") or DEFAULT_SPARK_PATH_MIN_LISTENERS)


def scoring_path(listeners: int) -> str:
    """Where every listener's scoring and ranking runs for a set of `listeners`: DRIVER or SPARK."""
    return SPARK if listeners >= spark_path_min_listeners() else DRIVER


def podrec_home() -> Path:
    """The state folder: Delta tables, service data, PID files, logs and DAGSTER_HOME."""
    return Path(os.environ.get("PODREC_HOME") or REPO_ROOT / ".podrec").resolve()


def local_port(role: str) -> int:
    """Port of a local server (kafka, mongo, spark); PODREC_LOCAL_<ROLE>_PORT moves it, e.g. for the tests."""
    defaults = {"kafka": LOCAL_KAFKA_PORT, "mongo": LOCAL_MONGO_PORT, "spark": LOCAL_SPARK_CONNECT_PORT,
                "api": LOCAL_API_PORT, "dashboard": LOCAL_DASHBOARD_PORT, "mlflow": LOCAL_MLFLOW_PORT}  # fmt: skip
    return int(os.environ.get(f"PODREC_LOCAL_{role.upper()}_PORT", defaults[role]))


def local_defaults(home: Path | None = None) -> dict[str, str]:
    home = home or podrec_home()
    return {
        "PODREC_HOME": str(home),
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{local_port('kafka')}",
        "PODREC_EVENTS_TOPIC": EVENTS_TOPIC,
        "PODREC_EVENTS_PARTITIONS": "6",
        "PODREC_IMPRESSIONS_TOPIC": IMPRESSIONS_TOPIC,
        "MONGO_URI": f"mongodb://127.0.0.1:{local_port('mongo')}",
        "MONGO_DB": "podrec",
        # Standard pyspark variable: a Spark Connect URL. Unset means "the local Connect server".
        "SPARK_REMOTE": f"sc://127.0.0.1:{local_port('spark')}",
        "PODREC_DELTA_ROOT": str(home / "delta"),
        # Versioned models; must be storage the Spark server sees too (a shared volume or object store in production).
        "PODREC_MODEL_ROOT": str(home / "models"),
        "DAGSTER_HOME": str(home / "dagster"),
    }


# The variables that, when set by the user, mean "use this external service, start nothing local for it".
EXTERNAL_SERVICE_VARS = {
    "kafka": "KAFKA_BOOTSTRAP_SERVERS",
    "mongo": "MONGO_URI",
    "spark": "SPARK_REMOTE",
}


def external_services() -> dict[str, str]:
    """Roles whose service the user gave explicitly (before any defaults were applied)."""
    given = os.environ.get("PODREC_EXTERNAL_SERVICES")
    if given is not None:  # recorded by apply_local_defaults() so child processes see the original choice
        return {
            role: os.environ[var] for role, var in EXTERNAL_SERVICE_VARS.items() if role in given.split(",")
        }
    return {role: os.environ[var] for role, var in EXTERNAL_SERVICE_VARS.items() if os.environ.get(var)}


def apply_local_defaults() -> None:
    """Fill unset variables with the local stack's values (idempotent)."""
    if "PODREC_EXTERNAL_SERVICES" not in os.environ:
        os.environ["PODREC_EXTERNAL_SERVICES"] = ",".join(external_services())
    for name, value in local_defaults().items():
        os.environ.setdefault(name, value)


def table_uri(root: str, name: str) -> str:
    """Where table `name` lives under the Delta root (a folder, or an object-store URI such as s3://bucket/podrec)."""
    if "://" in root:
        return f"{root.rstrip('/')}/{name}"
    return str(Path(root) / name)
