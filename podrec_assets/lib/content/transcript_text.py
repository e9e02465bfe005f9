"""Transcripts into clean text. Feeds link them (`podcast:transcript`, PodcastIndex `transcripts`) as
SRT, WebVTT, Podcasting 2.0 JSON (`{"version": "1.0.0", "segments": [{"speaker", "startTime", "endTime",
"body"}]}`), plain text or HTML; `transcript_to_text` reads any of them into the spoken words, one line ("\n")
per speaker turn (and per paragraph of text and HTML) with the speaker named once at the start of the turn as
"Name: ", and `fetch_transcript` downloads one first.

The format comes from the MIME type, else the URL's extension, else the content; a body that opens like
WebVTT or SRT is read as captions whatever its label, since feeds often mislabel them. Caption lines repeated
from the cue before (roll-up captions) are dropped, and so are cue numbers, timings, cue settings,
NOTE/STYLE/REGION blocks and inline tags.

`SpeechToText` is the seam for a future speech model that would transcribe an episode's audio when its feed
links no transcript. No speech model can be installed here, so `NoSpeechToText` stands in and returns None.
"""

from __future__ import annotations

import codecs
import html
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import PurePosixPath
from typing import Literal, Protocol, runtime_checkable
from urllib.parse import urlsplit

import requests

from podrec_assets.lib.content.http import HttpPolicy, http_get, mime_type

Format = Literal["srt", "vtt", "json", "html", "text"]

_DEFAULT_POLICY = HttpPolicy()

MIME_FORMATS: dict[str, Format] = {
    "application/x-subrip": "srt",
    "application/srt": "srt",
    "application/x-srt": "srt",
    "text/srt": "srt",
    "text/x-srt": "srt",
    "text/vtt": "vtt",
    "text/webvtt": "vtt",
    "application/json": "json",
    "text/json": "json",
    "text/html": "html",
    "application/xhtml+xml": "html",
    "text/plain": "text",
}
EXTENSION_FORMATS: dict[str, Format] = {
    ".srt": "srt",
    ".vtt": "vtt",
    ".webvtt": "vtt",
    ".json": "json",
    ".html": "html",
    ".htm": "html",
    ".txt": "text",
}

_TIMING = re.compile(r"^\s*(?:\d+:)?\d{1,2}:\d{2}(?:[,.]\d{1,3})?\s*-->")
_SRT_START = re.compile(r"^\s*\d+[ \t]*\n[ \t]*(?:\d+:)?\d{1,2}:\d{2}[,.]\d{1,3}\s*-->")
_JSON_START = re.compile(r"^\s*(?:\{|\[\s*[\[{\]])")
_HTML_TAG = re.compile(
    r"<(?:!doctype|html|head|body|p|div|br|span|cite|time|h[1-6]|section|article|script|style)\b",
    re.IGNORECASE,
)
_VTT_SKIPPED_BLOCK = re.compile(r"^(?:WEBVTT|NOTE|STYLE|REGION)(?:\s|$)")
_VOICE = re.compile(r"<v(?:\.[^\s>]*)?(?:[ \t]+([^>]*))?>")
_CAPTION_TAG = re.compile(r"<[^>\n]*>|\{\\[^}\n]*\}")  # <i>, </v>, <c.x>, <00:01.000>; {\an8} (ASS, in SRTs)
_INVISIBLE = re.compile(r"[\x00-\x08\x0e-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2060\ufeff]")
_TS = r"(?:\d{1,2}:)?\d{1,2}:\d{2}(?:[.,]\d{1,3})?"
# A leading "[00:01]", "(0:01)" or "00:00:01"; a bare "10:30" may be speech, so it goes only on its own.
_LEADING_TIMESTAMP = re.compile(
    rf"^(?:[\[(]{_TS}[\])]|(?:\d{{1,2}}:)\d{{1,2}}:\d{{2}}(?:[.,]\d{{1,3}})?)(?:\s+|$)"
)
_ONLY_TIMESTAMP = re.compile(rf"^[\[(]?{_TS}[\])]?$")
_NAME = r"[^\W\d_][\w'.-]*(?:[ \t][^\W\d_][\w'.-]*){0,3}(?:[ \t]\d{1,2})?"  # up to 4 words, e.g. "Speaker 1"
_SPEAKER = re.compile(
    rf"^(?:\[(?P<bracket>[^\]\n]{{1,40}})\]|(?P<name>{_NAME}))(?:[ \t]*[\[(]?{_TS}[\])]?)?[ \t]*:(?:\s+|$)"
)
_SPEAKER_LINE = re.compile(rf"^(?P<name>{_NAME})[ \t]+[\[(]?{_TS}[\])]?$")  # "Alice  0:03" above her words


