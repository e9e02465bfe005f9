"""Where the episode catalog comes from: the PodcastIndex API, plain RSS feeds, MovieLens-100k movies (so
replayed ratings have episodes to point at) and a bundled sample catalog for the demo.

Every source is a plain function returning a SourceResult: a feed or API call that fails becomes one FeedError
and the rest of the catalog goes on. Nothing here raises for a bad feed."""

from __future__ import annotations

import csv
import hashlib
import json
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from importlib.resources import files
from pathlib import Path
from typing import Any

import feedparser
import requests

from podrec_assets.lib.content.episode import Episode, FeedError, SourceResult
from podrec_assets.lib.content.http import USER_AGENT, FetchError, HttpPolicy, http_get, mime_type
from podrec_assets.lib.datasets import movielens

PODCASTINDEX_API = "https://api.podcastindex.org/api/1.0"
PODCAST_NS = "https://podcastindex.org/namespace/1.0"
ATOM_NS = "http://www.w3.org/2005/Atom"
DEFAULT_POLICY = HttpPolicy()

# Transcript formats in order of preference: timed formats first (they segment well), HTML last (noisiest).
TRANSCRIPT_PREFERENCE: dict[str, int] = {
    "text/vtt": 0,
    "application/x-subrip": 1,
    "application/srt": 1,
    "text/srt": 1,
    "application/json": 2,
    "text/plain": 3,
    "text/html": 4,
}
_EXTENSION_TYPES = {
    ".vtt": "text/vtt",
    ".srt": "application/x-subrip",
    ".json": "application/json",
    ".txt": "text/plain",
    ".html": "text/html",
    ".htm": "text/html",
}


# ---------------------------------------------------------------------------------------------------- helpers


def best_transcript(candidates: Iterable[tuple[str, str]]) -> tuple[str, str]:
    """(url, type) of the preferred transcript among (url, type) pairs, or ("", "") when there is none.

    Types are compared without parameters or case ("text/VTT; charset=utf-8" is text/vtt). A transcript of an
    unknown type still beats none: the transcript step decides whether it can read it."""
    ranked = [
        (TRANSCRIPT_PREFERENCE.get(mime_type(kind), len(TRANSCRIPT_PREFERENCE)), order, url, kind)
        for order, (url, kind) in enumerate(candidates)
        if url
    ]
    if not ranked:
        return "", ""
    _, _, url, kind = min(ranked)
    return url, kind


def _type_from_url(url: str) -> str:
    """Guess a transcript's type from its URL when the API gives only the URL."""
    path = url.split("?", 1)[0].lower()
    return next((kind for ext, kind in _EXTENSION_TYPES.items() if path.endswith(ext)), "")


class _TextExtractor(HTMLParser):
    """Collects the text of an HTML fragment; block tags become spaces so words don't run together."""

    _SKIP = frozenset({"script", "style"})
    # fmt: off
    _BLOCK = frozenset({"p", "br", "div", "li", "ul", "ol", "tr", "td", "th", "blockquote", "hr", "pre",
                        "section", "article", "table", "dd", "dt", "h1", "h2", "h3", "h4", "h5", "h6"})
    # fmt: on

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in self._SKIP:
            self._skipping += 1
        if tag in self._BLOCK:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP and self._skipping:
            self._skipping -= 1
        if tag in self._BLOCK:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def strip_html(text: str) -> str:
    """Plain text of an HTML description: tags dropped, entities decoded, whitespace collapsed."""
    if not text:
        return ""
    parser = _TextExtractor()
    parser.feed(text)
    parser.close()
    return " ".join("".join(parser.parts).split())


