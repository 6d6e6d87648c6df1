"""`recplan scaling fit|presets`: JSON contract, determinism, bad CSVs exit 2 with one line."""

from __future__ import annotations

import json

import numpy as np
import pytest


def _obs(tmp_path, name="obs.csv", seed=0):
    rng = np.random.default_rng(seed)
    x = np.logspace(4, 7, 8)
    y = (2.0 * x**-0.3 + 0.7) * np.exp(rng.normal(0, 1e-3, x.size))
    p = tmp_path / name
    p.write_text("run,component,samples,ne\n" + "".join(f"r{i},data,{a:.8g},{b:.8f}\n"
                                                        for i, (a, b) in enumerate(zip(x, y, strict=True))))
    return p


def test_fit_json_contract_and_determinism(cli, tmp_path):
    p = _obs(tmp_path)
    args = ("scaling", "fit", p, "--x", "samples", "--bootstrap", "200", "--predict", "1e8,1e9",
            "--holdout-largest", "2", "--json")
    r1 = cli(*args)
    assert r1.code == 0, r1.err
    doc = json.loads(r1.out)  # stdout is exactly one JSON document
    for key in ("form", "params", "ci", "predictions", "converged"):
        assert key in doc
    assert doc["form"] == "power_plus_const" and doc["converged"] is True
    assert set(doc["params"]) == {"alpha", "beta", "gamma"}
    assert doc["params"]["beta"] == pytest.approx(0.3, rel=0.1)
    for name in ("alpha", "beta", "gamma"):
        assert set(doc["ci"][name]) == {"lo80", "hi80", "lo95", "hi95"}
    assert [p["x"] for p in doc["predictions"]] == [1e8, 1e9]
    for pred in doc["predictions"]:
        assert set(pred) >= {"x", "ne", "lo80", "hi80", "lo95", "hi95", "extrapolation"}
        assert pred["lo95"] <= pred["lo80"] <= pred["ne"] <= pred["hi80"] <= pred["hi95"]
        assert pred["hi80"] > pred["lo80"]
    assert [p["extrapolation"] for p in doc["predictions"]] == pytest.approx([10.0, 100.0])
    assert doc["extrapolation_factor"] == 10.0 and doc["x_ranges"] == {"samples": doc["x_range"]}
    assert doc["holdout"]["k"] == 2 and len(doc["input"]["sha256"]) == 64
    r2 = cli(*args)
    assert r2.out == r1.out  # byte-identical for the same inputs and seed


def test_fit_without_bootstrap_reports_unknown_intervals(cli, tmp_path):
    """No bootstrap: every interval is unknown (null), never a zero-width interval at the point value."""
    p = _obs(tmp_path)
    r = cli("scaling", "fit", p, "--x", "samples", "--bootstrap", "0", "--predict", "1e6,1e7", "--json")
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    assert all(v is None for ci in doc["ci"].values() for v in ci.values())
    for pred in doc["predictions"]:
        assert pred["ne"] > 0.7
        assert pred["lo80"] is None and pred["hi80"] is None and pred["lo95"] is None and pred["hi95"] is None
    table = cli("scaling", "fit", p, "--x", "samples", "--bootstrap", "0", "--predict", "1e6")
    assert table.code == 0, table.err
    assert "intervals unknown" in table.out
    ne = f"{doc['predictions'][0]['ne']:.6g}"
    row = next(line for line in table.out.splitlines() if ne in line)
    assert row.count(ne) == 1 and row.count(" - ") >= 4  # the bounds shown as unknown, not as the point


