"""Framework overhead: host-side time per launched op (Python dispatch, autograd bookkeeping, driver launch).

A training step is bounded by the slower of the host timeline (launches x ``host_overhead_s``) and the
device timeline; at small batch the host term dominates (Lin et al., perf_models.md 1: T1-T5 CPU overheads,
10 us per launch). It is fitted to the bench's ``launch_overhead`` chains (tiny autograd ops forward and
backward, host-timed, seconds per launch), which cycle through as many op kinds as the suite knows, since
an op whose code ran a moment ago dispatches faster than one in a step of 65-85 distinct ops
(:mod:`kernels.memcpy`; of several files, only the chains of the most kinds are fitted)::

    per_launch_s = host_overhead_s + backward_start_s / launches [+ memory fixed_s on a CPU]

Chains run without autograd (``params.autograd`` false), their kinds in turn against the same kinds
each repeated in a row, measure how much of that per-launch cost is code running cold (finding 15)
rather than autograd's recording and graph walk::

    cold_per_launch_s = cold_dispatch_share * host_overhead_s

On a CPU an op whose bench timing already holds its host work (an embedding backward + update, timed
through autograd and the optimizer's Python loop) adds only ``cold_dispatch_share * host_overhead_s`` per
launch in a step: its code runs colder there than in the bench's loop, the rest it already paid.

On a CPU the host and the "device" are the same threads: a kernel's own fitted ``fixed_s`` already holds
part of its dispatch, so ``host_overhead_s`` is the rest (autograd bookkeeping, Python, the backward
engine per node), added once per launch by the serial host of the step model. Without launch chains in
the measurements (older files) it falls back to the launch-bound copies and element-wise ops, each
divided by its launch count.
"""

from __future__ import annotations

from planner.cost.params import ParamSpec
from planner.model import EfficiencySpec

FAMILY = "overhead"

#: A measured case counts as launch bound when modelled work is below this share of its predicted time.
LAUNCH_BOUND_WORK_SHARE = 0.25


def param_specs(efficiency: EfficiencySpec) -> dict[str, ParamSpec]:
    """The overhead parameter with its datasheet default."""
    return {
        "host_overhead_s": ParamSpec(
            "host_overhead_s", float(efficiency.kernel_launch_s),
            "efficiency.kernel_launch_s (Lin et al.: 10 us launch on GPUs; CPU dispatch per profile)",
            1e-8, 1e-2, "s per launched op"),
        "backward_start_s": ParamSpec(
            "backward_start_s", 4.0 * float(efficiency.kernel_launch_s),
            "starting one backward pass (autograd engine, graph walk set-up) costs a few launches; 4 x "
            "efficiency.kernel_launch_s (assumed; fitted from launch chains of several lengths)",
            1e-8, 1e-1, "s per backward pass"),
        "cold_dispatch_share": ParamSpec(
            "cold_dispatch_share", 1.0,
            "1: all of host_overhead_s is added to an op whose bench timing already holds its host work (as "
            "before this parameter); fitted as the extra per op of a chain without autograd run over the "
            "step's many kinds in turn against the same kinds each repeated in a row, over host_overhead_s "
            "(the code-cache part of the launch cost; the rest is autograd's recording and graph walk)",
            1e-3, 10.0, "x host_overhead_s"),
    }
