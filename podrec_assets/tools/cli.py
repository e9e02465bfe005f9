"""The `podrec` command: local services, event producers, ingestion outside Dagster, and a summary."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import orjson
from pymongo.errors import PyMongoError

from podrec_assets.defs.resources import build_resources
from podrec_assets.lib.settings import apply_local_defaults, podrec_home


def _resources() -> dict:
    return build_resources(resolved=True)


def _fail(message: str) -> None:
    click.secho(f"error: {message}", fg="red", err=True)
    sys.exit(1)


@click.group()
def main() -> None:
    """podrec: podcast recommendations as a Dagster asset graph."""
    apply_local_defaults()


# -- services ------------------------------------------------------------------------------------------------------
@main.group()
def services() -> None:
    """Start, stop and inspect the local stack (Kafka, MongoDB, Spark Connect) on 127.0.0.1."""


@services.command("up")
@click.option(
    "--only", multiple=True, type=click.Choice(["kafka", "mongo", "spark"]), help="start only these"
)
def services_up(only: tuple[str, ...]) -> None:
    """Start what is not running and wait until every service answers (idempotent)."""
    from podrec_assets.tools.stack import LocalStack, ServiceError

    try:
        statuses = LocalStack().up(list(only) or None, log=lambda m: click.echo(m))
    except ServiceError as error:
        _fail(str(error))
    for status in statuses:
        if not only or status.role in only:
            click.echo(status.line())


@services.command("down")
def services_down() -> None:
    """Stop every server this project started (by PID), and nothing else."""
    from podrec_assets.tools.stack import LocalStack

    LocalStack().down(log=lambda m: click.echo(m))


@services.command("status")
def services_status() -> None:
    from podrec_assets.tools.stack import LocalStack

    for status in LocalStack().status():
        click.echo(status.line())


# -- events --------------------------------------------------------------------------------------------------------
@main.group()
def events() -> None:
    """Produce listener events to the Kafka topic."""


def _send(messages, total: int | None, key_field: str | None = "user_id") -> None:
    from podrec_assets.tools.producers.kafka_send import BrokerUnavailable, send_messages

    kafka = _resources()["kafka"]
    pairs = (
        ((str(m.get(key_field, "")).encode() if key_field and isinstance(m, dict) else None), orjson.dumps(m))
        for m in messages
    )
    try:
        report = send_messages(kafka, pairs, total=total)
    except BrokerUnavailable as error:
        _fail(str(error))
    click.echo(f"sent {report.sent} events to {kafka.topic} ({report.failed} failed)")
    if report.failed:
        _fail(f"{report.failed} messages were not acknowledged; first error: {report.first_error}")


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

    mongo = _resources()["mongo"]
    client = mongo.client()
    try:
        documents = list(mongo.db(client)["episodes"].find({}, {"episode_id": 1, "title": 1, "show": 1,
                                                                "categories": 1, "duration_sec": 1}))  # fmt: skip
    except PyMongoError as error:
        _fail(f"cannot read the episode catalog from MongoDB: {error}")
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
    kafka = _resources()["kafka"]
    try:
        report = send_messages(kafka, ((None, line) for line in lines), total=len(lines))
    except BrokerUnavailable as error:
        _fail(str(error))
    click.echo(f"sent {report.sent} messages to {kafka.topic} ({report.failed} failed)")


# -- ingestion and summary -----------------------------------------------------------------------------------------
@main.command("ingest")
@click.option("--max-events", default=1_000_000, show_default=True)
@click.option("--batch-events", default=50_000, show_default=True)
def ingest(max_events: int, batch_events: int) -> None:
    """Ingest pending events into Delta outside Dagster (the same code the raw_user_events asset runs)."""
    from podrec_assets.defs.ingestion.assets import open_sink
    from podrec_assets.lib.ingestion.kafka_to_delta import IngestLimits, ingest_pending

    resources = _resources()
    kafka, delta = resources["kafka"], resources["delta"]
    report = ingest_pending(kafka.consumer, open_sink(delta, kafka), IngestLimits(max_events, batch_events))
    click.echo(
        f"read {report.messages} messages: {report.accepted} events, {report.quarantined} quarantined, "
        f"{report.duplicates} duplicates, {report.commits} commits, caught up: {report.caught_up}"
    )


@main.command("summary")
def summary() -> None:
    """What the tables hold now."""
    from deltalake import DeltaTable

    from podrec_assets.names import QUARANTINED_EVENTS, RAW_USER_EVENTS

    delta = _resources()["delta"]
    click.echo(f"state folder: {podrec_home()}")
    for name in (RAW_USER_EVENTS, QUARANTINED_EVENTS):
        uri = delta.table_uri(name)
        if not DeltaTable.is_deltatable(uri, storage_options=delta.storage_options()):
            click.echo(f"{name:<20} (not created yet) {uri}")
            continue
        table = DeltaTable(uri, storage_options=delta.storage_options())
        rows = table.to_pyarrow_table(
            columns=["reason_code"] if name == QUARANTINED_EVENTS else ["event_type"]
        )
        column = rows.column(0)
        counts = {c["values"]: c["counts"] for c in column.value_counts().to_pylist()}
        click.echo(f"{name:<20} {rows.num_rows:>8} rows  v{table.version()}  {uri}")
        click.echo(f"{'':<20} {json.dumps(dict(sorted(counts.items(), key=lambda kv: -kv[1])))}")
    _summarize_models(delta)
    _summarize_content(delta)
    _summarize_mongo()


def _summarize_mongo() -> None:
    mongo = _resources()["mongo"]
    client = mongo.client()
    try:
        db = mongo.db(client)
        names = (
            "episodes",
            "final_recommendations",
            "als_top_n",
            "user_stats",
            "user_affinities",
            "global_stats",
        )
        counts = {name: db[name].estimated_document_count() for name in names}
        click.echo("MongoDB " + mongo.database + ": " + ", ".join(f"{n} {c}" for n, c in counts.items()))
        for window in db["global_stats"].find(
            {}, {"window_days": 1, "top_episodes": 1, "trending_categories": 1}
        ):
            top = ", ".join(
                str(e.get("title") or e.get("episode_id")) for e in window.get("top_episodes", [])[:3]
            )
            trending = ", ".join(str(c.get("category")) for c in window.get("trending_categories", [])[:3])
            click.echo(
                f"  last {window.get('window_days')} days: top episodes {top}; trending categories {trending}"
            )
    except PyMongoError as error:
        click.echo(f"MongoDB not reachable: {error}")
    finally:
        client.close()


def _summarize_content(delta, examples: int = 3, neighbours: int = 3) -> None:
    from collections import Counter

    from podrec_assets.lib.lakehouse import read_table
    from podrec_assets.names import EPISODE_SIMILARITY, EPISODES, TRANSCRIPT_EMBEDDINGS, TRANSCRIPTS

    options = delta.storage_options()
    catalog = read_table(delta.table_uri(EPISODES), ["episode_id", "title", "source"], options)
    if catalog is None:
        return
    sources = Counter(catalog.column("source").to_pylist())
    click.echo(f"{EPISODES:<20} {catalog.num_rows:>8} rows  {json.dumps(dict(sources))}")
    transcripts = read_table(delta.table_uri(TRANSCRIPTS), ["status"], options)
    if transcripts is not None:
        click.echo(f"{TRANSCRIPTS:<20} {transcripts.num_rows:>8} rows  "
                   f"{json.dumps(dict(Counter(transcripts.column('status').to_pylist())))}")  # fmt: skip
    embeddings = read_table(delta.table_uri(TRANSCRIPT_EMBEDDINGS), ["episode_id"], options)
    if embeddings is not None:
        click.echo(f"{TRANSCRIPT_EMBEDDINGS:<20} {embeddings.num_rows:>8} rows")
    similarity = read_table(delta.table_uri(EPISODE_SIMILARITY), storage_options=options)
    if similarity is None or similarity.num_rows == 0:
        return
    titles = dict(
        zip(catalog.column("episode_id").to_pylist(), catalog.column("title").to_pylist(), strict=True)
    )
    click.echo(f"{EPISODE_SIMILARITY:<20} {similarity.num_rows:>8} rows; episodes like ...")
    firsts = sorted(set(similarity.column("episode_id").to_pylist()))
    for episode_id in firsts[:: max(1, len(firsts) // examples)][:examples]:
        click.echo(f"  {titles.get(episode_id, episode_id)}")
        for row in _neighbours(similarity, episode_id, neighbours):
            click.echo(
                f"    {row['score']:.2f}  {titles.get(row['similar_episode_id'], row['similar_episode_id'])}"
            )


def _neighbours(similarity, episode_id: str, n: int) -> list[dict]:
    import pyarrow.compute as pc

    rows = similarity.filter(pc.equal(similarity.column("episode_id"), episode_id)).sort_by("rank")
    return rows.slice(0, n).to_pylist()


@main.command("recommend")
@click.argument("user_ids", nargs=-1)
@click.option("-n", "limit", default=10, show_default=True, help="how many recommendations")
@click.option("--examples", type=int, default=0, help="instead of USER_IDS, this many users that have a list")
def recommend(user_ids: tuple[str, ...], limit: int, examples: int) -> None:
    """A listener's recommendations (titles, scores, reasons) and stats, read from MongoDB only."""
    from podrec_assets.lib.serving.lookup import (
        COLD_START_USER,
        format_recommendations,
        recommendations_for,
        user_stats_for,
    )
    from podrec_assets.names import FINAL_RECOMMENDATIONS

    mongo = _resources()["mongo"]
    client = mongo.client()
    try:
        db = mongo.db(client)
        if examples:
            users = sorted(u for u in db[FINAL_RECOMMENDATIONS].distinct("user_id") if u != COLD_START_USER)
            user_ids = (*user_ids, *users[:: max(1, len(users) // examples)][:examples], "someone-new")
        if not user_ids:
            _fail("name at least one USER_ID (or --examples N)")
        for user_id in user_ids:
            click.echo(
                format_recommendations(
                    user_id, recommendations_for(db, user_id, limit), user_stats_for(db, user_id)
                )
            )
            click.echo()
    except PyMongoError as error:
        _fail(f"cannot read MongoDB: {error}")
    finally:
        client.close()


@main.command("similar")
@click.argument("episode_id")
@click.option("-n", default=10, show_default=True, help="how many neighbours")
def similar(episode_id: str, n: int) -> None:
    """Episodes most like EPISODE_ID (from the episode_similarity table), with their titles and cosine scores."""
    from podrec_assets.lib.lakehouse import read_table
    from podrec_assets.names import EPISODE_SIMILARITY, EPISODES

    delta = _resources()["delta"]
    options = delta.storage_options()
    catalog = read_table(delta.table_uri(EPISODES), ["episode_id", "title"], options)
    similarity = read_table(delta.table_uri(EPISODE_SIMILARITY), storage_options=options)
    if catalog is None or similarity is None:
        _fail("episodes and episode_similarity must be materialized first")
    titles = dict(
        zip(catalog.column("episode_id").to_pylist(), catalog.column("title").to_pylist(), strict=True)
    )
    rows = _neighbours(similarity, episode_id, n)
    if not rows:
        _fail(f"no neighbours for {episode_id!r} (unknown episode, or it has no text yet)")
    click.echo(f"episodes like {titles.get(episode_id, episode_id)} ({episode_id}):")
    for row in rows:
        other = row["similar_episode_id"]
        click.echo(f"  {row['rank']:>2}. {row['score']:.3f}  {titles.get(other, other)}  ({other})")


def _summarize_models(delta) -> None:
    from deltalake import DeltaTable

    from podrec_assets.names import ALS_RECOMMENDATIONS, DAILY_ENGAGEMENT

    for name in (DAILY_ENGAGEMENT, ALS_RECOMMENDATIONS):
        uri = delta.table_uri(name)
        if DeltaTable.is_deltatable(uri, storage_options=delta.storage_options()):
            table = DeltaTable(uri, storage_options=delta.storage_options())
            rows = table.to_pyarrow_table(columns=["user_id"])
            users = len(set(rows.column("user_id").to_pylist()))
            click.echo(f"{name:<20} {rows.num_rows:>8} rows  v{table.version()}  {users} users  {uri}")
    registry = _resources()["models"].registry("als")
    current = registry.current()
    if not registry.versions():
        return
    click.echo(f"als models: {len(registry.versions())} version(s) in {registry.folder}; current: {current}")
    newest = registry.manifest(registry.versions()[-1])
    evaluation = newest["evaluation"]
    click.echo(f"newest model {newest['version']} ({evaluation['protocol']}, {evaluation['users_evaluated']} users), "
               f"gate: {newest['gate']['verdict']}")  # fmt: skip
    for model, metrics in evaluation["metrics"].items():
        click.echo(f"  {model:<11} " + "  ".join(f"{k} {v:.3f}" for k, v in metrics.items()))
    from podrec_assets.lib.serving.policy import serving_policy

    rankers = _resources()["models"].registry("ranker")
    if rankers.versions():
        gate = rankers.manifest(rankers.versions()[-1])["gate"]
        click.echo(f"newest ranker {rankers.versions()[-1]}: {gate['verdict']}")
    policy = serving_policy(_resources()["models"].root)
    click.echo(f"serving strategy: {policy.strategy} ({policy.why})")


@main.command("event-days")
def event_days() -> None:
    """The closed days (UTC) raw_user_events holds, as START...END for `dagster asset materialize --partition-range`."""
    from datetime import UTC, date, datetime, timedelta

    from deltalake import DeltaTable

    from podrec_assets.lib.settings import first_partition_day
    from podrec_assets.names import RAW_USER_EVENTS

    delta = _resources()["delta"]
    table = DeltaTable(delta.table_uri(RAW_USER_EVENTS), storage_options=delta.storage_options())
    days = sorted(date.fromisoformat(p["event_date"]) for p in table.partitions())
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    days = [d for d in days if date.fromisoformat(first_partition_day()) <= d <= yesterday]
    if not days:
        _fail("raw_user_events holds no closed day yet")
    click.echo(f"{days[0].isoformat()}...{days[-1].isoformat()}")


# -- models --------------------------------------------------------------------------------------------------------
@main.group()
def models() -> None:
    """Versioned ALS models and rankers: list them, promote one (also how to roll back)."""


@models.command("list")
def models_list() -> None:
    """ALS versions and ranker versions (* = current), their held-out nDCG@10 and gate, and what serves."""
    from podrec_assets.lib.serving.policy import serving_policy

    registry = _resources()["models"].registry("als")
    current = registry.current()
    click.echo("als:")
    for version in registry.versions():
        manifest = registry.manifest(version)
        ndcg = {m: v.get("ndcg@10") for m, v in manifest["evaluation"]["metrics"].items()}
        mark = "*" if version == current else " "
        click.echo(f"{mark} {version}  nDCG@10 als {ndcg.get('als')} popularity {ndcg.get('popularity')}  "
                   f"gate {'passed' if manifest['gate']['passed'] else 'failed'}")  # fmt: skip
    rankers = _resources()["models"].registry("ranker")
    click.echo("ranker:")
    for version in rankers.versions():
        manifest = rankers.manifest(version)
        ndcg = {m: v.get("ndcg@10") for m, v in manifest["gate"]["metrics"].items()}
        mark = "*" if version == rankers.current() else " "
        click.echo(f"{mark} {version}  on als {manifest['als_version']}  nDCG@10 ranker {ndcg.get('ranker')} "
                   f"als {ndcg.get('als')} hybrid {ndcg.get('hybrid')}  gate "
                   f"{'passed' if manifest['gate']['passed'] else 'failed'}")  # fmt: skip
    policy = serving_policy(_resources()["models"].root)
    click.echo(f"serving: {policy.strategy} ({policy.why})")


@models.command("promote")
@click.argument("version")
@click.option("--reason", default="promoted by hand", show_default=True)
@click.option("--kind", type=click.Choice(["als", "ranker"]), default="als", show_default=True)
def models_promote(version: str, reason: str, kind: str) -> None:
    """Make VERSION the current model of its kind (rollback = promote an earlier version); then rerun
    final_recommendations and published_recommendations (and als_recommendations for ALS)."""
    registry = _resources()["models"].registry(kind)
    try:
        registry.promote(version, reason)
    except ValueError as error:
        _fail(str(error))
    click.echo(f"current model: {registry.current()}")


@main.command("evaluate")
@click.option("--dataset", type=click.Choice(["movielens-100k"]), required=True)
@click.option(
    "--protocol",
    type=click.Choice(["random", "temporal", "per-listener"]),
    default="random",
    show_default=True,
    help="random: recommenders' stratified split of the ratings (model code only); temporal: one global "
    "cut-off time, the past through the real assets, what MongoDB serves judged on the future; per-listener: "
    "each listener's newest 20% hidden, the rest through the real assets",
)
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="temporal: where the private Delta tables and models go (default: a new temporary folder)",
)
@click.option(
    "--longtail",
    type=int,
    default=3000,
    show_default=True,
    help="temporal: synthetic long-tail episodes nobody has heard, added to the catalog",
)
@click.option(
    "--horizon-days",
    type=float,
    default=None,
    help="temporal: judge only the positives in the first N days after the cut (default: all)",
)
@click.option(
    "--events",
    "event_mix",
    type=click.Choice(["ratings", "listening"]),
    default="ratings",
    show_default=True,
    help="temporal/per-listener: a `rate` event per rating, or the listening session "
    "it stands for (complete, like, skip and rate)",
)
@click.option("--split", type=click.Choice(["test", "validation", "validation-2", "validation-3"]), default="test",
              show_default=True, help="validation splits lie inside the training part (all tuning may look at); "
              "temporal: -2 and -3 step the cut further back (rolling origin)")  # fmt: skip
@click.option("--rank", type=int, default=None)
@click.option("--reg-param", type=float, default=None)
@click.option("--alpha", type=float, default=None)
@click.option("--max-iter", type=int, default=None)
@click.option("--hybrid/--no-hybrid", default=True, show_default=True,
              help="also the hybrid (ALS + content) at several blend weights, and the cold-item experiment")  # fmt: skip
@click.option(
    "--weights", default="0.5,0.8,0.9,0.95,1.0", show_default=True, help="blend weights w to report"
)
def evaluate(dataset: str, protocol: str, workdir: Path | None, longtail: int, horizon_days: float | None,
             event_mix: str, split: str, rank, reg_param, alpha, max_iter, hybrid: bool, weights: str) -> None:  # fmt: skip
    """Offline quality on real data: the temporal protocol through the real assets, or the random protocol of the
    ALS model code beside published figures (starts the local services it needs)."""
    from pyspark.sql import SparkSession

    from podrec_assets.lib.models.als import AlsParams
    from podrec_assets.tools.experiments.movielens_eval import (
        RANDOM_PROTOCOL_PARAMS,
        evaluate_movielens,
        report_lines,
    )
    from podrec_assets.tools.stack import LocalStack, ServiceError

    overrides = {"rank": rank, "reg_param": reg_param, "alpha": alpha, "max_iter": max_iter}
    base = RANDOM_PROTOCOL_PARAMS.model_dump() if protocol == "random" else {}
    params = AlsParams(**{**base, **{k: v for k, v in overrides.items() if v is not None}})
    try:
        LocalStack().up(["spark"] if protocol == "random" else ["kafka", "mongo", "spark"],
                        log=lambda m: click.echo(m))  # fmt: skip
    except ServiceError as error:
        _fail(str(error))
    if protocol in ("temporal", "per-listener"):
        from podrec_assets.tools.experiments.temporal import evaluate_temporal

        als = {k: v for k, v in params.model_dump().items() if k in overrides and overrides[k] is not None}
        run_config = {"als_model": {"als_model": {"config": {"params": als}}}} if als else None
        report = evaluate_temporal(split, protocol, horizon_days, workdir, longtail, log=click.echo,
                                   run_config=run_config, events=event_mix)  # fmt: skip
        for line in report.lines():
            click.echo(line)
        return
    spark = SparkSession.builder.remote(_resources()["pyspark"].spark_config["spark.remote"]).getOrCreate()
    click.echo(f"ALS parameters: {params.model_dump()}")
    for line in report_lines(evaluate_movielens(spark, params, split), split):
        click.echo(line)
    if hybrid:
        from podrec_assets.tools.experiments.movielens_hybrid import evaluate_hybrid
        from podrec_assets.tools.experiments.movielens_hybrid import report_lines as hybrid_lines

        blend = [float(w) for w in weights.split(",")]
        for line in hybrid_lines(evaluate_hybrid(spark, params, blend, split, cold_items=split == "test")):
            click.echo(line)


if __name__ == "__main__":
    main()
