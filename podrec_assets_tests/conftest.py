"""One set of real services per test session: Tansu (Kafka protocol) and SecantusDB (MongoDB wire), started on free
loopback ports under a temporary PODREC_HOME, or the external services named by KAFKA_BOOTSTRAP_SERVERS / MONGO_URI.
Each test gets its own topic and Delta folder, so tests never see each other's data."""

from __future__ import annotations

import os
import socket
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from podrec_assets.defs.resources import DeltaLakeResource, KafkaResource, MongoResource
from podrec_assets.lib.settings import apply_local_defaults, external_services


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pytest_configure(config) -> None:
    """Point podrec at a throwaway state folder and free ports before any test module (or definitions.py) loads."""
    home = Path(tempfile.mkdtemp(prefix="podrec-test-"))
    os.environ["PODREC_EXTERNAL_SERVICES"] = ",".join(external_services())
    os.environ["PODREC_HOME"] = str(home)
    for var in ("PODREC_DELTA_ROOT", "DAGSTER_HOME"):
        os.environ.pop(var, None)
    for role in ("kafka", "mongo", "spark"):
        os.environ[f"PODREC_LOCAL_{role.upper()}_PORT"] = str(free_port())
    apply_local_defaults()


@pytest.fixture(scope="session")
def podrec_home() -> Path:
    return Path(os.environ["PODREC_HOME"])


@pytest.fixture(scope="session")
def stack(podrec_home):
    """Kafka and MongoDB, started once for the whole session and stopped at its end."""
    from podrec_assets.tools.stack import LocalStack

    local = LocalStack(podrec_home)
    local.up(["kafka", "mongo"], log=lambda _: None)
    yield local
    local.down(log=lambda _: None)


@pytest.fixture(scope="session")
def spark_remote(stack) -> str:
    """One Spark Connect server for the whole session (or the external one SPARK_REMOTE names)."""
    stack.up(["spark"], log=lambda _: None)
    return os.environ["SPARK_REMOTE"]


@pytest.fixture(scope="session")
def spark(spark_remote):
    from pyspark.sql import SparkSession

    session = SparkSession.builder.remote(spark_remote).getOrCreate()
    yield session
    session.stop()  # before the server stops: an open client retries a stopped server for minutes at exit


@pytest.fixture(scope="session")
def pyspark_resource(spark_remote, spark):  # shares (and is torn down with) the session above
    from dagster_pyspark import PySparkResource

    return PySparkResource(spark_config={"spark.remote": spark_remote})


@pytest.fixture
def models(tmp_path):
    from podrec_assets.defs.resources import ModelStoreResource

    return ModelStoreResource(root=str(tmp_path / "models"))


@pytest.fixture
def topic(stack) -> str:
    return f"test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def kafka(topic) -> KafkaResource:
    resource = KafkaResource(
        bootstrap_servers=os.environ["KAFKA_BOOTSTRAP_SERVERS"], topic=topic, partitions=3
    )
    resource.ensure_topic()
    return resource


@pytest.fixture
def delta(tmp_path) -> DeltaLakeResource:
    return DeltaLakeResource(root=str(tmp_path / "delta"))


@pytest.fixture
def mongo(stack) -> MongoResource:
    return MongoResource(uri=os.environ["MONGO_URI"], database=f"test_{uuid.uuid4().hex[:8]}")


@pytest.fixture
def http_server():
    """A local HTTP server with no routes yet (see http_fixture.py)."""
    from podrec_assets_tests.http_fixture import FixtureServer

    with FixtureServer() as server:
        yield server


@pytest.fixture
def db(mongo):
    """The test's own MongoDB database (dropped afterwards)."""
    client = mongo.client()
    yield mongo.db(client)
    client.drop_database(mongo.database)
    client.close()


# The serving graph shared by the serving tests: listening up to SERVING_END over SERVING_DAYS days.
SERVING_END = datetime(2026, 4, 10, 22, tzinfo=UTC)
SERVING_DAYS = 10
COLD_EPISODE = "sample-007"  # kept out of every listener's history


@pytest.fixture
def graph(delta, resources):
    """The sample catalog with its content assets, synthetic listening over it (never COLD_EPISODE), an ALS model
    and a ranker: everything the lists are made from. Returns the instance that holds its check evaluations."""
    from dagster import DagsterInstance, materialize

    from podrec_assets.defs.content.assets import (
        episode_similarity,
        episodes,
        transcript_embeddings,
        transcripts,
    )
    from podrec_assets.defs.engagement.assets import daily_engagement
    from podrec_assets.defs.models.assets import als_model, als_recommendations
    from podrec_assets.defs.models.checks import als_recommendations_checks
    from podrec_assets.defs.models.ranker import ranker_model
    from podrec_assets.lib.lakehouse import read_table
    from podrec_assets.names import EPISODES
    from podrec_assets.tools.producers.synthetic import catalog_from_documents, generate_events
    from podrec_assets_tests.helpers import partition_range_tags, write_raw_events

    instance = DagsterInstance.ephemeral()
    assert materialize([episodes], resources=resources, instance=instance).success
    catalog = read_table(delta.table_uri(EPISODES)).to_pylist()
    listened = catalog_from_documents([e for e in catalog if e["episode_id"] != COLD_EPISODE])
    events = list(generate_events(users=100, days=SERVING_DAYS, sessions_per_user=10, catalog=listened, seed=3,
                                  end=SERVING_END))  # fmt: skip
    write_raw_events(delta, events)
    tags = partition_range_tags((SERVING_END - timedelta(days=SERVING_DAYS)).date(), SERVING_END.date())
    assert materialize([daily_engagement], tags=tags, resources=resources, instance=instance).success
    upstream = [als_model, als_recommendations, *als_recommendations_checks, transcripts, transcript_embeddings,
                episode_similarity, ranker_model]  # fmt: skip
    assert materialize(upstream, resources=resources, instance=instance).success
    return instance
