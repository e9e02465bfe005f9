"""The HTTP API (FastAPI): what listeners are served, and the way their events come in.

Reads come from MongoDB (one document per listener's list, written by the graph); every list served is logged as an
impression to Kafka (lib/feedback/impressions.py lands them in Delta, exactly once) with its A/B arm
(lib/serving/experiments.py). Events are checked by the project's own contract (lib/ingestion/contract.py) and
produced to the events topic with acks=all before the API answers 202: a broker that is down gets 503, never 200.

Safety: every id in a path or an event is a plain id (lib/serving/ids.py: no `$`, no `.`, bounded length); writes
need an API key from PODREC_API_KEYS (compared in constant time); reads are open to loopback clients by default
(PODREC_API_READS=loopback|open|key); bodies are bounded (PODREC_API_MAX_BODY_BYTES, PODREC_API_MAX_BATCH).
"""

from __future__ import annotations

import asyncio
import hmac
import os
import threading
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI, Header, HTTPException, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from kafka.errors import KafkaConnectionError, KafkaError
from pymongo import MongoClient
from pymongo.errors import PyMongoError

from podrec_assets.apps.api import metrics
from podrec_assets.apps.api.similar import SimilarEpisodes
from podrec_assets.lib.feedback.impressions import impression_message
from podrec_assets.lib.ingestion.contract import MAX_ID_LENGTH, InvalidEvent, validate_message
from podrec_assets.lib.ingestion.kafka_clients import KafkaSettings
from podrec_assets.lib.serving.experiments import Arm, assign, parse_arms
from podrec_assets.lib.serving.ids import is_safe_id
from podrec_assets.lib.serving.lookup import (
    COLD_START_USER,
    als_top_n_for,
    recommendations_for,
    user_stats_for,
)
from podrec_assets.lib.settings import apply_local_defaults, table_uri
from podrec_assets.names import EPISODE_SIMILARITY, EPISODES, GLOBAL_STATS

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_\-:@+=]*$"  # lib/serving/ids.py, for the OpenAPI document
SafeId = Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN)]
LOOPBACK = {"127.0.0.1", "::1", "localhost", "testclient"}
ALS_REASON = "listeners with similar taste enjoyed this"
# every id an event may carry
ID_FIELDS = ("event_id", "user_id", "episode_id", "new_episode_id", "content_id")


@dataclass(frozen=True)
class ApiConfig:
    mongo_uri: str
    mongo_db: str
    kafka: KafkaSettings
    events_topic: str
    impressions_topic: str
    delta_root: str
    api_keys: tuple[str, ...] = ()
    reads: str = "loopback"  # loopback | open | key
    arms: tuple[Arm, ...] = field(default_factory=lambda: parse_arms(None))
    ab_salt: str = ""
    max_body_bytes: int = 1_000_000
    max_batch: int = 500
    produce_timeout_s: float = 10.0

    @classmethod
    def from_env(cls) -> ApiConfig:
        apply_local_defaults()
        reads = os.environ.get("PODREC_API_READS", "loopback")
        if reads not in ("loopback", "open", "key"):
            raise ValueError(f"PODREC_API_READS={reads!r}: expected loopback, open or key")
        return cls(
            mongo_uri=os.environ["MONGO_URI"],
            mongo_db=os.environ["MONGO_DB"],
            kafka=KafkaSettings.from_env(),
            events_topic=os.environ["PODREC_EVENTS_TOPIC"],
            impressions_topic=os.environ["PODREC_IMPRESSIONS_TOPIC"],
            delta_root=os.environ["PODREC_DELTA_ROOT"],
            api_keys=tuple(k.strip() for k in os.environ.get("PODREC_API_KEYS", "").split(",") if k.strip()),
            reads=reads,
            arms=parse_arms(os.environ.get("PODREC_AB_ARMS")),
            ab_salt=os.environ.get("PODREC_AB_SALT", ""),
            max_body_bytes=int(os.environ.get("PODREC_API_MAX_BODY_BYTES", 1_000_000)),
            max_batch=int(os.environ.get("PODREC_API_MAX_BATCH", 500)),
        )


