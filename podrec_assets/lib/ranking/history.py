"""A listener's history as (user, episode) pairs: summed engagement, number of events, first and last event time.

Two sources give the same pairs for the same events: `daily_engagement` (Spark's daily sums, closed days) and the
raw events themselves, weighted on the driver by the same table (`EventWeights.of_events`). The nightly lists read
the first and add the raw events of days it does not hold yet; the near-real-time lists read a listener's raw
events directly, so an event counts the moment it is in Delta.
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from podrec_assets.lib.engagement.weights import EventWeights

PAIR_COLUMNS = ["user_id", "episode_id", "engagement", "events", "first_ts", "last_ts"]
# As daily_engagement rounds its sums: the same events give bit-identical engagement whichever path summed them.
WEIGHT_DECIMALS = 6


def empty_pairs() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype=object) for c in ("user_id", "episode_id")})
    frame["engagement"] = pd.Series(dtype="float64")
    frame["events"] = pd.Series(dtype="int64")
    for column in ("first_ts", "last_ts"):
        frame[column] = pd.Series(dtype="datetime64[us, UTC]")
    return frame


def pairs_from_daily(daily: pa.Table | None) -> pd.DataFrame:
    """Pairs from daily_engagement rows (user_id, episode_id, event_date, weight_sum, event_count, last_ts)."""
    if daily is None or daily.num_rows == 0:
        return empty_pairs()
    frame = daily.select(["user_id", "episode_id", "weight_sum", "event_count", "last_ts"]).to_pandas()
    frame = frame.rename(columns={"weight_sum": "engagement", "event_count": "events"})
    return merge_pairs(
        frame.assign(first_ts=frame["last_ts"])
    )  # a day's first event: its latest, as Spark keeps


def pairs_from_events(
    events: pa.Table | None, weights: EventWeights, earlier_ratings: pa.Table | None = None
) -> pd.DataFrame:
    """Pairs from raw_user_events rows (content events only: those naming an episode).

    `earlier_ratings`: the same listeners' rate events before these rows (say the closed days', already summed in
    daily_engagement). They weigh nothing here, but a rating among `events` replaces the latest of them, as
    daily_engagement's rule does (docs/events.md), so closed days plus the open day still sum to the latest rating."""
    if events is None or events.num_rows == 0:
        return empty_pairs()
    content = events.filter(pc.is_valid(events.column("episode_id")))
    weighed = content
    if earlier_ratings is not None and earlier_ratings.num_rows:
        weighed = pa.concat_tables(
            [earlier_ratings.select(content.column_names).cast(content.schema), content]
        )
    frame = pd.DataFrame(
        {
            "user_id": content.column("user_id").to_pandas(),
            "episode_id": content.column("episode_id").to_pandas(),
            "engagement": weights.of_events(weighed)[weighed.num_rows - content.num_rows :],
            "events": 1,
            "first_ts": content.column("ts").to_pandas(),
            "last_ts": content.column("ts").to_pandas(),
        }
    )
    return merge_pairs(frame)


def merge_pairs(*frames: pd.DataFrame) -> pd.DataFrame:
    """Rows of PAIR_COLUMNS (pairs, or single events, from disjoint sets of events: closed days and the open day)
    summed into one row per (user, episode): engagement and events added, the first and last times kept."""
    present = [f for f in frames if len(f)]
    if not present:
        return empty_pairs()
    both = pd.concat(present, ignore_index=True)
    grouped = both.groupby(["user_id", "episode_id"], sort=True).agg(
        engagement=("engagement", "sum"),
        events=("events", "sum"),
        first_ts=("first_ts", "min"),
        last_ts=("last_ts", "max"),
    )
    grouped["engagement"] = grouped["engagement"].round(WEIGHT_DECIMALS)
    return grouped.reset_index()[PAIR_COLUMNS]
