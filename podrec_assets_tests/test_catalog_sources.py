"""Catalog sources against a local HTTP server only: PodcastIndex (signed), RSS, MovieLens, the sample."""

from __future__ import annotations

import hashlib
import json
import re
import socket
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from podrec_assets.lib.content.http import HttpPolicy
from podrec_assets.lib.content.sources import (
    PodcastIndexClient,
    auth_headers,
    best_transcript,
    movielens_episodes,
    parse_duration,
    podcastindex_episodes,
    rss_episode_id,
    rss_episodes,
    sample_episodes,
    strip_html,
)
from podrec_assets.lib.datasets import movielens
from podrec_assets_tests.http_fixture import Reply, Request

FIXTURES = Path(__file__).parent / "fixtures" / "content"
KEY, SECRET = "TESTKEY123", "test-secret-$^|"
NOW = 1_714_000_000


def header(request: Request, name: str) -> str:
    return next((v for k, v in request.headers.items() if k.lower() == name.lower()), "")


def signed(handler):
    """Wraps a route so it answers 401 unless the request carries PodcastIndex's signature for KEY/SECRET."""

    def route(request: Request) -> Reply:
        date = header(request, "X-Auth-Date")
        expected = hashlib.sha1((KEY + SECRET + date).encode()).hexdigest()
        if header(request, "X-Auth-Key") != KEY or header(request, "Authorization") != expected:
            return Reply(json.dumps({"status": "false", "description": "bad auth"}), 401, "application/json")
        return handler(request)

    return route


def json_reply(body: object, status: int = 200) -> Reply:
    return Reply(json.dumps(body), status, "application/json")


TRENDING = {
    "status": "true",
    "feeds": [
        {"id": 101, "url": "https://feeds.example.org/chips", "title": "Silicon Weekly",
         "author": "Arjun Mehta", "language": "en-US",
         "categories": {"102": "Technology", "103": "Tech News"}},
        {"id": 102, "url": "https://feeds.example.org/nachrichten", "title": "Nachrichten", "author": "DE",
         "language": "de", "categories": {"55": "News"}},
        {"id": 103, "url": "https://feeds.example.org/broken", "title": "Broken Show", "author": "X",
         "language": "en", "categories": {}},
    ],
    "count": 3,
}  # fmt: skip

ITEM_101 = {
    "id": 987654,
    "title": "The Race to Build AI Chips",
    "description": "<p>GPUs &amp; <b>accelerators</b></p><p>Part two.</p><script>x()</script>",
    "link": "https://example.org/42",
    "guid": "silicon-0042",
    "datePublished": 1712215800,
    "enclosureUrl": "https://cdn.example.org/42.mp3",
    "duration": 3723,
    "feedLanguage": "en-US",
    "transcriptUrl": "https://example.org/42.html",
    "transcripts": [
        {"url": "https://example.org/42.html", "type": "text/html"},
        {"url": "https://example.org/42.srt", "type": "application/srt"},
        {"url": "https://example.org/42.json", "type": "application/json"},
    ],
}


def serve_podcastindex(server) -> None:
    def byfeedid(request: Request) -> Reply:
        feed_id = request.query["id"][0]
        if feed_id == "101":
            return json_reply({"status": "true", "items": [ITEM_101], "count": 1})
        return json_reply({"status": "false", "description": "boom"}, 500)

    server.routes["/api/1.0/podcasts/trending"] = signed(lambda request: json_reply(TRENDING))
    server.routes["/api/1.0/episodes/byfeedid"] = signed(byfeedid)


def client(server, secret: str = SECRET, sleeps: list[float] | None = None) -> PodcastIndexClient:
    recorded = sleeps if sleeps is not None else []
    return PodcastIndexClient(api_key=KEY, api_secret=secret, base_url=server.url("/api/1.0"),
                              sleep=recorded.append)  # fmt: skip


def test_auth_headers_follow_podcastindex_signing():
    headers = auth_headers("key", "secret", 1700000000, user_agent="podrec-test")
    assert headers == {
        "User-Agent": "podrec-test",
        "X-Auth-Date": "1700000000",
        "X-Auth-Key": "key",
        "Authorization": hashlib.sha1(b"keysecret1700000000").hexdigest(),
    }


