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


# Tiers: a test that uses any of these fixtures needs the real local services (integration); `e2e` is marked by its
# module; everything else is a unit test and needs no service at all (`make test-fast` runs only those).
SERVICE_FIXTURES = {"stack", "spark_remote", "spark", "pyspark_resource", "topic", "kafka", "mongo", "db",
                    "serving_graph", "graph", "postgres"}  # fmt: skip


def pytest_collection_modifyitems(items) -> None:
    for item in items:
        if item.get_closest_marker("e2e"):
            continue
        tier = "integration" if SERVICE_FIXTURES & set(item.fixturenames) else "unit"
        item.add_marker(getattr(pytest.mark, tier))


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


@pytest.fixture(scope="session")
def serving_graph(tmp_path_factory, stack, pyspark_resource):
    """Built once per session (one ALS fit, one ranker): the sample catalog with its content assets, synthetic
    listening over it (never COLD_EPISODE), an ALS model and a ranker. Tests get copies (`graph`)."""
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
    from podrec_assets.defs.resources import CatalogResource, ModelStoreResource
    from podrec_assets.lib.lakehouse import read_table
    from podrec_assets.names import EPISODES
    from podrec_assets.tools.producers.synthetic import catalog_from_documents, generate_events
    from podrec_assets_tests.helpers import partition_range_tags, write_raw_events

    root = tmp_path_factory.mktemp("serving-graph")
    delta = DeltaLakeResource(root=str(root / "delta"))
    mongo = MongoResource(uri=os.environ["MONGO_URI"], database=f"graph_{uuid.uuid4().hex[:8]}")
    resources = {"delta": delta, "mongo": mongo, "pyspark": pyspark_resource,
                 "models": ModelStoreResource(root=str(root / "models")),
                 "catalog": CatalogResource(sources="sample")}  # fmt: skip
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
    yield root, mongo
    client = mongo.client()
    client.drop_database(mongo.database)
    client.close()


@pytest.fixture
def graph(serving_graph, delta, models, mongo, resources):
    """A copy of `serving_graph` (its Delta tables, model store and MongoDB mirror) in this test's own folders and
    database, and a fresh Dagster instance in which ALS's lists have passed their checks (as in the run that made
    them): tests change their copy freely and never refit. Returns the instance."""
    import shutil

    from dagster import AssetSelection, DagsterInstance, materialize

    from podrec_assets.defs.models.assets import als_recommendations
    from podrec_assets.defs.models.checks import als_recommendations_checks

    root, template = serving_graph
    shutil.copytree(root / "delta", delta.root)
    shutil.copytree(root / "models", models.root)
    source, target = template.client(), mongo.client()
    try:
        for name in template.db(source).list_collection_names():
            documents = list(template.db(source)[name].find())
            if documents:
                mongo.db(target)[name].insert_many(documents)
    finally:
        source.close()
        target.close()
    instance = DagsterInstance.ephemeral()
    checks = materialize([als_recommendations, *als_recommendations_checks], resources=resources, instance=instance,
                         selection=AssetSelection.checks(*als_recommendations_checks))  # fmt: skip
    assert checks.success
    return instance
