"""`episode_similarity` (a Delta table the graph rewrites) held in memory for the API: read again only when the
table has a new version, and that is looked at most every `recheck_s` seconds."""

from __future__ import annotations

import threading
import time

from deltalake import DeltaTable


class SimilarEpisodes:
    def __init__(self, table_uri: str, recheck_s: float = 30.0):
        self.table_uri, self.recheck_s = table_uri, recheck_s
        self._lock = threading.Lock()
        self._version: int | None = None
        self._checked = 0.0
        self._neighbours: dict[str, list[dict]] = {}

    def _refresh(self) -> None:
        if time.monotonic() - self._checked < self.recheck_s and self._version is not None:
            return
        self._checked = time.monotonic()
        if not DeltaTable.is_deltatable(self.table_uri):
            return
        table = DeltaTable(self.table_uri)
        if table.version() == self._version:
            return
        rows = table.to_pyarrow_table(columns=["episode_id", "similar_episode_id", "rank", "score"]).sort_by(
            [("episode_id", "ascending"), ("rank", "ascending")]
        )
        neighbours: dict[str, list[dict]] = {}
        for episode, other, rank, score in zip(
            *(rows.column(c).to_pylist() for c in rows.column_names), strict=True
        ):
            neighbours.setdefault(episode, []).append(
                {"episode_id": other, "rank": rank, "score": round(score, 4)}
            )
        self._neighbours, self._version = neighbours, table.version()

    def of(self, episode_id: str, limit: int) -> list[dict] | None:
        """Its nearest episodes by rank, or None if the table does not list it."""
        with self._lock:
            self._refresh()
            found = self._neighbours.get(episode_id)
        return found[:limit] if found is not None else None
