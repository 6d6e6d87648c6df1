"""Capacity reports of a what-if result: HTML (plots inlined), Markdown, JSON with provenance, CSV.

:func:`write_report` renders the chosen formats and writes each file atomically; rendering is
deterministic (no timestamps, sorted JSON keys, fixed SVG rounding), so the same inputs give the same bytes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: Output format -> file name inside the report folder.
FILES = {"html": "report.html", "md": "report.md", "json": "report.json", "csv": "options.csv"}


def render(result: Any, formats: list[str] | tuple[str, ...] = tuple(FILES)) -> dict[str, str]:
    """Render the chosen formats of a what-if result; returns file name -> text."""
    from planner.report.csv import render_csv
    from planner.report.html import render_html
    from planner.report.json import render_json, report_document
    from planner.report.markdown import render_markdown

    document = report_document(result)
    out: dict[str, str] = {}
    for fmt in formats:
        if fmt == "html":
            out[FILES[fmt]] = render_html(result, document)
        elif fmt == "md":
            out[FILES[fmt]] = render_markdown(result, document)
        elif fmt == "json":
            out[FILES[fmt]] = render_json(result, document)
        elif fmt == "csv":
            out[FILES[fmt]] = render_csv(result)
        else:
            raise ValueError(f"unknown report format {fmt!r}")
    return out


def write_report(
    result: Any,
    out_dir: str | Path,
    formats: list[str] | tuple[str, ...] = tuple(FILES),
) -> list[Path]:
    """Write the chosen formats into ``out_dir`` (created if missing), each file atomically.

    Returns:
        The paths written, in :data:`FILES` order.
    """
    from planner.io import atomic_write_text

    folder = Path(out_dir)
    texts = render(result, [f for f in FILES if f in formats])
    written = []
    for name, text in texts.items():
        path = folder / name
        atomic_write_text(path, text)
        written.append(path)
    return written
