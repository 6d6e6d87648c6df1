"""Memory-bound ops (copies, element-wise, optimizer steps, host transfers): a size-dependent bandwidth curve.

A fixed per-launch cost dominates small transfers (the latency floor below Lin et al.'s "linearity point",
perf_models.md 1); mid-size working sets that fit in the last-level cache run at ``cache_bandwidth_ratio``
times the memory rate; large ones at ``bandwidth_fraction`` of the datasheet memory bandwidth::

    hit    = C / (C + bytes),  C = cache_fraction * cache_bytes   (smooth capacity-miss curve)
    time_s = fixed_s + bytes * (hit / cache_bandwidth_ratio + (1 - hit)) / (memory_bw * bandwidth_fraction)

Host transfers (``h2d``, ``d2h``) run at ``host_link_fraction`` of the per-direction host link and move
``bytes / 2`` across it (``bytes`` counts read + write). A dense optimizer step launches several kernels
(PyTorch's Adagrad: ``addcmul_``, ``sqrt``, ``add_``, ``addcdiv_``); its traffic is the algorithmic count
(``bytes``: 5 passes for Adagrad, as the bench records it; measured CPU steps run at copy bandwidth on it).
"""

from __future__ import annotations

from collections.abc import Mapping

from planner.cost.params import DeviceFigures, ParamSpec, launch_basis
from planner.model import EfficiencySpec

FAMILY = "memory"

#: Launches of a dense Adagrad step per parameter tensor (torch.optim.Adagrad, single-tensor path).
OPTIMIZER_LAUNCHES = 4


def launches_for(kind: str) -> int:
    """Kernel launches one memory-bound op implies."""
    return OPTIMIZER_LAUNCHES if kind in ("optimizer", "optimizer_step") else 1


def param_specs(efficiency: EfficiencySpec) -> dict[str, ParamSpec]:
    """The memory-bound parameters with their datasheet defaults."""
    launch = float(efficiency.kernel_launch_s)
    return {
        "bandwidth_fraction": ParamSpec(
            "bandwidth_fraction", float(efficiency.hbm_fraction),
            "efficiency.hbm_fraction (STREAM copy fraction, hardware.md 4.2)", 1e-5, 1.5,
            "fraction of device.hbm_bandwidth_bytes_per_s"),
        "cache_bandwidth_ratio": ParamSpec(
            "cache_bandwidth_ratio", 2271.0 / 1391.0,
            "Lin et al. A100: peak L2 2271 GB/s over max measured DRAM 1391 GB/s (perf_models.md 1)",
            0.5, 100.0, "x memory bandwidth"),
        "cache_fraction": ParamSpec(
            "cache_fraction", 0.9, "Lin et al.: 0.9 x L2 bytes usable (perf_models.md 1)", 1e-3, 4.0,
            "fraction of device.l2_bytes"),
        "host_link_fraction": ParamSpec(
            "host_link_fraction", float(efficiency.host_link_fraction),
            "efficiency.host_link_fraction (H2D/D2H fraction of the per-direction link, hardware.md 4.3)",
            1e-5, 1.5, "fraction of node.host_link_bandwidth_bytes_per_s"),
        "fixed_s": ParamSpec("fixed_s", launch, launch_basis(), 1e-8, 1e-2, "s per launch"),
        "optimizer_fixed_s": ParamSpec(
            "optimizer_fixed_s", OPTIMIZER_LAUNCHES * launch,
            "OPTIMIZER_LAUNCHES x efficiency.kernel_launch_s (fitted: a Python optimizer step adds its own "
            "per-step overhead)", 1e-8, 1e-1, "s per optimizer step op"),
    }


def memory_time_s(p: Mapping[str, float], fig: DeviceFigures, kind: str,
                  nbytes: float) -> tuple[float, dict[str, float]]:
    """Time of a memory-bound op moving ``nbytes`` (read + write) in seconds, and its parts."""
    if kind in ("h2d", "d2h"):
        link = fig.host_link_bandwidth_bytes_per_s * p["host_link_fraction"]
        transfer_s = 0.5 * nbytes / link
        return p["fixed_s"] + transfer_s, {"fixed_s": p["fixed_s"], "transfer_s": transfer_s}
    optimizer = kind in ("optimizer", "optimizer_step")
    fixed = p["optimizer_fixed_s"] if optimizer else p["fixed_s"]
    cache = p["cache_fraction"] * fig.cache_bytes
    hit = cache / (cache + nbytes) if nbytes > 0 else 1.0
    bandwidth = fig.memory_bandwidth_bytes_per_s * p["bandwidth_fraction"]
    transfer_s = nbytes * (hit / p["cache_bandwidth_ratio"] + (1.0 - hit)) / bandwidth
    return fixed + transfer_s, {"fixed_s": fixed, "transfer_s": transfer_s, "hit_fraction": hit}
