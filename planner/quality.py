"""Scaling-law forms for model quality (NE and other losses) and their evaluation.

One-axis forms, each a function of one scale ``x`` (``samples`` seen in training, ``params`` or training
``flops``; SI counts, divided by ``x_scale`` before evaluation, e.g. 8.64e19 FLOPs per PF-day):

* ``power_plus_const``: y = alpha * x^(-beta) + gamma (Ardalani et al. 2022, arXiv 2208.08489; gamma is
  the irreducible floor).
* ``power_law``: y = alpha * x^(-beta) (Kaplan et al. 2020, arXiv 2001.08361).
* ``log_linear``: y = y0 + k * ln x (HSTU, Zhai et al. 2024, arXiv 2402.17152; the small-exponent limit of
  a power law).

The two-axis form L(N, D) = E + A / N^alpha + B / D^beta (Chinchilla Approach 3, arXiv 2203.15556) is
:class:`TwoAxisLaw`, with the compute-optimal split of a FLOP budget under a pluggable FLOP model: C = 6ND
for language models (:class:`ProportionalFlops`) or, for DLRMs, FLOPs per sample (dense part, which grows
with dense parameters) times samples (:class:`DlrmFlops`); embedding parameters cost memory, not FLOPs.

Every law carries its ``metric`` (``ne``, ``lm_loss_nats``, ...) so NE is never mixed with another loss.
:func:`metric_problem` says when a prediction is impossible for its metric (NE <= 0, a hit rate outside
[0, 1]): the law is then outside its valid range. A law also carries the x range it is known over (a
preset's documented range, a fit's observed runs) when there is one; :meth:`QualityLaw.outside_range` flags
points more than :data:`EXTRAPOLATION_FACTOR` beyond it.
:func:`law_from_spec` turns a scenario's ``quality:`` mapping into a :class:`QualityLaw`. This module never
imports torch; fitting lives in :mod:`calibration.scaling_fit` (imported lazily for ``fit:`` specs).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from planner.errors import InputError

#: Scale axes a one-axis law may be a function of.
AXES = ("samples", "params", "flops")

#: One-axis forms and their parameter names, in the order fits and bootstrap arrays use.
FORM_PARAMS: dict[str, tuple[str, ...]] = {
    "power_plus_const": ("alpha", "beta", "gamma"),
    "power_law": ("alpha", "beta"),
    "log_linear": ("y0", "k"),
}

#: Human-readable formula of each form (for tables and provenance text).
FORM_FORMULA: dict[str, str] = {
    "power_plus_const": "y = alpha*x^(-beta) + gamma",
    "power_law": "y = alpha*x^(-beta)",
    "log_linear": "y = y0 + k*ln(x)",
    "two_axis": "L = E + A/N^alpha + B/D^beta",
}

#: FLOPs in one petaFLOP/s-day (unit constant: 1e15 FLOP/s x 86,400 s), the compute unit of Kaplan and HSTU.
FLOPS_PER_PF_DAY = 1e15 * 86400.0

#: An evaluation point further than this factor outside a law's known x range (a preset's documented range,
#: a fit's observed runs) is an extrapolation: one decade, the most the held-out checks of the literature
#: vouch for (the same factor, and reason, as ``calibration.scaling_fit.EXTRAPOLATION_FACTOR``).
EXTRAPOLATION_FACTOR = 10.0

#: Metrics that are cross-entropies (NE is the ratio of two): a prediction must be > 0.
POSITIVE_METRICS = frozenset({"ne", "lm_loss_nats", "next_item_ce_nats"})
#: Metrics that are fractions (hit rates): a prediction must lie in [0, 1].
FRACTION_METRICS = frozenset({"hr_at_100"})

#: x ranges (in the preset's x unit) over which presets were fitted, for presets whose YAML entry has no
#: ``x_range`` yet. HSTU Fig. 7 (both laws): "C in PF-days ... ~1e3 to 1e6" (../shared/reference/
#: scaling_laws.md, HSTU; secondary summary, not checked against the paper).
_DOCUMENTED_X_RANGES: dict[str, tuple[float, float]] = {
    "hstu_2024_ranking": (1e3, 1e6),
    "hstu_2024_retrieval": (1e3, 1e6),
}


def fmt_number(value: float) -> str:
    """A number in three significant digits with a plain exponent (``1e12``, ``8.06e-11``, ``-0.191``)."""
    text = f"{value:.3g}"
    if "e" in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}e{int(exponent)}"
    return text


def law_x(axis: str, samples_seen: float, params: float, flops_per_sample: float) -> float:
    """The scale a one-axis law over ``axis`` is evaluated at for a model of ``params`` parameters and
    ``flops_per_sample`` training FLOPs per sample trained on ``samples_seen`` samples (SI counts)."""
    if axis == "samples":
        return samples_seen
    if axis == "params":
        return params
    return flops_per_sample * samples_seen


def metric_excess(metric: str, value: float) -> float | None:
    """How far ``value`` lies outside the possible values of ``metric``: None when it is possible (or nothing
    is known about the metric), 0 for a cross-entropy of exactly 0, infinity when not finite."""
    if not math.isfinite(value):
        return math.inf
    if metric in POSITIVE_METRICS and value <= 0:
        return -value
    if metric in FRACTION_METRICS and not 0.0 <= value <= 1.0:
        return max(-value, value - 1.0)
    return None


def metric_problem(metric: str, value: float) -> str | None:
    """Why ``value`` cannot be a value of ``metric`` (None when it can, or nothing is known about it)."""
    if metric_excess(metric, value) is None:
        return None
    name = "NE" if metric == "ne" else metric
    if not math.isfinite(value):
        return f"{name} must be finite"
    if metric in POSITIVE_METRICS:
        return f"{name} must be positive"
    return f"{name} is a fraction and must be in [0, 1]"


def evaluate_form(form: str, params: dict[str, float] | np.ndarray, x: Any) -> np.ndarray:
    """Evaluate a one-axis form at ``x`` (already divided by ``x_scale``); vectorised over x.

    ``params`` is a mapping by name or an array whose last axis follows :data:`FORM_PARAMS` (an (R, k)
    array broadcasts against x of shape (n,) when x is given as shape (1, n)).
    """
    names = FORM_PARAMS[form]
    if isinstance(params, dict):
        p = [np.asarray(params[n], dtype=float) for n in names]
    else:
        arr = np.asarray(params, dtype=float)
        p = [arr[..., i : i + 1] if arr.ndim > 1 else arr[i] for i in range(len(names))]
    lx = np.log(np.asarray(x, dtype=float))
    if form == "power_plus_const":
        alpha, beta, gamma = p
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            return np.exp(np.log(alpha) - beta * lx) + gamma
    if form == "power_law":
        alpha, beta = p
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            return np.exp(np.log(alpha) - beta * lx)
    if form == "log_linear":
        y0, k = p
        return y0 + k * lx
    raise ValueError(f"unknown form {form!r}")


def _widened_bounds(sims: np.ndarray, point: Any) -> dict[str, Any]:
    """80% and 95% percentile bounds of bootstrap predictions ``sims`` (NaN where not finite; along the
    first axis), widened to contain the point prediction ``point`` (a skewed bootstrap may exclude it)."""
    q = np.nanquantile(sims, [0.025, 0.10, 0.90, 0.975], axis=0)
    return {"lo80": np.minimum(q[1], point), "hi80": np.maximum(q[2], point),
            "lo95": np.minimum(q[0], point), "hi95": np.maximum(q[3], point)}


def percentile_bounds(sims: np.ndarray, point: float) -> dict[str, float | None]:
    """80% and 95% percentile bounds ``lo80, hi80, lo95, hi95`` of the finite bootstrap predictions
    ``sims``, widened to contain the point prediction ``point`` (a skewed bootstrap may exclude it); all
    None when there are none (unknown, not a zero-width interval)."""
    if sims.size == 0:
        return dict.fromkeys(("lo80", "hi80", "lo95", "hi95"))
    return {k: float(v) for k, v in _widened_bounds(sims, point).items()}


def _decreasing(form: str, params: dict[str, float]) -> bool:
    if form == "log_linear":
        return params["k"] < 0
    return params["beta"] > 0 and params["alpha"] > 0


@dataclass(frozen=True)
class QualityLaw:
    """A one-axis quality law y(x) with provenance and, when fitted, bootstrap intervals.

    Attributes:
        form: one of :data:`FORM_PARAMS`.
        x: the scale axis, ``samples``, ``params`` or ``flops`` (SI counts).
        metric: what y is (``ne`` for normalized entropy; ``lm_loss_nats``, ``hr_at_100``, ...).
        params: the form's parameters by name (in the units of ``x / x_scale``).
        source: provenance: ``inline``, a preset's citation, or a fit's input hash, method and error.
        x_scale: x is divided by this before evaluation (1 for SI counts, 8.64e19 for PF-days).
        higher_is_better: True for metrics such as hit rate; NE and losses are lower-is-better.
        bootstrap_params: (R, k) parameter sets from a bootstrap, or None (then ``has_interval`` is False).
        x_range: (lowest, highest) x (SI count) the law is known over: a preset's documented range or the
            observed runs of a fit; None when unknown (an inline law). See :meth:`outside_range`.
        x_range_kind: what ``x_range`` is, for messages: ``documented`` or ``observed``.
    """

    form: str
    x: str
    metric: str
    params: dict[str, float]
    source: str
    x_scale: float = 1.0
    higher_is_better: bool = False
    bootstrap_params: np.ndarray | None = field(default=None, repr=False, compare=False)
    x_range: tuple[float, float] | None = None
    x_range_kind: str = ""
    _cache: dict[float, dict[str, float]] = field(default_factory=dict, repr=False, compare=False)

    @property
    def has_interval(self) -> bool:
        """Whether :meth:`predict_interval` reflects uncertainty (a fitted law with bootstrap)."""
        return self.bootstrap_params is not None and len(self.bootstrap_params) > 0

    def predict(self, x: float) -> float:
        """The metric at scale ``x`` (SI count); returns a float (an array for array input)."""
        y = evaluate_form(self.form, self.params, np.asarray(x, dtype=float) / self.x_scale)
        return float(y) if np.ndim(y) == 0 else y

    def predict_many(self, xs: Any) -> np.ndarray:
        """The metric at each scale in ``xs`` (vectorised)."""
        return np.asarray(evaluate_form(self.form, self.params, np.asarray(xs, dtype=float) / self.x_scale))

    def bootstrap_predictions(self, x: float) -> np.ndarray:
        """The metric at ``x`` under every bootstrap parameter set (empty without a bootstrap)."""
        if not self.has_interval:
            return np.empty(0)
        xs = np.array([[float(x) / self.x_scale]])
        y = evaluate_form(self.form, self.bootstrap_params, xs)[:, 0]
        return y[np.isfinite(y)]

    def predict_interval(self, x: float) -> dict[str, float | None]:
        """Point prediction with 80% and 95% bootstrap percentile intervals at scale ``x``.

        Returns keys ``ne`` (the point prediction of the metric, whatever the metric), ``lo80``, ``hi80``,
        ``lo95``, ``hi95``. Without a bootstrap, or where no bootstrap set gives a finite value at ``x``,
        the bounds are None (unknown, not a zero-width interval). Bounds are widened to contain the point
        prediction when a skewed bootstrap would exclude it. Results are cached by x.
        """
        key = float(x)
        hit = self._cache.get(key)
        if hit is not None:
            return dict(hit)
        ne = float(self.predict(key))
        out = {"ne": ne, **percentile_bounds(self.bootstrap_predictions(key), ne)}
        if len(self._cache) < 100_000:
            self._cache[key] = out
        return dict(out)

    def predict_intervals(self, xs: Any) -> dict[str, np.ndarray]:
        """Vectorised :meth:`predict_interval` over many scales: arrays ``x``, ``ne``, ``lo80``, ``hi80``,
        ``lo95``, ``hi95`` (one bootstrap evaluation of shape (R, len(xs)), no per-x cache); an unknown
        bound is NaN."""
        x = np.atleast_1d(np.asarray(xs, dtype=float))
        ne = np.asarray(evaluate_form(self.form, self.params, x / self.x_scale), dtype=float)
        if not self.has_interval:
            unknown = {k: np.full_like(ne, np.nan) for k in ("lo80", "hi80", "lo95", "hi95")}
            return {"x": x, "ne": ne, **unknown}
        sims = evaluate_form(self.form, self.bootstrap_params, (x / self.x_scale)[None, :])
        return {"x": x, "ne": ne, **_widened_bounds(np.where(np.isfinite(sims), sims, np.nan), ne)}

    def x_for_target(self, target: float) -> float | None:
        """The smallest scale x (SI count) at which the law reaches ``target``; None if it never does.

        "Reaches" means y <= target for lower-is-better metrics and y >= target otherwise. A law that does not
        improve with scale, or a target beyond its floor (e.g. below gamma), gives None.
        """
        p = self.params
        improving = _decreasing(self.form, p) != self.higher_is_better
        if not improving or not math.isfinite(target):
            return None
        try:
            if self.form == "power_plus_const":
                gap = (target - p["gamma"]) * (-1.0 if self.higher_is_better else 1.0)
                if gap <= 0:
                    return None
                u = (math.log(abs(p["alpha"])) - math.log(gap)) / p["beta"]
            elif self.form == "power_law":
                if target <= 0:
                    return None
                u = (math.log(p["alpha"]) - math.log(target)) / p["beta"]
            elif self.form == "log_linear":
                u = (target - p["y0"]) / p["k"]
            else:  # pragma: no cover - forms are validated on construction
                return None
            x = math.exp(u) * self.x_scale
        except (OverflowError, ValueError, ZeroDivisionError):
            return None
        return x if math.isfinite(x) and x > 0 else None

    def outside_range(self, xs: Any) -> np.ndarray:
        """For each scale in ``xs`` (SI counts), whether it lies more than :data:`EXTRAPOLATION_FACTOR`
        outside :attr:`x_range` (above the highest or below the lowest); all False without a range."""
        x = np.atleast_1d(np.asarray(xs, dtype=float))
        if self.x_range is None:
            return np.zeros(x.shape, dtype=bool)
        lo, hi = self.x_range
        # The relative slack keeps a point exactly one factor out (up to rounding) inside.
        return (x > hi * EXTRAPOLATION_FACTOR * (1 + 1e-9)) | (x < lo / EXTRAPOLATION_FACTOR * (1 - 1e-9))

    @property
    def x_unit(self) -> str:
        """The unit of x in messages: ``PF-days`` for PF-day laws, empty for SI counts."""
        return "PF-days" if self.x_scale == FLOPS_PER_PF_DAY else ""

    def x_text(self, x: float) -> str:
        """A scale (SI count) in the law's own unit: ``1e12`` or, for PF-day laws, ``8.06e-11 PF-days``."""
        text = fmt_number(x / self.x_scale)
        return f"{text} {self.x_unit}" if self.x_unit else text

    def params_text(self) -> str:
        """The form and its parameters, short: ``log_linear y0 0.5, k -0.05``."""
        return f"{self.form} " + ", ".join(f"{k} {fmt_number(v)}" for k, v in self.params.items())

    def describe(self) -> str:
        """One line: form, metric, axis and parameters."""
        ps = ", ".join(f"{k}={v:.6g}" for k, v in self.params.items())
        return f"{self.metric} = {FORM_FORMULA[self.form]} over {self.x} ({ps})"


