"""``report.html``: one self-contained page (inline CSS, inline SVG plots, no scripts, no external links)."""

from __future__ import annotations

from html import escape
from typing import Any

from planner.report.plots import PLOTS, all_plots
from planner.report.tables import (
    MAX_OPTION_ROWS,
    binding_rows,
    hardware_header,
    hardware_rows,
    option_header,
    option_row,
)

_CSS = """
body{font-family:Helvetica,Arial,sans-serif;margin:2em auto;max-width:1200px;color:#222;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;font-size:12px;margin:.5em 0}
th,td{border:1px solid #ddd;padding:3px 6px;text-align:right;vertical-align:top}
th{background:#f4f4f4}td.l,th.l{text-align:left}
tr.infeasible td{color:#888}tr.frontier td{font-weight:bold}
.rec{background:#eef7ee;border-left:4px solid #2e7d32;padding:.6em 1em}
.rec.bad{background:#fdeeee;border-left-color:#b00020}
figure{margin:1em 0}figcaption{font-size:13px;color:#444;margin-top:.3em}
.inputs li{margin:.2em 0}.muted{color:#666;font-size:12px}
"""


def _table(
    header: list[str], rows: list[list[str]], *, left: int = 1, classes: list[str] | None = None
) -> str:
    def cell(tag: str, i: int, text: str) -> str:
        cls = ' class="l"' if i < left else ""
        return f"<{tag}{cls}>{escape(str(text))}</{tag}>"

    head = "<tr>" + "".join(cell("th", i, h) for i, h in enumerate(header)) + "</tr>"
    body = []
    for k, row in enumerate(rows):
        cls = f' class="{classes[k]}"' if classes and classes[k] else ""
        body.append(f"<tr{cls}>" + "".join(cell("td", i, c) for i, c in enumerate(row)) + "</tr>")
    return f"<table><thead>{head}</thead><tbody>{''.join(body)}</tbody></table>"


def _row_class(o: Any) -> str:
    return " ".join(c for c in ("frontier" if o.pareto else "", "" if o.feasible else "infeasible") if c)


def render_html(result: Any, document: dict[str, Any]) -> str:
    """The report as one HTML page (deterministic; plots inlined as SVG)."""
    s = result.scenario
    law = s.law
    c = s.constraints
    rec = result.recommendation
    plots = all_plots(result)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Capacity report: {escape(s.name)}</title>",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Capacity report: {escape(s.name)}</h1>",
    ]
    if s.description:
        parts.append(f"<p>{escape(s.description.strip())}</p>")
    parts.append(
        f'<h2>Recommendation</h2><p class="rec{"" if rec["feasible"] else " bad"}" id="recommendation">'
        f"{escape(rec['text'])}</p>"
    )
    parts.append("<h2>Plots</h2>")
    for pid, caption in PLOTS.items():
        parts.append(
            f'<figure id="fig-{pid}">{plots[pid]}<figcaption>{escape(caption)}</figcaption></figure>'
        )
    items = [
        f"Scenario: <code>{escape(s.file)}</code> (sha256 {s.sha256[:16]})",
        f"Workload: {escape(s.workload_ref)}; model scales "
        f"{escape(', '.join(f'x{w.scale:g}' for w in s.workloads))}; epochs {s.epochs:g}",
        f'Quality: {escape(law.describe())}<br><span class="muted">{escape(law.source)}</span>',
        f"Sweep: {len(result.options)} options, {result.unique_simulations} simulations "
        f"({s.simulation.steps} steps, seed {s.simulation.seed}, sharding {escape(s.simulation.sharding)})",
        "Constraints: "
        + escape(
            ", ".join(
                [
                    f"max_days {c.max_days:g}" if c.max_days is not None else "no deadline",
                    f"max_cost_usd {c.max_cost_usd:,.0f}" if c.max_cost_usd is not None else "no budget",
                    f"target_ne {c.target_ne:g}" if c.target_ne is not None else "no target NE",
                    "must fit in memory" if c.must_fit_memory else "memory not enforced",
                ]
            )
        ),
        escape(
            f"Economics: PUE {s.economics.pue:g} ({s.economics.pue_source}); grid "
            + (
                f"{s.economics.grid_kg_co2_per_kwh:g} kg CO2/kWh"
                if s.economics.grid_kg_co2_per_kwh is not None
                else "intensity not given (no CO2 figures)"
            )
        ),
        f"Objective: {escape(s.objective)}",
    ]
    parts.append('<h2>Inputs</h2><ul class="inputs">' + "".join(f"<li>{i}</li>" for i in items) + "</ul>")
    parts.append("<h3>Hardware</h3>" + _table(hardware_header(), hardware_rows(result, document), left=8))
    parts.append("<h2>Frontier (cost against NE)</h2>")
    front = [result.option(i) for i in result.frontier]
    parts.append(
        _table(option_header(result), [option_row(o) for o in front], left=3)
        if front
        else "<p>No feasible option, so no frontier.</p>"
    )
    parts.append("<h2>What binds</h2>" + _table(["binding", "options"], binding_rows(result)))
    shown = result.options[:MAX_OPTION_ROWS]
    parts.append(
        f'<h2>Options</h2><p class="muted">{len(shown)} of {len(result.options)} options, ranked by '
        f"{escape(s.objective)} (feasible first); every option is in options.csv and report.json.</p>"
    )
    parts.append(
        _table(
            option_header(result),
            [option_row(o) for o in shown],
            left=3,
            classes=[_row_class(o) for o in shown],
        )
    )
    parts.append('<h2>Provenance</h2><ul class="inputs">')
    parts.append(
        f"<li>Simulator: planner.sim.engine.simulate, recplan {escape(document['report']['version'])}</li>"
    )
    parts.append(f"<li>Law: {escape(law.source)}</li>")
    for h in s.hardware:
        prov = document["provenance"]["hardware"][h.name]
        parts.append(
            f"<li>{escape(h.name)}: {escape(prov['profile']['source'])} (as of "
            f"{escape(str(prov['profile']['as_of']))}); {len(prov['figures'])} figures with sources in "
            "report.json</li>"
        )
    parts.append(
        '</ul><p class="muted">Every figure\'s source is listed in report.json under provenance.'
        "</p></body></html>"
    )
    return "\n".join(parts) + "\n"
