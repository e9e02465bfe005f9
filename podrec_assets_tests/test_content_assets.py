"""The content assets end to end on real Delta tables, a real MongoDB-wire server and the real embedding model, with
an RSS feed and its transcripts served by a local HTTP server: what is fetched, what is retried, and that a second
run with nothing changed writes and encodes nothing."""

from __future__ import annotations

import json

import pytest
from dagster import DagsterInstance, materialize
from deltalake import DeltaTable

from podrec_assets.defs.content.assets import episode_similarity, episodes, transcript_embeddings, transcripts
from podrec_assets.defs.content.checks import content_checks
from podrec_assets.defs.resources import CatalogResource
from podrec_assets.lib.content.transcripts import MAX_ATTEMPTS
from podrec_assets.lib.lakehouse import read_table
from podrec_assets.names import EPISODE_SIMILARITY, EPISODES, TRANSCRIPT_EMBEDDINGS, TRANSCRIPTS
from podrec_assets_tests.helpers import check_outcomes
from podrec_assets_tests.http_fixture import Reply

CONTENT = [episodes, transcripts, transcript_embeddings, episode_similarity, *content_checks]

VTT = "WEBVTT\n\n00:00:00.000 --> 00:00:04.000\nGraphics chips now train most large language models.\n"
SRT = "1\n00:00:00,000 --> 00:00:03,000\nThe striker scored twice in the cup final.\n"
JSON_TRANSCRIPT = {
    "version": "1.0.0",
    "segments": [{"startTime": 0, "endTime": 2, "body": "Interest rates rose."}],
}

ITEMS = [
    # (guid, title, description, transcript path or None, MIME type)
    ("ep-ai", "Chips for AI", "Why GPUs power machine learning.", "/t/ai.vtt", "text/vtt"),
    ("ep-cup", "Cup final", "A football match report.", "/t/cup.srt", "application/x-subrip"),
    ("ep-rates", "Rates", "Central banks and inflation.", "/t/rates.json", "application/json"),
    ("ep-gone", "Lost tapes", "A transcript link that is broken.", "/t/missing.vtt", "text/vtt"),
    ("ep-plain", "No transcript", "Ancient Rome's aqueducts and engineering.", None, ""),
]


def feed(items=ITEMS) -> str:
    entries = []
    for guid, title, description, path, mime in items:
        link = f'<podcast:transcript url="{{base}}{path}" type="{mime}"/>' if path else ""
        entries.append(f"<item><guid>{guid}</guid><title>{title}</title><description>{description}</description>"
                       f'<enclosure url="{{base}}/a/{guid}.mp3" type="audio/mpeg" length="1"/>'
                       f"{link}</item>")  # fmt: skip
    return ('<?xml version="1.0"?><rss version="2.0" xmlns:podcast="https://podcastindex.org/namespace/1.0">'
            "<channel><title>Test Show</title><language>en</language>" + "".join(entries)
            + "</channel></rss>")  # fmt: skip


@pytest.fixture
def served(http_server):
    http_server.routes["/feed.xml"] = Reply(
        feed().replace("{base}", http_server.base_url), content_type="application/rss+xml"
    )
    http_server.routes["/t/ai.vtt"] = Reply(VTT, content_type="text/vtt")
    http_server.routes["/t/cup.srt"] = Reply(SRT, content_type="application/x-subrip")
    http_server.routes["/t/rates.json"] = Reply(json.dumps(JSON_TRANSCRIPT), content_type="application/json")
    # /t/missing.vtt is not routed: 404 on every attempt
    return http_server


@pytest.fixture
def resources(delta, mongo, served):
    return {
        "delta": delta,
        "mongo": mongo,
        "catalog": CatalogResource(sources="rss", rss_feeds=served.url("/feed.xml")),
    }


def metadata(result, asset: str) -> dict:
    events = [e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == asset]
    return {k: v.value for k, v in events[0].materialization.metadata.items()}


