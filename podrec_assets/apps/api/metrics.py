"""The API's Prometheus metrics (prometheus-client). With several server processes (`podrec serve --workers N`),
PROMETHEUS_MULTIPROC_DIR is set before they start and /metrics adds up every process's files."""

from __future__ import annotations

import os
from collections import Counter as Tally

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

# Latency buckets around the target (p99 < 10 ms) and beyond, in seconds.
BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

LATENCY = Histogram(
    "podrec_api_request_seconds", "Request latency", ["method", "route", "status"], buckets=BUCKETS
)
REQUESTS = Counter("podrec_api_requests_total", "Requests answered", ["method", "route", "status"])
SOURCES = Counter("podrec_api_served_recommendations_total", "Recommendations served, by source", ["source"])
MODEL = Gauge("podrec_api_served_model_version", "1 for the model version of the newest list served", ["version"],
              multiprocess_mode="livemostrecent")  # fmt: skip
IMPRESSIONS = Counter(
    "podrec_api_impressions_total", "Impressions logged to Kafka (sent | dropped)", ["outcome"]
)
EVENTS = Counter("podrec_api_events_total", "Events posted (accepted | rejected | unavailable)", ["outcome"])

_last_version: list[str | None] = [None]


def observe(method: str, route: str, status: int, seconds: float) -> None:
    LATENCY.labels(method, route, str(status)).observe(seconds)
    REQUESTS.labels(method, route, str(status)).inc()


def served(version: str | None, sources: list[str | None]) -> None:
    for source, count in Tally(sources).items():  # one label lookup per source, not per recommendation
        SOURCES.labels(source or "unknown").inc(count)
    if version and version != _last_version[0]:
        if _last_version[0] is not None:
            MODEL.labels(_last_version[0]).set(0)
        MODEL.labels(version).set(1)
        _last_version[0] = version


def exposition() -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