def parse_duration(value: Any) -> int | None:
    """Seconds from itunes:duration ("hh:mm:ss", "mm:ss", "3723", "3723.5"); None if absent or unreadable."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return int(value) if value > 0 else None
    try:
        seconds = 0.0
        for part in str(value).strip().split(":"):
            seconds = seconds * 60 + float(part)
    except ValueError:
        return None
    return int(seconds) if seconds > 0 else None


def _utc_from_unix(value: Any) -> datetime | None:
    if isinstance(value, int | float) and value > 0:
        return datetime.fromtimestamp(value, UTC)
    return None


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v.strip() for v in values if v and v.strip()))


# ------------------------------------------------------------------------------------------ PodcastIndex


def auth_headers(api_key: str, api_secret: str, now: int, user_agent: str = USER_AGENT) -> dict[str, str]:
    """PodcastIndex's request signing: Authorization is the lower-case hex SHA-1 of key + secret +
    X-Auth-Date, where X-Auth-Date is the unix time in whole seconds (the API accepts a 5-minute window)."""
    date = str(int(now))
    digest = hashlib.sha1((api_key + api_secret + date).encode()).hexdigest()
    return {"User-Agent": user_agent, "X-Auth-Date": date, "X-Auth-Key": api_key, "Authorization": digest}


@dataclass
class PodcastIndexClient:
    """Signed GETs against the PodcastIndex API, returning parsed JSON."""

    api_key: str
    api_secret: str
    base_url: str = PODCASTINDEX_API
    user_agent: str = USER_AGENT
    session: requests.Session | None = None
    policy: HttpPolicy = DEFAULT_POLICY
    sleep: Callable[[float], None] = time.sleep

    def get_json(self, path: str, params: Mapping[str, str | int], now: int | None = None) -> dict:
        """GET base_url + path. Raises FetchError: kind "auth" for 401/403, "malformed" for a body that is
        not a JSON object, else http_get's kind."""
        signed_at = int(time.time()) if now is None else now
        headers = auth_headers(self.api_key, self.api_secret, signed_at, self.user_agent)
        url = self.base_url.rstrip("/") + path
        try:
            response = http_get(url, self.session, headers, params, self.policy, self.sleep)
        except FetchError as error:
            if error.status in (401, 403):
                raise FetchError("auth", url, str(error), error.status) from error
            raise
        try:
            body = response.json()
        except ValueError as error:
            raise FetchError("malformed", url, f"not JSON: {error}", response.status_code) from error
        if not isinstance(body, dict):
            raise FetchError("malformed", url, "JSON is not an object", response.status_code)
        return body


def podcastindex_episodes(
    client: PodcastIndexClient, max_feeds: int = 50, language: str = "en", now: int | None = None
) -> SourceResult:
    """The latest episode of each trending feed in `language` (seed 001).

    `now` fixes the signing time (tests); by default each request is signed with the current time."""
    result = SourceResult()
    try:
        trending = client.get_json("/podcasts/trending", {"max": max_feeds, "lang": language}, now)
        feeds = trending.get("feeds")
        if not isinstance(feeds, list):
            raise FetchError("malformed", "/podcasts/trending", f"no feeds list: {str(trending)[:200]}")
    except FetchError as error:
        result.errors.append(FeedError("podcastindex", "/podcasts/trending", error.kind, str(error)))
        return result
    for feed in feeds:
        if not isinstance(feed, dict) or not _in_language(feed, language):
            continue
        path = f"/episodes/byfeedid?id={feed.get('id')}"
        where = str(feed.get("url") or path)
        try:
            body = client.get_json("/episodes/byfeedid", {"id": str(feed.get("id")), "max": 1}, now)
            items = body.get("items")
            if not isinstance(items, list):
                raise FetchError("malformed", path, "no items list")
            result.episodes.extend(_podcastindex_episode(feed, item) for item in items[:1])
        except FetchError as error:
            result.errors.append(FeedError("podcastindex", where, error.kind, str(error)))
        except (KeyError, TypeError, ValueError, AttributeError) as error:  # an item of the wrong shape
            result.errors.append(FeedError("podcastindex", where, "malformed", repr(error)))
    return result


def _in_language(feed: dict, language: str) -> bool:
    """Language prefix match ("en" takes "en-US"): the API filters by `lang` too, but feeds mislabel."""
    return str(feed.get("language") or "").lower().startswith(language.lower())


def _podcastindex_episode(feed: dict, item: dict) -> Episode:
    transcripts = [(t.get("url") or "", t.get("type") or "") for t in item.get("transcripts") or []]
    if not transcripts and item.get("transcriptUrl"):
        transcripts = [(item["transcriptUrl"], _type_from_url(item["transcriptUrl"]))]
    transcript_url, transcript_type = best_transcript(transcripts)
    categories = feed.get("categories") or item.get("categories") or {}
    return Episode(
        episode_id=f"pi-{item['id']}",
        source="podcastindex",
        title=str(item.get("title") or "").strip(),
        description=strip_html(str(item.get("description") or "")),
        show=str(feed.get("title") or item.get("feedTitle") or "").strip(),
        author=str(feed.get("author") or "").strip(),
        categories=_unique(str(c) for c in categories.values()),
        language=str(item.get("feedLanguage") or feed.get("language") or ""),
        published_at=_utc_from_unix(item.get("datePublished")),
        audio_url=str(item.get("enclosureUrl") or ""),
        duration_sec=parse_duration(item.get("duration")),
        transcript_url=transcript_url,
        transcript_type=transcript_type,
        feed_url=str(feed.get("url") or ""),
    )


# --------------------------------------------------------------------------------------------------- RSS


def rss_episode_id(feed_url: str, key: str) -> str:
    """Stable across runs: the feed URL plus the item's guid (or link, or title)."""
    return "rss-" + hashlib.sha256(f"{feed_url}\n{key}".encode()).hexdigest()[:16]


