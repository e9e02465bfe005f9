"""Send messages to the events topic: keyed by user, idempotent, acks=all, bounded retries, counted."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from kafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError
from tqdm import tqdm

from podrec_assets.defs.resources import KafkaResource


class BrokerUnavailable(RuntimeError):
    """Kafka cannot be reached; the message names the address and what to do."""


@dataclass
class SendReport:
    sent: int = 0
    failed: int = 0
    first_error: str | None = None


def send_messages(
    kafka: KafkaResource,
    messages: Iterable[tuple[bytes | None, bytes]],
    total: int | None = None,
    progress: bool = True,
) -> SendReport:
    """Send (key, value) pairs to `kafka.topic`; returns how many the broker acknowledged and how many failed."""
    report = SendReport()
    try:
        producer = kafka.producer()
    except (KafkaTimeoutError, KafkaConnectionError):
        raise BrokerUnavailable(
            f"cannot reach Kafka at {kafka.bootstrap_servers}: start it with `podrec services up` "
            "or set KAFKA_BOOTSTRAP_SERVERS"
        ) from None

    def on_success(_metadata) -> None:
        report.sent += 1

    def on_error(error: Exception) -> None:
        report.failed += 1
        report.first_error = report.first_error or f"{type(error).__name__}: {error}"

    try:
        for key, value in tqdm(
            messages, total=total, unit="ev", disable=not progress, desc=f"→ {kafka.topic}"
        ):
            try:
                producer.send(kafka.topic, key=key, value=value).add_callback(on_success).add_errback(
                    on_error
                )
            except (KafkaTimeoutError, KafkaConnectionError) as error:  # the broker went away mid-run
                raise BrokerUnavailable(
                    f"Kafka at {kafka.bootstrap_servers} stopped answering: {error}"
                ) from None
            except KafkaError as error:
                on_error(error)
        producer.flush()
    finally:
        producer.close(timeout=10)
    return report
