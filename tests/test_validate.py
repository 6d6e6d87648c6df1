"""``recplan validate``: real reference steps against the simulation (torch; CPU).

The fidelity table over seeded random configurations is slow (minutes) and needs a quiet machine: it runs
only with ``RECPLAN_FIDELITY=1`` (and a calibrated profile in ``RECPLAN_FIDELITY_PROFILE``, default
``examples/cpu-calibrated.yaml``, calibrated on this machine type's quick bench).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from planner.sim.validation import random_workloads

torch = pytest.importorskip("torch")


def test_validate_json_on_cpu(cli):
    r = cli("validate", "tiny", "--device", "cpu", "--hardware", "cpu-generic", "--steps", "3", "--warmup",
            "1", "--json")
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    assert {"predicted", "measured", "error_pct"} <= set(doc)
    assert doc["measured"]["step_time_s"] > 0 and doc["predicted"]["step_time_s"] > 0
    assert doc["predicted"]["peak_memory_bytes"] >= doc["measured"]["peak_memory_bytes"]


def test_validate_rejects_a_bad_device(cli):
    r = cli("validate", "tiny", "--device", "tpu", "--hardware", "cpu-generic")
    assert r.code == 2 and "--device" in r.err


def test_random_workloads_are_seeded_and_varied():
    a = random_workloads(12, seed=3)
    assert [w.model for w in a] == [w.model for w in random_workloads(12, seed=3)]
    assert {w.training.precision for w in a} == {"fp32", "bf16"}
    assert {w.training.access.kind for w in a} == {"uniform", "zipf"}
    assert {w.model.embedding_dim for w in a} <= {8, 16, 32, 64}


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("RECPLAN_FIDELITY") != "1", reason="set RECPLAN_FIDELITY=1 (minutes)")
def test_fidelity_on_this_cpu():
    from planner.hardware import load_profile
    from planner.sim.validation import fidelity_table

    default = str(Path(__file__).resolve().parents[1] / "examples" / "cpu-calibrated.yaml")
    profile = load_profile(os.environ.get("RECPLAN_FIDELITY_PROFILE", default))
    table = fidelity_table(random_workloads(12, seed=0), profile, steps=10, warmup=3)
    assert table["median_abs_error_pct"] <= 15.0
    assert table["p90_abs_error_pct"] <= 30.0
    for row in table["rows"]:
        assert row["predicted"]["peak_memory_bytes"] >= row["measured"]["peak_memory_bytes"]


def test_validate_reports_the_host_speed_change_since_calibration(cli, tmp_path):
    import yaml

    root = Path(__file__).resolve().parents[1]
    data = yaml.safe_load((root / "examples" / "cpu-calibrated.yaml").read_text())
    data["calibration"]["measured"]["env"]["speed_probe"] = [{"index_s": 1e-9}]  # an impossibly fast host
    path = tmp_path / "probed.yaml"
    path.write_text(yaml.safe_dump(data))
    r = cli("validate", "tiny", "--device", "cpu", "--hardware", path, "--steps", "3", "--warmup", "1",
            "--json")
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    ratio = doc["host_speed_ratio"]
    assert ratio > 1.0  # any real host is slower than the recorded probe
    predicted, measured = doc["predicted"]["step_time_s"], doc["measured"]["step_time_s"]
    assert doc["error_pct"] == (predicted - measured) / measured * 100.0  # the headline is never adjusted
    assert abs(doc["error_pct_speed_adjusted"] - (predicted * ratio - measured) / measured * 100.0) < 1e-9


def test_validate_says_when_the_profile_was_calibrated_on_another_machine(cli, tmp_path):
    import yaml

    root = Path(__file__).resolve().parents[1]
    data = yaml.safe_load((root / "examples" / "cpu-calibrated.yaml").read_text())
    data["calibration"]["measured"]["env"]["device_name"] = "Some Other CPU 9000"
    path = tmp_path / "elsewhere.yaml"
    path.write_text(yaml.safe_dump(data))
    r = cli("validate", "tiny", "--device", "cpu", "--hardware", path, "--steps", "3", "--warmup", "1",
            "--json")
    assert r.code == 0, r.err
    assert json.loads(r.out)["calibrated_device_name"] == "Some Other CPU 9000"
    assert "calibrated on 'Some Other CPU 9000'" in r.err and "the two machines" in r.err


def test_rounds_keep_the_fastest_round_of_each_workload():
    pytest.importorskip("torch")
    from planner.hardware import load_profile
    from planner.sim.validation import validate_rounds
    from planner.workload import load_workload

    root = Path(__file__).resolve().parents[1]
    tiny = load_workload("tiny")
    seen = []
    rows = validate_rounds([tiny, tiny], load_profile(str(root / "examples" / "cpu-calibrated.yaml")), "cpu",
                           rounds=2, max_rounds=2, progress=lambda r, i, row: seen.append((r, i)), steps=2,
                           warmup=1, sim_steps=2)
    assert seen == [(0, 0), (0, 1), (1, 0), (1, 1)]  # round by round over the whole set
    for row in rows:
        times = row["measured"]["round_medians_s"]
        assert len(times) == 2 and row["measured"]["step_time_s"] == min(times)
        expected = (row["predicted"]["step_time_s"] / min(times) - 1) * 100
        assert row["error_pct"] == pytest.approx(expected)


def test_settled_needs_the_two_fastest_rounds_to_agree():
    from planner.sim.validation import settled

    assert not settled([1.0])
    assert settled([1.0, 1.04])
    assert not settled([1.0, 1.2])
    assert settled([1.5, 1.0, 1.03])  # a slow round does not count against the two fastest
    assert not settled([1.0, 1.06], agreement=0.05)
    assert settled([1.0, 1.05])  # exactly 5% apart settles (no rounding at the boundary)
    assert settled([1.0, 1.06], agreement=0.1)
    assert not settled([0.0, 0.0]) and not settled([-1.0, -1.0])  # no real time is zero or negative


def test_unsettled_workloads_get_further_rounds(monkeypatch):
    """Rounds beyond the minimum go only to configurations whose two fastest rounds disagree, up to the
    cap; the fastest round is kept and whether it settled is reported."""
    import planner.sim.validation as v

    times = {"steady": iter([1.0, 1.02]), "noisy": iter([2.0, 1.3, 1.6, 1.0, 1.01, 9.0]),
             "wild": iter([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])}
    calls = []

    def fake(workload, profile, device, windows=None, **kwargs):
        calls.append(workload)
        t = next(times[workload])
        return {"measured": {"step_time_s": t}, "predicted": {"step_time_s": 1.0},
                "error_pct": (1 / t - 1) * 100}

    monkeypatch.setattr(v, "validate_workload", fake)
    rows = v.validate_rounds(["steady", "noisy", "wild"], None, rounds=2, max_rounds=6)
    assert calls[:6] == ["steady", "noisy", "wild"] * 2  # the minimum rounds go over the whole set
    assert calls.count("steady") == 2 and calls.count("noisy") == 5 and calls.count("wild") == 6
    steady, noisy, wild = (r["measured"] for r in rows)
    assert steady["settled"] and steady["step_time_s"] == 1.0
    assert noisy["settled"] and noisy["step_time_s"] == 1.0
    assert noisy["round_medians_s"] == [2.0, 1.3, 1.6, 1.0, 1.01]
    assert not wild["settled"] and wild["step_time_s"] == 1.0 and len(wild["round_medians_s"]) == 6
    assert calls[6:] == ["noisy", "wild"] * 3 + ["wild"]  # later rounds keep the set's order


def test_rounds_never_stop_before_the_minimum(monkeypatch):
    import planner.sim.validation as v

    calls = []

    def fake(workload, profile, device, windows=None, **kwargs):
        calls.append(workload)
        return {"measured": {"step_time_s": 1.0}, "predicted": {"step_time_s": 1.0}, "error_pct": 0.0}

    monkeypatch.setattr(v, "validate_workload", fake)
    rows = v.validate_rounds(["a"], None, rounds=4, max_rounds=2)  # a cap below the minimum is raised
    assert len(calls) == 4 and rows[0]["measured"]["settled"]
    calls.clear()
    v.validate_rounds(["a"], None, rounds=2)  # settled at once: the default cap adds nothing
    assert len(calls) == 2


def test_fidelity_command_refuses_a_cap_below_the_minimum(capsys):
    from planner.sim.validation import main

    with pytest.raises(SystemExit) as stop:
        main(["--rounds", "3", "--max-rounds", "2"])
    assert stop.value.code == 2 and "--max-rounds" in capsys.readouterr().err
