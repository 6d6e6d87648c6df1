"""What every cost-model family shares: the device figures it reads and the description of its parameters.

A family's parameters are physically meaningful and, where possible, *relative to a datasheet figure*
(a fraction of the dtype's peak, of the memory bandwidth, of a link), so that a profile derived from a
calibrated one keeps the fitted fractions and its times scale with the changed datasheet figures (the
transfer rule; see :mod:`planner.cost.registry`). Absolute parameters (fixed per-launch costs, latencies)
describe the host software and the interconnect's protocol; they transfer unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

#: Bytes per element of each training precision (IEEE sizes; tf32 is stored as fp32).
ELEM_BYTES: dict[str, int] = {"fp32": 4, "tf32": 4, "bf16": 2, "fp16": 2, "fp8": 1}


@dataclass(frozen=True)
class ParamSpec:
    """One parameter of a family: its datasheet default, the basis of that default, bounds and unit.

    ``log_scale`` parameters are fitted in log space (all of ours are positive scale parameters).
    """

    name: str
    default: float
    basis: str
    lower: float
    upper: float
    unit: str


@dataclass(frozen=True)
class DeviceFigures:
    """The datasheet figures of one profile that the formulas read, in SI units (plain floats: hot path).

    ``cache_bytes`` is the last cache level before memory (GPU L2, CPU LLC); ``compute_units`` are SMs,
    compute units or cores; ``tile`` is the output tile one unit computes at a time in a GEMM.
    """

    kind: str
    peak_flops: dict[str, float]
    memory_bandwidth_bytes_per_s: float
    cache_bytes: float
    compute_units: int
    host_link_bandwidth_bytes_per_s: float
    intra_bandwidth_bytes_per_s: float
    network_bandwidth_bytes_per_s: float
    access_bytes: int
    tile: tuple[int, int]

    def peak_for(self, precision: str) -> float:
        """Dense peak FLOP/s for ``precision``, falling back to the nearest listed dtype (as the profile)."""
        value = self.peak_flops.get(precision)
        if value is not None:
            return value
        order = {
            "fp8": ("bf16", "fp16", "tf32", "fp32"),
            "bf16": ("fp16", "tf32", "fp32"),
            "fp16": ("bf16", "tf32", "fp32"),
            "tf32": ("fp32",),
            "fp32": ("tf32", "bf16"),
        }.get(precision, ("fp32",))
        for dtype in order:
            if dtype in self.peak_flops:
                return self.peak_flops[dtype]
        return min(self.peak_flops.values())


#: GEMM output tile per compute unit. GPUs: 128 x 128 is the default CUTLASS/cuBLAS threadblock tile for
#: large GEMMs (NeuSight, perf_models.md 3, reads the library's tile from a profiled table). CPUs: 8 x 16,
#: the order of an AVX-512 SGEMM register block (rows x 16 fp32 lanes; assumed: quantisation is small there).
GPU_TILE = (128, 128)
CPU_TILE = (8, 16)
#: Output tile of a CPU's batched small GEMMs (the dot interaction's B products of F x F): rows one at a
#: time, columns in groups of 4. Measured on this project's 2-core CPU (torch.bmm, fp32): widths that are
#: multiples of 4 ran at one rate per row and the others up to 2.8x slower (F = 15 against 16 at D = 64),
#: which the 8 x 16 register tile of large GEMMs does not show (it prices 15 and 16 alike and 17 as 32).
#: Fitted to quick benches, it took the interaction family's cross-validated p90 from 53-67% to 34-36%.
CPU_BATCHED_TILE = (1, 4)
#: A CPU ``torch.bmm`` whose matrices hold fewer multiply-adds than this (``m * n * k``) runs PyTorch's own
#: scalar loop (``baddbmm_cpu_kernel`` in ATen's ``bmm_out_or_baddbmm_``: a dot product per output element,
#: the batch split over the cores) instead of a BLAS call per matrix. Measured on this project's 2-core
#: Xeon VM (torch 2.13, fp32, 4096 matrices): 392 multiply-adds (7 x 7 over 8) took 154 ns per matrix and
#: 432 (6 x 6 over 12) 33 ns; 396 (3 x 3 over 44) 143 ns and 405 (3 x 3 over 45) 48 ns; 300 (10 x 10 over 3)
#: 199 ns and 400 (10 x 10 over 4) 30 ns: the step sits at 400 for every shape. bf16 showed no such step
#: (392 and 432 multiply-adds: 54 and 63 ns; 396 and 405: 72 and 82 ns): it goes to oneDNN first, so the
#: loop is priced for fp32 (and tf32, which a CPU computes in fp32) only.
CPU_NAIVE_BMM_MACS = 400
#: Work items per thread below which ATen's ``parallel_for`` keeps a loop on fewer threads
#: (``at::internal::GRAIN_SIZE``); the scalar bmm loop hands each thread at least ``GRAIN / (m n k)``
#: matrices, so a small batch of small matrices runs on fewer cores than the device has.
CPU_PARALLEL_GRAIN = 32768
#: Widths ``n`` (inclusive range) of a CPU fp32 GEMM with a transposed first operand that a CPU BLAS runs
#: in a narrow kernel of its own instead of its packed one: an ``nn.Linear`` weight gradient dYᵀ X of a
#: layer with 2 to 11 inputs (DLRM's dense features). Measured on this project's 2-core CPU (torch 2.13,
#: fp32, dYᵀ X with m = 512 outputs over k = 8192 samples): 1.5 ms at n = 1 (a matrix-vector product),
#: 6.9-9.6 ms at every n from 2 to 11, 2.4 ms at 12 and 1.9 ms at 16, the time set by m x k and not by n;
#: the untransposed products of the same layer (forward, input gradient) showed no such step, nor bf16
#: (1.1-1.5 ms for every n). GPUs have no such path.
CPU_NARROW_COLUMNS = (2, 11)
#: Smallest GPU output tile a library picks for a small GEMM (a 16 x 16 warp-level tensor-core tile), and
#: the most such tiles one compute unit keeps resident at once (H100 and A100 run up to 32 thread blocks
#: per SM; 16 assumed, as register and shared-memory limits usually bind first).
GPU_MIN_TILE = 16
GPU_MAX_TILES_PER_UNIT = 16


def _pow2_at_least(value: float) -> int:
    out = 1
    while out < value:
        out *= 2
    return out


def gemm_tiling(fig: DeviceFigures, m: float, n: float) -> tuple[int, int, int]:
    """Output tile ``(tile_m, tile_n)`` and tiles resident per compute unit for an m x n GEMM output.

    CPUs use their fixed register tile, one per core. GPU libraries shrink the tile to a small output
    (powers of two from 16 up to the large-GEMM tile) and run several small tiles per SM at once, so the
    area computed per unit per wave stays that of one large tile; only the quantisation gets finer.
    """
    if fig.kind == "cpu":
        return fig.tile[0], fig.tile[1], 1
    big_m, big_n = fig.tile
    tile_m = min(big_m, max(GPU_MIN_TILE, _pow2_at_least(m)))
    tile_n = min(big_n, max(GPU_MIN_TILE, _pow2_at_least(n)))
    resident = max(1, min(GPU_MAX_TILES_PER_UNIT, (big_m * big_n) // (tile_m * tile_n)))
    return tile_m, tile_n, resident


def device_figures(profile: Any) -> DeviceFigures:
    """Extract the formula inputs of a :class:`planner.model.HardwareProfile` (once per cost model)."""
    dev = profile.device
    node = profile.node
    return DeviceFigures(
        kind=str(profile.kind),
        peak_flops={str(k): float(v) for k, v in dev.peak_flops.items()},
        memory_bandwidth_bytes_per_s=float(dev.hbm_bandwidth_bytes_per_s),
        cache_bytes=float(dev.l2_bytes),
        compute_units=int(dev.sm_count),
        host_link_bandwidth_bytes_per_s=float(node.host_link_bandwidth_bytes_per_s),
        intra_bandwidth_bytes_per_s=float(node.intra_bandwidth_bytes_per_s),
        network_bandwidth_bytes_per_s=float(profile.network.per_device_bandwidth_bytes_per_s),
        access_bytes=int(profile.efficiency.embedding_access_bytes),
        tile=CPU_TILE if profile.kind == "cpu" else GPU_TILE,
    )


def ceil_div(a: float, b: float) -> int:
    """Smallest integer >= a / b for positive a, b."""
    return math.ceil(a / b - 1e-12)


def launch_basis() -> str:
    """The basis of every family's default per-launch fixed cost (see ``fixed_s`` parameters)."""
    return ("efficiency.kernel_launch_s of the profile: a launch-bound op takes about one launch latency "
            "on a CPU, which runs it itself; on a GPU the kernel's own share, 0.5 of it "
            "(planner.cost.registry.GPU_KERNEL_SHARE; Lin et al., arXiv 2201.07821: 10 us launch, 5 us "
            "GPU kernel overhead; perf_models.md 1)")


