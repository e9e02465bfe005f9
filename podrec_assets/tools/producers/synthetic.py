"""Synthetic listeners with latent tastes, so that collaborative filtering has real signal to find.

Each listener has a taste over categories (a sparse Dirichlet draw) and each episode a quality. A listener picks
episodes with probability rising with `appeal = taste[category] * quality`; what they do next follows the appeal:
high appeal → listen to the end, like, rate high; low appeal → skip or abandon early, rate low. Timestamps are spread
over `days` days ending at `end`. The same seed gives the same events, ids included.
"""

from __future__ import annotations

import bisect
import itertools
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from podrec_assets.lib.ingestion.contract import make_v1_event

CATEGORIES = ("news", "comedy", "true-crime", "technology", "sports", "history", "science", "business")
_SHOW_WORDS = ("Daily", "Weekly", "Hour", "Files", "Lab", "Talk", "Brief", "Deep Dive")
DEVICES = ("ios", "android", "web", "smart-speaker")


@dataclass(frozen=True)
class Episode:
    episode_id: str
    title: str
    show: str
    category: str
    duration_sec: int
    quality: float  # hidden from everything but the generator


def sample_catalog(shows_per_category: int = 5, episodes_per_show: int = 6, seed: int = 7) -> list[Episode]:
    """A small built-in catalog for the demo and the tests, until the `episodes` asset exists."""
    rng = random.Random(seed)
    catalog = []
    for c, category in enumerate(CATEGORIES):
        for s in range(shows_per_category):
            show = f"{category.replace('-', ' ').title()} {_SHOW_WORDS[(c + s) % len(_SHOW_WORDS)]} {s + 1}"
            for e in range(episodes_per_show):
                catalog.append(
                    Episode(
                        episode_id=str(41_000_000_000 + c * 10_000 + s * 100 + e),  # PodcastIndex-like ids
                        title=f"{show} — episode {e + 1}",
                        show=show,
                        category=category,
                        duration_sec=rng.randrange(900, 5400),
                        quality=rng.betavariate(4, 2),
                    )
                )
    return catalog


@dataclass(frozen=True)
class Listener:
    user_id: str
    taste: dict[str, float]
    device: str
    activity: float  # relative number of sessions


def _dirichlet(rng: random.Random, keys: tuple[str, ...], alpha: float) -> dict[str, float]:
    draws = [rng.gammavariate(alpha, 1.0) for _ in keys]
    total = sum(draws) or 1.0
    return {k: d / total for k, d in zip(keys, draws, strict=True)}


def catalog_from_documents(documents: list[dict]) -> list[Episode]:
    """Episodes of the real catalog (MongoDB `episodes`, as the `episodes` asset mirrors it) for the generator: the
    first category is the one tastes are over; an episode's hidden quality is drawn from its id, so it is stable."""
    catalog = []
    for doc in sorted(documents, key=lambda d: d["episode_id"]):
        categories = doc.get("categories") or ["general"]
        rng = random.Random(doc["episode_id"])
        catalog.append(
            Episode(
                episode_id=doc["episode_id"],
                title=doc.get("title") or doc["episode_id"],
                show=doc.get("show") or "",
                category=str(categories[0]).lower(),
                duration_sec=int(doc.get("duration_sec") or rng.randrange(900, 5400)),
                quality=rng.betavariate(4, 2),
            )
        )
    return catalog


def make_listeners(n: int, rng: random.Random, categories: tuple[str, ...] = CATEGORIES) -> list[Listener]:
    return [
        Listener(
            user_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            taste=_dirichlet(rng, categories, alpha=0.3),
            device=rng.choice(DEVICES),
            activity=rng.lognormvariate(0, 0.6),
        )
        for _ in range(n)
    ]