def rss_episodes(
    feed_urls: Sequence[str],
    episodes_per_feed: int | None = None,
    session: requests.Session | None = None,
    policy: HttpPolicy = DEFAULT_POLICY,
    sleep: Callable[[float], None] = time.sleep,
) -> SourceResult:
    """Episodes of each feed (the newest `episodes_per_feed`, or all); one FeedError per feed that fails."""
    result = SourceResult()
    for url in feed_urls:
        try:
            body = http_get(url, session, policy=policy, sleep=sleep).content
        except FetchError as error:
            result.errors.append(FeedError("rss", url, error.kind, str(error)))
            continue
        result.extend(parse_feed(url, body, episodes_per_feed))
    return result


def parse_feed(feed_url: str, body: bytes, episodes_per_feed: int | None = None) -> SourceResult:
    """Episodes of one feed's bytes. Bytes feedparser cannot make sense of (bozo, or not recognised as any
    feed format, e.g. an HTML page, and with no entries) are "malformed"; a valid feed without items is
    just empty."""
    parsed = feedparser.parse(body)
    if not parsed.entries:
        if parsed.bozo or not parsed.get("version"):
            reason = str(parsed.get("bozo_exception") or "not a recognised feed format")[:500]
            return SourceResult(errors=[FeedError("rss", feed_url, "malformed", reason)])
        return SourceResult()
    feed = parsed.feed
    transcripts = _transcripts_by_item(body)
    entries = list(enumerate(parsed.entries))
    if episodes_per_feed is not None:
        # newest first; entries without a date keep their order, after the dated ones
        entries.sort(key=lambda pair: _published(pair[1]) or datetime.min.replace(tzinfo=UTC), reverse=True)
        entries = entries[:episodes_per_feed]
    episodes = [
        _rss_episode(feed_url, feed, entry, _item_transcripts(transcripts, i, entry)) for i, entry in entries
    ]
    return SourceResult(episodes=episodes)


