"""``report.html``: one self-contained page (inline CSS, inline SVG plots, no scripts, no external links)."""

from __future__ import annotations

from html import escape
from typing import Any

from planner.report.plots import PLOTS, SLICED, all_plots, slice_text
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

_CSS = """
body{font-family:Helvetica,Arial,sans-serif;margin:2em auto;max-width:1200px;color:#222;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;font-size:12px;margin:.5em 0}
th,td{border:1px solid #ddd;padding:3px 6px;text-align:right;vertical-align:top}
td{white-space:nowrap}th{background:#f4f4f4}td.l,th.l{text-align:left}td.w{white-space:normal}
tr.infeasible td{color:#888}tr.frontier td{font-weight:bold}
.scroll{overflow-x:auto;max-width:100%}
.rec{background:#eef7ee;border-left:4px solid #2e7d32;padding:.6em 1em}
.rec.bad{background:#fdeeee;border-left-color:#b00020}
figure{margin:1.2em 0}figcaption{font-size:13px;color:#444;margin-top:.3em;max-width:900px}
svg.plot{max-width:100%;height:auto}
.inputs li{margin:.2em 0}.muted{color:#666;font-size:12px}
"""
#: Columns shown left-aligned (text); the others are numbers.
_TEXT_COLUMNS = {"", "hardware", "option", "origin", "binding", "meaning", "feasible", "frontier"}
#: Columns whose long text may wrap.
_WRAP_COLUMNS = {"price source", "power source", "calibration", "origin", "meaning", "option"}


def _table(header: list[str], rows: list[list[str]], *, classes: list[str] | None = None) -> str:
    def cell(tag: str, i: int, text: str) -> str:
        kinds = []
        if header[i] in _TEXT_COLUMNS or header[i].endswith("source") or header[i] == "calibration":
            kinds.append("l")
        if tag == "td" and header[i] in _WRAP_COLUMNS:
            kinds.append("w")
        cls = f' class="{" ".join(kinds)}"' if kinds else ""
        return f"<{tag}{cls}>{escape(str(text))}</{tag}>"

    head = "<tr>" + "".join(cell("th", i, h) for i, h in enumerate(header)) + "</tr>"
    body = []
    for k, row in enumerate(rows):
        cls = f' class="{classes[k]}"' if classes and classes[k] else ""
        body.append(f"<tr{cls}>" + "".join(cell("td", i, c) for i, c in enumerate(row)) + "</tr>")
    return f'<div class="scroll"><table><thead>{head}</thead><tbody>{"".join(body)}</tbody></table></div>'


def _row_class(o: Any) -> str:
    return " ".join(c for c in ("frontier" if o.pareto else "", "" if o.feasible else "infeasible") if c)


def render_html(result: Any, document: dict[str, Any]) -> str:
    """The report as one HTML page (deterministic; plots inlined as SVG)."""
    s = result.scenario
    law = s.law
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
    parts.append(_table(glance_header(result), glance_rows(result)))
    target = target_text(result)
    if target:
        parts.append(f"<p>{escape(target)}</p>")
    parts.append("<h2>Plots</h2>")
    sliced = slice_text(result)
    for pid, caption in PLOTS.items():
        text = f"{caption} {sliced}" if pid in SLICED else caption
        parts.append(f'<figure id="fig-{pid}">{plots[pid]}<figcaption>{escape(text)}</figcaption></figure>')
    parts.append("<h2>Frontier (cost against NE)</h2>")
    parts.append(
        '<p class="muted">No cheaper option predicts a better NE than a frontier option; points are '
        "numbered as in the cost/NE plot.</p>" + _table(frontier_header(result), frontier_rows(result))
        if result.frontier
        else "<p>No feasible option, so no frontier.</p>"
    )
    parts.append("<h2>What binds</h2>" + _table(binding_header(), binding_rows(result)))
    items = [
        f"<li>{escape(label)}: {f'<code>{escape(text)}</code>' if label == 'Scenario' else escape(text)}</li>"
        for label, text in input_items(result)
    ]
    parts.append('<h2>Inputs</h2><ul class="inputs">' + "".join(items) + "</ul>")
    parts.append("<h3>Hardware</h3>" + _table(hardware_header(), hardware_rows(result, document)))
    shown = result.options[:MAX_OPTION_ROWS]
    parts.append(
        f'<h2>Options</h2><p class="muted">{len(shown)} of {len(result.options)} options, ranked by '
        f"{escape(s.objective)} (feasible first; bold: on the frontier; grey: infeasible); every "
        "option is in options.csv and report.json.</p>"
    )
    parts.append(
        _table(option_header(result), option_rows(result, shown), classes=[_row_class(o) for o in shown])
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
