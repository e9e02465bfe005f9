"""Shared bits of the benchmarks: a private local stack when none is given, and ratio printing."""

from __future__ import annotations

import os
import resource
import socket
import statistics
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def local_services(roles: list[str]):
    """Use the services named by the environment, or start private ones on free ports under a temp PODREC_HOME."""
    from podrec_assets.lib.settings import apply_local_defaults, external_services
    from podrec_assets.tools.stack import LocalStack

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
        stop_spark_connect_session()
        stack.down(log=lambda m: None)


def stop_spark_connect_session() -> None:
    """Close this process's Spark Connect session while its server still runs: a client left open keeps retrying a
    stopped server at interpreter exit (measured: the process hung for minutes)."""
    import sys

    if "pyspark.sql.connect.session" in sys.modules:
        from pyspark.sql.connect.session import SparkSession

        session = SparkSession.getDefaultSession() if hasattr(SparkSession, "getDefaultSession") else None
        session = session or SparkSession._get_default_session()
        if session is not None:
            session.stop()


def cpu_seconds() -> float:
    """CPU time of this process and of its children that have ended and been reaped (a commit worker, say)."""
    from podrec_assets.lib.ingestion.commit_worker import REAPER_THREAD

    for (
        thread
    ) in threading.enumerate():  # commit workers are reaped in the background once their work is done
        if thread.name == REAPER_THREAD:
            thread.join()
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def machine_cpu_seconds() -> float | None:
    """CPU time every process on the machine has used since boot (Linux /proc/stat), None where unknown."""
    try:
        with open("/proc/stat") as stat:
            ticks = [int(t) for t in stat.readline().split()[1:]]
    except OSError:
        return None
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait


def report(
    name: str, ours: list[float], baseline: list[float], unit: str, target: float, higher_is_better: bool
):
    a, b = statistics.median(ours), statistics.median(baseline)
    ratio = a / b
    ok = ratio >= target if higher_is_better else ratio <= target

    def fmt(x: float) -> str:
        return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.2f}"

    print(f"{name}: ours {fmt(a)} {unit} (runs {', '.join(map(fmt, ours))}), baseline {fmt(b)} {unit} "
          f"(runs {', '.join(map(fmt, baseline))})")  # fmt: skip
    print(
        f"ratio {ratio:.2f} (target {'>=' if higher_is_better else '<='} {target}) -> {'OK' if ok else 'MISSED'}"
    )
    return ratio
