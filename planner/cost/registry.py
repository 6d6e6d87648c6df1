"""Registry of cost-model families by name, the cost model built from a profile, and calibration checks.

``build_cost_model(profile)`` returns a :class:`AnalyticCostModel` whose parameters are the datasheet defaults
derived from ``profile.efficiency`` (each family's ``param_specs`` states the basis of every default),
overlaid by the fitted values of the profile's ``calibration`` block where a family was measured.

Transfer rule (hardware that cannot be measured): parameters are fractions of datasheet figures (GEMM of the
dtype's peak, memory of the HBM bandwidth, collectives of the link) or absolute host/protocol costs. A
profile derived from a calibrated one (``recplan profiles derive``) keeps the whole calibration block, so
its fitted fractions apply to its *changed* datasheet figures (twice the HBM bandwidth halves the
memory-bound times) while absolute costs (launch overheads, latencies) carry over unchanged. Such fitted
figures are reported as ``transferred`` by :func:`figure_status`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from planner.cost import collectives, embedding, gemm, interaction, memory_bound, overhead
from planner.cost.params import ELEM_BYTES, DeviceFigures, ParamSpec, device_figures
from planner.errors import InputError
from planner.interfaces import CollectiveOp, EmbeddingOp, Estimate, GemmOp, InteractionOp, MemoryOp, Op
from planner.model import EfficiencySpec, HardwareProfile


@dataclass(frozen=True)
class Family:
    """One cost-model family: its name, a one-line summary and its parameter specification."""

    name: str
    summary: str
    module: Any

    def param_specs(self, efficiency: EfficiencySpec) -> dict[str, ParamSpec]:
        """The family's parameters with datasheet defaults for ``efficiency``."""
        return self.module.param_specs(efficiency)


#: The families, in fitting order (interaction's DCN cases use the GEMM family's parameters).
FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family("gemm", "GEMM roofline with tile/wave quantisation", gemm),
        Family("embedding", "embedding bag forward and backward+update, cache-hit model", embedding),
        Family("interaction", "dot interaction and DCN cross layers", interaction),
        Family("memory", "memory-bound ops: bandwidth-versus-size curve", memory_bound),
        Family("collective", "collectives: latency + size / bandwidth per level", collectives),
        Family("overhead", "host-side overhead per launched op", overhead),
    )
}

#: Lognormal spread of an uncalibrated family's times: Lin et al. report kernel models within 10% geomean
#: error (perf_models.md 7), i.e. a one-sigma log error of about 0.05.
DEFAULT_SIGMA_REL = 0.05
DEFAULT_SIGMA_BASIS = "Lin et al. (arXiv 2201.07821): kernel models within 10% geomean error -> sigma 0.05"

#: Measurement environments and the profile kinds they may calibrate (ROCm builds of torch report cuda).
DEVICE_KIND_PROFILES = {"cpu": ("cpu",), "cuda": ("gpu", "accelerator")}

CALIBRATION_STATUSES = ("measured", "datasheet")
#: The largest per-kernel log spread a calibration may carry: exp(5), about 150x, is no longer a spread
#: around a model but a fit that does not describe its measurements (calibrate refuses it, naming them).
MAX_SIGMA_REL = 5.0


#: On a GPU a kernel's own fixed cost is the device-side part of a launch: Lin et al. charge 10 us of
#: host time per launch and 5 us of GPU overhead per kernel (perf_models.md 1), so the per-kernel fixed
#: costs below default to this share of ``efficiency.kernel_launch_s`` there; the host's part is
#: ``overhead.host_overhead_s`` on the host timeline. On a CPU the host runs the kernel itself: the
#: whole launch.
GPU_KERNEL_SHARE = 0.5
#: The per-kernel fixed costs (device side on a GPU) that default to a launch.
KERNEL_FIXED_COSTS = {"gemm": ("fixed_s",), "embedding": ("fixed_s", "backward_fixed_s"),
                      "interaction": ("fixed_s",), "memory": ("fixed_s", "optimizer_launch_s")}


