"""podrec's code location: everything under `defs/` (assets, checks, sensors, schedules, jobs, resources), found by
Dagster's defs-folder loader. Nothing is defined here; `[tool.dg]` in pyproject.toml points `dg` at the same folder."""

import warnings
from pathlib import Path

from dagster import BetaWarning, load_from_defs_folder

# Dagster's own post-processing (each domain's defs.yaml) rebuilds asset checks with a beta parameter; not ours.
warnings.filterwarnings("ignore", category=BetaWarning, message=".*execution_type.*")

defs = load_from_defs_folder(path_within_project=Path(__file__).parent)
