"""Deterministic hand-written SVG plots of a what-if result (no timestamps, no random ids, fixed rounding).

Four plots, each a self-contained ``<svg>`` string with a stable ``id``:

* ``plot-cost-ne``: cost (USD, log) against predicted NE for every option, the frontier as a step line,
  infeasible options hollow, target NE and budget as dashed lines;
* ``plot-time-devices``: time-to-train (days, log) against device count (log) per hardware, for the
  reference slice (the recommended option's batch, model scale and samples; else the first of each);
* ``plot-memory``: peak memory per device against each device's capacity, per hardware and device count;
* ``plot-breakdown``: the critical-path step-time breakdown per simulated configuration of the slice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape
from typing import Any

#: Plot ids, in the order reports show them, with their captions.
PLOTS: dict[str, str] = {
    "plot-cost-ne": "Cost against predicted NE (frontier as a step line; hollow markers are infeasible)",
    "plot-time-devices": "Time-to-train against device count, per hardware (reference slice)",
    "plot-memory": "Peak memory per device against device capacity (reference slice)",
    "plot-breakdown": "Step-time breakdown on the critical path, per configuration (reference slice)",
}
#: Colour-blind-friendly qualitative palette (Okabe-Ito, then Tableau 10) for hardware and phases.
PALETTE = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#56B4E9",
    "#D55E00",
    "#F0E442",
    "#000000",
    "#4E79A7",
    "#F28E2B",
    "#59A14F",
    "#B07AA1",
    "#9C755F",
    "#BAB0AC",
    "#76B7B2",
    "#EDC948",
)
_W, _H = 760, 420
_MARGIN = (70, 20, 30, 55)  # left, right, top, bottom (pixels)
_MAX_ROWS = 60


def _f(v: float) -> str:
    """Fixed two-decimal pixel coordinates: the same input always gives the same text."""
    text = f"{v:.2f}"
    return "0.00" if text == "-0.00" else text


@dataclass(frozen=True)
class _Axis:
    lo: float
    hi: float
    p_lo: float
    p_hi: float
    log: bool

    def __call__(self, v: float) -> float:
        if self.log:
            a, b, x = math.log10(self.lo), math.log10(self.hi), math.log10(max(v, self.lo))
        else:
            a, b, x = self.lo, self.hi, v
        t = 0.5 if b == a else (x - a) / (b - a)
        return self.p_lo + t * (self.p_hi - self.p_lo)

    def ticks(self) -> list[float]:
        if self.log:
            lo, hi = math.floor(math.log10(self.lo)), math.ceil(math.log10(self.hi))
            out = []
            steps = (1, 2, 5) if hi - lo <= 3 else (1,)
            for e in range(lo, hi + 1):
                for m in steps:
                    v = m * 10.0**e
                    if self.lo <= v * (1 + 1e-9) and v <= self.hi * (1 + 1e-9):
                        out.append(v)
            return out
        span = self.hi - self.lo
        raw = span / 6 if span > 0 else 1.0
        mag = 10 ** math.floor(math.log10(raw))
        step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
        start = math.ceil(self.lo / step - 1e-9) * step
        out = []
        v = start
        while v <= self.hi + 1e-9 * step:
            out.append(round(v, 12))
            v += step
        return out


def _range(values: list[float], log: bool, pad: float = 0.05) -> tuple[float, float]:
    vals = [v for v in values if math.isfinite(v) and (v > 0 or not log)]
    if not vals:
        return (1.0, 10.0) if log else (0.0, 1.0)
    lo, hi = min(vals), max(vals)
    if log:
        if hi <= lo:
            return lo / 2, hi * 2
        f = (hi / lo) ** pad
        return lo / f, hi * f
    if hi <= lo:
        d = abs(lo) * 0.05 or 1.0
        return lo - d, hi + d
    d = (hi - lo) * pad
    return lo - d, hi + d


def _label(v: float) -> str:
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1e6 or a < 1e-3:
        return f"{v:.0e}".replace("e+0", "e").replace("e-0", "e-").replace("e+", "e")
    if a >= 1e3:
        return f"{v:,.0f}"
    return f"{v:.4g}"


class _Svg:
    """A tiny SVG builder; elements are kept in call order so output is deterministic."""

    def __init__(self, plot_id: str, title: str, width: int = _W, height: int = _H) -> None:
        self.id = plot_id
        self.width = width
        self.height = height
        self.parts: list[str] = [
            f"<title>{escape(title)}</title>",
            f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
        ]

    def add(self, element: str) -> None:
        self.parts.append(element)

    def text(
        self,
        x: float,
        y: float,
        text: str,
        *,
        anchor: str = "start",
        size: int = 11,
        rotate: bool = False,
        fill: str = "#222222",
        weight: str = "normal",
    ) -> None:
        transform = f' transform="rotate(-90 {_f(x)} {_f(y)})"' if rotate else ""
        self.add(
            f'<text x="{_f(x)}" y="{_f(y)}" font-size="{size}" text-anchor="{anchor}" fill="{fill}" '
            f'font-weight="{weight}"{transform}>{escape(text)}</text>'
        )

    def line(
        self,
        x1: float,
        y1: float,
        x2: float,
        y2: float,
        *,
        stroke: str = "#222222",
        width: float = 1,
        dash: str | None = None,
    ) -> None:
        d = f' stroke-dasharray="{dash}"' if dash else ""
        self.add(
            f'<line x1="{_f(x1)}" y1="{_f(y1)}" x2="{_f(x2)}" y2="{_f(y2)}" stroke="{stroke}" '
            f'stroke-width="{width}"{d}/>'
        )

    def render(self) -> str:
        body = "".join(self.parts)
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" id="{self.id}" class="plot" role="img" '
            f'viewBox="0 0 {self.width} {self.height}" width="{self.width}" height="{self.height}" '
            f'font-family="Helvetica, Arial, sans-serif">{body}</svg>'
        )


def _frame(svg: _Svg, x: _Axis, y: _Axis, xlabel: str, ylabel: str) -> None:
    left, right, top, bottom = x.p_lo, x.p_hi, y.p_hi, y.p_lo
    for v in x.ticks():
        px = x(v)
        svg.line(px, top, px, bottom, stroke="#e5e5e5")
        svg.text(px, bottom + 15, _label(v), anchor="middle", size=10)
    for v in y.ticks():
        py = y(v)
        svg.line(left, py, right, py, stroke="#e5e5e5")
        svg.text(left - 6, py + 3.5, _label(v), anchor="end", size=10)
    svg.add(
        f'<rect x="{_f(left)}" y="{_f(top)}" width="{_f(right - left)}" height="{_f(bottom - top)}" '
        'fill="none" stroke="#444444"/>'
    )
    svg.text((left + right) / 2, bottom + 36, xlabel, anchor="middle", size=12)
    svg.text(16, (top + bottom) / 2, ylabel, anchor="middle", size=12, rotate=True)


def _legend(svg: _Svg, items: list[tuple[str, str]], x0: float, y0: float) -> None:
    for k, (label, colour) in enumerate(items):
        y = y0 + 15 * k
        svg.add(f'<rect x="{_f(x0)}" y="{_f(y - 8)}" width="10" height="10" fill="{colour}"/>')
        svg.text(x0 + 14, y + 1, label, size=10)


def hardware_colours(names: list[str]) -> dict[str, str]:
    """A fixed colour per hardware name, in sweep order."""
    return {n: PALETTE[i % len(PALETTE)] for i, n in enumerate(names)}


def reference_slice(result: Any) -> dict[str, Any]:
    """The (batch, model scale, samples) that the per-hardware plots show: the recommended option's, else
    the first of each sweep axis."""
    s = result.scenario
    rec = result.recommendation.get("option") or result.recommendation.get("closest")
    if rec:
        return {"batch_size": rec["batch_size"], "model_scale": rec["model_scale"], "samples": rec["samples"]}
    return {"batch_size": s.batch_sizes[0], "model_scale": s.workloads[0].scale, "samples": s.samples[0]}


def _slice_options(result: Any) -> list[Any]:
    ref = reference_slice(result)
    order = {h.name: i for i, h in enumerate(result.scenario.hardware)}
    chosen = [
        o
        for o in result.options
        if o.batch_size == ref["batch_size"]
        and o.model_scale == ref["model_scale"]
        and o.samples == ref["samples"]
    ]
    return sorted(chosen, key=lambda o: (order[o.hardware], o.devices))


def cost_vs_ne(result: Any) -> str:
    """SVG of cost (log) against NE for every option with the frontier and the constraint lines."""
    s = result.scenario
    opts = list(sorted(result.options, key=lambda o: o.id))
    colours = hardware_colours([h.name for h in s.hardware])
    svg = _Svg("plot-cost-ne", PLOTS["plot-cost-ne"])
    left, right, top, bottom = _MARGIN[0], _W - 170, _MARGIN[2], _H - _MARGIN[3]
    costs = [o.cost_usd for o in opts]
    nes = [o.ne for o in opts] + [o.ne_lo80 for o in opts] + [o.ne_hi80 for o in opts]
    c = s.constraints
    if c.max_cost_usd is not None:
        costs.append(c.max_cost_usd)
    if c.target_ne is not None:
        nes.append(c.target_ne)
    x = _Axis(*_range(costs, True), left, right, True)
    y = _Axis(*_range(nes, False), bottom, top, False)
    metric = s.law.metric.upper() if s.law.metric == "ne" else s.law.metric
    _frame(svg, x, y, "cost (US dollars, log scale)", f"predicted {metric}")
    if c.target_ne is not None:
        svg.line(left, y(c.target_ne), right, y(c.target_ne), stroke="#b00020", dash="5,4")
        svg.text(
            right - 4, y(c.target_ne) - 4, f"target {c.target_ne:g}", anchor="end", size=10, fill="#b00020"
        )
    if c.max_cost_usd is not None:
        svg.line(x(c.max_cost_usd), top, x(c.max_cost_usd), bottom, stroke="#b00020", dash="5,4")
        svg.text(x(c.max_cost_usd) - 4, top + 12, "budget", anchor="end", size=10, fill="#b00020")
    for o in opts:
        if o.ne_hi80 > o.ne_lo80:
            svg.line(
                x(o.cost_usd),
                y(o.ne_lo80),
                x(o.cost_usd),
                y(o.ne_hi80),
                stroke=colours[o.hardware],
                width=0.6,
            )
    for o in opts:
        col = colours[o.hardware]
        fill = col if o.feasible else "none"
        svg.add(
            f'<circle cx="{_f(x(o.cost_usd))}" cy="{_f(y(o.ne))}" r="3.5" fill="{fill}" stroke="{col}" '
            f'stroke-width="1.2"><title>{escape(o.label())}: ${o.cost_usd:,.0f}, NE {o.ne:.5f}'
            f"{'' if o.feasible else ' (infeasible: ' + o.binding + ')'}</title></circle>"
        )
    front = [result.option(i) for i in result.frontier]
    if front:
        pts = []
        for k, o in enumerate(front):
            if k:
                pts.append(f"{_f(x(o.cost_usd))},{_f(y(front[k - 1].ne))}")
            pts.append(f"{_f(x(o.cost_usd))},{_f(y(o.ne))}")
        svg.add(
            f'<polyline class="frontier" points="{" ".join(pts)}" fill="none" stroke="#111111" '
            'stroke-width="1.8"/>'
        )
        for o in front:
            svg.add(
                f'<circle cx="{_f(x(o.cost_usd))}" cy="{_f(y(o.ne))}" r="6" fill="none" stroke="#111111" '
                'stroke-width="1.5"/>'
            )
    items = [(h.name, colours[h.name]) for h in s.hardware]
    _legend(svg, items, right + 15, top + 10)
    ly = top + 10 + 15 * len(items) + 10
    svg.line(right + 15, ly, right + 35, ly, stroke="#111111", width=1.8)
    svg.text(right + 40, ly + 3.5, "frontier", size=10)
    svg.add(f'<circle cx="{_f(right + 20)}" cy="{_f(ly + 16)}" r="3.5" fill="none" stroke="#444444"/>')
    svg.text(right + 40, ly + 19.5, "infeasible", size=10)
    return svg.render()


def time_vs_devices(result: Any) -> str:
    """SVG of time-to-train (days, log) against devices (log) per hardware for the reference slice."""
    s = result.scenario
    opts = _slice_options(result)
    colours = hardware_colours([h.name for h in s.hardware])
    svg = _Svg("plot-time-devices", PLOTS["plot-time-devices"])
    left, right, top, bottom = _MARGIN[0], _W - 170, _MARGIN[2], _H - _MARGIN[3]
    days = [o.time_to_train_days for o in opts]
    if s.constraints.max_days is not None:
        days.append(s.constraints.max_days)
    x = _Axis(*_range([float(d) for d in s.devices], True), left, right, True)
    y = _Axis(*_range(days, True), bottom, top, True)
    _frame(svg, x, y, "devices (log scale)", "time to train (days, log scale)")
    if s.constraints.max_days is not None:
        yy = y(s.constraints.max_days)
        svg.line(left, yy, right, yy, stroke="#b00020", dash="5,4")
        svg.text(
            right - 4, yy - 4, f"deadline {s.constraints.max_days:g} d", anchor="end", size=10, fill="#b00020"
        )
    for h in s.hardware:
        series = [o for o in opts if o.hardware == h.name]
        col = colours[h.name]
        if len(series) > 1:
            pts = " ".join(f"{_f(x(o.devices))},{_f(y(o.time_to_train_days))}" for o in series)
            svg.add(f'<polyline points="{pts}" fill="none" stroke="{col}" stroke-width="1.5"/>')
        for o in series:
            fill = col if o.fits_in_memory else "#ffffff"
            svg.add(
                f'<circle cx="{_f(x(o.devices))}" cy="{_f(y(o.time_to_train_days))}" r="3.5" fill="{fill}" '
                f'stroke="{col}"><title>{escape(o.label())}: {o.time_to_train_days:.4g} days'
                f"{'' if o.fits_in_memory else ' (does not fit)'}</title></circle>"
            )
    _legend(svg, [(h.name, colours[h.name]) for h in s.hardware], right + 15, top + 10)
    ref = reference_slice(result)
    svg.text(right + 15, bottom - 20, f"batch {ref['batch_size']}", size=10)
    svg.text(right + 15, bottom - 6, f"{ref['samples']:.3g} samples, x{ref['model_scale']:g}", size=10)
    return svg.render()


def memory_per_device(result: Any) -> str:
    """SVG of horizontal bars: peak memory per device with each device's capacity marked."""
    opts = _slice_options(result)[:_MAX_ROWS]
    colours = hardware_colours([h.name for h in result.scenario.hardware])
    row_h = 16
    height = max(160, _MARGIN[2] + _MARGIN[3] + row_h * len(opts))
    svg = _Svg("plot-memory", PLOTS["plot-memory"], height=height)
    left, right, top = 190, _W - 30, _MARGIN[2]
    bottom = top + row_h * len(opts)
    values = [o.peak_memory_bytes / 1e9 for o in opts] + [o.memory_capacity_bytes / 1e9 for o in opts]
    x = _Axis(0.0, max(values, default=1.0) * 1.08, left, right, False)
    y = _Axis(0.0, 1.0, bottom, top, False)
    for v in x.ticks():
        svg.line(x(v), top, x(v), bottom, stroke="#e5e5e5")
        svg.text(x(v), bottom + 15, _label(v), anchor="middle", size=10)
    for k, o in enumerate(opts):
        yy = top + row_h * k
        col = colours[o.hardware] if o.fits_in_memory else "#b00020"
        width = x(o.peak_memory_bytes / 1e9) - left
        svg.add(
            f'<rect x="{_f(left)}" y="{_f(yy + 3)}" width="{_f(width)}" height="{row_h - 6}" fill="{col}">'
            f"<title>{escape(o.hardware)} x {o.devices}: {o.peak_memory_bytes / 1e9:.4g} GB of "
            f"{o.memory_capacity_bytes / 1e9:.4g} GB</title></rect>"
        )
        cap = x(o.memory_capacity_bytes / 1e9)
        svg.line(cap, yy + 1, cap, yy + row_h - 1, stroke="#111111", width=2)
        svg.text(left - 6, yy + row_h - 4, f"{o.hardware} x {o.devices}", anchor="end", size=10)
    svg.add(
        f'<rect x="{_f(left)}" y="{_f(top)}" width="{_f(right - left)}" height="{_f(bottom - top)}" '
        'fill="none" stroke="#444444"/>'
    )
    svg.text(
        (left + right) / 2,
        bottom + 36,
        "peak device memory per device (GB); black tick: capacity; red: does not fit",
        anchor="middle",
        size=12,
    )
    del y
    return svg.render()


