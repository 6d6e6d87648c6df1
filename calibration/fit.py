"""Fit the kernel cost-model families to measurements by robust least squares on log times (scipy).

Each family's formula lives in :mod:`planner.cost`; here each successful measurement becomes a
:class:`FitCase` (measured seconds and a prediction function of the parameters), and the family's free
parameters are fitted in log space with a soft-L1 loss on ``log(predicted / measured)`` (robust to the
noisy outliers of a shared machine). Parameters the data cannot move (no case is sensitive to them, for
example the inter-node latency when every collective ran inside one node) keep the base profile's value
and are marked ``datasheet``. Families are fitted in order, each with the earlier families' results
(DCN cross layers use the fitted GEMM parameters; the host overhead uses every fitted family).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import least_squares

from calibration.measurements import MeasurementSet, Record
from kernels.records import LEGACY_CHAIN_KINDS
from planner.cost import collectives, embedding, gemm, interaction, memory_bound, overhead
from planner.cost.params import ELEM_BYTES, DeviceFigures, ParamSpec
from planner.cost.registry import FAMILIES

Params = Mapping[str, Mapping[str, float]]
#: prediction function of one case: all families' parameters -> (total seconds, fixed-cost seconds).
Predictor = Callable[[Params], tuple[float, float]]

#: Soft-L1 scale on log residuals: residuals beyond ~5% count linearly, not quadratically (robust loss).
LOSS_SCALE = 0.05
#: Weak prior on log parameters toward the rescaled start (residual per log unit): a factor e away costs as
#: much as a 3% misfit of one case. It keeps parameters the data barely constrain from wandering (ridge).
PRIOR_WEIGHT = 0.03
#: Termination tolerance of the least-squares solver (ftol, xtol, gtol; scipy's default is 1e-8). On a quick
#: bench of this project's 2-core VM, 1e-6 took calibrate from 9.6 to 5.3 s and moved every family's
#: cross-validated median by at most 0.05 points and the fitted values by a few percent of their standard
#: errors (1e-5: 4.4 s, but the embedding median moved 0.4 points). On the five benches of the shipped CPU
#: calibration the embedding median went from 15.3 to 13.9% (a better optimum), the others by 0.1 or less.
FIT_TOLERANCE = 1e-6
#: A parameter is free when changing it by 10% (in log) moves some prediction by at least 0.2%.
SENSITIVITY_MIN = 0.02
#: The host overhead per launch is measured by launch-bound single-kernel ops: copies and element-wise ops
#: whose modelled work is a small share of their time are pure dispatch (Lin et al.'s T4 launch overhead).
OVERHEAD_FAMILIES = ("memory",)
OVERHEAD_KERNELS = ("copy", "elementwise", "h2d", "d2h")
#: Parameters of later families that start from (and, when the data cannot move them, keep) the memory
#: family's fit: the same memory system serves GEMM operands, embedding rows and interaction tensors.
SHARED_FROM_MEMORY = ("bandwidth_fraction", "cache_bandwidth_ratio", "cache_fraction", "cache_sharpness",
                      "page_fault_s", "low_precision_rate")
#: Families that take the memory system's parameters as fitted (streaming GEMM operands and interaction
#: tensors); the embedding family only starts from them, since random row access behaves differently.
SHARED_FIXED_FAMILIES = ("gemm", "interaction")
#: Fitting order: memory first (its bandwidth is shared), GEMM before interaction (DCN layers are GEMMs).
FIT_ORDER = ("memory", "gemm", "embedding", "interaction", "collective")
#: Which suites each family is fitted to.
FAMILY_SUITES = {"gemm": "gemm", "embedding": "embedding", "interaction": "interaction", "memory": "memory",
                 "collective": "collective"}


@dataclass(frozen=True)
class FitCase:
    """One successful measurement of a family: measured median seconds, launches and its predictor;
    embedding, memory, GEMM and interaction cases carry their op's parameter-independent inputs for a
    vectorised fit."""

    record: Record
    measured_s: float
    launches: int
    predict: Predictor
    batch_op: tuple | None = None

    @property
    def tables(self) -> int:
        """Tables the case updates in its one backward() and step() (1 but for multi-table embedding
        cases)."""
        return _record_tables(self.record)


def _record_tables(record: Record) -> int:
    return int(record.params.get("tables", 1)) if record.suite == "embedding" else 1


@dataclass
class ParamFit:
    """One fitted (or kept) parameter: value, standard error (None when not fitted) and status."""

    value: float
    stderr: float | None
    status: str  # measured | datasheet


@dataclass
class FamilyFit:
    """The result of fitting one family: parameters, fit quality and (later) cross-validated error."""

    family: str
    status: str  # measured | datasheet
    params: dict[str, ParamFit]
    cases: int = 0
    failed: int = 0
    converged: bool = True
    message: str = ""
    rms_log_residual: float | None = None
    sigma_rel: float | None = None
    cv: dict[str, float | int] | None = None
    extra: dict[str, object] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------------ cases
def _elem(record: Record) -> int:
    value = record.extra.get("bytes_per_elem")
    return int(value) if isinstance(value, (int, float)) and value > 0 else ELEM_BYTES.get(record.dtype, 4)


def _case(record: Record, fig: DeviceFigures) -> tuple[str, int, Predictor, tuple | None] | None:
    """The family, launch count, predictor and vectorisable op (collectives and overhead: None) of one
    record, or None when it is not fitted (dlrm)."""
    k, p, dtype = record.kernel, record.params, record.dtype
    if record.suite == "gemm":
        backward = k == "linear_backward"

        def pred_gemm(params: Params) -> tuple[float, float]:
            g = params["gemm"]
            total = gemm.linear_time_s(g, fig, p["batch"], p["in_features"], p["out_features"], dtype,
                                       backward)
            launches = gemm.LINEAR_LAUNCHES["backward" if backward else "forward"]
            call = g["backward_call_s"] if backward else 0.0  # the bench's autograd.grad call
            return total + call, g["fixed_s"] * launches + call

        op = (p["batch"], p["in_features"], p["out_features"], dtype, backward)
        launches = gemm.LINEAR_LAUNCHES["backward" if backward else "forward"]
        return "gemm", launches, pred_gemm, ("gemm", fig, op)
    if record.suite == "embedding":
        phase = "forward" if k == "embedding_bag_forward" else "backward"
        optimizer = p["optimizer"] if phase == "backward" else "none"
        zipf = float(p["zipf_exponent"]) if p["distribution"] == "zipf" else 0.0
        unique = record.extra.get("unique_rows")
        rotate = record.extra.get("rotating_batches")
        footprint = float(unique) * float(rotate) if unique and rotate else None
        elem = _elem(record)
        tables = _record_tables(record)
        launches = embedding.launches_for(phase, optimizer) * tables
        share = 1.0 / tables  # K same-shaped tables in one call split the cache (and the TLB) evenly
        evicted = float(p.get("evict_bytes", 0.0)) if phase == "backward" else 0.0

        def pred_emb(params: Params) -> tuple[float, float]:
            e = params["embedding"]
            total, parts = embedding.embedding_time_s(e, fig, p["rows"], p["dim"], p["pooling"], p["batch"],
                                                      elem, phase, optimizer, zipf, footprint,
                                                      cache_share=share, evicted_bytes=evicted)
            call = e.get("step_call_s", 0.0) if phase == "backward" else 0.0  # the bench's per-case calls
            return tables * total + call, tables * parts["fixed_s"] + call

        op = (p["rows"], p["dim"], p["pooling"], p["batch"], elem, phase, optimizer, zipf, footprint, share,
              evicted)
        return "embedding", launches, pred_emb, ("embedding", fig, op)
    if record.suite == "interaction":
        phase = "forward" if k.endswith("forward") else "backward"
        if k.startswith("dot"):
            def pred_dot(params: Params) -> tuple[float, float]:
                total, parts = interaction.dot_interaction_time_s(params["interaction"], params["gemm"], fig,
                                                                  p["batch"],
                                                                  p["features"], p["dim"], dtype, phase)
                call = params["gemm"]["backward_call_s"] if phase == "backward" else 0.0
                return total + call, parts["fixed_s"] + call

            op = ("dot", p["batch"], p["features"], p["dim"], dtype, phase)
            return "interaction", interaction.DOT_LAUNCHES[phase], pred_dot, ("interaction", fig, op)
        launches_box = interaction.dcn_cross_time_s(
            {"fixed_s": 1.0, "bandwidth_fraction": 1.0},
            {"fixed_s": 1.0, "k_half": 1.0, "bandwidth_fraction": 1.0, "peak_fraction_fp32": 1.0},
            fig, 1, 1, p["low_rank"], dtype, phase)[1]

        def pred_dcn(params: Params) -> tuple[float, float]:
            i, g = params["interaction"], params["gemm"]
            total, launches = interaction.dcn_cross_time_s(i, g, fig, p["batch"], p["width"], p["low_rank"],
                                                           dtype, phase)
            gemm_launches = launches - interaction.DCN_ELEMENTWISE_LAUNCHES[phase]
            call = g["backward_call_s"] if phase == "backward" else 0.0
            return (total + call,
                    gemm_launches * g["fixed_s"] + (launches - gemm_launches) * i["fixed_s"] + call)

        op = ("dcn", p["batch"], p["width"], p["low_rank"], dtype, phase)
        return "interaction", launches_box, pred_dcn, ("interaction", fig, op)
    if record.suite == "memory" and k == "launch_overhead" and p.get("autograd", True) is False:
        # the chain without autograd, cycled minus warm: the cold-code seconds per op

        def pred_cold(params: Params) -> tuple[float, float]:
            o = params["overhead"]
            per = o["cold_dispatch_share"] * o["host_overhead_s"]
            return per, per

        return "overhead", int(p["ops"]), pred_cold, None
    if record.suite == "memory" and k == "launch_overhead":
        launches = 2 * int(p["ops"])
        cpu = fig.kind == "cpu"

        def pred_launch(params: Params) -> tuple[float, float]:
            o = params["overhead"]
            own = params["memory"]["fixed_s"] if cpu else 0.0
            per = o["host_overhead_s"] + o["backward_start_s"] / launches + own
            return per, per

        return "overhead", launches, pred_launch, None
    if record.suite == "memory":
        kind = k
        opt = str(p.get("optimizer") or "adagrad")
        # an optimizer step's record names its algorithmic bytes; the model prices the bytes PyTorch's
        # step streams (memory_bound.OPTIMIZER_OPS) over the parameter's
        nbytes = (memory_bound.optimizer_step_bytes(opt, float(p["bytes"])) if k == "optimizer_step"
                  else float(p["bytes_moved"]))
        elem = _elem(record)

        def pred_mem(params: Params) -> tuple[float, float]:
            total, parts = memory_bound.memory_time_s(params["memory"], fig, kind, nbytes, opt, elem)
            return total, parts["fixed_s"]

        batch_args = ("memory", fig, (kind, nbytes, opt, elem))
        return "memory", memory_bound.launches_for(kind, opt), pred_mem, batch_args
    if record.suite == "collective":
        kind = "all_to_all" if k == "all_to_all_unequal" else k

        def pred_coll(params: Params) -> tuple[float, float]:
            total, parts = collectives.collective_time_s(params["collective"], fig, kind, p["bytes"],
                                                         p["world_size"], p["ranks_per_node"])
            return total, parts.get("latency_s", 0.0)

        return "collective", 1, pred_coll, None
    return None


def _chain_kinds(record: Record) -> int | None:
    """Op kinds of an autograd launch-overhead chain record (older records: the six-kind chain), else
    None (also for the chains without autograd, which are always kept)."""
    if record.suite != "memory" or record.kernel != "launch_overhead":
        return None
    if record.params.get("autograd") is False:
        return None
    return int(record.params.get("kinds", LEGACY_CHAIN_KINDS))


def build_cases(measurements: MeasurementSet, fig: DeviceFigures) -> dict[str, list[FitCase]]:
    """Successful records grouped by the family that fits them (dlrm records are left out).

    Of the launch-overhead chains only those of the most op kinds (that at least two chains measured)
    are kept: a step's per-launch cost is what the most step-like chain measures (see
    :mod:`kernels.memcpy`), and mixing it with chains of fewer kinds from older files would average two
    different quantities. The chains without autograd are kept beside them, and dropped without them
    (they only split ``host_overhead_s``, which the launch-bound memory ops then stand in for).
    """
    out: dict[str, list[FitCase]] = {name: [] for name in FAMILIES}
    records = measurements.successful()
    chains = [_chain_kinds(record) for record in records]
    # the most kinds that at least two chains measured (one chain cannot separate the per-launch cost
    # from the backward start); any kinds when none did
    counts = Counter(k for k in chains if k is not None)
    most = max((k for k, n in counts.items() if n >= 2), default=max(counts, default=None))
    for record, chain in zip(records, chains, strict=True):
        if chain is not None and chain != most:
            continue
        if most is None and record.kernel == "launch_overhead":
            continue  # chains without autograd alone cannot fit host_overhead_s: the fallback does
        found = _case(record, fig)
        if found is None:
            continue
        family, launches, predictor, batch_op = found
        out[family].append(FitCase(record, float(record.median_s or 0.0), launches, predictor, batch_op))
    return out


# ---------------------------------------------------------------------------------------------- fitting
def _log_bounds(spec: ParamSpec) -> tuple[float, float]:
    lower = max(spec.lower, spec.upper * 1e-12, 1e-15)
    return math.log(lower), math.log(spec.upper)


def _with(params: Params, family: str, names: list[str], values: np.ndarray) -> dict[str, dict[str, float]]:
    """``params`` with ``family``'s ``names`` set to ``exp(values)``: a new mapping for that family, the
    other families' mappings shared (read only)."""
    out = dict(params)
    out[family] = {**params[family], **{n: float(math.exp(x)) for n, x in zip(names, values, strict=True)}}
    return out


