"""calibration.scaling_fit: recovery of known laws, interval coverage, convergence checks, input checks."""

from __future__ import annotations

import numpy as np
import pytest

from calibration import scaling_fit as sf
from calibration.scaling_fit import fit_arrays, parse_observations
from planner.errors import InfeasibleError, InputError

ALPHA, BETA, GAMMA = 2.0, 0.3, 0.7
X = np.logspace(4, 7, 8)  # 8 points over 3 decades
X_FAR = 1e8  # 10x beyond the fitted range


def _truth(x):
    return ALPHA * np.asarray(x, dtype=float) ** -BETA + GAMMA


def _noisy(seed, noise=1e-3):
    rng = np.random.default_rng(seed)
    return _truth(X) * np.exp(rng.normal(0.0, noise, X.size))


#: Known laws (alpha, beta, gamma, smallest x): NE-like curves from ~1.0 towards floors of 0.5-0.8.
LAWS = [(2.0, 0.3, 0.7, 1e4), (5.0, 0.5, 0.8, 1e3), (1.1, 0.19, 0.79, 4e3), (3.0, 0.4, 0.5, 1e2)]


@pytest.mark.parametrize("law", LAWS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_recovers_beta_and_predicts_beyond_range(law, seed):
    """0.1% noise, 8 points over 3 decades: beta within 10%, NE 10x beyond the range within 0.5%."""
    alpha, beta, gamma, x0 = law
    x = x0 * np.logspace(0, 3, 8)
    y = (alpha * x**-beta + gamma) * np.exp(np.random.default_rng(seed).normal(0.0, 1e-3, x.size))
    fit = fit_arrays(x, y, n_bootstrap=0, compare=False)
    assert fit.converged and fit.message == "converged"
    assert fit.params["beta"] == pytest.approx(beta, rel=0.10)
    far = 10 * x[-1]
    pred = fit.to_law().predict(far)
    assert abs(pred / (alpha * far**-beta + gamma) - 1) < 0.005


def test_weakly_identified_beta_still_extrapolates_and_is_the_optimum():
    """A small exponent over 3 decades trades off against gamma: beta may miss by >10%, but the fit is the
    global optimum (lower loss than the truth) and its 10x prediction stays within 0.5%."""
    x = np.logspace(5, 8, 8)
    y = (1.0 * x**-0.2 + 0.75) * np.exp(np.random.default_rng(1006).normal(0.0, 1e-3, x.size))
    fit = fit_arrays(x, y, n_bootstrap=0, compare=False)
    assert abs(fit.params["beta"] / 0.2 - 1) > 0.1  # this seed is one of the hard ones
    s = sf._setup("power_plus_const", x, y)
    th = np.array([[np.log(1.0) - 0.2 * np.log(s.x_ref[0]), 0.2, np.log(0.75)]])
    truth_loss = sf._objective("power_plus_const", th, s.lx, s.ly, np.ones((1, x.size)), sf.HUBER_DELTA)[0]
    assert fit.loss < truth_loss
    assert abs(fit.to_law().predict(1e9) / (1e9**-0.2 + 0.75) - 1) < 0.005


def test_noise_free_fit_is_exact():
    fit = fit_arrays(X, _truth(X), n_bootstrap=0, compare=False)
    assert fit.params["alpha"] == pytest.approx(ALPHA, rel=1e-5)
    assert fit.params["beta"] == pytest.approx(BETA, rel=1e-6)
    assert fit.params["gamma"] == pytest.approx(GAMMA, rel=1e-7)
    assert fit.starts_agreeing > fit.starts // 2  # the multi-start grid finds one optimum


def test_bootstrap_80pct_interval_coverage_50_trials():
    """In 50 seeded trials the 80% bootstrap interval of the 10x-extrapolated NE covers the truth >= 70%.

    200 resamples per trial keep the test fast (the estimator is the same as the default 1000). Measured
    over 150 trials with 1000 resamples: 76% uncorrected, 82% with the sqrt(n/(n-k)) correction.
    """
    truth = float(_truth(X_FAR))
    covered80 = covered95 = 0
    for trial in range(50):
        fit = fit_arrays(X, _noisy(1000 + trial), n_bootstrap=200, seed=trial, compare=False, workers=1)
        p = fit.predictions([X_FAR])[0]
        covered80 += p["lo80"] <= truth <= p["hi80"]
        covered95 += p["lo95"] <= truth <= p["hi95"]
    assert covered80 >= 35  # >= 70%
    assert covered95 >= 43  # the 95% interval is not much too narrow either
    assert covered80 <= 48  # and the 80% interval is not vacuously wide


def test_intervals_and_determinism():
    y = _noisy(7)
    a = fit_arrays(X, y, n_bootstrap=300, seed=5, compare=False)
    for workers in (1, 3):
        b = fit_arrays(X, y, n_bootstrap=300, seed=5, compare=False, workers=workers)
        assert a.as_dict([1e8]) == b.as_dict([1e8])  # same seed, any thread count: identical
    for name, ci in a.ci.items():
        assert ci["lo95"] <= ci["lo80"] <= a.params[name] <= ci["hi80"] <= ci["hi95"] or name == "alpha"
    assert a.bootstrap_used >= 290
    c = fit_arrays(X, y, n_bootstrap=300, seed=6, compare=False)
    assert c.ci != a.ci


def test_holdout_and_form_comparison_prefer_true_form():
    fit = fit_arrays(X, _noisy(3), n_bootstrap=0, holdout_largest=2)
    h = fit.holdout
    assert h["k"] == 2 and h["fit_points"] == 6 and len(h["points"]) == 2
    assert h["max_decades_beyond"] == pytest.approx(3 / 7 * 2, rel=1e-9)
    assert h["mean_abs_rel_error"] < 0.005
    by_form = {c["form"]: c for c in fit.comparison}
    assert set(by_form) == {"power_plus_const", "power_law", "log_linear"}
    assert by_form["power_plus_const"]["aicc"] < by_form["power_law"]["aicc"] - 10
    assert (by_form["power_plus_const"]["holdout_mean_abs_rel_error"]
            < by_form["power_law"]["holdout_mean_abs_rel_error"])


def test_pure_power_law_data_refuses_or_flags_the_constant():
    exact = 1.5 * X**-0.05
    with pytest.raises(InfeasibleError, match="gamma"):  # gamma runs to its bound: refused, with a hint
        fit_arrays(X, exact, n_bootstrap=0)
    loose = fit_arrays(X, exact, n_bootstrap=0, compare=False, refuse_unconverged=False)
    assert not loose.converged and "bound" in loose.message
    noisy = exact * np.exp(np.random.default_rng(11).normal(0, 1e-3, X.size))
    fit = fit_arrays(X, noisy, n_bootstrap=200)  # noise lets gamma sit inside: flagged instead
    assert any("cannot identify the constant" in w for w in fit.warnings)
    pl = fit_arrays(X, noisy, form="power_law", n_bootstrap=0, compare=False)
    assert pl.params["beta"] == pytest.approx(0.05, rel=0.05)


def test_fit_stuck_at_its_start_is_refused(monkeypatch):
    real = sf._solve_batch
    monkeypatch.setattr(sf, "_solve_batch", lambda *a, **k: real(*a, **{**k, "max_iter": 0}))
    with pytest.raises(InfeasibleError, match="stayed at its start; gradient did not vanish"):
        fit_arrays(X, _noisy(0), n_bootstrap=0, compare=False)


def test_exact_start_is_a_solution_not_a_stuck_fit():
    x = np.logspace(3, 8, 6)
    fit = fit_arrays(x, 0.9 - 0.02 * np.log10(x), form="log_linear", n_bootstrap=0, compare=False)
    assert fit.converged and fit.params["k"] == pytest.approx(-0.02 / np.log(10), rel=1e-9)


def test_flat_data_is_not_reported_as_a_fit():
    y = np.full(X.size, 0.8) * np.exp(np.random.default_rng(2).normal(0, 1e-4, X.size))
    with pytest.raises(InfeasibleError, match="did not converge"):
        fit_arrays(X, y, n_bootstrap=0)


def test_unidentified_constant_warns():
    # Two decades, small exponent: the floor trades off against alpha and beta.
    x = np.logspace(5, 7, 6)
    rng = np.random.default_rng(4)
    y = (1.0 * x**-0.08 + 0.2) * np.exp(rng.normal(0, 3e-3, x.size))
    fit = fit_arrays(x, y, n_bootstrap=200, compare=True, refuse_unconverged=False)
    assert any("cannot identify the constant" in w for w in fit.warnings)


def test_log_linear_recovers_hstu_like_law():
    x = np.logspace(3, 6, 7)
    y = 0.549 - 0.0053 * np.log(x)
    fit = fit_arrays(x, y, form="log_linear", n_bootstrap=50, compare=False)
    assert fit.params["y0"] == pytest.approx(0.549, rel=1e-6)
    assert fit.params["k"] == pytest.approx(-0.0053, rel=1e-5)


def test_two_axis_fit_recovers_chinchilla_like_law():
    n, d = np.meshgrid(np.logspace(6, 9, 5), np.logspace(8, 11, 5))
    n, d = n.ravel(), d.ravel()
    loss = 1.69 + 406.4 / n**0.34 + 410.7 / d**0.28
    loss = loss * np.exp(np.random.default_rng(0).normal(0, 1e-3, loss.size)) / 4  # keep within the NE range
    fit = fit_arrays(np.stack([n, d], axis=1), loss, form="two_axis", n_bootstrap=0)
    assert fit.converged
    assert fit.params["alpha"] == pytest.approx(0.34, rel=0.1)
    assert fit.params["beta"] == pytest.approx(0.28, rel=0.1)
    assert fit.params["E"] == pytest.approx(1.69 / 4, rel=0.05)
    law = fit.to_two_axis_law()
    truth = (1.69 + 406.4 / 1e10**0.34 + 410.7 / 1e12**0.28) / 4
    assert law.predict(1e10, 1e12) == pytest.approx(truth, rel=0.01)


def _two_axis_grid(seed=0):
    n, d = np.meshgrid(np.logspace(6, 9, 5), np.logspace(8, 11, 5))
    n, d = n.ravel(), d.ravel()
    loss = (1.69 + 406.4 / n**0.34 + 410.7 / d**0.28) / 4
    return np.stack([n, d], axis=1), loss * np.exp(np.random.default_rng(seed).normal(0, 1e-3, loss.size))


def test_two_axis_predictions_have_bootstrap_intervals():
    nd, loss = _two_axis_grid()
    fit = fit_arrays(nd, loss, form="two_axis", n_bootstrap=200, seed=1)
    assert fit.converged and fit.bootstrap_used > 150
    assert fit.axis_ranges == {"params": (1e6, 1e9), "samples": (1e8, 1e11)}
    inside, beyond = fit.predictions([(1e7, 1e10), (1e11, 1e13)])
    law = fit.to_two_axis_law()
    assert inside["ne"] == law.predict(1e7, 1e10) and inside["x"] == [1e7, 1e10]
    truth = (1.69 + 406.4 / 1e7**0.34 + 410.7 / 1e10**0.28) / 4
    assert inside["lo95"] <= truth <= inside["hi95"]
    for p in (inside, beyond):
        assert p["lo95"] <= p["lo80"] <= p["ne"] <= p["hi80"] <= p["hi95"]
    assert beyond["hi80"] - beyond["lo80"] > inside["hi80"] - inside["lo80"]
    assert inside["extrapolation"] == pytest.approx(0.1) and beyond["extrapolation"] == pytest.approx(100.0)
    assert fit.extrapolation_warning([inside]) is None
    warning = fit.extrapolation_warning([inside, beyond])
    assert "1e+11:1e+13 (100x the largest, 100x the largest)" in warning
    assert "params 1e+06 to 1e+09; samples 1e+08 to 1e+11" in warning and "1e+07:" not in warning
    assert fit.as_dict([(1e7, 1e10)])["predictions"] == [inside]


def test_two_axis_without_bootstrap_has_unknown_bounds():
    nd, loss = _two_axis_grid()
    (p,) = fit_arrays(nd, loss, form="two_axis", n_bootstrap=0).predictions([(1e7, 1e10)])
    assert p["ne"] > 0 and [p[k] for k in ("lo80", "hi80", "lo95", "hi95")] == [None] * 4


def test_two_axis_refuses_a_design_that_cannot_separate_n_and_d():
    n = np.logspace(6, 9, 7)
    with pytest.raises(InputError, match="vary independently"):
        fit_arrays(np.stack([n, 100 * n], axis=1), 0.5 + n**-0.3, form="two_axis", n_bootstrap=0)
    with pytest.raises(InputError, match="needs samples to vary"):
        fit_arrays(np.stack([n, np.full(7, 1e9)], axis=1), 0.5 + n**-0.3, form="two_axis", n_bootstrap=0)


def test_one_axis_predictions_without_bootstrap_are_unknown_not_zero_width():
    fit = fit_arrays(X, _noisy(0), n_bootstrap=0, compare=False)
    (p,) = fit.predictions([X_FAR])
    assert p["ne"] == fit.to_law().predict(X_FAR)
    assert [p[k] for k in ("lo80", "hi80", "lo95", "hi95")] == [None] * 4
    assert p["extrapolation"] == pytest.approx(10.0)
    assert fit.extrapolation_warning([p]) is None  # exactly the factor: not flagged


def test_extrapolation_warning_names_values_beyond_the_factor():
    fit = fit_arrays(X, _noisy(0), n_bootstrap=100, compare=False)
    assert sf.EXTRAPOLATION_FACTOR == 10.0
    preds = fit.predictions([1e6, 2e8, 1e300, 10.0])
    assert [p["extrapolation"] for p in preds] == pytest.approx([0.1, 20.0, 1e293, 1e-6])
    far = preds[2]
    assert far["lo80"] < far["hi80"]  # the bootstrap interval alone looks confident: hence the warning
    w = fit.extrapolation_warning(preds)
    assert w is not None and "\n" not in w
    assert "2e+08 (20x the largest)" in w and "1e+300" in w and "10 (1e+03x below the smallest)" in w
    assert "1e+06" not in w.split(":")[0] and "samples 10000 to 1e+07" in w


def test_bootstrap_resamples_runs_not_rows():
    # Two evaluations per run: a run's rows enter or leave a resample together.
    x = np.repeat(X, 2) * np.tile([1.0, 1.5], X.size)
    y = _truth(x) * np.exp(np.random.default_rng(9).normal(0, 1e-3, x.size))
    runs = np.repeat([f"run{i}" for i in range(X.size)], 2)
    fit = fit_arrays(x, y, run=runs, n_bootstrap=100, compare=False)
    assert fit.n_runs == 8 and fit.n_points == 16 and fit.bootstrap_used > 90


def test_too_few_points_is_input_error():
    with pytest.raises(InputError, match="needs at least 3 distinct scales"):
        fit_arrays(X[:2], _truth(X[:2]), n_bootstrap=0)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("samples,loss\n1,0.8\n", "missing column 'ne'"),
        ("run,ne\nr1,0.8\n", "missing a scale column"),
        ("samples,ne\n1e4,0.8\n-5,0.7\n", "row 3, column samples: must be > 0"),
        ("samples,ne\n1e4,1.7\n", "NE must be in (0, 1.5)"),
        ("samples,ne\n1e4,0\n", "NE must be in (0, 1.5)"),
        ("samples,ne\n1e4,abc\n", "row 2, column ne: not a number"),
        ("samples,ne\n1e4,nan\n", "not a finite number"),
        ("samples,ne\n1e4\n", "row 2: has 1 fields"),
        ("", "empty file"),
    ],
)
def test_parse_rejects_bad_csv(text, needle):
    with pytest.raises(InputError) as info:
        parse_observations(text, "obs.csv")
    assert needle in str(info.value) and str(info.value).startswith("obs.csv")


