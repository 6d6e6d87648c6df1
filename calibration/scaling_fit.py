"""Fit scaling laws to training-run observations robustly, with bootstrap intervals and extrapolation checks.

Method (following Hoffmann et al. 2022 App. D.2 and the Epoch refit, Besiroglu et al. 2024, arXiv 2404.10102):

* Objective: Huber loss (delta = 1e-3) on log residuals ln(prediction) - ln(observed), **summed** over points
  (averaging shrinks the objective ~n-fold and stops optimisers early, the Epoch finding).
* Parameterisation in log space so constants stay positive: power plus constant
  ln y = logsumexp(a - beta ln(x/x_ref), g), alpha = e^a x_ref^beta, gamma = e^g; x_ref is the geometric mean
  of the fitted x, which conditions the problem.
* Solver: a batched, bound-projected Levenberg-Marquardt on the exact Huber gradient with IRLS curvature,
  vectorised in numpy over many starts (a grid over beta and gamma) and over bootstrap resamples at once;
  tolerances at 1e-12 relative. A fit is *converged* only if its projected gradient vanishes (so a solver
  stuck at its start is caught, with that reason) and no parameter sits at a bound; otherwise it is refused
  (:class:`~planner.errors.InfeasibleError`, exit 1) with the reason.
* Bootstrap: resample runs (the ``run`` column; rows otherwise) with replacement, >= 1000 resamples by
  default, seeded (``numpy.random.SeedSequence``; the same seed gives the same intervals for any number of
  threads), refit each with the multi-start solver (chunks run on threads); deviations from the point fit
  are scaled by sqrt(n/(n-k)) (the HC1 small-sample correction, :func:`small_sample_inflation`);
  percentile 80% and 95% intervals for parameters and predictions.
* Extrapolation check: hold out the largest K runs, fit the rest, report absolute and relative error and
  the distance in decades; forms are compared by held-out error and AICc (Gaussian on log residuals).
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from planner.errors import InfeasibleError, InputError
from planner.quality import AXES, FORM_PARAMS, QualityLaw, TwoAxisLaw, evaluate_form, percentile_bounds

#: Huber transition on log residuals (Hoffmann et al. 2022 App. D.2; Besiroglu et al. 2024 keep it).
HUBER_DELTA = 1e-3
#: Observed NE must lie in this open interval (NE = 1 is the base-rate predictor; 1.5 is far worse).
NE_RANGE = (0.0, 1.5)
#: Columns an observations CSV may use; others are carried along and ignored by the fit.
KNOWN_COLUMNS = ("run", "component", "samples", "params", "flops", "ne")
#: A prediction further than this factor beyond the observed scale range (above the largest x or below
#: the smallest, on any axis) is flagged as an extrapolation. One decade, because the held-out checks the
#: literature relies on predict only the top one or two scales from the rest (sequential-recommendation
#: scaling, arXiv 2311.11351: fit 4 scales, predict 2; Hoffmann et al. 2022 App. E), so about one decade past
#: the data is what such checks can vouch for. Further out the error of the form itself (a curving frontier,
#: a floor the data cannot identify) dominates, and bootstrap intervals, which assume the form, leave it out:
#: they stay narrow however far one goes.
EXTRAPOLATION_FACTOR = 10.0

_GTOL = 1e-6  # projected gradient relative to delta * total weight: a converged LM sits near 1e-12
_MAX_ITER = 400


# ---------------------------------------------------------------------------------------------------------
# Observations


@dataclass(frozen=True)
class Observations:
    """Training-run observations read from a CSV: one row per (run, evaluation).

    ``columns`` maps each numeric column present among samples/params/flops/ne to a float array; ``run``
    and ``component`` are string arrays (row index / empty when absent). ``sha256`` is of the file's text.
    """

    file: str
    sha256: str
    columns: dict[str, np.ndarray]
    run: np.ndarray
    component: np.ndarray
    extra: dict[str, list[str]] = field(default_factory=dict)
    selected_component: str | None = None

    @property
    def n(self) -> int:
        """Number of rows."""
        return len(self.run)

    def axis(self, x: str) -> np.ndarray:
        """The values of scale column ``x`` (InputError if the file lacks it)."""
        if x not in self.columns:
            have = [c for c in AXES if c in self.columns]
            raise InputError(
                f"missing column {x!r} (has {', '.join(have) or 'no scale column'})", file=self.file, field=x
            )
        return self.columns[x]


def _parse_float(text: str, column: str, row: int, file: str) -> float:
    try:
        value = float(text)
    except ValueError:
        shown = text if len(text) <= 30 else text[:27] + "..."
        raise InputError(f"not a number: {shown!r}", file=file, field=f"row {row}, column {column}") from None
    if not math.isfinite(value):
        raise InputError(f"not a finite number: {text!r}", file=file, field=f"row {row}, column {column}")
    return value


def parse_observations(
    text: str, file: str, *, sha256: str | None = None, component: str | None = None
) -> Observations:
    """Parse and validate an observations CSV (header row; columns among samples, params, flops, ne, run,
    component). Rows are numbered from 2 (the header is row 1) in messages.

    Checks: an ``ne`` column and at least one scale column; every value of those columns a finite number;
    scales > 0; NE in (0, 1.5). With ``component``, keeps only that component's rows.

    Raises:
        InputError: naming the file, the row and column and the problem.
    """
    digest = sha256 or hashlib.sha256(text.encode("utf-8")).hexdigest()
    text = text.removeprefix("\ufeff")  # spreadsheets write a byte-order mark before the header
    reader = csv.reader(io.StringIO(text))
    try:
        rows = [r for r in reader]
    except csv.Error as exc:
        raise InputError(f"malformed CSV: {exc}", file=file) from None
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        raise InputError("empty file: expected a header row with ne and samples, params or flops", file=file)
    header = [h.strip().lower() for h in rows[0]]
    if len(set(header)) != len(header):
        dup = next(h for h in header if header.count(h) > 1)
        raise InputError(f"duplicate column {dup!r}", file=file, field="header")
    if "ne" not in header:
        raise InputError("missing column 'ne'", file=file, field="header")
    scales = [c for c in AXES if c in header]
    if not scales:
        raise InputError(
            "missing a scale column: need one of samples, params, flops", file=file, field="header"
        )
    numeric = [*scales, "ne"]
    cols: dict[str, list[float]] = {c: [] for c in numeric}
    run: list[str] = []
    comp: list[str] = []
    extra_names = [h for h in header if h not in KNOWN_COLUMNS]
    extra: dict[str, list[str]] = {h: [] for h in extra_names}
    for i, raw in enumerate(rows[1:], start=2):
        if len(raw) != len(header):
            raise InputError(f"has {len(raw)} fields, header has {len(header)}", file=file, field=f"row {i}")
        rec = dict(zip(header, (c.strip() for c in raw), strict=True))
        if component is not None and rec.get("component", "") != component:
            continue
        for c in numeric:
            v = _parse_float(rec[c], c, i, file)
            if c in AXES and v <= 0:
                raise InputError(f"must be > 0, got {rec[c]}", file=file, field=f"row {i}, column {c}")
            if c == "ne" and not NE_RANGE[0] < v < NE_RANGE[1]:
                raise InputError(
                    f"NE must be in (0, 1.5), got {rec[c]}", file=file, field=f"row {i}, column ne"
                )
            cols[c].append(v)
        run.append(rec.get("run") or f"row{i}")
        comp.append(rec.get("component", ""))
        for h in extra_names:
            extra[h].append(rec[h])
    if not run:
        what = f"no rows with component {component!r}" if component is not None else "no data rows"
        raise InputError(what, file=file)
    return Observations(
        file=file,
        sha256=digest,
        columns={c: np.asarray(v, dtype=float) for c, v in cols.items()},
        run=np.asarray(run),
        component=np.asarray(comp),
        extra=extra,
        selected_component=component,
    )


def read_observations(path: str, *, component: str | None = None) -> Observations:
    """Read and validate an observations CSV file (see :func:`parse_observations`).

    Raises:
        InputError: a missing or unreadable file, text that is not UTF-8 (naming the row and byte), or any
            problem :func:`parse_observations` finds.
    """
    from pathlib import Path

    from planner.io import read_text

    try:
        text = read_text(path)
    except InputError as exc:
        if "UTF-8" not in exc.problem:
            raise
        raw = Path(path).read_bytes()
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as err:
            row = raw.count(b"\n", 0, err.start) + 1
            raise InputError(
                f"not UTF-8 text: byte 0x{raw[err.start]:02x} at offset {err.start}", file=str(path),
                field=f"row {row}",
            ) from None
        raise
    return parse_observations(text, str(path), component=component)


# ---------------------------------------------------------------------------------------------------------
# Models in fit parameterisation: log prediction and its Jacobian, batched over parameter sets


def _logmodel(form: str, theta: np.ndarray, lx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ln(prediction) (M, n) and its Jacobian (M, n, k) for parameter sets ``theta`` (M, k) at ``lx``.

    ``lx`` is ln(x / x_ref) of shape (n,) (or (n, 2) = (ln N/N_ref, ln D/D_ref) for ``two_axis``).
    """
    if form == "power_plus_const":
        a, beta, g = theta[:, 0:1], theta[:, 1:2], theta[:, 2:3]
        t1 = a - beta * lx[None, :]
        f = np.logaddexp(t1, g)
        s = np.exp(t1 - f)
        jac = np.stack([s, -s * lx[None, :], 1.0 - s], axis=-1)
        return f, jac
    if form == "power_law":
        a, beta = theta[:, 0:1], theta[:, 1:2]
        f = a - beta * lx[None, :]
        jac = np.stack([np.ones_like(f), np.broadcast_to(-lx[None, :], f.shape)], axis=-1)
        return f, jac
    if form == "log_linear":
        y0, k = theta[:, 0:1], theta[:, 1:2]
        y = y0 + k * lx[None, :]
        with np.errstate(invalid="ignore", divide="ignore"):
            f = np.where(y > 0, np.log(np.where(y > 0, y, 1.0)), np.nan)
            inv = np.where(y > 0, 1.0 / np.where(y > 0, y, 1.0), 0.0)
        jac = np.stack([inv, lx[None, :] * inv], axis=-1)
        return f, jac
    if form == "two_axis":
        e, a, al, b, be = (theta[:, i : i + 1] for i in range(5))
        ln_n, ln_d = lx[None, :, 0], lx[None, :, 1]
        t1 = a - al * ln_n
        t2 = b - be * ln_d
        f = np.logaddexp(np.logaddexp(t1, t2), e)
        s1, s2, s3 = np.exp(t1 - f), np.exp(t2 - f), np.exp(e - f)
        jac = np.stack([s3, s1, -s1 * ln_n, s2, -s2 * ln_d], axis=-1)
        return f, jac
    raise ValueError(f"unknown form {form!r}")