# ------------------------------------------------------------------------------------------ parameters
def default_parameters(profile: HardwareProfile) -> dict[str, dict[str, float]]:
    """Datasheet-default parameters of every family for ``profile`` (from its ``efficiency`` section);
    on a GPU the per-kernel fixed costs are :data:`GPU_KERNEL_SHARE` of a launch."""
    out = {name: {k: s.default for k, s in fam.param_specs(profile.efficiency).items()}
           for name, fam in FAMILIES.items()}
    if profile.kind != "cpu":
        for family, names in KERNEL_FIXED_COSTS.items():
            for name in names:
                out[family][name] *= GPU_KERNEL_SHARE
    return out


def resolved_parameters(profile: HardwareProfile) -> tuple[dict[str, dict[str, float]], dict[str, float],
                                                           dict[str, str]]:
    """Parameters, lognormal sigma and status (``measured``/``datasheet``) per family for ``profile``."""
    params = default_parameters(profile)
    sigma = {name: DEFAULT_SIGMA_REL for name in FAMILIES}
    status = {name: "datasheet" for name in FAMILIES}
    families = (profile.calibration or {}).get("families") or {}
    for name, entry in families.items():
        if name not in FAMILIES or not isinstance(entry, Mapping):
            continue
        if entry.get("status") != "measured":
            continue
        status[name] = "measured"
        for key, value in (entry.get("params") or {}).items():
            if key in params[name] and isinstance(value, Mapping):
                params[name][key] = float(value["value"])
        if isinstance(entry.get("sigma_rel"), (int, float)):
            sigma[name] = float(entry["sigma_rel"])
    return params, sigma, status


