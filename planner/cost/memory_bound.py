"""Memory-bound ops (copies, element-wise, optimizer steps, host transfers): a size-dependent bandwidth curve.

A fixed per-launch cost dominates small transfers (the latency floor below Lin et al.'s "linearity point",
perf_models.md 1); mid-size working sets that fit in the last-level cache run at ``cache_bandwidth_ratio``
times the memory rate; large ones at ``bandwidth_fraction`` of the datasheet memory bandwidth::

    hit    = 1 / (1 + (bytes / C)^cache_sharpness),  C = cache_fraction * cache_bytes   (capacity misses)
    time_s = fixed_s + bytes * (hit / cache_bandwidth_ratio + (1 - hit)) / (memory_bw * bandwidth_fraction)

The hit is of the op's working set, its distinct buffers (a copy's two, ``c = a + b``'s three, a dense
step's parameter, gradient, state and temporaries: :func:`working_set_bytes`); the time streams its
traffic, which for a step is several passes over those buffers. ``cache_sharpness`` 1 is the gradual
curve ``C / (C + bytes)``; a larger value a sharper knee (this project's 2-core CPU copies 1 MB at
95 GB/s and 4 MB at 38 GB/s, which a gradual curve cannot follow).

An element-wise op on 2-byte floats (bf16, fp16) moves its bytes at ``low_precision_rate`` times the
fp32 rate: a CPU without native arithmetic for them converts every element to fp32 and back, so the
op is bound by those instructions before the memory (this project's Xeon VM: a 12 MiB bf16 add over
cold operands at 19-21 GB/s, the fp32 one at 29 GB/s; a copy converts nothing and keeps the rate)::

    time_s = fixed_s + bytes * (...) / (memory_bw * bandwidth_fraction * low_precision_rate)

Host transfers (``h2d``, ``d2h``) run at ``host_link_fraction`` of the per-direction host link and move
``bytes / 2`` across it (``bytes`` counts read + write). A dense optimizer step pays a per-step cost
(``optimizer_fixed_s``: the Python ``step()``, state lookup) plus one dispatch per op it launches
(``optimizer_launch_s`` each) and moves the bytes PyTorch's single-tensor step streams, temporaries
included (:data:`OPTIMIZER_OPS`): Adagrad's ``step += 1``, ``s.addcmul_(g, g)`` (reads s, g, writes s),
``t = s.sqrt()`` (reads s, writes t), ``t.add_(eps)`` (reads and writes t) and ``p.addcdiv_(g, t)``
(reads p, g, t, writes p) are 5 ops and 11 passes over the parameter's bytes, where the algorithmic
count (p, g, s read; p, s written) is 5. This project's 2-core EPYC VM measured a 4 MiB Adagrad step in
1.03 ms and an SGD step (``p.add_(g)``, 3 passes) in 0.27 ms: 20 and 47 GB/s over the algorithmic
bytes, 45 and 47 GB/s over the streamed ones; over the 14 shipped CPU benches the two steps' times at
4 MiB differ by 2.6-4.3x (11 / 3 = 3.7x streamed, 5 / 3 = 1.7x
algorithmic). The temporaries are parameter-sized: on CPUs one of at least 32 MiB is freshly mapped each
step and pays ``page_fault_s`` per 4 KiB page (see :mod:`planner.cost.embedding`); GPU caching allocators
reuse them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from planner.cost.params import (
    PAGE_BYTES,
    DeviceFigures,
    ParamSpec,
    cache_hit,
    cache_hits,
    cache_sharpness_spec,
    fresh_mapping_bytes,
    fresh_mapping_fault_s,
    launch_basis,
    memory_rate_bytes,
    memory_system_specs,
    page_fault_spec,
)
from planner.model import EfficiencySpec

FAMILY = "memory"

class StepShape(NamedTuple):
    """What one dense optimizer step does per parameter tensor, in units of the parameter's bytes."""

    ops: int  # ops launched
    passes: int  # passes streamed over the parameter's bytes, temporaries included
    temporaries: int  # parameter-sized temporaries allocated
    buffers: int  # parameter-sized buffers touched (its working set)