def _huber(r: np.ndarray, delta: float) -> np.ndarray:
    ar = np.abs(r)
    return np.where(ar <= delta, 0.5 * r * r, delta * (ar - 0.5 * delta))


def _objective(
    form: str, theta: np.ndarray, lx: np.ndarray, ly: np.ndarray, w: np.ndarray, delta: float
) -> np.ndarray:
    f, _ = _logmodel(form, theta, lx)
    r = f - ly[None, :]
    loss = np.sum(w * _huber(r, delta), axis=1)
    return np.where(np.isfinite(loss), loss, np.inf)


@dataclass
class _Solve:
    theta: np.ndarray  # (M, k)
    loss: np.ndarray  # (M,)
    grad_rel: np.ndarray  # (M,) projected gradient / (delta * sum w)
    at_bound: np.ndarray  # (M, k) bool
    moved: np.ndarray  # (M,) bool
    iterations: int


def _solve_batch(
    form: str,
    theta0: np.ndarray,
    lx: np.ndarray,
    ly: np.ndarray,
    w: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    delta: float = HUBER_DELTA,
    max_iter: int = _MAX_ITER,
    gtol_stop: float = 1e-11,
) -> _Solve:
    """Bound-projected Levenberg-Marquardt on the summed Huber loss, for M problems at once.

    ``w`` (M, n) are per-problem point weights (bootstrap multiplicities). Each step solves
    (H + lam diag H) step = -g with g the exact gradient and H the IRLS curvature
    J^T diag(w min(1, delta/|r|)) J;
    a step is accepted when the loss decreases (lam /= 3), otherwise lam *= 4. A problem stops when its
    projected gradient falls below ``gtol_stop`` (relative to delta * sum of weights), its step and relative
    loss change fall below 1e-12, or lam exceeds 1e12.
    """
    theta = np.clip(np.array(theta0, dtype=float), lower, upper)
    m, k = theta.shape
    start = theta.copy()
    loss = _objective(form, theta, lx, ly, w, delta)
    lam = np.full(m, 1e-3)
    active = np.isfinite(loss)
    eye = np.eye(k)
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 - iteration count is reported
        idx = np.nonzero(active)[0]
        if idx.size == 0:
            break
        th = theta[idx]
        f, jac = _logmodel(form, th, lx)
        r = f - ly[None, :]
        ww = w[idx]
        psi = np.clip(r, -delta, delta)
        grad = np.einsum("mn,mnk->mk", ww * psi, jac)
        # Stop problems whose projected gradient has vanished or whose loss is exactly fitted.
        span = upper - lower
        proj = np.where(
            (th <= lower + 1e-9 * span) & (grad > 0),
            0.0,
            np.where((th >= upper - 1e-9 * span) & (grad < 0), 0.0, grad),
        )
        scale = delta * np.maximum(ww.sum(axis=1), 1e-300)
        small = (np.max(np.abs(proj), axis=1) / scale < gtol_stop) | (loss[idx] < 1e-24 * delta * scale)
        if np.any(small):
            active[idx[small]] = False
            keep = ~small
            idx, th, r, ww, jac, grad = idx[keep], th[keep], r[keep], ww[keep], jac[keep], grad[keep]
            if idx.size == 0:
                break
        with np.errstate(divide="ignore"):
            irls = ww * np.minimum(1.0, delta / np.maximum(np.abs(r), 1e-300))
        hess = np.einsum("mn,mni,mnj->mij", irls, jac, jac)
        diag = np.einsum("mii->mi", hess)
        damp = lam[idx, None, None] * (diag[:, :, None] * eye + 1e-12 * eye)
        try:
            step = -np.linalg.solve(hess + damp, grad[:, :, None])[:, :, 0]
        except np.linalg.LinAlgError:
            # Some system in the batch is singular: pseudo-inverse, still one independent solve per problem.
            step = -np.einsum("mij,mj->mi", np.linalg.pinv(hess + damp), grad)
        step = np.where(np.isfinite(step), step, 0.0)
        trial = np.clip(th + step, lower, upper)
        new_loss = _objective(form, trial, lx, ly, ww, delta)
        old = loss[idx]
        better = new_loss < old
        theta[idx[better]] = trial[better]
        loss[idx[better]] = new_loss[better]
        lam[idx] = np.where(better, np.maximum(lam[idx] / 3.0, 1e-12), lam[idx] * 4.0)
        moved = np.max(np.abs(trial - th), axis=1)
        rel_change = (old - np.minimum(new_loss, old)) / np.maximum(old, 1e-300)
        done = (
            (better & (moved < 1e-12)) | (better & (rel_change < 1e-14) & (moved < 1e-9)) | (lam[idx] > 1e12)
        )
        active[idx[done]] = False
    # Final diagnostics
    f, jac = _logmodel(form, theta, lx)
    r = f - ly[None, :]
    grad = np.einsum("mn,mnk->mk", w * np.clip(r, -delta, delta), jac)
    span = upper - lower
    at_lo = theta <= lower + 1e-9 * span
    at_hi = theta >= upper - 1e-9 * span
    # Projected gradient: at a bound, only the component pointing inward counts.
    proj = np.where(at_lo & (grad > 0), 0.0, np.where(at_hi & (grad < 0), 0.0, grad))
    scale = delta * np.maximum(w.sum(axis=1), 1e-300)
    grad_rel = np.max(np.abs(proj), axis=1) / scale
    grad_rel = np.where(np.isfinite(grad_rel), grad_rel, np.inf)
    moved = np.max(np.abs(theta - start), axis=1) > 1e-10
    return _Solve(theta, loss, grad_rel, at_lo | at_hi, moved, it)