# ---------------------------------------------------------------------------------------------------------
# Two-axis law and compute-optimal allocation


class FlopModel(Protocol):
    """Training FLOPs as a function of (quality-relevant) parameters N and samples D."""

    def flops(self, params: float, samples: float) -> float:
        """Training FLOPs of a model with ``params`` parameters trained on ``samples`` samples."""
        ...

    def samples_for(self, params: float, flops: float) -> float:
        """Samples a budget of ``flops`` buys for a model with ``params`` parameters."""
        ...


@dataclass(frozen=True)
class ProportionalFlops:
    """C = k * N * D (k = 6 for dense transformers: 2 forward + 4 backward FLOPs per parameter per token,
    Kaplan et al. 2020 §2.1; Hoffmann et al. 2022 App. F)."""

    flops_per_param_sample: float = 6.0

    def flops(self, params: float, samples: float) -> float:
        """k * N * D FLOPs."""
        return self.flops_per_param_sample * params * samples

    def samples_for(self, params: float, flops: float) -> float:
        """D = C / (k N)."""
        return flops / (self.flops_per_param_sample * params)


@dataclass(frozen=True)
class DlrmFlops:
    """DLRM training FLOPs: FLOPs per sample of the dense part times samples.

    FLOPs per sample grow linearly with the dense (non-embedding) parameters N: ``fixed_flops_per_sample +
    flops_per_dense_param * N``. From a workload, take ``flops_per_sample`` (forward + backward) and its
    dense parameter count: ``DlrmFlops.from_workload(fps, dense_params)``. Embedding parameters are not N:
    they cost memory and lookups, not FLOPs.
    """

    flops_per_dense_param: float
    fixed_flops_per_sample: float = 0.0

    @classmethod
    def from_workload(cls, flops_per_sample: float, dense_params: float,
                      fixed_flops_per_sample: float = 0.0) -> DlrmFlops:
        """The model whose FLOPs per sample equal the workload's at its dense parameter count."""
        return cls((flops_per_sample - fixed_flops_per_sample) / dense_params, fixed_flops_per_sample)

    @classmethod
    def from_derived(cls, figures: Any, fixed_flops_per_sample: float = 0.0) -> DlrmFlops:
        """The model of a workload's derived figures (:func:`planner.workload.derive`): its
        ``flops_per_sample`` (forward + backward) and ``dense_params``; embedding parameters are left out."""
        return cls.from_workload(float(figures.flops_per_sample), float(figures.dense_params),
                                 fixed_flops_per_sample)

    def flops_per_sample(self, params: float) -> float:
        """Forward + backward FLOPs per sample of a model with ``params`` dense parameters."""
        return self.fixed_flops_per_sample + self.flops_per_dense_param * params

    def flops(self, params: float, samples: float) -> float:
        """FLOPs per sample times samples."""
        return self.flops_per_sample(params) * samples

    def samples_for(self, params: float, flops: float) -> float:
        """Samples = C / FLOPs per sample."""
        return flops / self.flops_per_sample(params)


