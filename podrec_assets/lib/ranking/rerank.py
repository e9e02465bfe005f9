"""Re-ranking rules applied to a ranked list after the ranker, each one measured in `podrec evaluate` (docs/ranking.md).

`limit_per_show`: at most `per_show` episodes of one show among the first `top` places. A listener who loves one
show would otherwise get ten of its episodes, which they will find on the show's page anyway; the rule keeps the
order otherwise and moves the surplus just below the `top` places (nothing is dropped).
"""

from __future__ import annotations

import numpy as np


def limit_per_show(items: np.ndarray, show_codes: np.ndarray, per_show: int, top: int = 10) -> np.ndarray:
    """`items`: one listener's list, best first (catalog indices, −1 = empty slot at the end). Returns the positions
    of `items` in their new order (a permutation), so scores and reasons can follow."""
    order = np.arange(len(items))
    if per_show <= 0 or len(items) == 0:
        return order
    kept, moved, counts = [], [], {}
    for position, item in enumerate(items):
        show = int(show_codes[item]) if item >= 0 else -1
        if len(kept) < top and show >= 0 and counts.get(show, 0) >= per_show:
            moved.append(position)
            continue
        if len(kept) < top and show >= 0:
            counts[show] = counts.get(show, 0) + 1
        kept.append(position)
    # the surplus goes right after the protected places, ahead of the rest of the list
    head, tail = kept[:top], kept[top:]
    return np.asarray(head + moved + tail, dtype=np.int64)
