"""als_model and als_recommendations on real Spark and Delta: versions, the quality gate, the never-recommend rule."""

import hashlib
import random
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from dagster import DagsterInstance, materialize
from deltalake import DeltaTable

from podrec_assets.defs.engagement.assets import daily_engagement
from podrec_assets.defs.models.assets import als_model, als_recommendations
from podrec_assets.defs.models.checks import als_recommendations_checks
from podrec_assets.lib.models.recommend import read_model
from podrec_assets.lib.models.training import read_split
from podrec_assets.names import ALS_RECOMMENDATIONS, DAILY_ENGAGEMENT
from podrec_assets.tools.producers.synthetic import generate_events
from podrec_assets_tests.helpers import check_outcomes, partition_range_tags, write_raw_events

END = datetime(2026, 3, 20, 22, tzinfo=UTC)
DAYS = 12


def listening(shuffle_before: datetime | None = None) -> list[dict]:
    """Synthetic listeners with latent tastes; with `shuffle_before`, every older event is given to a random other
    listener, so the history a model learns from says nothing about anyone (popularity survives shuffling)."""
    events = list(generate_events(users=120, days=DAYS, sessions_per_user=14, seed=11, end=END))
    if shuffle_before:
        users = sorted({e["user_id"] for e in events})
        rng = random.Random(5)
        for e in events:
            if datetime.fromisoformat(e["ts"]) < shuffle_before:
                e["user_id"] = rng.choice(users)
    return events


def build_engagement(delta, resources, events):
    write_raw_events(delta, events)
    first, last = (END - timedelta(days=DAYS)).date(), END.date()
    assert materialize(
        [daily_engagement], tags=partition_range_tags(first, last), resources=resources
    ).success


def snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def resources(delta, pyspark_resource, models):
    return {"delta": delta, "pyspark": pyspark_resource, "models": models}


@pytest.fixture(scope="module")
def first_version(tmp_path_factory, pyspark_resource):
    """Synthetic listening, its engagement and one als_model version, fitted once for the module: tests copy it.
    Returns (the folder holding delta/ and models/, the run's als_model metadata, its beats_popularity verdict)."""
    from podrec_assets.defs.resources import DeltaLakeResource, ModelStoreResource

    root = tmp_path_factory.mktemp("first-version")
    delta, models = DeltaLakeResource(root=str(root / "delta")), ModelStoreResource(root=str(root / "models"))
    resources = {"delta": delta, "pyspark": pyspark_resource, "models": models}
    build_engagement(delta, resources, listening())
    result = materialize([als_model], resources=resources)
    metadata = {
        k: v.value for k, v in result.get_asset_materialization_events()[0].materialization.metadata.items()
    }
    (gate,) = result.get_asset_check_evaluations()
    return root, metadata, gate.passed


def copy_of(first_version, delta, models) -> None:
    """This test's own copy of the module's fitted version (its Delta tables and model store)."""
    root = first_version[0]
    shutil.copytree(root / "delta", delta.root)
    shutil.copytree(root / "models", models.root)


def test_each_run_writes_a_new_version_and_never_touches_an_old_one(delta, resources, models, first_version):
    copy_of(first_version, delta, models)
    registry = models.registry("als")

    (v1,) = registry.versions()
    assert registry.current() == v1  # synthetic tastes: ALS beats popularity
    before = snapshot(registry.path(v1))
    assert set(before) == {"manifest.json", "user_ids.parquet", "episode_ids.parquet", "user_factors.parquet",
                           "item_factors.parquet", "heldout/user_factors.parquet", "heldout/item_factors.parquet",
                           "pairs.parquet"}  # fmt: skip
    metadata = first_version[1]
    assert metadata["als_ndcg@10"] > metadata["popularity_ndcg@10"]

    materialize([als_model], resources=resources)
    v1_again, v2 = registry.versions()
    assert v1_again == v1 and v2 != v1 and registry.current() == v2
    assert snapshot(registry.path(v1)) == before
    manifest = registry.manifest(v2)
    assert manifest["params"]["rank"] == 64 and manifest["gate"]["passed"]
    assert (
        manifest["training_data"]["daily_engagement_version"]
        == DeltaTable(delta.table_uri(DAILY_ENGAGEMENT)).version()
    )
    assert set(manifest["evaluation"]["metrics"]["als"]) == {"precision@10", "recall@10", "ndcg@10", "map@10"}

    # Two fits: the held-out one is judged, the serving one is the same parameters refitted on every pair.
    fits = manifest["fits"]
    assert (
        fits["serving"]["train_pairs"]
        > fits["heldout"]["train_pairs"]
        == manifest["training_data"]["train_pairs"]
    )
    assert fits["heldout"]["metrics"] == manifest["evaluation"]["metrics"]
    serving = read_model(registry.path(v2), v2)
    heldout = read_model(registry.path(v2), v2, fit="heldout")
    assert serving.users.vectors.shape[1] == heldout.users.vectors.shape[1] == 64
    assert not np.allclose(serving.episodes.vectors[:5], heldout.episodes.vectors[:5])
    split = read_split(registry.path(v2))
    assert int(split["held_out"].sum()) == fits["heldout"]["held_out_pairs"]

    # MLflow is the system of record: the run's parameters, metrics, timings and tags; the champion alias serves.
    client = registry.client
    champion = client.get_model_version_by_alias("podrec-als", "champion")
    assert champion.tags["podrec_version"] == v2 and champion.tags["gate_passed"] == "True"
    run = client.get_run(champion.run_id)
    assert run.data.params["rank"] == "64" and run.data.params["window_days"] == "730"
    assert run.data.metrics["als.ndcg_at_10"] == pytest.approx(
        manifest["evaluation"]["metrics"]["als"]["ndcg@10"]
    )
    assert run.data.metrics["popularity.ndcg_at_10"] < run.data.metrics["als.ndcg_at_10"]
    assert {"seconds.load", "seconds.refit", "train_pairs"} <= set(run.data.metrics)
    assert run.data.tags["gate_passed"] == "True" and run.data.tags["podrec_version"] == v2
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "model")}
    assert {"model/user_factors.parquet", "model/heldout", "model/pairs.parquet"} <= artifacts

    registry.promote(v1, reason="rollback in a test")  # rollback is moving the alias
    assert registry.current() == v1
    assert client.get_model_version_by_alias("podrec-als", "champion").tags["podrec_version"] == v1