class TranscriptFormatError(ValueError):
    """A transcript body that cannot be read as its format, or that holds no text."""


@runtime_checkable
class SpeechToText(Protocol):
    def transcribe(self, audio_url: str) -> str | None:
        """The episode's words, or None when there is no transcription."""
        ...


class NoSpeechToText:
    def transcribe(self, audio_url: str) -> str | None:
        return None


@dataclass(frozen=True)
class _Segment:
    text: str
    speaker: str | None = None  # None: whoever spoke before
    new_paragraph: bool = False


def transcript_to_text(body: bytes | str, content_type: str = "", url: str = "") -> str:
    """The words of a transcript in any of the feed formats, cleaned (see the module docstring)."""
    text = _normalize_newlines(decode_body(body, _charset(content_type)))
    fmt = detect_format(text, content_type, url)
    if fmt in ("srt", "vtt"):
        result = _assemble(_caption_segments(text), dedupe=True)
    elif fmt == "json":
        result = _assemble(_json_segments(text))
    elif fmt == "html":
        result = _assemble(_html_segments(text))
    else:
        result = _assemble(_plain_segments(text))
    if not result:
        raise TranscriptFormatError(f"{fmt} transcript has no text")
    return result


def fetch_transcript(
    url: str,
    transcript_type: str = "",
    session: requests.Session | None = None,
    policy: HttpPolicy = _DEFAULT_POLICY,
) -> str:
    """Download a transcript and return its text; raises FetchError or TranscriptFormatError."""
    response = http_get(url, session=session, policy=policy)
    content_type = _effective_type(response.headers.get("Content-Type", ""), transcript_type)
    return transcript_to_text(response.content, content_type, url)


def detect_format(text: str, content_type: str = "", url: str = "") -> Format:
    """Captions by their opening, else the MIME type, else the URL's extension, else the content."""
    stripped = text.lstrip()
    if stripped.startswith("WEBVTT"):
        return "vtt"
    if _SRT_START.match(stripped):
        return "srt"
    mime = mime_type(content_type)
    by_type = MIME_FORMATS.get(mime) or ("json" if mime.endswith("+json") else None)
    if by_type:
        return by_type
    by_extension = EXTENSION_FORMATS.get(PurePosixPath(urlsplit(url).path).suffix.lower())
    return by_extension or _sniff(stripped)


def decode_body(body: bytes | str, charset: str = "") -> str:
    """UTF-8 (or the BOM's UTF-16), else the declared charset, else Windows-1252, else Latin-1."""
    if isinstance(body, str):
        return body.removeprefix("\ufeff")
    if body.startswith(codecs.BOM_UTF8):
        return body[len(codecs.BOM_UTF8) :].decode("utf-8", errors="replace")
    if body.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return body.decode("utf-16", errors="replace")
    for encoding in filter(None, ("utf-8", charset, "cp1252")):
        try:
            return body.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            continue
    return body.decode("latin-1")


def _charset(content_type: str) -> str:
    match = re.search(r";\s*charset\s*=\s*[\"']?([\w.:-]+)", content_type, re.IGNORECASE)
    return match[1] if match else ""


def _effective_type(served: str, declared: str) -> str:
    """The served type, unless it is unspecific (missing, octet-stream, text/plain) and the feed's is not."""
    if MIME_FORMATS.get(mime_type(served), "text") == "text" and MIME_FORMATS.get(mime_type(declared)):
        charset = _charset(served)
        return f"{mime_type(declared)}; charset={charset}" if charset else mime_type(declared)
    return served


