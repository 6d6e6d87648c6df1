"""Rows shared by the Markdown and HTML reports: options, frontier, hardware inputs (plain strings)."""

from __future__ import annotations

from typing import Any

#: Options shown in the Markdown and HTML tables; every option is in options.csv and report.json.
MAX_OPTION_ROWS = 200


def money(value: float | None) -> str:
    """US dollars, whole dollars from $10 up."""
    if value is None:
        return "n/a"
    return f"${value:,.0f}" if value >= 10 else f"${value:,.2f}"


def option_header(result: Any) -> list[str]:
    """Column titles of the option tables."""
    metric = "NE" if result.scenario.law.metric == "ne" else result.scenario.law.metric
    return [
        "rank",
        "frontier",
        "hardware",
        "devices",
        "scale",
        "batch",
        "samples",
        "step (ms)",
        "samples/s",
        "days",
        "cost",
        "energy (kWh)",
        "CO2 (kg)",
        "memory/device (GB)",
        "capacity (GB)",
        metric,
        "80% interval",
        "feasible",
        "binding",
    ]


def option_row(o: Any) -> list[str]:
    """One option as table cells."""
    return [
        str(o.rank),
        "*" if o.pareto else "",
        o.hardware,
        str(o.devices),
        f"{o.model_scale:g}",
        str(o.batch_size),
        f"{o.samples:.3g}",
        f"{o.step_time_s * 1e3:.3f}",
        f"{o.samples_per_s:,.0f}",
        f"{o.time_to_train_days:.4g}",
        money(o.cost_usd),
        f"{o.energy_kwh:,.1f}",
        "n/a" if o.co2_kg is None else f"{o.co2_kg:,.1f}",
        f"{o.peak_memory_bytes / 1e9:.2f}",
        f"{o.memory_capacity_bytes / 1e9:.0f}",
        f"{o.ne:.5f}",
        f"{o.ne_lo80:.5f}-{o.ne_hi80:.5f}",
        "yes" if o.feasible else "no",
        o.binding,
    ]


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


def binding_rows(result: Any) -> list[list[str]]:
    """How many options each binding limits (constraint or bottleneck)."""
    counts = result.recommendation["binding_counts"]
    return [[k, str(v)] for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
