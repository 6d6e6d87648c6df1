"""K-fold cross-validation of a family fit: how far off its predictions are on cases it was not fitted to.

The distinct cases are shuffled with a fixed seed and split into ``k`` folds (``k = min(folds, cases)``;
a case measured in several files keeps all its records in one fold); each fold is predicted by a fit on
the others, refitting the same free parameters from three of the full fit's starts (the given one, the
rescaled one and the one the full fit converged from, chosen by name, so no fitted value reaches a
fold). Reported:
median and 90th-percentile absolute percentage error ``|predicted / measured - 1| * 100`` and the
lognormal spread ``sigma_rel = 1.4826 * median |log(predicted / measured)|`` (a robust one-sigma log error,
used by the simulator as per-kernel variability). Families with fewer than ``MIN_CASES`` cases are not
cross-validated (their error is reported as unknown).
"""

from __future__ import annotations

import math
import multiprocessing
import os
import sys

import numpy as np

from calibration.fit import FamilyFit, FitCase, Params, fit_parameters, predictions
from calibration.measurements import Record
from planner.cost.params import ParamSpec

#: Default number of folds (five-fold CV, the common choice for small data sets).
DEFAULT_FOLDS = 5
#: Fewer cases than this cannot be split into meaningful folds.
MIN_CASES = 4
#: MAD-to-sigma factor of a normal distribution.
MAD_TO_SIGMA = 1.4826


def _folds(cases: list[FitCase], folds: int, seed: int) -> list[np.ndarray]:
    """Held-out case indices of each of the ``min(folds, distinct cases)`` folds, stratified by kernel.

    The distinct cases (``case_id``) are grouped by kernel and dtype, shuffled with ``seed`` within each
    group, and dealt round-robin group after group, so every fold holds out about the same share of each
    kernel (stratified k-fold). Dealt over the family as a whole, a fold could take two of a kernel's five
    sizes and leave the rest unable to identify that kernel's own parameters (a gloo all-gather fold
    without its two smallest messages had no latency floor left and predicted them 85% low), which
    measures the fold's luck rather than the model. The records of a case measured in several files
    stay in one fold, so no fold is predicted from a copy of itself.
    """
    ids = sorted({c.record.case_id for c in cases})
    k = min(folds, len(ids))
    rng = np.random.default_rng(seed)
    strata: dict[str, list[str]] = {}
    for case_id in ids:
        strata.setdefault(_stratum(case_id), []).append(case_id)
    fold_of: dict[str, int] = {}
    position = int(rng.integers(k))
    for name in sorted(strata):
        group = strata[name]
        for j in rng.permutation(len(group)):
            fold_of[group[j]] = position % k
            position += 1
    members: list[list[int]] = [[] for _ in range(k)]
    for i, c in enumerate(cases):
        members[fold_of[c.record.case_id]].append(i)
    return [np.array(m, dtype=int) for m in members]


def _stratum(case_id: str) -> str:
    """The kernel and dtype of a case id (``suite/kernel/dtype/params``): the stratum of its fold."""
    return "/".join(case_id.split("/")[1:3])


def repeat_spread(records: list[Record]) -> dict[str, float | int] | None:
    """How far apart two measurements of the same case are: the noise floor of a family's error.

    A case measured in two or more files is compared across them (each file's kept value); a case in
    one file, across its bench passes (``extra.pass_medians_s``). Per case the spread is ``(largest /
    smallest - 1) x 100``. Returns ``{repeat_median_pct, repeat_cases}`` (the median spread and how many
    cases had repeats), or None when no case was measured twice. A cross-validated error about that
    size is as small as the measurements can show.
    """
    kept: dict[str, list[float]] = {}
    passes: dict[str, list[float]] = {}
    for record in records:
        if record.median_s is not None and record.median_s > 0:
            kept.setdefault(record.case_id, []).append(float(record.median_s))
        found = record.extra.get("pass_medians_s") if isinstance(record.extra, dict) else None
        if isinstance(found, list):
            passes.setdefault(record.case_id, []).extend(
                float(v) for v in found if isinstance(v, (int, float)) and v > 0 and math.isfinite(v))
    spreads = []
    for case_id, values in kept.items():
        values = values if len(values) >= 2 else passes.get(case_id, [])
        if len(values) >= 2:
            spreads.append((max(values) / min(values) - 1.0) * 100.0)
    if not spreads:
        return None
    return {"repeat_median_pct": float(np.median(spreads)), "repeat_cases": len(spreads)}


