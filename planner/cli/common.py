"""Shared command-line helpers: consoles, JSON emission, and one-line errors."""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console

from planner.io import to_json

#: Human output (tables, summaries) goes to stdout unless --json is given.
console = Console(highlight=False, soft_wrap=False)
#: Narration and progress always go to stderr so ``--json | jq`` works; each message stays one line (the
#: terminal wraps it, not rich), so a path in it is never cut and a log line greps whole.
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def emit_json(obj: Any) -> None:
    """Write exactly one JSON document to stdout (deterministic key order)."""
    sys.stdout.write(to_json(obj))
    sys.stdout.flush()


def one_line_error(message: str) -> None:
    """Print ``recplan: error: <message>`` as one line on stderr."""
    text = " ".join(str(message).split())
    sys.stderr.write(f"recplan: error: {text}\n")
    sys.stderr.flush()
