"""End to end, what `make dev` runs: `dg dev` (webserver + daemon) over the project, against the real local
services, driven only from the outside: its GraphQL API and its UI in a real headless browser.

1. Every sensor and schedule declared RUNNING in `definitions.py` is RUNNING in the instance, and the daemon ticks
   each sensor without an error.
2. `episodes` (the catalog: the shipped sample, no Spark) materializes through `launchPipelineExecution`, as the UI's
   "Materialize" button does, and its asset checks run in that run and pass.
3. The UI renders the global asset graph and the `episodes` page with the project's asset names in them.

One `dagster dev` serves the whole module, with its own DAGSTER_HOME (the repository's dagster.yaml), Delta root,
model root, MongoDB database and events topic; its process group is stopped (SIGTERM, then SIGKILL) at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
DG = Path(sys.executable).parent / "dg"
CHROMIUM = os.environ.get("PODREC_CHROMIUM", "/usr/bin/chromium")
ASSET = "episodes"
READY_TIMEOUT_S = 300  # imports + code server + daemons on a 2-core machine
RUN_TIMEOUT_S = 300
UI_TIMEOUT_S = 120  # the UI is a heavy JS app; its first load waits for the code location too
TERMINAL_RUN_STATUSES = {"SUCCESS", "FAILURE", "CANCELED"}
DONE_TICK_STATUSES = {"SUCCESS", "SKIPPED", "FAILURE"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _poll(what: str, probe: Callable[[], object], timeout: float, interval: float = 1.0):
    """Call `probe` until it returns something truthy (returned) or `timeout` s pass (fails with the last error)."""
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            result = probe()
        except (OSError, ValueError, KeyError, TypeError) as error:  # not up yet, or a half-formed answer
            result, last = None, error
        if result:
            return result
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what} (last error: {last!r})")


@dataclass
class DagsterDev:
    port: int
    process: subprocess.Popen
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        if self.process.poll() is not None:
            pytest.fail(f"dagster dev exited with {self.process.returncode}:\n{self.log_tail()}")
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(f"{self.url}/graphql", body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.load(response)
        if answer.get("errors"):
            raise AssertionError(f"GraphQL errors: {answer['errors']}")
        return answer["data"]


def _child_env(state: Path, dagster_home: Path) -> dict[str, str]:
    """The test session's environment (the `stack` fixture's services: KAFKA_BOOTSTRAP_SERVERS, MONGO_URI,
    SPARK_REMOTE, PODREC_HOME, ...) plus the Makefile's exports and this module's own state."""
    suffix = uuid.uuid4().hex[:8]
    env = dict(os.environ)
    env.update(
        DAGSTER_HOME=str(dagster_home),
        # the code server, the run workers and the daemon import podrec from this checkout
        PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p),
        PODREC_DELTA_ROOT=str(state / "delta"),
        PODREC_MODEL_ROOT=str(state / "models"),
        MONGO_DB=f"e2e_{suffix}",
        PODREC_EVENTS_TOPIC=f"e2e-{suffix}",
        PODREC_CATALOG_SOURCES="sample",  # never the network
        SPARK_LOCAL_IP="127.0.0.1",
        HF_HUB_OFFLINE="1",
    )
    return env


@contextmanager
def _sigint_not_ignored():
    """`dagster dev` maps SIGTERM onto its SIGINT handler, and Python installs no SIGINT handler when it starts with
    SIGINT ignored (a background job of a non-interactive shell): then it ignores SIGTERM too (ENVIRONMENT.md). An
    ignored signal stays ignored across exec, a handled one is reset to the default: handle it while starting."""
    previous = signal.getsignal(signal.SIGINT)
    if previous is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        if previous is signal.SIG_IGN:
            signal.signal(signal.SIGINT, previous)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:  # only zombies awaiting their reaper are left
        return True


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM to `dagster dev` (it shuts its webserver and daemon down through their pipes), SIGKILL to whatever
    is left of its process group after 60 s (code servers, run workers), then wait until the group is empty."""
    pgid = process.pid  # start_new_session: the leader's pid is the group's id
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=60)
    with suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    process.wait(timeout=30)
    deadline = time.monotonic() + 30
    while _group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.2)


