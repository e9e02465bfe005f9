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
        import orjson
        import pyarrow as pa
        from dagster import materialize
        from deltalake import write_deltalake

        from podrec_assets.engagement.assets import daily_engagement
        from podrec_assets.ingestion.batch_validation import validate_batch
        from podrec_assets.ingestion.tables import (
            RAW_USER_EVENTS,
            RAW_USER_EVENTS_PARTITION_BY,
            RAW_USER_EVENTS_SCHEMA,
        )
        from podrec_assets.producers.synthetic import generate_events
        from podrec_assets.resources import DeltaLakeResource, build_resources

        template = list(generate_events(users=max(50, args.events_per_day // 60), days=1, seed=3,
                                        end=datetime(2026, 1, 1, 23, tzinfo=UTC)))[: args.events_per_day]  # fmt: skip

        def day_rows(day: date) -> pa.Table:
            shift = datetime.combine(day, datetime.min.time(), UTC) - datetime(2026, 1, 1, tzinfo=UTC)
            events = []
            for e in template:
                ts = datetime.fromisoformat(e["ts"]) + shift
                if ts.date() == day:
                    events.append({**e, "event_id": f"{e['event_id']}-{day}", "ts": ts.isoformat()})
            validation = validate_batch([orjson.dumps(e) for e in events], datetime.now(UTC))
            n = validation.events.num_rows
            return pa.Table.from_arrays(
                [*validation.events.columns, pa.array(["bench"] * n), pa.array([0] * n, pa.int32()),
                 pa.array(range(n), pa.int64()), pa.array([datetime.now(UTC)] * n, pa.timestamp("us", tz="UTC"))],
                schema=RAW_USER_EVENTS_SCHEMA,
            )  # fmt: skip

        resources = build_resources(resolved=True)
        roots = {}
        for history in (1, args.history):
            delta = DeltaLakeResource(root=tempfile.mkdtemp(prefix=f"bench-eng-{history}-"))
            days = [NEW_DAY - timedelta(days=d) for d in range(history, -1, -1)]
            for day in days:
                write_deltalake(delta.table_uri(RAW_USER_EVENTS), day_rows(day), mode="append",
                                partition_by=RAW_USER_EVENTS_PARTITION_BY)  # fmt: skip
            tags = {"dagster/asset_partition_range_start": days[0].isoformat(),
                    "dagster/asset_partition_range_end": days[-2].isoformat()}  # fmt: skip
            run = {"delta": delta, "pyspark": resources["pyspark"]}
            assert materialize([daily_engagement], tags=tags, resources=run).success  # history, untimed
            roots[history] = run
            print(
                f"{history} day(s) of history: {len(days) - 1} days x ~{day_rows(NEW_DAY).num_rows:,} events"
            )

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