VectorBatch = tuple[embedding.EmbeddingBatch | memory_bound.MemoryBatch | gemm.LinearBatch
                    | interaction.InteractionBatch, np.ndarray]
#: Vectorised batches of the case lists a fit is working on (the list itself, its batch and the tables
#: each case updates in one call).
_BATCHES: list[tuple[list[FitCase], VectorBatch]] = []


def _vector_batch(cases: list[FitCase]) -> VectorBatch | None:
    """The cases' :class:`~planner.cost.embedding.EmbeddingBatch` or
    :class:`~planner.cost.memory_bound.MemoryBatch` when every one carries its op (all of one family),
    with the tables each case updates in one call (built once per case list)."""
    for held, packed in _BATCHES:
        if held is cases:
            return packed
    if not cases or any(c.batch_op is None for c in cases):
        return None
    family, fig, _op = cases[0].batch_op  # type: ignore[misc]
    if any(c.batch_op[0] != family for c in cases):  # type: ignore[index]
        return None
    ops = [c.batch_op[2] for c in cases]  # type: ignore[index]
    batch: embedding.EmbeddingBatch | memory_bound.MemoryBatch | gemm.LinearBatch | \
        interaction.InteractionBatch | None
    if family in ("gemm", "interaction"):
        batch = gemm.linear_batch(fig, ops) if family == "gemm" else interaction.interaction_batch(fig, ops)
        if batch is None:  # a GPU's GEMMs are priced call by call
            return None
    elif family == "memory":
        batch = memory_bound.memory_batch(fig, ops)
    else:
        batch = embedding.embedding_batch(fig, ops)
    packed = (batch, np.array([float(c.tables) for c in cases]))
    _BATCHES.append((cases, packed))
    del _BATCHES[:-8]  # the lists of the last few fits
    return packed