def test_fit_warns_once_on_stderr_for_far_extrapolation(cli, tmp_path):
    p = _obs(tmp_path)  # samples 1e4 to 1e7
    r = cli("scaling", "fit", p, "--x", "samples", "--bootstrap", "50", "--predict", "1e7,1e300", "--json")
    assert r.code == 0, r.err
    doc = json.loads(r.out)  # stdout still exactly one JSON document
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: ")
    assert "1e+300" in lines[0] and "1e+07" in lines[0] and "10000" in lines[0] and "10x" in lines[0]
    assert "1e+07 (" not in lines[0]  # the prediction inside the range is not named
    near, far = doc["predictions"]
    assert near["extrapolation"] == pytest.approx(1.0) and far["extrapolation"] == pytest.approx(1e293)
    # Below the smallest observed scale by more than the factor is an extrapolation too.
    low = cli("scaling", "fit", p, "--x", "samples", "--bootstrap", "0", "--predict", "10", "--json")
    assert low.code == 0 and len(low.err.strip().splitlines()) == 1 and "below the smallest" in low.err


def test_fit_within_the_factor_does_not_warn(cli, tmp_path):
    r = cli("scaling", "fit", _obs(tmp_path), "--x", "samples", "--bootstrap", "0", "--predict", "1e3,1e8",
            "--json")
    assert r.code == 0 and r.err == ""  # exactly 10x beyond either end is still within the factor


def _two_axis_obs(tmp_path, name="two.csv"):
    """A 4 x 4 grid of (params, samples) with NE = 0.6 + 3 N^-0.3 + 5 D^-0.25, noise 1e-3 in log."""
    rng = np.random.default_rng(3)
    rows = []
    for i, n in enumerate(np.logspace(4, 7, 4)):
        for j, d in enumerate(np.logspace(5, 8, 4)):
            ne = (0.6 + 3.0 * n**-0.3 + 5.0 * d**-0.25) * np.exp(rng.normal(0, 1e-3))
            rows.append(f"r{i}{j},{n:.8g},{d:.8g},{ne:.8f}\n")
    p = tmp_path / name
    p.write_text("run,params,samples,ne\n" + "".join(rows))
    return p


def test_fit_two_axis_json(cli, tmp_path):
    p = _two_axis_obs(tmp_path)
    r = cli("scaling", "fit", p, "--form", "two_axis", "--bootstrap", "100", "--predict", "1e6:1e7,1e9:1e7",
            "--json")
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    assert doc["form"] == "two_axis" and doc["converged"] is True and doc["x"] == "params,samples"
    assert set(doc["params"]) == {"E", "A", "alpha", "B", "beta"} == set(doc["ci"])
    assert doc["params"]["alpha"] == pytest.approx(0.3, rel=0.15)
    assert doc["params"]["beta"] == pytest.approx(0.25, rel=0.15)
    assert doc["params"]["E"] == pytest.approx(0.6, rel=0.05)
    assert doc["x_ranges"] == {"params": [1e4, 1e7], "samples": [1e5, 1e8]}
    inside, far = doc["predictions"]
    assert inside["x"] == [1e6, 1e7] and inside["params"] == 1e6 and inside["samples"] == 1e7
    truth = 0.6 + 3.0 * 1e6**-0.3 + 5.0 * 1e7**-0.25
    assert inside["ne"] == pytest.approx(truth, rel=2e-3)
    for pred in (inside, far):
        assert pred["lo95"] <= pred["lo80"] <= pred["ne"] <= pred["hi80"] <= pred["hi95"]
    assert far["hi95"] - far["lo95"] > inside["hi95"] - inside["lo95"]  # wider beyond the data
    assert inside["extrapolation"] == pytest.approx(0.1) and far["extrapolation"] == pytest.approx(100.0)
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and "1e+09:1e+07" in lines[0] and "params 10000 to 1e+07" in lines[0]
    table = cli("scaling", "fit", p, "--form", "two_axis", "--bootstrap", "0", "--predict", "1e6:1e7")
    assert table.code == 0 and "intervals unknown" in table.out and "alpha" in table.out