def _sniff(stripped: str) -> Format:
    head = stripped[:5000]
    if any(_TIMING.match(line) for line in head.split("\n")):
        return "srt"
    if _JSON_START.match(head):
        return "json"
    return "html" if _HTML_TAG.search(head) else "text"


def _normalize_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _collapse(text: str) -> str:
    return " ".join(_INVISIBLE.sub("", text).split())


def _assemble(segments: Iterable[_Segment], dedupe: bool = False) -> str:
    """A line per paragraph, "Name: " where the speaker changes; `dedupe` drops a line equal to the last."""
    paragraphs: list[str] = []
    words: list[str] = []
    speaker: str | None = None
    pending: str | None = None  # named on a line of its own, speaks next
    label, last = "", ""
    for segment in segments:
        text = _collapse(segment.text)
        who = _collapse(segment.speaker or "") or pending
        if not text:
            pending = who
            continue
        pending = None
        changed = who is not None and who != speaker
        if dedupe and not changed and text == last:
            continue
        if words and (changed or segment.new_paragraph):
            paragraphs.append(label + " ".join(words))
            words, label = [], ""
        if changed:
            speaker, label = who, f"{who}: "
        words.append(text)
        last = text
    if words:
        paragraphs.append(label + " ".join(words))
    return "\n".join(paragraphs)


def _split_speaker(line: str) -> tuple[str | None, str]:
    """("Alice", "Hi.") from "Alice: Hi.", "[Alice]: Hi." or "Alice (00:01): Hi." (capitalised words)."""
    match = _SPEAKER.match(line) or _SPEAKER_LINE.match(line)
    if not match:
        return None, line
    name = (match.groupdict().get("bracket") or match["name"]).strip()
    if not all(word[0].isupper() or word.isdigit() for word in name.split()):
        return None, line
    return name, line[match.end() :] if match.re is _SPEAKER else ""


def _text_segment(line: str, speaker: str | None = None, new_paragraph: bool = False) -> _Segment:
    line = _collapse(line)
    line = "" if _ONLY_TIMESTAMP.match(line) else _LEADING_TIMESTAMP.sub("", line)
    if speaker is None:
        speaker, line = _split_speaker(line)
    return _Segment(line, speaker, new_paragraph)


# --- SRT and WebVTT ---


def _caption_segments(text: str) -> list[_Segment]:
    lines = text.split("\n")
    if lines[0].lstrip().startswith("WEBVTT"):
        lines = _drop_vtt_blocks(lines)
    timings = [i for i, line in enumerate(lines) if _TIMING.match(line)]
    if not timings:
        raise TranscriptFormatError("no caption cues (no 'start --> end' timing line) found")
    segments: list[_Segment] = []
    for n, start in enumerate(timings):
        end = timings[n + 1] if n + 1 < len(timings) else len(lines)
        if end < len(lines) and _is_cue_id(lines, end - 1, start):
            end -= 1
        segments += _cue_segments("\n".join(line for line in lines[start + 1 : end] if line.strip()))
    return segments


def _drop_vtt_blocks(lines: list[str]) -> list[str]:
    """Without the header and the NOTE, STYLE and REGION blocks (blocks are separated by blank lines)."""
    kept: list[str] = []
    block: list[str] = []
    for line in [*lines, ""]:
        if line.strip():
            block.append(line)
            continue
        skipped = block and _VTT_SKIPPED_BLOCK.match(block[0]) and not any(_TIMING.match(b) for b in block)
        if block and not skipped:
            kept += [*block, ""]
        block = []
    return kept


def _is_cue_id(lines: list[str], i: int, previous_timing: int) -> bool:
    """The line before a timing line is its cue's id if it is a number or starts a block (WebVTT ids)."""
    if i <= previous_timing or not lines[i].strip():
        return False
    return lines[i].strip().isdigit() or not lines[i - 1].strip()


