"""Which episodes need a transcript run, and what one run gives each: the linked transcript as clean text, else
(seam) speech-to-text, else the title and description. Failed fetches are retried on later runs, at most
`MAX_ATTEMPTS` times per episode version (seed 001), and meanwhile the episode keeps its title + description."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

import pyarrow as pa

from podrec_assets.lib.content.http import FetchError
from podrec_assets.lib.content.tables import TRANSCRIPTS_SCHEMA, row_hash
from podrec_assets.lib.content.transcript_text import SpeechToText, TranscriptFormatError

MAX_ATTEMPTS = 3
# what `plan` reads: a run loads only these columns (not the stored texts)
PLAN_EPISODE_COLUMNS = ["episode_id", "content_hash", "title", "description", "transcript_url", "transcript_type",
                        "audio_url"]  # fmt: skip
PLAN_TRANSCRIPT_COLUMNS = ["episode_id", "content_hash", "status", "attempts"]
_HASHED = ("content_hash", "status", "text_source", "text", "transcript_url", "attempts", "last_error")


@dataclass(frozen=True)
class TranscriptJob:
    episode_id: str
    content_hash: str
    title: str
    description: str
    transcript_url: str
    transcript_type: str
    audio_url: str
    attempts: int  # failed fetches so far for this episode version


def plan(
    episodes: pa.Table, existing: pa.Table | None, max_attempts: int = MAX_ATTEMPTS
) -> tuple[list[TranscriptJob], int]:
    """Jobs for episodes that are new, changed since their transcript, or failed fewer than `max_attempts` times.
    Also returns how many were left alone because they already failed `max_attempts` times."""
    previous = {}
    if existing is not None:
        for row in existing.select(PLAN_TRANSCRIPT_COLUMNS).to_pylist():
            previous[row["episode_id"]] = row
    jobs, exhausted = [], 0
    for e in episodes.to_pylist():
        before = previous.get(e["episode_id"])
        attempts = 0
        if before and before["content_hash"] == e["content_hash"]:
            if before["status"] != "failed":
                continue
            if before["attempts"] >= max_attempts:
                exhausted += 1
                continue
            attempts = before["attempts"]
        jobs.append(
            TranscriptJob(
                episode_id=e["episode_id"],
                content_hash=e["content_hash"],
                title=e["title"] or "",
                description=e["description"] or "",
                transcript_url=e["transcript_url"] or "",
                transcript_type=e["transcript_type"] or "",
                audio_url=e["audio_url"] or "",
                attempts=attempts,
            )
        )
    return jobs, exhausted


def fallback_text(job: TranscriptJob) -> str:
    return "\n".join(part for part in (job.title.strip(), job.description.strip()) if part)


def run_job(job: TranscriptJob, fetch: Callable[[str, str], str], speech: SpeechToText) -> dict:
    """One episode's transcript row (never raises for a bad transcript: the error is recorded)."""
    row = {"episode_id": job.episode_id, "content_hash": job.content_hash, "transcript_url": job.transcript_url,
           "attempts": job.attempts, "last_error": ""}  # fmt: skip
    if job.transcript_url:
        try:
            text = fetch(job.transcript_url, job.transcript_type)
            return {**row, "status": "fetched", "text_source": "transcript", "text": f"{job.title}\n{text}"}
        except (FetchError, TranscriptFormatError) as error:
            failed = {**row, "status": "failed", "attempts": job.attempts + 1, "last_error": str(error)[:500]}
            return {**failed, "text_source": "title_description", "text": fallback_text(job)}
    spoken = speech.transcribe(job.audio_url) if job.audio_url else None
    if spoken:
        return {**row, "status": "fetched", "text_source": "speech_to_text", "text": f"{job.title}\n{spoken}"}
    return {**row, "status": "fallback", "text_source": "title_description", "text": fallback_text(job)}


def run_jobs(
    jobs: list[TranscriptJob], fetch: Callable[[str, str], str], speech: SpeechToText, now: datetime,
    workers: int = 8,
) -> pa.Table:  # fmt: skip
    """All jobs, fetched concurrently (network-bound), as transcript rows."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        rows = list(pool.map(lambda job: run_job(job, fetch, speech), jobs))
    for row in rows:
        row["row_hash"] = row_hash(row, _HASHED)
        row["updated_at"] = now
    return pa.Table.from_pylist(rows, schema=TRANSCRIPTS_SCHEMA)