#: PyTorch's single-tensor (``foreach=False``) step per parameter tensor. SGD: ``p.add_(g)`` (read p, g;
#: write p; buffers p, g). Adagrad: ``step += 1``, ``s.addcmul_(g, g)`` (3 passes), ``t = s.sqrt()`` (2),
#: ``t.add_(eps)`` (2), ``p.addcdiv_(g, t)`` (4); buffers p, g, s, t. Adam: ``step += 1``, ``m.lerp_(g)``
#: (3), ``v.mul_()`` (2), ``v.addcmul_(g, g)`` (3), ``t1 = v.sqrt()`` (2), ``t2 = t1 / c`` (2),
#: ``t2.add_(eps)`` (2), ``p.addcdiv_(m, t2)`` (4); buffers p, g, m, v, t1, t2. The multi-tensor (foreach)
#: kernels GPUs default to make the same passes, one launch per op for all tensors. Row-wise Adagrad's
#: dense form is Adagrad (the reference model runs a dense ``rowwise_adagrad`` as Adagrad).
OPTIMIZER_OPS: dict[str, StepShape] = {
    "sgd": StepShape(1, 3, 0, 2), "adagrad": StepShape(5, 11, 1, 4),
    "rowwise_adagrad": StepShape(5, 11, 1, 4), "adam": StepShape(8, 18, 2, 6)}


def optimizer_ops(optimizer: str) -> StepShape:
    """What one dense step of ``optimizer`` does (an unknown optimizer: Adam's, the heaviest)."""
    return OPTIMIZER_OPS.get(optimizer, OPTIMIZER_OPS["adam"])


def optimizer_step_bytes(optimizer: str, parameter_bytes: float) -> float:
    """Bytes (read + written) one dense ``optimizer`` step streams over ``parameter_bytes`` of parameters."""
    return optimizer_ops(optimizer).passes * float(parameter_bytes)


def working_set_bytes(kind: str, nbytes: float, optimizer: str = "adagrad") -> float:
    """Distinct bytes a memory op of ``nbytes`` traffic touches (what competes for the cache): the
    traffic itself for a copy or element-wise op (each buffer read or written once); a dense step's
    buffers (:attr:`StepShape.buffers`), which its ops stream several times over."""
    if kind in ("optimizer", "optimizer_step"):
        step = optimizer_ops(optimizer)
        return nbytes / step.passes * step.buffers
    return nbytes


def launches_for(kind: str, optimizer: str = "adagrad") -> int:
    """Kernel launches one memory-bound op implies (an optimizer step: per parameter tensor)."""
    return optimizer_ops(optimizer).ops if kind in ("optimizer", "optimizer_step") else 1


def param_specs(efficiency: EfficiencySpec) -> dict[str, ParamSpec]:
    """The memory-bound parameters with their datasheet defaults."""
    launch = float(efficiency.kernel_launch_s)
    return {
        **memory_system_specs(efficiency),
        "host_link_fraction": ParamSpec(
            "host_link_fraction", float(efficiency.host_link_fraction),
            "efficiency.host_link_fraction (H2D/D2H fraction of the per-direction link, hardware.md 4.3)",
            1e-5, 1.5, "fraction of node.host_link_bandwidth_bytes_per_s"),
        "fixed_s": ParamSpec("fixed_s", launch, launch_basis(), 1e-8, 1e-2, "s per launch"),
        "optimizer_fixed_s": ParamSpec(
            "optimizer_fixed_s", launch,
            "one efficiency.kernel_launch_s for the Python step() itself (fitted: per-step overhead)",
            1e-8, 1e-1, "s per optimizer step op"),
        "optimizer_launch_s": ParamSpec(
            "optimizer_launch_s", launch,
            "one efficiency.kernel_launch_s per op the step launches (OPTIMIZER_OPS; fitted)",
            1e-8, 1e-2, "s per element-wise op of an optimizer step"),
        "page_fault_s": page_fault_spec(),
        "cache_sharpness": cache_sharpness_spec(),
        "low_precision_rate": ParamSpec(
            "low_precision_rate", 1.0,
            "1: an element-wise op on 2-byte floats streams its bytes as fast as an fp32 one (GPUs compute "
            "in them natively); fitted where bf16 element-wise cases are measured (CPUs convert each "
            "element to fp32 and back)",
            0.02, 2.0, "x the fp32 element-wise byte rate"),
    }


def elementwise_rate(p: Mapping[str, float], kind: str, elem_bytes: int) -> float:
    """Byte-rate factor of a memory op: ``low_precision_rate`` for element-wise ops on 2-byte floats."""
    return p.get("low_precision_rate", 1.0) if kind == "elementwise" and elem_bytes < 4 else 1.0


