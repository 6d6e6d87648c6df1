"""Fuzz every input format and every command line: bad input exits 2 with one line, never a traceback.

Formats: workload, profile and scenario YAML, observations CSV (``scaling fit``), measurement JSON
(``calibrate``), and the arguments of simulate, validate, whatif, report, scaling fit/study, calibrate,
bench (argument checks only: every generated bench line is refused before a case runs), bench
import-nccl-tests and profiles derive.

The ``malformed`` tests (more than 200 generated cases in all) break a valid input in a way that is invalid
by construction and assert exit 2 and exactly one stderr line that names the file (or the argument), the
field and the problem. The exploratory tests apply defects that may leave the input valid and assert only
a clean answer (exit 0, 1 or 2 and no traceback). Every command runs under an alarm, so a hang fails.
Hypothesis is derandomized: every CI run tries the same cases.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import signal
from importlib import resources
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calibration.measurements import KERNELS as MEASUREMENT_KERNELS
from planner.cli.main import run
from planner.errors import InputError
from planner.hardware import load_profile_mapping, profile_from_mapping
from planner.io import dump_yaml, parse_yaml_text
from planner.workload import workload_from_mapping
from tests.fuzzing import (
    ArgDefect,
    CsvDefect,
    Defect,
    bad_argv,
    broken_text,
    malformed,
    malformed_csv,
    mutated,
)

ROOT = Path(__file__).resolve().parents[1]
_HEALTH = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much]


#: ``RECPLAN_FUZZ_SCALE=20`` multiplies every example count for a deeper local hunt (CI runs scale 1).
_SCALE = max(1, int(os.environ.get("RECPLAN_FUZZ_SCALE", "1")))


def _settings(n: int) -> settings:
    return settings(max_examples=n * _SCALE, deadline=None, derandomize=_SCALE == 1,
                    suppress_health_check=_HEALTH, database=None)


#: Seconds one command may take before the test calls it a hang (the slowest valid case takes ~1 s).
HANG_S = 30.0

_WORKLOAD_TEXT = resources.files("planner.presets.workloads").joinpath("tiny.yaml").read_text()
_WORKLOAD = parse_yaml_text(_WORKLOAD_TEXT, "tiny")
_PROFILE, _ = load_profile_mapping("h100-sxm-80gb")
_PROFILE_TEXT = dump_yaml(_PROFILE)

_WORKLOAD_REQUIRED = [("name",), ("model",), ("training",), *[("model", k) for k in (
    "dense_features", "bottom_mlp", "embedding_dim", "tables", "top_mlp")],
    *[("training", k) for k in ("batch_size", "precision", "optimizer", "samples")],
    ("model", "tables", "*", "rows")]
_PROFILE_REQUIRED = [(k,) for k in ("name", "kind", "description", "source", "as_of", "device", "node",
                                    "network", "price", "efficiency", "figures")] + [
    ("device", k) for k in ("peak_flops", "hbm_bytes", "hbm_bandwidth_bytes_per_s", "l2_bytes", "sm_count",
                            "power_w")] + [
    ("node", k) for k in ("devices", "intra_bandwidth_bytes_per_s", "intra_latency_s", "host_memory_bytes",
                          "host_link_bandwidth_bytes_per_s")] + [
    ("network", "per_device_bandwidth_bytes_per_s"), ("network", "latency_s"),
    ("efficiency", "gemm_peak_fraction"), ("efficiency", "kernel_launch_s"), ("figures", "*", "source"),
    ("figures", "*", "as_of")]

_SCENARIO_INLINE_LAW = {
    "name": "fuzz-small",
    "description": "two devices, two data sizes",
    "workload": "tiny",
    "model_scale": [1, 2],
    "quality": {"law": {"form": "power_plus_const", "x": "samples", "alpha": 2.0, "beta": 0.25,
                        "gamma": 0.7}},
    "sweep": {"hardware": ["h100-sxm-80gb", "dev.yaml"], "devices": [1, 2], "batch_size": [256],
              "samples": [1.0e6, 1.0e8]},
    "constraints": {"max_days": 1, "max_cost_usd": 1000, "target_ne": 0.9, "must_fit_memory": True},
    "overrides": {"price_usd_per_device_hour": {"h100-sxm-80gb": 3.0, "h100-fuzz": 5.0},
                  "power_w": {"h100-sxm-80gb": 700}, "pue": 1.2, "grid_kg_co2_per_kwh": 0.4},
    "objective": "cost",
    "simulation": {"steps": 3, "seed": 0, "sharding": "auto"},
}
_SCENARIO_INLINE_WORKLOAD = {
    "name": "fuzz-inline",
    "workload": copy.deepcopy(_WORKLOAD),
    "quality": {"preset": "ardalani_2022_dlrm"},
    "sweep": {"hardware": ["b200"], "devices": [2], "samples": [1.0e7]},
    "constraints": {"max_days": 2.5},
}
_SCENARIO_FIT = {
    "name": "fuzz-fit",
    "workload": "tiny",
    "quality": {"fit": "obs.csv", "x": "samples", "form": "power_plus_const", "bootstrap": 10, "seed": 1,
                "holdout_largest": 0},
    "sweep": {"hardware": ["h100-sxm-80gb"], "devices": 4},
    "overrides": {"power_w": 650.0},
    "objective": "time",
}
_SCENARIO_REQUIRED = [("workload",), ("quality",), ("sweep",), ("sweep", "hardware"), ("sweep", "devices"),
                      ("quality", "law", "x"), ("quality", "law", "alpha"), ("quality", "law", "beta"),
                      ("quality", "law", "gamma"), ("quality", "x"), ("quality", "preset"),
                      ("quality", "fit"),
                      *[("workload", *p) for p in _WORKLOAD_REQUIRED]]

_OBS_HEADER = ["run", "component", "samples", "params", "ne"]
_OBS_ROWS = [[f"r{i}", "data", f"{1e7 * 2 ** i:g}", f"{1e5 * 2 ** i:g}", f"{0.7 + 0.5 * (2 ** -i):.5f}"]
             for i in range(8)]


def _measurement_doc() -> dict:
    doc = json.loads((ROOT / "calibration/measurements/cpu-quick-epyc-2core.json").read_text())
    keep, seen = [], {}
    for record in doc["records"]:
        if seen.get(record["suite"], 0) < 2:
            keep.append(record)
            seen[record["suite"]] = seen.get(record["suite"], 0) + 1
    doc["records"] = keep
    return doc


_MEASUREMENTS = _measurement_doc()
_ENV_CHECKED = {"device_name", "device_kind", "compute_units", "threads", "memory_bytes"}
_EXTRA_CHECKED = {"unique_rows", "bytes_per_elem", "rotating_batches"}


def _measurement_free_paths() -> list[tuple]:
    free: list[tuple] = [("args",), ("progress",)]
    free += [("env", k) for k in _MEASUREMENTS["env"] if k not in _ENV_CHECKED]
    for i, record in enumerate(_MEASUREMENTS["records"]):
        spec = MEASUREMENT_KERNELS[record["suite"]][record["kernel"]]
        free += [("records", i, "params", k) for k in record["params"] if k not in spec]
        free += [("records", i, "extra", k) for k in record["extra"] if k not in _EXTRA_CHECKED]
    return free


_MEASUREMENT_REQUIRED = [("schema_version",), ("env",), ("records",), ("env", "device_name"),
                         ("env", "device_kind"), *[("records", "*", k) for k in (
                             "case_id", "suite", "kernel", "dtype", "params", "timing", "error")],
                         *[("records", "*", "timing", k) for k in ("median_s", "p10_s", "p90_s", "reps")]]


# ---------------------------------------------------------------------------------------------- helpers
@contextlib.contextmanager
def _no_hang(seconds: float = HANG_S):
    def _alarm(signum, frame):
        raise TimeoutError(f"a command ran longer than {seconds} s (a hang)")

    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _cli(args: list[str], capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    with _no_hang():
        code = run([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _clean(code: int, err: str) -> None:
    """Exploratory: any of 0, 1, 2, no traceback, and a bad-input answer is one line."""
    assert "Traceback" not in err, err
    assert code in (0, 1, 2), (code, err)
    if code == 2:
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("recplan: error: "), err


_OPTION_FIGURES = ("step_time_s", "samples_per_s", "time_to_train_s", "cost_usd", "energy_kwh",
                   "peak_memory_bytes", "ne")
#: Null for a law without an interval (the fuzzed scenarios' inline laws), else finite numbers.
_OPTION_BOUNDS = ("ne_lo80", "ne_hi80")
_SIMULATE_FIGURES = ("step_time_s", "step_time_p99_s", "samples_per_s", "peak_memory_bytes")


def _finite_answer(code: int, out: str, figures: tuple[str, ...], many: str | None = None,
                   nullable: tuple[str, ...] = ()) -> None:
    """An answer (exit 0 or 1 with a JSON document) has every figure a finite number: no NaN or infinity
    hidden as null, none printed; a ``nullable`` figure is a finite number or null (unknown)."""
    if code not in (0, 1) or not out.strip():
        return
    assert "NaN" not in out and "Infinity" not in out
    doc = json.loads(out)
    for item in doc[many] if many else [doc]:
        for key in figures:
            value = item[key]
            assert isinstance(value, (int, float)) and math.isfinite(value), (key, value)
        for key in nullable:
            value = item[key]
            assert value is None or (isinstance(value, (int, float)) and math.isfinite(value)), (key, value)


def _one_line_error(code: int, out: str, err: str, *needles: str) -> str:
    """Malformed: exit 2, nothing on stdout, exactly one stderr line containing every one of ``needles``."""
    assert "Traceback" not in err, err
    assert code == 2, (code, err)
    assert out == "", out
    lines = err.splitlines()
    assert len(lines) == 1, err
    line = lines[0]
    assert line.startswith("recplan: error: "), line
    problem = line.rsplit(": ", 1)[-1]
    assert problem.strip(), line
    for needle in needles:
        assert needle in line, (needle, line)
    return line


def _assert_names(defect: Defect, line: str) -> None:
    assert defect.named_by(line), (defect.kind, defect.field, defect.value, line)


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory) -> Path:
    """A folder with the valid companions the bases refer to (a derived profile, observations, ...)."""
    folder = tmp_path_factory.mktemp("fuzz")
    derived = copy.deepcopy(_PROFILE)
    derived["name"] = "h100-fuzz"
    (folder / "dev.yaml").write_text(dump_yaml(derived))
    (folder / "obs.csv").write_text("\n".join(",".join(r) for r in [_OBS_HEADER, *_OBS_ROWS]) + "\n")
    (folder / "m.json").write_text(json.dumps(_MEASUREMENTS))
    (folder / "scenario.yaml").write_text(dump_yaml(_SCENARIO_INLINE_LAW))
    (folder / "empty.txt").write_text("")
    (folder / "adir").mkdir()
    (folder / "afile").write_text("not a folder\n")
    return folder


def _case_file(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


# ----------------------------------------------------------------------------- in-process loaders
def _accepts_or_input_error(loader, data) -> None:
    try:
        loader(copy.deepcopy(data), "fuzz.yaml")
    except InputError as exc:
        assert exc.file == "fuzz.yaml"
        assert "\n" not in str(exc)


@_settings(60)
@given(mutated(_WORKLOAD))
def test_fuzz_workload_mappings(data):
    _accepts_or_input_error(workload_from_mapping, data)


@_settings(60)
@given(mutated(_PROFILE))
def test_fuzz_profile_mappings(data):
    _accepts_or_input_error(profile_from_mapping, data)


# ------------------------------------------------------------------------- malformed files via CLI
@_settings(40)
@given(malformed(_WORKLOAD, required=_WORKLOAD_REQUIRED))
def test_malformed_workload_file(fuzz_dir, capsys, defect):
    path = _case_file(fuzz_dir, "w.yaml", dump_yaml(defect.data))
    line = _one_line_error(*_cli(["workloads", "validate", path], capsys), str(path))
    _assert_names(defect, line)


@_settings(40)
@given(malformed(_PROFILE, required=_PROFILE_REQUIRED))
def test_malformed_profile_file(fuzz_dir, capsys, defect):
    path = _case_file(fuzz_dir, "p.yaml", dump_yaml(defect.data))
    line = _one_line_error(*_cli(["profiles", "validate", path], capsys), str(path))
    _assert_names(defect, line)


@_settings(60)
@given(st.one_of(malformed(_SCENARIO_INLINE_LAW, required=_SCENARIO_REQUIRED),
                 malformed(_SCENARIO_INLINE_WORKLOAD, required=_SCENARIO_REQUIRED),
                 malformed(_SCENARIO_FIT, required=_SCENARIO_REQUIRED)))
def test_malformed_scenario_file(fuzz_dir, capsys, defect):
    path = _case_file(fuzz_dir, "s.yaml", dump_yaml(defect.data))
    line = _one_line_error(*_cli(["whatif", path, "--json", "--no-progress"], capsys), str(path))
    _assert_names(defect, line)


@_settings(40)
@given(malformed_csv(_OBS_HEADER, _OBS_ROWS))
def test_malformed_observations_csv(fuzz_dir, capsys, defect: CsvDefect):
    path = _case_file(fuzz_dir, "o.csv", defect.text)
    args = ["scaling", "fit", path, "--x", "samples", "--bootstrap", "0", "--json"]
    line = _one_line_error(*_cli(args, capsys), str(path))
    assert defect.where in line, (defect.kind, line)


@_settings(40)
@given(malformed(_MEASUREMENTS, free=_measurement_free_paths(), required=_MEASUREMENT_REQUIRED,
                 open_maps=[("env",), ("args",), ("progress",), ("records", "*", "params"),
                            ("records", "*", "extra"), ("records", "*", "timing"), ("env", "clocks")]))
def test_malformed_measurement_json(fuzz_dir, capsys, defect):
    path = _case_file(fuzz_dir, "bad-m.json", json.dumps(defect.data))
    args = ["calibrate", path, "--out", fuzz_dir / "cal.yaml"]
    line = _one_line_error(*_cli(args, capsys), str(path))
    _assert_names(defect, line)


# ---------------------------------------------------------------------- exploratory files via CLI
@_settings(40)
@given(st.one_of(broken_text(_WORKLOAD_TEXT), mutated(_WORKLOAD).map(dump_yaml)))
def test_fuzz_workload_files_through_cli(fuzz_dir, capsys, text):
    path = _case_file(fuzz_dir, "w2.yaml", text)
    _clean(*_cli(["workloads", "validate", path], capsys)[::2])


@_settings(25)
@given(st.one_of(broken_text(_PROFILE_TEXT), mutated(_PROFILE).map(dump_yaml)))
def test_fuzz_profile_files_through_simulate(fuzz_dir, capsys, text):
    path = _case_file(fuzz_dir, "p2.yaml", text)
    code, out, err = _cli(["simulate", "tiny", "--hardware", path, "--steps", "2", "--json"], capsys)
    _clean(code, err)
    _finite_answer(code, out, _SIMULATE_FIGURES)


@_settings(30)
@given(st.one_of(broken_text(dump_yaml(_SCENARIO_INLINE_LAW)), mutated(_SCENARIO_INLINE_LAW).map(dump_yaml),
                 mutated(_SCENARIO_FIT).map(dump_yaml)))
def test_fuzz_scenario_files_through_whatif(fuzz_dir, capsys, text):
    path = _case_file(fuzz_dir, "s2.yaml", text)
    code, out, err = _cli(["whatif", path, "--json", "--no-progress"], capsys)
    _clean(code, err)
    _finite_answer(code, out, _OPTION_FIGURES, many="options", nullable=_OPTION_BOUNDS)


_OBS_TEXT = "\n".join(",".join(r) for r in [_OBS_HEADER, *_OBS_ROWS]) + "\n"


@_settings(25)
@given(broken_text(_OBS_TEXT))
def test_fuzz_observation_text_through_scaling_fit(fuzz_dir, capsys, text):
    path = _case_file(fuzz_dir, "o2.csv", text)
    _clean(*_cli(["scaling", "fit", path, "--x", "samples", "--bootstrap", "0", "--json"], capsys)[::2])


@_settings(25)
@given(st.one_of(broken_text(json.dumps(_MEASUREMENTS, indent=1)), mutated(_MEASUREMENTS).map(json.dumps)))
def test_fuzz_measurement_text_through_calibrate(fuzz_dir, capsys, text):
    path = _case_file(fuzz_dir, "m2.json", text)
    _clean(*_cli(["calibrate", path, "--out", fuzz_dir / "cal2.yaml"], capsys)[::2])


# ------------------------------------------------------------------------------------ command lines
def _command_lines(folder: Path) -> dict[str, tuple[list[str], dict[str, list[str]], dict[int, list[str]]]]:
    """Per command: a valid base line, bad values per option, bad values per positional argument."""
    adir, afile, missing = str(folder / "adir"), str(folder / "afile"), str(folder / "missing.yaml")
    csv, mjson, scen = str(folder / "obs.csv"), str(folder / "m.json"), str(folder / "scenario.yaml")
    empty = str(folder / "empty.txt")
    not_yaml_files = [missing, adir, empty, csv]
    return {
        "simulate": (
            ["simulate", "tiny", "--hardware", "h100-sxm-80gb", "--steps", "2", "--json"],
            {"--devices": ["0", "-1", "abc", "1.5", "1000001", ""],
             "--steps": ["0", "-3", "abc", "100001", "1e3"],
             "--seed": ["-1", "abc", "1.5", "-99999999999999999999"],
             "--sharding": ["foo", "", "ROW", "table,row"],
             "--batch-size": ["0", "-1", "abc", "1000000001"],
             "--hardware": ["no-such-device", *not_yaml_files, mjson]},
            {1: ["no-such-workload", *not_yaml_files, mjson]},
        ),
        "validate": (
            ["validate", "tiny", "--device", "cpu", "--hardware", "cpu-generic", "--steps", "2"],
            {"--device": ["tpu", "cuda:x", "", "cpu:0"], "--steps": ["0", "-1", "abc"],
             "--warmup": ["-1", "abc"], "--threads": ["0", "-2", "abc", "100000"],
             "--hardware": ["h100-sxm-80gb", "no-such-device", missing],
             "--max-error-pct": ["abc", "nan", "-1"], "--seed": ["-1", "abc"]},
            {1: ["no-such-workload", missing, adir]},
        ),
        "whatif": (
            ["whatif", scen, "--json", "--no-progress"],
            {"--executor": ["cloud", "", "SERIAL"], "--workers": ["0", "-1", "abc"], "--top": ["abc", "1.5"],
             "--scheduler": ["tcp://localhost:1"]},
            {1: [*not_yaml_files, mjson]},
        ),
        "report": (
            ["report", scen, "--out", str(folder / "rep"), "--format", "json", "--no-progress"],
            {"--format": ["pdf", ",", "html,pdf", "json;csv", " "], "--out": [afile],
             "--executor": ["cloud"], "--workers": ["0", "abc"]},
            {1: not_yaml_files},
        ),
        "scaling fit": (
            ["scaling", "fit", csv, "--x", "samples", "--bootstrap", "0", "--json"],
            {"--x": ["foo", "", "flops", "SAMPLES"], "--form": ["foo", "two_axis", ""],
             "--bootstrap": ["-1", "abc", "100001"],
             "--predict": ["abc", "-1", "nan", "inf", "0", "1,,x", "1e400", "1e9;2e9"],
             "--holdout-largest": ["-1", "1000", "abc", "6"], "--seed": ["-1", "abc"],
             "--component": ["no-such-component"]},
            {2: [missing, adir, empty, mjson, str(ROOT / "hardware_profiles/h100-sxm-80gb.yaml")]},
        ),
        "scaling study": (
            ["scaling", "study", "--quick", "--out", str(folder / "study.csv"), "--seed", "0"],
            {"--seed": ["-1", "abc"], "--bootstrap": ["-1", "abc", "100001"], "--out": [adir]},
            {},
        ),
        "calibrate": (
            ["calibrate", mjson, "--out", str(folder / "cal3.yaml")],
            {"--folds": ["1", "0", "-2", "abc"], "--base": ["no-such", missing, "h100-sxm-80gb", adir],
             "--name": ["bad name!", "-lead", "x" * 90], "--out": [adir]},
            {1: [missing, adir, empty, csv]},
        ),
        "bench": (
            ["bench", "--device", "cpu", "--suite", "memory", "--quick", "--budget-s", "0", "--out",
             str(folder / "bench.json")],
            {"--device": ["tpu", "cuda:x", "", "cpu:0"], "--suite": ["warp", ",", "gemm;memory"],
             "--world-sizes": ["1", "x", "2,a", "0"], "--threads": ["0", "-1", "abc", "100000"],
             "--budget-s": ["-1", "nan", "abc", "inf"], "--seed": ["-1", "abc"],
             "--for": ["no-such-workload", missing], "--out": [adir]},
            {},
        ),
        "import-nccl-tests": (
            ["bench", "import-nccl-tests", str(ROOT / "tests/data/nccl_tests_all_reduce_perf.log"), "--out",
             str(folder / "nccl.json")],
            {"--kernel": ["foo", ""], "--world-size": ["1", "abc"], "--out": [adir]},
            {2: [missing, adir, empty, csv]},
        ),
        "derive": (
            ["profiles", "derive", "h100-sxm-80gb", "--set", "device.hbm_bytes=x2", "--name", "h2", "--out",
             str(folder / "derived.yaml")],
            {"--set": ["nokey", "device.hbm_bytes=abc", "device.hbm_bytes=x0", "device.hbm_bytes=x-1",
                       "device.hbm_bytes=nan", "device.nope=1", "figures.x=1", "device.peak_flops=1",
                       "device.hbm_bytes=1e300", "name=foo", "device.sm_count=x0.001"],
             "--name": ["bad name!", "", "x" * 100], "--out": [adir]},
            {2: ["no-such", missing, csv]},
        ),
    }


_COMMANDS = ["simulate", "validate", "whatif", "report", "scaling fit", "scaling study", "calibrate", "bench",
             "import-nccl-tests", "derive"]


@st.composite
def _command_defect(draw, folder: Path) -> ArgDefect:
    base, options, positional = _command_lines(folder)[draw(st.sampled_from(_COMMANDS))]
    return draw(bad_argv(base, options, positional))


@_settings(90)
@given(data=st.data())
def test_malformed_command_lines(fuzz_dir, capsys, data):
    defect = data.draw(_command_defect(fuzz_dir))
    code, out, err = _cli(defect.argv, capsys)
    line = _one_line_error(code, out, err)
    assert any(n in line for n in defect.needles), (defect.argv, line)


@_settings(30)
@given(st.lists(st.sampled_from(["profiles", "workloads", "show", "list", "derive", "--json", "--set",
                                 "x=1", "tiny", "h100-sxm-80gb", "--name", "--out", "-", "", "--", "validate",
                                 "/nonexistent", "device.hbm_bytes=x0", "scaling", "presets", "fit",
                                 "simulate", "whatif", "report", "calibrate", "--help", "--version"]),
                max_size=6))
def test_fuzz_command_lines(capsys, args):
    if "--out" in args or "derive" in args:  # never write into the working folder
        args = [a for a in args if a not in ("--out", "derive")]
    code, _out, err = _cli(args, capsys)
    _clean(code, err)