def _log_predictions(cases: list[FitCase], params: Params) -> np.ndarray:
    packed = _vector_batch(cases)
    if packed is None:
        return np.array([math.log(max(c.predict(params)[0], 1e-30)) for c in cases])
    # the same formulas, all cases at once (tested against the per-case ones)
    batch, tables = packed
    fig = cases[0].batch_op[1]  # type: ignore[index]
    if isinstance(batch, memory_bound.MemoryBatch):
        return np.log(np.maximum(memory_bound.memory_times(params["memory"], fig, batch), 1e-30))
    if isinstance(batch, gemm.LinearBatch | interaction.InteractionBatch):
        g = params["gemm"]  # plus the bench's autograd.grad call of a backward, as pred_gemm and pred_dot
        times = (gemm.linear_times(g, fig, batch) if isinstance(batch, gemm.LinearBatch)
                 else interaction.interaction_times(params["interaction"], g, fig, batch))
        times = times + np.where(batch.backward, g["backward_call_s"], 0.0)
        return np.log(np.maximum(times, 1e-30))
    # each of a case's tables, plus the bench-only per-case calls of a backward case, as in pred_emb
    times = embedding.embedding_times(params["embedding"], fig, batch) * tables
    times = times + np.where(batch.forward, 0.0, params["embedding"].get("step_call_s", 0.0))
    return np.log(np.maximum(times, 1e-30))