def memory_time_s(p: Mapping[str, float], fig: DeviceFigures, kind: str,
                  nbytes: float, optimizer: str = "adagrad",
                  elem_bytes: int = 4, context_bytes: float = 0.0) -> tuple[float, dict[str, float]]:
    """Time of a memory-bound op moving ``nbytes`` (read + write) in seconds, and its parts.

    ``optimizer`` (``adagrad``, ``sgd``, ``adam``) only matters for an optimizer step, ``elem_bytes`` (the
    element size, 2 for bf16/fp16) only for an element-wise op; ``context_bytes`` of other data share the
    cache with the op's working set (a training step's).
    """
    if kind in ("h2d", "d2h"):
        link = fig.host_link_bandwidth_bytes_per_s * p["host_link_fraction"]
        transfer_s = 0.5 * nbytes / link
        return p["fixed_s"] + transfer_s, {"fixed_s": p["fixed_s"], "transfer_s": transfer_s}
    is_step = kind in ("optimizer", "optimizer_step")
    fault_s = 0.0
    if is_step:
        step = optimizer_ops(optimizer)
        fixed = p["optimizer_fixed_s"] + step.ops * p["optimizer_launch_s"]
        fault_s = step.temporaries * fresh_mapping_fault_s(p, fig, nbytes / step.passes)
    else:
        fixed = p["fixed_s"]
    hit = cache_hit(p, fig, working_set_bytes(kind, nbytes, optimizer) + context_bytes)
    bandwidth = (fig.memory_bandwidth_bytes_per_s * p["bandwidth_fraction"]
                 * elementwise_rate(p, kind, elem_bytes))
    transfer_s = nbytes * memory_rate_bytes(p, hit) / bandwidth
    return fixed + transfer_s + fault_s, {"fixed_s": fixed, "transfer_s": transfer_s,
                                          "page_fault_s": fault_s, "hit_fraction": hit}


@dataclass(frozen=True)
class MemoryBatch:
    """The parameter-independent inputs of :func:`memory_time_s` for many ops, as arrays (one entry per
    op), so a fit can price all its cases in one vectorised call (:func:`memory_times`)."""

    nbytes: np.ndarray
    link: np.ndarray  # host<->device transfers
    step: np.ndarray  # dense optimizer steps
    step_ops: np.ndarray  # element-wise ops of a step (0 elsewhere)
    fault_bytes: np.ndarray  # freshly mapped temporary bytes of a step (0 below FRESH_MAPPING_BYTES)
    low_precision: np.ndarray  # element-wise ops on 2-byte floats
    working_set: np.ndarray  # distinct bytes touched (working_set_bytes)


def memory_batch(fig: DeviceFigures, ops: list[tuple[str, float, str, int]]) -> MemoryBatch:
    """Pack ``(kind, nbytes, optimizer, elem_bytes)`` per op (the arguments of :func:`memory_time_s`)."""
    nbytes = np.array([float(o[1]) for o in ops])
    link = np.array([o[0] in ("h2d", "d2h") for o in ops])
    step = np.array([o[0] in ("optimizer", "optimizer_step") for o in ops])
    low = np.array([o[0] == "elementwise" and o[3] < 4 for o in ops])
    step_ops, fault = [], []
    for (_kind, n, opt, _elem), is_step in zip(ops, step, strict=True):
        shape = optimizer_ops(opt)
        step_ops.append(shape.ops if is_step else 0)
        fault.append(shape.temporaries * fresh_mapping_bytes(fig, n / shape.passes) if is_step else 0.0)
    working = np.array([working_set_bytes(o[0], float(o[1]), o[2]) for o in ops])
    return MemoryBatch(nbytes, link, step, np.array(step_ops, dtype=float), np.array(fault), low, working)


def memory_times(p: Mapping[str, float], fig: DeviceFigures, b: MemoryBatch) -> np.ndarray:
    """:func:`memory_time_s` (the total, in seconds) of every op of ``b``, vectorised."""
    hit = cache_hits(p, fig, b.working_set)
    bandwidth = fig.memory_bandwidth_bytes_per_s * p["bandwidth_fraction"]
    bandwidth = bandwidth * np.where(b.low_precision, p.get("low_precision_rate", 1.0), 1.0)
    transfer = b.nbytes * memory_rate_bytes(p, hit) / bandwidth
    fixed = np.where(b.step, p["optimizer_fixed_s"] + b.step_ops * p["optimizer_launch_s"], p["fixed_s"])
    fault = b.fault_bytes / PAGE_BYTES * p.get("page_fault_s", 0.0)
    local = fixed + transfer + fault
    if not b.link.any():
        return local
    link_bw = fig.host_link_bandwidth_bytes_per_s * p["host_link_fraction"]
    return np.where(b.link, p["fixed_s"] + 0.5 * b.nbytes / link_bw, local)
