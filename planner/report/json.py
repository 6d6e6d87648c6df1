"""The report's JSON document: every input resolved, every option, and the provenance of every figure.

Layout (keys sorted on output)::

    {"report": {"tool", "version", "format"},
     "inputs": {"scenario" (as written), "scenario_file", "scenario_sha256", "workloads" (resolved, per
                model scale, with derived figures), "hardware" (each profile as resolved), "sweep",
                "constraints", "economics", "simulation", "quality"},
     "provenance": {"scenario", "workload", "hardware": {name: {profile, datasheet figures with source and
                    date, calibration with its measurement hashes, price, power}}, "law", "economics",
                    "simulator"},
     "options": [... every option, each with "provenance": {"hardware": "hardware.<name>", ...}; which
                 entries each field derives from is provenance.option_fields],
     "frontier": [...], "recommendation": {...}, "plots": {plot id: {caption, shows, provenance}}}

Nothing time-dependent is written (no timestamps), so the same inputs give the same bytes.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from planner.io import to_json

FORMAT_VERSION = 1


def _calibration(profile: Any) -> dict[str, Any]:
    cal = profile.calibration
    if not cal:
        return {"status": "none", "note": "datasheet efficiencies (profile not calibrated)"}
    measured = cal.get("measured") or {}
    return {
        "status": "calibrated",
        "device_name": cal.get("device_name"),
        "device_kind": cal.get("device_kind"),
        "date": cal.get("date"),
        "files": [{"path": f.get("path"), "sha256": f.get("sha256")} for f in measured.get("files", [])],
        "software": cal.get("software"),
        "families": {k: v.get("status") for k, v in sorted((cal.get("families") or {}).items())},
    }


def _hardware_provenance(choice: Any) -> dict[str, Any]:
    from planner.hardware import profile_to_mapping

    p = choice.profile
    return {
        "origin": choice.origin,
        "profile": {"name": p.name, "source": p.source, "as_of": p.as_of, "description": p.description},
        "derived_from": profile_to_mapping(p).get("derived_from"),
        "figures": {k: dataclasses.asdict(v) for k, v in sorted(p.figures.items())},
        "calibration": _calibration(p),
        "price": {"usd_per_device_hour": choice.price_usd_per_device_hour, **choice.price.to_dict()},
        "power": {"watts": choice.power_w, **choice.power.to_dict()},
    }


def option_field_provenance() -> dict[str, list[str]]:
    """Which provenance entries each figure of an option derives from, for every field of an option;
    ``{hardware}`` is the option's ``provenance.hardware`` key (``hardware.<name>``)."""
    hw = "{hardware}"
    sim = ["simulator", "workload", f"{hw}.figures", f"{hw}.calibration"]
    train = [*sim, "inputs.sweep.samples", "economics.formulas.time_to_train_s"]
    cost = [f"{hw}.price", "economics.formulas.cost_usd"]
    target = ["law", "inputs.constraints.target_ne"]
    constraints = ["inputs.constraints", "law", *sim, f"{hw}.price"]
    return {
        "hardware": ["inputs.sweep.hardware", hw],
        "hardware_origin": ["inputs.hardware", hw],
        "model_scale": ["inputs.sweep.model_scale", "workload.model_scale"],
        "devices": ["inputs.sweep.devices"],
        "batch_size": ["inputs.sweep.batch_size"],
        "samples": ["inputs.sweep.samples"],
        "epochs": ["inputs.sweep.samples", "workload.samples_per_epoch"],
        "samples_seen": ["inputs.sweep.samples"],
        "params": ["workload", "workload.model_scale"],
        "step_time_s": sim,
        "step_time_p99_s": sim,
        "samples_per_s": sim,
        "breakdown_s": sim,
        "bottleneck": sim,
        "sharding": sim,
        "peak_memory_bytes": sim,
        "host_memory_bytes": sim,
        "fits_in_memory": sim,
        "memory_reason": sim,
        "memory_capacity_bytes": [f"{hw}.figures.device.hbm_bytes"],
        "time_to_train_s": train,
        "time_to_train_days": train,
        "price_usd_per_device_hour": [f"{hw}.price"],
        "cost_usd": [*train, *cost],
        "power_w": [f"{hw}.power"],
        "energy_kwh": [*train, f"{hw}.power", "economics.pue", "economics.formulas.energy_kwh"],
        "co2_kg": [*train, f"{hw}.power", "economics.pue", "economics.grid_kg_co2_per_kwh"],
        "ne": ["law"],
        "ne_lo80": ["law"],
        "ne_hi80": ["law"],
        "ne_lo95": ["law"],
        "ne_hi95": ["law"],
        "samples_to_target": target,
        "time_to_target_s": [*target, *sim],
        "cost_to_target_usd": [*target, *sim, *cost],
        "quality_per_dollar": ["law", *train, *cost, "economics.formulas.quality_per_dollar"],
        "feasible": constraints,
        "violations": constraints,
        "binding": constraints,
        "pareto": ["law", *train, *cost, "inputs.constraints"],
    }