def _session_events(listener: Listener, episode: Episode, start: datetime, appeal: float, rng: random.Random):
    """The events of one listening session, as (event_type, seconds after start, fields)."""
    duration = episode.duration_sec
    yield "play", 0.0, {"position_sec": 0.0}
    if appeal < 0.15 and rng.random() < 0.7:  # not for me: skip within the first minutes
        at = rng.uniform(5, 180)
        yield "skip", at, {"from_sec": 0.0, "to_sec": round(at, 1), "played_pct": round(at / duration, 4)}
        if rng.random() < 0.2:
            yield "rate", at + 5, {"rating": rng.choice((1, 2))}
        return
    listened = min(1.0, max(0.02, rng.gauss(0.35 + 0.9 * appeal, 0.2)))
    played = round(listened * duration, 1)
    if listened < 1.0 and rng.random() < 0.6:
        pause_at = round(played * rng.uniform(0.3, 1.0), 1)
        yield "pause", pause_at, {"from_sec": 0.0, "to_sec": pause_at, "position_sec": pause_at,
                                  "played_pct": round(pause_at / duration, 4)}  # fmt: skip
    if listened >= 0.95:
        yield "complete", float(duration), {"position_sec": float(duration), "played_pct": 1.0}
    elif listened < 0.3:
        yield "abandon", played, {"position_sec": played, "played_pct": round(listened, 4)}
    if appeal > 0.45 and rng.random() < appeal:
        yield "like", played + 1, {}
    if rng.random() < 0.3:
        rating = max(1, min(5, round(1 + 4 * appeal + rng.gauss(0, 0.6))))
        yield "rate", played + 2, {"rating": rating}


def generate_events(
    users: int = 200,
    days: int = 14,
    sessions_per_user: float = 12.0,
    catalog: list[Episode] | None = None,
    seed: int = 42,
    end: datetime | None = None,
) -> Iterator[dict]:
    """v1 messages (dicts), roughly in time order per user.

    Listeners and their tastes depend on `seed` only; event ids on `seed` and `end`, so generating again later adds
    new listening activity, while the same seed and end reproduce the same events exactly."""
    rng = random.Random(seed)
    catalog = catalog or sample_catalog()
    end = end or datetime.now(UTC).replace(microsecond=0)
    ids = random.Random(f"{seed}:{end.isoformat()}")
    start = end - timedelta(days=days)
    span = (end - start).total_seconds()
    found = {e.category for e in catalog}
    # the built-in categories first, in their order (same seed, same listeners), then any the catalog adds
    categories = tuple(c for c in CATEGORIES if c in found) + tuple(sorted(found - set(CATEGORIES)))
    for listener in make_listeners(users, rng, categories):
        appeals = [listener.taste[e.category] * e.quality for e in catalog]
        cumulative = list(
            itertools.accumulate(a * a + 1e-4 for a in appeals)
        )  # picks favour appealing episodes
        n_sessions = max(1, round(rng.expovariate(1 / sessions_per_user) * listener.activity))
        for _ in range(n_sessions):
            i = bisect.bisect_left(cumulative, rng.random() * cumulative[-1])
            episode, appeal = catalog[i], min(1.0, appeals[i] * 2.5)
            session_start = start + timedelta(seconds=rng.uniform(0, span - 6 * 3600))
            for event_type, offset, fields in _session_events(listener, episode, session_start, appeal, rng):
                yield make_v1_event(
                    event_id=str(uuid.UUID(int=ids.getrandbits(128), version=4)),
                    user_id=listener.user_id,
                    episode_id=episode.episode_id,
                    event_type=event_type,
                    ts=session_start + timedelta(seconds=offset),
                    device=listener.device,
                    **fields,
                )


def to_seed000(message: dict) -> dict:
    """The same event in the first generator's format (seed 000), for legacy-compatibility runs."""
    legacy = {
        k: v
        for k, v in message.items()
        if k not in ("schema_version", "episode_id", "event_type", "metadata")
    }
    legacy["new_episode_id"] = message["episode_id"]
    legacy["event"] = message["event_type"]
    return legacy