def _cue_segments(payload: str) -> list[_Segment]:
    """A cue's lines; `<v Name>` voice spans give the speaker, else a "Name:" prefix."""
    parts = _VOICE.split(payload)  # [text, voice, text, voice, text, ...]
    segments: list[_Segment] = []
    for voice, chunk in zip([None, *parts[1::2]], parts[0::2], strict=True):
        speaker = _collapse(voice or "") or None
        for line in _CAPTION_TAG.sub("", chunk).split("\n"):
            line = html.unescape(line)
            named, line = _split_speaker(_collapse(line)) if speaker is None else (speaker, line)
            segments.append(_Segment(line, named))
    return segments


# --- Podcasting 2.0 JSON ---


def _json_segments(text: str) -> list[_Segment]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise TranscriptFormatError(f"invalid JSON transcript: {error}") from error
    items = data.get("segments") if isinstance(data, dict) else data
    listed = items if isinstance(items, list) else []
    segments = [segment for item in listed if isinstance(item, dict) and (segment := _json_segment(item))]
    if not segments and isinstance(data, dict) and isinstance(data.get("text"), str):
        segments = [_Segment(data["text"])]
    if not segments:
        raise TranscriptFormatError("JSON transcript has no segments with a body (nor a top-level text)")
    return segments


def _json_segment(item: dict) -> _Segment | None:
    body = item.get("body", item.get("text"))
    if not isinstance(body, str):
        return None
    speaker = item.get("speaker")
    return _Segment(body, str(speaker) if isinstance(speaker, str | int) else None)


# --- plain text ---


def _plain_segments(text: str) -> list[_Segment]:
    segments: list[_Segment] = []
    new_paragraph = False
    for line in text.split("\n"):
        segment = _text_segment(line, new_paragraph=new_paragraph)
        segments.append(segment)
        if segment.text:
            new_paragraph = False
        elif segment.speaker is None:  # a blank line; a line naming a speaker keeps the flag for their words
            new_paragraph = True
    return segments


# --- HTML ---

_SKIPPED_ELEMENTS = {"script", "style", "head", "noscript", "template", "svg", "nav", "time"}
_BLOCK_ELEMENTS = {
    "p", "div", "li", "ul", "ol", "dl", "dt", "dd", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "td", "th",
    "table", "section", "article", "blockquote", "pre", "header", "footer", "main", "aside", "figure",
    "figcaption", "hr", "body", "html",
}  # fmt: skip


def _html_segments(text: str) -> list[_Segment]:
    parser = _HtmlTranscript()
    parser.feed(text)
    parser.close()
    parser.flush()
    return parser.segments


class _HtmlTranscript(HTMLParser):
    """Text per block element; `<cite>` names the speaker of what follows, `<time>`, scripts and styles are
    dropped."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.segments: list[_Segment] = []
        self._buffer: list[str] = []
        self._skipping: list[str] = []
        self._cite: list[str] | None = None
        self._speaker: str | None = None
        self._new_paragraph = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body":
            self._skipping.clear()  # an unclosed <head>
        if self._skipping or tag in _SKIPPED_ELEMENTS:
            self._skipping.append(tag)
        elif tag == "cite":
            self.flush()
            self._cite = []
        elif tag == "br":
            self.flush()
        elif tag in _BLOCK_ELEMENTS:
            self.flush(paragraph_ends=True)

    def handle_endtag(self, tag: str) -> None:
        if self._skipping:
            if tag in self._skipping:
                del self._skipping[len(self._skipping) - 1 - self._skipping[::-1].index(tag) :]
        elif tag == "cite" and self._cite is not None:
            self._speaker = _collapse("".join(self._cite)).rstrip(":").strip() or None
            self._cite = None
        elif tag in _BLOCK_ELEMENTS:
            self.flush(paragraph_ends=True)

    def handle_data(self, data: str) -> None:
        if self._skipping:
            return
        (self._cite if self._cite is not None else self._buffer).append(data)

    def flush(self, paragraph_ends: bool = False) -> None:
        text = "".join(self._buffer)
        self._buffer.clear()
        if text.strip():
            self.segments.append(_text_segment(text, self._speaker, self._new_paragraph))
            self._speaker, self._new_paragraph = None, False
        self._new_paragraph = self._new_paragraph or paragraph_ends