# ------------------------------------------------------------------------------------------ cost model
class AnalyticCostModel:
    """Predicts op times on one profile from the family formulas; memoised by op (ops are frozen records).

    ``serial_host`` is true on CPUs: host and device are the same threads, so an op's ``time_s`` already
    includes its dispatch and a simulator should not overlap the host timeline with it.
    """

    __slots__ = ("_cache", "_cold_share", "_host_s", "figures", "params", "profile_name", "serial_host",
                 "sigma", "status")

    def __init__(self, profile: HardwareProfile, params: Mapping[str, Mapping[str, float]] | None = None,
                 sigma: Mapping[str, float] | None = None) -> None:
        resolved, resolved_sigma, status = resolved_parameters(profile)
        if params is not None:
            for name, values in params.items():
                resolved.setdefault(name, {}).update(values)
        if sigma is not None:
            resolved_sigma.update(sigma)
        self.profile_name = profile.name
        self.figures: DeviceFigures = device_figures(profile)
        self.params: dict[str, dict[str, float]] = resolved
        self.sigma: dict[str, float] = resolved_sigma
        self.status: dict[str, str] = status
        self.serial_host: bool = profile.kind == "cpu"
        self._host_s = float(resolved["overhead"]["host_overhead_s"])
        self._cold_share = float(resolved["overhead"].get("cold_dispatch_share", 1.0))
        self._cache: dict[Op, Estimate] = {}

    def host_overhead_s(self) -> float:
        """Host-side time to launch one op (framework dispatch + driver), in seconds."""
        return self._host_s

    def cold_dispatch_share(self) -> float:
        """Share of :meth:`host_overhead_s` an op whose bench timing holds its host work still adds per
        launch in a step (its code running cold), a fraction."""
        return self._cold_share

    def sparse_step_call_s(self) -> float:
        """Host-side time of the sparse optimizer's step() call around the tables' updates, in seconds."""
        return float(self.params["embedding"].get("step_call_s", 0.0))

    def backward_start_s(self) -> float:
        """Host-side time to start one backward pass (autograd engine set-up), in seconds."""
        return float(self.params["overhead"].get("backward_start_s", 0.0))

    def predict(self, op: Op) -> Estimate:
        """Estimated device time of ``op`` in seconds, with spread, launches, family and parts."""
        hit = self._cache.get(op)
        if hit is not None:
            return hit
        kind = type(op)
        if kind is GemmOp:
            est = self._gemm(op)  # type: ignore[arg-type]
        elif kind is EmbeddingOp:
            est = self._embedding(op)  # type: ignore[arg-type]
        elif kind is InteractionOp:
            est = self._interaction(op)  # type: ignore[arg-type]
        elif kind is MemoryOp:
            est = self._memory(op)  # type: ignore[arg-type]
        elif kind is CollectiveOp:
            est = self._collective(op)  # type: ignore[arg-type]
        else:
            raise TypeError(f"no cost model for {kind.__name__}")
        self._cache[op] = est
        return est

    def _gemm(self, op: GemmOp) -> Estimate:
        total, compute_s, memory_s = gemm.gemm_time_s(self.params["gemm"], self.figures, op.m, op.n, op.k,
                                                      op.precision, op.transposed_a, op.context_bytes)
        parts = {"fixed_s": gemm.fixed_s(self.params["gemm"], op.precision), "compute_s": compute_s,
                 "memory_s": memory_s}
        return Estimate(total, self.sigma["gemm"], 1, "gemm", parts)

    def _embedding(self, op: EmbeddingOp) -> Estimate:
        total, parts = embedding.embedding_time_s(
            self.params["embedding"], self.figures, op.rows, op.dim, op.pooling, op.batch, op.elem_bytes,
            op.phase, op.optimizer, op.zipf_exponent, cache_share=op.cache_share,
            evicted_bytes=op.evicted_bytes)
        # on a CPU the bench times a backward + update through autograd and the optimizer's Python loop
        return Estimate(total, self.sigma["embedding"], embedding.launches_for(op.phase, op.optimizer),
                        "embedding", parts, host_in_bench=self.serial_host and op.phase != "forward")

    def embedding_cache_shares(self, ops: list[EmbeddingOp], other_bytes: float = 0.0) -> list[float]:
        """The cache share of each table of ``ops`` (one op per table) when one step looks them all up
        and also touches ``other_bytes`` of dense working data (see :func:`embedding.cache_shares`)."""
        tables = [(float(op.rows), int(op.dim), int(op.elem_bytes), float(op.batch * op.pooling))
                  for op in ops]
        return embedding.cache_shares(self.params["embedding"], self.figures, tables, other_bytes)

    def embedding_evicted_bytes(self, ops: list[EmbeddingOp], other_bytes: float = 0.0) -> list[float]:
        """Bytes a step touches between each table's forward and its update (one op per table of ``ops``),
        with ``other_bytes`` of dense working data (see :func:`embedding.evicted_between`)."""
        return embedding.evicted_between(self.figures, _lookup_tables(ops), other_bytes)

    def embedding_step_bytes(self, ops: list[EmbeddingOp]) -> float:
        """Distinct bytes of rows a step's lookups read on a device (one forward op per table of ``ops``, at
        the access granularity): the embedding data that competes with the dense ops for the cache."""
        return embedding.step_read_bytes(self.figures, _lookup_tables(ops))

    def _interaction(self, op: InteractionOp) -> Estimate:
        total, parts = interaction.dot_interaction_time_s(
            self.params["interaction"], self.params["gemm"], self.figures, op.batch, op.features, op.dim,
            op.precision, op.phase, op.context_bytes)
        launches = interaction.DOT_LAUNCHES["forward" if op.phase == "forward" else "backward"]
        return Estimate(total, self.sigma["interaction"], launches, "interaction", parts)

    def _memory(self, op: MemoryOp) -> Estimate:
        total, parts = memory_bound.memory_time_s(self.params["memory"], self.figures, op.kind, op.bytes,
                                                  op.optimizer, elem_bytes=op.elem_bytes,
                                                  context_bytes=op.context_bytes)
        return Estimate(total, self.sigma["memory"], memory_bound.launches_for(op.kind, op.optimizer),
                        "memory", parts)

    def _collective(self, op: CollectiveOp) -> Estimate:
        total, parts = collectives.collective_time_s(self.params["collective"], self.figures, op.kind,
                                                     op.bytes, op.ranks, op.ranks_per_node)
        return Estimate(total, self.sigma["collective"], 1 if op.ranks > 1 else 0, "collective", parts)

    def predict_dcn_layer(self, batch: int, width: int, low_rank: int, precision: str,
                          phase: str) -> Estimate:
        """Estimated time of one DCN cross layer (its GEMMs plus element-wise work) in seconds."""
        key = ("dcn", batch, width, low_rank, precision, phase)
        hit = self._cache.get(key)  # type: ignore[call-overload]
        if hit is not None:
            return hit
        total, launches = interaction.dcn_cross_time_s(self.params["interaction"], self.params["gemm"],
                                                       self.figures, batch, width, low_rank, precision, phase)
        est = Estimate(total, self.sigma["interaction"], launches, "interaction", {})
        self._cache[key] = est  # type: ignore[index]
        return est