@dataclass(frozen=True)
class TwoAxisLaw:
    """L(N, D) = E + A / N^alpha + B / D^beta (Chinchilla Approach 3, arXiv 2203.15556 §3.3).

    N is the quality-relevant parameter count (non-embedding for DLRMs), D the samples (tokens for LMs).
    """

    E: float
    A: float
    alpha: float
    B: float
    beta: float
    metric: str
    source: str

    def predict(self, params: Any, samples: Any) -> Any:
        """The loss at N = ``params`` and D = ``samples`` (vectorised)."""
        n = np.asarray(params, dtype=float)
        d = np.asarray(samples, dtype=float)
        y = self.E + self.A * n ** (-self.alpha) + self.B * d ** (-self.beta)
        return float(y) if np.ndim(y) == 0 else y

    def compute_optimal(self, flops: float, flop_model: FlopModel | None = None) -> dict[str, float]:
        """The (N, D) that minimise L under the budget ``flops`` (FLOPs); default C = 6ND.

        Closed form for :class:`ProportionalFlops` (Hoffmann et al. eq. 4:
        N_opt = G (C/k)^(beta/(alpha+beta)),
        G = (alpha A / (beta B))^(1/(alpha+beta))); otherwise a bounded 1-D search over ln N, which is exact
        to ~1e-10 relative for the convex objective.

        Returns:
            ``params``, ``samples``, ``loss`` and ``flops``.
        """
        model = flop_model or ProportionalFlops()
        if isinstance(model, ProportionalFlops):
            a, b = self.alpha, self.beta
            g = (a * self.A / (b * self.B)) ** (1.0 / (a + b))
            c = flops / model.flops_per_param_sample
            n = g * c ** (b / (a + b))
            d = c ** (a / (a + b)) / g
        else:
            from scipy.optimize import minimize_scalar

            def loss(u: float) -> float:
                n_ = math.exp(u)
                d_ = model.samples_for(n_, flops)
                return self.predict(n_, d_) if d_ > 0 else math.inf

            hi = math.log(max(flops, 10.0))
            # Upper end: the model whose one sample uses the whole budget; search strictly inside it.
            lo_u, hi_u = 0.0, hi
            while hi_u > lo_u and not math.isfinite(loss(hi_u)):
                hi_u -= 0.5
            res = minimize_scalar(
                loss, bounds=(lo_u, hi_u), method="bounded", options={"xatol": 1e-10, "maxiter": 500}
            )
            n = math.exp(float(res.x))
            d = model.samples_for(n, flops)
        return {
            "params": float(n),
            "samples": float(d),
            "loss": float(self.predict(n, d)),
            "flops": float(flops),
        }

    def slice(self, *, at_params: float | None = None, at_samples: float | None = None) -> QualityLaw:
        """The one-axis power-plus-constant law along D at fixed N (or along N at fixed D)."""
        if (at_params is None) == (at_samples is None):
            raise ValueError("give exactly one of at_params, at_samples")
        if at_params is not None:
            gamma = self.E + self.A * at_params ** (-self.alpha)
            return QualityLaw(
                "power_plus_const",
                "samples",
                self.metric,
                {"alpha": self.B, "beta": self.beta, "gamma": gamma},
                f"{self.source}; sliced at N = {at_params:.4g}",
            )
        assert at_samples is not None
        gamma = self.E + self.B * at_samples ** (-self.beta)
        return QualityLaw(
            "power_plus_const",
            "params",
            self.metric,
            {"alpha": self.A, "beta": self.alpha, "gamma": gamma},
            f"{self.source}; sliced at D = {at_samples:.4g}",
        )


