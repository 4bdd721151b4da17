"""CLI commands: ingest."""

from __future__ import annotations

import typer


def register(app: typer.Typer, keys_app: typer.Typer, audit_app: typer.Typer) -> None:
    """Register this area's commands."""
