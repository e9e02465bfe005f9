"""Versioned models, with MLflow as the system of record (docs/design.md, "Models in MLflow").

Every training run is an MLflow run in the experiment `podrec-<name>` (its parameters, metrics, timings, tags and
its files as artifacts) and a version of the registered model `podrec-<name>`, tagged with podrec's own version
label (`20261121T093000Z-1a2b3c4d`: when it was trained, then the Dagster run; sortable, and what the lists and
impressions carry). Promotion is the registered model's `champion` alias; rolling back is moving it
(`podrec models promote <version>`). What serves reads the alias.

The store is `tracking_uri` (MLFLOW_TRACKING_URI for a server), by default a SQLite database beside the local
folder `root`, which also holds the staging folders: a version is built in a hidden folder there (the Spark server
writes to it too), then logged as artifacts, so a crash never registers half a version.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # a progress bar per manifest read
# not "Creating initial MLflow database tables..." each time
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")

from mlflow import MlflowClient  # noqa: E402
from mlflow.artifacts import download_artifacts  # noqa: E402
from mlflow.entities import Metric, Param  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402

MANIFEST = "manifest.json"
MODEL_ARTIFACTS = "model"  # the run's artifact folder holding the version's files
CHAMPION = "champion"  # the alias that serves
VERSION_TAG = "podrec_version"


@dataclass(frozen=True)
class RunRecord:
    """What MLflow shows of a training run besides its files: flat parameters, numeric metrics, tags."""

    params: dict[str, Any]
    metrics: dict[str, float]
    tags: dict[str, str]


def flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}: MLflow's parameters and metrics are flat."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def numeric(values: dict[str, Any]) -> dict[str, float]:
    """The finite numbers of a flat dict (MLflow metric names allow `@`, `.`, `_` and `-`)."""
    return {
        key.replace("@", "_at_"): float(v)
        for key, v in values.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    }


@dataclass(frozen=True)
class ModelRegistry:
    root: Path
    name: str = "als"
    # None: SQLite at <root>/mlflow.db, artifacts under <root>/mlflow-artifacts
    tracking_uri: str | None = None

    @property
    def model_name(self) -> str:
        return f"podrec-{self.name}"

    @property
    def uri(self) -> str:
        return self.tracking_uri or f"sqlite:///{Path(self.root).resolve() / 'mlflow.db'}"

    @property
    def folder(self) -> Path:
        """Local scratch: staging folders, and downloads of versions whose artifacts live on a server."""
        return Path(self.root) / self.name

    @cached_property
    def client(self) -> MlflowClient:
        if self.tracking_uri is None:
            Path(self.root).mkdir(parents=True, exist_ok=True)
        return MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)

    def _experiment_id(self) -> str:
        experiment = self.client.get_experiment_by_name(self.model_name)
        if experiment is not None:
            return experiment.experiment_id
        # A local store keeps artifacts beside its database; a server decides where its artifacts go.
        location = (
            (Path(self.root).resolve() / "mlflow-artifacts").as_uri() if self.tracking_uri is None else None
        )
        try:
            return self.client.create_experiment(self.model_name, artifact_location=location)
        except MlflowException:  # created meanwhile by a concurrent run
            experiment = self.client.get_experiment_by_name(self.model_name)
            if experiment is None:
                raise
            return experiment.experiment_id

    def new_version(self, run_id: str, now: datetime | None = None) -> str:
        """Sortable by time, unique per run: 20261121T093000Z-1a2b3c4d."""
        return f"{(now or datetime.now(UTC)):%Y%m%dT%H%M%SZ}-{run_id.replace('-', '')[:8]}"

    def staging(self, version: str) -> Path:
        """An empty hidden folder to build `version` in; `publish` logs it to MLflow."""
        path = self.folder / f".staging-{version}"
        # left by a crashed run with the same version: never registered
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path

    def publish(self, version: str, manifest: dict, record: RunRecord | None = None) -> Path:
        """Log the staged folder, the manifest and `record` as an MLflow run, and register it as a new model version
        (not promoted). Fails if `version` is registered already: versions are never overwritten."""
        if self._model_version(version) is not None:
            raise FileExistsError(f"model version {version} exists already; versions are never overwritten")
        staged = self.folder / f".staging-{version}"
        record = record or RunRecord({}, {}, {})
        run = self.client.create_run(
            self._experiment_id(), run_name=version, tags={**record.tags, VERSION_TAG: version}
        )
        run_id = run.info.run_id
        try:
            now = int(datetime.now(UTC).timestamp() * 1000)
            self.client.log_batch(
                run_id,
                metrics=[Metric(k, v, now, 0) for k, v in record.metrics.items()],
                params=[Param(k, str(v)[:6000]) for k, v in record.params.items()],
            )
            (staged / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str))
            self.client.log_artifacts(run_id, str(staged), MODEL_ARTIFACTS)
        except BaseException:
            self.client.set_terminated(run_id, "FAILED")
            raise
        self.client.set_terminated(run_id, "FINISHED")
        self._ensure_registered_model()
        self.client.create_model_version(
            self.model_name,
            f"{run.info.artifact_uri}/{MODEL_ARTIFACTS}",
            run_id,
            tags={VERSION_TAG: version, "gate_passed": str(bool((manifest.get("gate") or {}).get("passed")))},
        )
        shutil.rmtree(staged, ignore_errors=True)
        return self.path(version)

    def _ensure_registered_model(self) -> None:
        try:
            self.client.get_registered_model(self.model_name)
        except MlflowException:
            with suppress(MlflowException):  # registered meanwhile by a concurrent run
                self.client.create_registered_model(self.model_name)

    def _all_model_versions(self) -> list:
        try:
            return list(self.client.search_model_versions(f"name='{self.model_name}'"))
        except MlflowException:
            return []

    def _model_version(self, version: str):
        """The registered version labelled `version`, or None: one filtered query, not a scan of every version."""
        try:
            found = self.client.search_model_versions(
                f"name='{self.model_name}' and tags.{VERSION_TAG}='{version}'"
            )
        except MlflowException:
            return None
        return found[0] if found else None

    def _existing(self, version: str):
        found = self._model_version(version)
        if found is None:
            raise ValueError(f"no model version {version!r} in {self.model_name} ({self.uri})")
        return found

    def versions(self) -> list[str]:
        """podrec's labels of every registered version, oldest first."""
        return sorted(v.tags[VERSION_TAG] for v in self._all_model_versions() if VERSION_TAG in v.tags)

    def mlflow_version(self, version: str) -> str:
        """The MLflow Model Registry's version number of podrec's `version`."""
        return str(self._existing(version).version)

    def manifest(self, version: str) -> dict:
        uri = f"{self._existing(version).source}/{MANIFEST}"
        return json.loads(Path(download_artifacts(artifact_uri=uri, tracking_uri=self.uri)).read_text())

    def path(self, version: str) -> Path:
        """A local folder with the version's files. A local store's artifacts are read where they are; a server's
        are downloaded once into <root>/<name>/<version> (complete, or not there)."""
        source = str(self._existing(version).source)
        if source.startswith("file:") or source.startswith("/"):
            return Path(download_artifacts(artifact_uri=source, tracking_uri=self.uri))
        cached = self.folder / version
        if not cached.is_dir():
            partial = self.folder / f".download-{version}-{os.getpid()}"
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir(parents=True)
            download_artifacts(artifact_uri=source, dst_path=str(partial), tracking_uri=self.uri)
            os.replace(partial / MODEL_ARTIFACTS, cached)
            shutil.rmtree(partial, ignore_errors=True)
        return cached

    def current(self) -> str | None:
        """The version the `champion` alias points at (None before the first promotion)."""
        try:
            champion = self.client.get_model_version_by_alias(self.model_name, CHAMPION)
        except MlflowException:
            return None
        return champion.tags.get(VERSION_TAG)

    def promote(self, version: str, reason: str) -> None:
        """Point the `champion` alias at `version`, and note on that version when, why and what it replaced."""
        number = self.mlflow_version(version)
        previous = self.current()
        self.client.set_registered_model_alias(self.model_name, CHAMPION, number)
        for key, value in {
            "promoted_at": datetime.now(UTC).isoformat(),
            "promotion_reason": reason,
            "replaced": previous or "",
        }.items():
            self.client.set_model_version_tag(self.model_name, number, key, value)

    def promotions(self) -> list[dict[str, str]]:
        """Every version that was ever champion, with when, why and what it replaced, oldest first."""
        rows = [
            {"version": v.tags[VERSION_TAG], "at": v.tags["promoted_at"], "reason": v.tags.get("promotion_reason", ""),
             "replaced": v.tags.get("replaced", "")}
            for v in self._all_model_versions()
            if VERSION_TAG in v.tags and "promoted_at" in v.tags
        ]  # fmt: skip
        return sorted(rows, key=lambda row: row["at"])


