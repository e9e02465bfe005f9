"""Transcripts in the feed formats (SRT, WebVTT, Podcasting 2.0 JSON, plain text, HTML) into clean text, and
fetching them from the local HTTP fixture server."""

from pathlib import Path

import pytest

from podrec_assets.lib.content.http import FetchError, HttpPolicy
from podrec_assets.lib.content.transcript_text import (
    NoSpeechToText,
    SpeechToText,
    TranscriptFormatError,
    detect_format,
    fetch_transcript,
    transcript_to_text,
)
from podrec_assets_tests.http_fixture import Reply

FIXTURES = Path(__file__).parent / "fixtures" / "transcripts"

SRT_TEXT = (
    "Sarah: In today's episode, you'll learn whether or not you should have a podcast trailer. "
    "And if so, what should you include in one? Welcome to Podcasting Q&A, where you learn\n"
    "Gillian: Hi Buzzsprout, Gillian here from Breaking Through Careers podcast. "
    "My question is, do we need a podcast trailer?"
)
VTT_TEXT = (
    "Alice: Welcome back to The Long Listen. Today: transcripts & search.\n"
    "Bob: Thanks for having me! It's great to be here. Shall we start?\n"
    "Alice: Yes, let's <dive> in now."
)
JSON_TEXT = (
    "Darth Vader: I am your father.\nLuke: Nooooo. That's not true!\nDarth Vader: Search your feelings."
)
PLAIN_TEXT = (
    "The Long Listen, episode 42\n"
    "Alice: Welcome back to the show. Today we talk about transcripts.\n"
    "Bob: Thanks for having me. It's great to be here.\n"
    "Alice: At 10:30 we start."
)
HTML_TEXT = (
    "Kevin: We have an update planned where we\u2019d like to give the ability to upload an artwork file for "
    "these videos & clips.\n"
    "Alban: You're triggering Tom right now with a \"hey, here's a cool feature.\"\n"
    "Anyway, let\u2019s move on."
)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def test_srt_with_a_bom_crlf_and_multi_line_cues_reads_as_one_paragraph_per_speaker():
    body = fixture("episode.srt")
    assert body.startswith(b"\xef\xbb\xbf1\r\n")
    assert transcript_to_text(body, "application/x-subrip") == SRT_TEXT
    assert transcript_to_text(body, "application/srt; charset=utf-8") == SRT_TEXT


def test_webvtt_drops_header_blocks_ids_settings_tags_and_roll_up_duplicates():
    assert transcript_to_text(fixture("episode.vtt"), "text/vtt") == VTT_TEXT


def test_podcasting_2_json_joins_word_segments_and_names_each_speaker_once_per_turn():
    assert transcript_to_text(fixture("episode.json"), "application/json") == JSON_TEXT


def test_plain_text_keeps_paragraphs_and_drops_leading_timestamps_and_repeated_speaker_labels():
    assert transcript_to_text(fixture("episode.txt"), "text/plain; charset=utf-8") == PLAIN_TEXT


def test_html_drops_head_script_style_and_time_and_unescapes_entities():
    assert transcript_to_text(fixture("episode.html"), "text/html; charset=utf-8") == HTML_TEXT


def test_srt_speaker_prefix_on_every_cue_is_kept_once_and_roll_up_lines_are_dropped():
    body = (
        "1\n00:00:01,000 --> 00:00:02,000\nALICE: Hello there.\n\n"
        "2\n00:00:02,000 --> 00:00:03,000\nALICE: Hello there.\nALICE: How are you?\n"
        '3\n00:00:03,000 --> 00:00:04,000\n[Bob]: <font color="#fff">Fine,</font> {\\an8}thanks.\n'
    )  # no blank line before cue 3: its number still goes
    assert transcript_to_text(body, "text/srt") == "ALICE: Hello there. How are you?\nBob: Fine, thanks."


@pytest.mark.parametrize(
    ("name", "content_type", "url", "expected"),
    [
        ("episode.srt", "application/octet-stream", "https://cdn.example.com/ep42.srt?sig=1", SRT_TEXT),
        ("episode.vtt", "", "https://cdn.example.com/ep42.vtt", VTT_TEXT),
        ("episode.json", "application/octet-stream", "https://cdn.example.com/ep42.json#t=1", JSON_TEXT),
        ("episode.html", "", "https://example.com/ep42.htm", HTML_TEXT),
        ("episode.txt", "binary/octet-stream", "https://example.com/ep42.txt", PLAIN_TEXT),
        ("episode.srt", "application/octet-stream", "", SRT_TEXT),
        ("episode.vtt", "", "https://example.com/transcript", VTT_TEXT),
        ("episode.json", "application/octet-stream", "https://example.com/t?id=42", JSON_TEXT),
        ("episode.html", "", "", HTML_TEXT),
        ("episode.txt", "", "", PLAIN_TEXT),
        (
            "episode.vtt",
            "application/json",
            "https://example.com/t.json",
            VTT_TEXT,
        ),  # captions win a wrong label
        ("episode.srt", "text/plain", "", SRT_TEXT),
    ],
)
def test_format_from_the_url_extension_or_the_content_when_the_type_is_missing_or_wrong(
    name, content_type, url, expected
):
    assert transcript_to_text(fixture(name), content_type, url) == expected


