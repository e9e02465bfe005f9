"""A new day of daily_engagement costs what that day holds, not what history holds.

    python benchmarks/engagement.py [--events-per-day 20000] [--rounds 3]

Two Delta roots hold the same events per day: one with 1 day of history, one with 60. In each, the history is
materialized first (untimed); then the new day's partition is materialized, alternating between the two, and the
ratio of the medians (60 days / 1 day) is printed. Target: <= 1.2.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import local_services, report

NEW_DAY = date(2026, 6, 30)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events-per-day", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--history", type=int, default=60)
    args = parser.parse_args()

    with local_services(["spark"]):
        from dagster import materialize

        from podrec_assets.defs.engagement.assets import daily_engagement
        from podrec_assets.defs.resources import DeltaLakeResource, build_resources
        from podrec_assets.tools.producers.synthetic import generate_events
        from podrec_assets_tests.helpers import partition_range_tags, write_raw_events

        template = list(generate_events(users=max(50, args.events_per_day // 60), days=1, seed=3,
                                        end=datetime(2026, 1, 1, 23, tzinfo=UTC)))[: args.events_per_day]  # fmt: skip

        def day_events(day: date) -> list[dict]:
            """The template's events moved onto `day` (those that stay within it), with ids of their own."""
            shift = datetime.combine(day, datetime.min.time(), UTC) - datetime(2026, 1, 1, tzinfo=UTC)
            moved = ({**e, "ts": (datetime.fromisoformat(e["ts"]) + shift).isoformat()} for e in template)
            return [
                {**e, "event_id": f"{e['event_id']}-{day}"}
                for e in moved
                if e["ts"].startswith(day.isoformat())
            ]

        resources = build_resources(resolved=True)
        roots = {}
        for history in (1, args.history):
            delta = DeltaLakeResource(root=tempfile.mkdtemp(prefix=f"bench-eng-{history}-"))
            days = [NEW_DAY - timedelta(days=d) for d in range(history, -1, -1)]
            for day in days:
                write_raw_events(delta, day_events(day))
            run = {"delta": delta, "pyspark": resources["pyspark"]}
            history_tags = partition_range_tags(days[0], days[-2])
            assert materialize([daily_engagement], tags=history_tags, resources=run).success  # untimed
            roots[history] = run
            print(f"{history} day(s) of history: {len(days) - 1} days x ~{len(day_events(NEW_DAY)):,} events")

        def new_day(run: dict) -> float:
            started = time.perf_counter()
            assert materialize([daily_engagement], partition_key=NEW_DAY.isoformat(), resources=run).success
            return time.perf_counter() - started

        new_day(roots[1])  # warm the Spark server's caches once, for both sides alike
        short, long = [], []
        for _ in range(args.rounds):
            short.append(new_day(roots[1]))
            long.append(new_day(roots[args.history]))
        report(f"new day with {args.history} vs 1 day of history (s)", long, short, "s", target=1.2,
               higher_is_better=False)  # fmt: skip


if __name__ == "__main__":
    os.environ.setdefault("PODREC_FIRST_DAY", "2026-01-01")
    main()
