"""Write a calibrated hardware profile: fitted parameters with uncertainty, CV error and provenance.

The written profile is the base profile with:

* ``calibration``: per family ``{status, params: {name: {value, stderr, status}}, sigma_rel, cv, cases,
  failed}``, plus the measurement files (path, sha256, record counts), device, date, software versions,
  method and the transfer rule. A family without measurements keeps the base profile's values (its own
  calibration entry if it had one, else the datasheet defaults) and is marked ``datasheet``.
* ``efficiency``: the EfficiencySpec fields that a fitted parameter maps onto (GEMM peak fraction, memory
  and host-link fractions, collective fractions and latencies, launch overhead), marked ``measured`` in
  ``figures`` with the measurement file's hash; ``figures`` also gets one ``efficiency.<family>`` entry per
  calibrated family.
* On a CPU, the device is the measured one: ``device.sm_count`` becomes the threads the bench used, the
  peak FLOP/s scale with it (per-core peak of the base), and the memory size is the measured one. On any
  device, ``device.l2_bytes`` becomes the cache size the bench read (``env.cache_bytes``) where it did.
"""

from __future__ import annotations

import copy
import importlib.metadata
from collections.abc import Mapping
from typing import Any

from calibration.fit import FamilyFit
from calibration.measurements import MeasurementSet
from planner.cost.registry import FAMILIES

#: EfficiencySpec field <- (family, parameter) it is taken from when that parameter was fitted.
EFFICIENCY_FROM_FIT: dict[str, tuple[str, str]] = {
    "hbm_fraction": ("memory", "bandwidth_fraction"),
    "host_link_fraction": ("memory", "host_link_fraction"),
    "allreduce_intra_fraction": ("collective", "allreduce_intra_fraction"),
    "alltoall_intra_fraction": ("collective", "alltoall_intra_fraction"),
    "network_fraction": ("collective", "network_fraction"),
    "collective_latency_intra_s": ("collective", "latency_intra_s"),
    "collective_latency_inter_s": ("collective", "latency_inter_s"),
    "kernel_launch_s": ("overhead", "host_overhead_s"),
}
METHOD = ("robust least squares on log time (scipy.optimize.least_squares, soft_l1 loss, f_scale 0.05, two "
          "starts); k-fold cross-validation with a fixed shuffle (seed 0)")
TRANSFER_RULE = ("parameters are fractions of this profile's datasheet figures or absolute host/protocol "
                 "costs; a profile derived from this one keeps them, so times scale with its changed figures "
                 "while launch overheads and latencies carry over unchanged (status: transferred)")
_ENV_KEYS = ("device_name", "device_kind", "compute_units", "memory_bytes", "cache_bytes", "clocks", "driver",
             "cuda",
             "torch",
             "cpu_model", "threads", "hostname", "date", "git_commit", "python", "platform", "speed_probe")


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def file_label(measurements: MeasurementSet) -> str:
    """Short provenance text: each file's name with the first 12 digits of its SHA-256."""
    return ", ".join(f"{f.path} (sha256 {f.sha256[:12]})" for f in measurements.files)


def target_mapping(base: Mapping[str, Any], measurements: MeasurementSet, today: str) -> dict[str, Any]:
    """The base profile mapping adjusted to the measured device (CPU: threads, peak, memory), no calibration.

    Fitted parameters are fractions of this mapping's figures, so the fit must use it (not the base).
    """
    data = copy.deepcopy(dict(base))
    data.pop("calibration", None)
    figures = dict(data.get("figures", {}))
    env = measurements.env
    where = file_label(measurements)
    if data.get("kind") == "cpu":
        threads = env.get("threads") or env.get("compute_units")
        device = dict(data["device"])
        if isinstance(threads, (int, float)) and threads > 0 and int(threads) != int(device["sm_count"]):
            old = int(device["sm_count"])
            scale = int(threads) / old
            device["peak_flops"] = {k: float(v) * scale for k, v in device["peak_flops"].items()}
            device["sm_count"] = int(threads)
            figures["device.sm_count"] = {
                "source": f"measured: {int(threads)} threads used by the benchmark (env.threads of {where})",
                "as_of": today, "status": "measured"}
            figures["device.peak_flops"] = {
                "source": f"per-core peak of the base profile ({old} cores) x {int(threads)} measured "
                          "threads",
                "as_of": today, "status": "derived"}
        memory = env.get("memory_bytes")
        if isinstance(memory, (int, float)) and memory > 0:
            device["hbm_bytes"] = float(memory)
            figures["device.hbm_bytes"] = {"source": f"measured: host memory (env.memory_bytes of {where})",
                                           "as_of": today, "status": "measured"}
            node = dict(data["node"])
            node["host_memory_bytes"] = float(memory)
            figures["node.host_memory_bytes"] = dict(figures["device.hbm_bytes"])
            data["node"] = node
        data["device"] = device
    cache = env.get("cache_bytes")
    if isinstance(cache, (int, float)) and not isinstance(cache, bool) and cache > 0:
        device = dict(data["device"])
        device["l2_bytes"] = float(cache)
        data["device"] = device
        level = "last-level cache (sysfs)" if data.get("kind") == "cpu" else "L2 cache (device properties)"
        figures["device.l2_bytes"] = {"source": f"measured: {level}, env.cache_bytes of {where}",
                                      "as_of": today, "status": "measured"}
    data["figures"] = figures
    return data