def memory_system_specs(efficiency: Any) -> dict[str, ParamSpec]:
    """The memory-system parameters several families share (the memory family fits them first).

    ``bandwidth_fraction`` of the datasheet memory bandwidth, ``cache_bandwidth_ratio`` of the last-level
    cache over memory, and the ``cache_fraction`` of the cache that holds the working set.
    """
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
    }


def cache_sharpness_spec() -> ParamSpec:
    """The steepness of the capacity-miss knee of :func:`cache_hit` (the memory family fits it first)."""
    return ParamSpec(
        "cache_sharpness", 1.0,
        "assumed 1: the gradual capacity-miss curve C / (C + bytes); fitted where measured",
        0.3, 10.0, "x exponent of bytes / cache")


def cache_specs(efficiency: Any) -> dict[str, ParamSpec]:
    """The memory system's cache parameters a streaming family shares with the memory family (which fits
    them): ``cache_bandwidth_ratio``, ``cache_fraction`` and ``cache_sharpness``."""
    system = memory_system_specs(efficiency)
    return {"cache_bandwidth_ratio": system["cache_bandwidth_ratio"],
            "cache_fraction": system["cache_fraction"], "cache_sharpness": cache_sharpness_spec()}


def memory_rate_bytes(p: Any, hit: Any) -> Any:
    """Memory-rate bytes per byte of traffic of which ``hit`` is served by the cache (scalar or array)."""
    return hit / p.get("cache_bandwidth_ratio", 1.0) + (1.0 - hit)