def _sensitive(cases: list[FitCase], params: Params, family: str, specs: dict[str, ParamSpec]) -> list[str]:
    base = _log_predictions(cases, params)
    names = []
    for name in specs:
        value = params[family][name]
        if value <= 0:
            continue
        step = 0.1
        moved = _with(params, family, [name], np.array([math.log(value) + step]))
        if np.max(np.abs(_log_predictions(cases, moved) - base)) / step >= SENSITIVITY_MIN:
            names.append(name)
    return names


def _rescaled_start(cases: list[FitCase], params: Params, family: str,
                    specs: dict[str, ParamSpec]) -> dict[str, dict[str, float]]:
    """Start point with every rate scaled by the median measured/predicted ratio (times the other way).

    ``page_fault_s`` keeps its value: a page fault is the kernel's work, not the family's, and scaling it
    with a slow backend's ratio (gloo's collectives run ~100x under the datasheet link) put the prior of
    a fold without the one case that pins it at 100 us a page (a held-out all-gather predicted 28x)."""
    ratio = float(np.exp(np.median([math.log(c.measured_s) for c in cases]) -
                         np.median(_log_predictions(cases, params))))
    out = {k: dict(v) for k, v in params.items()}
    for name, spec in specs.items():
        value = params[family][name]
        if name == "page_fault_s":
            continue
        if name.endswith("_fraction") and name != "cache_fraction":
            scaled = value / ratio  # a rate: time is inversely proportional to it
        elif spec.unit.startswith("s") or "bytes-equivalent" in spec.unit:
            scaled = value * ratio  # a cost: time grows with it
        else:
            continue
        out[family][name] = min(max(scaled, spec.lower, 1e-12), spec.upper)
    return out


