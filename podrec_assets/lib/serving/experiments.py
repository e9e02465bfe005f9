"""A/B: which strategy a listener is served, by a stable hash of their id into weighted arms.

`PODREC_AB_ARMS` names the arms as `arm:strategy:weight,...`, e.g. `main:served:80,als:als:10,holdout:popularity:10`
(the default is everyone on `served`). A listener's bucket is a uniform number in [0, 1) from SHA-256 of the salt and
their id: the same listener always lands in the same arm (until the salt or the weights change), and listeners spread
over the arms in proportion to the weights. Strategies the API can serve:

- `served`: the listener's document in `user_recommendations` (what the serving policy chose: the ranker when it
  passed its gate, otherwise ALS alone or the hybrid), refreshed within a minute of their events;
- `als`: ALS alone (`als_top_n`, rebuilt nightly);
- `popularity`: the list for new listeners (the week's most liked), a hold-out that shows what no personalisation
  achieves.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

STRATEGIES = ("served", "als", "popularity")


@dataclass(frozen=True)
class Arm:
    name: str
    strategy: str
    weight: float


DEFAULT_ARMS = (Arm("main", "served", 1.0),)


def parse_arms(spec: str | None) -> tuple[Arm, ...]:
    """`arm:strategy:weight,...` → arms; empty → DEFAULT_ARMS. Raises ValueError on anything else."""
    if not spec or not spec.strip():
        return DEFAULT_ARMS
    arms = []
    for part in spec.split(","):
        fields = [f.strip() for f in part.split(":")]
        if len(fields) != 3:
            raise ValueError(f"arm {part!r}: expected name:strategy:weight")
        name, strategy, weight = fields
        if strategy not in STRATEGIES:
            raise ValueError(f"arm {name!r}: strategy {strategy!r} is not one of {', '.join(STRATEGIES)}")
        if not name.isidentifier():
            raise ValueError(f"arm name {name!r} must be a plain word")
        if float(weight) <= 0:
            raise ValueError(f"arm {name!r}: weight must be positive")
        arms.append(Arm(name, strategy, float(weight)))
    if len({a.name for a in arms}) != len(arms):
        raise ValueError("arm names must be unique")
    return tuple(arms)


def bucket(user_id: str, salt: str = "") -> float:
    """A uniform number in [0, 1), the same for the same (salt, user_id) on every machine and run."""
    digest = hashlib.sha256(f"{salt}\x00{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign(user_id: str, arms: tuple[Arm, ...], salt: str = "") -> Arm:
    """The arm whose share of the weights holds the listener's bucket."""
    point, total, edge = bucket(user_id, salt), sum(a.weight for a in arms), 0.0
    for arm in arms:
        edge += arm.weight / total
        if point < edge:
            return arm
    return arms[-1]  # rounding at the very top