def import_folder_versions(registry: ModelRegistry) -> list[str]:
    """Register in MLflow the versions of the folder registry MLflow replaced (`<root>/<name>/<version>/` with a
    manifest.json, and a CURRENT file naming the promoted one), oldest first; the version CURRENT named becomes
    champion unless one is set. Idempotent: a version MLflow has already is skipped. Returns those registered."""
    folder = registry.folder
    if not folder.is_dir():
        return []
    known = set(registry.versions())
    imported = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or not (path / MANIFEST).is_file() or path.name in known:
            continue
        manifest = json.loads((path / MANIFEST).read_text())
        staged = registry.staging(path.name)
        shutil.copytree(path, staged, dirs_exist_ok=True)
        params = flatten(manifest.get("params") or manifest.get("config") or {})
        registry.publish(path.name, manifest, RunRecord(params, {}, {"imported_from": str(path)}))
        imported.append(path.name)
    pointer = folder / "CURRENT"
    current = pointer.read_text().strip() if pointer.is_file() else ""
    if current and registry.current() is None and current in registry.versions():
        registry.promote(current, "imported: the folder registry's CURRENT")
    return imported


def write_ids(path: Path, column: str, ids: list[str]) -> None:
    """An id mapping as Parquet: row i holds the string id whose index is i."""
    pq.write_table(pa.table({f"{column}_idx": pa.array(range(len(ids)), pa.int32()), column: ids}), path)


def read_ids(path: Path, column: str) -> list[str]:
    table = pq.read_table(path).sort_by(f"{column}_idx")
    return table.column(column).to_pylist()
