"""planner.quality: forms, presets, scenario specs, two-axis compute-optimal allocation."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest

from planner.errors import InputError
from planner.quality import (
    FLOPS_PER_PF_DAY,
    DlrmFlops,
    ProportionalFlops,
    QualityLaw,
    TwoAxisLaw,
    law_from_spec,
    preset,
    presets,
)

INLINE = {"law": {"form": "power_plus_const", "x": "samples", "alpha": 2.0, "beta": 0.25, "gamma": 0.70}}


def test_inline_law_predicts_and_inverts():
    law = law_from_spec(INLINE)
    assert law.form == "power_plus_const" and law.x == "samples" and law.metric == "ne"
    assert law.predict(1e8) == pytest.approx(2.0 * 1e8**-0.25 + 0.70, rel=1e-12)
    x = law.x_for_target(0.72)
    assert x == pytest.approx((2.0 / 0.02) ** 4, rel=1e-9)
    assert law.predict(x) == pytest.approx(0.72, rel=1e-12)
    assert law.x_for_target(0.70) is None and law.x_for_target(0.65) is None  # at or below the floor
    assert not law.has_interval
    iv = law.predict_interval(1e9)
    assert iv["ne"] == law.predict(1e9)
    assert iv["lo80"] is iv["hi80"] is iv["lo95"] is iv["hi95"] is None  # unknown, not zero-width
    assert np.isnan(law.predict_intervals([1e9])["lo80"][0])
    assert "inline" in law.source


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (
            {"law": {"form": "power_plus_const", "x": "samples", "alpha": 2.0, "gamma": 0.7}},
            "quality.law.beta",
        ),
        (
            {"law": {"form": "power_plus_const", "x": "samples", "alpha": 2.0, "beta": -0.1, "gamma": 0.7}},
            "quality.law.beta",
        ),
        (
            {"law": {"form": "power_plus_const", "x": "samples", "alpha": "two", "beta": 0.2, "gamma": 0.7}},
            "quality.law.alpha",
        ),
        ({"law": {"form": "cubic", "x": "samples"}}, "quality.law.form"),
        ({"law": {"form": "power_law", "x": "tokens", "alpha": 1.0, "beta": 0.1}}, "quality.law.x"),
        (
            {"law": {"form": "power_law", "x": "samples", "alpha": 1.0, "beta": 0.1, "delta": 3}},
            "quality.law.delta",
        ),
        ({"preset": "no_such_law"}, "quality.preset"),
        ({"preset": "ardalani_2022_dlrm"}, "quality.preset"),
        ({"preset": "chinchilla_2022"}, "quality.preset"),
        ({"law": INLINE["law"], "preset": "hstu_2024_ranking"}, "quality"),
        ({"fit": "obs.csv"}, "quality.x"),
    ],
)
def test_bad_specs_name_the_field(spec, field):
    with pytest.raises(InputError) as info:
        law_from_spec(spec, file="scenario.yaml")
    assert info.value.field == field
    assert info.value.file == "scenario.yaml"
    assert "\n" not in str(info.value)


def test_presets_carry_metric_and_provenance():
    table = presets()
    expected = {
        "ardalani_2022_dlrm",
        "chinchilla_2022",
        "chinchilla_epoch_refit_2024",
        "kaplan_2020_params",
        "kaplan_2020_data",
        "kaplan_2020_compute",
        "hstu_2024_ranking",
        "seqrec_2023_ml20m",
        "wukong_2024",
    }
    assert expected <= set(table)
    for p in table.values():
        assert p.metric and "arXiv" in p.source
        if not p.checked:
            assert "not checked" in p.source
    assert table["ardalani_2022_dlrm"].params is None and table["ardalani_2022_dlrm"].metric == "ne"
    assert table["wukong_2024"].params is None and table["wukong_2024"].metric == "relative_logloss_pct"
    metrics = {p.metric for p in table.values()}
    assert {"ne", "lm_loss_nats", "hr_at_100", "next_item_ce_nats"} <= metrics  # never one unlabelled loss
    assert table["chinchilla_2022"].params == {"E": 1.69, "A": 406.4, "alpha": 0.34, "B": 410.7, "beta": 0.28}


def test_kaplan_and_seqrec_presets_convert_published_constants():
    k = law_from_spec({"preset": "kaplan_2020_params"})
    assert k.metric == "lm_loss_nats"
    assert k.predict(1e9) == pytest.approx((8.8e13 / 1e9) ** 0.076, rel=1e-12)
    s = law_from_spec({"preset": "seqrec_2023_ml20m"})
    assert s.predict(1e6) == pytest.approx(4.9 + (6.8e5 / 1e6) ** 0.121, rel=1e-12)


def test_hstu_presets_use_pf_days_and_direction():
    rank = law_from_spec({"preset": "hstu_2024_ranking"})
    assert rank.predict(1e3 * FLOPS_PER_PF_DAY) == pytest.approx(0.549 - 0.0053 * math.log(1e3), rel=1e-12)
    x = rank.x_for_target(0.5)
    assert x is not None and rank.predict(x) == pytest.approx(0.5, rel=1e-12)
    retr = law_from_spec({"preset": "hstu_2024_retrieval"})
    assert retr.higher_is_better and retr.metric == "hr_at_100"
    x = retr.x_for_target(0.3)
    assert x is not None and retr.predict(x) == pytest.approx(0.3, rel=1e-12)
    assert retr.predict(x * 2) > 0.3


def test_two_axis_preset_slices():
    law = law_from_spec({"preset": "chinchilla_2022", "at_params": 7e10})
    assert law.metric == "lm_loss_nats" and law.x == "samples"
    assert law.predict(1.4e12) == pytest.approx(1.69 + 406.4 / 7e10**0.34 + 410.7 / 1.4e12**0.28, rel=1e-12)


class _SixND:
    """6ND written as a generic FLOP model, to exercise the numeric search."""

    def flops(self, params, samples):
        return 6.0 * params * samples

    def samples_for(self, params, flops):
        return flops / (6.0 * params)


def test_compute_optimal_closed_form_matches_numeric_and_exponent():
    law = preset("chinchilla_2022").two_axis()
    for c in (1e20, 1e23):
        closed = law.compute_optimal(c)
        numeric = law.compute_optimal(c, _SixND())
        assert numeric["params"] == pytest.approx(closed["params"], rel=1e-4)
        assert closed["loss"] == pytest.approx(numeric["loss"], rel=1e-10)
        assert 6 * closed["params"] * closed["samples"] == pytest.approx(c, rel=1e-12)
    ratio = law.compute_optimal(1e23)["params"] / law.compute_optimal(1e22)["params"]
    assert math.log10(ratio) == pytest.approx(0.28 / (0.34 + 0.28), rel=1e-9)  # N_opt ∝ C^(β/(α+β))


def test_dlrm_flop_model_budget_and_optimality():
    law = TwoAxisLaw(E=0.70, A=50.0, alpha=0.4, B=20.0, beta=0.3, metric="ne", source="test")
    fm = DlrmFlops.from_workload(flops_per_sample=6.0e6, dense_params=1.0e6, fixed_flops_per_sample=1.0e5)
    assert fm.flops_per_sample(1.0e6) == pytest.approx(6.0e6)
    opt = law.compute_optimal(1e18, fm)
    assert fm.flops(opt["params"], opt["samples"]) == pytest.approx(1e18, rel=1e-9)
    for f in (0.8, 1.25):  # any other split of the same budget is worse
        n = opt["params"] * f
        assert law.predict(n, fm.samples_for(n, 1e18)) > opt["loss"]
    assert ProportionalFlops().flops(2.0, 3.0) == 36.0


def test_dlrm_flop_model_from_a_workload_ignores_embedding_params():
    from planner.workload import derive, load_workload

    fig = derive(load_workload("criteo-kaggle-dlrm"))
    fm = DlrmFlops.from_derived(fig)
    assert fm.flops(fig.dense_params, 1e6) == pytest.approx(fig.flops_per_sample * 1e6, rel=1e-12)
    assert fig.embedding_params > 100 * fig.dense_params  # the embedding tables dominate the parameters...
    assert fm.flops_per_sample(fig.dense_params) == pytest.approx(fig.flops_per_sample)  # ...not the FLOPs


def _write_obs(path: Path, seed: int = 3) -> None:
    rng = np.random.default_rng(seed)
    x = np.logspace(4, 7, 8)
    y = (2.0 * x**-0.3 + 0.7) * np.exp(rng.normal(0, 1e-3, x.size))
    rows = [f"r{i},{a:.8g},{b:.8f}\n" for i, (a, b) in enumerate(zip(x, y, strict=True))]
    path.write_text("run,samples,ne\n" + "".join(rows))


def test_fit_spec_gives_interval_law_and_is_cheap(tmp_path):
    _write_obs(tmp_path / "obs.csv")
    spec = {"fit": "obs.csv", "x": "samples", "bootstrap": 200, "seed": 1}
    law = law_from_spec(spec, base_dir=tmp_path)
    assert isinstance(law, QualityLaw) and law.has_interval
    assert law.params["beta"] == pytest.approx(0.3, rel=0.15)
    assert "sha256" in law.source
    iv = law.predict_interval(1e8)
    assert iv["lo95"] <= iv["lo80"] <= iv["ne"] <= iv["hi80"] <= iv["hi95"]
    assert iv["hi80"] > iv["lo80"]
    assert law_from_spec(spec, base_dir=tmp_path) is law  # cached by file hash and settings
    held = law_from_spec({**spec, "holdout_largest": 2}, base_dir=tmp_path)
    assert "held-out largest 2" in held.source
    many = law.predict_intervals([1e8, 1e9])
    assert many["hi80"][0] == pytest.approx(iv["hi80"], rel=1e-12)
    assert many["lo95"][1] == pytest.approx(law.predict_interval(1e9)["lo95"], rel=1e-12)
    t0 = time.perf_counter()
    for x in np.logspace(7, 9, 2000):
        law.predict_interval(float(x))
        law.x_for_target(0.71)
    assert time.perf_counter() - t0 < 2.0


def test_fit_spec_missing_file_is_input_error(tmp_path):
    with pytest.raises(InputError) as info:
        law_from_spec({"fit": "nope.csv", "x": "samples"}, base_dir=tmp_path)
    assert "not found" in str(info.value)


from hypothesis import assume, given, settings  # noqa: E402
from hypothesis import strategies as hs  # noqa: E402


@settings(max_examples=60, deadline=None)
@given(alpha=hs.floats(0.01, 100), beta=hs.floats(0.01, 2.0), gamma=hs.floats(0.0, 1.0),
       frac=hs.floats(0.01, 0.99), x0=hs.floats(1e3, 1e9))
def test_x_for_target_inverts_predict(alpha, beta, gamma, frac, x0):
    law = QualityLaw("power_plus_const", "samples", "ne", {"alpha": alpha, "beta": beta, "gamma": gamma}, "t")
    assume(law.predict(x0) - gamma > 1e-6 * max(gamma, 1e-3))  # resolvable in float64
    target = gamma + frac * (law.predict(x0) - gamma)  # between the floor and NE at x0
    x = law.x_for_target(target)
    assert x is not None and x > x0
    assert law.predict(x) == pytest.approx(target, rel=1e-9)
    assert law.predict(x * 0.999) > target  # the smallest such x


def test_impossible_metric_values_are_named():
    from planner.quality import metric_excess, metric_problem

    assert metric_problem("ne", 0.5) is None and metric_excess("ne", 0.5) is None
    assert metric_problem("ne", 0.0) == "NE must be positive" and metric_excess("ne", -0.2) == 0.2
    assert metric_problem("ne", math.inf) == "NE must be finite" and metric_excess("ne", math.nan) == math.inf
    assert metric_problem("lm_loss_nats", -1.0) == "lm_loss_nats must be positive"
    assert metric_problem("hr_at_100", 1.2) == "hr_at_100 is a fraction and must be in [0, 1]"
    assert metric_excess("hr_at_100", 1.25) == pytest.approx(0.25)
    assert metric_problem("hr_at_100", 0.0) is None
    assert metric_problem("relative_logloss_pct", -3.0) is None  # a relative change may be negative


def test_extrapolation_factor_is_the_fits_decade():
    from calibration.scaling_fit import EXTRAPOLATION_FACTOR as FIT_FACTOR
    from planner.quality import EXTRAPOLATION_FACTOR

    assert EXTRAPOLATION_FACTOR == FIT_FACTOR == 10.0


def test_hstu_presets_carry_their_documented_range_in_pf_days():
    from planner.quality import fmt_number

    rank = law_from_spec({"preset": "hstu_2024_ranking"})
    assert preset("hstu_2024_ranking").x_range == (1e3, 1e6)  # PF-days, as the paper's figure
    assert rank.x_range == (1e3 * FLOPS_PER_PF_DAY, 1e6 * FLOPS_PER_PF_DAY)
    assert rank.x_range_kind == "documented"
    pf = FLOPS_PER_PF_DAY
    xs = [8e-11 * pf, 1e2 * pf, 1e4 * pf, 1e7 * pf, 1.01e7 * pf, 99 * pf]
    assert rank.outside_range(xs).tolist() == [True, False, False, False, True, True]  # one decade is inside
    assert law_from_spec({"preset": "hstu_2024_retrieval"}).x_range == rank.x_range
    assert rank.x_text(8.28e-11 * pf) == "8.28e-11 PF-days"
    assert rank.params_text() == "log_linear y0 0.549, k -0.0053"
    assert [fmt_number(v) for v in (1e12, -0.19078, 2.56e11)] == ["1e12", "-0.191", "2.56e11"]


def test_a_law_without_a_known_range_flags_nothing():
    law = law_from_spec(INLINE)
    assert law.x_range is None and not law.outside_range([1.0, 1e16]).any()
    assert law_from_spec({"preset": "chinchilla_2022", "at_params": 7e10}).x_range is None
    assert law_from_spec({"preset": "kaplan_2020_params"}).x_range is None  # range not documented


def test_a_fitted_law_carries_the_range_of_its_observations():
    csv_path = Path(__file__).resolve().parents[1] / "examples" / "observations-synthetic.csv"
    law = law_from_spec({"fit": str(csv_path), "x": "samples", "bootstrap": 20})
    assert law.x_range == (1e7, 2e9) and law.x_range_kind == "observed"
    assert law.outside_range([1e6, 1e8, 2e10, 2.1e10]).tolist() == [False, False, False, True]
    assert law.predict_interval(1e8)["ne"] == law.predict(1e8)  # the range changes no number
