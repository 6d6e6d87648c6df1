"""Extreme but valid inputs through the command line: finite answers or a clear infeasibility (exit 1 with a
reason), never NaN or infinity in the output, never a traceback; fits that do not converge say so."""

from __future__ import annotations

import copy
import json
import math
import re
from pathlib import Path

import pytest

from planner.hardware import load_profile_mapping
from planner.io import dump_yaml

#: A table of 10^10 rows with pooling 1000, trained at batch 1 (with a normal table beside it).
EXTREME_WORKLOAD = {
    "name": "extreme",
    "model": {"dense_features": 13, "bottom_mlp": [64, 16], "embedding_dim": 16,
              "tables": [{"rows": 10**10, "pooling": 1000}, {"rows": 1000, "pooling": 1}],
              "interaction": "dot", "top_mlp": [64, 1]},
    "training": {"batch_size": 1, "precision": "bf16", "optimizer": "adagrad", "access": "zipf:1.05",
                 "samples": 1.0e16, "epochs": 10000},
}
_SIMULATE_NUMBERS = ("step_time_s", "step_time_p99_s", "samples_per_s", "peak_memory_bytes", "devices")
_OPTION_NUMBERS = ("step_time_s", "samples_per_s", "time_to_train_s", "cost_usd", "energy_kwh",
                   "peak_memory_bytes", "ne", "devices", "batch_size", "samples")
#: The NE interval: null for a law without one (an inline law), else finite numbers.
_NE_BOUNDS = ("ne_lo80", "ne_hi80")
_NON_FINITE = re.compile(r"\b(nan|inf|infinity)\b", re.IGNORECASE)


def _finite_json(text: str, keys: tuple[str, ...]) -> dict:
    """Parse one JSON document; it must hold no NaN/Infinity and every key in ``keys`` a finite number."""
    assert "NaN" not in text and "Infinity" not in text
    doc = json.loads(text)
    for key in keys:
        value = doc[key]
        assert isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value), (
            key, value)
    for value in doc["breakdown_s"].values() if "breakdown_s" in doc else ():
        assert math.isfinite(value) and value >= 0
    return doc


@pytest.fixture
def extreme(tmp_path) -> Path:
    path = tmp_path / "extreme.yaml"
    path.write_text(dump_yaml(EXTREME_WORKLOAD))
    return path


@pytest.mark.parametrize("devices", ["1", "100000"])
def test_one_and_a_hundred_thousand_devices(cli, devices):
    r = cli("simulate", "criteo-kaggle-dlrm", "--hardware", "h100-sxm-80gb", "--devices", devices, "--steps",
            "3", "--json")
    assert r.code in (0, 1) and "Traceback" not in r.err, r.err
    doc = _finite_json(r.out, _SIMULATE_NUMBERS)
    assert doc["devices"] == int(devices) and doc["step_time_s"] > 0
    if r.code == 1:
        assert not doc["fits_in_memory"] and doc["infeasible_reason"]
        assert len(r.err.splitlines()) == 1 and "does not fit" in r.err


def test_batch_one(cli):
    r = cli("simulate", "tiny", "--hardware", "h100-sxm-80gb", "--devices", "8", "--batch-size", "1",
            "--steps", "3", "--json")
    assert r.code == 0, r.err
    doc = _finite_json(r.out, _SIMULATE_NUMBERS)
    assert doc["batch_size"] == 1 and doc["samples_per_s"] == pytest.approx(1 / doc["step_time_s"])


@pytest.mark.parametrize("devices, fits", [("1", False), ("8", False), ("100000", True)])
def test_a_table_of_ten_billion_rows_with_pooling_1000_at_batch_1(cli, extreme, devices, fits):
    """640 GB of table and as much Adagrad state: no one device or node holds it; 100,000 devices do."""
    r = cli("simulate", extreme, "--hardware", "h100-sxm-80gb", "--devices", devices, "--steps", "3",
            "--json")
    assert "Traceback" not in r.err
    doc = _finite_json(r.out, _SIMULATE_NUMBERS)
    assert doc["fits_in_memory"] is fits
    if fits:
        assert r.code == 0, r.err
    else:
        assert r.code == 1
        lines = [line for line in r.err.splitlines() if not line.startswith("warning:")]  # idle devices
        assert len(lines) == 1 and "does not fit" in lines[0] and "table 0" in lines[0]


def test_the_derived_figures_of_an_extreme_workload_are_exact(cli, extreme):
    r = cli("workloads", "show", extreme, "--json")
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    assert doc["embedding_params"] == (10**10 + 1000) * 16
    assert doc["lookups_per_sample"] == 1001
    assert all(math.isfinite(doc[k]) for k in ("flops_per_sample", "embedding_bytes", "bytes_per_sample"))