@pytest.mark.parametrize(("args", "needle"), [
    (("--x", "samples"), "--x: not used with --form two_axis"),
    (("--predict", "1e9"), "N:D pairs"),
    (("--predict", "1e6:1e9:2"), "N:D pairs"),
    (("--predict", "1e6:-1"), "must be a positive number"),
    (("--predict", "1e6:abc"), "not a number"),
])
def test_fit_two_axis_bad_arguments_exit_2(cli, tmp_path, args, needle):
    r = cli("scaling", "fit", _two_axis_obs(tmp_path), "--form", "two_axis", "--bootstrap", "0", *args)
    assert r.code == 2 and r.out == ""
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in r.err


def test_pairs_are_refused_for_one_axis_forms(cli, tmp_path):
    r = cli("scaling", "fit", _obs(tmp_path), "--x", "samples", "--bootstrap", "0", "--predict", "1e6:1e9")
    assert r.code == 2 and "N:D pairs are for --form two_axis" in r.err
    assert len(r.err.strip().splitlines()) == 1


@pytest.mark.parametrize(("header", "rows", "needle"), [
    ("samples,ne", [f"{10**k},{0.9 - 0.02 * k}" for k in range(3, 9)], "missing column 'params'"),
    ("params,samples,ne", [f"{10**k},{10**(k + 2)},{0.9 - 0.02 * k}" for k in range(3, 9)],
     "vary independently"),
    ("params,samples,ne", [f"1000,{10**k},{0.9 - 0.02 * k}" for k in range(3, 9)], "needs params to vary"),
])
def test_fit_two_axis_unusable_files_exit_2(cli, tmp_path, header, rows, needle):
    p = tmp_path / "bad2.csv"
    p.write_text(header + "\n" + "\n".join(rows) + "\n")
    r = cli("scaling", "fit", p, "--form", "two_axis", "--bootstrap", "0")
    assert r.code == 2 and r.out == ""
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "bad2.csv" in lines[0]


def test_study_refuses_an_unwritable_output_before_training(cli, tmp_path, monkeypatch):
    import calibration.scaling_study as study
    import planner.io as pio

    def no_training(*args, **kwargs):
        raise AssertionError("training started before the output was checked")

    monkeypatch.setattr(study, "run_study", no_training)
    folder = tmp_path / "locked"
    folder.mkdir()
    real = pio.tempfile.mkstemp

    def refuse(*args, dir=None, **kwargs):  # a folder nobody may write to, even root (like /sys)
        if dir is not None and str(dir) == str(folder):
            raise PermissionError(13, "Permission denied")
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(pio.tempfile, "mkstemp", refuse)
    r = cli("scaling", "study", "--quick", "--out", folder / "obs.csv")
    assert r.code == 2 and r.out == ""
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and str(folder / "obs.csv") in lines[0] and "permission denied" in lines[0]
    assert list(folder.iterdir()) == []


def test_fit_table_output(cli, tmp_path):
    r = cli("scaling", "fit", _obs(tmp_path), "--x", "samples", "--bootstrap", "50", "--predict", "1e8")
    assert r.code == 0, r.err
    assert "beta" in r.out and "Predictions" in r.out and "sha256" in r.out
    assert r.err == ""


def test_fit_other_forms_and_component(cli, tmp_path):
    p = _obs(tmp_path)
    r = cli("scaling", "fit", p, "--form", "log_linear", "--component", "data", "--bootstrap", "20", "--json")
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    assert doc["form"] == "log_linear" and set(doc["params"]) == {"y0", "k"}


def test_unconverged_fit_exits_1(cli, tmp_path):
    p = tmp_path / "flat.csv"
    p.write_text("samples,ne\n" + "".join(f"{10**k},0.8\n" for k in range(3, 9)))
    r = cli("scaling", "fit", p, "--x", "samples", "--bootstrap", "0")
    assert r.code == 1
    assert "did not converge" in r.err and len(r.err.strip().splitlines()) == 1


GOOD_ROWS = "".join(f"{10**k},{0.9 - 0.02 * k}\n" for k in range(3, 9))