def _location(dev: DagsterDev) -> dict | None:
    """The workspace's code location once loaded (fails fast on a load error), else None."""
    data = dev.graphql(
        """{ workspaceOrError { __typename
               ... on Workspace { locationEntries { name loadStatus
                   locationOrLoadError { __typename ... on PythonError { message stack } } } }
               ... on PythonError { message } } }"""
    )
    entries = data["workspaceOrError"]["locationEntries"]
    for entry in entries:
        error = entry["locationOrLoadError"]
        if error and error["__typename"] == "PythonError":
            pytest.fail(f"code location {entry['name']} failed to load: {error['message']}")
    loaded = [e for e in entries if e["loadStatus"] == "LOADED" and e["locationOrLoadError"]]
    return loaded[0] if loaded else None


def _daemons_healthy(dev: DagsterDev) -> bool:
    statuses = dev.graphql(
        "{ instance { daemonHealth { allDaemonStatuses { daemonType required healthy } } } }"
    )
    required = [s for s in statuses["instance"]["daemonHealth"]["allDaemonStatuses"] if s["required"]]
    return bool(required) and all(s["healthy"] for s in required)


@pytest.fixture(scope="module")
def dagster_dev(stack, tmp_path_factory):
    """`dg dev` as `make dev` starts it (the project's [tool.dg]), on a free port, ready to use."""
    state = tmp_path_factory.mktemp("dagster-dev")
    dagster_home = state / "dagster_home"
    dagster_home.mkdir()
    shutil.copy(REPO / "dagster.yaml", dagster_home / "dagster.yaml")
    env = _child_env(state, dagster_home)
    port = _free_port()
    log = state / "dagster-dev.log"
    # as the Makefile's `dev` target (`dg dev --host 127.0.0.1 --port 3000`), on a free port
    command = [str(DG), "dev", "--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as out, _sigint_not_ignored():
        process = subprocess.Popen(
            command,
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    dev = DagsterDev(port, process, log)
    try:
        _poll("the webserver and the code location", lambda: _location(dev), READY_TIMEOUT_S)
        _poll("every required daemon to report healthy", lambda: _daemons_healthy(dev), READY_TIMEOUT_S)
        yield dev
    finally:
        _stop(process)
        _drop_database(env)
        assert not _group_alive(process.pid), f"processes of dagster dev's group survived:\n{dev.log_tail()}"


def _drop_database(env: dict[str, str]) -> None:
    from pymongo import MongoClient

    client = MongoClient(env["MONGO_URI"], serverSelectionTimeoutMS=5_000)
    try:
        client.drop_database(env["MONGO_DB"])
    finally:
        client.close()


REPOSITORIES = """{ repositoriesOrError { __typename
    ... on RepositoryConnection { nodes { name location { name }
        sensors { name sensorState { status ticks(limit: 5) { status skipReason error { message } } } }
        schedules { name scheduleState { status } } } }
    ... on PythonError { message } } }"""


def _repository(dev: DagsterDev) -> dict:
    (repository,) = dev.graphql(REPOSITORIES)["repositoriesOrError"]["nodes"]
    return repository


def _expected_running() -> tuple[set[str], set[str]]:
    """Sensors and schedules `definitions.py` declares RUNNING by default (they run under `make dev`, no click)."""
    from dagster import DefaultScheduleStatus, DefaultSensorStatus

    from podrec_assets.definitions import defs

    sensors = {
        s.name
        for s in defs.sensors
        if defs.resolve_sensor_def(s.name).default_status == DefaultSensorStatus.RUNNING
    }
    schedules = {
        s.name
        for s in defs.schedules
        if defs.resolve_schedule_def(s.name).default_status == DefaultScheduleStatus.RUNNING
    }
    return sensors, schedules


def test_sensors_and_schedules_run(dagster_dev):
    expected_sensors, expected_schedules = _expected_running()
    assert expected_sensors == {
        "user_events_kafka_sensor", "late_events_sensor", "automation_sensor", "drift_retrain_sensor"
    }  # fmt: skip
    assert expected_schedules == {
        "daily_engagement_schedule",
        "als_training_schedule",
        "episode_catalog_schedule",
    }

    repository = _repository(dagster_dev)
    dg_project = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["dg"]["project"]
    assert repository["location"]["name"] == dg_project["code_location_name"]
    sensors = {s["name"]: s["sensorState"]["status"] for s in repository["sensors"]}
    schedules = {s["name"]: s["scheduleState"]["status"] for s in repository["schedules"]}
    assert {n for n, status in sensors.items() if status == "RUNNING"} == expected_sensors, sensors
    assert {n for n, status in schedules.items() if status == "RUNNING"} == expected_schedules, schedules

    # RUNNING is only a state: the daemon must actually evaluate each sensor, without an error
    def every_sensor_ticked():
        ticks = {s["name"]: s["sensorState"]["ticks"] for s in _repository(dagster_dev)["sensors"]}
        done = {
            name: [t for t in ticks[name] if t["status"] in DONE_TICK_STATUSES] for name in expected_sensors
        }
        return done if all(done.values()) else None

    finished = _poll("a finished tick of every sensor", every_sensor_ticked, 180, interval=2)
    latest = {name: ticks[0] for name, ticks in finished.items()}  # newest first
    failed = {name: t["error"]["message"] for name, t in latest.items() if t["status"] == "FAILURE"}
    assert not failed, f"sensor ticks failed: {failed}\n{dagster_dev.log_tail()}"


ASSET_NODE = """query ($path: [String!]!) { assetNodeOrError(assetKey: {path: $path}) { __typename
    ... on AssetNode { jobNames repository { name location { name } }
        assetChecksOrError { __typename ... on AssetChecks { checks { name blocking } } } } } }"""

LAUNCH = """mutation ($executionParams: ExecutionParams!) {
    launchPipelineExecution(executionParams: $executionParams) { __typename
        ... on LaunchRunSuccess { run { runId } }
        ... on PipelineConfigValidationInvalid { errors { message } }
        ... on PythonError { message stack }
        ... on Error { message } } }"""

RUN = """query ($runId: ID!) { runOrError(runId: $runId) { __typename
    ... on Run { status assetMaterializations { assetKey { path } }
        eventConnection(limit: 500) { events { __typename
            ... on MessageEvent { message }
            ... on ExecutionStepFailureEvent { error { message } } } } } } }"""

MATERIALIZATIONS = """query ($path: [String!]!) { assetOrError(assetKey: {path: $path}) { __typename
    ... on Asset { assetMaterializations(limit: 10) { runId timestamp
        metadataEntries { label __typename ... on IntMetadataEntry { intValue } } } } } }"""

CHECK_EXECUTIONS = """query ($path: [String!]!, $check: String!) {
    assetCheckExecutions(assetKey: {path: $path}, checkName: $check, limit: 10) {
        runId status evaluation { success severity } } }"""


def test_episodes_materializes_and_its_checks_pass(dagster_dev):
    from podrec_assets.lib.content.sources import sample_episodes

    node = dagster_dev.graphql(ASSET_NODE, {"path": [ASSET]})["assetNodeOrError"]
    assert node["__typename"] == "AssetNode", node
    checks = [c["name"] for c in node["assetChecksOrError"]["checks"]]
    assert checks, f"{ASSET} has no asset checks"
    # the implicit asset job holds every asset (what the UI's Materialize button launches); a subset of it
    job = next((j for j in node["jobNames"] if j.startswith("__ASSET_JOB")), node["jobNames"][0])
    selector = {
        "repositoryLocationName": node["repository"]["location"]["name"],
        "repositoryName": node["repository"]["name"],
        "pipelineName": job,
        "assetSelection": [{"path": [ASSET]}],
        "assetCheckSelection": [{"assetKey": {"path": [ASSET]}, "name": name} for name in checks],
    }
    launched = dagster_dev.graphql(
        LAUNCH, {"executionParams": {"selector": selector, "mode": "default", "runConfigData": {}}}
    )["launchPipelineExecution"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]

    def finished():
        run = dagster_dev.graphql(RUN, {"runId": run_id})["runOrError"]
        return run if run["status"] in TERMINAL_RUN_STATUSES else None

    run = _poll(f"run {run_id} to finish", finished, RUN_TIMEOUT_S)
    messages = [
        e.get("error", {}).get("message") or e.get("message") for e in run["eventConnection"]["events"]
    ]
    assert run["status"] == "SUCCESS", (
        "\n".join(m for m in messages if m)[-5000:] + "\n" + dagster_dev.log_tail()
    )
    assert [m["assetKey"]["path"] for m in run["assetMaterializations"]] == [[ASSET]]

    materializations = dagster_dev.graphql(MATERIALIZATIONS, {"path": [ASSET]})["assetOrError"][
        "assetMaterializations"]  # fmt: skip
    assert materializations, f"{ASSET} has no materialization"
    ours = next(m for m in materializations if m["runId"] == run_id)  # a schedule tick may have run one since
    metadata = {e["label"]: e.get("intValue") for e in ours["metadataEntries"]}
    assert metadata["catalog_size"] == len(sample_episodes().episodes)
    assert metadata["feed_errors"] == 0

    for check in checks:
        executions = dagster_dev.graphql(CHECK_EXECUTIONS, {"path": [ASSET], "check": check})[
            "assetCheckExecutions"]  # fmt: skip
        execution = next((e for e in executions if e["runId"] == run_id), None)
        assert execution is not None, f"check {check} did not run in {run_id}: {executions}"
        assert execution["status"] == "SUCCEEDED", execution
        assert execution["evaluation"]["success"] is True, execution


def _show_text(page, names: list[str]) -> str:
    """Poll the page until its text holds every name, skipping the community dialog whenever it shows (it comes up
    a moment after the first page has rendered, once per browser profile)."""
    skip = page.get_by_role("button", name="Skip", exact=True)
    deadline = time.monotonic() + UI_TIMEOUT_S
    text = ""
    while time.monotonic() < deadline:
        if skip.count() and skip.first.is_visible():
            skip.first.click()
            skip.first.wait_for(state="hidden")
            continue
        text = page.inner_text("body")
        if all(name in text for name in names):
            return text
        page.wait_for_timeout(500)
    screenshot = Path(os.environ.get("PODREC_HOME", "/tmp")) / "e2e-ui-failure.png"
    page.screenshot(path=str(screenshot))
    missing = [n for n in names if n not in text]
    pytest.fail(
        f"{page.url} never showed {missing} within {UI_TIMEOUT_S}s (screenshot {screenshot}):\n{text[:3000]}"
    )


def _asset_groups() -> list[str]:
    from podrec_assets.definitions import defs

    return sorted({node.group_name for node in defs.resolve_asset_graph().asset_nodes})


def test_ui_shows_the_asset_graph_and_an_asset(dagster_dev):
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (set PODREC_CHROMIUM)")

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.set_default_timeout(UI_TIMEOUT_S * 1000)

            # the global lineage graph draws each group collapsed; `expanded` (what its "Expand all groups", ⌥E,
            # writes into the URL) opens them, so asset nodes are drawn
            groups = _asset_groups()
            assert {"content", "ingestion"} <= set(groups)
            expanded = urllib.parse.urlencode({"expanded": ",".join(f"global@global:{g}" for g in groups)})
            page.goto(f"{dagster_dev.url}/asset-groups?{expanded}", wait_until="domcontentloaded")
            _show_text(page, ["Global asset lineage", *groups, "episodes", "raw_user_events"])

            page.goto(f"{dagster_dev.url}/assets/{ASSET}", wait_until="domcontentloaded")
            # its own page: the name, its downstream asset and its code location ([tool.dg] in pyproject.toml)
            _show_text(page, [ASSET, "Latest materialization", "transcripts", "podrec"])
        finally:
            browser.close()
