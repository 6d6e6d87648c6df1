"""Capacity reports of a what-if result: HTML (plots inlined), Markdown, JSON with provenance, CSV.

:func:`write_report` renders the chosen formats in memory, checks every target path, then writes each file
atomically (all or nothing: a failure leaves the old report's files as they were, though a folder it
created for them may stay, empty); rendering is
deterministic (no timestamps, sorted JSON keys, fixed SVG rounding), so the same inputs give the same bytes.
"""

from __future__ import annotations

import contextlib
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


def check_targets(out_dir: str | Path, formats: list[str] | tuple[str, ...] = tuple(FILES)) -> list[Path]:
    """Refuse, before anything is written, a report folder or file path that cannot be written.

    The folder must be a folder, or missing below an existing folder (it is created when the report is
    written); no target file may be a folder; and the folder (or, when missing, its nearest existing
    ancestor) must accept new files (:func:`planner.io.folder_write_problem`). Nothing else changes.

    Returns:
        The target paths, in :data:`FILES` order.

    Raises:
        InputError: naming the path and the problem.
    """
    from planner.errors import InputError
    from planner.io import folder_write_problem, nearest_existing

    folder = Path(out_dir)
    targets = [folder / FILES[f] for f in FILES if f in formats]
    if folder.exists() and not folder.is_dir():
        raise InputError("exists and is not a folder", file=str(folder), field="--out")
    existing = nearest_existing(folder)
    if not existing.is_dir():
        raise InputError(
            f"cannot create the folder: {existing} is not a folder", file=str(folder), field="--out"
        )
    if existing == folder:
        for path in targets:
            if path.is_dir():
                raise InputError("is a folder, expected a file path", file=str(path))
    problem = folder_write_problem(existing)
    if problem is not None:
        where = "into the folder" if existing == folder else f"the folder: cannot write into {existing}"
        raise InputError(f"cannot write {where}: {problem}", file=str(folder), field="--out")
    return targets


def write_report(
    result: Any,
    out_dir: str | Path,
    formats: list[str] | tuple[str, ...] = tuple(FILES),
) -> list[Path]:
    """Write the chosen formats into ``out_dir`` (created if missing), all or nothing.

    Every target is checked (:func:`check_targets`) and every file rendered in memory before the first
    write; then each file is written atomically (:func:`planner.io.atomic_write_bytes`). Should a write
    still fail part-way (disk full), the files already replaced get their old bytes back and new ones are
    removed, so the folder holds either the whole new report or the old one.

    Returns:
        The paths written, in :data:`FILES` order.

    Raises:
        InputError: naming the path that cannot be written; no report file has changed.
    """
    from planner.errors import InputError
    from planner.io import atomic_write_bytes

    chosen = [f for f in FILES if f in formats]
    targets = check_targets(out_dir, chosen)  # before the rendering, the costly part
    texts = render(result, chosen)
    payloads = [(path, texts[path.name].encode("utf-8")) for path in targets]
    old: dict[Path, bytes | None] = {}
    for path, _ in payloads:
        try:
            old[path] = path.read_bytes() if path.is_file() else None
        except OSError as exc:
            raise InputError(
                f"cannot read the file it replaces: {exc.strerror or exc}", file=str(path)
            ) from None
    written: list[Path] = []
    try:
        for path, data in payloads:
            atomic_write_bytes(path, data)
            written.append(path)
    except BaseException:
        for path in reversed(written):
            previous = old[path]
            with contextlib.suppress(InputError, OSError):
                if previous is None:
                    path.unlink()
                else:
                    atomic_write_bytes(path, previous)
        raise
    return written