def test_quality_gate_keeps_a_model_worse_than_popularity_out(delta, resources, models):
    build_engagement(delta, resources, listening(shuffle_before=END - timedelta(days=3)))
    registry = models.registry("als")
    champion = registry.new_version("00000000-champion", now=datetime(2000, 1, 1, tzinfo=UTC))
    registry.staging(champion)
    registry.publish(champion, {"version": champion, "gate": {"passed": True}})
    registry.promote(champion, "the version serving before this run")
    result = materialize([als_model, als_recommendations, *als_recommendations_checks], resources=resources,
                         raise_on_error=False)  # fmt: skip
    (check,) = [c for c in result.get_asset_check_evaluations() if c.check_name == "beats_popularity"]
    assert not check.passed, check.metadata
    # registered, kept, alias not moved
    assert len(registry.versions()) == 2 and registry.current() == champion
    assert not registry.manifest(registry.versions()[1])["gate"]["passed"]
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert materialized == {"als_model"}  # the blocking check stopped als_recommendations


def test_recommendations_never_include_heard_or_skipped_episodes(delta, resources, models, first_version):
    copy_of(first_version, delta, models)  # the module's model, which passed its gate: no refit
    assert first_version[2]  # beats_popularity
    instance = DagsterInstance.ephemeral()
    result = materialize([als_model, als_recommendations, *als_recommendations_checks], resources=resources,
                         instance=instance, selection=[als_recommendations, *als_recommendations_checks])  # fmt: skip
    assert check_outcomes(result, instance) == {"no_engaged_episodes": True, "rankings_consistent": True}

    recommendations = DeltaTable(delta.table_uri(ALS_RECOMMENDATIONS)).to_pyarrow_table()
    engagement = DeltaTable(delta.table_uri(DAILY_ENGAGEMENT)).to_pyarrow_table()
    negative = engagement.filter(pa.compute.less(engagement.column("weight_sum"), 0))
    assert negative.num_rows > 20  # skips and low ratings are there to be excluded
    engaged = set(
        zip(
            engagement.column("user_id").to_pylist(), engagement.column("episode_id").to_pylist(), strict=True
        )
    )
    recommended = set(
        zip(
            recommendations.column("user_id").to_pylist(),
            recommendations.column("episode_id").to_pylist(),
            strict=True,
        )
    )
    assert recommended and not recommended & engaged
    per_user = recommendations.group_by("user_id").aggregate([("rank", "max")]).column("rank_max").to_pylist()
    assert set(per_user) == {20}
    assert set(recommendations.column("model_version").to_pylist()) == {models.registry("als").current()}


@pytest.mark.slow
def test_movielens_quality_target_holds(spark):
    """`podrec evaluate`'s protocol on real MovieLens-100k ratings: the tuned defaults keep nDCG@10 ≥ 0.45."""
    from podrec_assets.tools.experiments.movielens_eval import RANDOM_PROTOCOL_PARAMS, evaluate_movielens

    report = evaluate_movielens(spark, RANDOM_PROTOCOL_PARAMS, temporal=False)
    als, popular = report.random_split.metrics["als"], report.random_split.metrics["popularity"]
    assert report.random_split.users_evaluated == 943
    assert als["ndcg@10"] >= 0.45 and als["ndcg@10"] > popular["ndcg@10"] + 0.1