# ---------------------------------------------------------------------------------------------------------
# Per-form set-up: reference scale, bounds, starts, conversion to natural parameters


@dataclass(frozen=True)
class _Setup:
    form: str
    lx: np.ndarray
    ly: np.ndarray
    x_ref: np.ndarray  # (1,) or (2,)
    lower: np.ndarray
    upper: np.ndarray
    names: tuple[str, ...]  # fit-parameter names for messages


def _setup(form: str, x: np.ndarray, y: np.ndarray) -> _Setup:
    ly = np.log(y)
    if form == "two_axis":
        lxx = np.log(x)
        ref = np.exp(lxx.mean(axis=0))
        lx = lxx - np.log(ref)[None, :]
        lo_y, hi_y = float(ly.min()), float(ly.max())
        lower = np.array([lo_y - 14, lo_y - 30, 1e-3, lo_y - 30, 1e-3])
        upper = np.array([hi_y + 1, hi_y + 30, 5.0, hi_y + 30, 5.0])
        return _Setup(form, lx, ly, ref, lower, upper, ("E", "A", "alpha", "B", "beta"))
    lxx = np.log(x)
    ref = np.array([math.exp(float(lxx.mean()))])
    lx = lxx - math.log(ref[0])
    lo_y, hi_y = float(ly.min()), float(ly.max())
    if form == "power_plus_const":
        # gamma's lower bound (~1e-6 of the smallest y) stands for "no floor"; beta in [1e-3, 5].
        lower = np.array([lo_y - 30, 1e-3, lo_y - 14])
        upper = np.array([hi_y + 30, 5.0, hi_y + 1])
        names: tuple[str, ...] = ("alpha", "beta", "gamma")
    elif form == "power_law":
        lower = np.array([lo_y - 30, -5.0])
        upper = np.array([hi_y + 30, 5.0])
        names = ("alpha", "beta")
    elif form == "log_linear":
        span = float(np.ptp(lx)) or 1.0
        big = 1e3 * float(np.max(y)) / span
        lower = np.array([-1e3 * float(np.max(y)), -big])
        upper = np.array([1e3 * float(np.max(y)), big])
        names = ("y0", "k")
    else:
        raise InputError(
            f"unknown form {form!r}; known: {', '.join([*FORM_PARAMS, 'two_axis'])}", field="--form"
        )
    return _Setup(form, lx, ly, ref, lower, upper, names)


