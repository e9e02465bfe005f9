"""What every command shares: the resources (plain values from the environment) and how a command fails."""

from __future__ import annotations

import sys

import click

from podrec_assets.defs.resources import build_resources


def resources() -> dict:
    return build_resources(resolved=True)


def fail(message: str) -> None:
    click.secho(f"error: {message}", fg="red", err=True)
    sys.exit(1)