def _lookup_tables(ops: list[EmbeddingOp]) -> list[tuple[float, int, int, float, float]]:
    """``(rows, dim, elem_bytes, lookups, zipf_exponent)`` of each table's op, as the embedding module's
    step-level functions take them."""
    return [(float(op.rows), int(op.dim), int(op.elem_bytes), float(op.batch * op.pooling),
             float(op.zipf_exponent)) for op in ops]


def build_cost_model(profile: HardwareProfile) -> AnalyticCostModel:
    """The cost model of ``profile``: datasheet defaults, replaced by fitted parameters where calibrated."""
    return AnalyticCostModel(profile)


def elem_bytes(precision: str) -> int:
    """Bytes per element of a precision name (fp32 4, bf16/fp16 2, fp8 1)."""
    return ELEM_BYTES.get(precision, 4)


# ------------------------------------------------------------------------------------- device matching
_MODEL_TOKEN = re.compile(r"(gb200|gb300|b200|b300|h200|h100|a100|v100|mi\d{3}x?|gaudi\s?\d|tpu\s?v\d\w?)")


def device_mismatch(profile: HardwareProfile, device_kind: str, device_name: str,
                    memory_bytes: float | None = None) -> str | None:
    """Why measurements from ``device_name`` (``device_kind`` cpu|cuda) cannot calibrate ``profile``, or None.

    Rule: cpu measurements calibrate only ``kind: cpu`` profiles; cuda measurements only gpu/accelerator
    profiles whose name carries the device's model token (h100, a100, mi300x, ...), PCIe only with PCIe,
    and, when the memory size is known, whose ``device.hbm_bytes`` is within 15% of it (A100 40 vs 80 GB).
    """
    allowed = DEVICE_KIND_PROFILES.get(device_kind)
    if allowed is None:
        return f"unknown device kind {device_kind!r} (expected cpu or cuda)"
    if profile.kind not in allowed:
        return (f"measured on a {device_kind} device ({device_name}) but profile {profile.name} is kind "
                f"{profile.kind}")
    if device_kind == "cpu":
        return None
    match = _MODEL_TOKEN.search(device_name.lower())
    if match is None:
        return f"cannot tell which profile device {device_name!r} is (no known model name in it)"
    token = match.group(1).replace(" ", "")
    name = profile.name.lower()
    if not name.startswith(token):
        return f"measured on {device_name!r} ({token}) but profile {profile.name} is another device"
    if ("pcie" in device_name.lower()) != ("pcie" in name):
        return f"measured on {device_name!r} but profile {profile.name} differs in PCIe/SXM form factor"
    if memory_bytes and abs(memory_bytes / float(profile.device.hbm_bytes) - 1.0) > 0.15:
        return (f"measured device has {memory_bytes / 1e9:.0f} GB but profile {profile.name} has "
                f"{float(profile.device.hbm_bytes) / 1e9:.0f} GB")
    return None