# ---------------------------------------------------------------------------------------------------------
# Presets


@dataclass(frozen=True)
class Preset:
    """A published law (or form) with its provenance and metric; ``params`` is None for form-only presets."""

    name: str
    form: str
    metric: str
    x: str | None
    params: dict[str, float] | None
    source: str
    checked: bool
    note: str = ""
    x_scale: float = 1.0
    higher_is_better: bool = False
    #: (lowest, highest) x, in the preset's x unit (PF-days for ``x_unit: pf_day``), the law was fitted
    #: over; None when not documented.
    x_range: tuple[float, float] | None = None

    def law(self) -> QualityLaw:
        """The one-axis law of this preset (InputError for form-only or two-axis presets)."""
        if self.params is None:
            raise InputError(
                f"preset {self.name!r} is a form without published constants; fit your own runs "
                "with `fit: observations.csv`",
                field="preset",
            )
        if self.form == "two_axis":
            raise InputError(
                f"preset {self.name!r} is two-axis L(N, D); give at_params (slice along samples) "
                "or at_samples (slice along params)",
                field="preset",
            )
        assert self.x is not None
        return QualityLaw(
            self.form,
            self.x,
            self.metric,
            dict(self.params),
            f"preset {self.name}: {self.source}",
            x_scale=self.x_scale,
            higher_is_better=self.higher_is_better,
            x_range=None if self.x_range is None else (self.x_range[0] * self.x_scale,
                                                       self.x_range[1] * self.x_scale),
            x_range_kind="documented",
        )

    def two_axis(self) -> TwoAxisLaw:
        """The two-axis law of this preset (ValueError for one-axis presets)."""
        if self.form != "two_axis" or self.params is None:
            raise ValueError(f"preset {self.name!r} is not a two-axis law")
        p = self.params
        return TwoAxisLaw(
            p["E"], p["A"], p["alpha"], p["B"], p["beta"], self.metric, f"preset {self.name}: {self.source}"
        )


