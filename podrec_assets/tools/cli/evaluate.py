"""`podrec evaluate`: offline quality on MovieLens-100k (tools/experiments/)."""

from __future__ import annotations

from pathlib import Path

import click

from podrec_assets.tools.cli.common import fail, resources


def ranker_overrides(settings: tuple[str, ...]) -> dict:
    """`("cut_weight=10", "objective=binary")` → RankerConfig fields, each value parsed as JSON when it is JSON."""
    import json

    from podrec_assets.defs.models.ranker import RankerConfig

    fields: dict = {}
    for setting in settings:
        name, sep, raw = setting.partition("=")
        if not sep or name not in RankerConfig.model_fields:
            fail(
                f"--ranker {setting!r}: expected FIELD=VALUE with FIELD one of {sorted(RankerConfig.model_fields)}"
            )
        try:
            fields[name] = json.loads(raw)
        except json.JSONDecodeError:
            fields[name] = raw
    return fields


@click.command("evaluate")
@click.option("--dataset", type=click.Choice(["movielens-100k"]), required=True)
@click.option(
    "--protocol",
    type=click.Choice(["random", "temporal", "per-listener", "replay"]),
    default="random",
    show_default=True,
    help="random: recommenders' stratified split of the ratings (model code only); temporal: one global "
    "cut-off time, the past through the real assets, what MongoDB serves judged on the future; per-listener: "
    "each listener's newest 20% hidden, the rest through the real assets; replay: the temporal cut, then its "
    "future replayed a day at a time through ingestion and the near-real-time lists, each day judged on the "
    "lists held at its start",
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
    help="temporal/per-listener/replay: a `rate` event per rating, or the listening session "
    "it stands for (complete, like, skip and rate)",
)
@click.option("--split", type=click.Choice(["test", "validation", "validation-2", "validation-3", "rolling"]),
              default="test", show_default=True,
              help="validation splits lie inside the training part (all tuning may look at); "
              "temporal: -2 and -3 step the cut further back (rolling origin), and `rolling` runs all four cuts "
              "and pools their listeners")  # fmt: skip
@click.option("--retrain-every", type=int, default=7, show_default=True, metavar="DAYS",
              help="replay: run the nightly job (engagement, ALS, ranker, final lists, publish) every DAYS "
              "replayed days; 0: never (the near-real-time lists alone follow the listeners)")  # fmt: skip
@click.option("--rank", type=int, default=None)
@click.option("--reg-param", type=float, default=None)
@click.option("--alpha", type=float, default=None)
@click.option("--max-iter", type=int, default=None)
@click.option("--ranker", "ranker_settings", multiple=True, metavar="FIELD=VALUE",
              help="temporal/per-listener/replay: a ranker_model run-config field (RankerConfig), e.g. cut_weight=10; "
              "repeatable: how tuning runs on the validation splits are reproduced")  # fmt: skip
@click.option("--hybrid/--no-hybrid", default=True, show_default=True,
              help="also the hybrid (ALS + content) at several blend weights, "
              "and the cold-item experiment")  # fmt: skip
@click.option(
    "--weights", default="0.5,0.8,0.9,0.95,1.0", show_default=True, help="blend weights w to report"
)
def evaluate(dataset: str, protocol: str, workdir: Path | None, longtail: int, horizon_days: float | None,
             event_mix: str, split: str, retrain_every: int, rank, reg_param, alpha, max_iter,
             ranker_settings: tuple[str, ...], hybrid: bool, weights: str) -> None:  # fmt: skip
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

    if protocol == "replay" and (split == "rolling" or horizon_days):
        fail("--protocol replay runs one cut (test or a validation split) over its whole future")
    if split == "rolling" and (protocol != "temporal" or horizon_days):
        fail("--split rolling runs every temporal cut, each judged on its whole future: --protocol temporal, "
             "no --horizon-days")  # fmt: skip
    overrides = {"rank": rank, "reg_param": reg_param, "alpha": alpha, "max_iter": max_iter}
    base = RANDOM_PROTOCOL_PARAMS.model_dump() if protocol == "random" else {}
    params = AlsParams(**{**base, **{k: v for k, v in overrides.items() if v is not None}})
    try:
        LocalStack().up(["spark"] if protocol == "random" else ["kafka", "mongo", "spark"],
                        log=lambda m: click.echo(m))  # fmt: skip
    except ServiceError as error:
        fail(str(error))
    if protocol in ("temporal", "per-listener", "replay"):
        from podrec_assets.tools.experiments.temporal import evaluate_temporal

        als = {k: v for k, v in params.model_dump().items() if k in overrides and overrides[k] is not None}
        run_config = {"als_model": {"als_model": {"config": {"params": als}}}} if als else {}
        if ranker_settings:
            run_config["ranker_model"] = {"ranker_model": {"config": ranker_overrides(ranker_settings)}}
        if protocol == "replay":
            from podrec_assets.tools.experiments.replay import evaluate_replay

            replayed = evaluate_replay(
                split, workdir, longtail, click.echo, run_config, event_mix, retrain_every
            )
            for line in replayed.lines():
                click.echo(line)
            return
        if split == "rolling":
            from podrec_assets.tools.experiments.temporal import evaluate_rolling

            rolling = evaluate_rolling(
                workdir, longtail, log=click.echo, run_config=run_config, events=event_mix
            )
            for line in rolling.lines():
                click.echo(line)
            return
        report = evaluate_temporal(split, protocol, horizon_days, workdir, longtail, log=click.echo,
                                   run_config=run_config, events=event_mix)  # fmt: skip
        for line in report.lines():
            click.echo(line)
        return
    spark = SparkSession.builder.remote(resources()["pyspark"].spark_config["spark.remote"]).getOrCreate()
    click.echo(f"ALS parameters: {params.model_dump()}")
    for line in report_lines(evaluate_movielens(spark, params, split), split):
        click.echo(line)
    if hybrid:
        from podrec_assets.tools.experiments.movielens_hybrid import evaluate_hybrid
        from podrec_assets.tools.experiments.movielens_hybrid import report_lines as hybrid_lines

        blend = [float(w) for w in weights.split(",")]
        for line in hybrid_lines(evaluate_hybrid(spark, params, blend, split, cold_items=split == "test")):
            click.echo(line)
