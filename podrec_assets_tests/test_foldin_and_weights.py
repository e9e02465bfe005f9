"""The two pieces the near-real-time lists stand on, against Spark itself: a fold-in reproduces Spark's own ALS user
solve, and the driver-side event weights equal the Spark column that builds daily_engagement."""

import random

import numpy as np
import pandas as pd
import pyarrow as pa

from podrec_assets.lib.engagement.daily import weight_column, with_replaced_ratings
from podrec_assets.lib.engagement.weights import EventWeights
from podrec_assets.lib.models.als import AlsParams, fit_als, model_factors
from podrec_assets.lib.models.factors import index_ids, training_rows
from podrec_assets.lib.models.foldin import fold_in, gramian


def test_fold_in_equals_sparks_own_user_solve(spark):
    """Spark's implicit ALS updates users last in every iteration, from the final episode factors: folding in each
    training user against those factors must give back their Spark vector (negative pairs included)."""
    rng = np.random.default_rng(3)
    rows = []
    for u in range(40):
        for e in rng.choice(60, size=rng.integers(3, 15), replace=False):
            rows.append((f"u{u:02d}", f"e{e:02d}", float(rng.choice([-2.0, -1.0, 0.5, 1.0, 2.0, 5.0]))))
    pairs = pd.DataFrame(rows, columns=["user_id", "episode_id", "engagement"])
    indexed, ids = index_ids(pairs)
    params = AlsParams(rank=8, max_iter=6, reg_param=0.1, alpha=2.0, num_blocks=1)
    train = training_rows(indexed, negative_feedback=True)
    users, items = model_factors(fit_als(spark.createDataFrame(train), params))

    item_vectors = items.dense(len(ids.episode_ids))
    vectors, solved = fold_in(
        item_vectors,
        train["user_idx"].to_numpy(),
        train["episode_idx"].to_numpy(),
        train["engagement"].to_numpy(),
        len(ids.user_ids),
        params.reg_param,
        params.alpha,
        yty=gramian(items.vectors),
    )
    assert set(np.flatnonzero(solved)) == set(users.ids)  # users without a positive pair have no vector
    np.testing.assert_allclose(vectors[users.ids], users.vectors, rtol=2e-3, atol=2e-4)
    # and the fold-in is not trivially close to anything: another user's vector is far from it
    assert np.abs(vectors[users.ids[0]] - users.vectors[1]).max() > 1e-2


def test_driver_weights_equal_the_spark_column(spark):
    weights = EventWeights()
    rng = random.Random(9)
    kinds = ["like", "unlike", "complete", "rate", "pause", "abandon", "skip", "play", "search_click", "view",
             "resume", "search", "login"]  # fmt: skip
    n = 400
    start = pd.Timestamp("2025-05-01", tz="UTC")
    table = pa.table(
        {"event_id": [f"e{i:03d}" for i in range(n)],
         "user_id": [rng.choice(["u1", "u2", "u3"]) for _ in range(n)],
         "episode_id": [rng.choice(["a", "b", "c", "d"]) for _ in range(n)],
         "event_type": [rng.choice(kinds) for _ in range(n)],
         "rating": pa.array([rng.choice([None, 1, 2, 3, 4, 5]) for _ in range(n)], pa.int8()),
         "played_pct": pa.array([rng.choice([None, 0.0, 0.3, 0.77, 1.0]) for _ in range(n)], pa.float64()),
         # few distinct times: ratings of one pair at the same time are ordered by event_id
         "ts": pa.array([start + pd.Timedelta(hours=rng.randrange(40)) for _ in range(n)],
                        pa.timestamp("us", tz="UTC"))}
    )  # fmt: skip
    from_spark = (
        with_replaced_ratings(spark.createDataFrame(table.to_pandas().astype({"rating": "float64"})))
        .withColumn("w", weight_column(weights))
        .orderBy("event_id")
        .toPandas()["w"]
        .fillna(0.0)  # a rate without rating: Spark's null adds nothing to a sum
        .to_numpy()
    )
    driver = weights.of_events(table)
    np.testing.assert_allclose(driver, from_spark, atol=1e-12)
    rated = (table.column("event_type").to_numpy(zero_copy_only=False) == "rate") & ~np.isnan(
        table.column("rating").to_numpy(zero_copy_only=False).astype(float)
    )
    assert (np.abs(driver[rated]) > 2).any()  # some ratings replaced another (a first one is within ±2)
