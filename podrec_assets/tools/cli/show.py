"""`podrec summary|recommend|similar|event-days`: what the tables and collections hold now."""

from __future__ import annotations

import json

import click
from pymongo.errors import PyMongoError

from podrec_assets.lib.settings import podrec_home
from podrec_assets.tools.cli.common import fail, resources


@click.command("summary")
def summary() -> None:
    """What the tables hold now."""
    from deltalake import DeltaTable

    from podrec_assets.names import QUARANTINED_EVENTS, RAW_USER_EVENTS

    delta = resources()["delta"]
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
    mongo = resources()["mongo"]
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


@click.command("recommend")
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

    mongo = resources()["mongo"]
    client = mongo.client()
    try:
        db = mongo.db(client)
        if examples:
            users = sorted(u for u in db[FINAL_RECOMMENDATIONS].distinct("user_id") if u != COLD_START_USER)
            user_ids = (*user_ids, *users[:: max(1, len(users) // examples)][:examples], "someone-new")
        if not user_ids:
            fail("name at least one USER_ID (or --examples N)")
        for user_id in user_ids:
            click.echo(
                format_recommendations(
                    user_id, recommendations_for(db, user_id, limit), user_stats_for(db, user_id)
                )
            )
            click.echo()
    except PyMongoError as error:
        fail(f"cannot read MongoDB: {error}")
    finally:
        client.close()


@click.command("similar")
@click.argument("episode_id")
@click.option("-n", default=10, show_default=True, help="how many neighbours")
def similar(episode_id: str, n: int) -> None:
    """Episodes most like EPISODE_ID (from the episode_similarity table), with their titles and cosine scores."""
    from podrec_assets.lib.lakehouse import read_table
    from podrec_assets.names import EPISODE_SIMILARITY, EPISODES

    delta = resources()["delta"]
    options = delta.storage_options()
    catalog = read_table(delta.table_uri(EPISODES), ["episode_id", "title"], options)
    similarity = read_table(delta.table_uri(EPISODE_SIMILARITY), storage_options=options)
    if catalog is None or similarity is None:
        fail("episodes and episode_similarity must be materialized first")
    titles = dict(
        zip(catalog.column("episode_id").to_pylist(), catalog.column("title").to_pylist(), strict=True)
    )
    rows = _neighbours(similarity, episode_id, n)
    if not rows:
        fail(f"no neighbours for {episode_id!r} (unknown episode, or it has no text yet)")
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
    registry = resources()["models"].registry("als")
    current = registry.current()
    if not registry.versions():
        return
    click.echo(f"als models: {len(registry.versions())} version(s) in {registry.uri}; champion: {current}")
    newest = registry.manifest(registry.versions()[-1])
    evaluation = newest["evaluation"]
    click.echo(f"newest model {newest['version']} ({evaluation['protocol']}, {evaluation['users_evaluated']} users), "
               f"gate: {newest['gate']['verdict']}")  # fmt: skip
    for model, metrics in evaluation["metrics"].items():
        click.echo(f"  {model:<11} " + "  ".join(f"{k} {v:.3f}" for k, v in metrics.items()))
    from podrec_assets.lib.serving.policy import serving_policy

    rankers = resources()["models"].registry("ranker")
    if rankers.versions():
        gate = rankers.manifest(rankers.versions()[-1])["gate"]
        click.echo(f"newest ranker {rankers.versions()[-1]}: {gate['verdict']}")
    policy = serving_policy(resources()["models"].root, resources()["models"].tracking_uri)
    click.echo(f"serving strategy: {policy.strategy} ({policy.why})")


@click.command("event-days")
def event_days() -> None:
    """The closed days (UTC) raw_user_events holds, as START...END for `dg launch --partition-range`."""
    from datetime import UTC, date, datetime, timedelta

    from deltalake import DeltaTable

    from podrec_assets.lib.settings import first_partition_day
    from podrec_assets.names import RAW_USER_EVENTS

    delta = resources()["delta"]
    table = DeltaTable(delta.table_uri(RAW_USER_EVENTS), storage_options=delta.storage_options())
    days = sorted(date.fromisoformat(p["event_date"]) for p in table.partitions())
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    days = [d for d in days if date.fromisoformat(first_partition_day()) <= d <= yesterday]
    if not days:
        fail("raw_user_events holds no closed day yet")
    click.echo(f"{days[0].isoformat()}...{days[-1].isoformat()}")
