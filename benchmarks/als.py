"""The als_model asset's training run vs bare `ALS.fit`s on the same rows and parameters, and vs `implicit`.

    python benchmarks/als.py [--rounds 3]

Data: MovieLens-100k replayed as `rate` events over 50 days, ingested into raw_user_events and aggregated by the
daily_engagement asset (untimed). Timed: (a) a whole `als_model` materialization (read Delta, index ids, temporal
hold-out, the held-out fit, rank, RankingEvaluator for ALS and popularity, the serving refit on every pair, save a
version), (b) the two `ALS.fit`s alone on the exact rows the asset fits on (the held-out training rows, then every
pair), cached in Spark beforehand, (c) for reference, the `implicit` library's CPU ALS on the held-out rows. Prints
asset / bare fits (target <= 1.3: the asset adds little to the fits it needs) and asset / implicit.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import local_services, report

END = datetime(2026, 6, 30, 12, tzinfo=UTC)
DAYS = 50


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    with local_services(["spark"]) as home:
        import numpy as np
        from dagster import DagsterInstance, materialize
        from pyspark.sql import SparkSession
        from scipy import sparse

        from podrec_assets.defs.engagement.assets import daily_engagement
        from podrec_assets.defs.models.assets import AlsTrainingConfig, als_model
        from podrec_assets.defs.resources import DeltaLakeResource, ModelStoreResource, build_resources
        from podrec_assets.lib.datasets.movielens import load_ratings, replay_events
        from podrec_assets.lib.models.als import AlsParams, als_estimator
        from podrec_assets.lib.models.evaluation import temporal_holdout
        from podrec_assets.lib.models.factors import index_ids, training_rows
        from podrec_assets.lib.models.training import engagement_window, load_interactions
        from podrec_assets.names import DAILY_ENGAGEMENT
        from podrec_assets_tests.helpers import partition_range_tags, write_raw_events

        ratings = load_ratings()
        span = max(r.timestamp for r in ratings) - min(r.timestamp for r in ratings)
        events = list(replay_events(ratings, speed=span / timedelta(days=DAYS - 1).total_seconds(), now=END))
        delta = DeltaLakeResource(root=str(home / "delta"))
        write_raw_events(delta, events)
        spark_resource = build_resources(resolved=True)["pyspark"]
        resources = {
            "delta": delta,
            "pyspark": spark_resource,
            "models": ModelStoreResource(root=str(home / "models")),
        }
        tags = partition_range_tags((END - timedelta(days=DAYS)).date(), END.date())
        assert materialize([daily_engagement], tags=tags, resources=resources).success
        print(f"{len(events):,} rate events over {DAYS} days aggregated into daily_engagement")

        config = AlsTrainingConfig()
        params: AlsParams = config.params
        spark = SparkSession.builder.remote(os.environ["SPARK_REMOTE"]).getOrCreate()
        uri = delta.table_uri(DAILY_ENGAGEMENT)
        indexed, _ = index_ids(
            load_interactions(spark, uri, *engagement_window(uri, config.window_days), None)
        )
        split = temporal_holdout(indexed, config.holdout_fraction, config.min_user_pairs)
        training = training_rows(split[~split["held_out"]], params.negative_feedback)
        rows = spark.createDataFrame(training).cache()
        every_pair = spark.createDataFrame(training_rows(split, params.negative_feedback)).cache()
        print(
            f"training rows: {rows.count():,} held-out fit, {every_pair.count():,} serving refit (the rows the "
            f"asset fits on); params {params.model_dump()}"
        )

        # One instance for every run, as a deployment has (materialize() would otherwise build a throwaway one).
        instance = DagsterInstance.ephemeral()

        def asset_run() -> float:
            started = time.perf_counter()
            assert materialize([als_model], resources=resources, instance=instance).success
            return time.perf_counter() - started

        def bare_fit() -> float:
            started = time.perf_counter()
            als_estimator(params).fit(rows)
            als_estimator(params).fit(every_pair)
            return time.perf_counter() - started

        asset_run()  # warm-up, for both alike: the first Spark ML call in a server loads classes
        bare_fit()
        ours, bare = [], []
        for _ in range(args.rounds):
            bare.append(bare_fit())
            ours.append(asset_run())
        ratio = report(
            "als_model asset vs its two bare ALS.fits (s)",
            ours,
            bare,
            "s",
            target=1.3,
            higher_is_better=False,
        )

        try:
            from implicit.als import AlternatingLeastSquares
        except ImportError:
            print("implicit not installed: pip install implicit==0.7.3 for the reference figure")
            return
        positive = training[training["engagement"] > 0]
        matrix = sparse.csr_matrix((positive["engagement"].to_numpy(np.float32),
                                    (positive["user_idx"].to_numpy(), positive["episode_idx"].to_numpy())))  # fmt: skip
        timings = []
        for _ in range(args.rounds):
            model = AlternatingLeastSquares(factors=params.rank, regularization=params.reg_param, alpha=params.alpha,
                                            iterations=params.max_iter, random_state=params.seed)  # fmt: skip
            started = time.perf_counter()
            model.fit(matrix, show_progress=False)
            timings.append(time.perf_counter() - started)
        median = sorted(timings)[len(timings) // 2]
        print(f"implicit ALS (CPU, same rows and rank/iterations): {median:.2f}s; asset / implicit = "
              f"{sorted(ours)[len(ours) // 2] / median:.0f}x, bare Spark fit / implicit = "
              f"{sorted(bare)[len(bare) // 2] / median:.0f}x "
              f"(reference only; ratio vs bare ALS.fit {ratio:.2f})")  # fmt: skip


if __name__ == "__main__":
    os.environ.setdefault("PODREC_FIRST_DAY", "2026-01-01")
    main()
