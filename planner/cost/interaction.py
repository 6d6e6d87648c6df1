"""Interaction cost model: the dot interaction as a batched-GEMM roofline, DCN cross layers as GEMMs.

Dot interaction over ``F`` feature vectors of width ``D`` per sample (batched Z Zᵀ, then the strictly lower
triangle gathered and concatenated)::

    forward:  flops = 2 B F² D, bmm bytes = (B F D + B F²) * elem; gather of P = B F (F-1)/2 elements
              (bmm + gather: 2 launches)
    backward: flops = 4 B F² D (autograd's two bmm for dZ = G Z + Gᵀ Z), bmm bytes twice (read G and Z,
              write dZ), the scatter into a zeroed B F² gradient (zeros + index_put, two bmm, add: 5 launches)
    time_s = launches * fixed_s + max(flops / (peak[dtype] * peak_fraction), bmm bytes / bw)
             + (P * (2 * elem + gather_bytes_per_element) [+ B F² elem]) / bw

Batched F x F products are far too small for tensor-core tiles, so ``peak_fraction`` is this family's own.
A DCN cross layer ``x_{l+1} = x0 * (U (V x_l) + b) + x_l`` (low rank ``r``; full rank when ``r == 0``) is
priced as its GEMMs with the GEMM family's parameters plus its element-wise traffic at this family's
bandwidth and one fixed cost per element-wise launch.
"""

from __future__ import annotations

from collections.abc import Mapping

from planner.cost.gemm import gemm_time_s
from planner.cost.params import ELEM_BYTES, DeviceFigures, ParamSpec, launch_basis
from planner.model import EfficiencySpec

FAMILY = "interaction"

#: Launches of the PyTorch eager dot interaction (kernels/interaction.py): see the module docstring.
DOT_LAUNCHES = {"forward": 2, "backward": 5}
#: DCN element-wise launches per layer: forward (add bias, multiply by x0, add residual), backward twice that.
DCN_ELEMENTWISE_LAUNCHES = {"forward": 3, "backward": 6}
#: DCN element-wise traffic per layer in units of B x width x elem (forward: read x0, h, x_l, write out
#: plus bias; backward: roughly twice), counted from the formula above.
DCN_ELEMENTWISE_BYTES = {"forward": 5.0, "backward": 10.0}


def param_specs(efficiency: EfficiencySpec) -> dict[str, ParamSpec]:
    """The interaction parameters with their datasheet defaults."""
    return {
        "peak_fraction": ParamSpec(
            "peak_fraction", 0.5 * float(efficiency.gemm_peak_fraction),
            "half of efficiency.gemm_peak_fraction: batched tiny GEMMs reach about the skinny-GEMM "
            "fraction, 0.3-0.5 of peak (hardware.md 4.1)", 1e-6, 1.5, "fraction of device.peak_flops[dtype]"),
        "bandwidth_fraction": ParamSpec(
            "bandwidth_fraction", float(efficiency.hbm_fraction),
            "efficiency.hbm_fraction (STREAM-like fraction, hardware.md 4.2)", 1e-5, 1.5,
            "fraction of device.hbm_bandwidth_bytes_per_s"),
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


def dot_interaction_time_s(p: Mapping[str, float], fig: DeviceFigures, batch: int, features: int, dim: int,
                           precision: str, phase: str) -> tuple[float, dict[str, float]]:
    """Time of the dot interaction (forward or backward) in seconds, and its parts.

    The batched product and the triangle gather are separate kernels, so their times add: the ``bmm`` is
    a roofline (``max`` of compute and its own traffic), the gather streams its elements plus
    ``gather_bytes_per_element`` of index work per element (advanced indexing reads a row and a column
    int64 index for every gathered element); the backward's accumulating scatter into a zeroed F x F
    gradient costs ``scatter_bytes_per_element`` per element instead.
    """
    elem = ELEM_BYTES.get(precision, 4)
    b, f, d = float(batch), float(features), float(dim)
    pairs = b * f * (f - 1.0) / 2.0
    bandwidth = fig.memory_bandwidth_bytes_per_s * p["bandwidth_fraction"]
    flops = 2.0 * b * f * f * d
    bmm_bytes = (b * f * d + b * f * f) * elem
    if phase == "forward":
        gather_bytes = pairs * (2.0 * elem + p["gather_bytes_per_element"])
    else:
        flops *= 2.0  # dZ = G Z + G^T Z: two bmm
        bmm_bytes = 2.0 * (2.0 * b * f * d + b * f * f) * elem
        # zero the F x F gradient, then scatter-add the triangle (index_put_ with accumulate)
        gather_bytes = b * f * f * elem + pairs * (2.0 * elem + p["scatter_bytes_per_element"])
    compute_s = flops / (fig.peak_for(precision) * p["peak_fraction"])
    memory_s = bmm_bytes / bandwidth
    gather_s = gather_bytes / bandwidth
    fixed = DOT_LAUNCHES["forward" if phase == "forward" else "backward"] * p["fixed_s"]
    return fixed + max(compute_s, memory_s) + gather_s, {"fixed_s": fixed, "compute_s": compute_s,
                                                         "memory_s": memory_s, "gather_s": gather_s}


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
        else:  # input gradient (m x k over n) and weight gradient (n x k over m)
            gemm_s += gemm_time_s(gemm_p, fig, m, k, n, precision)[0]
            gemm_s += gemm_time_s(gemm_p, fig, n, k, m, precision)[0]
            launches += 2
    elem = ELEM_BYTES.get(precision, 4)
    key = "forward" if phase == "forward" else "backward"
    stream_s = (DCN_ELEMENTWISE_BYTES[key] * batch * width * elem
                / (fig.memory_bandwidth_bytes_per_s * p["bandwidth_fraction"]))
    elementwise = DCN_ELEMENTWISE_LAUNCHES[key]
    return gemm_s + stream_s + elementwise * p["fixed_s"], launches + elementwise
