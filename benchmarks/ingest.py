"""Ingestion throughput vs a bare kafka-python consumer, on the same broker, topic and messages, in one run.

    python benchmarks/ingest.py [--events 100000] [--rounds 3]

Ingestion = poll + validate + de-duplicate + Arrow + Delta commit (with Kafka positions) into a fresh table.
Bare consumer = the same KafkaConsumer settings, assigned to every partition, reading every message and nothing else.
The two alternate, each round; the ratio of the medians is printed. Target: ingestion >= 0.8x the bare consumer.

Also printed: the CPU time each side used (ingestion: both of its processes) and how busy the rest of the machine
was meanwhile. When other work keeps the cores busy, ingestion can go no faster than the CPU it needs allows.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import orjson
from kafka import TopicPartition

from benchmarks._common import cpu_seconds, local_services, machine_cpu_seconds, report


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-events", type=int, default=50_000)
    args = parser.parse_args()

    with local_services(["kafka"]):
        from podrec_assets.defs.resources import build_resources
        from podrec_assets.lib.ingestion.delta_sink import DeltaEventSink
        from podrec_assets.lib.ingestion.kafka_to_delta import IngestLimits, ingest_pending
        from podrec_assets.tools.producers.kafka_send import send_messages
        from podrec_assets.tools.producers.synthetic import generate_events

        kafka = build_resources(resolved=True)["kafka"].model_copy(
            update={"topic": f"bench-{uuid.uuid4().hex[:8]}"}
        )
        kafka.ensure_topic()
        events = list(generate_events(users=max(50, args.events // 40), seed=5))[: args.events]
        n = len(events)
        started = time.perf_counter()
        sent = send_messages(
            kafka, ((e["user_id"].encode(), orjson.dumps(e)) for e in events), progress=False
        )
        print(f"produced {sent.sent:,} messages ({sum(len(orjson.dumps(e)) for e in events) / n:.0f} bytes avg) "
              f"in {time.perf_counter() - started:.1f}s on {kafka.bootstrap_servers}, topic {kafka.topic}, "
              f"{kafka.partitions} partitions")  # fmt: skip

        def bare_consumer() -> float:
            started = time.perf_counter()
            consumer = kafka.consumer()
            partitions = [TopicPartition(kafka.topic, p) for p in consumer.partitions_for_topic(kafka.topic)]
            consumer.assign(partitions)
            consumer.seek_to_beginning()
            count = 0
            while count < n:
                for messages in consumer.poll(timeout_ms=1000, max_records=50_000).values():
                    count += len(messages)
            consumer.close()
            return count / (time.perf_counter() - started)

        def ingestion() -> float:
            folder = Path(tempfile.mkdtemp(prefix="bench-delta-"))
            started = time.perf_counter()
            sink = DeltaEventSink(
                str(folder / "raw"), str(folder / "quarantine"), kafka.topic, kafka.topic_id()
            )
            result = ingest_pending(
                kafka.consumer, sink, IngestLimits(max_events=n, batch_events=args.batch_events)
            )
            elapsed = time.perf_counter() - started  # stops at n messages: no final idle poll
            assert result.accepted == n, result
            return n / elapsed

        ours, baseline = [], []
        cpu: dict[str, list[float]] = {"bare": [], "ingestion": []}
        machine_before, started = machine_cpu_seconds(), time.perf_counter()
        for _ in range(args.rounds):
            for rates, name, measure in ((baseline, "bare", bare_consumer), (ours, "ingestion", ingestion)):
                before = cpu_seconds()
                rates.append(measure())
                cpu[name].append(cpu_seconds() - before)
        elapsed, machine_after = time.perf_counter() - started, machine_cpu_seconds()
        ratio = report("ingest events/s", ours, baseline, "events/s", target=0.8, higher_is_better=True)
        bare_cpu, ingestion_cpu = statistics.median(cpu["bare"]), statistics.median(cpu["ingestion"])
        print(
            f"CPU per round (median): bare consumer {bare_cpu:.2f}s, ingestion {ingestion_cpu:.2f}s (both processes)"
        )
        if machine_before is not None and machine_after is not None:
            elsewhere = (machine_after - machine_before - sum(cpu["bare"]) - sum(cpu["ingestion"])) / elapsed
            print(f"other processes (the broker included) kept {elsewhere:.2f} cores busy meanwhile")
            if elsewhere > 0.5 and ratio < 0.8:
                print(f"a busy machine: with about one core left, the ratio cannot exceed bare CPU / ingestion CPU "
                      f"= {bare_cpu / ingestion_cpu:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