class Producers:
    """One kafka-python producer, made on first use and again after a failure (the broker may come up later). After a
    failed connection, callers fail fast for RETRY_S instead of each waiting for the broker; the serving path never
    waits at all (`get_nowait`): it connects in the background and drops that impression."""

    RETRY_S = 5.0

    def __init__(self, settings: KafkaSettings, **overrides):
        self.settings, self.overrides, self._producer, self._lock = (
            settings,
            overrides,
            None,
            threading.Lock(),
        )
        self._failed_at, self._connecting = float("-inf"), False

    def get(self):
        with self._lock:
            if self._producer is not None:
                return self._producer
            if time.monotonic() - self._failed_at < self.RETRY_S:
                raise KafkaConnectionError("Kafka was unreachable moments ago")
        try:
            producer = self.settings.producer(**{"max_block_ms": 5_000, **self.overrides})
        except KafkaError:
            self._failed_at = time.monotonic()
            raise
        with self._lock:
            if self._producer is None:
                self._producer, producer = producer, None
        if producer is not None:  # another thread connected meanwhile
            producer.close(timeout=1)
        return self._producer

    def try_connect(self) -> bool:
        try:
            self.get()
            return True
        except KafkaError:
            return False

    def get_nowait(self):
        """The producer if connected; otherwise start connecting in the background and return None."""
        if self._producer is not None:
            return self._producer
        with self._lock:
            if self._connecting:
                return None
            self._connecting = True

        def connect() -> None:
            try:
                self.get()
            except KafkaError:
                pass
            finally:
                self._connecting = False

        threading.Thread(target=connect, name="kafka-connect", daemon=True).start()
        return None

    def reset(self) -> None:
        with self._lock:
            producer, self._producer = self._producer, None
            self._failed_at = time.monotonic()
        if producer is not None:
            producer.close(timeout=1)

    def close(self) -> None:
        with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            producer.close(timeout=1)