def _solve(cases: list[FitCase], params: Params, family: str, names: list[str],
           specs: dict[str, ParamSpec], prior: np.ndarray) -> tuple[np.ndarray, object]:
    bounds = np.array([_log_bounds(specs[n]) for n in names]).T
    measured = np.log([c.measured_s for c in cases])

    def residuals(x: np.ndarray) -> np.ndarray:
        fit = _log_predictions(cases, _with(params, family, names, x)) - measured
        return np.concatenate([fit, PRIOR_WEIGHT * (x - prior)])

    x0 = np.array([math.log(min(max(params[family][n], math.exp(bounds[0][i]) * 1.0001),
                                math.exp(bounds[1][i]) / 1.0001)) for i, n in enumerate(names)])
    result = least_squares(residuals, x0, bounds=(bounds[0], bounds[1]), loss="soft_l1", f_scale=LOSS_SCALE,
                           max_nfev=100 * (len(names) + 1), ftol=FIT_TOLERANCE, xtol=FIT_TOLERANCE,
                           gtol=FIT_TOLERANCE)
    return result.x, result


def fit_parameters(cases: list[FitCase], params: Params, family: str, specs: dict[str, ParamSpec],
                   names: list[str], *, only_this_start: bool = False,
                   starts_named: Collection[str] | None = None, report: dict[str, str] | None = None,
                   ) -> tuple[dict[str, float], dict[str, float | None], bool, str, float]:
    """Fit ``names`` of ``family`` to ``cases`` from several starts (``params``, rescaled, and shifted
    across roofline kinks; only ``params`` with ``only_this_start``); returns values, stderrs, ok,
    message, rms.

    The starts are named ("given", "rescaled", "cache x0.01", "cache x0.1", "kinked", "rates x0.1",
    "rates x10"; the last five only where they apply); ``starts_named`` runs only those of them (all
    when none of them applies to these cases), and ``report["start"]`` receives the name of the winner.
    """
    if not names:
        res = _log_predictions(cases, params) - np.log([c.measured_s for c in cases])
        return {}, {}, True, "no free parameters", float(np.sqrt(np.mean(res ** 2)))
    best = None
    rescaled = _rescaled_start(cases, params, family, specs)
    starts: list[tuple[str, Params]] = [("given", params), ("rescaled", rescaled)]
    if "cache_fraction" in names:  # the cache knee can sit far from the datasheet cache size
        for factor in (0.01, 0.1):
            shifted = {k: dict(v) for k, v in rescaled.items()}
            shifted[family]["cache_fraction"] = max(rescaled[family]["cache_fraction"] * factor,
                                                    specs["cache_fraction"].lower)
            starts.append((f"cache x{factor:g}", shifted))
    prior = np.array([math.log(max(rescaled[family][n], 1e-30)) for n in names])
    kinked = _kinked(cases, rescaled, family, specs, _sensitive(cases, rescaled, family, specs))
    if kinked:  # a start on the other side of each roofline kink, so the optimiser sees those parameters
        shifted = {k: dict(v) for k, v in rescaled.items()}
        shifted[family].update({n: v for n, v in kinked.items() if n in names})
        starts.append(("kinked", shifted))
    # One start with each rate (fraction, efficiency, ratio) ten times lower and one ten times higher:
    # a roofline's max() leaves a parameter flat on one side of its kink, where a local optimiser stalls.
    rates = [n for n in names if specs[n].unit.startswith(("fraction", "x "))]
    for factor in (0.1, 10.0) if rates else ():
        shifted = {k: dict(v) for k, v in rescaled.items()}
        for n in rates:
            shifted[family][n] = min(max(rescaled[family][n] * factor, specs[n].lower), specs[n].upper)
        starts.append((f"rates x{factor:g}", shifted))
    if only_this_start:
        starts = starts[:1]
    elif starts_named is not None and any(label in starts_named for label, _ in starts):
        starts = [(label, start) for label, start in starts if label in starts_named]
    for label, start in starts:
        x, result = _solve(cases, start, family, names, specs, prior)
        if best is None or result.cost < best[1].cost:  # type: ignore[attr-defined]
            best = (x, result)
            if report is not None:
                report["start"] = label
    assert best is not None  # at least one start always runs
    x, result = best
    jac = np.asarray(result.jac)[: len(cases)]  # type: ignore[attr-defined]
    fun = np.asarray(result.fun)[: len(cases)]  # type: ignore[attr-defined]
    n, k = len(cases), len(names)
    dof = max(n - k, 1)
    s2 = float(np.sum(fun ** 2) / dof)
    try:
        cov = np.linalg.pinv(jac.T @ jac) * s2
        log_se = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    except np.linalg.LinAlgError:
        log_se = np.full(k, np.nan)
    values = {nm: float(math.exp(xi)) for nm, xi in zip(names, x, strict=True)}
    stderr: dict[str, float | None] = {}
    for nm, se in zip(names, log_se, strict=True):
        stderr[nm] = float(values[nm] * se) if math.isfinite(se) and n > k else None
    ok = bool(result.success)  # type: ignore[attr-defined]
    return values, stderr, ok, str(result.message), float(np.sqrt(np.mean(fun ** 2)))  # type: ignore[attr-defined]


