"""RANKING: a LightGBM learning-to-rank model (XE-NDCG) over the candidates' features (candidates.py), its
calibrated score, and the reason each recommendation is given.

- The model orders one listener's candidates (a query) so that the episodes they will like come first. Labels: 1
  if the listener later engaged positively, else 0. The objective is LightGBM's `rank_xendcg` (XE-NDCG, Bruch et
  al. 2020: a listwise softmax cross-entropy that bounds nDCG), not LambdaRank: with a few hundred queries of
  one or two noisy positives each it generalized better on every temporal validation cut (docs/ranking.md).
- Its raw output is a margin with no unit. The served `score` is that margin turned into a probability by a
  logistic (Platt) fit on held-out listeners: "how likely this listener is to like it", in [0, 1].
- The reason follows the features that produced the score: LightGBM splits each prediction into per-feature
  contributions (SHAP values, `pred_contrib`); the group with the largest positive share names the reason.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from podrec_assets.lib.ranking.candidates import FEATURES

if TYPE_CHECKING:
    import lightgbm as lgb

# lightgbm and scikit-learn are imported where used: together they cost ~0.7 s, which every Dagster run (an
# ingestion too) would otherwise pay while loading the code location.

MODEL_FILE, META_FILE = "ranker.txt", "ranker.json"

# Which features speak for which reason (user-level features shift a whole list and name no reason).
REASON_GROUPS = {
    "als": ("als_score", "als_rank", "als_known", "als_latest", "from_als"),
    "content": (
        "content_max",
        "content_best",
        "content_mean",
        "content_latest",
        "category_affinity",
        "from_content",
    ),
    "show": ("show_affinity",),
    "popular": (
        "listeners_log",
        "recent_7d_log",
        "recent_30d_log",
        "trend",
        "mean_engagement",
        "negative_share",
        "from_popular",
    ),
    "new": ("episode_age_days", "published_age_days", "from_new"),
}


@dataclass(frozen=True)
class RankerParams:
    """LightGBM settings (kept small and regularized: a query is one listener, and there are few of them)."""

    # 300 trees at 0.025 over 150 at 0.05: better on the temporal validation cuts for each of three seeds, and
    # less seed-dependent (docs/quality.md)
    n_estimators: int = 300
    learning_rate: float = 0.025
    num_leaves: int = 15
    min_child_samples: int = 50
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    seed: int = 42
    objective: str = "rank_xendcg"  # or lambdarank (pairwise), binary (pointwise: will the listener like it)


class Ranker:
    def __init__(self, booster: lgb.Booster, slope: float = 1.0, intercept: float = 0.0):
        self.booster = booster
        self.slope, self.intercept = slope, intercept

    @classmethod
    def train(
        cls,
        features: np.ndarray,
        labels: np.ndarray,
        groups: np.ndarray,
        params: RankerParams = RankerParams(),
        weights: np.ndarray | None = None,
    ) -> Ranker:
        """`groups`: the number of consecutive rows of each query (rows sorted by query). `weights`: per row, the
        same within a query (LightGBM sums them into a query weight)."""
        import lightgbm as lgb

        model = lgb.LGBMRanker(
            objective=params.objective,
            n_estimators=params.n_estimators,
            learning_rate=params.learning_rate,
            num_leaves=params.num_leaves,
            min_child_samples=params.min_child_samples,
            subsample=params.subsample,
            subsample_freq=1,
            colsample_bytree=params.colsample_bytree,
            random_state=params.seed,
            deterministic=True,
            force_row_wise=True,
            n_jobs=2,
            verbose=-1,
        )
        model.fit(features, labels, group=groups, sample_weight=weights, feature_name=FEATURES)
        return cls(model.booster_)

    def _predict(self, features: np.ndarray, pred_contrib: bool = False) -> np.ndarray:
        # raw_score: the margin for every objective (a pointwise `binary` model would otherwise give probabilities)
        out = self.booster.predict(features, raw_score=True, pred_contrib=pred_contrib, num_threads=2)
        # A dense matrix in gives a dense array out (sparse results come only of sparse input).
        assert isinstance(out, np.ndarray), type(out)
        return out

    def margin(self, features: np.ndarray) -> np.ndarray:
        return self._predict(features).astype(np.float64)

    def calibrate(self, margins: np.ndarray, labels: np.ndarray) -> None:
        """Platt scaling on held-out rows: score = 1 / (1 + exp(−(slope · margin + intercept)))."""
        if len(np.unique(labels)) < 2:
            return
        from sklearn.linear_model import LogisticRegression

        fit = LogisticRegression(C=1e6).fit(margins.reshape(-1, 1), labels)
        self.slope, self.intercept = float(fit.coef_[0, 0]), float(fit.intercept_[0])

    def score(self, margins: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(self.slope * margins + self.intercept)))

    def reasons(self, features: np.ndarray) -> np.ndarray:
        """Per row, the REASON_GROUPS name whose features contributed most to the score (object array)."""
        contributions = self._predict(features, pred_contrib=True)[:, : len(FEATURES)]
        names = list(REASON_GROUPS)
        totals = np.stack(
            [contributions[:, [FEATURES.index(f) for f in REASON_GROUPS[g]]].sum(axis=1) for g in names],
            axis=1,
        )
        return np.asarray(names, dtype=object)[np.argmax(totals, axis=1)]

    def importance(self) -> dict[str, float]:
        gains = self.booster.feature_importance("gain")
        total = gains.sum() or 1.0
        return {name: round(float(g / total), 4) for name, g in zip(FEATURES, gains, strict=True)}

    def save(self, folder: Path, extra: dict | None = None) -> None:
        self.booster.save_model(str(folder / MODEL_FILE))
        meta = {"features": FEATURES, "slope": self.slope, "intercept": self.intercept, **(extra or {})}
        (folder / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True, default=str))

    @classmethod
    def load(cls, folder: Path) -> Ranker:
        import lightgbm as lgb

        meta = json.loads((folder / META_FILE).read_text())
        if meta["features"] != FEATURES:
            raise ValueError(f"ranker in {folder} was trained on other features: {meta['features']}")
        return cls(lgb.Booster(model_file=str(folder / MODEL_FILE)), meta["slope"], meta["intercept"])