class Measured:
    """Latency and count per route and status for /metrics, and 413 for a body over the limit before it is read. A
    plain ASGI middleware: Starlette's `@app.middleware("http")` costs ~0.2 ms a request (benchmarks/api.py)."""

    def __init__(self, app, max_body_bytes: int):
        self.app, self.max_body_bytes = app, max_body_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), [500]
        length = dict(scope["headers"]).get(b"content-length")

        async def send_status(message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
                await JSONResponse({"detail": "request body too large"}, status_code=413)(
                    scope, receive, send_status
                )
            else:
                await self.app(scope, receive, send_status)
        finally:
            # the router records the route it matched
            route = getattr(scope.get("route"), "path", "unmatched")
            metrics.observe(scope["method"], route, status[0], time.perf_counter() - started)


def create_app(config: ApiConfig | None = None) -> FastAPI:
    config = config or ApiConfig.from_env()
    mongo = MongoClient(config.mongo_uri, serverSelectionTimeoutMS=3_000, tz_aware=True)
    db = mongo[config.mongo_db]
    producers = Producers(config.kafka)  # events: the request waits for every acknowledgement
    impression_producers = Producers(config.kafka, linger_ms=200)  # impressions: nobody waits, so batch them
    similar = SimilarEpisodes(table_uri(config.delta_root, EPISODE_SIMILARITY))

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        # connect to Kafka before the first request if it answers within a few seconds; if not, start anyway
        loop = asyncio.get_running_loop()
        await asyncio.gather(loop.run_in_executor(None, producers.try_connect),
                             loop.run_in_executor(None, impression_producers.try_connect))  # fmt: skip
        yield
        producers.close()
        impression_producers.close()
        mongo.close()

    app = FastAPI(
        title="podrec",
        version="1",
        summary="Podcast recommendations: what a listener is served, and their events in.",
        lifespan=lifespan,
    )

    def allowed(key: str | None) -> bool:
        return key is not None and any(hmac.compare_digest(key.encode(), k.encode()) for k in config.api_keys)

    def require_read(request: Request, x_api_key: Annotated[str | None, Header()] = None) -> None:
        """Every read route's gate (a FastAPI dependency): see PODREC_API_READS."""
        client = request.client.host if request.client else ""
        if (
            config.reads == "open"
            or (config.reads == "loopback" and client in LOOPBACK)
            or allowed(x_api_key)
        ):
            return
        raise HTTPException(401, "this API needs an X-API-Key for reads from outside this machine")

    reads = [Depends(require_read)]

    app.add_middleware(Measured, max_body_bytes=config.max_body_bytes)

    # -- reads ------------------------------------------------------------------------------------------------------
    @app.get("/v1/users/{user_id}/recommendations", tags=["recommendations"], dependencies=reads)
    def recommendations(
        user_id: SafeId,
        limit: Annotated[int, Query(ge=1, le=100)] = 10,
    ) -> Response:
        """The listener's list: episodes with titles, scores, reasons and sources, by the strategy of their A/B arm.
        A listener podrec has no list for gets the new-listener list (`new_listener: true`). Each list served is
        logged as an impression (`request_id`)."""
        arm = assign(user_id, config.arms, config.ab_salt)
        items, new_listener = _list_for(db, user_id, arm.strategy, limit)
        request_id = uuid.uuid4().hex
        now = datetime.now(UTC)
        version = items[0]["model_version"] if items else None
        body = {
            "user_id": user_id, "request_id": request_id, "new_listener": new_listener, "strategy": arm.strategy,
            "arm": arm.name, "model_version": version,
            "generated_at": items[0]["generated_at"] if items else None,
            "recommendations": [
                {"rank": i + 1, "episode_id": r["episode_id"], "title": r.get("title"), "score": r.get("score"),
                 "reason": r.get("reason"), "source": r.get("source")}
                for i, r in enumerate(items)
            ],
        }  # fmt: skip
        _log_impression(request_id, user_id, [r["episode_id"] for r in items], version, arm, now)
        metrics.served(version, [r.get("source") for r in items])
        return Response(orjson.dumps(body), media_type="application/json",
                        headers={"X-Request-ID": request_id})  # fmt: skip

    def _log_impression(request_id: str, user_id: str, episodes: list[str], version, arm: Arm, now) -> None:
        message = impression_message(request_id, user_id, episodes, version, arm.strategy, arm.name, now)
        producer = impression_producers.get_nowait()
        if producer is None:  # not connected (yet): the list is still served, the impression counted as lost
            metrics.IMPRESSIONS.labels("dropped").inc()
            return
        try:
            future = producer.send(config.impressions_topic, key=user_id.encode(), value=message)
            future.add_errback(lambda _: metrics.IMPRESSIONS.labels("dropped").inc())
            metrics.IMPRESSIONS.labels("sent").inc()
        except KafkaError:
            impression_producers.reset()
            metrics.IMPRESSIONS.labels("dropped").inc()

    @app.get("/v1/episodes/{episode_id}", tags=["episodes"], dependencies=reads)
    def episode(episode_id: SafeId) -> Response:
        """One episode of the catalog (MongoDB's mirror of the `episodes` table)."""
        document = db[EPISODES].find_one({"_id": episode_id}, {"content_hash": 0, "mirrored_at": 0})
        if document is None:
            raise HTTPException(404, f"no episode {episode_id}")
        document.pop("_id", None)
        return _json(document)

    @app.get("/v1/episodes/{episode_id}/similar", tags=["episodes"], dependencies=reads)
    def similar_episodes(
        episode_id: SafeId,
        limit: Annotated[int, Query(ge=1, le=100)] = 10,
    ) -> Response:
        """The episodes most like it by transcript embedding (the `episode_similarity` table), with titles."""
        neighbours = similar.of(episode_id, limit)
        if neighbours is None:
            raise HTTPException(
                404, f"no neighbours for {episode_id}: unknown episode, or it has no text yet"
            )
        titles = _titles(db, [n["episode_id"] for n in neighbours])
        return _json({"episode_id": episode_id,
                      "similar": [{**n, "title": titles.get(n["episode_id"])} for n in neighbours]})  # fmt: skip

    @app.get("/v1/users/{user_id}/stats", tags=["listeners"], dependencies=reads)
    def stats(user_id: SafeId) -> Response:
        """The listener's listening stats (kept exactly, incrementally, by the `user_stats` asset)."""
        document = user_stats_for(db, user_id)
        if document is None:
            raise HTTPException(404, f"no stats for {user_id}: podrec has no events of this listener")
        document.pop("applied", None)
        return _json(document)

    @app.get("/v1/trending", tags=["episodes"], dependencies=reads)
    def trending(
        window: Annotated[str, Query(pattern="^(7d|30d)$")] = "7d",
    ) -> Response:
        """The most liked episodes and the categories gaining listeners over the last 7 or 30 days."""
        document = db[GLOBAL_STATS].find_one({"_id": f"window_{window}"})
        if document is None:
            raise HTTPException(404, "no global stats yet: the global_stats asset has not run")
        document.pop("_id", None)
        return _json(document)

    # -- events in --------------------------------------------------------------------------------------------------
    @app.post("/v1/events", status_code=202, tags=["events"])
    async def events(request: Request, x_api_key: Annotated[str | None, Header()] = None) -> Response:
        """One event (a JSON object) or a batch (a JSON array), in the event contract (docs/events.md). All or
        nothing: if any event is bad, the answer is 422 naming each bad one's `reason_code` and nothing is sent.
        202 means every event is in Kafka (acks=all)."""
        if not allowed(x_api_key):
            raise HTTPException(401, "writes need a valid X-API-Key")
        raw = await request.body()
        if len(raw) > config.max_body_bytes:
            raise HTTPException(413, "request body too large")
        try:
            payload = orjson.loads(raw)
        except orjson.JSONDecodeError as error:
            raise HTTPException(
                422, [{"index": None, "reason_code": "not_json", "detail": str(error)[:200]}]
            ) from None
        batch = payload if isinstance(payload, list) else [payload]
        if not batch or len(batch) > config.max_batch:
            raise HTTPException(422, f"send between 1 and {config.max_batch} events")
        now, messages, problems = datetime.now(UTC), [], []
        for index, event in enumerate(batch):
            encoded = orjson.dumps(event)
            try:
                validate_message(encoded, now)
                ids = event if isinstance(event, dict) else {}
                unsafe = [k for k in ID_FIELDS if ids.get(k) and not is_safe_id(ids[k])]
                if unsafe:
                    raise InvalidEvent(
                        "unsafe_id", f"{unsafe[0]} is not a plain id (letters, digits, _-:@+=)"
                    )
            except InvalidEvent as bad:
                problems.append({"index": index, "reason_code": bad.code, "detail": bad.detail})
                continue
            messages.append((str(event["user_id"]).encode(), encoded))
        if problems:
            metrics.EVENTS.labels("rejected").inc(len(batch))
            raise HTTPException(422, problems)
        try:
            producer = producers.get()
            futures = [producer.send(config.events_topic, key=key, value=value) for key, value in messages]
            for future in futures:
                future.get(timeout=config.produce_timeout_s)
        except (KafkaError, TimeoutError) as error:
            producers.reset()
            metrics.EVENTS.labels("unavailable").inc(len(batch))
            raise HTTPException(503, f"Kafka is not accepting events ({type(error).__name__}); nothing was "
                                     "acknowledged, send them again") from None  # fmt: skip
        metrics.EVENTS.labels("accepted").inc(len(messages))
        return _json({"accepted": len(messages)}, status=202)

    # -- operations -------------------------------------------------------------------------------------------------
    @app.get("/healthz", tags=["operations"])
    def healthz() -> dict:
        """The process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"])
    def readyz() -> Response:
        """MongoDB and Kafka answer: the API can serve lists and take events."""
        checks = {}
        try:
            mongo.admin.command("ping")
            checks["mongodb"] = "ok"
        except PyMongoError as error:
            checks["mongodb"] = f"unavailable: {type(error).__name__}"
        try:
            producers.get().partitions_for(config.events_topic)
            checks["kafka"] = "ok"
        except KafkaError as error:
            producers.reset()
            checks["kafka"] = f"unavailable: {type(error).__name__}"
        ready = all(v == "ok" for v in checks.values())
        return _json({"ready": ready, **checks}, status=200 if ready else 503)

    @app.get("/metrics", tags=["operations"])
    def prometheus() -> Response:
        """Prometheus metrics: latency and counts per route and status, sources served, the model version."""
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    return app


def _list_for(db, user_id: str, strategy: str, limit: int) -> tuple[list[dict], bool]:
    """(the list of `strategy` for the listener, whether it is the new-listener list)."""
    if strategy == "als":
        rows = als_top_n_for(db, user_id, limit)
        if rows:
            titles = _titles(db, [r["new_episode_id"] for r in rows])
            return [{"episode_id": r["new_episode_id"], "title": titles.get(r["new_episode_id"]),
                     "score": r["als_score"], "reason": ALS_REASON, "source": "als",
                     "model_version": r["model_version"], "generated_at": r["generated_at"]}
                    for r in rows], False  # fmt: skip
    if strategy == "popularity":
        user_id = COLD_START_USER
    rows = recommendations_for(db, user_id, limit)
    items = [{"episode_id": r["recommended_episode_id"], **r} for r in rows]
    return items, bool(rows) and rows[0]["user_id"] == COLD_START_USER and strategy != "popularity"


def _titles(db, episode_ids: list[str]) -> dict[str, str | None]:
    """The catalog titles of these episodes, in one query (MongoDB's mirror of `episodes`)."""
    return {d["_id"]: d.get("title") for d in db[EPISODES].find({"_id": {"$in": episode_ids}}, {"title": 1})}


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")
