"""The local stack manager and the production compose file."""

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from podrec_assets.tools.stack import LocalStack, ServiceError, _process_start_ticks
from podrec_assets_tests.conftest import free_port


def test_up_is_idempotent_and_status_reports_the_session_services(stack):
    before = {s.role: s for s in stack.status()}
    stack.up(["kafka", "mongo"], log=lambda _: None)
    after = {s.role: s for s in stack.status()}
    for role in ("kafka", "mongo"):
        if before[role].state == "external":
            continue
        assert before[role].state == after[role].state == "running"
        assert before[role].pid == after[role].pid  # nothing restarted


def test_busy_port_gives_a_clear_error(tmp_path, monkeypatch):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        monkeypatch.setenv("PODREC_LOCAL_KAFKA_PORT", str(squatter.getsockname()[1]))
        monkeypatch.setenv("PODREC_EXTERNAL_SERVICES", "")
        with pytest.raises(ServiceError, match="in use by a process podrec did not start"):
            LocalStack(tmp_path).up(["kafka"], log=lambda _: None)


def test_down_never_stops_a_process_it_did_not_start(tmp_path):
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        run = tmp_path / "run"
        run.mkdir()
        # A PID file naming a live process that started at another time (a reused PID) must be ignored.
        record = {
            "pid": stranger.pid,
            "start_ticks": _process_start_ticks(stranger.pid) + 1,
            "command": ["x"],
        }
        (run / "kafka.json").write_text(json.dumps(record))
        LocalStack(tmp_path).down(log=lambda _: None)
        time.sleep(0.2)
        assert stranger.poll() is None
        assert not (run / "kafka.json").exists()
    finally:
        stranger.kill()


def test_a_server_that_dies_at_start_is_reported(tmp_path, monkeypatch):
    monkeypatch.setenv("PODREC_EXTERNAL_SERVICES", "")
    monkeypatch.setenv("PODREC_LOCAL_MONGO_PORT", str(free_port()))
    from podrec_assets.tools import stack as local

    broken = local.ServiceSpec("mongo", "MONGO_URI", lambda p: f"mongodb://127.0.0.1:{p}",
                               lambda port, home: [sys.executable, "-c", "raise SystemExit(3)"],
                               local._mongo_healthy, 10)  # fmt: skip
    monkeypatch.setitem(local.SERVICES, "mongo", broken)
    with pytest.raises(ServiceError, match="exited"):
        LocalStack(tmp_path).up(["mongo"], log=lambda _: None)


def test_external_service_is_used_not_started(stack, tmp_path, monkeypatch):
    monkeypatch.setenv("PODREC_EXTERNAL_SERVICES", "kafka")
    external = LocalStack(tmp_path)
    statuses = {s.role: s for s in external.up(["kafka"], log=lambda _: None)}
    assert statuses["kafka"].state == "external"
    assert statuses["kafka"].address == os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    assert not (tmp_path / "run" / "kafka.json").exists()


def test_the_faces_start_beside_the_services_and_stop_with_them(stack, tmp_path, monkeypatch):
    """What `make dev` starts besides Dagster (`podrec services up --faces`) and `make services-down` stops."""
    import urllib.request

    monkeypatch.setenv("PODREC_EXTERNAL_SERVICES", "kafka,mongo")  # the session's
    ports = {"api": free_port(), "dashboard": free_port(), "mlflow": free_port()}
    for role, port in ports.items():
        monkeypatch.setenv(f"PODREC_LOCAL_{role.upper()}_PORT", str(port))
    local = LocalStack(tmp_path)
    try:
        statuses = {s.role: s for s in local.up(["api", "dashboard", "mlflow"], log=lambda _: None)}
        assert statuses["api"].state == statuses["dashboard"].state == statuses["mlflow"].state == "running"
        for path in (
            f"http://127.0.0.1:{ports['api']}/readyz",
            f"http://127.0.0.1:{ports['dashboard']}/_stcore/health",
            f"http://127.0.0.1:{ports['mlflow']}/api/2.0/mlflow/registered-models/search",
        ):
            with urllib.request.urlopen(path, timeout=10) as response:
                assert response.status == 200, path
        again = {s.role: s for s in local.up(["api"], log=lambda _: None)}
        assert again["api"].pid == statuses["api"].pid  # idempotent
    finally:
        local.down(log=lambda _: None)
    for port in ports.values():
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0  # nothing listens any more
    assert not list((tmp_path / "run").glob("*.json"))


def test_unreachable_external_service_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PODREC_EXTERNAL_SERVICES", "mongo")
    monkeypatch.setenv("MONGO_URI", f"mongodb://127.0.0.1:{free_port()}")
    with pytest.raises(ServiceError, match="unreachable"):
        LocalStack(tmp_path).up(["mongo"], log=lambda _: None)


def test_mongo_wire_server_answers(mongo):
    with mongo.client() as client:
        db = mongo.db(client)
        db.probe.insert_one({"_id": "a", "n": 1})
        assert db.probe.find_one({"_id": "a"})["n"] == 1