def test_detect_format_order_type_then_extension_then_sniffing():
    html_without_known_tags = "Tom &amp; Jerry <em>talk</em>"
    assert detect_format(html_without_known_tags, "TEXT/HTML; charset=utf-8") == "html"
    assert (
        detect_format(html_without_known_tags, "application/octet-stream", "https://x.org/a.HTML") == "html"
    )
    assert detect_format(html_without_known_tags, "application/octet-stream", "https://x.org/a") == "text"
    assert detect_format('{"segments": []}', "application/vnd.podcast+json") == "json"
    assert detect_format("[Music] Welcome to the show") == "text"
    assert detect_format('[{"body": "Hi"}]') == "json"
    assert detect_format("intro\n00:01.000 --> 00:02.000\nHi") == "srt"
    assert transcript_to_text(html_without_known_tags, "", "https://x.org/a.html") == "Tom & Jerry talk"
    assert transcript_to_text(html_without_known_tags) == "Tom &amp; Jerry <em>talk</em>"


def test_bytes_fall_back_to_the_declared_charset_then_windows_1252_and_honour_utf_16_boms():
    assert transcript_to_text("Caf\u00e9 cr\u00e8me".encode("latin-1"), "text/plain; charset=ISO-8859-1") == (
        "Caf\u00e9 cr\u00e8me"
    )
    assert (
        transcript_to_text("\u201cOui,\u201d dit-il.".encode("cp1252"), "text/plain")
        == "\u201cOui,\u201d dit-il."
    )
    assert (
        transcript_to_text("\ufeffWEBVTT\n\n00:01.000 --> 00:02.000\nH\u00e9".encode("utf-16")) == "H\u00e9"
    )


def test_json_with_a_top_level_text_or_a_list_of_segments_is_read():
    assert transcript_to_text(b'{"text": " Hello  world. "}', "application/json") == "Hello world."
    body = b'[{"speaker": 0, "text": "Hi."}, {"speaker": 1, "text": "Hey."}, {"speaker": 1, "text": "Hey."}]'
    assert transcript_to_text(body, "application/json") == "0: Hi.\n1: Hey. Hey."


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b'{"version": "1.0.0", "segments": [{"body": "I"', "application/json", "invalid JSON transcript"),
        (b'{"version": "1.0.0", "segments": [{"startTime": 0}]}', "application/json", "no segments"),
        (b'{"version": "1.0.0"}', "", "no segments"),
        (b"WEBVTT\n\nNOTE nothing said yet\n", "text/vtt", "no caption cues"),
        (b"Just text, no cues.", "application/x-subrip", "no caption cues"),
        (b"WEBVTT\n\n00:01.000 --> 00:02.000\n<v Alice></v>\n", "text/vtt", "vtt transcript has no text"),
        (b"", "text/plain", "text transcript has no text"),
        (b"<html><script>var a = 1;</script></html>", "text/html", "html transcript has no text"),
    ],
)
def test_unreadable_or_empty_transcripts_raise_transcript_format_error(body, content_type, message):
    with pytest.raises(TranscriptFormatError, match=message):
        transcript_to_text(body, content_type)


def test_fetch_transcript_reads_the_served_type(http_server):
    http_server.routes["/t.vtt"] = Reply(fixture("episode.vtt"), status=200, content_type="text/vtt")
    assert fetch_transcript(http_server.url("/t.vtt")) == VTT_TEXT


def test_fetch_transcript_falls_back_to_the_feed_type_when_the_server_says_nothing_specific(http_server):
    http_server.routes["/transcript"] = Reply(
        "Tom &amp; Jerry <em>talk</em>", content_type="application/octet-stream"
    )
    http_server.routes["/latin"] = Reply(
        "Caf\u00e9".encode("latin-1"), content_type="text/plain; charset=latin-1"
    )
    assert fetch_transcript(http_server.url("/transcript"), "text/html") == "Tom & Jerry talk"
    assert fetch_transcript(http_server.url("/transcript")) == "Tom &amp; Jerry <em>talk</em>"
    assert fetch_transcript(http_server.url("/latin"), "text/html") == "Caf\u00e9"


def test_fetch_transcript_404_raises_fetch_error(http_server):
    with pytest.raises(FetchError) as raised:
        fetch_transcript(http_server.url("/missing.srt"), "application/x-subrip")
    assert (raised.value.kind, raised.value.status) == ("http", 404)


def test_fetch_transcript_500_without_retries_raises_after_one_request(http_server):
    http_server.routes["/t.json"] = Reply(b"oops", status=500)
    with pytest.raises(FetchError) as raised:
        fetch_transcript(http_server.url("/t.json"), "application/json", policy=HttpPolicy(retries=0))
    assert (raised.value.kind, raised.value.status) == ("http", 500)
    assert http_server.hits("/t.json") == 1


def test_fetch_transcript_of_unparseable_json_raises_transcript_format_error(http_server):
    http_server.routes["/t.json"] = Reply(b'{"segments": [', content_type="application/json")
    with pytest.raises(TranscriptFormatError, match="invalid JSON transcript"):
        fetch_transcript(http_server.url("/t.json"))


def test_no_speech_to_text_is_the_default_seam_and_returns_none():
    stt = NoSpeechToText()
    assert isinstance(stt, SpeechToText)
    assert stt.transcribe("https://cdn.example.com/ep42.mp3") is None
