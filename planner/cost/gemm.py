"""GEMM cost model: a roofline on the dtype's peak with tile and wave quantisation, plus a fixed launch cost.

Following NeuSight (perf_models.md 3), the output is cut into ``tile`` blocks, one per compute unit at a
time; the device runs ``waves = ceil(tiles / units)`` waves, each as long as one full tile, so small or
oddly shaped GEMMs pay for the idle part of the last wave and for padded tiles. On GPUs a small output
gets a smaller tile with several resident per unit (:func:`planner.cost.params.gemm_tiling`). A short
inner dimension ``k`` lowers the efficiency further (``k / (k + k_half)``: prologue and epilogue of each
tile are not amortised; on GPUs ``k_half`` is of the tensor-core rate and shrinks with a slower dtype's,
:func:`k_half_for`), which is what makes tall-skinny DLRM layers reach only 0.3-0.5 of peak
(hardware.md 4.1).
Memory traffic bounds the time from below (roofline); the operands' working set is served by the cache
as far as the memory family's capacity-miss curve says (``hit``, :func:`planner.cost.params.cache_hit`,
with the memory family's fitted cache parameters), and an output written beyond the cache costs
``output_write_cost`` times its bytes (write-allocate traffic; on this project's CPU also the page faults
MKL takes on its fresh buffers: an addmm into a new 16 MB output took 780 faults and 2.1 ms, into a
preallocated one 1.3 ms)::

    compute_s = 2 * waves * units * tile_m * tile_n * k / (peak[dtype] * peak_fraction * k / (k + k_half))
    memory_s  = ((m*k + k*n) * (hit / cache_ratio + 1 - hit)
                 + m*n * (hit / cache_ratio + (1 - hit) * output_write_cost)) * elem / (bw * bw_fraction)
    miss_s    = (1 - hit) * (m*k + k*n + m*n * output_write_cost) * elem / (bw * bw_fraction)
    time_s    = fixed + max(compute_s + exposed_stream * miss_s, memory_s) + fault_s
    fixed     = fixed_s, plus low_precision_fixed_s for a bf16, fp16 or fp8 call

The roofline alone overlaps all memory traffic with compute. ``exposed_stream`` is the share of the
traffic beyond the cache that is not hidden (a CPU BLAS packs the operands it reads from memory in a
phase of its own before its compute kernel runs; about 0 on GPUs, whose loads stream under the math): on
this project's 2-core CPU a 512 -> 32 Linear at batch 8192 (a 16 MiB input) took 2.3-3.4 ms against 1.4
ms of compute, the same layer at batch 1024 ran at compute speed; quick benches fitted 1.9-3.0.

On a CPU an output of at least 32 MiB (glibc's largest mmap threshold) is mapped afresh on every call
and its first touch pays ``page_fault_s`` per 4 KiB page (``fault_s``), as the embedding and collective
families price their large buffers (an input gradient of 8192 x 1024 fp32, 32 MiB, took 14.5 ms where
a 16 MiB one of the same inner dimension took 2.2 ms; fitted 1.1 us per page on a GEMM-only bench).

A tile only partly inside the output (``n`` not a multiple of ``tile_n``, or ``m`` of ``tile_m``) costs
``edge_slowdown`` full tiles: CPU BLAS libraries run such edges with a slower remainder kernel (on this
project's 2-core CPU a weight gradient with 13 columns took 1.6 times as long as one with 16; GPU
libraries shrink the tile instead, so 1 there).

Two shapes leave the tile picture. A CPU fp32 product (tf32 too, which a CPU computes in fp32) whose
first operand is read transposed (an ``nn.Linear`` weight gradient dYᵀ X, m = outputs, k = samples)
with 2 to 11 columns (:data:`planner.cost.params.CPU_NARROW_COLUMNS`: a layer on a handful of dense
features) runs in a narrow kernel of the BLAS, not its packed one: its time follows the operands'
bytes, not the columns, at ``narrow_fraction`` of the rates the cache and memory give a GEMM (measured
here: 6.9-9.6 ms for every width from 2 to 11 over a 16 MiB dY, 2.4 ms at 12 columns; the fit found
about a tenth). That kernel has no packing phase of its own, so ``exposed_stream`` does not apply to it::

    narrow_s = fixed + max(compute_s, (cached_s + miss_s) / narrow_fraction) + fault_s

A matrix-vector product (``m`` or ``n`` of 1) has no tiles: it streams the matrix once, its traffic
beyond the cache at ``gemv_fraction`` of the memory rate (a CPU library runs it on fewer threads than a
GEMM, and fewer threads keep fewer misses in flight: 8-11 GB/s here where a copy streams 32 GB/s),
what the cache serves at the cache's rate (a logit layer over a 2 MiB input ran at 44 GB/s)::

    gemv_s = max(2*m*n*k / (peak * eff), ((m*k + k*n) * (hit / cache_ratio + (1 - hit) / gemv_fraction)
                 + m*n * (hit / cache_ratio + (1 - hit) * output_write_cost / gemv_fraction))
                 * elem_bytes / (bw * bandwidth_fraction))

A GPU output of fewer tiles than the device holds splits its inner dimension over the idle units and
reduces the partial outputs (:func:`_split_k`: the library's split-K and stream-K kernels; a 512 x 4
weight gradient over a batch of 8192 on an H100 fills 4 of its 1,056 small-tile slots unsplit, and would
take 0.7 ms where its bytes take 5 us); the split taken is the fastest of those the units allow.

An ``nn.Linear`` backward is two GEMMs (:func:`gradient_gemms_s`: input gradient m x k over n, weight
gradient n x k over m, its first operand transposed) and the bias gradient, a column sum of the m x n
output gradient priced as memory traffic (three launches).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from planner.cost.params import (
    CPU_NARROW_COLUMNS,
    ELEM_BYTES,
    FRESH_MAPPING_BYTES,
    PAGE_BYTES,
    DeviceFigures,
    ParamSpec,
    cache_hit,
    cache_hits,
    cache_specs,
    ceil_div,
    fresh_mapping_fault_s,
    gemm_tiling,
    launch_basis,
    page_fault_spec,
)
from planner.model import EfficiencySpec

FAMILY = "gemm"
DTYPES = ("fp32", "tf32", "bf16", "fp16", "fp8")
#: Dtypes whose GEMM calls pay ``low_precision_fixed_s`` on top of ``fixed_s``.
LOW_PRECISION = ("bf16", "fp16", "fp8")


def param_specs(efficiency: EfficiencySpec) -> dict[str, ParamSpec]:
    """The GEMM parameters with their datasheet defaults (from the profile's ``efficiency``)."""
    frac = float(efficiency.gemm_peak_fraction)
    hbm = float(efficiency.hbm_fraction)
    launch = float(efficiency.kernel_launch_s)
    specs = {
        f"peak_fraction_{d}": ParamSpec(
            f"peak_fraction_{d}", frac,
            "efficiency.gemm_peak_fraction (large-GEMM fraction of the dtype's dense peak, hardware.md 4.1)",
            1e-5, 4.0, "fraction of device.peak_flops[dtype] (or of the fallback dtype's peak)")
        for d in DTYPES
    }
    specs["k_half"] = ParamSpec(
        "k_half", 128.0,
        "inner dimension at which a tile reaches half its large-k efficiency; 128 reproduces the A100 "
        "skinny-GEMM drop 0.82 -> 0.51 of peak at an inner dimension of 192 (hardware.md 4.1 [S63])",
        1.0, 1e5, "elements")
    specs["bandwidth_fraction"] = ParamSpec(
        "bandwidth_fraction", hbm, "efficiency.hbm_fraction (STREAM-like fraction, hardware.md 4.2)",
        1e-5, 1.5, "fraction of device.hbm_bandwidth_bytes_per_s")
    specs.update(cache_specs(efficiency))
    specs["output_write_cost"] = ParamSpec(
        "output_write_cost", 1.0,
        "assumed 1: an output written beyond the cache streams at the memory rate; fitted where measured",
        0.5, 50.0, "x output bytes at the memory rate")
    specs["page_fault_s"] = page_fault_spec()
    specs["low_precision_fixed_s"] = ParamSpec(
        "low_precision_fixed_s", 0.2 * launch,
        "set-up a bf16, fp16 or fp8 GEMM call adds to fixed_s (CPU BLAS libraries convert and reorder the "
        "operands into their blocked low-precision layout on every call; quick benches here fitted "
        "19-29 us); where not measured 0.2 x efficiency.kernel_launch_s, a small assumed value the fit can "
        "move (GPU libraries run low precision natively: little beyond the launch)", 1e-9, 1e-3, "s per call")
    specs["exposed_stream"] = ParamSpec(
        "exposed_stream", 0.05,
        "assumed 0.05, close to the roofline (operand traffic hidden behind compute, as NeuSight assumes for "
        "GPUs; not 0, so a fit can find it); fitted where measured: a CPU BLAS packs the operands it reads "
        "from memory in a phase of its own", 1e-3, 50.0,
        "x the out-of-cache traffic's time at the memory rate, added to compute")
    specs["edge_slowdown"] = ParamSpec(
        "edge_slowdown", 1.0,
        "assumed 1: a partial output tile costs one full tile (padding only); fitted where measured",
        1.0, 50.0, "x one full tile's time")
    specs["gemv_fraction"] = ParamSpec(
        "gemv_fraction", 1.0,
        "assumed 1: a matrix-vector product streams at the GEMM's memory rate; fitted where measured",
        1e-3, 10.0, "fraction of bandwidth_fraction x memory bandwidth")
    specs["narrow_fraction"] = ParamSpec(
        "narrow_fraction", 1.0,
        "assumed 1: a narrow transposed product (a CPU weight gradient of 2-11 columns) streams at the "
        "GEMM's cache and memory rates, without the packed kernel's exposed stream; fitted where measured",
        1e-3, 10.0,
        "fraction of the GEMM's cache and memory rates")
    specs["backward_call_s"] = ParamSpec(
        "backward_call_s", 4.0 * launch,
        "the bench times a backward as one torch.autograd.grad call, which starts the autograd engine "
        "besides launching the kernels; 4 x efficiency.kernel_launch_s (assumed, as "
        "overhead.backward_start_s; fitted where measured). Only the bench's backward cases pay it: the "
        "step model starts the engine once per step (overhead.backward_start_s)",
        1e-8, 1e-2, "s per backward call")
    specs["fixed_s"] = ParamSpec("fixed_s", launch, launch_basis(), 1e-8, 1e-2, "s per launch")
    return specs


def k_half_for(k_half: float, fig: DeviceFigures, precision: str) -> float:
    """The inner dimension at which a ``precision`` tile reaches half its efficiency: on a GPU ``k_half``
    is of the fp16/bf16 tensor-core rate it was measured at (hardware.md 4.1 [S63], cuBLASLt fp16) and a
    tile's fill and drain take a fixed time, so a dtype computing ``r`` times slower amortises it over
    ``r`` times fewer ``k`` (fp32 on an H100's CUDA cores: 128 x 66.9 / 989 = 8.7); a CPU's is fitted per
    device as it is."""
    if fig.kind == "cpu":
        return k_half
    reference = max(fig.peak_for("bf16"), fig.peak_for("fp16"))
    return k_half * min(1.0, fig.peak_for(precision) / reference) if reference > 0 else k_half


def fixed_s(p: Mapping[str, float], precision: str) -> float:
    """Fixed cost of one GEMM call in seconds: ``fixed_s``, plus ``low_precision_fixed_s`` for a bf16,
    fp16 or fp8 one."""
    return p["fixed_s"] + (p.get("low_precision_fixed_s", 0.0) if precision in LOW_PRECISION else 0.0)


def gemm_time_s(p: Mapping[str, float], fig: DeviceFigures, m: int, n: int, k: int,
                precision: str, transposed_a: bool = False,
                context_bytes: float = 0.0) -> tuple[float, float, float]:
    """Time of one GEMM C[m,n] = op(A)[m,k] B[k,n] in seconds, as ``(total, compute_s, memory_s)``.

    ``transposed_a`` says A is read transposed (a weight gradient dYᵀ X); it changes the price only where
    :func:`is_narrow_product` holds (a CPU, fp32 or tf32, 2 to 11 columns). ``context_bytes`` of other
    data share the cache with the operands (a training step's: the capacity-miss curve is read at the
    operands' bytes plus these).
    """
    fixed = fixed_s(p, precision)
    if m <= 0 or n <= 0 or k <= 0:
        return fixed, 0.0, 0.0
    frac = p.get(f"peak_fraction_{precision}", p.get("peak_fraction_fp32", 0.5))
    k_half = k_half_for(p["k_half"], fig, precision)
    eff = frac * k / (k + k_half)
    elem = ELEM_BYTES.get(precision, 4)
    bandwidth = fig.memory_bandwidth_bytes_per_s * p["bandwidth_fraction"]
    operand_bytes, output_bytes = (m * k + k * n) * elem, m * n * elem
    hit = cache_hit(p, fig, operand_bytes + output_bytes + context_bytes)
    # what the cache serves runs at its rate; the rest streams from memory, outputs at output_write_cost
    cached_s = hit * (operand_bytes + output_bytes) / p.get("cache_bandwidth_ratio", 1.0) / bandwidth
    miss_s = (1.0 - hit) * (operand_bytes + output_bytes * p.get("output_write_cost", 1.0)) / bandwidth
    fault_s = fresh_mapping_fault_s(p, fig, output_bytes)
    if min(m, n) == 1:  # matrix-vector product
        compute_s = 2.0 * m * n * k / (fig.peak_for(precision) * eff)
        # its fewer threads reach only gemv_fraction of the memory rate; what the cache serves they
        # read at the cache's rate all the same
        memory_s = cached_s + miss_s / p.get("gemv_fraction", 1.0)
        return fixed + max(compute_s, memory_s) + fault_s, compute_s, memory_s
    memory_s = cached_s + miss_s
    tile_m, tile_n, resident = gemm_tiling(fig, m, n)
    units = fig.compute_units * resident
    tiles = ceil_div(m, tile_m) * ceil_div(n, tile_n)
    edges = tiles - (m // tile_m) * (n // tile_n)
    # the edge tiles' extra time spreads over the units (and keeps the time smooth in edge_slowdown)
    waves = ceil_div(tiles, units) + edges * (p.get("edge_slowdown", 1.0) - 1.0) / units
    compute_s = 2.0 * waves * units * tile_m * tile_n * k / (fig.peak_for(precision) * eff)
    if transposed_a and is_narrow_product(fig, n, precision):
        memory_s = memory_s / p.get("narrow_fraction", 1.0)
        return fixed + max(compute_s, memory_s) + fault_s, compute_s, memory_s
    exposed_s = p.get("exposed_stream", 0.0) * miss_s
    total = fixed + max(compute_s + exposed_s, memory_s) + fault_s
    if fig.kind != "cpu" and tiles < units:
        split = _split_k(p, fig, m, n, k, precision, frac, k_half, tile_m * tile_n, tiles, units,
                         fixed, exposed_s, memory_s)
        if split is not None and split[0] < total:
            total, compute_s = split
    return total, compute_s, memory_s


def _split_k(p: Mapping[str, float], fig: DeviceFigures, m: int, n: int, k: int, precision: str,
             frac: float, k_half: float, tile_area: int, tiles: int, units: int, fixed: float,
             exposed_s: float, memory_s: float) -> tuple[float, float] | None:
    """The fastest split of the inner dimension over the units a GPU output's tiles leave idle, as
    ``(total, compute_s)`` in seconds, or None where ``k`` cannot be split.

    GPU libraries cut ``k`` into ``s`` slices run by ``s`` times as many thread blocks and reduce the
    partial outputs afterwards (CUTLASS's ``GemmSplitKParallel``, cuBLAS's split-K and stream-K
    kernels), so a weight gradient of a few hundred outputs over a batch of thousands does not run on
    a handful of SMs. Each slice pays the short-``k`` efficiency over ``k / s``; the reduction writes and
    reads ``s`` fp32 partial outputs and writes the result, one more launch. The library is taken to
    pick the fastest ``s`` up to ``units / tiles`` (powers of two and that bound).
    """
    peak = fig.peak_for(precision)
    bandwidth = fig.memory_bandwidth_bytes_per_s * p["bandwidth_fraction"]
    out_bytes = m * n * ELEM_BYTES.get(precision, 4)
    bound = units // tiles
    splits = {bound} | {1 << e for e in range(1, bound.bit_length())}
    best: tuple[float, float] | None = None
    for s in sorted(splits):
        if s < 2 or k < s:
            continue
        slice_k = k / s
        slice_compute = 2.0 * ceil_div(tiles * s, units) * units * tile_area * slice_k / (
            peak * frac * slice_k / (slice_k + k_half))
        reduce_s = p["fixed_s"] + (2.0 * s * m * n * 4 + out_bytes) / bandwidth
        candidate = (fixed + max(slice_compute + exposed_s, memory_s) + reduce_s, slice_compute)
        if best is None or candidate[0] < best[0]:
            best = candidate
    return best


def is_narrow_product(fig: DeviceFigures, n: int, precision: str) -> bool:
    """True where a product with a transposed first operand and ``n`` columns runs in a CPU BLAS's narrow
    kernel (fp32 or tf32 on a CPU, ``n`` within :data:`planner.cost.params.CPU_NARROW_COLUMNS`)."""
    lo, hi = CPU_NARROW_COLUMNS
    return fig.kind == "cpu" and precision in ("fp32", "tf32") and lo <= n <= hi


def gradient_gemms_s(p: Mapping[str, float], fig: DeviceFigures, batch: int, in_features: int,
                     out_features: int, precision: str) -> tuple[float, float]:
    """Times of a layer's two gradient GEMMs in seconds, ``(input gradient, weight gradient)``: batch x in
    over out, and out x in over the batch with its first operand transposed (dYᵀ X)."""
    grad_input = gemm_time_s(p, fig, batch, in_features, out_features, precision)[0]
    grad_weight = gemm_time_s(p, fig, out_features, in_features, batch, precision, transposed_a=True)[0]
    return grad_input, grad_weight


def linear_time_s(p: Mapping[str, float], fig: DeviceFigures, batch: int, in_features: int,
                  out_features: int, precision: str, backward: bool) -> float:
    """Time of an ``nn.Linear`` forward (one GEMM) or backward (input and weight gradients) in seconds."""
    if not backward:
        return gemm_time_s(p, fig, batch, out_features, in_features, precision)[0]
    grad_input, grad_weight = gradient_gemms_s(p, fig, batch, in_features, out_features, precision)
    grad_bias = p["fixed_s"] + (batch * out_features * ELEM_BYTES.get(precision, 4)
                                / (fig.memory_bandwidth_bytes_per_s * p["bandwidth_fraction"]))
    return grad_input + grad_weight + grad_bias


#: Launches of an ``nn.Linear``: forward one fused addmm; backward two GEMMs and the bias-gradient sum.
LINEAR_LAUNCHES = {"forward": 1, "backward": 3}


@dataclass(frozen=True)
class GemmCalls:
    """The parameter-independent inputs of :func:`gemm_time_s` for many CPU GEMM calls, as arrays (one
    entry per call), each call belonging to one of ``owners`` ops whose times it adds to
    (:func:`gemm_call_times`)."""

    owner: np.ndarray
    owners: int
    m: np.ndarray
    n: np.ndarray
    k: np.ndarray
    precisions: tuple[str, ...]  # the distinct precisions; ``precision_index`` points into them
    precision_index: np.ndarray
    peak: np.ndarray  # peak_for(precision), FLOP/s
    low_precision: np.ndarray
    operand_bytes: np.ndarray
    output_bytes: np.ndarray
    fresh_bytes: np.ndarray  # an output mapped afresh per call (0 below FRESH_MAPPING_BYTES)
    matvec: np.ndarray
    narrow: np.ndarray  # a transposed product in the CPU BLAS's narrow kernel
    waves: np.ndarray  # ceil(tiles / units)
    edges_per_unit: np.ndarray  # partial tiles / units
    tile_work: float  # units x tile_m x tile_n


def gemm_calls(fig: DeviceFigures, calls: list[tuple[int, int, int, int, str, bool]], owners: int
               ) -> GemmCalls | None:
    """Pack ``(owner, m, n, k, precision, transposed_a)`` per call (the arguments of
    :func:`gemm_time_s`); None on a GPU, whose split-K choice stays per call."""
    if fig.kind != "cpu":
        return None
    m = np.array([float(c[1]) for c in calls])
    n = np.array([float(c[2]) for c in calls])
    k = np.array([float(c[3]) for c in calls])
    elem = np.array([float(ELEM_BYTES.get(c[4], 4)) for c in calls])
    tile_m, tile_n, resident = gemm_tiling(fig, 1, 1)  # a CPU's fixed register tile
    units = fig.compute_units * resident
    tiles = np.array([ceil_div(c[1], tile_m) * ceil_div(c[2], tile_n) for c in calls], dtype=float)
    whole = np.array([(c[1] // tile_m) * (c[2] // tile_n) for c in calls], dtype=float)
    output = m * n * elem
    distinct = tuple(sorted({c[4] for c in calls}))
    return GemmCalls(
        owner=np.array([c[0] for c in calls], dtype=np.int64), owners=owners, m=m, n=n, k=k,
        precisions=distinct,
        precision_index=np.array([distinct.index(c[4]) for c in calls], dtype=np.int64),
        peak=np.array([fig.peak_for(c[4]) for c in calls]),
        low_precision=np.array([c[4] in LOW_PRECISION for c in calls], dtype=bool),
        operand_bytes=(m * k + k * n) * elem, output_bytes=output,
        fresh_bytes=np.where(output >= FRESH_MAPPING_BYTES, output, 0.0),
        matvec=np.minimum(m, n) == 1,
        narrow=np.array([c[5] and is_narrow_product(fig, c[2], c[4]) for c in calls], dtype=bool),
        waves=np.array([ceil_div(t, units) for t in tiles], dtype=float),
        edges_per_unit=(tiles - whole) / units, tile_work=float(units * tile_m * tile_n))


def gemm_call_times(p: Mapping[str, float], fig: DeviceFigures, b: GemmCalls) -> np.ndarray:
    """The summed :func:`gemm_time_s` of each owner's calls in ``b`` in seconds (the same formulas, as
    arrays)."""
    fixed = p["fixed_s"] + np.where(b.low_precision, p.get("low_precision_fixed_s", 0.0), 0.0)
    frac = np.array([p.get(f"peak_fraction_{q}", p.get("peak_fraction_fp32", 0.5))
                     for q in b.precisions])[b.precision_index]
    eff = frac * b.k / (b.k + p["k_half"])
    bandwidth = fig.memory_bandwidth_bytes_per_s * p["bandwidth_fraction"]
    working = b.operand_bytes + b.output_bytes
    hit = cache_hits(p, fig, working)
    cached_s = hit * working / p.get("cache_bandwidth_ratio", 1.0) / bandwidth
    miss_s = (1.0 - hit) * (b.operand_bytes + b.output_bytes * p.get("output_write_cost", 1.0)) / bandwidth
    fault_s = b.fresh_bytes / PAGE_BYTES * p.get("page_fault_s", 0.0)
    memory_s = cached_s + miss_s
    with np.errstate(divide="ignore", invalid="ignore"):  # empty calls are priced at their fixed cost
        rate = b.peak * eff
        # matrix-vector products: no tiles, the memory rate at gemv_fraction
        mv_compute = 2.0 * b.m * b.n * b.k / rate
        waves = b.waves + b.edges_per_unit * (p.get("edge_slowdown", 1.0) - 1.0)
        compute_s = 2.0 * waves * b.tile_work * b.k / rate
    mv_total = fixed + np.maximum(mv_compute, cached_s + miss_s / p.get("gemv_fraction", 1.0)) + fault_s
    narrow_total = fixed + np.maximum(compute_s, memory_s / p.get("narrow_fraction", 1.0)) + fault_s
    tiled_total = fixed + np.maximum(compute_s + p.get("exposed_stream", 0.0) * miss_s, memory_s) + fault_s
    per_call = np.where(b.matvec, mv_total, np.where(b.narrow, narrow_total, tiled_total))
    per_call = np.where((b.m > 0) & (b.n > 0) & (b.k > 0), per_call, fixed)
    return np.bincount(b.owner, weights=per_call, minlength=b.owners)


@dataclass(frozen=True)
class LinearBatch:
    """The parameter-independent inputs of :func:`linear_time_s` for many CPU ``nn.Linear`` calls: their
    GEMMs (a forward has one, a backward two) and bias gradients, so a fit can price all its cases in
    one vectorised call (:func:`linear_times`)."""

    gemms: GemmCalls
    bias_bytes: np.ndarray  # per layer call: the bias gradient's read (0 for a forward)
    backward: np.ndarray  # per layer call


def linear_batch(fig: DeviceFigures, ops: list[tuple[int, int, int, str, bool]]) -> LinearBatch | None:
    """Pack ``(batch, in_features, out_features, precision, backward)`` per layer call (the arguments of
    :func:`linear_time_s`); None on a GPU, whose split-K choice stays per call."""
    calls: list[tuple[int, int, int, int, str, bool]] = []
    for i, (batch, fan_in, fan_out, precision, backward) in enumerate(ops):
        if backward:  # as gradient_gemms_s: input gradient, then the weight gradient dYᵀ X
            calls.append((i, batch, fan_in, fan_out, precision, False))
            calls.append((i, fan_out, fan_in, batch, precision, True))
        else:
            calls.append((i, batch, fan_out, fan_in, precision, False))
    gemms = gemm_calls(fig, calls, len(ops))
    if gemms is None:
        return None
    return LinearBatch(
        gemms=gemms,
        bias_bytes=np.array([float(o[0] * o[2] * ELEM_BYTES.get(o[3], 4)) if o[4] else 0.0 for o in ops]),
        backward=np.array([bool(o[4]) for o in ops], dtype=bool))


def linear_times(p: Mapping[str, float], fig: DeviceFigures, b: LinearBatch) -> np.ndarray:
    """:func:`linear_time_s` of every layer call in ``b`` in seconds (the same formulas, as arrays)."""
    bias = p["fixed_s"] + b.bias_bytes / (fig.memory_bandwidth_bytes_per_s * p["bandwidth_fraction"])
    return gemm_call_times(p, fig, b.gemms) + np.where(b.backward, bias, 0.0)