def _starts(s: _Setup, w: np.ndarray, dense: bool) -> np.ndarray:
    """Start points (S, k) from a grid: beta (and alpha for two-axis) x the floor's share of min y; the
    prefactor follows from the data at each grid point (projected, so every start is sensible)."""
    y = np.exp(s.ly)
    ymin = float(y.min())
    wsum = max(float(w.sum()), 1e-300)
    if s.form == "power_plus_const":
        betas = [0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5] if dense else [0.1, 0.3, 0.6, 1.0]
        shares = [1e-3, 0.3, 0.6, 0.8, 0.9, 0.95, 0.98] if dense else [0.1, 0.7, 0.9, 0.97]
        out = []
        for b in betas:
            for sh in shares:
                gamma = sh * ymin
                a = float(np.sum(w * (np.log(y - gamma) + b * s.lx)) / wsum)
                out.append([a, b, math.log(gamma)])
        return np.clip(np.array(out), s.lower, s.upper)
    if s.form == "power_law":
        a_fit = np.polyfit(s.lx, s.ly, 1, w=np.sqrt(w) if np.any(w > 0) else None)
        return np.clip(
            np.array([[a_fit[1], -a_fit[0]], [float(s.ly.mean()), 0.1], [float(s.ly.mean()), 0.5]]),
            s.lower,
            s.upper,
        )
    if s.form == "log_linear":
        k_fit, y0_fit = np.polyfit(s.lx, y, 1)
        return np.clip(np.array([[y0_fit, k_fit], [float(y.mean()), 0.0]]), s.lower, s.upper)
    # two_axis
    exps = [0.1, 0.3, 0.6, 1.0] if dense else [0.2, 0.5]
    shares = [0.3, 0.7, 0.9] if dense else [0.5, 0.85]
    out = []
    ymean = float(np.mean(y))
    for al in exps:
        for be in exps:
            for sh in shares:
                e = sh * ymin
                part = max(ymean - e, 1e-6 * ymean) / 2.0
                out.append([math.log(e), math.log(part), al, math.log(part), be])
    return np.clip(np.array(out), s.lower, s.upper)


def _natural(s: _Setup, theta: np.ndarray) -> np.ndarray:
    """Fit parameters (M, k) -> the form's natural parameters (M, k) in SI x units."""
    th = np.atleast_2d(theta)
    if s.form == "power_plus_const":
        lr = math.log(s.x_ref[0])
        return np.stack([np.exp(th[:, 0] + th[:, 1] * lr), th[:, 1], np.exp(th[:, 2])], axis=1)
    if s.form == "power_law":
        lr = math.log(s.x_ref[0])
        return np.stack([np.exp(th[:, 0] + th[:, 1] * lr), th[:, 1]], axis=1)
    if s.form == "log_linear":
        lr = math.log(s.x_ref[0])
        return np.stack([th[:, 0] - th[:, 1] * lr, th[:, 1]], axis=1)
    ln_n, ln_d = np.log(s.x_ref)
    return np.stack(
        [
            np.exp(th[:, 0]),
            np.exp(th[:, 1] + th[:, 2] * ln_n),
            th[:, 2],
            np.exp(th[:, 3] + th[:, 4] * ln_d),
            th[:, 4],
        ],
        axis=1,
    )


def _param_names(form: str) -> tuple[str, ...]:
    return ("E", "A", "alpha", "B", "beta") if form == "two_axis" else FORM_PARAMS[form]


def _n_params(form: str) -> int:
    return len(_param_names(form))


@dataclass
class _Point:
    theta: np.ndarray
    natural: np.ndarray
    loss: float
    converged: bool
    message: str
    grad_rel: float
    starts: int
    starts_agreeing: int
    residuals: np.ndarray


def _fit_point(s: _Setup, w: np.ndarray) -> _Point:
    """Multi-start fit of one weighted data set; picks the lowest loss and checks its convergence."""
    starts = _starts(s, w, dense=True)
    m = len(starts)
    sol = _solve_batch(s.form, starts, s.lx, s.ly, np.broadcast_to(w, (m, len(w))).copy(), s.lower, s.upper)
    best = int(np.argmin(sol.loss))
    theta = sol.theta[best]
    agree = int(np.sum(sol.loss <= sol.loss[best] * (1 + 1e-6) + 1e-10 * HUBER_DELTA**2 * len(w)))
    names = s.names
    problems = []
    if not np.isfinite(sol.loss[best]):
        problems.append("no start gave a finite loss")
    if sol.grad_rel[best] > _GTOL:
        # A start that is already a stationary point (e.g. the exact least-squares start of log-linear data)
        # is a solution; a start the solver could not leave although the gradient says it should is not.
        stuck = "the fit stayed at its start; " if not sol.moved[best] else ""
        problems.append(f"{stuck}gradient did not vanish (relative {sol.grad_rel[best]:.1e})")
    bound_names = [names[i] for i in np.nonzero(sol.at_bound[best])[0]]
    if bound_names:
        hint = ""
        if s.form == "power_plus_const" and "gamma" in bound_names:
            hint = " (gamma -> 0: the data show no floor; try --form power_law)"
        elif s.form in ("power_plus_const", "power_law") and "beta" in bound_names:
            hint = " (no power-law decay in range; try --form log_linear)"
        problems.append(f"{', '.join(bound_names)} at a bound{hint}")
    converged = not problems
    msg = "converged" if converged else "; ".join(problems)
    f, _ = _logmodel(s.form, theta[None, :], s.lx)
    return _Point(
        theta,
        _natural(s, theta)[0],
        float(sol.loss[best]),
        converged,
        msg,
        float(sol.grad_rel[best]),
        m,
        agree,
        f[0] - s.ly,
    )


