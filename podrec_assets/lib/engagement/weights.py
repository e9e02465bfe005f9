"""Where an event gets its weight: the one place that says how much one event tells about a listener's liking.

| event        | weight (defaults; seed 000 where it says)                                  |
|--------------|-----------------------------------------------------------------------------|
| like         | +3                                                                          |
| unlike       | −3: takes a like back (a like and its unlike sum to nothing)                |
| complete     | +2                                                                          |
| rate         | rating − 3 (seed 000): 1 → −2, 3 → 0, 5 → +2                                |
| pause        | fraction listened (`played_pct`, seed 000): 0 … +1                          |
| abandon      | fraction listened − 0.5: leaving early is a negative signal, late a weak plus |
| skip         | −2 (seed 000: negative)                                                     |
| play         | +0.25 (starting is weak evidence; the pause/complete/abandon that follows says more) |
| search_click | +0.5                                                                        |
| view, resume | 0 (counted, but say nothing about liking)                                   |

The same table is written twice, once per engine: `weight_column()` in `daily.py` for Spark (`daily_engagement`,
the training data) and `of_events()` here for Arrow on the driver (the near-real-time lists read a listener's
newest events without Spark); a test holds the two equal on every event type.

Negative sums stay negative in `daily_engagement`; how they reach the model is in `models/als.py`.
Non-content events (search, login, …) have no episode and are not part of engagement.
"""

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, Field


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
            return (min(a, b), max(a, b))

        return {
            "like": span(self.like, self.like),
            "unlike": span(self.unlike, self.unlike),
            "complete": span(self.complete, self.complete),
            "rate": span(1 - self.rating_neutral, 5 - self.rating_neutral),
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
        """The weight of each row of `events` (columns event_type, rating, played_pct), as `column()` computes it
        in Spark: the same table for the driver (float64, one per row)."""
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
        weight[rated] = rating[rated] - self.rating_neutral
        paused = event == "pause"
        weight[paused] = listened[paused] * self.pause_per_listened
        abandoned = event == "abandon"
        weight[abandoned] = listened[abandoned] * self.abandon_per_listened - self.abandon_penalty
        return np.nan_to_num(weight)  # a missing rating adds nothing, as Spark's sum skips a null
