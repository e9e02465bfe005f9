"""podrec's code location: everything under `defs/` (assets, checks, sensors, schedules, jobs, resources), found by
Dagster's defs-folder loader. Nothing is defined here; `[tool.dg]` in pyproject.toml points `dg` at the same folder."""

from pathlib import Path

from dagster import load_from_defs_folder

defs = load_from_defs_folder(path_within_project=Path(__file__).parent)
