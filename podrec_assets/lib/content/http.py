"""HTTP GET for feeds, APIs and transcripts: timeouts, a bounded retry on rate limits and server errors, and one
exception type whose `kind` says what went wrong (network, http, rate_limited)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import requests

USER_AGENT = "podrec/0.1 (+https://github.com/podrec)"
RETRY_STATUSES = {429, 500, 502, 503, 504}


def mime_type(content_type: str) -> str:
    """ "text/VTT; charset=utf-8" → "text/vtt"."""
    return content_type.split(";", 1)[0].strip().lower()


class FetchError(Exception):
    def __init__(self, kind: str, url: str, message: str, status: int | None = None):
        super().__init__(f"{kind}: {url}: {message}")
        self.kind, self.url, self.status = kind, url, status


@dataclass(frozen=True)
class HttpPolicy:
    timeout_s: float = 15.0
    retries: int = 2  # extra attempts after a 429/5xx or a connection error
    backoff_s: float = 1.0  # doubled per attempt; a 429's Retry-After wins, up to max_wait_s
    max_wait_s: float = 30.0
    max_bytes: int = 20_000_000


def http_get(
    url: str,
    session: requests.Session | None = None,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str | int] | None = None,
    policy: HttpPolicy = HttpPolicy(),
    sleep: Callable[[float], None] = time.sleep,
) -> requests.Response:
    """GET `url`; returns a 2xx response or raises FetchError after the policy's retries."""
    session = session or requests.Session()
    merged = {"User-Agent": USER_AGENT, **(headers or {})}
    for attempt in range(policy.retries + 1):
        last = attempt == policy.retries
        try:
            response = session.get(url, headers=merged, params=params, timeout=policy.timeout_s, stream=True)
            body = response.raw.read(policy.max_bytes + 1, decode_content=True)
        except requests.RequestException as error:
            if last:
                raise FetchError("network", url, f"{type(error).__name__}: {error}") from error
            sleep(min(policy.max_wait_s, policy.backoff_s * 2**attempt))
            continue
        if len(body) > policy.max_bytes:
            raise FetchError("http", url, f"body larger than {policy.max_bytes} bytes", response.status_code)
        response._content = body  # the body read above, so .text/.json() work as usual
        if response.ok:
            return response
        if response.status_code in RETRY_STATUSES and not last:
            sleep(_wait(response, attempt, policy))
            continue
        kind = "rate_limited" if response.status_code == 429 else "http"
        reason = response.reason or ""
        raise FetchError(kind, url, f"HTTP {response.status_code} {reason}".strip(), response.status_code)
    raise AssertionError("unreachable")


def _wait(response: requests.Response, attempt: int, policy: HttpPolicy) -> float:
    retry_after = response.headers.get("Retry-After", "")
    if retry_after.isdigit():
        return min(policy.max_wait_s, float(retry_after))
    return min(policy.max_wait_s, policy.backoff_s * 2**attempt)
