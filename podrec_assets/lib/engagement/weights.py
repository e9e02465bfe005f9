"""Where an event gets its weight: the one place that says how much one event tells about a listener's liking.

| event        | weight (defaults; seed 000 where it says)                                  |
|--------------|-----------------------------------------------------------------------------|
| like         | +3                                                                          |
| unlike       | −3: takes a like back (a like and its unlike sum to nothing)                |
| complete     | +2                                                                          |
| rate         | rating − 3 (seed 000): 1 → −2, 3 → 0, 5 → +2; a re-rating: rating − the one it replaces |
| pause        | fraction listened (`played_pct`, seed 000): 0 … +1                          |
| abandon      | fraction listened − 0.5: leaving early is a negative signal, late a weak plus |
| skip         | −2 (seed 000: negative)                                                     |
| play         | +0.25 (starting is weak evidence; the pause/complete/abandon that follows says more) |
| search_click | +0.5                                                                        |
| view, resume | 0 (counted, but say nothing about liking)                                   |

**A re-rating replaces.** A listener's rating of an episode weighs its rating minus the rating it replaces (their
latest earlier one, by `ts` then `event_id`), or minus `rating_neutral` if it is their first. Summed over a pair's
ratings this telescopes to the latest rating − 3: only the latest counts, whichever days hold the earlier ones
(docs/events.md says what that asks of `daily_engagement`'s partitions).

The same table is written twice, once per engine: `weight_column()` in `daily.py` for Spark (`daily_engagement`,
the training data) and `of_events()` here for Arrow on the driver (the near-real-time lists read a listener's
newest events without Spark); a test holds the two equal on every event type.

Negative sums stay negative in `daily_engagement`; how they reach the model is in `models/als.py`.
Non-content events (search, login, …) have no episode and are not part of engagement.
"""

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, Field

# Rows that identify a rating's pair and its place in time: `of_events` chains a table's ratings when it has them.
PAIR_COLUMNS = ("user_id", "episode_id", "ts")
RATING_RANGE = (1, 5)


def replaced_ratings(events: pa.Table) -> np.ndarray:
    """For each `rate` row with a rating, the rating it replaces: the same (user, episode)'s latest earlier rating
    among these rows (by `ts`, then `event_id` if the table has it, then row order); NaN elsewhere and for a first
    rating."""
    rated = (
        pc.equal(events.column("event_type"), "rate").to_numpy(zero_copy_only=False)
        & pc.is_valid(events.column("rating")).to_numpy(zero_copy_only=False)
        & pc.is_valid(events.column("episode_id")).to_numpy(zero_copy_only=False)
    )
    replaced = np.full(events.num_rows, np.nan)
    if not rated.any():
        return replaced
    names = [*PAIR_COLUMNS, "rating"] + (["event_id"] if "event_id" in events.column_names else [])
    frame = events.select(names).filter(pa.array(rated)).to_pandas()
    frame.index = np.flatnonzero(rated)
    order = ["ts", "event_id"] if "event_id" in frame else ["ts"]
    frame = frame.sort_values(order, kind="stable")
    previous = frame.groupby(["user_id", "episode_id"], sort=False)["rating"].shift(1)
    replaced[previous.index.to_numpy()] = pd.to_numeric(previous).to_numpy(dtype=np.float64, na_value=np.nan)
    return replaced


class EventWeights(BaseModel):
    like: float = Field(default=3.0, description="weight of a like")
    unlike: float = Field(default=-3.0, description="weight of an unlike: minus a like's, so it retracts it")
    complete: float = Field(default=2.0, description="weight of a completed episode")
    rating_neutral: float = Field(default=3.0, description="rate → rating − this (seed 000: 3)")
    pause_per_listened: float = Field(default=1.0, description="pause → played_pct × this")
    abandon_per_listened: float = Field(
        default=1.0, description="abandon → played_pct × this − abandon_penalty"
    )
    abandon_penalty: float = Field(default=0.5, description="see abandon_per_listened")
    skip: float = Field(default=-2.0, description="weight of a skip (negative)")
    play: float = Field(default=0.25, description="weight of a play start")
    search_click: float = Field(default=0.5, description="weight of a click on a search result")
    view: float = Field(default=0.0, description="weight of a content view")
    resume: float = Field(default=0.0, description="weight of a resume")

    def bounds(self) -> dict[str, tuple[float, float]]:
        """The smallest and largest weight each event type can get (rating 1–5, played_pct 0–1)."""

        def span(a: float, b: float) -> tuple[float, float]:
            return (float(min(a, b)), float(max(a, b)))

        return {
            "like": span(self.like, self.like),
            "unlike": span(self.unlike, self.unlike),
            "complete": span(self.complete, self.complete),
            # a first rating: rating − neutral; a re-rating: the difference of two ratings
            "rate": span(
                min(RATING_RANGE[0] - self.rating_neutral, RATING_RANGE[0] - RATING_RANGE[1]),
                max(RATING_RANGE[1] - self.rating_neutral, RATING_RANGE[1] - RATING_RANGE[0]),
            ),
            "pause": span(0.0, self.pause_per_listened),
            "abandon": span(-self.abandon_penalty, self.abandon_per_listened - self.abandon_penalty),
            "skip": span(self.skip, self.skip),
            "play": span(self.play, self.play),
            "search_click": span(self.search_click, self.search_click),
            "view": span(self.view, self.view),
            "resume": span(self.resume, self.resume),
        }

    def event_bounds(self) -> tuple[float, float]:
        """Bounds of any single event's weight: a day's sum of n events lies within n × these."""
        lows, highs = zip(*self.bounds().values(), strict=True)
        return min(lows), max(highs)

    def of_events(self, events: pa.Table) -> np.ndarray:
        """The weight of each row of `events` (columns event_type, rating, played_pct), as `weight_column()` computes
        it in Spark: the same table for the driver (float64, one per row).

        With user_id, episode_id and ts too, a rating replaces the pair's earlier ones *among these rows*
        (`replaced_ratings`); without them every rating counts as a first one. So the rows given should be all of a
        listener's ratings (as the near-real-time lists read them), not one day's of several."""
        event = np.asarray(events.column("event_type").to_numpy(zero_copy_only=False), dtype=object)
        rating = events.column("rating").to_numpy(zero_copy_only=False).astype(np.float64)
        listened = np.nan_to_num(
            events.column("played_pct").to_numpy(zero_copy_only=False).astype(np.float64)
        )
        fixed = {
            "like": self.like, "unlike": self.unlike, "complete": self.complete, "skip": self.skip, "play": self.play,
            "search_click": self.search_click, "view": self.view, "resume": self.resume,
        }  # fmt: skip
        weight = np.zeros(len(event), dtype=np.float64)
        for name, value in fixed.items():
            weight[event == name] = value
        rated = event == "rate"
        replaced = (
            replaced_ratings(events)
            if all(c in events.column_names for c in PAIR_COLUMNS)
            else np.full(len(event), np.nan)
        )
        weight[rated] = rating[rated] - np.where(np.isnan(replaced), self.rating_neutral, replaced)[rated]
        paused = event == "pause"
        weight[paused] = listened[paused] * self.pause_per_listened
        abandoned = event == "abandon"
        weight[abandoned] = listened[abandoned] * self.abandon_per_listened - self.abandon_penalty
        return np.nan_to_num(weight)  # a missing rating adds nothing, as Spark's sum skips a null
