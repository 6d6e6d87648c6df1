"""Interaction cost model: the dot interaction as batched small GEMMs, DCN cross layers as GEMMs.

Dot interaction over ``F`` feature vectors of width ``D`` per sample: a batched product ``Z Zᵀ`` (``B``
GEMMs of F x F over D), then the strictly lower triangle gathered (``P = B F (F-1)/2`` elements). The
batched product is priced like the GEMM family's kernels (:mod:`planner.cost.gemm`, same fitted peak
fraction and, on GPUs, output tile; its own inner-dimension half point ``batched_k_half``; on CPUs the
tile of :data:`planner.cost.params.CPU_BATCHED_TILE`, one row by four columns): each of the ``B``
matrices is cut into tiles, the ``B x tiles`` tiles run in waves over the compute units, and
``batched_efficiency`` (per dtype) scales the GEMM family's efficiency for these tiny matrices. Each
matrix also pays ``matrix_s`` of set-up (CPU libraries call a small GEMM per matrix; one GPU kernel
covers the batch, so it is tiny there). A CPU runs fp32 matrices of under 400 multiply-adds in PyTorch's
own scalar loop, priced per output element and multiply-add (:func:`batched_gemm_time_s`)::

    bmm_s    = max(2 * waves * units * tile_m * tile_n * k / (peak[dtype] * peak_fraction
                   * k / (k + batched_k_half) * batched_efficiency),
                   bmm bytes / bw) + B * matrix_s (CPU only)
    forward:  one bmm (F x F over k = D), then the gather of P elements:
              data = 2 P elem (read and write the triangle), index = P * gather_bytes_per_element
    backward: autograd's two bmm for dZ = G Z + (Zᵀ G)ᵀ (F x D over k = F, and D x F over k = F: an
              output F wide), the zeroed B F² gradient, the accumulating scatter and the add of the
              two halves of dZ: data = B F² elem + 2 P elem + 3 B F D elem,
              index = P * scatter_bytes_per_element
    gather_s = (data * rate(hit) / low_precision + index) / bw                 (2 and 5 launches)
    time_s   = launches * fixed_s + bmm_s + gather_s

where ``hit`` is the cache's share of the op's tensors (the product or its gradient, the triangle, and
in the backward Z's gradient halves) with ``context_bytes`` of other data beside them, ``rate`` the
memory-rate bytes per byte it leaves, and ``low_precision`` the memory family's ``low_precision_rate``
for 2-byte floats (1 for fp32).

A DCN cross layer ``x_{l+1} = x0 * (U (V x_l) + b) + x_l`` (low rank ``r``; full rank when ``r == 0``) is
priced as its GEMMs with the GEMM family's parameters plus its element-wise traffic at this family's
bandwidth and one fixed cost per element-wise launch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from planner.cost.gemm import (
    DTYPES,
    GemmCalls,
    gemm_call_times,
    gemm_calls,
    gemm_time_s,
    gradient_gemms_s,
    k_half_for,
)
from planner.cost.memory_bound import elementwise_rate
from planner.cost.params import (
    CPU_BATCHED_TILE,
    CPU_NAIVE_BMM_MACS,
    CPU_PARALLEL_GRAIN,
    ELEM_BYTES,
    DeviceFigures,
    ParamSpec,
    cache_hit,
    cache_hits,
    cache_specs,
    ceil_div,
    gemm_tiling,
    launch_basis,
    memory_rate_bytes,
)
from planner.model import EfficiencySpec

FAMILY = "interaction"

#: Launches of the PyTorch eager dot interaction (kernels/interaction.py): see the module docstring.
DOT_LAUNCHES = {"forward": 2, "backward": 5}
#: DCN element-wise launches per layer: forward (add bias, multiply by x0, add residual); backward the two
#: products of the multiply's gradient, the bias gradient's column sum and two adds that accumulate the
#: gradient of x (used three times when x0 is x_l: in the projection, the product and the residual).
DCN_ELEMENTWISE_LAUNCHES = {"forward": 3, "backward": 5}
#: DCN element-wise traffic per layer in units of B x width x elem, counted from those launches (forward:
#: read x0, h, x_l, write out plus bias; backward: 2 x 3 for the products, 1 for the sum, 2 x 3 for the adds).
DCN_ELEMENTWISE_BYTES = {"forward": 5.0, "backward": 13.0}


def param_specs(efficiency: EfficiencySpec) -> dict[str, ParamSpec]:
    """The interaction parameters with their datasheet defaults."""
    return {
        **{f"batched_efficiency_{d}": ParamSpec(
            f"batched_efficiency_{d}", 1.0,
            "1: a batched small GEMM runs its tiles as efficiently as the GEMM family's kernels (its tile "
            "and inner-dimension losses are already in the GEMM formula); fitted per dtype where measured, "
            "since "
            "libraries route tiny matrices of each dtype to different kernels", 1e-3, 10.0,
            "x the GEMM family's efficiency")
           for d in DTYPES},
        "batched_k_half": ParamSpec(
            "batched_k_half", 128.0,
            "as the GEMM family's k_half (128, hardware.md 4.1); fitted on its own where measured, since "
            "libraries run tiny batched matrices through other kernels than large GEMMs", 1.0, 1e5,
            "elements"),
        "matrix_s": ParamSpec(
            "matrix_s", 1e-9,
            "set-up per matrix of a batched GEMM: about nothing on GPUs (one kernel for the whole batch); "
            "CPU libraries loop over small GEMM calls (fitted where measured)", 1e-12, 1e-4,
            "s per matrix"),
        "naive_output_s": ParamSpec(
            "naive_output_s", 1e-9,
            "a few cycles of a 2-4 GHz core per output element of PyTorch's scalar batched-product loop "
            "(its set-up and store; CPUs only, matrices under params.CPU_NAIVE_BMM_MACS multiply-adds; "
            "fitted where measured)", 1e-12, 1e-5, "s per output element per core"),
        "naive_mac_s": ParamSpec(
            "naive_mac_s", 1e-9,
            "a dependent scalar multiply-add chain, about 4 cycles of a 2-4 GHz core per multiply-add, both "
            "operands read along the inner dimension (the forward's Z Zᵀ); CPUs only, fitted where measured",
            1e-12, 1e-5, "s per multiply-add per core"),
        "naive_strided_mac_s": ParamSpec(
            "naive_strided_mac_s", 1e-9,
            "as naive_mac_s, an operand read across rows (the backward's G Z and Zᵀ G: one load per row "
            "stride); CPUs only, fitted where measured", 1e-12, 1e-5, "s per multiply-add per core"),
        "bandwidth_fraction": ParamSpec(
            "bandwidth_fraction", float(efficiency.hbm_fraction),
            "efficiency.hbm_fraction (STREAM-like fraction, hardware.md 4.2)", 1e-5, 1.5,
            "fraction of device.hbm_bandwidth_bytes_per_s"),
        **cache_specs(efficiency),
        "low_precision_rate": ParamSpec(
            "low_precision_rate", 1.0,
            "the memory family's rate of element-wise ops on 2-byte floats (shared from it where measured: "
            "a CPU converts each element to fp32 and back)", 1e-3, 10.0, "x the fp32 byte rate"),
        "gather_bytes_per_element": ParamSpec(
            "gather_bytes_per_element", 16.0,
            "advanced indexing reads two int64 indices (row, column) per gathered element: 2 x 8 B "
            "(fitted: index arithmetic and scattered access cost more on CPUs)", 1e-3, 1e4,
            "bytes-equivalent per gathered element"),
        "scatter_bytes_per_element": ParamSpec(
            "scatter_bytes_per_element", 16.0,
            "the backward's index_put_ (accumulate) reads the same two int64 indices per element: 2 x 8 B "
            "(fitted: accumulating scatters run serially on CPUs, atomics on GPUs)", 1e-3, 1e4,
            "bytes-equivalent per scattered element"),
        "fixed_s": ParamSpec("fixed_s", float(efficiency.kernel_launch_s), launch_basis(), 1e-8, 1e-2,
                             "s per launch"),
    }


def batched_gemm_time_s(p: Mapping[str, float], gemm_p: Mapping[str, float], fig: DeviceFigures,
                       batch: float, m: float, n: float, k: float, precision: str,
                       bandwidth: float, self_product: bool = False) -> tuple[float, float, float]:
    """Time of ``batch`` GEMMs of m x n over k in seconds, as ``(total, compute_s, memory_s)``.

    ``self_product``: both operands are one tensor (the forward's ``Z Zᵀ``). A GPU reads its bytes from
    memory once (the second operand's loads of each sample's few-KB block hit the L2); a CPU BLAS packs
    each operand into a buffer of its own, so it streams them twice as for two tensors.

    On a CPU, fp32 matrices of fewer than :data:`~planner.cost.params.CPU_NAIVE_BMM_MACS` multiply-adds
    run PyTorch's scalar loop instead, the batch split over the threads ATen's grain allows (each takes
    at least ``CPU_PARALLEL_GRAIN / (m n k)`` matrices): ``batch * m * n * (naive_output_s + k * mac_s) /
    threads``, with ``naive_mac_s`` where both operands are read along the inner dimension (the self
    product ``Z Zᵀ``) and ``naive_strided_mac_s`` otherwise."""
    operands = m * k if self_product and fig.kind != "cpu" else m * k + k * n
    memory_s = batch * (operands + m * n) * ELEM_BYTES.get(precision, 4) / bandwidth
    macs = m * n * k
    if fig.kind == "cpu" and precision in ("fp32", "tf32") and macs < CPU_NAIVE_BMM_MACS:
        mac_s = p.get("naive_mac_s", 1e-9) if self_product else p.get("naive_strided_mac_s", 1e-9)
        per_thread = max(CPU_PARALLEL_GRAIN // max(int(macs), 1), 1)
        threads = max(1, min(fig.compute_units, ceil_div(batch, per_thread)))
        compute_s = batch * m * n * (p.get("naive_output_s", 1e-9) + k * mac_s) / threads
        return max(compute_s, memory_s), compute_s, memory_s
    if fig.kind == "cpu":
        (tile_m, tile_n), resident = CPU_BATCHED_TILE, 1
    else:
        tile_m, tile_n, resident = gemm_tiling(fig, m, n)
    units = fig.compute_units * resident
    tiles = batch * ceil_div(m, tile_m) * ceil_div(n, tile_n)
    waves = ceil_div(tiles, units)
    frac = gemm_p.get(f"peak_fraction_{precision}", gemm_p.get("peak_fraction_fp32", 0.5))
    k_half = k_half_for(p.get("batched_k_half", gemm_p["k_half"]), fig, precision)
    eff = frac * k / (k + k_half) * p.get(f"batched_efficiency_{precision}",
                                          p.get("batched_efficiency_fp32", 1.0))
    compute_s = 2.0 * waves * units * tile_m * tile_n * k / (fig.peak_for(precision) * eff)
    setup_s = batch * p["matrix_s"] if fig.kind == "cpu" else 0.0  # one GPU kernel covers the batch
    return max(compute_s, memory_s) + setup_s, compute_s, memory_s


def dot_interaction_time_s(p: Mapping[str, float], gemm_p: Mapping[str, float], fig: DeviceFigures,
                           batch: int, features: int, dim: int, precision: str,
                           phase: str, context_bytes: float = 0.0) -> tuple[float, dict[str, float]]:
    """Time of the dot interaction (forward or backward) in seconds, and its parts.

    ``gemm_p`` are the GEMM family's parameters (the batched product is priced like its kernels). The
    product and the triangle gather are separate kernels, so their times add; the gather streams its
    elements plus ``gather_bytes_per_element`` of index work per element (advanced indexing reads a row
    and a column int64 index for every gathered element); the backward's accumulating scatter into a
    zeroed F x F gradient costs ``scatter_bytes_per_element`` per element instead. ``context_bytes`` of
    other data share the cache with the element-wise data (a training step's).
    """
    elem = ELEM_BYTES.get(precision, 4)
    b, f, d = float(batch), float(features), float(dim)
    pairs = b * f * (f - 1.0) / 2.0
    bandwidth = fig.memory_bandwidth_bytes_per_s * p["bandwidth_fraction"]
    if phase == "forward":
        bmm_s, compute_s, memory_s = batched_gemm_time_s(p, gemm_p, fig, b, f, f, d, precision, bandwidth,
                                                         self_product=True)
        data_bytes = 2.0 * pairs * elem  # read the triangle out of the product, write it
        tensors = b * f * f * elem + pairs * elem  # the product and the triangle: what the cache holds
        index_bytes = pairs * p["gather_bytes_per_element"]
        launches = DOT_LAUNCHES["forward"]
    else:
        # autograd's two products for Z, once as the left operand (G Z: F x D over F) and once as the
        # transposed right one (Zᵀ G: D x F over F, an output F wide)
        left = batched_gemm_time_s(p, gemm_p, fig, b, f, d, f, precision, bandwidth)
        right = batched_gemm_time_s(p, gemm_p, fig, b, d, f, f, precision, bandwidth)
        bmm_s, compute_s, memory_s = (x + y for x, y in zip(left, right, strict=True))
        # zero the F x F gradient, scatter-add the triangle (index_put_ with accumulate), and add the two
        # halves of Z's gradient, one of them transposed (read two B x F x D tensors, write one)
        data_bytes = b * f * f * elem + 2.0 * pairs * elem + 3.0 * b * f * d * elem
        tensors = b * f * f * elem + pairs * elem + 3.0 * b * f * d * elem
        index_bytes = pairs * p["scatter_bytes_per_element"]
        launches = DOT_LAUNCHES["backward"]
    # the element-wise data is served by the cache while the op's tensors fit in it; the index work per
    # element is not memory traffic and runs at one rate
    hit = cache_hit(p, fig, tensors + context_bytes)
    rate = elementwise_rate(p, "elementwise", elem)
    gather_s = (data_bytes * memory_rate_bytes(p, hit) / rate + index_bytes) / bandwidth
    fixed = launches * p["fixed_s"]
    return fixed + bmm_s + gather_s, {"fixed_s": fixed, "compute_s": compute_s, "memory_s": memory_s,
                                      "bmm_s": bmm_s, "gather_s": gather_s}


def dcn_cross_time_s(p: Mapping[str, float], gemm_p: Mapping[str, float], fig: DeviceFigures, batch: int,
                     width: int, low_rank: int, precision: str, phase: str) -> tuple[float, int]:
    """Time of one DCN cross layer in seconds and its launch count (GEMMs by the GEMM family)."""
    shapes = [(batch, low_rank, width), (batch, width, low_rank)] if low_rank > 0 else [(batch, width, width)]
    gemm_s = 0.0
    launches = 0
    for m, n, k in shapes:
        if phase == "forward":
            gemm_s += gemm_time_s(gemm_p, fig, m, n, k, precision)[0]
            launches += 1
        else:  # input gradient (m x k over n) and weight gradient (n x k over m, dYᵀ X)
            grad_input, grad_weight = gradient_gemms_s(gemm_p, fig, m, k, n, precision)
            gemm_s += grad_input
            gemm_s += grad_weight
            launches += 2
    elem = ELEM_BYTES.get(precision, 4)
    key = "forward" if phase == "forward" else "backward"
    tensor = batch * width * elem  # the element-wise ops stream a few B x width tensors each
    # the forward's few tensors are fresh; the backward reads activations saved long before, so the
    # whole of its traffic is the working set the cache has to hold
    hit = cache_hit(p, fig, (3.0 if phase == "forward" else DCN_ELEMENTWISE_BYTES[key]) * tensor)
    stream_s = (DCN_ELEMENTWISE_BYTES[key] * tensor * memory_rate_bytes(p, hit)
                / (fig.memory_bandwidth_bytes_per_s * p["bandwidth_fraction"]
                   * elementwise_rate(p, "elementwise", elem)))
    elementwise = DCN_ELEMENTWISE_LAUNCHES[key]
    return gemm_s + stream_s + elementwise * p["fixed_s"], launches + elementwise


@dataclass(frozen=True)
class InteractionBatch:
    """The parameter-independent inputs of :func:`dot_interaction_time_s` and :func:`dcn_cross_time_s`
    for many CPU ops, as arrays (one entry per op, or per batched product or GEMM with the op it belongs
    to), so a fit can price all its cases in one vectorised call (:func:`interaction_times`)."""

    dot: np.ndarray  # a dot interaction (else a DCN cross layer)
    backward: np.ndarray
    elem: np.ndarray
    # the dot's batched products
    owner: np.ndarray
    batch: np.ndarray
    m: np.ndarray
    n: np.ndarray
    k: np.ndarray
    self_product: np.ndarray
    naive: np.ndarray  # PyTorch's scalar loop
    threads: np.ndarray  # the scalar loop's threads
    waves: np.ndarray
    tile_work: float  # units x tile area of a batched product
    product_elem: np.ndarray
    product_precision: tuple[str, ...]
    product_peak: np.ndarray
    # the dot's element-wise part, per op (0 for a DCN)
    data_bytes: np.ndarray
    tensors: np.ndarray
    pairs: np.ndarray
    # a DCN's GEMMs and element-wise part, per op (0 for a dot)
    gemms: GemmCalls
    dcn_tensor: np.ndarray  # B x width x elem
    dcn_working: np.ndarray  # units of dcn_tensor the cache holds
    dcn_traffic: np.ndarray  # units of dcn_tensor streamed
    launches: np.ndarray  # the op's own launches at the interaction family's fixed_s


def interaction_batch(fig: DeviceFigures, ops: list[tuple]) -> InteractionBatch | None:
    """Pack ``("dot", batch, features, dim, precision, phase)`` or ``("dcn", batch, width, low_rank,
    precision, phase)`` per op; None on a GPU (its split-K GEMMs and tiles stay per op)."""
    if fig.kind != "cpu":
        return None
    owner, sizes, self_product, precisions = [], [], [], []
    dot, backward, elem, data, tensors, pairs = [], [], [], [], [], []
    calls: list[tuple[int, int, int, int, str, bool]] = []
    dcn_tensor, dcn_working, dcn_traffic, launches = [], [], [], []
    for i, (kind, batch, a, c, precision, phase) in enumerate(ops):
        e = ELEM_BYTES.get(precision, 4)
        b, forward = float(batch), phase == "forward"
        dot.append(kind == "dot")
        backward.append(not forward)
        elem.append(float(e))
        if kind == "dot":
            f, d = float(a), float(c)
            pair = b * f * (f - 1.0) / 2.0
            products = [(f, f, d, True)] if forward else [(f, d, f, False), (d, f, f, False)]
            for m, n, k, own in products:
                owner.append(i)
                sizes.append((b, m, n, k))
                self_product.append(own)
                precisions.append(precision)
            if forward:
                data.append(2.0 * pair * e)
                tensors.append(b * f * f * e + pair * e)
            else:
                data.append(b * f * f * e + 2.0 * pair * e + 3.0 * b * f * d * e)
                tensors.append(b * f * f * e + pair * e + 3.0 * b * f * d * e)
            pairs.append(pair)
            launches.append(float(DOT_LAUNCHES[phase]))
            dcn_tensor.append(0.0)
            dcn_working.append(0.0)
            dcn_traffic.append(0.0)
            continue
        width, low_rank = int(a), int(c)
        shapes = [(batch, low_rank, width), (batch, width, low_rank)] if low_rank > 0 else [
            (batch, width, width)]
        for m, n, k in shapes:
            if forward:
                calls.append((i, m, n, k, precision, False))
            else:  # as gradient_gemms_s(m, k, n): input gradient, then the weight gradient
                calls.append((i, m, k, n, precision, False))
                calls.append((i, n, k, m, precision, True))
        key = "forward" if forward else "backward"
        data.append(0.0)
        tensors.append(0.0)
        pairs.append(0.0)
        launches.append(float(DCN_ELEMENTWISE_LAUNCHES[key]))
        dcn_tensor.append(b * width * e)
        dcn_working.append(3.0 if forward else DCN_ELEMENTWISE_BYTES[key])
        dcn_traffic.append(DCN_ELEMENTWISE_BYTES[key])
    gemms = gemm_calls(fig, calls, len(ops))
    assert gemms is not None  # a CPU's (checked above)
    tile_m, tile_n = CPU_BATCHED_TILE
    units = fig.compute_units
    naive, threads, waves = [], [], []
    for (b, m, n, k), precision in zip(sizes, precisions, strict=True):
        macs = m * n * k
        naive.append(precision in ("fp32", "tf32") and macs < CPU_NAIVE_BMM_MACS)
        per_thread = max(CPU_PARALLEL_GRAIN // max(int(macs), 1), 1)
        threads.append(float(max(1, min(units, ceil_div(b, per_thread)))))
        waves.append(float(ceil_div(b * ceil_div(m, tile_m) * ceil_div(n, tile_n), units)))
    size = np.array(sizes, dtype=float).reshape(-1, 4)
    return InteractionBatch(
        dot=np.array(dot, dtype=bool), backward=np.array(backward, dtype=bool), elem=np.array(elem),
        owner=np.array(owner, dtype=np.int64), batch=size[:, 0], m=size[:, 1], n=size[:, 2], k=size[:, 3],
        self_product=np.array(self_product, dtype=bool), naive=np.array(naive, dtype=bool),
        threads=np.array(threads), waves=np.array(waves), tile_work=float(units * tile_m * tile_n),
        product_elem=np.array([float(ELEM_BYTES.get(q, 4)) for q in precisions]),
        product_precision=tuple(precisions), product_peak=np.array([fig.peak_for(q) for q in precisions]),
        data_bytes=np.array(data), tensors=np.array(tensors), pairs=np.array(pairs), gemms=gemms,
        dcn_tensor=np.array(dcn_tensor), dcn_working=np.array(dcn_working),
        dcn_traffic=np.array(dcn_traffic), launches=np.array(launches))


def interaction_times(p: Mapping[str, float], gemm_p: Mapping[str, float], fig: DeviceFigures,
                      b: InteractionBatch) -> np.ndarray:
    """The time in seconds of every op in ``b``: :func:`dot_interaction_time_s` for a dot and
    :func:`dcn_cross_time_s` for a DCN layer (the same formulas, as arrays)."""
    bandwidth = fig.memory_bandwidth_bytes_per_s * p["bandwidth_fraction"]
    ops = len(b.dot)
    # the dot's batched products, as batched_gemm_time_s on a CPU
    memory_s = b.batch * (b.m * b.k + b.k * b.n + b.m * b.n) * b.product_elem / bandwidth
    mac_s = np.where(b.self_product, p.get("naive_mac_s", 1e-9), p.get("naive_strided_mac_s", 1e-9))
    naive_s = b.batch * b.m * b.n * (p.get("naive_output_s", 1e-9) + b.k * mac_s) / b.threads
    frac = np.array([gemm_p.get(f"peak_fraction_{q}", gemm_p.get("peak_fraction_fp32", 0.5))
                     for q in b.product_precision])
    batched = np.array([p.get(f"batched_efficiency_{q}", p.get("batched_efficiency_fp32", 1.0))
                        for q in b.product_precision])
    k_half = p.get("batched_k_half", gemm_p["k_half"])
    eff = frac * b.k / (b.k + k_half) * batched
    tiled_s = 2.0 * b.waves * b.tile_work * b.k / (b.product_peak * eff)
    product_s = np.where(b.naive, np.maximum(naive_s, memory_s),
                         np.maximum(tiled_s, memory_s) + b.batch * p["matrix_s"])
    bmm_s = np.bincount(b.owner, weights=product_s, minlength=ops)
    low = np.where(b.elem < 4, p.get("low_precision_rate", 1.0), 1.0)
    hit = cache_hits(p, fig, b.tensors)
    per_element = np.where(b.backward, p["scatter_bytes_per_element"], p["gather_bytes_per_element"])
    index_bytes = b.pairs * per_element
    gather_s = (b.data_bytes * memory_rate_bytes(p, hit) / low + index_bytes) / bandwidth
    dot_s = bmm_s + gather_s
    # a DCN layer's GEMMs by the GEMM family, its element-wise ops streamed
    hit = cache_hits(p, fig, b.dcn_working * b.dcn_tensor)
    stream_s = b.dcn_traffic * b.dcn_tensor * memory_rate_bytes(p, hit) / (bandwidth * low)
    dcn_s = gemm_call_times(gemm_p, fig, b.gemms) + stream_s
    return b.launches * p["fixed_s"] + np.where(b.dot, dot_s, dcn_s)