@pytest.mark.parametrize(("text", "args", "needle"), [
    ("samples,loss\n1e4,0.8\n", (), "missing column 'ne'"),
    ("params,ne\n" + GOOD_ROWS, ("--x", "samples"), "missing column 'samples'"),
    ("samples,ne\n" + GOOD_ROWS + "0,0.7\n", (), "must be > 0"),
    ("samples,ne\n" + GOOD_ROWS + "-1e9,0.7\n", (), "must be > 0"),
    ("samples,ne\n" + GOOD_ROWS + "1e10,1.6\n", (), "NE must be in (0, 1.5)"),
    ("samples,ne\n" + GOOD_ROWS + "1e10,-0.1\n", (), "NE must be in (0, 1.5)"),
    ("samples,ne\n1e4,0.8\n1e5,0.75\n", (), "needs at least 3 distinct scales"),
    ("samples,ne\n" + GOOD_ROWS + "1e10,zero.7\n", (), "not a number"),
    ("samples,ne\n" + GOOD_ROWS.replace("1000,", "1e3x,"), (), "not a number"),
    ("samples,ne\n" + GOOD_ROWS, ("--predict", "1e9,abc"), "--predict"),
    ("samples,ne\n" + GOOD_ROWS, ("--form", "quadratic"), "--form"),
])
def test_bad_input_exits_2_with_one_line(cli, tmp_path, text, args, needle):
    p = tmp_path / "bad.csv"
    p.write_text(text)
    r = cli("scaling", "fit", p, "--bootstrap", "0", *args)
    assert r.code == 2
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in r.err
    assert r.out == ""


@pytest.mark.parametrize(("data", "needle"), [
    (b"", "empty file"),
    (b"\n\n", "empty file"),
    (b"samples,ne\n", "no data rows"),
    (b"samples,ne\n1e4,0.9\n1e5,0.8\xff\n", "row 3: not UTF-8 text: byte 0xff"),
    (b"\xff\xfes\x00a\x00", "row 1: not UTF-8 text"),
])
def test_bad_bytes_exit_2_with_one_line(cli, tmp_path, data, needle):
    p = tmp_path / "bad.csv"
    p.write_bytes(data)
    r = cli("scaling", "fit", p, "--x", "samples", "--bootstrap", "0")
    assert r.code == 2 and r.out == ""
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "bad.csv" in lines[0]


def test_byte_order_mark_header_is_accepted(cli, tmp_path):
    p = tmp_path / "bom.csv"
    p.write_bytes(b"\xef\xbb\xbfsamples,ne\n" + GOOD_ROWS.encode())
    r = cli("scaling", "fit", p, "--bootstrap", "0", "--form", "log_linear", "--json")
    assert r.code == 0, r.err


def test_missing_file_exits_2(cli, tmp_path):
    r = cli("scaling", "fit", tmp_path / "nope.csv", "--x", "samples")
    assert r.code == 2 and "file not found" in r.err and len(r.err.strip().splitlines()) == 1


def test_presets_json_and_table(cli):
    r = cli("scaling", "presets", "--json")
    assert r.code == 0
    rows = json.loads(r.out)
    names = {row["name"] for row in rows}
    assert {"ardalani_2022_dlrm", "chinchilla_2022", "hstu_2024_ranking", "seqrec_2023_ml20m"} <= names
    assert all(row["metric"] and row["source"] for row in rows)
    t = cli("scaling", "presets")
    assert t.code == 0 and "chinchilla_epoch_refit_2024" in t.out and "not checked" in t.out


def test_fit_on_recorded_full_study(cli):
    """The recorded full study (`recplan scaling study`, 116 runs, seed 0): NE falls with data."""
    from pathlib import Path

    data = Path(__file__).parent / "data" / "observations_study_full.csv"
    r = cli("scaling", "fit", data, "--x", "samples", "--component", "data", "--bootstrap", "100", "--json")
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    assert doc["converged"] and doc["n_points"] == 44 and doc["n_runs"] == 44
    assert 0.1 < doc["params"]["beta"] < 0.4
    assert doc["params"]["gamma"] > 0.7342  # above the teacher's Bayes-optimal NE