_PRESET_FILE = Path(__file__).parent / "presets" / "scaling" / "presets.yaml"
_PRESETS: dict[str, Preset] | None = None


def _preset_params(name: str, form: str, published: dict[str, Any]) -> dict[str, float]:
    """Convert a preset's published constants to the form's parameters (e.g. Kaplan's x_c to alpha)."""
    p = {k: float(v) for k, v in published.items()}
    if form in ("power_law", "power_plus_const") and "x_c" in p:
        # Kaplan style (x_c / x)^beta = x_c^beta * x^(-beta).
        p["alpha"] = p.pop("x_c") ** p["beta"]
    if form == "power_plus_const" and "x_0" in p:
        # Sequential-recommendation style E + (N0 / N)^beta.
        p["alpha"] = p.pop("x_0") ** p["beta"]
    order = FORM_PARAMS.get(form, ("E", "A", "alpha", "B", "beta"))
    if set(p) != set(order):
        raise ValueError(f"preset {name}: constants {sorted(p)} do not match form {form} {sorted(order)}")
    return {k: p[k] for k in order}


def _preset_x_range(name: str, value: Any) -> tuple[float, float] | None:
    """A preset's fitted x range from its ``x_range: [lo, hi]`` entry, else from
    :data:`_DOCUMENTED_X_RANGES`, else None."""
    if value is None:
        return _DOCUMENTED_X_RANGES.get(name)
    lo, hi = (float(v) for v in value)
    if not 0 < lo <= hi:
        raise ValueError(f"preset {name}: x_range must be [lo, hi] with 0 < lo <= hi, got {value!r}")
    return (lo, hi)


