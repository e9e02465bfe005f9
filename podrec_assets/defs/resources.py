"""Dagster resources for the four services podrec talks to, each configured from environment variables.

`build_resources()` is the one place that maps variables to resources; `definitions.py` and the `podrec` command both
use it, so a run in the UI and a command in the shell talk to the same services.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from dagster import ConfigurableResource, Definitions, EnvVar, InitResourceContext, definitions
from dagster_pyspark import PySparkResource
from dagster_pyspark.resources import spark_session_from_config
from kafka import KafkaConsumer, KafkaProducer
from pydantic import Field, PrivateAttr
from pymongo import MongoClient
from pymongo.database import Database

from podrec_assets.lib.ingestion.kafka_clients import KafkaSettings
from podrec_assets.lib.models.registry import ModelRegistry
from podrec_assets.lib.settings import apply_local_defaults, table_uri
from podrec_assets.names import IMPRESSIONS_TOPIC


class KafkaResource(ConfigurableResource):
    """A Kafka cluster and the listener-events topic on it (kafka-python clients)."""

    bootstrap_servers: str = Field(description="host:port[,host:port]; env KAFKA_BOOTSTRAP_SERVERS")
    topic: str = Field(default="user-events", description="env PODREC_EVENTS_TOPIC")
    partitions: int = Field(default=6, description="partitions when podrec creates the topic")
    impressions_topic: str = Field(
        default=IMPRESSIONS_TOPIC, description="env PODREC_IMPRESSIONS_TOPIC: the lists the API served"
    )
    security_protocol: str = Field(default="PLAINTEXT", description="env KAFKA_SECURITY_PROTOCOL")
    sasl_mechanism: str | None = Field(default=None, description="env KAFKA_SASL_MECHANISM")
    sasl_username: str | None = Field(default=None, description="env KAFKA_SASL_USERNAME")
    sasl_password: str | None = Field(default=None, description="env KAFKA_SASL_PASSWORD")

    def settings(self) -> KafkaSettings:
        return KafkaSettings(self.bootstrap_servers, self.security_protocol, self.sasl_mechanism,
                             self.sasl_username, self.sasl_password)  # fmt: skip

    def client_config(self) -> dict:
        return self.settings().client_config()

    def consumer(self, **overrides) -> KafkaConsumer:
        return self.settings().consumer(**overrides)

    def producer(self, **overrides) -> KafkaProducer:
        return self.settings().producer(**overrides)

    def topic_id(self) -> str | None:
        return self.settings().topic_id(self.topic)

    def ensure_topic(self) -> bool:
        """Create the topic with `partitions` partitions if it does not exist. True if it was created."""
        return self.settings().ensure_topic(self.topic, self.partitions)


class MongoResource(ConfigurableResource):
    """MongoDB (or any MongoDB-wire server) through pymongo; no `dagster-mongo` package exists."""

    uri: str = Field(description="env MONGO_URI, e.g. mongodb://user:pass@host:27017")
    database: str = Field(default="podrec", description="env MONGO_DB")
    server_selection_timeout_ms: int = 5_000

    def client(self) -> MongoClient:
        return MongoClient(self.uri, serverSelectionTimeoutMS=self.server_selection_timeout_ms, tz_aware=True)

    def db(self, client: MongoClient) -> Database:
        return client[self.database]


class DeltaLakeResource(ConfigurableResource):
    """Where podrec's Delta tables live (a local folder or an object-store URI) and how to reach them (delta-rs)."""

    root: str = Field(description="env PODREC_DELTA_ROOT: a folder or e.g. s3://bucket/podrec")
    aws_endpoint_url: str | None = Field(
        default=None, description="env AWS_ENDPOINT_URL, for S3-compatible stores"
    )

    def table_uri(self, name: str) -> str:
        return table_uri(self.root, name)

    def storage_options(self) -> dict[str, str] | None:
        # Credentials come from the standard AWS_* variables, read by delta-rs itself; only the endpoint is ours.
        return {"AWS_ENDPOINT_URL": self.aws_endpoint_url} if self.aws_endpoint_url else None


class ModelStoreResource(ConfigurableResource):
    """The model registry (MLflow; see lib/models/registry.py) and the local folder versions are built in (one the
    Spark server sees too)."""

    root: str = Field(description="env PODREC_MODEL_ROOT")
    tracking_uri: str | None = Field(
        default=None,
        description="env MLFLOW_TRACKING_URI (an MLflow server); unset: SQLite at $PODREC_MODEL_ROOT/mlflow.db",
    )

    def registry(self, name: str) -> ModelRegistry:
        return ModelRegistry(Path(self.root), name, self.tracking_uri)


