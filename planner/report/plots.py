"""Deterministic hand-written SVG plots of a what-if result (no timestamps, no random ids, fixed rounding).

Four plots, each a self-contained ``<svg>`` string with a stable ``id``:

* ``plot-cost-ne``: cost (USD, log) against predicted NE for every option; the frontier as a step line with
  the 80% interval of each frontier option, the recommended option ringed and labelled, infeasible options
  hollow, and the areas the budget and the target NE rule out shaded;
* ``plot-time-devices``: time-to-train (days, log) against device count (log) per hardware, for the
  reference slice (the recommended option's batch, model scale and samples; else the first of each);
* ``plot-memory``: peak memory per device against each device's capacity, per hardware and device count;
* ``plot-breakdown``: the critical-path step-time breakdown per simulated configuration of the slice, in
  plain phase names, compute and communication in separate colour families.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape
from typing import Any

from planner.economics import fmt_usd

#: Plot ids, in the order reports show them, with their captions.
PLOTS: dict[str, str] = {
    "plot-cost-ne": "Cost against predicted NE of every option. The black step line is the frontier (no "
    "cheaper option predicts a better NE), its points numbered as in the Frontier table, with their 80% "
    "intervals; the green ring is the recommendation; hollow markers miss a constraint; shaded areas are "
    "ruled out by the budget or the target NE. Hover a marker for its option.",
    "plot-time-devices": "Time-to-train against device count, one line per hardware (hollow: does not fit "
    "in memory; green ring: the recommendation).",
    "plot-memory": "Peak memory per device against the device's capacity.",
    "plot-breakdown": "Where one training step's time goes (critical path), per configuration; the note "
    "at the end of each bar is the step time and its bottleneck.",
}
#: Plots that show one slice of the sweep (one batch, model scale and data size).
SLICED = ("plot-time-devices", "plot-memory", "plot-breakdown")
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
_W, _H = 900, 440
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
        """Tick values: 1-2-5 (or 1-3, or decades) on a log axis, falling back to evenly spaced values
        when the log axis spans too little for three of them; 1-2-2.5-5 steps on a linear axis."""
        if self.log:
            lo, hi = math.floor(math.log10(self.lo)), math.ceil(math.log10(self.hi))
            decades = math.log10(self.hi / self.lo)
            steps = (1, 2, 5) if decades <= 3 else (1, 3) if decades <= 5 else (1,)
            out = []
            for e in range(lo, hi + 1):
                for m in steps:
                    v = m * 10.0**e
                    if self.lo <= v * (1 + 1e-9) and v <= self.hi * (1 + 1e-9):
                        out.append(v)
            if len(out) >= 3:
                return out
            return [v for v in self._linear_ticks(4) if v > 0]
        return self._linear_ticks(6)

    def _linear_ticks(self, count: int) -> list[float]:
        span = self.hi - self.lo
        raw = span / count if span > 0 else 1.0
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

    def rect(self, x: float, y: float, w: float, h: float, attrs: str, title: str | None = None) -> None:
        """A rectangle at (x, y) of w x h pixels; ``attrs`` are extra SVG attributes, ``title`` a tooltip."""
        tip = f"><title>{escape(title)}</title></rect>" if title else "/>"
        self.add(f'<rect x="{_f(x)}" y="{_f(y)}" width="{_f(w)}" height="{_f(h)}" {attrs}{tip}')

    def circle(self, cx: float, cy: float, r: float, attrs: str, title: str | None = None) -> None:
        """A circle of radius ``r`` pixels; ``attrs`` are extra SVG attributes, ``title`` a tooltip."""
        tip = f"><title>{escape(title)}</title></circle>" if title else "/>"
        self.add(f'<circle cx="{_f(cx)}" cy="{_f(cy)}" r="{r:g}" {attrs}{tip}')

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


def slice_text(result: Any) -> str:
    """One line naming the reference slice of the per-hardware plots and why it was chosen."""
    ref = reference_slice(result)
    rec = result.recommendation
    why = (
        "the recommended option's"
        if rec.get("option")
        else "the closest option's"
        if rec.get("closest")
        else "the first of each sweep axis"
    )
    return (
        f"Shown for batch {ref['batch_size']}, {ref['samples']:.3g} samples and model scale "
        f"x{ref['model_scale']:g} ({why}); every option is in options.csv."
    )


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


def short_label(o: Any, scenario: Any) -> str:
    """``hardware x devices`` plus only the sweep axes that vary (model scale, batch, samples)."""
    parts = [f"{o.hardware} x {o.devices}"]
    if len(scenario.workloads) > 1:
        parts.append(f"scale x{o.model_scale:g}")
    if len(scenario.batch_sizes) > 1:
        parts.append(f"batch {o.batch_size}")
    if len(scenario.samples) > 1:
        parts.append(f"{o.samples:.3g} samples")
    return ", ".join(parts)


def _number_frontier(
    svg: _Svg, points: list[tuple[float, float]], left: float, *, below: bool, size: int = 10
) -> None:
    """Number the frontier points 1, 2, ... (cheapest first, as in the reports' frontier tables).

    No cheaper option predicts a better metric than a frontier point, so the corner left of it and towards
    the better metric (``below`` on the page for lower-is-better) holds no feasible option: the number goes
    there, or to the right when the frame's ``left`` edge is too close. A number that would touch one
    already written is left out (its point is still in the table)."""
    placed: list[tuple[float, float]] = []
    for k, (px, py) in enumerate(points):
        text = str(k + 1)
        ty = py + 15 if below else py - 8
        width = 0.6 * size * len(text)
        tx, anchor = (px - 7, "end") if px - 7 - width >= left + 2 else (px + 7, "start")
        cx = tx - width / 2 if anchor == "end" else tx + width / 2
        if any(abs(cx - x0) < width + 4 and abs(ty - y0) < size + 1 for x0, y0 in placed):
            continue
        svg.text(tx, ty, text, anchor=anchor, size=size, fill="#111111", weight="bold")
        placed.append((cx, ty))


def _metric_name(result: Any) -> str:
    metric = result.scenario.law.metric
    return "NE" if metric == "ne" else metric


def cost_vs_ne(result: Any) -> str:
    """SVG of cost (log) against NE for every option: the frontier as a step line with the 80% interval of
    each frontier option, the recommended option labelled, and what the budget and target NE rule out
    shaded.

    The interval is drawn for frontier options only: options with the same data size share one prediction
    (and so one interval), and an error bar on each of them hides the points."""
    s = result.scenario
    better = s.law.higher_is_better
    metric = _metric_name(result)
    opts = sorted(result.options, key=lambda o: o.id)
    front = [result.option(i) for i in result.frontier]
    rec = result.recommendation.get("option")
    colours = hardware_colours([h.name for h in s.hardware])
    svg = _Svg("plot-cost-ne", PLOTS["plot-cost-ne"])
    left, right, top, bottom = _MARGIN[0], _W - 190, _MARGIN[2], _H - _MARGIN[3]
    costs = [o.cost_usd for o in opts]
    nes = [o.ne for o in opts] + [v for o in front for v in (o.ne_lo80, o.ne_hi80) if v is not None]
    c = s.constraints
    if c.max_cost_usd is not None:
        costs.append(c.max_cost_usd)
    if c.target_ne is not None:
        nes.append(c.target_ne)
    x = _Axis(*_range(costs, True), left, right, True)
    y = _Axis(*_range(nes, False, pad=0.08), bottom, top, False)
    direction = "higher" if better else "lower"
    _frame(
        svg,
        x,
        y,
        "cost of the training run (US dollars, log scale)",
        f"predicted {metric} ({direction} is better)",
    )
    shade = 'fill="#b00020" fill-opacity="0.06"'
    if c.target_ne is not None:
        yt = min(max(y(c.target_ne), top), bottom)
        y0, y1 = (yt, bottom) if better else (top, yt)
        if y1 > y0:
            svg.rect(left, y0, right - left, y1 - y0, shade)
        svg.line(left, yt, right, yt, stroke="#b00020", dash="5,4")
        label_y = yt + 13 if better else yt - 5
        svg.text(left + 6, label_y, f"misses target {metric} {c.target_ne:g}", size=10, fill="#b00020")
    if c.max_cost_usd is not None:
        xb = min(max(x(c.max_cost_usd), left), right)
        if right > xb:
            svg.rect(xb, top, right - xb, bottom - top, shade)
        svg.line(xb, top, xb, bottom, stroke="#b00020", dash="5,4")
        label = f"over budget ({fmt_usd(c.max_cost_usd)})"
        # Right of the line when it fits inside the frame (about 6 px per character), else left of it.
        if xb + 8 + 6 * len(label) <= right:
            svg.text(xb + 4, bottom - 6, label, size=10, fill="#b00020")
        else:
            svg.text(xb - 4, bottom - 6, label, anchor="end", size=10, fill="#b00020")
    for o in opts:
        col = colours[o.hardware]
        if o.feasible:
            style = f'fill="{col}" stroke="{col}" stroke-width="1"'
        else:
            style = f'fill="none" stroke="{col}" stroke-width="1" stroke-opacity="0.5"'
        tip = (
            f"{o.label()}: {fmt_usd(o.cost_usd)}, {o.time_to_train_days:.3g} days, {metric} {o.ne:.5f}"
            f"{'' if o.feasible else ' (infeasible: ' + o.binding + ')'}"
        )
        svg.circle(x(o.cost_usd), y(o.ne), 3.5, style, tip)
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
            px, py = x(o.cost_usd), y(o.ne)
            iv = o.interval80
            if iv:
                lo, hi = y(iv[0]), y(iv[1])
                svg.line(px, lo, px, hi, stroke="#111111", width=1.2)
                svg.line(px - 4, lo, px + 4, lo, stroke="#111111", width=1.2)
                svg.line(px - 4, hi, px + 4, hi, stroke="#111111", width=1.2)
            bounds = (
                f"(80%: {o.ne_lo80:.5f}-{o.ne_hi80:.5f})"
                if o.ne_lo80 is not None and o.ne_hi80 is not None
                else "(no 80% interval: law without uncertainty)"
            )
            tip = f"frontier: {o.label()}: {fmt_usd(o.cost_usd)}, {metric} {o.ne:.5f} {bounds}"
            svg.circle(px, py, 6, 'fill="none" stroke="#111111" stroke-width="1.5"', tip)
    if rec is not None:
        o = result.option(rec["id"])
        svg.circle(
            x(o.cost_usd),
            y(o.ne),
            9,
            'class="recommended" fill="none" stroke="#2e7d32" stroke-width="2.5"',
            f"recommended: {o.label()}",
        )
    _number_frontier(svg, [(x(o.cost_usd), y(o.ne)) for o in front], left, below=not better)
    items = [(h.name, colours[h.name]) for h in s.hardware]
    _legend(svg, items, right + 15, top + 10)
    ly = top + 10 + 15 * len(items) + 8
    svg.circle(right + 20, ly - 3, 3.5, 'fill="#444444"')
    svg.text(right + 32, ly + 1, "feasible", size=10)
    ly += 15
    svg.circle(right + 20, ly - 3, 3.5, 'fill="none" stroke="#444444"')
    svg.text(right + 32, ly + 1, "infeasible", size=10)
    if front:
        ly += 17
        svg.line(right + 12, ly - 3, right + 28, ly - 3, stroke="#111111", width=1.8)
        svg.circle(right + 20, ly - 3, 5, 'fill="none" stroke="#111111" stroke-width="1.5"')
        svg.text(right + 32, ly + 1, "frontier, numbered as in", size=10)
        ly += 13
        svg.text(right + 32, ly + 1, "the Frontier table", size=10)
        if any(o.interval80 for o in front):
            ly += 15
            svg.line(right + 20, ly - 9, right + 20, ly + 3, stroke="#111111", width=1.2)
            svg.text(right + 32, ly + 1, "80% interval", size=10)
    if rec is not None:
        ly += 17
        svg.circle(right + 20, ly - 3, 6, 'fill="none" stroke="#2e7d32" stroke-width="2.5"')
        svg.text(right + 32, ly + 1, "recommended", size=10)
    if c.max_cost_usd is not None or c.target_ne is not None:
        ly += 15
        svg.rect(right + 14, ly - 8, 12, 10, f'{shade} stroke="#b00020" stroke-opacity="0.4"')
        svg.text(right + 32, ly + 1, "ruled out by a constraint", size=10)
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
    rec = result.recommendation.get("option")
    items = [(h.name, colours[h.name]) for h in s.hardware]
    _legend(svg, items, right + 15, top + 10)
    if rec is not None:
        o = result.option(rec["id"])
        svg.circle(
            x(o.devices),
            y(o.time_to_train_days),
            8,
            'class="recommended" fill="none" stroke="#2e7d32" stroke-width="2.5"',
            f"recommended: {o.label()}",
        )
        ly = top + 10 + 15 * len(items) + 8
        svg.circle(right + 20, ly - 3, 6, 'fill="none" stroke="#2e7d32" stroke-width="2.5"')
        svg.text(right + 32, ly + 1, "recommended", size=10)
    return svg.render()


def memory_per_device(result: Any) -> str:
    """SVG of horizontal bars: peak memory per device over a light bar of that device's capacity."""
    opts = _slice_options(result)[:_MAX_ROWS]
    colours = hardware_colours([h.name for h in result.scenario.hardware])
    row_h = 18
    height = max(160, _MARGIN[2] + _MARGIN[3] + row_h * len(opts))
    svg = _Svg("plot-memory", PLOTS["plot-memory"], height=height)
    left, right, top = 190, _W - 170, _MARGIN[2]
    bottom = top + row_h * len(opts)
    values = [o.peak_memory_bytes / 1e9 for o in opts] + [o.memory_capacity_bytes / 1e9 for o in opts]
    x = _Axis(0.0, max(values, default=1.0) * 1.05, left, right, False)
    for v in x.ticks():
        svg.line(x(v), top, x(v), bottom, stroke="#e5e5e5")
        svg.text(x(v), bottom + 15, _label(v), anchor="middle", size=10)
    for k, o in enumerate(opts):
        yy = top + row_h * k
        used, cap = o.peak_memory_bytes / 1e9, o.memory_capacity_bytes / 1e9
        col = colours[o.hardware] if o.fits_in_memory else "#b00020"
        svg.rect(left, yy + 2, x(cap) - left, row_h - 4, 'fill="#eeeeee"')
        tip = f"{o.hardware} x {o.devices}: {used:.4g} GB of {cap:.4g} GB" + (
            "" if o.fits_in_memory else f" (does not fit: {o.memory_reason})"
        )
        svg.rect(left, yy + 4, x(used) - left, row_h - 8, f'fill="{col}"', tip)
        svg.line(x(cap), yy + 1, x(cap), yy + row_h - 1, stroke="#111111", width=2)
        svg.text(left - 6, yy + row_h - 5, f"{o.hardware} x {o.devices}", anchor="end", size=10)
        share = f"{100 * used / cap:.0f}%" if cap > 0 else ""
        note = f"{used:.3g} of {cap:.3g} GB ({share})" + ("" if o.fits_in_memory else ", does not fit")
        svg.text(
            max(x(cap), x(used)) + 6,
            yy + row_h - 5,
            note,
            size=10,
            fill="#222222" if o.fits_in_memory else "#b00020",
        )
    svg.add(
        f'<rect x="{_f(left)}" y="{_f(top)}" width="{_f(right - left)}" height="{_f(bottom - top)}" '
        'fill="none" stroke="#444444"/>'
    )
    svg.text(
        (left + right) / 2,
        bottom + 36,
        "peak memory per device (GB); grey bar and black tick: the device's capacity; red: does not fit",
        anchor="middle",
        size=12,
    )
    return svg.render()


#: Plain names of the simulator's step phases and the group each belongs to, in step order.
PHASE_NAMES: dict[str, tuple[str, str]] = {
    "input": ("input: host-to-device copy", "input"),
    "input_a2a": ("id all-to-all (input distribution)", "communication"),
    "embedding_fwd": ("embedding lookup", "compute"),
    "a2a_fwd": ("embedding all-to-all, forward", "communication"),
    "bottom_mlp": ("bottom MLP", "compute"),
    "interaction": ("feature interaction", "compute"),
    "top_mlp": ("top MLP", "compute"),
    "backward_dense": ("dense backward", "compute"),
    "allreduce_exposed": ("gradient all-reduce (not hidden)", "communication"),
    "a2a_bwd": ("embedding all-to-all, backward", "communication"),
    "embedding_bwd_update": ("embedding backward and update", "compute"),
    "optimizer": ("dense optimizer", "compute"),
    "load_imbalance": ("waiting for the slowest shard", "communication"),
    "host_overhead_exposed": ("host launch overhead (not hidden)", "host"),
}
#: Colour families per phase group: compute in blues and greens, communication in oranges and reds.
_GROUP_COLOURS = {
    "compute": ("#08519C", "#3182BD", "#6BAED6", "#9ECAE1", "#006D2C", "#31A354", "#74C476", "#A1D99B"),
    "communication": ("#D94801", "#FD8D3C", "#A50F15", "#FB6A4A", "#FDAE6B"),
    "input": ("#8C6D31",),
    "host": ("#969696",),
}


def phase_colours(phases: list[str]) -> dict[str, str]:
    """A fixed colour per phase: each group (compute, communication, input, host) has its own family."""
    used: dict[str, int] = {}
    out = {}
    for p in phases:
        group = PHASE_NAMES.get(p, (p, "host"))[1]
        family = _GROUP_COLOURS[group]
        out[p] = family[used.get(group, 0) % len(family)]
        used[group] = used.get(group, 0) + 1
    return out


def step_breakdown(result: Any) -> str:
    """SVG of stacked horizontal bars: milliseconds per phase on the critical path of each configuration,
    compute phases in blues and greens, communication in oranges and reds, each bar's total and bottleneck
    at its end."""
    opts = _slice_options(result)[:_MAX_ROWS]
    present = {p for o in opts for p, v in o.breakdown_s.items() if v > 0}
    phases = [p for p in PHASE_NAMES if p in present]
    phases += sorted(present - set(phases))
    colours = phase_colours(phases)
    row_h = 18
    legend_h = 15 * len(phases) + 20
    height = max(200, _MARGIN[2] + _MARGIN[3] + max(row_h * len(opts), legend_h))
    svg = _Svg("plot-breakdown", PLOTS["plot-breakdown"], height=height)
    left, right, top = 170, _W - 260, _MARGIN[2]
    bottom = top + row_h * len(opts)
    totals = [sum(o.breakdown_s.values()) * 1e3 for o in opts]
    # Headroom for the "12.3 ms, communication" note at the end of the longest bar.
    x = _Axis(0.0, max(totals, default=1.0) * 1.35 or 1.0, left, right, False)
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
            name = PHASE_NAMES.get(p, (p, ""))[0]
            svg.add(
                f'<rect x="{_f(x(start))}" y="{_f(yy + 3)}" width="{_f(x(start + v) - x(start))}" '
                f'height="{row_h - 6}" fill="{colours[p]}"><title>{escape(o.hardware)} x {o.devices}: '
                f"{escape(name)} {v:.4g} ms</title></rect>"
            )
            start += v
        svg.text(left - 6, yy + row_h - 5, f"{o.hardware} x {o.devices}", anchor="end", size=10)
        svg.text(x(start) + 5, yy + row_h - 5, f"{start:.3g} ms, {o.bottleneck}", size=10, fill="#444444")
    svg.add(
        f'<rect x="{_f(left)}" y="{_f(top)}" width="{_f(right - left)}" height="{_f(bottom - top)}" '
        'fill="none" stroke="#444444"/>'
    )
    svg.text(
        (left + right) / 2,
        bottom + 36,
        "time of one training step on the critical path (ms)",
        anchor="middle",
        size=12,
    )
    _legend(svg, [(PHASE_NAMES.get(p, (p, ""))[0], colours[p]) for p in phases], right + 15, top + 10)
    return svg.render()


def all_plots(result: Any) -> dict[str, str]:
    """Every plot's SVG by plot id, in :data:`PLOTS` order."""
    return {
        "plot-cost-ne": cost_vs_ne(result),
        "plot-time-devices": time_vs_devices(result),
        "plot-memory": memory_per_device(result),
        "plot-breakdown": step_breakdown(result),
    }
