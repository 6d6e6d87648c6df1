"""``report.md``: the Markdown twin of the HTML report (the same sections and tables; plots live in HTML)."""

from __future__ import annotations

from typing import Any

from planner.report.plots import PLOTS, SLICED, slice_text
from planner.report.tables import (
    MAX_OPTION_ROWS,
    binding_header,
    binding_rows,
    frontier_header,
    frontier_rows,
    glance_header,
    glance_rows,
    hardware_header,
    hardware_rows,
    input_items,
    option_header,
    option_rows,
    target_text,
)


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(_cell(h) for h in header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return out


def render_markdown(result: Any, document: dict[str, Any]) -> str:
    """The report as Markdown text (deterministic; the same sections and tables as the HTML)."""
    s = result.scenario
    law = s.law
    rec = result.recommendation
    lines = [f"# Capacity report: {s.name}", ""]
    if s.description:
        lines += [s.description.strip(), ""]
    lines += [
        "## Recommendation",
        "",
        rec["text"],
        "",
        *_table(glance_header(result), glance_rows(result)),
        "",
    ]
    target = target_text(result)
    if target:
        lines += [target, ""]
    lines += ["## Plots", "", "The plots are inlined in `report.html`:", ""]
    sliced = slice_text(result)
    lines += [
        f"- `{pid}`: {caption}" + (f" {sliced}" if pid in SLICED else "") for pid, caption in PLOTS.items()
    ]
    lines += ["", "## Frontier (cost against NE)", ""]
    if result.frontier:
        lines += [
            "No cheaper option predicts a better NE than a frontier option; points are numbered as in the "
            "cost/NE plot of `report.html`.",
            "",
        ]
        lines += _table(frontier_header(result), frontier_rows(result))
    else:
        lines.append("No feasible option, so no frontier.")
    lines += ["", "## What binds", "", *_table(binding_header(), binding_rows(result)), ""]
    lines += ["## Inputs", ""]
    lines += [
        f"- {label}: `{text}`" if label == "Scenario" else f"- {label}: {text}"
        for label, text in input_items(result)
    ]
    lines += ["", "### Hardware", "", *_table(hardware_header(), hardware_rows(result, document)), ""]
    shown = result.options[:MAX_OPTION_ROWS]
    lines += [
        f"## Options ({len(shown)} of {len(result.options)}, ranked by {s.objective}, feasible first; "
        "all in options.csv)",
        "",
    ]
    lines += [*_table(option_header(result), option_rows(result, shown)), ""]
    lines += [
        "## Provenance",
        "",
        f"- Simulator: planner.sim.engine.simulate, recplan {document['report']['version']}",
        f"- Law: {law.source}",
    ]
    for h in s.hardware:
        prov = document["provenance"]["hardware"][h.name]
        lines.append(
            f"- {h.name}: {prov['profile']['source']} (as of {prov['profile']['as_of']}); "
            f"{len(prov['figures'])} figures with sources in report.json"
        )
    lines += ["", "Every figure's source is listed in `report.json` under `provenance`.", ""]
    return "\n".join(lines)
