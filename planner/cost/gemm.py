"""GEMM cost model: a roofline on the dtype's peak with tile and wave quantisation, plus a fixed launch cost.

Following NeuSight (perf_models.md 3), the output is cut into ``tile`` blocks, one per compute unit at a
time; the device runs ``waves = ceil(tiles / units)`` waves, each as long as one full tile, so small or
oddly shaped GEMMs pay for the idle part of the last wave and for padded tiles. On GPUs a small output
gets a smaller tile with several resident per unit (:func:`planner.cost.params.gemm_tiling`). A short
inner dimension ``k`` lowers the efficiency further (``k / (k + k_half)``: prologue and epilogue of each
tile are not amortised), which is what makes tall-skinny DLRM layers reach only 0.3-0.5 of peak
(hardware.md 4.1).
Memory traffic bounds the time from below (roofline)::

    compute_s = 2 * waves * units * tile_m * tile_n * k / (peak[dtype] * peak_fraction * k / (k + k_half))
    memory_s  = (m*k + k*n + m*n) * elem_bytes / (memory_bandwidth * bandwidth_fraction)
    time_s    = fixed_s + max(compute_s, memory_s)

An ``nn.Linear`` backward is two GEMMs (input gradient m x k over n, weight gradient n x k over m) and
the bias gradient, a column sum of the m x n output gradient priced as memory traffic (three launches).
"""

from __future__ import annotations

from collections.abc import Mapping

from planner.cost.params import ELEM_BYTES, DeviceFigures, ParamSpec, ceil_div, gemm_tiling, launch_basis
from planner.model import EfficiencySpec

FAMILY = "gemm"
DTYPES = ("fp32", "tf32", "bf16", "fp16", "fp8")


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
    specs["fixed_s"] = ParamSpec("fixed_s", launch, launch_basis(), 1e-8, 1e-2, "s per launch")
    return specs


def gemm_time_s(p: Mapping[str, float], fig: DeviceFigures, m: int, n: int, k: int,
                precision: str) -> tuple[float, float, float]:
    """Time of one GEMM C[m,n] = A[m,k] B[k,n] in seconds, as ``(total, compute_s, memory_s)``."""
    if m <= 0 or n <= 0 or k <= 0:
        return p["fixed_s"], 0.0, 0.0
    tile_m, tile_n, resident = gemm_tiling(fig, m, n)
    units = fig.compute_units * resident
    tiles = ceil_div(m, tile_m) * ceil_div(n, tile_n)
    waves = ceil_div(tiles, units)
    frac = p.get(f"peak_fraction_{precision}", p.get("peak_fraction_fp32", 0.5))
    eff = frac * k / (k + p["k_half"])
    compute_s = 2.0 * waves * units * tile_m * tile_n * k / (fig.peak_for(precision) * eff)
    elem = ELEM_BYTES.get(precision, 4)
    memory_s = (m * k + k * n + m * n) * elem / (fig.memory_bandwidth_bytes_per_s * p["bandwidth_fraction"])
    return p["fixed_s"] + max(compute_s, memory_s), compute_s, memory_s


def linear_time_s(p: Mapping[str, float], fig: DeviceFigures, batch: int, in_features: int,
                  out_features: int, precision: str, backward: bool) -> float:
    """Time of an ``nn.Linear`` forward (one GEMM) or backward (input and weight gradients) in seconds."""
    if not backward:
        return gemm_time_s(p, fig, batch, out_features, in_features, precision)[0]
    grad_input = gemm_time_s(p, fig, batch, in_features, out_features, precision)[0]
    grad_weight = gemm_time_s(p, fig, out_features, in_features, batch, precision)[0]
    grad_bias = p["fixed_s"] + (batch * out_features * ELEM_BYTES.get(precision, 4)
                                / (fig.memory_bandwidth_bytes_per_s * p["bandwidth_fraction"]))
    return grad_input + grad_weight + grad_bias


#: Launches of an ``nn.Linear``: forward one fused addmm; backward two GEMMs and the bias-gradient sum.
LINEAR_LAUNCHES = {"forward": 1, "backward": 3}