def presets() -> dict[str, Preset]:
    """All shipped scaling-law presets by name (read once from ``presets/scaling/presets.yaml``)."""
    global _PRESETS
    if _PRESETS is None:
        from planner.io import load_yaml_mapping

        data = load_yaml_mapping(_PRESET_FILE)
        out: dict[str, Preset] = {}
        for name, entry in data["presets"].items():
            form = entry["form"]
            published = entry.get("constants")
            params = _preset_params(name, form, published) if published else None
            unit = entry.get("x_unit", "count")
            x_scale = FLOPS_PER_PF_DAY if unit == "pf_day" else 1.0
            x_range = _preset_x_range(name, entry.get("x_range"))
            out[name] = Preset(
                name=name,
                form=form,
                metric=entry["metric"],
                x=entry.get("x"),
                params=params,
                source=entry["source"],
                checked=bool(entry.get("checked", False)),
                note=entry.get("note", ""),
                x_scale=x_scale,
                higher_is_better=bool(entry.get("higher_is_better", False)),
                x_range=x_range,
            )
        _PRESETS = out
    return dict(_PRESETS)


def preset(name: str) -> Preset:
    """The preset called ``name`` (InputError listing the names otherwise)."""
    table = presets()
    if name not in table:
        raise InputError(f"unknown scaling-law preset {name!r}; known: {', '.join(table)}", field="preset")
    return table[name]


