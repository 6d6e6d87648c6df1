"""calibration.scaling_study: the teacher, the reference DLRM, a tiny study end to end (torch, CPU)."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from calibration import scaling_study as st
from calibration.scaling_fit import parse_observations

TINY_TEACHER = replace(st.TeacherConfig(), vocab=5000, n_sparse=4, n_dense=4)


def _tiny_plan():
    base = st.ModelConfig(hash_size=1 << 10, embedding_dim=8, bottom_width=16, top_width=16)
    return st.StudyPlan(
        teacher=TINY_TEACHER, base_model=base, train=st.TrainConfig(threads=1),
        data_sizes=(2048, 8192, 32768, 65536), param_samples=8192,
        components={"embedding_rows": tuple(replace(base, hash_size=h) for h in (16, 64, 256, 1024))},
        test_samples=20_000)


def test_modules_do_not_import_torch_at_top_level():
    code = ("import sys; import calibration.scaling_study, calibration.scaling_fit, planner.quality, "
            "planner.cli.scaling; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_teacher_bayes_ne_and_ne_estimators():
    teacher = st.make_teacher(TINY_TEACHER, seed=0)
    clicks = st.sample_clicks(teacher, 50_000, seed=1)
    assert clicks.ids.max() < TINY_TEACHER.vocab and clicks.ids.min() >= 0
    bayes = st.bayes_ne(clicks)
    assert 0.3 < bayes < 1.0
    assert st.expected_ne(clicks.p, clicks) == pytest.approx(bayes, rel=1e-12)  # the teacher is Bayes-optimal
    base_rate = np.full(len(clicks.p), clicks.p.mean())
    assert st.expected_ne(base_rate, clicks) == pytest.approx(1.0, rel=1e-9)  # NE of the base rate is 1
    assert st.sampled_ne(np.full(len(clicks.y), clicks.y.mean()), clicks) == pytest.approx(1.0, rel=1e-6)
    # Zipf ids: the most frequent id of a feature is far above uniform frequency.
    counts = np.bincount(clicks.ids[:, 0], minlength=TINY_TEACHER.vocab)
    assert counts.max() > 50 * len(clicks.y) / TINY_TEACHER.vocab
    again = st.sample_clicks(st.make_teacher(TINY_TEACHER, seed=0), 70_000, seed=1)  # a longer stream
    assert np.array_equal(again.ids[:50_000], clicks.ids) and np.array_equal(again.y[:50_000], clicks.y)


def test_param_count_matches_torch_model():
    torch = pytest.importorskip("torch")
    m = st.ModelConfig(
        hash_size=100, embedding_dim=4, bottom_width=8, bottom_depth=2, top_width=6, top_depth=3
    )
    net = st._build(m, n_sparse=3, n_dense=5, seed=0)
    total = sum(p.numel() for p in net.parameters())
    assert m.params(3, 5)["total"] == total
    out = net(torch.zeros(7, 5), torch.zeros(7, 3, dtype=torch.int64))
    assert tuple(out.shape) == (7,)
    hashed = st._hash_ids(np.arange(10_000).reshape(-1, 4), 97)
    assert hashed.min() >= 0 and hashed.max() < 97


def test_tiny_study_ne_falls_with_data():
    pytest.importorskip("torch")
    res = st.run_study(plan=_tiny_plan(), seed=0, n_bootstrap=50)
    data = [r for r in res.rows if r["component"] == "data"]
    assert [r["samples"] for r in data] == [2048, 8192, 32768, 65536]
    ne = [r["ne"] for r in data]
    assert ne[-1] < ne[0] - 0.01
    assert all(r["ne"] > res.bayes_ne for r in res.rows)  # nobody beats the Bayes-optimal predictor
    assert set(res.fits) == {"data", "embedding_rows"}
    assert res.fits["data"]["x"] == "samples"
    text = st.observations_csv(res.rows)
    obs = parse_observations(text, "study.csv", component="data")
    assert obs.n == 4 and obs.columns["flops"].min() > 0


def test_cli_study_writes_observations(cli, tmp_path, monkeypatch):
    pytest.importorskip("torch")
    monkeypatch.setattr(st, "study_plan", lambda quick: _tiny_plan())
    out = tmp_path / "obs.csv"
    r = cli("scaling", "study", "--quick", "--out", out, "--bootstrap", "20")
    assert r.code == 0, r.err
    assert out.exists() and "Study fits" in r.out
    fit = cli("scaling", "fit", out, "--x", "samples", "--component", "data", "--bootstrap", "20", "--json")
    assert fit.code in (0, 1)  # four tiny runs may not pin down a floor; the input itself is valid


def test_plans_sweep_data_and_every_component():
    quick, full = st.study_plan(True), st.study_plan(False)
    assert np.log10(max(quick.data_sizes) / min(quick.data_sizes)) > 1.5
    assert np.log10(max(full.data_sizes) / min(full.data_sizes)) > 3.0
    assert set(quick.components) == {"embedding_rows", "embedding_dim", "mlp_width", "mlp_depth"}
    assert set(full.components) == {"embedding_rows", "embedding_dim", "bottom_mlp_width", "top_mlp_width",
                                    "bottom_mlp_depth", "top_mlp_depth", "model_scale"}
    base = full.base_model
    for comp, models in full.components.items():
        assert len(models) >= 4, comp
        changed = {f for m in models for f in vars(m) if getattr(m, f) != getattr(base, f)}
        expect = {"embedding_rows": {"hash_size"}, "embedding_dim": {"embedding_dim"},
                  "bottom_mlp_width": {"bottom_width"}, "top_mlp_width": {"top_width"},
                  "bottom_mlp_depth": {"bottom_depth"}, "top_mlp_depth": {"top_depth"}}.get(comp)
        if expect is not None:
            assert changed == expect, comp  # one component at a time


def test_recorded_full_study_is_the_current_full_plan():
    """tests/data/observations_study_full.csv is `recplan scaling study --out` (seed 0) of this code: same
    runs as the full plan, same teacher (its Bayes-optimal NE is recomputed here)."""
    import csv
    from pathlib import Path

    path = Path(__file__).parent / "data" / "observations_study_full.csv"
    rows = list(csv.DictReader(path.open()))
    assert tuple(rows[0]) == st.CSV_COLUMNS
    plan = st.study_plan(False)
    fields = ("hash_size", "embedding_dim", "bottom_width", "bottom_depth", "top_width", "top_depth")
    planned = []
    for s in plan.seeds:
        planned += [("data", n, plan.base_model, s) for n in plan.data_sizes]
        for comp, models in plan.components.items():
            planned += [(comp, plan.param_samples, m, s) for m in models]
    recorded = [(r["component"], int(r["samples"]), st.ModelConfig(**{f: int(r[f]) for f in fields}),
                 int(r["seed"])) for r in rows]
    assert recorded == planned
    teacher = st.make_teacher(plan.teacher, 0)
    bayes = st.bayes_ne(st.sample_clicks(teacher, plan.test_samples, 12))
    assert all(float(r["bayes_ne"]) == pytest.approx(bayes, rel=1e-9) for r in rows)


def test_refused_series_reports_no_gain():
    # NE rising with depth (as one-pass training of deeper MLPs does): the power law cannot fit; no gain.
    rows = [{"run": f"d{k}", "component": "mlp_depth", "samples": 1000, "params": 10_000 + k,
             "dense_params": 1000 * k, "ne": 0.88 + 0.005 * k} for k in (1, 2, 3, 4)]
    rows += [{"run": f"n{i}", "component": "data", "samples": n, "params": 10_000, "dense_params": 1000,
              "ne": 0.8 + 2.0 * n**-0.3} for i, n in enumerate(np.logspace(3, 6, 7))]
    fits = st.fit_study(rows, n_bootstrap=50)
    assert not fits["mlp_depth"]["power_plus_const"]["converged"]
    assert fits["mlp_depth"]["power_plus_const"]["gain_10x"] is None
    assert fits["data"]["power_plus_const"]["converged"]
    assert fits["data"]["power_plus_const"]["gain_10x"]["ne_gain"] > 0


def test_gain_without_bootstrap_has_unknown_bounds():
    rows = [{"run": f"n{i}", "component": "data", "samples": n, "params": 10_000, "dense_params": 1000,
             "ne": 0.8 + 2.0 * n**-0.3} for i, n in enumerate(np.logspace(3, 6, 7))]
    gain = st.fit_study(rows, n_bootstrap=0)["data"]["power_plus_const"]["gain_10x"]
    assert gain["ne_gain"] > 0 and gain["lo80"] is None and gain["hi80"] is None  # unknown, not zero-width
    boot = st.fit_study(rows, n_bootstrap=50)["data"]["power_plus_const"]["gain_10x"]
    assert boot["lo80"] <= boot["hi80"] and boot["lo80"] is not None


def test_rolling_origin_flags_a_bending_curve_only():
    x = np.logspace(3, 7, 12)
    noise = np.exp(np.random.default_rng(5).normal(0.0, 1e-3, x.size))
    straight = st.rolling_origin(x, (0.7 + 2.0 * x**-0.3) * noise, "samples")
    assert straight is not None and not straight["curvature"]
    assert all(abs(e["beta"] / 0.3 - 1) < 0.15 for e in straight["drop_smallest"] + straight["drop_largest"])
    bent = st.rolling_origin(x, (0.55 + 3.0 * x**-0.6 + 0.4 * x**-0.05) * noise, "samples")
    assert bent is not None and bent["curvature"] and "drifts" in bent["message"]
    assert st.rolling_origin(x[:7], x[:7] ** -0.1, "samples") is None  # too few scales to cut
