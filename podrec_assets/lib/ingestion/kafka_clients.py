"""Kafka clients (kafka-python) as podrec configures them, for anything that is not a Dagster asset too (the API):
`defs/resources.py`'s KafkaResource is these settings as a Dagster resource."""

from __future__ import annotations

import os
from dataclasses import dataclass

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError


@dataclass(frozen=True)
class KafkaSettings:
    bootstrap_servers: str  # host:port[,host:port]
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None

    @classmethod
    def from_env(cls) -> KafkaSettings:
        """KAFKA_BOOTSTRAP_SERVERS and the optional KAFKA_SECURITY_PROTOCOL / KAFKA_SASL_* variables."""
        return cls(
            bootstrap_servers=os.environ["KAFKA_BOOTSTRAP_SERVERS"],
            security_protocol=os.environ.get("KAFKA_SECURITY_PROTOCOL") or "PLAINTEXT",
            sasl_mechanism=os.environ.get("KAFKA_SASL_MECHANISM") or None,
            sasl_username=os.environ.get("KAFKA_SASL_USERNAME") or None,
            sasl_password=os.environ.get("KAFKA_SASL_PASSWORD") or None,
        )

    def client_config(self) -> dict:
        config: dict = {
            "bootstrap_servers": self.bootstrap_servers.split(","),
            "security_protocol": self.security_protocol,
            "bootstrap_timeout_ms": 10_000,  # a broker that is down is reported in 10 s, not 30
        }
        if self.sasl_mechanism:
            config.update(
                sasl_mechanism=self.sasl_mechanism,
                sasl_plain_username=self.sasl_username,
                sasl_plain_password=self.sasl_password,
            )
        return config

    def consumer(self, **overrides) -> KafkaConsumer:
        """A group-less consumer: podrec assigns partitions itself and keeps positions in Delta, not in Kafka."""
        config = {
            "group_id": None,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "fetch_max_wait_ms": 200,
            "max_partition_fetch_bytes": 4 * 1024 * 1024,
            "request_timeout_ms": 15_000,
        }
        config.update(overrides)
        return KafkaConsumer(**self.client_config(), **config)

    def producer(self, **overrides) -> KafkaProducer:
        """Idempotent, acks=all producer with bounded retries (a dead broker fails within `max_block_ms`)."""
        config = {
            "acks": "all",
            "enable_idempotence": True,
            "retries": 10,
            "retry_backoff_ms": 200,
            "delivery_timeout_ms": 60_000,
            "max_block_ms": 10_000,
            "linger_ms": 20,
            "batch_size": 256 * 1024,
        }
        config.update(overrides)
        return KafkaProducer(**self.client_config(), **config)

    def topic_id(self, topic: str) -> str | None:
        """The topic's id (KIP-516): it changes when the topic is re-created. None if the broker has none."""
        admin = KafkaAdminClient(**self.client_config(), request_timeout_ms=10_000)
        try:
            topic_id = admin.describe_topics([topic])[0].get("topic_id")
        finally:
            admin.close()
        return None if not topic_id or set(str(topic_id)) <= {"0", "-"} else str(topic_id)

    def ensure_topic(self, topic: str, partitions: int) -> bool:
        """Create `topic` with `partitions` partitions if it does not exist. True if it was created."""
        admin = KafkaAdminClient(**self.client_config(), request_timeout_ms=10_000)
        try:
            admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
            return True
        except TopicAlreadyExistsError:
            return False
        finally:
            admin.close()