# ---------------------------------------------------------------------------------------------------------
# Scenario specs


def _number(value: Any, field_path: str, file: str | None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"must be a number, got {value!r}", file=file, field=field_path)
    v = float(value)
    if not math.isfinite(v):
        raise InputError("must be finite", file=file, field=field_path)
    return v


def _axis(value: Any, field_path: str, file: str | None) -> str:
    if value not in AXES:
        raise InputError(f"must be one of {', '.join(AXES)}, got {value!r}", file=file, field=field_path)
    return str(value)


def validate_params(form: str, params: dict[str, float], prefix: str, file: str | None) -> None:
    """Check a one-axis law's parameters are physically meaningful (InputError naming the field)."""
    if form in ("power_plus_const", "power_law"):
        if params["alpha"] <= 0:
            raise InputError("must be > 0", file=file, field=f"{prefix}.alpha")
        if not 0 < params["beta"] <= 10:
            raise InputError("must be in (0, 10]", file=file, field=f"{prefix}.beta")
    if form == "power_plus_const" and params["gamma"] < 0:
        raise InputError("must be >= 0", file=file, field=f"{prefix}.gamma")


def _inline_law(spec: Any, file: str | None) -> QualityLaw:
    prefix = "quality.law"
    if not isinstance(spec, dict):
        raise InputError("must be a mapping with form, x and the form's parameters", file=file, field=prefix)
    form = spec.get("form", "power_plus_const")
    if not isinstance(form, str) or form not in FORM_PARAMS:
        raise InputError(
            f"must be one of {', '.join(FORM_PARAMS)}, got {form!r}", file=file, field=f"{prefix}.form"
        )
    names = FORM_PARAMS[form]
    allowed = {"form", "x", "metric", *names}
    _refuse_unknown(spec, allowed, file, prefix)
    if "x" not in spec:
        raise InputError(f"missing (one of {', '.join(AXES)})", file=file, field=f"{prefix}.x")
    x = _axis(spec["x"], f"{prefix}.x", file)
    params = {}
    for n in names:
        if n not in spec:
            raise InputError(
                f"missing (form {form} needs {', '.join(names)})", file=file, field=f"{prefix}.{n}"
            )
        params[n] = _number(spec[n], f"{prefix}.{n}", file)
    validate_params(form, params, prefix, file)
    metric = spec.get("metric", "ne")
    if not isinstance(metric, str) or not metric:
        raise InputError("must be a metric name such as ne", file=file, field=f"{prefix}.metric")
    return QualityLaw(form, x, metric, params, "inline law in the scenario")


def _refuse_unknown(spec: dict[str, Any], allowed: set[str], file: str | None, prefix: str) -> None:
    """Raise an InputError naming the first key of ``spec`` that is not in ``allowed``."""
    extra = sorted(set(spec) - allowed)
    if extra:
        raise InputError(f"unknown key {extra[0]!r} (allowed: {', '.join(sorted(allowed))})", file=file,
                         field=f"{prefix}.{extra[0]}")


def _preset_law(spec: dict[str, Any], file: str | None) -> QualityLaw:
    allowed = {"preset", "at_params", "at_samples"}
    _refuse_unknown(spec, allowed, file, "quality")
    name = spec["preset"]
    if not isinstance(name, str):
        raise InputError(
            "must be a preset name (see `recplan scaling presets`)", file=file, field="quality.preset"
        )
    try:
        p = preset(name)
    except InputError as exc:
        raise exc.within(file, "quality") from None
    if p.form == "two_axis" and p.params is not None:
        at_n, at_d = spec.get("at_params"), spec.get("at_samples")
        if (at_n is None) == (at_d is None):
            raise InputError(
                f"preset {name!r} is two-axis L(N, D): give exactly one of at_params, at_samples",
                file=file,
                field="quality.preset",
            )
        if at_n is not None:
            v = _number(at_n, "quality.at_params", file)
            if v <= 0:
                raise InputError("must be > 0", file=file, field="quality.at_params")
            return p.two_axis().slice(at_params=v)
        v = _number(at_d, "quality.at_samples", file)
        if v <= 0:
            raise InputError("must be > 0", file=file, field="quality.at_samples")
        return p.two_axis().slice(at_samples=v)
    if "at_params" in spec or "at_samples" in spec:
        key = "at_params" if "at_params" in spec else "at_samples"
        raise InputError(
            f"only for two-axis presets; {name!r} is one-axis", file=file, field=f"quality.{key}"
        )
    try:
        return p.law()
    except InputError as exc:
        raise InputError(exc.problem, file=file, field="quality.preset") from None