def _kinked(cases: list[FitCase], params: Params, family: str, specs: dict[str, ParamSpec],
            names: list[str]) -> dict[str, float]:
    """Parameters that do not matter at ``params`` but do at 10x or 0.1x (behind a roofline's max)."""
    base = _log_predictions(cases, params)
    out: dict[str, float] = {}
    for name in specs:
        if name in names:
            continue
        value = params[family][name]
        for factor in (0.1, 10.0):
            moved_value = min(max(value * factor, specs[name].lower, 1e-12), specs[name].upper)
            moved = _with(params, family, [name], np.array([math.log(moved_value)]))
            if np.max(np.abs(_log_predictions(cases, moved) - base)) >= SENSITIVITY_MIN * math.log(10.0):
                out[name] = moved_value
                break
    return out


def free_parameters(cases: list[FitCase], params: Params, family: str,
                    specs: dict[str, ParamSpec]) -> list[str]:
    """Parameters the cases can identify (sensitive at the default, the rescaled start, or within 10x)."""
    rescaled = _rescaled_start(cases, params, family, specs)
    names = set(_sensitive(cases, params, family, specs))
    names |= set(_sensitive(cases, rescaled, family, specs))
    names |= set(_kinked(cases, rescaled, family, specs, sorted(names)))
    ordered = [n for n in specs if n in names]
    return ordered[: max(len(cases) - 1, 0)]


def overhead_cases(cases: dict[str, list[FitCase]], params: Params) -> list[FitCase]:
    """Launch-bound cases of every family, re-expressed as ``launches * host_overhead_s + work``."""
    out = []
    for family, group in cases.items():
        if family not in OVERHEAD_FAMILIES:
            continue
        for case in group:
            if case.record.kernel not in OVERHEAD_KERNELS:
                continue
            total, fixed = case.predict(params)
            work = max(total - fixed, 0.0)
            if total <= 0 or work / total >= overhead.LAUNCH_BOUND_WORK_SHARE or case.launches <= 0:
                continue

            def pred(p: Params, work: float = work, launches: int = case.launches) -> tuple[float, float]:
                host = p["overhead"]["host_overhead_s"]
                return launches * host + work, launches * host

            out.append(FitCase(case.record, case.measured_s, case.launches, pred))
    return out