class LazyPySparkResource(PySparkResource):
    """dagster-pyspark's resource, connecting on first use rather than at the run's start: `als_recommendations` and
    `final_recommendations` need Spark only above PODREC_SPARK_PATH_MIN_LISTENERS, and on the driver path must not
    wait on a Spark server that is down (its client retries for minutes). It keeps its own session attribute, not
    the parent's private one."""

    _lazy_session: Any = PrivateAttr(default=None)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        pass

    @property
    def spark_session(self) -> Any:
        if self._lazy_session is None:
            self._lazy_session = spark_session_from_config(self.spark_config)
        return self._lazy_session


class CatalogResource(ConfigurableResource):
    """Where the episode catalog comes from (content/sources.py): any of podcastindex, rss, movielens, sample,
    longtail."""

    sources: str = Field(default="sample", description="env PODREC_CATALOG_SOURCES, comma-separated")
    rss_feeds: str = Field(default="", description="env PODREC_RSS_FEEDS: comma-separated feed URLs")
    podcastindex_api_key: str | None = Field(default=None, description="env PODCASTINDEX_API_KEY")
    podcastindex_api_secret: str | None = Field(default=None, description="env PODCASTINDEX_API_SECRET")
    podcastindex_base_url: str | None = Field(
        default=None, description="env PODCASTINDEX_BASE_URL (default: PodcastIndex's public API)"
    )
    max_feeds: int = Field(default=50, description="trending feeds to take from PodcastIndex")
    longtail_episodes: int = Field(
        default=3000,
        description="env PODREC_LONGTAIL_EPISODES: synthetic episodes nobody has heard (`longtail`)",
    )

    def collect(self):
        from podrec_assets.lib.content.catalog import collect_catalog
        from podrec_assets.lib.content.sources import PODCASTINDEX_API, PodcastIndexClient

        client = None
        if self.podcastindex_api_key and self.podcastindex_api_secret:
            client = PodcastIndexClient(
                base_url=self.podcastindex_base_url or PODCASTINDEX_API,
                api_key=self.podcastindex_api_key,
                api_secret=self.podcastindex_api_secret,
            )
        sources = [s.strip() for s in self.sources.split(",") if s.strip()]
        feeds = [f.strip() for f in self.rss_feeds.split(",") if f.strip()]
        return collect_catalog(sources, feeds, client, self.max_feeds, self.longtail_episodes)


def build_resources(resolved: bool = False) -> dict:
    """Resources for every asset, configured from environment variables (local-stack defaults filled in).

    Dagster gets `EnvVar`s (shown as such in the UI); `resolved=True` gives plain values for use outside Dagster.
    """
    apply_local_defaults()

    def env(name: str):
        return os.environ[name] if resolved else EnvVar(name)

    def optional(name: str):
        return env(name) if os.environ.get(name) else None

    return {
        "kafka": KafkaResource(
            bootstrap_servers=env("KAFKA_BOOTSTRAP_SERVERS"),
            topic=env("PODREC_EVENTS_TOPIC"),
            impressions_topic=env("PODREC_IMPRESSIONS_TOPIC"),
            partitions=int(os.environ["PODREC_EVENTS_PARTITIONS"]),
            security_protocol=optional("KAFKA_SECURITY_PROTOCOL") or "PLAINTEXT",
            sasl_mechanism=optional("KAFKA_SASL_MECHANISM"),
            sasl_username=optional("KAFKA_SASL_USERNAME"),
            sasl_password=optional("KAFKA_SASL_PASSWORD"),
        ),
        "mongo": MongoResource(uri=env("MONGO_URI"), database=env("MONGO_DB")),
        "delta": DeltaLakeResource(
            root=env("PODREC_DELTA_ROOT"), aws_endpoint_url=optional("AWS_ENDPOINT_URL")
        ),
        "models": ModelStoreResource(
            root=env("PODREC_MODEL_ROOT"), tracking_uri=optional("MLFLOW_TRACKING_URI")
        ),
        "catalog": CatalogResource(
            sources=optional("PODREC_CATALOG_SOURCES") or "sample",
            rss_feeds=optional("PODREC_RSS_FEEDS") or "",
            podcastindex_api_key=optional("PODCASTINDEX_API_KEY"),
            podcastindex_api_secret=optional("PODCASTINDEX_API_SECRET"),
            podcastindex_base_url=optional("PODCASTINDEX_BASE_URL"),
            longtail_episodes=int(os.environ.get("PODREC_LONGTAIL_EPISODES") or 3000),
        ),
        # dagster-pyspark's resource; `spark.remote` makes its builder return a Spark Connect session, so every run
        # connects to one long-lived Spark server in ~0.5 s instead of starting a JVM (15-40 s here).
        "pyspark": LazyPySparkResource(spark_config={"spark.remote": os.environ["SPARK_REMOTE"]}),
    }


@definitions
def resources() -> Definitions:
    """Every asset's resources, bound once for the whole code location (the defs folder loads this)."""
    return Definitions(resources=build_resources())
