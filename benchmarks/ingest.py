"""Ingestion throughput vs a bare kafka-python consumer, on the same broker, topic and messages, in one run.

    python benchmarks/ingest.py [--events 100000] [--rounds 3]

Ingestion = poll + validate + de-duplicate + Arrow + Delta commit (with Kafka positions) into a fresh table.
Bare consumer = the same KafkaConsumer settings, assigned to every partition, reading every message and nothing else.
The two alternate, each round; the ratio of the medians is printed. Target: ingestion >= 0.8x the bare consumer.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import orjson
from kafka import TopicPartition

from benchmarks._common import local_services, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-events", type=int, default=50_000)
    args = parser.parse_args()

    with local_services(["kafka"]):
        from podrec_assets.ingestion.delta_sink import DeltaEventSink
        from podrec_assets.ingestion.kafka_to_delta import IngestLimits, ingest_pending
        from podrec_assets.producers.kafka_send import send_messages
        from podrec_assets.producers.synthetic import generate_events
        from podrec_assets.resources import build_resources

        kafka = build_resources(resolved=True)["kafka"].model_copy(update={"topic": f"bench-{uuid.uuid4().hex[:8]}"})
        kafka.ensure_topic()
        events = list(generate_events(users=max(50, args.events // 40), seed=5))[: args.events]
        n = len(events)
        started = time.perf_counter()
        sent = send_messages(kafka, ((e["user_id"].encode(), orjson.dumps(e)) for e in events), progress=False)
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
            sink = DeltaEventSink(str(folder / "raw"), str(folder / "quarantine"), kafka.topic, kafka.topic_id())
            result = ingest_pending(kafka.consumer, sink, IngestLimits(max_events=n, batch_events=args.batch_events))
            elapsed = time.perf_counter() - started  # includes the final idle poll that proves "caught up"
            assert result.accepted == n, result
            return n / elapsed

        ours, baseline = [], []
        for _ in range(args.rounds):
            baseline.append(bare_consumer())
            ours.append(ingestion())
        report("ingest events/s", ours, baseline, "events/s", target=0.8, higher_is_better=True)


if __name__ == "__main__":
    main()
