"""Pure unit tests: top-N scoring with exclusions, the promotion rule, and the model registry (a real MLflow
SQLite store in a temporary folder)."""

from datetime import UTC, datetime

import numpy as np
import pytest

from podrec_assets.defs.models.assets import gate
from podrec_assets.lib.models.factors import Factors
from podrec_assets.lib.models.ranking import best_k, pair_matrix, popularity, rank_with_factors, top_n
from podrec_assets.lib.models.registry import ModelRegistry, RunRecord, flatten, numeric, read_ids, write_ids


def test_top_n_orders_by_score_skips_excluded_and_pads():
    users = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    items = np.array([[3.0, 0.0], [2.0, 1.0], [1.0, 2.0], [0.0, 3.0]], dtype=np.float32)
    exclude = pair_matrix(np.array([0, 1, 1, 1]), np.array([0, 3, 2, 1]), (2, 4))
    best, scores = top_n(users, items, exclude, 3)
    assert best[0].tolist() == [1, 2, 3] and scores[0].tolist() == [2.0, 1.0, 0.0]
    assert best[1].tolist() == [0, -1, -1] and np.isnan(scores[1][1:]).all()  # only one item left for user 1


def test_top_n_breaks_ties_by_item_index_and_handles_short_catalogs():
    best, _ = top_n(np.ones((1, 1), np.float32), np.ones((5, 1), np.float32), pair_matrix([], [], (1, 5)), 3)
    assert best[0].tolist() == [0, 1, 2]
    best, _ = top_n(np.ones((1, 1), np.float32), np.ones((2, 1), np.float32), pair_matrix([], [], (1, 2)), 4)
    assert best[0].tolist() == [0, 1, -1, -1]


def test_best_k_takes_the_lowest_indices_among_ties_in_a_wide_row_and_ranks_nan_last():
    scores = np.zeros((2, 5000), np.float32)
    scores[:, :5] = (
        1.0  # 4,995 entries tie at 0 for the last 15 places: argpartition alone picks arbitrary ones
    )
    scores[1, 100], scores[1, 2] = 2.0, np.nan
    items, values = best_k(scores, 20)
    assert items[0].tolist() == list(range(20))
    assert items[1].tolist() == [100, 0, 1, 3, 4, *range(5, 20)] and np.isfinite(values[1]).all()
    noise = np.random.default_rng(0).random((30, 400)).astype(np.float32)
    assert (best_k(noise, 10)[0] == np.argsort(-noise, axis=1, kind="stable")[:, :10]).all()


def test_rank_with_factors_only_ranks_items_the_model_knows():
    items = Factors(ids=np.array([2, 0]), vectors=np.array([[1.0], [5.0]], dtype=np.float32))
    best, scores = rank_with_factors(np.ones((1, 1), np.float32), items, pair_matrix([], [], (1, 3)), 3)
    assert best[0].tolist() == [0, 2, -1] and scores[0][:2].tolist() == [5.0, 1.0]


def test_popularity_counts_pairs_per_item():
    assert popularity(np.array([2, 2, 0]), 4).ravel().tolist() == [1.0, 0.0, 2.0, 0.0]


def test_gate_needs_a_better_ndcg_and_enough_users():
    assert gate(0.3, 0.2, 50, 10)[0]
    assert not gate(0.2, 0.2, 50, 10)[0]
    passed, verdict = gate(0.9, 0.1, 3, 10)
    assert not passed and "only 3 users" in verdict


def test_registry_versions_are_never_overwritten_and_promotion_is_logged(tmp_path):
    """The registry is a real MLflow store (SQLite under tmp_path): versions, the champion alias, rollback."""
    registry = ModelRegistry(tmp_path, "als")
    version = registry.new_version("0123abcd-ffff")
    staged = registry.staging(version)
    write_ids(staged / "user_ids.parquet", "user_id", ["b", "a"])
    record = RunRecord(
        {"rank": 64, "alpha": 2.0}, numeric(flatten({"als": {"ndcg@10": 0.25}})), {"why": "test"}
    )
    registry.publish(version, {"version": version, "gate": {"passed": True}}, record)
    assert registry.versions() == [version] and registry.current() is None  # registered, not promoted
    assert read_ids(registry.path(version) / "user_ids.parquet", "user_id") == ["b", "a"]
    assert registry.manifest(version) == {"version": version, "gate": {"passed": True}}
    assert not staged.exists()  # logged to MLflow, the staging folder is gone

    run = registry.client.get_run(registry.client.get_model_version("podrec-als", "1").run_id)
    assert run.data.params == {"rank": "64", "alpha": "2.0"}
    assert run.data.metrics == {"als.ndcg_at_10": 0.25}
    assert run.data.tags["why"] == "test" and run.data.tags["podrec_version"] == version
    assert run.info.run_name == version and run.info.status == "FINISHED"

    registry.staging(version)
    with pytest.raises(FileExistsError):
        registry.publish(version, {"version": version})
    with pytest.raises(ValueError):
        registry.promote("20990101T000000Z-nothere", "no such version")

    leftover = registry.staging("20000101T000000Z-crashed0")  # a run that died before publishing
    assert leftover.name.startswith(".") and "20000101T000000Z-crashed0" not in registry.versions()

    registry.promote(version, "test")
    assert registry.current() == version
    assert str(registry.client.get_model_version_by_alias("podrec-als", "champion").version) == "1"

    later = registry.new_version("4567cdef-ffff", now=datetime(2099, 1, 1, tzinfo=UTC))
    registry.staging(later)
    registry.publish(later, {"version": later})
    registry.promote(later, "newer")
    registry.promote(version, "rollback")  # rolling back is moving the alias
    assert registry.current() == version and registry.versions() == [version, later]
    assert [(p["version"], p["reason"], p["replaced"]) for p in registry.promotions()] == [
        (later, "newer", version),
        (version, "rollback", later),
    ]


def test_flatten_and_numeric_make_mlflow_params_and_metrics():
    assert flatten({"a": {"b": 1, "c": {"d": "x"}}, "e": 2}) == {"a.b": 1, "a.c.d": "x", "e": 2}
    assert numeric({"ndcg@10": 0.5, "n": 3, "ok": True, "name": "x", "bad": float("nan")}) == {
        "ndcg_at_10": 0.5,
        "n": 3.0,
    }


def test_the_folder_registry_mlflow_replaced_is_imported_once_with_its_champion(tmp_path):
    import json

    from podrec_assets.lib.models.registry import import_folder_versions

    old = tmp_path / "als"
    for version in ("20260101T000000Z-aaaaaaaa", "20260102T000000Z-bbbbbbbb"):
        (old / version).mkdir(parents=True)
        (old / version / "manifest.json").write_text(json.dumps({"version": version, "params": {"rank": 8}}))
        write_ids(old / version / "user_ids.parquet", "user_id", ["x"])
    (old / ".staging-20260103T000000Z-cccccccc").mkdir()  # a crashed run: never a version
    (old / "CURRENT").write_text("20260101T000000Z-aaaaaaaa\n")

    registry = ModelRegistry(tmp_path, "als")
    assert import_folder_versions(registry) == ["20260101T000000Z-aaaaaaaa", "20260102T000000Z-bbbbbbbb"]
    assert registry.current() == "20260101T000000Z-aaaaaaaa"  # what served before still serves
    assert read_ids(registry.path("20260102T000000Z-bbbbbbbb") / "user_ids.parquet", "user_id") == ["x"]
    assert registry.manifest("20260102T000000Z-bbbbbbbb")["params"] == {"rank": 8}
    assert import_folder_versions(registry) == [] and len(registry.versions()) == 2  # idempotent
