"""Rows shared by the Markdown and HTML reports: options, frontier, hardware inputs (plain strings)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from planner.economics import fmt_kwh, fmt_usd
from planner.report.plots import short_label

#: Options shown in the Markdown and HTML tables; every option is in options.csv and report.json.
MAX_OPTION_ROWS = 200

#: What each ``binding`` value means, for the "What binds" tables.
BINDING_MEANING = {
    "memory": "does not fit in device memory (constraint must_fit_memory)",
    "deadline": "takes longer than max_days",
    "budget": "costs more than max_cost_usd",
    "target_ne": "predicted NE misses target_ne",
    "compute": "feasible; the step is limited by computation: kernels on the device, or the host's CPU "
    "launching them",
    "communication": "feasible; the step is limited by communication (all-to-all, all-reduce, stragglers)",
}


def law_text(law: Any) -> str:
    """The quality law in one line, ``ne = alpha*x^(-beta) + gamma, x = samples seen (alpha=2, ...)``."""
    from planner.quality import FLOPS_PER_PF_DAY, FORM_FORMULA

    formula = FORM_FORMULA.get(law.form, "")
    if law.form == "two_axis" or " = " not in formula:
        return str(law.describe())
    params = ", ".join(f"{k}={v:.6g}" for k, v in law.params.items())
    axis = {"samples": "samples seen", "params": "parameters", "flops": "training FLOPs"}.get(law.x, law.x)
    scale = float(getattr(law, "x_scale", 1.0))
    if scale == FLOPS_PER_PF_DAY:
        axis += " in PF-days"
    elif scale != 1.0:
        axis += f" / {scale:g}"
    return f"{law.metric} = {formula.split(' = ', 1)[1]}, x = {axis} ({params})"


def money(value: float | None) -> str:
    """US dollars as :func:`planner.economics.fmt_usd` writes them (whole dollars from $10 up, cents
    below); ``n/a`` for ``None``."""
    if value is None:
        return "n/a"
    return fmt_usd(value)


def _metric(result: Any) -> str:
    return "NE" if result.scenario.law.metric == "ne" else result.scenario.law.metric


def _interval_cell(o: Any) -> str:
    iv = o.interval80
    return f"{iv[0]:.5f}–{iv[1]:.5f}" if iv else ""


def _interval(o: Any) -> str:
    return _interval_cell(o) or "none (law without interval)"


def option_columns(result: Any) -> list[tuple[str, Callable[[Any], str]]]:
    """(title, cell function) of the option tables; sweep axes with one value and absent figures (CO2
    without a grid intensity) are left out, since options.csv and report.json carry every figure."""
    s = result.scenario
    cols: list[tuple[str, Callable[[Any], str]]] = [
        ("rank", lambda o: str(o.rank)),
        ("frontier", lambda o: "*" if o.pareto else ""),
        ("hardware", lambda o: o.hardware),
        ("devices", lambda o: str(o.devices)),
    ]
    if len(s.workloads) > 1:
        cols.append(("model scale", lambda o: f"x{o.model_scale:g}"))
    if len(s.batch_sizes) > 1:
        cols.append(("batch", lambda o: str(o.batch_size)))
    if len(s.samples) > 1:
        cols.append(("samples", lambda o: f"{o.samples:.3g}"))
    cols += [
        ("step (ms)", lambda o: f"{o.step_time_s * 1e3:.3f}"),
        ("samples/s", lambda o: f"{o.samples_per_s:,.0f}"),
        ("days", lambda o: f"{o.time_to_train_days:.4g}"),
        ("cost", lambda o: money(o.cost_usd)),
        ("energy (kWh)", lambda o: fmt_kwh(o.energy_kwh)),
    ]
    if s.economics.grid_kg_co2_per_kwh is not None:
        cols.append(("CO2 (kg)", lambda o: "n/a" if o.co2_kg is None else f"{o.co2_kg:,.1f}"))
    cols += [
        (
            "memory/device (GB)",
            lambda o: f"{o.peak_memory_bytes / 1e9:.2f} of {o.memory_capacity_bytes / 1e9:.0f}",
        ),
        (_metric(result), lambda o: f"{o.ne:.5f}"),
        ("80% interval", _interval_cell),
        ("feasible", lambda o: "yes" if o.feasible else "no"),
        ("binding", lambda o: o.binding_text()),
    ]
    return cols


def option_header(result: Any) -> list[str]:
    """Column titles of the option tables."""
    return [title for title, _ in option_columns(result)]


def option_rows(result: Any, options: list[Any] | tuple[Any, ...]) -> list[list[str]]:
    """The given options as table rows (columns of :func:`option_columns`)."""
    cols = option_columns(result)
    return [[cell(o) for _, cell in cols] for o in options]


def frontier_header(result: Any) -> list[str]:
    """Column titles of the frontier table: the point number of the cost/NE plot, then the option columns."""
    return ["point", *option_header(result)]


def frontier_rows(result: Any) -> list[list[str]]:
    """The frontier options, cheapest first, numbered as in the cost/NE plot."""
    front = [result.option(i) for i in result.frontier]
    return [[str(k + 1), *row] for k, row in enumerate(option_rows(result, front))]


def glance_header(result: Any) -> list[str]:
    """Column titles of the at-a-glance table of the recommendation and its alternatives."""
    return ["", "option", "days", "cost", "energy (kWh)", _metric(result), "80% interval", "binding"]


def glance_rows(result: Any) -> list[list[str]]:
    """The recommended option, the fastest feasible and the best-quality feasible one (or, when nothing is
    feasible, the closest option), one row each, without repeating an option."""
    rec = result.recommendation
    picks: list[tuple[str, dict[str, Any] | None]] = []
    if rec.get("option"):
        picks.append(("recommended", rec["option"]))
        alt = rec.get("alternatives") or {}
        picks.append(("fastest feasible", alt.get("fastest")))
        picks.append(("best quality", alt.get("best_quality")))
    else:
        picks.append(("closest (infeasible)", rec.get("closest")))
    rows: list[list[str]] = []
    seen: set[int] = set()
    for title, summary in picks:
        if not summary or summary["id"] in seen:
            continue
        seen.add(summary["id"])
        o = result.option(summary["id"])
        rows.append(
            [
                title,
                short_label(o, result.scenario),
                f"{o.time_to_train_days:.3g}",
                money(o.cost_usd),
                fmt_kwh(o.energy_kwh),
                f"{o.ne:.5f}",
                _interval(o),
                o.binding_text(),
            ]
        )
    return rows


def target_text(result: Any) -> str | None:
    """One sentence on the data needed to reach the target NE on the recommended (or closest) option, or
    ``None`` when no target is set or the law does not give it."""
    s = result.scenario
    target = s.constraints.target_ne
    rec = result.recommendation
    summary = rec.get("option") or rec.get("closest")
    if target is None or not summary:
        return None
    o = result.option(summary["id"])
    metric = _metric(result)
    if o.samples_to_target is None:
        if s.law.x_for_target(target) is None:
            return f"The quality law never reaches {metric} {target:g} (it is beyond the law's floor)."
        return None
    days = (o.time_to_target_s or 0.0) / 86400.0
    return (
        f"Reaching target {metric} {target:g} takes {o.samples_to_target:.3g} samples seen: "
        f"{days:.3g} days and {money(o.cost_to_target_usd)} on {o.hardware} x {o.devices}."
    )


def hardware_header() -> list[str]:
    """Column titles of the hardware table."""
    return [
        "hardware",
        "origin",
        "price ($/device-h)",
        "price source",
        "power (W)",
        "power source",
        "HBM (GB)",
        "calibration",
    ]


def hardware_rows(result: Any, document: dict[str, Any]) -> list[list[str]]:
    """One row per hardware choice with the provenance of its price and power."""
    rows = []
    for h in result.scenario.hardware:
        prov = document["provenance"]["hardware"][h.name]
        cal = prov["calibration"]
        cal_text = (
            "none (datasheet efficiencies)"
            if cal["status"] == "none"
            else f"{cal.get('device_name')} {cal.get('date')}: "
            + ", ".join(f"{f['path']} sha256 {str(f['sha256'])[:12]}" for f in cal.get("files", []))
        )
        derived = prov.get("derived_from")
        origin = h.origin + (f" (derived from {derived['base']})" if derived else "")
        rows.append(
            [
                h.name,
                origin,
                f"{h.price_usd_per_device_hour:.2f}",
                f"{h.price.source} ({h.price.status}, {h.price.as_of})",
                f"{h.power_w:.0f}",
                f"{h.power.source} ({h.power.status}, {h.power.as_of})",
                f"{h.profile.device.hbm_bytes / 1e9:.0f}",
                cal_text,
            ]
        )
    return rows


def binding_header() -> list[str]:
    """Column titles of the "What binds" table."""
    return ["binding", "options", "meaning"]


def binding_rows(result: Any) -> list[list[str]]:
    """How many options each binding limits (constraint or bottleneck), most common first; the compute
    row says how many of its steps the host bounds (their ``bottleneck`` is ``host``)."""
    counts = result.recommendation["binding_counts"]
    host = sum(1 for o in result.options if o.host_bound)
    rows = []
    for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        meaning = BINDING_MEANING.get(k, "")
        if k == "compute" and host:
            meaning += f" ({host} of these host-bound: bottleneck host)"
        rows.append([k, str(v), meaning])
    return rows


def input_items(result: Any) -> list[tuple[str, str]]:
    """(label, plain text) of the resolved inputs: scenario, workload, quality law, sweep, constraints,
    economics, objective."""
    s = result.scenario
    law = s.law
    c = s.constraints
    econ = s.economics
    grid = (
        f"{econ.grid_kg_co2_per_kwh:g} kg CO2/kWh"
        if econ.grid_kg_co2_per_kwh is not None
        else "intensity not given (no CO2 figures)"
    )
    return [
        ("Scenario", s.file),
        ("Scenario sha256", s.sha256),
        (
            "Workload",
            f"{s.workload_ref}; model scales {', '.join(f'x{w.scale:g}' for w in s.workloads)} "
            f"(embedding rows x s, hidden MLP widths x sqrt(s)); {s.samples_per_epoch:.3g} samples per epoch "
            f"x {s.epochs:g} epochs (the default data size; sweep.samples count total samples seen)",
        ),
        ("Quality", law_text(law)),
        ("Quality source", law.source),
        (
            "Sweep",
            f"{len(s.hardware)} hardware x {len(s.workloads)} model scales x {len(s.devices)} device counts "
            f"({', '.join(map(str, s.devices))}) x {len(s.batch_sizes)} batch sizes "
            f"({', '.join(map(str, s.batch_sizes))}) x {len(s.samples)} data sizes in samples seen "
            f"({', '.join(f'{v:.3g}' for v in s.samples)}) = {len(result.options)} options, "
            f"{result.unique_simulations} simulations ({s.simulation.steps} steps, seed {s.simulation.seed}, "
            f"sharding {s.simulation.sharding})",
        ),
        (
            "Constraints",
            ", ".join(
                [
                    f"max_days {c.max_days:g}" if c.max_days is not None else "no deadline",
                    f"max_cost_usd {fmt_usd(c.max_cost_usd)}" if c.max_cost_usd is not None else "no budget",
                    f"target_ne {c.target_ne:g}" if c.target_ne is not None else "no target NE",
                    "must fit in memory" if c.must_fit_memory else "memory not enforced",
                ]
            ),
        ),
        ("Economics", f"PUE {econ.pue:g} ({econ.pue_source}); grid {grid}"),
        ("Objective", s.objective),
    ]
