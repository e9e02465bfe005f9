"""Versioned models on disk: every training run writes a new folder, none is ever overwritten, and a `CURRENT` file
names the promoted one.

    <root>/als/<version>/        user_factors.parquet, item_factors.parquet, user_ids.parquet, episode_ids.parquet,
                                 manifest.json (params, metrics, training data versions, gate verdict)
    <root>/als/CURRENT           the promoted version (replaced atomically)
    <root>/als/promotions.jsonl  every promotion and rollback, appended

A version is built in a hidden staging folder and renamed into place, so a crash never leaves half a version.
Rolling back is promoting an earlier version: `podrec models promote <version>`.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class ModelRegistry:
    root: Path
    name: str = "als"

    @property
    def folder(self) -> Path:
        return Path(self.root) / self.name

    def new_version(self, run_id: str, now: datetime | None = None) -> str:
        """Sortable by time, unique per run: 20261121T093000Z-1a2b3c4d."""
        return f"{(now or datetime.now(UTC)):%Y%m%dT%H%M%SZ}-{run_id.replace('-', '')[:8]}"

    def path(self, version: str) -> Path:
        return self.folder / version

    def staging(self, version: str) -> Path:
        """An empty hidden folder to build `version` in; `publish` moves it into place."""
        path = self.folder / f".staging-{version}"
        shutil.rmtree(
            path, ignore_errors=True
        )  # left by a crashed run with the same version: never published
        path.mkdir(parents=True)
        return path

    def publish(self, version: str, manifest: dict) -> Path:
        """Write the manifest and move the staged folder to its version name; fails if that version exists."""
        staged = self.folder / f".staging-{version}"
        (staged / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str))
        final = self.path(version)
        if final.exists():
            raise FileExistsError(f"model version {version} exists already; versions are never overwritten")
        os.rename(staged, final)
        return final

    def versions(self) -> list[str]:
        if not self.folder.is_dir():
            return []
        return sorted(p.name for p in self.folder.iterdir() if p.is_dir() and (p / MANIFEST).is_file())

    def manifest(self, version: str) -> dict:
        return json.loads((self.path(version) / MANIFEST).read_text())

    def current(self) -> str | None:
        pointer = self.folder / "CURRENT"
        return pointer.read_text().strip() or None if pointer.is_file() else None

    def promote(self, version: str, reason: str) -> None:
        """Make `version` the current model (atomic rename of the pointer) and log why."""
        if version not in self.versions():
            raise ValueError(f"no model version {version!r} under {self.folder}")
        previous = self.current()
        pointer = self.folder / "CURRENT"
        temporary = self.folder / f".CURRENT.{os.getpid()}"
        temporary.write_text(version + "\n")
        os.replace(temporary, pointer)
        entry = {
            "at": datetime.now(UTC).isoformat(),
            "version": version,
            "previous": previous,
            "reason": reason,
        }
        with (self.folder / "promotions.jsonl").open("a") as log:
            log.write(json.dumps(entry) + "\n")


def write_ids(path: Path, column: str, ids: list[str]) -> None:
    """An id mapping as Parquet: row i holds the string id whose index is i."""
    pq.write_table(pa.table({f"{column}_idx": pa.array(range(len(ids)), pa.int32()), column: ids}), path)


def read_ids(path: Path, column: str) -> list[str]:
    table = pq.read_table(path).sort_by(f"{column}_idx")
    return table.column(column).to_pylist()