#: Keys of a family's ``cv`` block that are counts (written as integers).
COUNT_KEYS = ("cases", "folds", "repeat_cases")


def _family_entry(fit: FamilyFit) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "status": fit.status,
        "params": {
            name: {"value": float(p.value), "stderr": None if p.stderr is None else float(p.stderr),
                   "status": p.status}
            for name, p in fit.params.items()
        },
        "sigma_rel": None if fit.sigma_rel is None else float(fit.sigma_rel),
        "cv": None if fit.cv is None else {k: (int(v) if k in COUNT_KEYS else float(v))
                                           for k, v in fit.cv.items() if k != "sigma_rel"},
        "cases": int(fit.cases),
        "failed": int(fit.failed),
    }
    if fit.status == "measured":
        entry["converged"] = bool(fit.converged)
        entry["rms_log_residual"] = None if fit.rms_log_residual is None else float(fit.rms_log_residual)
    else:
        entry["note"] = fit.message or "no measurements: base profile values kept"
    return entry


def calibrated_mapping(target: Mapping[str, Any], base: Mapping[str, Any], measurements: MeasurementSet,
                       fits: Mapping[str, FamilyFit], name: str, today: str) -> dict[str, Any]:
    """The calibrated profile mapping: ``target`` plus fitted efficiency, figures and calibration block."""
    data = copy.deepcopy(dict(target))
    env = measurements.env
    where = file_label(measurements)
    device = env["device_name"]
    base_cal = base.get("calibration") if isinstance(base.get("calibration"), Mapping) else None
    base_families = (base_cal or {}).get("families") or {}
    families: dict[str, Any] = {}
    for fam in FAMILIES:
        fit = fits[fam]
        if fit.status != "measured" and fam in base_families:
            families[fam] = copy.deepcopy(base_families[fam])  # the base's own calibration is kept
        else:
            families[fam] = _family_entry(fit)
    efficiency = dict(data["efficiency"])
    figures = dict(data["figures"])
    gemm_fit = fits["gemm"]
    if gemm_fit.status == "measured":
        dtypes = [r.dtype for r in measurements.successful("gemm")]
        main = max(sorted(set(dtypes)), key=lambda d: (dtypes.count(d), d == "fp32")) if dtypes else "fp32"
        param = gemm_fit.params.get(f"peak_fraction_{main}")
        if param is not None and param.status == "measured":
            efficiency["gemm_peak_fraction"] = float(min(param.value, 1.5))
            figures["efficiency.gemm_peak_fraction"] = {
                "source": f"recplan calibrate: gemm.peak_fraction_{main} fitted to {where} on {device}",
                "as_of": today, "status": "measured"}
    for field_name, (fam, param_name) in EFFICIENCY_FROM_FIT.items():
        fit = fits[fam]
        param = fit.params.get(param_name)
        if fit.status == "measured" and param is not None and param.status == "measured":
            efficiency[field_name] = float(param.value)
            figures[f"efficiency.{field_name}"] = {
                "source": f"recplan calibrate: {fam}.{param_name} fitted to {where} on {device}",
                "as_of": today, "status": "measured"}
    for fam, fit in fits.items():
        if fit.status == "measured":
            cv = fit.cv or {}
            err = (f"; CV median {cv['median_abs_pct_err']:.1f}% p90 {cv['p90_abs_pct_err']:.1f}% over "
                   f"{cv['cases']} cases" if cv else "")
            figures[f"efficiency.{fam}"] = {
                "source": f"recplan calibrate: {fam} family fitted to {where} on {device}{err}",
                "as_of": today, "status": "measured"}
    data["efficiency"] = efficiency
    data["figures"] = figures
    records = measurements.records
    data["calibration"] = {
        "format": "recplan-calibration/1",
        "device_name": device,
        "device_kind": env["device_kind"],
        "base_profile": str(base.get("name", "")),
        "date": today,
        "method": METHOD,
        "transfer_rule": TRANSFER_RULE,
        "measured": {
            "files": [{"path": f.path, "sha256": f.sha256, "records": len(f.records), "failed": f.failed}
                      for f in measurements.files],
            "records": len(records),
            "failed": sum(1 for r in records if not r.ok),
            "validation_records": sum(1 for r in records if r.suite == "dlrm"),
            "date": env.get("date"),
            "env": {k: env.get(k) for k in _ENV_KEYS if env.get(k) is not None},
        },
        "software": {k: v for k, v in {"recplan": _version("recplan"), "numpy": _version("numpy"),
                                       "scipy": _version("scipy")}.items() if v},
        "families": families,
    }
    data["name"] = name
    data["source"] = f"{base.get('name')} calibrated by recplan calibrate from {where}"
    data["as_of"] = today
    data["description"] = (f"{str(base.get('description', '')).strip()} Calibrated on {device} "
                           f"({env['device_kind']}) on {today}.").strip()
    return data