def _bootstrap(s: _Setup, point: _Point, weights: np.ndarray, workers: int) -> tuple[np.ndarray, np.ndarray]:
    """Refit every resample (rows of ``weights``) from the point fit and a coarse grid; returns fit-space
    parameters (R, k) and a converged mask (R,).

    Resamples are split into ``workers`` chunks solved on threads; every problem in a batch is solved
    independently, so the result does not depend on ``workers``."""
    coarse = _starts(s, np.ones(len(s.ly)), dense=False)
    starts = np.vstack([point.theta[None, :], coarse])
    n_s = len(starts)

    def solve(chunk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r = len(chunk)
        th0 = np.tile(starts, (r, 1))
        ww = np.repeat(chunk, n_s, axis=0)
        # Phase 1: every start a few dozen iterations; phase 2: polish each resample's best to convergence.
        sol = _solve_batch(s.form, th0, s.lx, s.ly, ww, s.lower, s.upper, max_iter=30, gtol_stop=1e-8)
        loss = sol.loss.reshape(r, n_s)
        pick = np.arange(r) * n_s + np.argmin(loss, axis=1)
        fin = _solve_batch(s.form, sol.theta[pick], s.lx, s.ly, chunk, s.lower, s.upper, gtol_stop=1e-8)
        ok = np.isfinite(fin.loss) & (fin.grad_rel <= _GTOL) & ~np.any(fin.at_bound, axis=1)
        return fin.theta, ok

    n_chunks = 1 if workers <= 1 else min(workers, len(weights))
    chunks = [c for c in np.array_split(weights, n_chunks) if len(c)]
    if workers > 1 and len(chunks) > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(solve, chunks))
    else:
        results = [solve(c) for c in chunks]
    params = np.vstack([r[0] for r in results])
    ok = np.concatenate([r[1] for r in results])
    return params, ok


def _resample_weights(
    run: np.ndarray, x_distinct_key: np.ndarray, n_boot: int, seed: int, min_distinct: int
) -> tuple[np.ndarray, int]:
    """Bootstrap multiplicities per row (R, n): runs drawn with replacement, seeded.

    Resamples with fewer distinct scales than ``min_distinct`` (the form's parameter count) cannot identify
    the law and are dropped (their count is returned).
    """
    runs, inverse = np.unique(run, return_inverse=True)
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    draws = rng.integers(0, len(runs), size=(n_boot, len(runs)))
    counts = np.zeros((n_boot, len(runs)))
    np.add.at(counts, (np.repeat(np.arange(n_boot), len(runs)), draws.ravel()), 1.0)
    w = counts[:, inverse]
    keys, kinv = np.unique(x_distinct_key, return_inverse=True)
    present = np.zeros((n_boot, len(keys)), dtype=bool)
    for j in range(len(keys)):
        present[:, j] = np.any(w[:, kinv == j] > 0, axis=1)
    enough = present.sum(axis=1) >= min_distinct
    return w[enough], int(np.sum(~enough))


def small_sample_inflation(n_runs: int, n_params: int) -> float:
    """Factor sqrt(n / (n - k)) by which bootstrap deviations from the point fit are scaled.

    Resampling runs (the pairs bootstrap) estimates the same covariance as the HC0 sandwich estimator, which
    is biased low by about (n - k) / n with n runs and k parameters; HC1 removes that bias (Hinkley 1977,
    Technometrics 19; MacKinnon & White 1985, J. Econometrics 29). With 8 runs and 3 parameters the
    uncorrected 80% interval of a 10x extrapolation covers the truth ~76% of the time, ~82% corrected.
    """
    return math.sqrt(n_runs / max(n_runs - n_params, 1))


def _quantiles(values: np.ndarray) -> dict[str, float]:
    v = values[np.isfinite(values)]
    if v.size == 0:
        return {"lo80": math.nan, "hi80": math.nan, "lo95": math.nan, "hi95": math.nan}
    q = np.quantile(v, [0.025, 0.10, 0.90, 0.975])
    return {"lo80": float(q[1]), "hi80": float(q[2]), "lo95": float(q[0]), "hi95": float(q[3])}


def _aic(residuals: np.ndarray, k: int) -> tuple[float, float]:
    """Gaussian AIC and AICc of log residuals (n ln(RSS/n) + 2k, small-sample corrected)."""
    n = len(residuals)
    rss = max(float(np.sum(residuals**2)), 1e-300)
    aic = n * math.log(rss / n) + 2 * k
    aicc = aic + (2 * k * (k + 1) / (n - k - 1) if n - k - 1 > 0 else math.inf)
    return aic, aicc


# ---------------------------------------------------------------------------------------------------------
# Results


