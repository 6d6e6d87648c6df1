"""Framework overhead: host-side time per launched op (Python dispatch, autograd bookkeeping, driver launch).

A training step is bounded by the slower of the host timeline (launches x ``host_overhead_s``) and the
device timeline; at small batch the host term dominates (Lin et al., perf_models.md 1: T1-T5 CPU overheads,
10 us per launch). It is fitted from the launch-bound measurements of every suite: cases whose modelled
work (time beyond the fixed costs) is a small part of the measured time, each divided by its launch count.
On a CPU the host and the "device" are the same threads, so a kernel's measured time already contains its
dispatch cost; ``host_overhead_s`` is then the part of it that is not overlappable with anything.
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
    }
