"""Shared bits of the benchmarks: a private local stack when none is given, and ratio printing."""

from __future__ import annotations

import os
import socket
import statistics
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def local_services(roles: list[str]):
    """Use the services named by the environment, or start private ones on free ports under a temp PODREC_HOME."""
    from podrec_assets.settings import apply_local_defaults, external_services
    from podrec_assets.stack.local import LocalStack

    given = external_services()
    home = Path(tempfile.mkdtemp(prefix="podrec-bench-"))
    os.environ["PODREC_EXTERNAL_SERVICES"] = ",".join(given)
    os.environ["PODREC_HOME"] = str(home)
    for role in roles:
        os.environ[f"PODREC_LOCAL_{role.upper()}_PORT"] = str(_free_port())
    apply_local_defaults()
    stack = LocalStack(home)
    stack.up(roles, log=lambda m: None)
    try:
        yield home
    finally:
        stack.down(log=lambda m: None)


def best_of(rounds: int, measure: Callable[[], float]) -> list[float]:
    return [measure() for _ in range(rounds)]


def report(
    name: str, ours: list[float], baseline: list[float], unit: str, target: float, higher_is_better: bool
):
    a, b = statistics.median(ours), statistics.median(baseline)
    ratio = a / b
    ok = ratio >= target if higher_is_better else ratio <= target
    print(f"{name}: ours {a:,.0f} {unit} (runs {', '.join(f'{x:,.0f}' for x in ours)}), baseline {b:,.0f} {unit} "
          f"(runs {', '.join(f'{x:,.0f}' for x in baseline)})")  # fmt: skip
    print(
        f"ratio {ratio:.2f} (target {'>=' if higher_is_better else '<='} {target}) -> {'OK' if ok else 'MISSED'}"
    )
    return ratio
