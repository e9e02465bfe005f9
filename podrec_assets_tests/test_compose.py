"""docker-compose.yml, read as data (no Docker engine here): the Spark cluster matches the pyspark client, Delta lives
on MinIO, and every service running podrec's image gets every variable the code reads."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
from pathlib import Path

import yaml

from podrec_assets.lib.settings import REPO_ROOT, local_defaults

COMPOSE_TEXT = (REPO_ROOT / "docker-compose.yml").read_text()
COMPOSE = yaml.safe_load(COMPOSE_TEXT)
SERVICES = COMPOSE["services"]
PODREC_IMAGE = {"context": ".", "dockerfile": "deploy/Dockerfile"}


def dagster_yaml_variables() -> set[str]:
    """The variables deploy/dagster.yaml reads (`{env: NAME}`)."""
    found: set[str] = set()

    def walk(node) -> None:
        if isinstance(node, dict):
            if set(node) == {"env"}:
                found.add(node["env"])
            for value in node.values():
                walk(value)

    walk(yaml.safe_load((REPO_ROOT / "deploy" / "dagster.yaml").read_text()))
    return found


def test_the_spark_cluster_runs_the_client_version_with_the_connect_server_on_it():
    pyspark = importlib.metadata.version("pyspark")
    spark = {name: s for name, s in SERVICES.items() if name.startswith("spark-")}
    assert set(spark) == {"spark-master", "spark-worker-1", "spark-worker-2", "spark-connect"}
    assert {s["image"] for s in spark.values()} == {f"apache/spark:{pyspark}-python3"}
    assert "deploy.master.Master" in spark["spark-master"]["command"]
    for worker in ("spark-worker-1", "spark-worker-2"):
        assert "deploy.worker.Worker spark://spark-master:7077" in spark[worker]["command"]
    connect = spark["spark-connect"]["command"]
    assert "SparkConnectServer" in connect and "--master spark://spark-master:7077" in connect
    # hadoop-aws must be the image's own Hadoop, which is the one pyspark ships
    jars = Path(importlib.util.find_spec("pyspark").submodule_search_locations[0]) / "jars"
    (hadoop,) = {
        m.group(1)
        for j in jars.glob("hadoop-client-api-*.jar")
        if (m := re.search(r"-(\d[\d.]*)\.jar", j.name))
    }
    assert f"org.apache.hadoop:hadoop-aws:{hadoop}" in connect


def test_delta_lives_on_minio_and_every_podrec_service_gets_every_variable_the_code_reads():
    needed = set(local_defaults(Path("/x"))) | dagster_yaml_variables() | {
        "MLFLOW_TRACKING_URI", "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION",
    }  # fmt: skip
    podrec = [name for name, s in SERVICES.items() if s.get("build") == PODREC_IMAGE]
    assert set(podrec) >= {"podrec-code", "dagster-webserver", "dagster-daemon", "api", "dashboard"}
    for name in podrec:
        environment = SERVICES[name]["environment"]
        assert needed <= set(environment), f"{name} lacks {sorted(needed - set(environment))}"
        assert environment["PODREC_DELTA_ROOT"] == "s3://podrec/delta"
        assert environment["AWS_ENDPOINT_URL"] == "http://minio:9000"
        assert environment["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert "mc mb --ignore-existing local/podrec local/mlflow" in SERVICES["minio-init"]["command"][0]
    assert "--artifacts-destination s3://mlflow" in SERVICES["mlflow"]["command"]
    for name in (
        "api",
        "dashboard",
    ):  # bound to every interface inside the container, published on loopback only
        assert SERVICES[name]["command"][:2] == ["podrec", "serve" if name == "api" else "dashboard"]
        assert "0.0.0.0" in SERVICES[name]["command"]
        assert all(port.startswith("127.0.0.1:") for port in SERVICES[name]["ports"])


def test_secrets_come_only_from_the_environment_and_must_be_set():
    secrets = ("POSTGRES_PASSWORD", "MONGO_ROOT_PASSWORD", "MINIO_ROOT_PASSWORD", "AWS_SECRET_ACCESS_KEY",
               "PODREC_API_KEYS")  # fmt: skip
    for name in secrets:
        uses = re.findall(r"\$\{" + name + r"(:[?-])?[^}]*\}", COMPOSE_TEXT)
        assert uses and set(uses) == {":?"}, f"{name} must always be ${{{name}:?...}}"
    for service in SERVICES.values():
        assert all(port.startswith("127.0.0.1:") for port in service.get("ports", []))


def test_compose_names_the_production_services():
    assert "apache/kafka" in SERVICES["kafka"]["image"]
    # KRaft, no ZooKeeper
    assert SERVICES["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert SERVICES["mongo"]["image"].startswith("mongo:")
    assert SERVICES["postgres"]["image"].startswith("postgres:")
    assert "dagster-webserver" in SERVICES["dagster-webserver"]["command"]
    assert SERVICES["dagster-daemon"]["command"][:2] == ["dagster-daemon", "run"]
    assert "podrec_assets.definitions" in SERVICES["podrec-code"]["command"]


def test_kafka_advertises_an_address_each_client_can_reach():
    """A broker answers a client's first request with the advertised address of the listener it connected to; a host
    client handed `kafka:9092` cannot resolve it. Each published port must be a listener advertised on 127.0.0.1."""
    env = SERVICES["kafka"]["environment"]
    listeners = dict(entry.split("://") for entry in env["KAFKA_LISTENERS"].split(","))
    advertised = dict(entry.split("://") for entry in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    assert advertised["PLAINTEXT"] == "kafka:9092"  # what podrec-code, the daemon and the API use
    for port in SERVICES["kafka"]["ports"]:
        _, host_port, container_port = port.split(":")
        name = next(n for n, address in listeners.items() if address == f":{container_port}")
        assert advertised[name] == f"127.0.0.1:{host_port}", (name, advertised)
    protocols = dict(entry.split(":") for entry in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert set(listeners) <= set(protocols)


def test_production_instance_uses_postgres_and_no_telemetry():
    instance = yaml.safe_load((REPO_ROOT / "deploy" / "dagster.yaml").read_text())
    assert "postgres" in instance["storage"]  # run for real against PostgreSQL in test_dagster_postgres.py
    assert yaml.safe_load((REPO_ROOT / "dagster.yaml").read_text())["telemetry"]["enabled"] is False