_FIT_CACHE: dict[tuple, QualityLaw] = {}


def _fit_law(spec: dict[str, Any], base_dir: Path | None, file: str | None) -> QualityLaw:
    allowed = {"fit", "x", "form", "bootstrap", "seed", "component", "holdout_largest"}
    _refuse_unknown(spec, allowed, file, "quality")
    rel = spec["fit"]
    if not isinstance(rel, str) or not rel:
        raise InputError("must be the path of an observations CSV", file=file, field="quality.fit")
    if "x" not in spec:
        raise InputError(f"missing (one of {', '.join(AXES)})", file=file, field="quality.x")
    x = _axis(spec["x"], "quality.x", file)
    form = spec.get("form", "power_plus_const")
    if not isinstance(form, str) or form not in FORM_PARAMS:
        raise InputError(
            f"must be one of {', '.join(FORM_PARAMS)}, got {form!r}", file=file, field="quality.form"
        )
    n_boot = spec.get("bootstrap", 1000)
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or not 0 <= n_boot <= 100_000:
        raise InputError("must be an integer in [0, 100000]", file=file, field="quality.bootstrap")
    seed = spec.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InputError("must be a non-negative integer", file=file, field="quality.seed")
    component = spec.get("component")
    if component is not None and not isinstance(component, str):
        raise InputError("must be a component name", file=file, field="quality.component")
    holdout = spec.get("holdout_largest", 0)
    if isinstance(holdout, bool) or not isinstance(holdout, int) or holdout < 0:
        raise InputError("must be a non-negative integer", file=file, field="quality.holdout_largest")
    path = Path(rel)
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    from planner.io import read_text

    text = read_text(path)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    key = (digest, x, form, n_boot, seed, component, holdout)
    if key in _FIT_CACHE:
        return _FIT_CACHE[key]
    # Fitting is calibration's job; imported here only when a scenario asks for a fit.
    from calibration.scaling_fit import fit_observations, parse_observations

    obs = parse_observations(text, str(path), sha256=digest, component=component)
    result = fit_observations(obs, x=x, form=form, n_bootstrap=n_boot, seed=seed, holdout_largest=holdout)
    # The law is known over the runs it was fitted to; the scenario warns beyond them (EXTRAPOLATION_FACTOR).
    law = replace(result.to_law(), x_range=tuple(result.x_range), x_range_kind="observed", _cache={})
    _FIT_CACHE[key] = law
    return law


def law_from_spec(spec: dict, *, base_dir: Path | None = None, file: str | None = None) -> QualityLaw:
    """Build the quality law of a scenario's ``quality:`` mapping.

    Accepted forms: ``{"law": {"form": ..., "x": ..., <params>}}`` (inline, no interval),
    ``{"preset": NAME}`` (optionally ``at_params``/``at_samples`` for a two-axis preset), and
    ``{"fit": "observations.csv", "x": "samples"}`` (path relative to ``base_dir``; fitted with a seeded
    1000-resample bootstrap; optional ``form``, ``bootstrap``, ``seed``, ``component``,
    ``holdout_largest``; the law's ``source`` then reports the held-out error).

    Raises:
        InputError: naming ``file`` and the field path (``quality.law.beta``) for a bad spec;
        InfeasibleError: when a fit does not converge.
    """
    if not isinstance(spec, dict):
        raise InputError("must be a mapping with one of law, preset, fit", file=file, field="quality")
    kinds = [k for k in ("law", "preset", "fit") if k in spec]
    if len(kinds) != 1:
        found = f"found {', '.join(kinds)}" if kinds else f"found keys {', '.join(map(str, spec)) or 'none'}"
        raise InputError(f"needs exactly one of law, preset, fit ({found})", file=file, field="quality")
    kind = kinds[0]
    if kind == "law":
        extra = sorted(set(spec) - {"law"})
        if extra:
            raise InputError(f"unknown key {extra[0]!r} beside law", file=file, field=f"quality.{extra[0]}")
        return _inline_law(spec["law"], file)
    if kind == "preset":
        return _preset_law(spec, file)
    return _fit_law(spec, base_dir, file)