def step_breakdown(result: Any) -> str:
    """SVG of stacked horizontal bars: seconds per phase on the critical path of each configuration."""
    opts = _slice_options(result)[:_MAX_ROWS]
    phases: list[str] = []
    for o in opts:
        for p, v in o.breakdown_s.items():
            if v > 0 and p not in phases:
                phases.append(p)
    colours = {p: PALETTE[i % len(PALETTE)] for i, p in enumerate(phases)}
    row_h = 16
    legend_h = 15 * len(phases) + 20
    height = max(200, _MARGIN[2] + _MARGIN[3] + max(row_h * len(opts), legend_h))
    svg = _Svg("plot-breakdown", PLOTS["plot-breakdown"], height=height)
    left, right, top = 190, _W - 180, _MARGIN[2]
    bottom = top + row_h * len(opts)
    totals = [sum(o.breakdown_s.values()) * 1e3 for o in opts]
    x = _Axis(0.0, max(totals, default=1.0) * 1.05 or 1.0, left, right, False)
    for v in x.ticks():
        svg.line(x(v), top, x(v), bottom, stroke="#e5e5e5")
        svg.text(x(v), bottom + 15, _label(v), anchor="middle", size=10)
    for k, o in enumerate(opts):
        yy = top + row_h * k
        start = 0.0
        for p in phases:
            v = o.breakdown_s.get(p, 0.0) * 1e3
            if v <= 0:
                continue
            svg.add(
                f'<rect x="{_f(x(start))}" y="{_f(yy + 3)}" width="{_f(x(start + v) - x(start))}" '
                f'height="{row_h - 6}" fill="{colours[p]}"><title>{escape(o.hardware)} x {o.devices}: '
                f"{escape(p)} {v:.4g} ms</title></rect>"
            )
            start += v
        svg.text(left - 6, yy + row_h - 4, f"{o.hardware} x {o.devices}", anchor="end", size=10)
    svg.add(
        f'<rect x="{_f(left)}" y="{_f(top)}" width="{_f(right - left)}" height="{_f(bottom - top)}" '
        'fill="none" stroke="#444444"/>'
    )
    svg.text((left + right) / 2, bottom + 36, "step time on the critical path (ms)", anchor="middle", size=12)
    _legend(svg, [(p, colours[p]) for p in phases], right + 15, top + 10)
    return svg.render()


def all_plots(result: Any) -> dict[str, str]:
    """Every plot's SVG by plot id, in :data:`PLOTS` order."""
    return {
        "plot-cost-ne": cost_vs_ne(result),
        "plot-time-devices": time_vs_devices(result),
        "plot-memory": memory_per_device(result),
        "plot-breakdown": step_breakdown(result),
    }
