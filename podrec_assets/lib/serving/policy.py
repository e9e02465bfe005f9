"""Which strategy serves (ranking/strategies.py), decided from the model registries, in one place.

- The champion ranker serves if it was trained and judged against the current ALS version (its gate compared it
  with that model's ALS-alone and hybrid lists).
- Otherwise, if a ranker was judged against the current ALS version and failed its gate, the better of ALS alone
  and the hybrid on that judgement serves (what the gate recorded as its `policy`).
- Otherwise (no ranker judged against this ALS version yet) ALS alone serves; without any promoted ALS model, the
  hybrid's content and popularity evidence serve.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from podrec_assets.lib.models.registry import ModelRegistry
from podrec_assets.lib.ranking.ranker import Ranker

ALS, RANKER = "als", "ranker"


@dataclass(frozen=True)
class Policy:
    strategy: str  # ranker | als | hybrid
    als_version: str  # "" when no ALS model is promoted
    ranker_version: str  # the ranker that serves, or whose judgement chose the fallback ("" if none)
    why: str
    ranker: Ranker | None = None


def serving_policy(models_root: str | Path, tracking_uri: str | None = None) -> Policy:
    """Decided from the `champion` aliases of the registries at `tracking_uri` (see models/registry.py)."""
    als = ModelRegistry(Path(models_root), ALS, tracking_uri)
    rankers = ModelRegistry(Path(models_root), RANKER, tracking_uri)
    als_version = als.current() or ""
    if not als_version:
        return Policy("hybrid", "", "", "no ALS model is promoted: content similarity and popularity serve")
    current = rankers.current()
    if current and rankers.manifest(current).get("als_version") == als_version:
        return Policy(
            RANKER,
            als_version,
            current,
            f"ranker {current} passed its gate against ALS {als_version}",
            Ranker.load(rankers.path(current)),
        )
    judged = [v for v in rankers.versions() if rankers.manifest(v).get("als_version") == als_version]
    if judged:
        newest = judged[-1]
        gate = rankers.manifest(newest)["gate"]
        ndcg = {name: gate["metrics"][name][f"ndcg@{gate['k']}"] for name in ("als", "hybrid")}
        fallback = max(ndcg, key=lambda name: ndcg[name])  # also when a passing ranker was demoted by hand
        return Policy(fallback, als_version, newest, f"ranker {newest} does not serve: {gate['verdict']}")
    return Policy(
        ALS, als_version, "", f"no ranker has been judged against ALS {als_version} yet: ALS alone serves"
    )
