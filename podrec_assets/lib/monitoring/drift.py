"""Drift of the incoming events: is the newest closed day like the days before it?

- **Mix** (population stability index, PSI): the day's shares of event types and of devices against the trailing
  window's. PSI = Σ (a − e) · ln(a / e) over the categories' shares (a: the day, e: the window; shares floored so a
  category new on either side counts without dividing by zero). Conventional reading, used as the threshold:
  below 0.1 stable, 0.1–0.2 a moderate shift, above PSI_WARN = 0.2 a significant one.
- **New listeners**: the share of the day's listeners not seen in the trailing window, against the window's own daily
  shares (the same volume band as below).
- **Volume**: the day's event count against the window's daily counts: a band of median ± VOLUME_K robust standard
  deviations (1.4826 × the median absolute deviation), never narrower than ± MIN_BAND of the median, so a quiet
  history does not make every ordinary day an alarm.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from statistics import median

import pyarrow as pa

PSI_WARN = 0.2
VOLUME_K = 4.0
MIN_BAND = 0.25
TRAILING_DAYS = 28
MIN_HISTORY_DAYS = 7  # fewer trailing days with events than this: too little history to judge


def psi(expected: Mapping[str, float], actual: Mapping[str, float], floor: float = 1e-4) -> float:
    """Population stability index of `actual` against `expected` (counts or shares per category); 0 if either is
    empty."""
    e_total, a_total = sum(expected.values()), sum(actual.values())
    if e_total <= 0 or a_total <= 0:
        return 0.0
    value = 0.0
    for key in set(expected) | set(actual):
        e = max(expected.get(key, 0) / e_total, floor)
        a = max(actual.get(key, 0) / a_total, floor)
        value += (a - e) * math.log(a / e)
    return value


def band(history: Sequence[float], k: float = VOLUME_K, min_band: float = MIN_BAND) -> tuple[float, float]:
    """(low, high): median ± k robust standard deviations of `history`, at least ± `min_band` × median wide."""
    middle = median(history)
    spread = 1.4826 * median([abs(x - middle) for x in history])
    half = max(k * spread, min_band * abs(middle))
    return middle - half, middle + half


@dataclass(frozen=True)
class DayDrift:
    day: date
    history_days: int  # trailing days that had events
    events: int
    volume_band: tuple[float, float]
    psi_event_types: float
    psi_devices: float
    new_listener_share: float
    new_listener_band: tuple[float, float]

    @property
    def judged(self) -> bool:
        return self.history_days >= MIN_HISTORY_DAYS

    @property
    def volume_ok(self) -> bool:
        return not self.judged or self.volume_band[0] <= self.events <= self.volume_band[1]

    @property
    def mix_ok(self) -> bool:
        return not self.judged or max(self.psi_event_types, self.psi_devices) <= PSI_WARN

    @property
    def new_listeners_ok(self) -> bool:
        low, high = self.new_listener_band
        return not self.judged or low <= self.new_listener_share <= high


def day_drift(events: pa.Table, day: date, trailing_days: int = TRAILING_DAYS) -> DayDrift:
    """`events` (event_date, event_type, device, user_id) holds `day` and the `trailing_days` before it (and, for the
    new-listener shares, the `trailing_days` before those)."""
    dates = events.column("event_date").to_pylist()
    types = events.column("event_type").to_pylist()
    devices = [d or "unknown" for d in events.column("device").to_pylist()]
    users = events.column("user_id").to_pylist()
    by_day: dict[date, list[int]] = {}
    for i, d in enumerate(dates):
        by_day.setdefault(d, []).append(i)
    day_users = {d: {users[i] for i in rows} for d, rows in by_day.items()}

    def new_share(d: date) -> float:
        """The share of day d's listeners not seen in the `trailing_days` before it."""
        listeners = day_users.get(d, set())
        if not listeners:
            return 0.0
        window = (d - timedelta(days=n) for n in range(1, trailing_days + 1))
        seen_before = set().union(*(day_users.get(x, set()) for x in window))
        return len(listeners - seen_before) / len(listeners)

    trailing = [day - timedelta(days=n) for n in range(1, trailing_days + 1)]
    history = [d for d in trailing if by_day.get(d)]
    today = by_day.get(day, [])
    window = [i for d in history for i in by_day[d]]
    return DayDrift(
        day=day,
        history_days=len(history),
        events=len(today),
        volume_band=band([len(by_day[d]) for d in history]) if history else (0.0, 0.0),
        psi_event_types=psi(Counter(types[i] for i in window), Counter(types[i] for i in today)),
        psi_devices=psi(Counter(devices[i] for i in window), Counter(devices[i] for i in today)),
        new_listener_share=new_share(day),
        new_listener_band=band([new_share(d) for d in history], min_band=0.5) if history else (0.0, 1.0),
    )