def fit_family(family: str, cases: list[FitCase], params: Params, specs: dict[str, ParamSpec],
               fixed: tuple[str, ...] = ()) -> tuple[FamilyFit, dict[str, float]]:
    """Fit one family on ``cases`` starting from ``params``; returns the fit and its fitted values."""
    if not cases:
        kept = {n: ParamFit(params[family][n], None, "datasheet") for n in specs}
        return FamilyFit(family, "datasheet", kept, message="no measurements: base profile values kept"), {}
    names = [n for n in free_parameters(cases, params, family, specs) if n not in fixed]
    start = {k: dict(v) for k, v in params.items()}
    winner: dict[str, str] = {}
    values, stderr, ok, message, rms = fit_parameters(cases, params, family, specs, names, report=winner)
    # A parameter flat at the start (behind a roofline kink the start sits on the other side of) can
    # matter at the fitted point: fit once more, from there, with every parameter sensitive there too.
    fitted_params = {k: dict(v) for k, v in params.items()}
    fitted_params[family].update(values)
    more = [n for n in free_parameters(cases, fitted_params, family, specs)
            if n not in fixed and n not in names]
    if more:
        names = [n for n in specs if n in names or n in more][: max(len(cases) - 1, 0)]
        values, stderr, ok, message, rms = fit_parameters(cases, fitted_params, family, specs, names,
                                                          only_this_start=True)
    fitted = {n: ParamFit(values[n], stderr.get(n), "measured") if n in values
              else ParamFit(params[family][n], None, "datasheet") for n in specs}
    fit = FamilyFit(family, "measured", fitted, cases=len(cases), converged=ok, message=message,
                    rms_log_residual=rms, extra={"start": start, "winning_start": winner.get("start")})
    return fit, values


def fit_all(measurements: MeasurementSet, fig: DeviceFigures, start: Params,
            efficiency: object) -> tuple[dict[str, FamilyFit], dict[str, dict[str, float]],
                                         dict[str, list[FitCase]]]:
    """Fit every family in order; returns the fits, the final parameters and the cases used per family.

    ``start`` holds the base profile's parameters of every family (the datasheet defaults or its own
    calibration); ``efficiency`` is the base profile's :class:`~planner.model.EfficiencySpec`.
    """
    params = {k: dict(v) for k, v in start.items()}
    cases = build_cases(measurements, fig)
    fits: dict[str, FamilyFit] = {}
    for family in FIT_ORDER:
        specs = FAMILIES[family].param_specs(efficiency)  # type: ignore[arg-type]
        if family != "memory" and fits.get("memory") is not None and fits["memory"].status == "measured":
            for name in SHARED_FROM_MEMORY:
                if name in specs and fits["memory"].params[name].status == "measured":
                    params[family][name] = fits["memory"].params[name].value
        shared: tuple[str, ...] = ()
        if family in SHARED_FIXED_FAMILIES and fits["memory"].status == "measured":
            shared = tuple(n for n in SHARED_FROM_MEMORY if n in specs
                           and fits["memory"].params[n].status == "measured")
        fit, values = fit_family(family, cases[family], params, specs, fixed=shared)
        for name in shared:
            if name in fit.params:
                fit.params[name].status = "shared"
        fit.failed = len(measurements.failed(FAMILY_SUITES[family]))
        params[family].update(values)
        fits[family] = fit
    if not cases["overhead"]:  # no launch chains measured: the launch-bound memory ops instead
        cases["overhead"] = overhead_cases(cases, params)
    specs = FAMILIES["overhead"].param_specs(efficiency)  # type: ignore[arg-type]
    fit, values = fit_family("overhead", cases["overhead"], params, specs)
    params["overhead"].update(values)
    fits["overhead"] = fit
    fits = {name: fits[name] for name in FAMILIES}
    return fits, params, cases


def predictions(cases: list[FitCase], params: Params) -> np.ndarray:
    """Predicted seconds of each case under ``params``."""
    return np.array([c.predict(params)[0] for c in cases])