@dataclass
class FitResult:
    """A fitted law with intervals, diagnostics and provenance (serialises to JSON with :meth:`as_dict`)."""

    form: str
    x: str
    params: dict[str, float]
    ci: dict[str, dict[str, float]]
    converged: bool
    message: str
    n_points: int
    n_runs: int
    loss: float
    aic: float
    aicc: float
    rms_log_residual: float
    n_bootstrap: int
    bootstrap_used: int
    seed: int
    inflation: float
    file: str
    sha256: str
    component: str | None
    x_range: tuple[float, float]
    starts: int
    starts_agreeing: int
    warnings: list[str] = field(default_factory=list)
    holdout: dict[str, Any] | None = None
    comparison: list[dict[str, Any]] = field(default_factory=list)
    bootstrap_params: np.ndarray | None = field(default=None, repr=False)
    #: Observed (min, max) of every scale column the fit uses (params and samples for ``two_axis``).
    axis_ranges: dict[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def method(self) -> str:
        """One line describing how the fit was made."""
        return (
            f"Huber(delta={HUBER_DELTA:g}) on log residuals, summed; batched bound-projected "
            f"Levenberg-Marquardt from {self.starts} starts; bootstrap {self.n_bootstrap} resamples of runs "
            f"(seed {self.seed}), percentile intervals, deviations from the fit scaled by "
            f"{self.inflation:.4g} = sqrt(n/(n-k)) for {self.n_runs} runs"
        )

    def to_law(self) -> QualityLaw:
        """The fitted one-axis law, carrying the bootstrap parameter sets for intervals."""
        if self.form == "two_axis":
            raise ValueError("a two-axis fit gives a TwoAxisLaw: use to_two_axis_law()")
        src = (
            f"fit of {self.file} (sha256 {self.sha256[:16]}) over {self.x}: {self.method}; "
            f"rms log residual {self.rms_log_residual:.2e}"
        )
        if self.holdout:
            h = self.holdout
            src += f"; held-out largest {h['k']} mean |rel err| {h['mean_abs_rel_error']:.2e}"
        return QualityLaw(
            self.form, self.x, "ne", dict(self.params), src, bootstrap_params=self.bootstrap_params
        )

    def to_two_axis_law(self) -> TwoAxisLaw:
        """The fitted two-axis law (no intervals)."""
        p = self.params
        return TwoAxisLaw(
            p["E"],
            p["A"],
            p["alpha"],
            p["B"],
            p["beta"],
            "ne",
            f"fit of {self.file} (sha256 {self.sha256[:16]})",
        )

    @property
    def has_interval(self) -> bool:
        """Whether a bootstrap gave parameter sets for intervals (False with ``n_bootstrap=0``)."""
        return self.bootstrap_params is not None and len(self.bootstrap_params) > 0

    def _ranges(self) -> dict[str, tuple[float, float]]:
        return self.axis_ranges or {self.x: self.x_range}

    def _extrapolation(self, at: dict[str, float]) -> float:
        """The largest ratio of a prediction's scale to the largest observed value of that axis."""
        ranges = self._ranges()
        return max(float(v) / ranges[a][1] for a, v in at.items())

    def predictions(self, xs: list[Any]) -> list[dict[str, Any]]:
        """``{x, ne, lo80, hi80, lo95, hi95, extrapolation}`` for each x (SI count).

        For ``two_axis`` each x is a pair (N params, D samples); the entry's ``x`` is ``[N, D]`` and it also
        carries ``params`` and ``samples``. The bounds are bootstrap percentile intervals, widened to contain
        the point prediction; without a bootstrap they are None (unknown), never the point value.
        ``extrapolation`` is x over the largest observed x (for two-axis the larger of N/N_max and D/D_max):
        above :data:`EXTRAPOLATION_FACTOR` the intervals do not cover the error of the form itself.
        """
        if self.form == "two_axis":
            return [self._two_axis_prediction(float(n), float(d)) for n, d in xs]
        law = self.to_law()
        out: list[dict[str, Any]] = []
        for x in xs:
            iv: dict[str, Any] = dict(law.predict_interval(float(x)))  # bounds None without bootstrap
            out.append({"x": float(x), **iv, "extrapolation": self._extrapolation({self.x: float(x)})})
        return out

    def _two_axis_prediction(self, n: float, d: float) -> dict[str, Any]:
        ne = float(self.to_two_axis_law().predict(n, d))
        sims = np.empty(0)
        if self.has_interval:
            assert self.bootstrap_params is not None
            e, a, al, b, be = (self.bootstrap_params[:, i] for i in range(5))
            with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
                sims = e + np.exp(np.log(a) - al * math.log(n)) + np.exp(np.log(b) - be * math.log(d))
            sims = sims[np.isfinite(sims)]
        return {"x": [n, d], "params": n, "samples": d, "ne": ne, **percentile_bounds(sims, ne),
                "extrapolation": self._extrapolation({"params": n, "samples": d})}

    def extrapolation_warning(self, predictions: list[dict[str, Any]]) -> str | None:
        """One line naming the predictions further than :data:`EXTRAPOLATION_FACTOR` beyond the observed
        range (above the largest or below the smallest scale, on any axis), or None when there are none."""
        ranges = self._ranges()
        far: list[str] = []
        axes_hit: list[str] = []
        two = self.form == "two_axis"
        for p in predictions:
            at = {"params": p["params"], "samples": p["samples"]} if two else {self.x: p["x"]}
            outside = []
            for axis, v in at.items():
                lo, hi = ranges[axis]
                if v > hi * EXTRAPOLATION_FACTOR * (1 + 1e-9):
                    outside.append(f"{v / hi:.3g}x the largest")
                elif v < lo / EXTRAPOLATION_FACTOR * (1 - 1e-9):
                    outside.append(f"{lo / v:.3g}x below the smallest")
                else:
                    continue
                if axis not in axes_hit:
                    axes_hit.append(axis)
            if outside:
                shown = ":".join(f"{v:g}" for v in at.values())
                far.append(f"{shown} ({', '.join(outside)})")
        if not far:
            return None
        observed = "; ".join(f"{a} {ranges[a][0]:g} to {ranges[a][1]:g}" for a in axes_hit)
        caveat = (", and bootstrap intervals leave out the error of the form itself, so they understate the "
                  "uncertainty" if self.has_interval else "")
        return (
            f"--predict {', '.join(far)}: more than {EXTRAPOLATION_FACTOR:g}x outside the observed range "
            f"({observed}); predictions there assume the fitted {self.form} form still holds{caveat}"
        )

    def as_dict(self, predict: list[Any] | None = None) -> dict[str, Any]:
        """Plain JSON-able dict (deterministic; no dates), with :meth:`predictions` at ``predict`` (x values,
        or (N, D) pairs for ``two_axis``)."""
        doc: dict[str, Any] = {
            "form": self.form,
            "x": self.x,
            "params": self.params,
            "ci": self.ci,
            "converged": self.converged,
            "message": self.message,
            "n_points": self.n_points,
            "n_runs": self.n_runs,
            "loss": self.loss,
            "aic": self.aic,
            "aicc": self.aicc,
            "rms_log_residual": self.rms_log_residual,
            "bootstrap": {
                "resamples": self.n_bootstrap,
                "used": self.bootstrap_used,
                "seed": self.seed,
                "inflation": self.inflation,
            },
            "x_range": list(self.x_range),
            "starts": self.starts,
            "starts_agreeing": self.starts_agreeing,
            "warnings": self.warnings,
            "holdout": self.holdout,
            "comparison": self.comparison,
            "input": {"file": self.file, "sha256": self.sha256, "component": self.component},
            "method": self.method,
            "huber_delta": HUBER_DELTA,
        }
        doc["x_ranges"] = {a: list(r) for a, r in self._ranges().items()}
        doc["extrapolation_factor"] = EXTRAPOLATION_FACTOR
        doc["predictions"] = self.predictions(predict or [])
        return doc


def _xy(obs: Observations, x: str | tuple[str, str]) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(x, tuple):
        return np.stack([obs.axis(x[0]), obs.axis(x[1])], axis=1), obs.columns["ne"]
    return obs.axis(x), obs.columns["ne"]


def _point_fit_arrays(form: str, xv: np.ndarray, y: np.ndarray) -> tuple[_Setup, _Point]:
    s = _setup(form, xv, y)
    return s, _fit_point(s, np.ones(len(y)))


def _holdout(form: str, xv: np.ndarray, y: np.ndarray, k: int) -> dict[str, Any]:
    """Fit all but the K largest-x rows, predict those; absolute/relative errors and decades."""
    key = xv if xv.ndim == 1 else np.prod(xv, axis=1)
    order = np.argsort(key, kind="stable")
    test, train = order[len(order) - k :], order[: len(order) - k]
    _, pt = _point_fit_arrays(form, xv[train], y[train])
    if form == "two_axis":
        law = TwoAxisLaw(*pt.natural, metric="ne", source="holdout")
        pred = np.asarray(law.predict(xv[test, 0], xv[test, 1]), dtype=float)
    else:
        pred = evaluate_form(form, pt.natural, xv[test])
    err = pred - y[test]
    rel = err / y[test]
    decades = np.log10(key[test] / key[train].max())
    points = [
        {
            "x": float(key[t]),
            "ne": float(y[t]),
            "predicted": float(p),
            "abs_error": float(e),
            "rel_error": float(r),
            "decades_beyond": float(d),
        }
        for t, p, e, r, d in zip(test, pred, err, rel, decades, strict=True)
    ]
    return {
        "k": k,
        "fit_points": len(train),
        "converged": pt.converged,
        "points": points,
        "mean_abs_error": float(np.mean(np.abs(err))),
        "mean_abs_rel_error": float(np.mean(np.abs(rel))),
        "max_abs_rel_error": float(np.max(np.abs(rel))),
        "max_decades_beyond": float(np.max(decades)),
    }


def fit_observations(
    obs: Observations,
    *,
    x: str = "samples",
    form: str = "power_plus_const",
    n_bootstrap: int = 1000,
    seed: int = 0,
    holdout_largest: int = 0,
    compare: bool = True,
    workers: int | None = None,
    refuse_unconverged: bool = True,
    small_sample_correction: bool = True,
) -> FitResult:
    """Fit ``form`` to the observations' NE against scale column ``x`` (``two_axis`` uses params and samples).

    Args:
        obs: validated observations.
        x: ``samples``, ``params`` or ``flops`` (SI counts).
        form: ``power_plus_const`` (default), ``power_law``, ``log_linear`` or ``two_axis``.
        n_bootstrap: resamples of runs for intervals (0 disables intervals).
        seed: seeds the bootstrap; same inputs and seed give identical results.
        holdout_largest: hold out the K largest runs, report extrapolation error (0: off).
        compare: also fit the other one-axis forms and compare AICc and held-out error.
        workers: threads for the bootstrap (default 4); the result is the same for any number.
        refuse_unconverged: raise InfeasibleError when the point fit did not converge.
        small_sample_correction: scale bootstrap deviations by :func:`small_sample_inflation`.

    Raises:
        InputError: too few points for the form, or a missing column.
        InfeasibleError: the fit did not converge (stuck at its start, at a bound, or gradient not zero).
    """
    if form not in FORM_PARAMS and form != "two_axis":
        raise InputError(
            f"unknown form {form!r}; known: {', '.join([*FORM_PARAMS, 'two_axis'])}", field="--form"
        )
    axis: str | tuple[str, str] = ("params", "samples") if form == "two_axis" else x
    if form != "two_axis" and x not in AXES:
        raise InputError(f"must be one of {', '.join(AXES)}, got {x!r}", field="--x")
    xv, y = _xy(obs, axis)
    k = _n_params(form)
    _, xkey = np.unique(xv.reshape(len(y), -1), axis=0, return_inverse=True)
    distinct = int(xkey.max()) + 1 if len(y) else 0
    axes = axis if isinstance(axis, tuple) else (axis,)
    ranges = {a: (float(np.min(col)), float(np.max(col)))
              for a, col in zip(axes, np.atleast_2d(xv.T), strict=True)}
    if len(y) < k or distinct < k:
        raise InputError(
            f"{len(y)} points at {distinct} distinct scales: form {form} has {k} parameters and needs "
            f"at least {k} distinct scales",
            file=obs.file,
        )
    if form == "two_axis":
        _check_two_axis_design(xv, obs.file)
    if holdout_largest < 0:
        raise InputError("must be >= 0", field="--holdout-largest")
    if holdout_largest and len(y) - holdout_largest < k + 1:
        raise InputError(
            f"holding out {holdout_largest} of {len(y)} points leaves fewer than {k + 1} to fit",
            field="--holdout-largest",
        )
    if n_bootstrap < 0:
        raise InputError("must be >= 0", field="--bootstrap")
    s, pt = _point_fit_arrays(form, xv, y)
    if not pt.converged and refuse_unconverged:
        raise InfeasibleError(
            f"{obs.file}: {form} fit over {'params, samples' if form == 'two_axis' else x} "
            f"did not converge: {pt.message}"
        )
    names = _param_names(form)
    params = {n: float(v) for n, v in zip(names, pt.natural, strict=True)}
    warnings: list[str] = []
    boot = None
    used = 0
    ci: dict[str, dict[str, float]] = {}
    n_runs = len(np.unique(obs.run))
    inflation = small_sample_inflation(n_runs, k) if small_sample_correction else 1.0
    if n_bootstrap > 0:
        w, dropped = _resample_weights(obs.run, xkey.ravel(), n_bootstrap, seed, k)
        if len(w):
            bp, ok = _bootstrap(s, pt, w, workers or 4)
            # Scaled about the point fit, then kept inside the fit's bounds (beta > 0, constants > 0).
            scaled = pt.theta[None, :] + inflation * (bp[ok] - pt.theta[None, :])
            boot = _natural(s, np.clip(scaled, s.lower, s.upper))
            used = int(ok.sum())
        failed = n_bootstrap - used
        if failed > 0.05 * n_bootstrap:
            warnings.append(
                f"{failed} of {n_bootstrap} bootstrap resamples gave no converged fit "
                f"({dropped} had fewer than {k} distinct scales); intervals use the rest"
            )
        if boot is not None and len(boot):
            ci = {n: _quantiles(boot[:, i]) for i, n in enumerate(names)}
            outside = [n for n in names if not ci[n]["lo80"] <= params[n] <= ci[n]["hi80"]]
            if outside:
                warnings.append(
                    f"the point estimate of {', '.join(outside)} lies outside its own 80% bootstrap "
                    "interval: resamples find other optima, so the fit is unstable (too few or too "
                    "flat points for this form)"
                )
    if not ci:
        ci = {n: {"lo80": math.nan, "hi80": math.nan, "lo95": math.nan, "hi95": math.nan} for n in names}
    aic, aicc = _aic(pt.residuals, k)
    if distinct < 6:
        warnings.append(
            f"only {distinct} distinct scales: bootstrap intervals from so few runs understate "
            "the uncertainty"
        )
    comps = sorted({c for c in obs.component.tolist() if c})
    if len(comps) > 1:
        warnings.append(
            f"rows from several components ({', '.join(comps)}) fitted together; choose one with --component"
        )
    holdout = _holdout(form, xv, y, holdout_largest) if holdout_largest else None
    comparison: list[dict[str, Any]] = []
    if compare and form != "two_axis":
        for other in FORM_PARAMS:
            kk = _n_params(other)
            if distinct < kk:
                continue
            if other == form:
                opt, o_aic, o_aicc, o_conv, o_msg = pt, aic, aicc, pt.converged, pt.message
            else:
                _, opt = _point_fit_arrays(other, xv, y)
                o_aic, o_aicc = _aic(opt.residuals, kk)
                o_conv, o_msg = opt.converged, opt.message
            row: dict[str, Any] = {
                "form": other,
                "converged": o_conv,
                "message": o_msg,
                "aic": o_aic,
                "aicc": o_aicc,
                "rms_log_residual": float(np.sqrt(np.mean(opt.residuals**2))),
                "params": {n: float(v) for n, v in zip(FORM_PARAMS[other], opt.natural, strict=True)},
            }
            if holdout_largest:
                ho = _holdout(other, xv, y, holdout_largest) if other != form else holdout
                assert ho is not None
                row["holdout_mean_abs_rel_error"] = ho["mean_abs_rel_error"]
            comparison.append(row)
    if form == "power_plus_const":
        g = params["gamma"]
        pl = next((c for c in comparison if c["form"] == "power_law" and c["converged"]), None)
        weak_ci = math.isfinite(ci["gamma"]["lo95"]) and ci["gamma"]["lo95"] < 0.5 * g
        pl_as_good = pl is not None and pl["aicc"] <= aicc + 2.0
        if weak_ci or pl_as_good:
            why = []
            if weak_ci:
                why.append(f"95% interval of gamma [{ci['gamma']['lo95']:.3g}, {ci['gamma']['hi95']:.3g}]")
            if pl_as_good:
                why.append(f"pure power law AICc {pl['aicc']:.1f} vs {aicc:.1f}")
            warnings.append(
                "the data cannot identify the constant gamma (" + "; ".join(why) + "); predictions "
                "far beyond the data depend on it"
            )
    if holdout and holdout["mean_abs_rel_error"] > 1e-3:
        warnings.append(
            f"held-out error {holdout['mean_abs_rel_error']:.2%} exceeds 0.1% NE, material in CTR: "
            "extrapolations are not decision-grade"
        )
    return FitResult(
        form=form,
        x="params,samples" if form == "two_axis" else x,
        params=params,
        ci=ci,
        converged=pt.converged,
        message=pt.message,
        n_points=len(y),
        n_runs=n_runs,
        loss=pt.loss,
        aic=aic,
        aicc=aicc,
        rms_log_residual=float(np.sqrt(np.mean(pt.residuals**2))),
        n_bootstrap=n_bootstrap,
        bootstrap_used=used,
        seed=seed,
        inflation=inflation,
        file=obs.file,
        sha256=obs.sha256,
        component=obs.selected_component,
        x_range=ranges[axes[0]],
        starts=pt.starts,
        starts_agreeing=pt.starts_agreeing,
        warnings=warnings,
        holdout=holdout,
        comparison=comparison,
        bootstrap_params=boot,
        axis_ranges=ranges,
    )


def _check_two_axis_design(xv: np.ndarray, file: str) -> None:
    """Refuse observations that cannot separate the effect of N from that of D: a column that takes one
    value, or ln N and ln D on one line (every run scales both together), leaves A/N^a + B/D^b unidentified.
    """
    logs = np.log(xv)
    for i, name in enumerate(("params", "samples")):
        if np.ptp(logs[:, i]) == 0:
            raise InputError(
                f"form two_axis needs {name} to vary, but every row has {name} = {xv[0, i]:g}; fit the other "
                "axis alone with --x",
                file=file,
                field=name,
            )
    c = logs - logs.mean(axis=0)
    r = float(np.sum(c[:, 0] * c[:, 1]) / math.sqrt(float(np.sum(c[:, 0] ** 2) * np.sum(c[:, 1] ** 2))))
    if abs(r) > 1 - 1e-9:
        raise InputError(
            "form two_axis needs params and samples that vary independently, but ln params and ln samples "
            f"lie on one line (correlation {r:+.6f}): no fit can tell their effects apart; vary them in "
            "separate runs or fit one axis with --x",
            file=file,
            field="params, samples",
        )


def fit_arrays(
    x: Any, ne: Any, *, form: str = "power_plus_const", axis: str = "samples", run: Any = None, **kwargs: Any
) -> FitResult:
    """Fit from arrays (tests, the study): ``x`` (n,) or (n, 2) = (params, samples) for ``two_axis``."""
    xv = np.asarray(x, dtype=float)
    y = np.asarray(ne, dtype=float)
    runs = np.asarray(run if run is not None else [f"r{i}" for i in range(len(y))])
    two = form == "two_axis"
    cols = {"params": xv[:, 0], "samples": xv[:, 1], "ne": y} if two else {axis: xv, "ne": y}
    text = "\n".join(f"{a!r}" for a in zip(*cols.values(), strict=True))
    obs = Observations(
        file="<arrays>",
        sha256=hashlib.sha256(text.encode()).hexdigest(),
        columns=cols,
        run=runs,
        component=np.asarray([""] * len(y)),
    )
    return fit_observations(obs, x=axis, form=form, **kwargs)