def cache_hit(p: Any, fig: DeviceFigures, working_set_bytes: float) -> float:
    """Fraction of a working set's traffic served by the cache: ``1 / (1 + (bytes / C)^cache_sharpness)``
    with ``C = cache_fraction x cache bytes`` (0 without a cache, 1 for an empty working set)."""
    cache = p.get("cache_fraction", 0.0) * fig.cache_bytes
    if working_set_bytes <= 0:
        return 1.0
    if cache <= 0:
        return 0.0
    return 1.0 / (1.0 + (working_set_bytes / cache) ** p.get("cache_sharpness", 1.0))


def cache_hits(p: Any, fig: DeviceFigures, working_set_bytes: Any) -> Any:
    """:func:`cache_hit` of every working set in an array of bytes (1 where a set is empty)."""
    import numpy as np

    cache = p.get("cache_fraction", 0.0) * fig.cache_bytes
    working = np.asarray(working_set_bytes, dtype=float)
    if cache > 0:
        hit = 1.0 / (1.0 + (np.maximum(working, 0.0) / cache) ** p.get("cache_sharpness", 1.0))
    else:
        hit = np.zeros_like(working)
    return np.where(working <= 0, 1.0, hit)


#: glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit: larger buffers are always freshly mmap'ed (CPU only).
FRESH_MAPPING_BYTES = 32 * 1024 * 1024
#: Page size of a freshly mapped buffer's first-touch faults (x86-64 base pages).
PAGE_BYTES = 4096


def fresh_mapping_bytes(fig: DeviceFigures, *buffers: float) -> float:
    """Bytes of the ``buffers`` a CPU maps afresh on every allocation: each of at least
    ``FRESH_MAPPING_BYTES``; 0 on a GPU, whose caching allocator reuses its blocks."""
    if fig.kind != "cpu":
        return 0.0
    return sum(b for b in buffers if b >= FRESH_MAPPING_BYTES)


def fresh_mapping_fault_s(p: Any, fig: DeviceFigures, *buffers: float) -> float:
    """First-touch page faults of the ``buffers`` (bytes) a CPU maps afresh on every allocation, in
    seconds: ``page_fault_s`` per 4 KiB page of :func:`fresh_mapping_bytes`."""
    fresh = fresh_mapping_bytes(fig, *buffers)
    return fresh / PAGE_BYTES * p.get("page_fault_s", 0.0) if fresh else 0.0


def page_fault_spec() -> ParamSpec:
    """The first-touch page-fault cost of freshly mapped host memory (CPU families)."""
    return ParamSpec(
        "page_fault_s", 1e-6,
        "Linux minor page fault on first touch of freshly mapped memory, zeroing a 4 KiB page included: "
        "about 1 us (assumed order of magnitude; CPU only)", 1e-9, 1e-3, "s per 4 KiB page")
