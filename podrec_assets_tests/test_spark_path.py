"""Above PODREC_SPARK_PATH_MIN_LISTENERS, ALS top-N and the final lists are made in Spark (mapInArrow over blocks of
listeners) instead of on the driver: on the serving graph's listeners, cut into blocks of 16 listeners over several
tasks, both paths give the same lists (same episodes, same order, scores within 1e-6, the same reasons), and the
assets record which path ran."""

from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pytest
from dagster import materialize

from podrec_assets.defs.models.assets import als_recommendations
from podrec_assets.defs.resources import DeltaLakeResource, ModelStoreResource
from podrec_assets.defs.serving.assets import final_recommendations, serving_context
from podrec_assets.defs.serving.checks import final_recommendations_checks
from podrec_assets.lib.lakehouse import delta_version, read_table
from podrec_assets.lib.models.recommend import recommend_all_users
from podrec_assets.lib.models.recommend_spark import recommend_all_users_spark
from podrec_assets.lib.ranking.ranker import Ranker
from podrec_assets.lib.serving.lists_spark import list_rows_spark
from podrec_assets.lib.serving.recommendations import list_rows
from podrec_assets.names import DAILY_ENGAGEMENT, RAW_USER_EVENTS

NOW = datetime(2026, 4, 11, tzinfo=UTC)
BLOCK = 16  # listeners per Spark task: the serving graph's 100 listeners go through 7 tasks


def assert_same_lists(driver: pa.Table, spark: pa.Table) -> None:
    """Same schema, the same rows in the same order; scores equal within 1e-6."""
    assert driver.schema == spark.schema
    assert driver.num_rows == spark.num_rows > 0
    for name in driver.column_names:
        if name == "score":
            np.testing.assert_allclose(
                spark.column(name).to_numpy(), driver.column(name).to_numpy(), atol=1e-6
            )
        else:
            assert spark.column(name).to_pylist() == driver.column(name).to_pylist(), name


@pytest.fixture
def stores(serving_graph):
    root, _ = serving_graph  # read only: nothing here writes
    return DeltaLakeResource(root=str(root / "delta")), ModelStoreResource(root=str(root / "models"))


def test_als_top_n_is_the_same_on_the_driver_and_in_spark(spark, stores):
    delta, models = stores
    registry = models.registry("als")
    version = registry.current()
    uri = delta.table_uri(DAILY_ENGAGEMENT)
    engaged = read_table(uri, ["user_id", "episode_id"])
    driver = recommend_all_users(registry.path(version), version, engaged, 20, NOW)
    in_spark = recommend_all_users_spark(spark, registry.path(version), version, uri, 20, NOW,
                                         listeners_per_task=BLOCK)  # fmt: skip
    assert_same_lists(driver, in_spark)
    assert len(set(driver.column("user_id").to_pylist())) > 3 * BLOCK


@pytest.mark.parametrize("strategy", ["ranker", "als", "hybrid"])
def test_final_lists_are_the_same_on_the_driver_and_in_spark(spark, stores, strategy):
    delta, models = stores
    ctx, everyone = serving_context(delta, models, 20, NOW, delta_version(delta.table_uri(RAW_USER_EVENTS)))
    ranker = ctx.policy.ranker or Ranker.load(
        models.registry("ranker").path(models.registry("ranker").versions()[-1])
    )
    ctx = replace(ctx, policy=replace(ctx.policy, strategy=strategy, ranker=ranker))
    users = sorted(set(everyone["user_id"]))
    driver = list_rows(ctx, everyone, users, NOW)
    in_spark = list_rows_spark(spark, ctx, everyone, users, NOW, listeners_per_task=BLOCK)
    assert_same_lists(driver, in_spark)
    assert len(users) > 3 * BLOCK


@pytest.fixture
def resources(delta, mongo, pyspark_resource, models):
    return {"delta": delta, "mongo": mongo, "pyspark": pyspark_resource, "models": models}


@pytest.mark.parametrize("threshold, path", [("0", "spark"), ("1000000", "driver")])
def test_the_assets_take_the_path_the_threshold_chooses_and_record_it(
    resources, graph, monkeypatch, threshold, path
):
    monkeypatch.setenv("PODREC_SPARK_PATH_MIN_LISTENERS", threshold)
    result = materialize([als_recommendations, final_recommendations, *final_recommendations_checks],
                         resources=resources, instance=graph)  # fmt: skip
    assert result.success
    for asset in (als_recommendations, final_recommendations):
        metadata = result.asset_materializations_for_node(asset.op.name)[0].metadata
        assert metadata["path"].value == path
        assert metadata["spark_path_min_listeners"].value == int(threshold)


@pytest.mark.timeout(120)  # an eager resource would sit in the Spark client's retries for minutes
def test_the_spark_resource_connects_only_when_a_path_needs_it(spark_remote, spark):
    # `spark`: the session it shares, stopped at the session's end (an unstopped client retries the stopped server
    # for minutes at exit)
    from dagster import asset

    from podrec_assets.defs.resources import LazyPySparkResource
    from podrec_assets_tests.conftest import free_port

    @asset
    def driver_path(pyspark: LazyPySparkResource) -> int:
        return 1

    @asset
    def spark_path(pyspark: LazyPySparkResource) -> int:
        return pyspark.spark_session.range(5).count()

    down = LazyPySparkResource(spark_config={"spark.remote": f"sc://127.0.0.1:{free_port()}"})
    # nothing asked for Spark: no wait on it
    assert materialize([driver_path], resources={"pyspark": down}).success
    up = LazyPySparkResource(spark_config={"spark.remote": spark_remote})
    assert materialize([spark_path], resources={"pyspark": up}).output_for_node("spark_path") == 5
