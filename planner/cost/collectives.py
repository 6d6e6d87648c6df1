"""Collective cost model: latency plus size over bandwidth per level (inside a node, across nodes).

The alpha-beta form of calculon and of Lin et al.'s fitted bandwidth-versus-size curves (perf_models.md 1,
4.5; hardware.md 4.4): messages under ~1 MB are latency bound, large ones reach a fraction of the link.
``bytes`` is each rank's input buffer (nccl-tests convention). With ``n`` ranks, ``p`` per node and
``N = ceil(n / p)`` nodes, hierarchical algorithms:

* all-reduce: reduce-scatter inside the node, all-reduce of ``S / p`` across nodes, all-gather inside:
  ``2 (p-1)/p S / B_ring + 2 (N-1)/N (S/p) / B_net``
* all-gather (``S`` in, ``n S`` out): ``(p-1) N S / B_ring + (N-1) S / B_net``
* reduce-scatter: ``(p-1)/p S / B_ring + (N-1)/N (S/p) / B_net``
* all-to-all: the node-local ``(p-1)/n`` of the buffer over scale-up and the remote ``(n-p)/n`` over the
  NIC, concurrently: ``max((p-1)/n S / B_a2a, (n-p)/n S / B_net)`` (all-to-all cannot aggregate NICs)

where ``B_ring = intra_bw * allreduce_intra_fraction`` for all-reduce, and all-gather and reduce-scatter
have their own fractions of the same link (``allgather_intra_fraction``, ``reduce_scatter_intra_fraction``,
defaulting to the all-reduce one: NCCL runs all three as rings at the same bus bandwidth, while gloo on
CPUs implements them differently, e.g. the tensor variants through extra staging copies),
``B_a2a = intra_bw * alltoall_intra_fraction``,
``B_net = per-device network bw * network_fraction``; each level used adds its latency once. The
intra-node latency is per collective kind (``latency_intra_s`` for all-reduce, ``latency_allgather_s``,
``latency_reduce_scatter_s``, ``latency_alltoall_s``, each defaulting to the profile's
``collective_latency_intra_s``): like Lin et al.'s per-collective fitted curves (perf_models.md 1), since
each kind runs its own algorithm with its own number of synchronising exchanges (on gloo each a TCP round
trip through the kernel's scheduler).

On CPUs (gloo) the tensor variants stage through a freshly allocated flat buffer: all-gather gathers
into an ``n S`` buffer and copies it out, reduce-scatter flattens its ``S`` input; a staging buffer of
at least 32 MiB is freshly mapped and pays ``page_fault_s`` per 4 KiB page on first touch (the allocator
effect of :mod:`planner.cost.embedding`). NCCL works in place: no such term on GPUs.
"""

from __future__ import annotations

from collections.abc import Mapping

from planner.cost.params import DeviceFigures, ParamSpec, fresh_mapping_fault_s, page_fault_spec
from planner.model import EfficiencySpec

FAMILY = "collective"


