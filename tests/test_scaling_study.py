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
