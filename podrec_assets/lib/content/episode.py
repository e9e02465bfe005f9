"""What every catalog source yields: episodes, and per-feed errors that never fail the whole catalog."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Episode:
    """One catalog entry. `episode_id` is stable across runs for the same episode of the same source."""

    episode_id: str
    source: str  # "podcastindex" | "rss" | "movielens" | "sample"
    title: str
    description: str = ""
    show: str = ""  # the podcast (feed) title
    author: str = ""
    categories: tuple[str, ...] = ()
    language: str = ""
    published_at: datetime | None = None  # timezone-aware (UTC)
    audio_url: str = ""
    duration_sec: int | None = None
    transcript_url: str = ""  # "" when the feed links no transcript
    transcript_type: str = ""  # MIME type as the feed gives it, e.g. "text/vtt", "application/x-subrip"
    feed_url: str = ""


@dataclass(frozen=True)
class FeedError:
    """A feed (or API call) that could not be read; the rest of the catalog goes on without it."""

    source: str
    feed: str  # the feed URL, API path or file concerned
    kind: str  # "network" | "http" | "rate_limited" | "malformed" | "auth"
    message: str


@dataclass
class SourceResult:
    episodes: list[Episode] = field(default_factory=list)
    errors: list[FeedError] = field(default_factory=list)

    def extend(self, other: SourceResult) -> None:
        self.episodes.extend(other.episodes)
        self.errors.extend(other.errors)