def param_specs(efficiency: EfficiencySpec) -> dict[str, ParamSpec]:
    """The collective parameters with their datasheet defaults (the profile's efficiency section)."""
    return {
        "allreduce_intra_fraction": ParamSpec(
            "allreduce_intra_fraction", float(efficiency.allreduce_intra_fraction),
            "efficiency.allreduce_intra_fraction (ring bus bandwidth fraction, hardware.md 4.4)", 1e-5, 1.5,
            "fraction of node.intra_bandwidth_bytes_per_s"),
        "allgather_intra_fraction": ParamSpec(
            "allgather_intra_fraction", float(efficiency.allreduce_intra_fraction),
            "efficiency.allreduce_intra_fraction (ring all-gather runs at the all-reduce bus bandwidth, "
            "hardware.md 4.4; fitted where the backend differs)", 1e-5, 1.5,
            "fraction of node.intra_bandwidth_bytes_per_s"),
        "reduce_scatter_intra_fraction": ParamSpec(
            "reduce_scatter_intra_fraction", float(efficiency.allreduce_intra_fraction),
            "efficiency.allreduce_intra_fraction (ring reduce-scatter runs at the all-reduce bus bandwidth, "
            "hardware.md 4.4; fitted where the backend differs)", 1e-5, 1.5,
            "fraction of node.intra_bandwidth_bytes_per_s"),
        "alltoall_intra_fraction": ParamSpec(
            "alltoall_intra_fraction", float(efficiency.alltoall_intra_fraction),
            "efficiency.alltoall_intra_fraction (hardware.md 4.4)", 1e-5, 1.5,
            "fraction of node.intra_bandwidth_bytes_per_s"),
        "network_fraction": ParamSpec(
            "network_fraction", float(efficiency.network_fraction),
            "efficiency.network_fraction (per-NIC line-rate fraction, hardware.md 4.4)", 1e-5, 1.5,
            "fraction of network.per_device_bandwidth_bytes_per_s"),
        "latency_intra_s": ParamSpec(
            "latency_intra_s", float(efficiency.collective_latency_intra_s),
            "efficiency.collective_latency_intra_s (calculon 10 us NVLink, [S80])", 1e-8, 1.0, "s"),
        "latency_allgather_s": ParamSpec(
            "latency_allgather_s", float(efficiency.collective_latency_intra_s),
            "efficiency.collective_latency_intra_s (one latency per collective; fitted per kind)",
            1e-8, 1.0, "s"),
        "latency_reduce_scatter_s": ParamSpec(
            "latency_reduce_scatter_s", float(efficiency.collective_latency_intra_s),
            "efficiency.collective_latency_intra_s (one latency per collective; fitted per kind)",
            1e-8, 1.0, "s"),
        "latency_alltoall_s": ParamSpec(
            "latency_alltoall_s", float(efficiency.collective_latency_intra_s),
            "efficiency.collective_latency_intra_s (one latency per collective; fitted per kind)",
            1e-8, 1.0, "s"),
        "page_fault_s": page_fault_spec(),
        "latency_inter_s": ParamSpec(
            "latency_inter_s", float(efficiency.collective_latency_inter_s),
            "efficiency.collective_latency_inter_s (calculon 20 us network, [S80])", 1e-8, 1.0, "s"),
    }


#: The intra-node latency parameter of each collective kind (all-reduce uses ``latency_intra_s``).
_LATENCY_KEY = {"all_gather": "latency_allgather_s", "reduce_scatter": "latency_reduce_scatter_s",
                "all_to_all": "latency_alltoall_s", "all_to_all_unequal": "latency_alltoall_s"}


def collective_time_s(p: Mapping[str, float], fig: DeviceFigures, kind: str, nbytes: float, ranks: int,
                      ranks_per_node: int) -> tuple[float, dict[str, float]]:
    """Time of one collective in seconds, and its intra-node, inter-node and latency parts."""
    n = int(ranks)
    if n <= 1:
        return 0.0, {}
    per_node = max(1, min(int(ranks_per_node), n))
    nodes = -(-n // per_node)
    s = float(nbytes)
    ring = fig.intra_bandwidth_bytes_per_s * p["allreduce_intra_fraction"]
    a2a = fig.intra_bandwidth_bytes_per_s * p["alltoall_intra_fraction"]
    net = fig.network_bandwidth_bytes_per_s * p["network_fraction"]
    intra_latency = p[_LATENCY_KEY.get(kind, "latency_intra_s")]
    latency = (intra_latency if per_node > 1 else 0.0) + (p["latency_inter_s"] if nodes > 1 else 0.0)
    if kind == "all_reduce":
        intra = 2.0 * (per_node - 1) / per_node * s / ring
        inter = 2.0 * (nodes - 1) / nodes * (s / per_node) / net
        body = intra + inter
    elif kind == "all_gather":
        intra = (per_node - 1) * nodes * s / (fig.intra_bandwidth_bytes_per_s * p["allgather_intra_fraction"])
        inter = (nodes - 1) * s / net
        body = intra + inter
    elif kind == "reduce_scatter":
        intra = (per_node - 1) / per_node * s / (fig.intra_bandwidth_bytes_per_s
                                                 * p["reduce_scatter_intra_fraction"])
        inter = (nodes - 1) / nodes * (s / per_node) / net
        body = intra + inter
    else:  # all_to_all (and the unequal variant, priced on its per-rank buffer)
        intra = (per_node - 1) / n * s / a2a
        inter = (n - per_node) / n * s / net
        body = max(intra, inter)
    fault_s = fresh_mapping_fault_s(p, fig, {"all_gather": n * s, "reduce_scatter": s}.get(kind, 0.0))
    return latency + body + fault_s, {"latency_s": latency, "intra_s": intra, "inter_s": inter,
                                      "page_fault_s": fault_s}
