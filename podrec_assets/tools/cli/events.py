"""`podrec events generate|replay|send`: listener events to the Kafka topic."""

from __future__ import annotations

from pathlib import Path

import click
import orjson
from pymongo.errors import PyMongoError

from podrec_assets.names import EPISODES
from podrec_assets.tools.cli.common import fail, resources


@click.group()
def events() -> None:
    """Produce listener events to the Kafka topic."""


def _send(messages, total: int | None, key_field: str | None = "user_id") -> None:
    from podrec_assets.tools.producers.kafka_send import BrokerUnavailable, send_messages

    kafka = resources()["kafka"]
    pairs = (
        ((str(m.get(key_field, "")).encode() if key_field and isinstance(m, dict) else None), orjson.dumps(m))
        for m in messages
    )
    try:
        report = send_messages(kafka, pairs, total=total)
    except BrokerUnavailable as error:
        fail(str(error))
    click.echo(f"sent {report.sent} events to {kafka.topic} ({report.failed} failed)")
    if report.failed:
        fail(f"{report.failed} messages were not acknowledged; first error: {report.first_error}")


@events.command("generate")
@click.option("--users", default=200, show_default=True)
@click.option("--days", default=14, show_default=True, help="spread timestamps over this many days up to now")
@click.option("--sessions-per-user", default=12.0, show_default=True)
@click.option("--seed", default=42, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["v1", "seed000"]), default="v1", show_default=True)
def events_generate(users: int, days: int, sessions_per_user: float, seed: int, fmt: str) -> None:
    """Synthetic listeners with latent tastes over the episode catalog (MongoDB `episodes`, as the `episodes` asset
    mirrors it; the built-in sample catalog while that collection is empty)."""
    from podrec_assets.tools.producers.synthetic import catalog_from_documents, generate_events, to_seed000

    mongo = resources()["mongo"]
    client = mongo.client()
    try:
        documents = list(mongo.db(client)[EPISODES].find({}, {"episode_id": 1, "title": 1, "show": 1,
                                                                "categories": 1, "duration_sec": 1}))  # fmt: skip
    except PyMongoError as error:
        fail(f"cannot read the episode catalog from MongoDB: {error}")
    finally:
        client.close()
    catalog = catalog_from_documents(documents) if documents else None
    click.echo(
        f"catalog: {len(documents)} episodes from MongoDB" if documents else "catalog: built-in sample"
    )
    messages = list(generate_events(users=users, days=days, sessions_per_user=sessions_per_user, seed=seed,
                                    catalog=catalog))  # fmt: skip
    if fmt == "seed000":
        messages = [to_seed000(m) for m in messages]
    _send(messages, total=len(messages))


@events.command("replay")
@click.option("--dataset", type=click.Choice(["movielens-100k"]), required=True)
@click.option("--speed", type=float, default=None, help="compress time toward now by this factor")
@click.option("--limit", type=int, default=None, help="replay only the first N ratings (in time order)")
def events_replay(dataset: str, speed: float | None, limit: int | None) -> None:
    """Real behaviour: every MovieLens-100k rating becomes a `rate` event at its original timestamp."""
    from podrec_assets.lib.datasets.movielens import load_ratings, replay_events

    ratings = sorted(load_ratings(), key=lambda r: r.timestamp)[:limit]
    _send(replay_events(ratings, speed=speed), total=len(ratings))


@events.command("send")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def events_send(path: Path) -> None:
    """Send each line of a JSONL file as one message, exactly as it is (no validation), unkeyed."""
    from podrec_assets.tools.producers.kafka_send import BrokerUnavailable, send_messages

    lines = path.read_bytes().splitlines()
    kafka = resources()["kafka"]
    try:
        report = send_messages(kafka, ((None, line) for line in lines), total=len(lines))
    except BrokerUnavailable as error:
        fail(str(error))
    click.echo(f"sent {report.sent} messages to {kafka.topic} ({report.failed} failed)")