def _transcripts_by_item(body: bytes) -> list[tuple[str, list[tuple[str, str]]]] | None:
    """(guid, [(url, type)]) of every item, in document order. feedparser keeps only the last
    podcast:transcript of an item, so they are read again here. None when the bytes are not well-formed
    XML."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return None
    items = []
    for element in root.iter():
        if element.tag not in ("item", f"{{{ATOM_NS}}}entry"):
            continue
        guid = element.findtext("guid") or element.findtext(f"{{{ATOM_NS}}}id") or ""
        links = [
            (t.get("url", "").strip(), t.get("type", "").strip())
            for t in element.iter(f"{{{PODCAST_NS}}}transcript")
        ]
        items.append((guid.strip(), links))
    return items


def _item_transcripts(
    items: list[tuple[str, list[tuple[str, str]]]] | None, index: int, entry: Any
) -> list[tuple[str, str]]:
    """The transcripts of feedparser entry number `index`: matched by guid, else by position, else the one
    feedparser kept itself."""
    guid = (entry.get("id") or "").strip()
    if items is not None:
        if guid:
            for item_guid, links in items:
                if item_guid == guid:
                    return links
        if index < len(items):
            return items[index][1]
    kept = entry.get("podcast_transcript")
    return [(kept.get("url", ""), kept.get("type", ""))] if isinstance(kept, dict) else []


def _published(entry: Any) -> datetime | None:
    parsed = entry.get("published_parsed") or entry.get("updated_parsed")
    return datetime(*parsed[:6], tzinfo=UTC) if parsed else None  # feedparser gives UTC struct_time


def _rss_episode(feed_url: str, feed: Any, entry: Any, transcripts: list[tuple[str, str]]) -> Episode:
    key = entry.get("id") or entry.get("link") or entry.get("title") or ""
    audio = next(
        (link.get("href", "") for link in entry.get("links", []) if link.get("rel") == "enclosure"), ""
    )
    tags = [t.get("term") or "" for t in entry.get("tags", [])] + [
        t.get("term") or "" for t in feed.get("tags", [])
    ]
    transcript_url, transcript_type = best_transcript(transcripts)
    return Episode(
        episode_id=rss_episode_id(feed_url, key),
        source="rss",
        title=strip_html(entry.get("title", "")),
        description=strip_html(entry.get("summary", "") or entry.get("subtitle", "")),
        show=strip_html(feed.get("title", "")),
        author=(entry.get("author") or feed.get("author") or "").strip(),
        categories=_unique(tags),
        language=(feed.get("language") or "").strip(),
        published_at=_published(entry),
        audio_url=audio,
        duration_sec=parse_duration(entry.get("itunes_duration")),
        transcript_url=transcript_url,
        transcript_type=transcript_type,
        feed_url=feed_url,
    )


# --------------------------------------------------------------------------------------------- MovieLens


def movielens_episodes(folder: Path | None = None) -> SourceResult:
    """Every MovieLens-100k movie as an episode whose id matches the replayed `rate` events (`ml-<item>`).

    recbole's ml-100k.item has columns item_id, movie_title, release_year, class (space-separated genres);
    it is UTF-8. A missing file is one FeedError, like a feed that cannot be read."""
    path = (folder or movielens.movielens_100k_dir()) / "ml-100k.item"
    try:
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f, delimiter="\t"))
    except (OSError, UnicodeDecodeError) as error:
        return SourceResult(errors=[FeedError("movielens", str(path), "malformed", repr(error))])
    episodes = [_movie_episode(row) for row in rows[1:] if len(row) >= 4]
    return SourceResult(episodes=episodes)


def _movie_episode(row: list[str]) -> Episode:
    item, title, year, genres = row[0], row[1].strip(), row[2].strip(), row[3].split()
    categories = _unique(g for g in genres if g != "unknown")
    parts = [f"{title}."]
    if categories:
        parts.append(f"Genres: {', '.join(categories)}.")
    if year.isdigit():
        parts.append(f"Released {year}.")
    return Episode(
        episode_id=movielens.episode_id(item),
        source="movielens",
        title=title,
        description=" ".join(parts),
        categories=categories,
    )


# ------------------------------------------------------------------------------------------------ sample


def sample_episodes() -> SourceResult:
    """The demo catalog bundled as package data: 48 English episodes in 8 categories (sample_catalog.json)."""
    raw = files("podrec_assets.lib.content").joinpath("sample_catalog.json").read_text(encoding="utf-8")
    episodes = []
    for entry in json.loads(raw):
        published = entry.get("published_at")
        fields: dict[str, Any] = {  # JSON values: Episode's own fields, as the file spells them
            **entry,
            "source": "sample",
            "categories": tuple(entry.get("categories", ())),
            "published_at": datetime.fromisoformat(published) if published else None,
        }
        episodes.append(Episode(**fields))
    return SourceResult(episodes=episodes)


# ------------------------------------------------------------------------------------------------ long tail

LONGTAIL_TOPICS = {
    "news": ("elections", "the economy", "climate policy", "the housing market", "local government", "trade"),
    "comedy": (
        "bad first dates",
        "office life",
        "family holidays",
        "road trips",
        "cooking disasters",
        "pets",
    ),
    "true-crime": (
        "a cold case",
        "a bank heist",
        "a missing person",
        "forensic science",
        "a courtroom",
        "fraud",
    ),
    "technology": (
        "open-source software",
        "chip design",
        "privacy",
        "startups",
        "programming languages",
        "AI",
    ),
    "sports": (
        "the transfer window",
        "marathon training",
        "the playoffs",
        "coaching",
        "injuries",
        "fantasy leagues",
    ),
    "history": (
        "the Roman Empire",
        "the Cold War",
        "medieval trade",
        "ancient Egypt",
        "the printing press",
        "empires",
    ),
    "science": (
        "black holes",
        "gene editing",
        "the deep ocean",
        "vaccines",
        "particle physics",
        "ecosystems",
    ),
    "business": ("supply chains", "venture capital", "pricing", "remote work", "mergers", "small businesses"),
}


def longtail_episodes(count: int, seed: int = 11, end: datetime | None = None) -> SourceResult:
    """`count` synthetic podcast episodes (the generator's shows and categories, a topic each, published over the
    year before `end`): the long tail of a real catalog, episodes nobody has listened to yet. Deterministic for a
    seed, so a re-run upserts nothing."""
    import random
    from datetime import timedelta

    rng = random.Random(seed)
    end = end or datetime(2026, 1, 1, tzinfo=UTC)
    words = (
        "Daily",
        "Weekly",
        "Hour",
        "Files",
        "Lab",
        "Talk",
        "Brief",
        "Deep Dive",
        "Roundtable",
        "Dispatch",
    )
    categories = list(LONGTAIL_TOPICS)
    episodes = []
    for i in range(count):
        category = categories[i % len(categories)]
        show = f"{category.replace('-', ' ').title()} {words[(i // len(categories)) % len(words)]}"
        topic = rng.choice(LONGTAIL_TOPICS[category])
        number = i // (len(categories) * len(words)) + 1
        episodes.append(
            Episode(
                episode_id=f"tail-{i:06d}",
                source="longtail",
                title=f"{show} #{number}: {topic}",
                description=f"This week on {show}: {topic}, and what it means for {category.replace('-', ' ')} "
                f"listeners.",
                show=show,
                categories=(category,),
                language="en",
                published_at=end - timedelta(days=rng.uniform(0, 365)),
                duration_sec=rng.randrange(900, 5400),
            )
        )
    return SourceResult(episodes=episodes)