# ------------------------------------------------------------------------------------------ validation
def _require(cond: bool, problem: str, file: str | None, field: str) -> None:
    if not cond:
        raise InputError(problem, file=file, field=field)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def validate_calibration(profile: Any, file: str | None = None) -> None:
    """Check a profile's ``calibration`` block: structure, known families and parameters, bounds, device.

    Raises ``InputError`` naming ``calibration.<path>`` for the first problem found.
    """
    cal = profile.calibration
    _require(isinstance(cal, dict), "calibration must be a mapping", file, "calibration")
    for key in ("device_name", "device_kind"):
        _require(isinstance(cal.get(key), str) and cal.get(key), "required text field is missing", file,
                 f"calibration.{key}")
    kind = cal["device_kind"]
    _require(kind in DEVICE_KIND_PROFILES, "must be cpu or cuda", file, "calibration.device_kind")
    _require(profile.kind in DEVICE_KIND_PROFILES[kind],
             f"calibration was measured on a {kind} device but the profile is kind {profile.kind}",
             file, "calibration.device_kind")
    if profile.derived_from is None:
        reason = device_mismatch(profile, kind, cal["device_name"], None)
        _require(reason is None, f"calibration is for another device: {reason}", file,
                 "calibration.device_name")
    measured = cal.get("measured")
    if measured is not None:
        _require(isinstance(measured, dict), "must be a mapping", file, "calibration.measured")
        files = measured.get("files", [])
        _require(isinstance(files, list), "must be a list", file, "calibration.measured.files")
        for i, entry in enumerate(files):
            where = f"calibration.measured.files[{i}]"
            _require(isinstance(entry, dict), "must be a mapping with path and sha256", file, where)
            digest = entry.get("sha256")
            _require(isinstance(digest, str) and re.fullmatch(r"[0-9a-f]{64}", digest) is not None,
                     "must be a 64-digit lowercase hex SHA-256", file, f"{where}.sha256")
            _require(isinstance(entry.get("path"), str), "must be text", file, f"{where}.path")
    families = cal.get("families")
    _require(isinstance(families, dict), "must be a mapping of family -> fit", file, "calibration.families")
    for name, entry in families.items():
        where = f"calibration.families.{name}"
        _require(name in FAMILIES, f"unknown family (known: {', '.join(FAMILIES)})", file, where)
        _require(isinstance(entry, dict), "must be a mapping", file, where)
        _require(entry.get("status") in CALIBRATION_STATUSES,
                 f"status must be one of {', '.join(CALIBRATION_STATUSES)}", file, f"{where}.status")
        specs = FAMILIES[name].param_specs(profile.efficiency)
        params = entry.get("params", {})
        _require(isinstance(params, dict), "must be a mapping of name -> {value, stderr}", file,
                 f"{where}.params")
        for key, value in params.items():
            pwhere = f"{where}.params.{key}"
            _require(key in specs, f"unknown parameter (known: {', '.join(specs)})", file, pwhere)
            _require(isinstance(value, dict) and _finite(value.get("value")),
                     "must be a mapping with a finite number 'value'", file, pwhere)
            spec = specs[key]
            _require(spec.lower <= value["value"] <= spec.upper,
                     f"value {value['value']!r} outside [{spec.lower:g}, {spec.upper:g}] {spec.unit}", file,
                     f"{pwhere}.value")
            stderr = value.get("stderr")
            _require(stderr is None or (_finite(stderr) and stderr >= 0),
                     "must be a non-negative number or null", file, f"{pwhere}.stderr")
        sigma = entry.get("sigma_rel")
        _require(sigma is None or (_finite(sigma) and 0 <= sigma <= MAX_SIGMA_REL),
                 f"must be a number in [0, {MAX_SIGMA_REL:g}]", file, f"{where}.sigma_rel")
        cv = entry.get("cv")
        if cv is not None:
            _require(isinstance(cv, dict), "must be a mapping", file, f"{where}.cv")
            for key in ("median_abs_pct_err", "p90_abs_pct_err", "repeat_median_pct"):
                _require(cv.get(key) is None or (_finite(cv.get(key)) and cv[key] >= 0),
                         "must be a non-negative number", file, f"{where}.cv.{key}")
            _require(isinstance(cv.get("cases", 0), int) and cv.get("cases", 0) >= 0,
                     "must be a non-negative integer", file, f"{where}.cv.cases")


# --------------------------------------------------------------------------------------- figure status
def figure_status(profile: HardwareProfile) -> dict[str, str]:
    """Where each figure of ``profile`` comes from: ``measured``, ``transferred``, ``datasheet``, ...

    Keys are dotted paths of every numeric figure (``device.hbm_bytes``) plus one ``calibration.<family>``
    per cost-model family. In a profile derived from a calibrated one, fitted figures and families are
    ``transferred`` (their fractions now apply to the derived device's datasheet figures).
    """
    from dataclasses import asdict

    from planner.hardware import figure_source, numeric_paths

    derived = profile.derived_from is not None
    out: dict[str, str] = {}
    for path in numeric_paths(asdict(profile)):
        found = figure_source(profile, path)
        status = found[1].status if found is not None else "unverified"
        if derived and status == "measured":
            status = "transferred"
        out[path] = status
    for key, source in profile.figures.items():  # group entries such as efficiency.<family>
        if key not in out:
            out[key] = "transferred" if derived and source.status == "measured" else source.status
    _params, _sigma, fam_status = resolved_parameters(profile)
    for name, status in fam_status.items():
        if status == "measured" and derived:
            status = "transferred"
        out[f"calibration.{name}"] = status
    return out