def test_catalog_to_similarity_and_a_second_run_changes_nothing(delta, mongo, served, resources):
    instance = DagsterInstance.ephemeral()
    first = materialize(CONTENT, resources=resources, instance=instance)
    outcomes = check_outcomes(first, instance)
    assert len(outcomes) == 6 and all(outcomes.values()), outcomes
    assert metadata(first, EPISODES)["inserted"] == 5
    assert metadata(first, TRANSCRIPTS).items() >= {"fetched": 3, "fell_back": 1, "failed": 1}.items()
    assert metadata(first, TRANSCRIPT_EMBEDDINGS)["encoded"] == 5

    texts = {r["episode_id"]: r for r in read_table(delta.table_uri(TRANSCRIPTS)).to_pylist()}
    by_title = {r["title"]: r["episode_id"] for r in read_table(delta.table_uri(EPISODES)).to_pylist()}
    assert "Graphics chips now train most large language models." in texts[by_title["Chips for AI"]]["text"]
    assert "The striker scored twice" in texts[by_title["Cup final"]]["text"]
    assert "Interest rates rose." in texts[by_title["Rates"]]["text"]
    broken = texts[by_title["Lost tapes"]]
    assert broken["status"] == "failed" and broken["attempts"] == 1 and "404" in broken["last_error"]
    assert broken["text"] == "Lost tapes\nA transcript link that is broken."  # meanwhile: title + description
    assert texts[by_title["No transcript"]]["status"] == "fallback"

    client = mongo.client()
    documents = {d["_id"]: d for d in mongo.db(client)["episodes"].find()}
    assert set(documents) == set(by_title.values())
    assert documents[by_title["Rates"]]["title"] == "Rates"

    similarity = read_table(delta.table_uri(EPISODE_SIMILARITY))
    assert similarity.num_rows == 5 * 4  # k=20 but only 4 others exist

    versions = {
        name: DeltaTable(delta.table_uri(name)).version() for name in (EPISODES, TRANSCRIPT_EMBEDDINGS)
    }
    second = materialize(CONTENT, resources=resources, instance=instance)
    assert (
        metadata(second, EPISODES).items()
        >= {"inserted": 0, "updated": 0, "mongo_documents_written": 0}.items()
    )
    assert metadata(second, TRANSCRIPTS)["episodes_considered"] == 1  # only the failed one is retried
    assert metadata(second, TRANSCRIPT_EMBEDDINGS)["encoded"] == 0
    assert {n: DeltaTable(delta.table_uri(n)).version() for n in versions} == versions  # no new commits

    # a changed description updates that row only, and only its text is encoded again
    served.routes["/feed.xml"] = Reply(feed([(*ITEMS[4][:2], "Roman roads, bridges and aqueducts.", None, "")])
                                       .replace("{base}", served.base_url))  # fmt: skip
    third = materialize(CONTENT, resources=resources, instance=instance)
    assert (
        metadata(third, EPISODES).items()
        >= {"inserted": 0, "updated": 1, "mongo_documents_written": 1}.items()
    )
    assert metadata(third, TRANSCRIPT_EMBEDDINGS)["encoded"] == 1
    assert (
        mongo.db(client)["episodes"]
        .find_one({"_id": by_title["No transcript"]})["description"]
        .startswith("Roman")
    )
    client.close()


def test_a_failing_transcript_is_tried_at_most_three_times(delta, served, resources):
    instance = DagsterInstance.ephemeral()
    assert materialize([episodes], resources=resources, instance=instance).success
    for run in range(MAX_ATTEMPTS + 2):
        result = materialize([transcripts], resources=resources, instance=instance)
        gave_up = metadata(result, TRANSCRIPTS)["gave_up_after_max_attempts"]
        assert gave_up == (1 if run >= MAX_ATTEMPTS else 0)
    assert served.hits("/t/missing.vtt") == MAX_ATTEMPTS
    (row,) = [r for r in read_table(delta.table_uri(TRANSCRIPTS)).to_pylist() if r["status"] == "failed"]
    assert row["attempts"] == MAX_ATTEMPTS


def test_the_mongo_mirror_repairs_itself_from_delta(delta, mongo, resources):
    instance = DagsterInstance.ephemeral()
    assert materialize([episodes], resources=resources, instance=instance).success
    client = mongo.client()
    collection = mongo.db(client)["episodes"]
    victim = collection.find_one()["_id"]
    collection.delete_one({"_id": victim})  # as if a run crashed between the Delta commit and the mirror
    result = materialize([episodes], resources=resources, instance=instance)
    assert metadata(result, EPISODES).items() >= {"updated": 0, "mongo_documents_written": 1}.items()
    assert collection.find_one({"_id": victim}) is not None
    client.close()