def test_podcastindex_happy_path_skips_other_languages_and_isolates_a_failing_feed(http_server):
    serve_podcastindex(http_server)
    sleeps: list[float] = []
    result = podcastindex_episodes(client(http_server, sleeps=sleeps), max_feeds=10, now=NOW)

    assert [e.episode_id for e in result.episodes] == ["pi-987654"]
    episode = result.episodes[0]
    assert episode.source == "podcastindex"
    assert episode.title == "The Race to Build AI Chips"
    assert episode.description == "GPUs & accelerators Part two."
    assert episode.show == "Silicon Weekly" and episode.author == "Arjun Mehta"
    assert episode.categories == ("Technology", "Tech News")
    assert episode.language == "en-US"
    assert episode.published_at == datetime(2024, 4, 4, 7, 30, tzinfo=UTC)
    assert episode.audio_url == "https://cdn.example.org/42.mp3" and episode.duration_sec == 3723
    assert (episode.transcript_url, episode.transcript_type) == (
        "https://example.org/42.srt",
        "application/srt",
    )
    assert episode.feed_url == "https://feeds.example.org/chips"

    assert len(result.errors) == 1
    error = result.errors[0]
    assert (error.source, error.feed, error.kind) == (
        "podcastindex",
        "https://feeds.example.org/broken",
        "http",
    )

    trending = [r for r in http_server.requests if r.path.endswith("/trending")]
    assert trending[0].query == {"max": ["10"], "lang": ["en"]}
    assert header(trending[0], "X-Auth-Date") == str(NOW)
    fetched = [r.query["id"][0] for r in http_server.requests if r.path.endswith("/byfeedid")]
    assert "102" not in fetched  # the German feed is never asked for
    assert all(r.query.get("max") == ["1"] for r in http_server.requests if r.path.endswith("/byfeedid"))
    assert len(sleeps) == 2  # the 500 was retried (without really sleeping)


def test_podcastindex_bad_credentials_give_one_auth_error(http_server):
    serve_podcastindex(http_server)
    result = podcastindex_episodes(client(http_server, secret="wrong"), now=NOW)
    assert result.episodes == []
    assert [(e.feed, e.kind) for e in result.errors] == [("/podcasts/trending", "auth")]
    assert http_server.hits("/api/1.0/episodes/byfeedid") == 0


def test_podcastindex_malformed_json_is_malformed(http_server):
    http_server.routes["/api/1.0/podcasts/trending"] = Reply("<html>maintenance</html>", 200, "text/html")
    result = podcastindex_episodes(client(http_server), now=NOW)
    assert result.episodes == [] and [e.kind for e in result.errors] == ["malformed"]


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/feed.xml"  # nothing listens there: connection refused


def test_rss_good_feed_fields_and_best_transcript(http_server):
    http_server.routes["/good.xml"] = Reply(
        (FIXTURES / "good_feed.xml").read_bytes(), 200, "application/rss+xml"
    )
    url = http_server.url("/good.xml")
    result = rss_episodes([url])
    assert result.errors == []
    first, second, third = result.episodes

    assert first.episode_id == rss_episode_id(url, "silicon-0042")
    assert first.episode_id == "rss-" + hashlib.sha256(f"{url}\nsilicon-0042".encode()).hexdigest()[:16]
    assert first.source == "rss" and first.title == "The Race to Build AI Chips"
    assert first.description == "GPUs, accelerators & memory bandwidth. Part two."
    assert first.show == "Silicon Weekly" and first.author == "Arjun Mehta" and first.language == "en-us"
    assert first.categories == ("Technology", "Tech News", "News")
    assert first.published_at == datetime(2024, 4, 4, 7, 30, tzinfo=UTC)
    assert first.duration_sec == 3723 and first.audio_url == "https://cdn.example.org/silicon/42.mp3"
    assert (first.transcript_url, first.transcript_type) == ("https://example.org/silicon/42.vtt", "text/vtt")
    assert first.feed_url == url

    assert second.author == "Guest Host" and second.duration_sec == 1800
    assert (second.transcript_url, second.transcript_type) == (
        "https://example.org/silicon/41.txt",
        "text/plain",
    )

    assert third.episode_id == rss_episode_id(url, "https://example.org/silicon/bonus")  # no guid: the link
    assert third.duration_sec == 750 and third.transcript_url == "" and third.transcript_type == ""

    newest = rss_episodes([url], episodes_per_feed=1).episodes
    assert [e.episode_id for e in newest] == [first.episode_id]


