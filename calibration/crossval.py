"""K-fold cross-validation of a family fit: how far off its predictions are on cases it was not fitted to.

The cases are shuffled with a fixed seed and split into ``k`` folds (``k = min(folds, cases)``); each fold
is predicted by a fit on the others, refitting the same free parameters from the same starts. Reported:
median and 90th-percentile absolute percentage error ``|predicted / measured - 1| * 100`` and the
lognormal spread ``sigma_rel = 1.4826 * median |log(predicted / measured)|`` (a robust one-sigma log error,
used by the simulator as per-kernel variability). Families with fewer than ``MIN_CASES`` cases are not
cross-validated (their error is reported as unknown).
"""

from __future__ import annotations

import numpy as np

from calibration.fit import FamilyFit, FitCase, Params, fit_parameters, predictions
from planner.cost.params import ParamSpec

#: Default number of folds (five-fold CV, the common choice for small data sets).
DEFAULT_FOLDS = 5
#: Fewer cases than this cannot be split into meaningful folds.
MIN_CASES = 4
#: MAD-to-sigma factor of a normal distribution.
MAD_TO_SIGMA = 1.4826


def cross_validate(fit: FamilyFit, cases: list[FitCase], params: Params, specs: dict[str, ParamSpec],
                   folds: int = DEFAULT_FOLDS, seed: int = 0) -> dict[str, float | int] | None:
    """K-fold cross-validated errors of ``fit`` on ``cases`` (``params`` as fitted, used as start point).

    Returns ``{median_abs_pct_err, p90_abs_pct_err, cases, folds, sigma_rel}`` or None with too few cases.
    """
    n = len(cases)
    if n < MIN_CASES:
        return None
    k = min(folds, n)
    family = fit.family
    names = [name for name, p in fit.params.items() if p.status == "measured"]
    order = np.random.default_rng(seed).permutation(n)
    predicted = np.empty(n)
    # refit each fold from the full fit's own start (never from its result: that would leak the held-out
    # cases into the prior centre and the start point)
    start_params = fit.extra.get("start")
    start = {f: dict(v) for f, v in (start_params if isinstance(start_params, dict) else params).items()}
    for fold in range(k):
        test = order[fold::k]
        train_mask = np.ones(n, dtype=bool)
        train_mask[test] = False
        train = [cases[i] for i in np.flatnonzero(train_mask)]
        usable = names[: max(len(train) - 1, 0)]
        values, _se, _ok, _msg, _rms = fit_parameters(train, start, family, specs, usable)
        fold_params = {f: dict(v) for f, v in params.items()}
        fold_params[family].update(values)
        predicted[test] = predictions([cases[i] for i in test], fold_params)
    measured = np.array([c.measured_s for c in cases])
    ratio = predicted / measured
    abs_pct = np.abs(ratio - 1.0) * 100.0
    log_err = np.abs(np.log(ratio))
    return {
        "median_abs_pct_err": float(np.median(abs_pct)),
        "p90_abs_pct_err": float(np.percentile(abs_pct, 90)),
        "cases": n,
        "folds": k,
        "sigma_rel": float(MAD_TO_SIGMA * np.median(log_err)),
    }
