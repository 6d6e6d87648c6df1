"""Placeholder: being built (see the issue for this command group)."""

import typer

app = typer.Typer(no_args_is_help=True)