def report_document(result: Any) -> dict[str, Any]:
    """The full report document for a :class:`planner.whatif.WhatIfResult` (JSON-ready)."""
    from planner import __version__
    from planner.hardware import profile_to_mapping
    from planner.report.plots import PLOTS, reference_slice
    from planner.workload import derive

    s = result.scenario
    law = s.law
    base = result.to_dict()
    options = []
    for o in base["options"]:
        o = dict(o)
        o["provenance"] = {"hardware": f"hardware.{o['hardware']}", "law": "law", "simulator": "simulator"}
        options.append(o)
    workload0 = s.workloads[0].workload
    inputs = {
        "scenario": s.raw,
        "scenario_file": s.file,
        "scenario_sha256": s.sha256,
        "workloads": [
            {
                "model_scale": sw.scale,
                "workload": dataclasses.asdict(sw.workload),
                "derived": derive(sw.workload).as_dict(),
            }
            for sw in s.workloads
        ],
        "hardware": [
            {"entry": h.entry, "origin": h.origin, "profile": profile_to_mapping(h.profile)}
            for h in s.hardware
        ],
        "sweep": {
            "hardware": [h.name for h in s.hardware],
            "devices": list(s.devices),
            "batch_size": list(s.batch_sizes),
            "samples": list(s.samples),
            "model_scale": [sw.scale for sw in s.workloads],
            "epochs": s.epochs,
        },
        "constraints": s.constraints.to_dict(),
        "economics": dataclasses.asdict(s.economics),
        "simulation": dataclasses.asdict(s.simulation),
        "objective": s.objective,
        "quality": s.quality_spec,
    }
    provenance = {
        "scenario": {"file": s.file, "sha256": s.sha256},
        "workload": {
            "ref": s.workload_ref,
            "name": workload0.name,
            "source": workload0.source,
            "epochs": s.epochs,
            "samples_per_epoch": s.samples_per_epoch,
            "model_scale": "embedding rows x s, hidden MLP widths x sqrt(s) (planner.scenario)",
        },
        "hardware": {h.name: _hardware_provenance(h) for h in s.hardware},
        "law": {
            "form": law.form,
            "x": law.x,
            "metric": law.metric,
            "params": dict(law.params),
            "source": law.source,
            "has_interval": bool(law.has_interval),
            "describe": law.describe(),
            "spec": s.quality_spec,
        },
        "economics": {
            "pue": {"value": s.economics.pue, "source": s.economics.pue_source},
            "grid_kg_co2_per_kwh": {
                "value": s.economics.grid_kg_co2_per_kwh,
                "source": (
                    f"scenario {s.file}: overrides.grid_kg_co2_per_kwh"
                    if s.economics.grid_kg_co2_per_kwh is not None
                    else "not given: no CO2 figures"
                ),
            },
            "formulas": {
                "time_to_train_s": "samples / samples_per_s (samples: total samples seen, every epoch "
                "counted)",
                "cost_usd": "devices x price_usd_per_device_hour x hours",
                "energy_kwh": "devices x power_w x hours x pue / 1000",
                "co2_kg": "energy_kwh x grid_kg_co2_per_kwh",
                "quality_per_dollar": "(reference_ne - ne) / cost_usd, reference_ne the worst "
                "predicted NE of the sweep",
            },
        },
        "option_fields": option_field_provenance(),
        "simulator": {
            "function": "planner.sim.engine.simulate",
            "recplan_version": __version__,
            **dataclasses.asdict(s.simulation),
        },
    }
    ref = reference_slice(result)
    plots = {
        pid: {
            "caption": caption,
            "slice": None if pid == "plot-cost-ne" else ref,
            "provenance": ["law", "hardware.*.price", "simulator"]
            if pid == "plot-cost-ne"
            else ["simulator", "hardware.*.figures"],
        }
        for pid, caption in PLOTS.items()
    }
    return {
        "report": {"tool": "recplan", "version": __version__, "format": FORMAT_VERSION},
        "inputs": inputs,
        "provenance": provenance,
        "summary": base["scenario"],
        "options": options,
        "frontier": base["frontier"],
        "recommendation": base["recommendation"],
        "plots": plots,
    }


def render_json(result: Any, document: dict[str, Any] | None = None) -> str:
    """The report document as deterministic JSON text (sorted keys, NaN and infinity as null)."""
    return to_json(document if document is not None else report_document(result))
