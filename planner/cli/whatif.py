"""Placeholder: being built (see the issue for this command)."""

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