def test_parse_component_filter_and_extras():
    text = "run,component,samples,params,ne,seed\na,data,1e4,5,0.9,0\nb,emb,1e4,7,0.8,0\n"
    obs = parse_observations(text, "o.csv", component="emb")
    assert obs.n == 1 and obs.columns["params"].tolist() == [7.0] and obs.extra["seed"] == ["0"]
    with pytest.raises(InputError, match="no rows with component"):
        parse_observations(text, "o.csv", component="mlp")


def test_default_bootstrap_is_1000_resamples():
    import inspect

    assert inspect.signature(sf.fit_observations).parameters["n_bootstrap"].default == 1000


def test_small_sample_correction_widens_intervals_by_sqrt_n_over_n_minus_k():
    y = _noisy(8)
    on = fit_arrays(X, y, n_bootstrap=300, seed=1, compare=False)
    off = fit_arrays(X, y, n_bootstrap=300, seed=1, compare=False, small_sample_correction=False)
    assert on.inflation == pytest.approx(np.sqrt(8 / 5)) and off.inflation == 1.0
    assert on.as_dict()["bootstrap"]["inflation"] == on.inflation and "sqrt(n/(n-k))" in on.method
    width_on, width_off = (f.ci["beta"]["hi80"] - f.ci["beta"]["lo80"] for f in (on, off))
    assert width_on == pytest.approx(np.sqrt(8 / 5) * width_off, rel=1e-9)  # beta is a fit coordinate
    assert sf.small_sample_inflation(44, 3) == pytest.approx(np.sqrt(44 / 41))


def test_unstable_fit_is_flagged():
    # A quick-study MLP-width sweep (NE against dense parameters): one drop, then flat. Five points and three
    # parameters: the resamples land on other optima than the full data.
    x = np.array([373.0, 793.0, 1825.0, 4657.0, 13393.0])
    y = np.array([0.99065235, 0.90732575, 0.90557168, 0.90588914, 0.90081463])
    fit = fit_arrays(x, y, axis="params", compare=False, refuse_unconverged=False)  # 1000 resamples
    assert any("outside its own 80% bootstrap interval" in w for w in fit.warnings)
    assert any("only 5 distinct scales" in w for w in fit.warnings)
    assert fit.ci["beta"]["lo95"] >= 1e-3  # scaled resamples stay inside the bounds (beta > 0)
