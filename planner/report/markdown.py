"""``report.md``: the Markdown twin of the HTML report (the same sections and tables; plots live in HTML)."""

from __future__ import annotations

from typing import Any

from planner.report.plots import PLOTS
from planner.report.tables import (
    MAX_OPTION_ROWS,
    binding_rows,
    hardware_header,
    hardware_rows,
    option_header,
    option_row,
)


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(_cell(h) for h in header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return out


def render_markdown(result: Any, document: dict[str, Any]) -> str:
    """The report as Markdown text (deterministic)."""
    s = result.scenario
    law = s.law
    c = s.constraints
    rec = result.recommendation
    lines = [f"# Capacity report: {s.name}", ""]
    if s.description:
        lines += [s.description.strip(), ""]
    lines += ["## Recommendation", "", rec["text"], ""]
    lines += [
        "## Inputs",
        "",
        f"- Scenario: `{s.file}` (sha256 {s.sha256[:16]})",
        f"- Workload: {s.workload_ref}; model scales {', '.join(f'x{w.scale:g}' for w in s.workloads)}; "
        f"epochs {s.epochs:g}",
        f"- Quality: {law.describe()}",
        f"- Quality source: {law.source}",
        f"- Sweep: {len(s.hardware)} hardware x {len(s.workloads)} scales x {len(s.devices)} device counts "
        f"({', '.join(map(str, s.devices))}) x {len(s.batch_sizes)} batch sizes x {len(s.samples)} data "
        f"sizes = {len(result.options)} options, {result.unique_simulations} simulations "
        f"({s.simulation.steps} steps, seed {s.simulation.seed}, sharding {s.simulation.sharding})",
        "- Constraints: "
        + ", ".join(
            [
                f"max_days {c.max_days:g}" if c.max_days is not None else "no deadline",
                f"max_cost_usd {c.max_cost_usd:,.0f}" if c.max_cost_usd is not None else "no budget",
                f"target_ne {c.target_ne:g}" if c.target_ne is not None else "no target NE",
                "must fit in memory" if c.must_fit_memory else "memory not enforced",
            ]
        ),
        f"- Economics: PUE {s.economics.pue:g} ({s.economics.pue_source}); grid "
        + (
            f"{s.economics.grid_kg_co2_per_kwh:g} kg CO2/kWh"
            if s.economics.grid_kg_co2_per_kwh is not None
            else "intensity not given (no CO2 figures)"
        ),
        f"- Objective: {s.objective}",
        "",
    ]
    lines += ["### Hardware", "", *_table(hardware_header(), hardware_rows(result, document)), ""]
    lines += ["## Frontier (cost against NE)", ""]
    front = [result.option(i) for i in result.frontier]
    if front:
        lines += _table(option_header(result), [option_row(o) for o in front])
    else:
        lines.append("No feasible option, so no frontier.")
    lines += ["", "## What binds", "", *_table(["binding", "options"], binding_rows(result)), ""]
    shown = result.options[:MAX_OPTION_ROWS]
    lines += [
        f"## Options ({len(shown)} of {len(result.options)}, ranked by {s.objective}; all in options.csv)",
        "",
    ]
    lines += [*_table(option_header(result), [option_row(o) for o in shown]), ""]
    lines += ["## Plots", "", "The plots are inlined in `report.html`:", ""]
    lines += [f"- `{pid}`: {caption}" for pid, caption in PLOTS.items()]
    lines += [
        "",
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