def test_whatif_and_report_over_extremes_stay_finite(cli, extreme, tmp_path):
    scenario = tmp_path / "extremes.yaml"
    scenario.write_text(dump_yaml({
        "name": "extremes",
        "workload": str(extreme),
        "quality": {"law": {"form": "power_plus_const", "x": "samples", "alpha": 2.0, "beta": 0.25,
                            "gamma": 0.7}},
        "sweep": {"hardware": ["h100-sxm-80gb", "cpu-generic"], "devices": [1, 100000], "batch_size": [1],
                  "samples": [1, 1.0e16]},
        "constraints": {"max_days": 36500, "target_ne": 0.71},
        "overrides": {"price_usd_per_device_hour": {"cpu-generic": 1.0}, "grid_kg_co2_per_kwh": 0.4},
        "simulation": {"steps": 3},
    }))
    r = cli("whatif", scenario, "--json", "--no-progress")
    assert r.code in (0, 1) and "Traceback" not in r.err, r.err
    assert "NaN" not in r.out and "Infinity" not in r.out
    doc = json.loads(r.out)
    assert len(doc["options"]) == 8
    for option in doc["options"]:
        for key in _OPTION_NUMBERS:
            assert isinstance(option[key], (int, float)) and math.isfinite(option[key]), (key, option[key])
        for key in _NE_BOUNDS:
            assert option[key] is None or math.isfinite(option[key]), (key, option[key])
        assert option["feasible"] == (not option["violations"])
        if not option["fits_in_memory"]:
            assert not option["feasible"] and option["binding"] == "memory"
    out = tmp_path / "report"
    r = cli("report", scenario, "--out", out, "--no-progress")
    assert r.code in (0, 1) and "Traceback" not in r.err, r.err
    for name in ("report.json", "options.csv", "report.md"):
        text = (out / name).read_text()
        assert not _NON_FINITE.search(text), (name, _NON_FINITE.search(text))


def test_a_profile_too_slow_to_finish_anything_is_refused(cli, tmp_path):
    """A rate of 1e-300 B/s would make every time infinite; it is refused at load as a typo."""
    data, _ = load_profile_mapping("h100-sxm-80gb")
    data = copy.deepcopy(data)
    data["network"]["per_device_bandwidth_bytes_per_s"] = 1e-300
    path = tmp_path / "slow.yaml"
    path.write_text(dump_yaml(data))
    r = cli("simulate", "tiny", "--hardware", path, "--json")
    assert r.code == 2 and r.out == ""
    assert "network.per_device_bandwidth_bytes_per_s" in r.err and len(r.err.splitlines()) == 1


def test_the_slowest_admissible_device_gives_finite_times_and_costs(cli, tmp_path):
    data, _ = load_profile_mapping("h100-sxm-80gb")
    data = copy.deepcopy(data)
    data["name"] = "slowest"
    data["device"]["peak_flops"] = dict.fromkeys(data["device"]["peak_flops"], 1e6)
    for section, key in (("device", "hbm_bandwidth_bytes_per_s"), ("node", "intra_bandwidth_bytes_per_s"),
                         ("node", "host_link_bandwidth_bytes_per_s"),
                         ("network", "per_device_bandwidth_bytes_per_s")):
        data[section][key] = 1e3
    for key in data["efficiency"]:
        if key.endswith("fraction"):
            data["efficiency"][key] = 1e-6
    profile = tmp_path / "slowest.yaml"
    profile.write_text(dump_yaml(data))
    scenario = tmp_path / "slow.yaml"
    scenario.write_text(dump_yaml({
        "workload": "dlrm-dcnv2-multihot",
        "quality": {"law": {"form": "power_plus_const", "x": "samples", "alpha": 2.0, "beta": 0.25,
                            "gamma": 0.7}},
        "sweep": {"hardware": [str(profile)], "devices": [64], "samples": [1.0e16]},
        "constraints": {"must_fit_memory": False},
        "simulation": {"steps": 2},
    }))
    r = cli("whatif", scenario, "--json", "--no-progress")
    assert r.code == 0, r.err
    option = json.loads(r.out)["options"][0]
    assert option["time_to_train_s"] > 1e20  # absurdly long, but a number
    for key in _OPTION_NUMBERS:
        assert math.isfinite(option[key]), (key, option[key])
    for key in _NE_BOUNDS:
        assert option[key] is None or math.isfinite(option[key]), (key, option[key])


def _unfittable(path: Path, kind: str) -> Path:
    if kind == "rising":  # NE growing with data: no power-law decay at all
        rows = [f"r{i},{1e7 * 2**i:g},{0.70 + 0.01 * i:.4f}" for i in range(8)]
    else:  # noise around a constant, no trend
        noise = [0.03, 0.08, 0.01, 0.09, 0.04, 0.07, 0.00, 0.06]
        rows = [f"r{i},{1e7 * 2**i:g},{0.70 + noise[i]:.4f}" for i in range(8)]
    path.write_text("run,samples,ne\n" + "\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize("kind", ["rising", "noise"])
def test_a_fit_that_does_not_converge_says_so(cli, tmp_path, kind):
    obs = _unfittable(tmp_path / f"{kind}.csv", kind)
    r = cli("scaling", "fit", obs, "--x", "samples", "--bootstrap", "20", "--json")
    assert r.code == 1 and r.out == ""
    lines = r.err.splitlines()
    assert len(lines) == 1 and "did not converge" in lines[0] and str(obs) in lines[0]


def test_a_scenario_whose_quality_fit_does_not_converge_says_so(cli, tmp_path):
    _unfittable(tmp_path / "rising.csv", "rising")
    scenario = tmp_path / "s.yaml"
    scenario.write_text("workload: tiny\nquality: {fit: rising.csv, x: samples, bootstrap: 10}\n"
                        "sweep: {hardware: [h100-sxm-80gb], devices: [1]}\n")
    r = cli("whatif", scenario, "--json", "--no-progress")
    assert r.code == 1 and r.out == ""
    assert len(r.err.splitlines()) == 1 and "did not converge" in r.err


def test_more_tables_than_the_planner_handles_is_refused(cli, tmp_path):
    data = copy.deepcopy(EXTREME_WORKLOAD)
    data["model"]["tables"] = [{"rows": 10, "count": 100_000}]
    data["model"]["interaction"] = "cat"
    path = tmp_path / "many.yaml"
    path.write_text(dump_yaml(data))
    r = cli("simulate", path, "--hardware", "h100-sxm-80gb", "--devices", "1000000")
    assert r.code == 2 and "model.tables" in r.err and "at most 10,000" in r.err