def _fold_predictions(fit: FamilyFit, cases: list[FitCase], params: Params, specs: dict[str, ParamSpec],
                      test: np.ndarray) -> np.ndarray:
    """Predictions of the held-out cases ``test`` by a refit of ``fit``'s free parameters on the others."""
    family = fit.family
    names = [name for name, p in fit.params.items() if p.status == "measured"]
    train_mask = np.ones(len(cases), dtype=bool)
    train_mask[test] = False
    train = [cases[i] for i in np.flatnonzero(train_mask)]
    usable = names[: max(len(train) - 1, 0)]
    # refit from the full fit's own start (never from its result: that would leak the held-out cases
    # into the prior centre and the start point)
    start_params = fit.extra.get("start")
    start = {f: dict(v) for f, v in (start_params if isinstance(start_params, dict) else params).items()}
    # the given start, the rescaled one and the one the full fit converged from (its name, not its
    # values): the others lost on all the cases, and running them on each fold took 80% of calibrate's
    # time
    winner = fit.extra.get("winning_start")
    named = {"given", "rescaled", winner} if isinstance(winner, str) else None
    values, _se, _ok, _msg, _rms = fit_parameters(train, start, family, specs, usable, starts_named=named)
    fold_params = {f: dict(v) for f, v in params.items()}
    fold_params[family].update(values)
    return predictions([cases[i] for i in test], fold_params)


def _summary(cases: list[FitCase], predicted: np.ndarray, k: int) -> dict[str, float | int]:
    measured = np.array([c.measured_s for c in cases])
    ratio = predicted / measured
    abs_pct = np.abs(ratio - 1.0) * 100.0
    log_err = np.abs(np.log(ratio))
    return {
        "median_abs_pct_err": float(np.median(abs_pct)),
        "p90_abs_pct_err": float(np.percentile(abs_pct, 90)),
        "cases": len(cases),
        "folds": k,
        "sigma_rel": float(MAD_TO_SIGMA * np.median(log_err)),
    }


def cross_validate(fit: FamilyFit, cases: list[FitCase], params: Params, specs: dict[str, ParamSpec],
                   folds: int = DEFAULT_FOLDS, seed: int = 0) -> dict[str, float | int] | None:
    """K-fold cross-validated errors of ``fit`` on ``cases`` (``params`` as fitted, used as start point).

    Returns ``{median_abs_pct_err, p90_abs_pct_err, cases, folds, sigma_rel}`` or None with too few cases.
    """
    return cross_validate_all({fit.family: fit}, {fit.family: cases}, params, {fit.family: specs}, folds,
                              seed, workers=1)[fit.family]


#: What the forked workers of :func:`cross_validate_all` read (set just before the fork, cleared after).
_SHARED: dict[str, object] = {}


def _run_job(job: tuple[str, int]) -> tuple[str, int, np.ndarray]:
    family, fold = job
    fits, cases, params, specs, held = (_SHARED[k] for k in ("fits", "cases", "params", "specs", "held"))
    test = held[family][fold]  # type: ignore[index]
    return family, fold, _fold_predictions(fits[family], cases[family], params,  # type: ignore[index]
                                           specs[family], test)  # type: ignore[index]


def cross_validate_all(fits: dict[str, FamilyFit], cases: dict[str, list[FitCase]], params: Params,
                       specs: dict[str, dict[str, ParamSpec]], folds: int = DEFAULT_FOLDS, seed: int = 0,
                       workers: int | None = None) -> dict[str, dict[str, float | int] | None]:
    """:func:`cross_validate` of every family in ``specs``, the folds spread over ``workers`` processes.

    Each (family, fold) refit is independent of the others, so on Linux they run in forked worker
    processes (default: one per CPU this process may use); the result is the same as one process gives.
    """
    held = {fam: _folds(cases[fam], folds, seed) for fam in specs if len(cases[fam]) >= MIN_CASES}
    jobs = [(fam, fold) for fam, parts in held.items() for fold in range(len(parts))]
    # the largest families first, so the last job to finish is a short one
    jobs.sort(key=lambda j: -len(cases[j[0]]) * len(fits[j[0]].params))
    if workers is None:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    workers = max(1, min(workers, len(jobs)))
    results: list[tuple[str, int, np.ndarray]]
    if workers > 1 and sys.platform.startswith("linux"):
        _SHARED.update(fits=fits, cases=cases, params=params, specs=specs, held=held)
        try:
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                results = list(pool.imap_unordered(_run_job, jobs))
        finally:
            _SHARED.clear()
    else:
        results = [(fam, fold, _fold_predictions(fits[fam], cases[fam], params, specs[fam], held[fam][fold]))
                   for fam, fold in jobs]
    out: dict[str, dict[str, float | int] | None] = {fam: None for fam in specs}
    for fam, parts in held.items():
        predicted = np.empty(len(cases[fam]))
        for family, fold, values in results:
            if family == fam:
                predicted[parts[fold]] = values
        out[fam] = _summary(cases[fam], predicted, len(parts))
    return out