def test_rss_bad_feeds_become_one_error_each_while_the_good_feed_still_counts(http_server):
    http_server.routes["/good.xml"] = Reply(
        (FIXTURES / "good_feed.xml").read_bytes(), 200, "application/rss+xml"
    )
    http_server.routes["/malformed.xml"] = Reply(
        (FIXTURES / "malformed_feed.xml").read_bytes(), 200, "text/xml"
    )
    http_server.routes["/html.xml"] = Reply("<html><body><p>Moved</p></body></html>", 200, "text/html")
    http_server.routes["/busy.xml"] = Reply("slow down", 429, headers={"Retry-After": "7"})
    refused = closed_port_url()
    urls = [http_server.url(p) for p in ("/malformed.xml", "/missing.xml", "/busy.xml")] + [refused]
    urls += [http_server.url("/html.xml"), http_server.url("/good.xml")]
    sleeps: list[float] = []

    result = rss_episodes(urls, policy=HttpPolicy(timeout_s=5, retries=1), sleep=sleeps.append)

    assert len(result.episodes) == 3
    assert [(e.feed, e.kind) for e in result.errors] == [
        (urls[0], "malformed"),
        (urls[1], "http"),
        (urls[2], "rate_limited"),
        (refused, "network"),
        (urls[4], "malformed"),
    ]
    assert 7.0 in sleeps  # the 429's Retry-After was honoured (recorded, not slept)
    assert http_server.hits("/busy.xml") == 2


def test_movielens_items_become_episodes_matching_the_replayed_ids():
    result = movielens_episodes()
    assert result.errors == []
    assert len(result.episodes) == 1682
    ids = [e.episode_id for e in result.episodes]
    assert set(ids) == {movielens.episode_id(item) for item in movielens.load_titles()}
    assert len(set(ids)) == 1682
    toy = next(e for e in result.episodes if e.episode_id == movielens.episode_id("1"))
    assert toy.source == "movielens" and toy.title == "Toy Story"
    assert toy.categories == ("Animation", "Children's", "Comedy")
    assert toy.description == "Toy Story. Genres: Animation, Children's, Comedy. Released 1995."
    miserables = next(e for e in result.episodes if e.episode_id == "ml-543")
    assert miserables.title == "Misérables, Les"  # the file is UTF-8


def test_movielens_missing_folder_is_an_error(tmp_path):
    result = movielens_episodes(tmp_path)
    assert result.episodes == [] and [e.source for e in result.errors] == ["movielens"]


def test_sample_catalog():
    episodes = sample_episodes().episodes
    assert len(episodes) == 48
    assert len({e.episode_id for e in episodes}) == 48
    assert all(e.episode_id.startswith("sample-") and e.source == "sample" for e in episodes)
    per_category = Counter(e.categories[0] for e in episodes)
    assert set(per_category) == {
        "news", "comedy", "true-crime", "technology", "sports", "history", "science", "business",
    }  # fmt: skip
    assert set(per_category.values()) == {6}
    for category in per_category:
        shows = {e.show for e in episodes if e.categories[0] == category}
        assert 2 <= len(shows) <= 3
    for e in episodes:
        assert e.title and e.author and e.language == "en" and e.duration_sec and e.duration_sec > 0
        assert e.published_at is not None and e.published_at.tzinfo is not None
        assert e.transcript_url == "" and 2 <= len(re.findall(r"[.!?](?:\s|$)", e.description)) <= 4
    assert len({e.description for e in episodes}) == 48


def test_helpers():
    assert best_transcript(
        [("a", "text/html"), ("b", "text/VTT; charset=utf-8"), ("c", "application/json")]
    ) == (
        "b",
        "text/VTT; charset=utf-8",
    )
    assert best_transcript([("a", "application/pdf")]) == ("a", "application/pdf")
    assert best_transcript([]) == ("", "")
    assert [parse_duration(v) for v in ("01:02:03", "12:30", "1800", "1800.7", "", None, "n/a", 0)] == [
        3723, 750, 1800, 1800, None, None, None, None,
    ]  # fmt: skip
    assert strip_html("<p>a&nbsp;b</p><p>c &amp; <i>d</i></p>") == "a b c & d"
