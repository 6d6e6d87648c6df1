"""Per-device memory of a DLRM training job: embedding shards, dense state, activations, buffers, overhead.

Every figure is in bytes. :class:`MemoryUse` is a breakdown with algebra (``hbm``/``host`` parts, ``+``,
``fits_in``) so a report can say *why* a job does not fit. The accounting is deliberately complete, so that
it never under-estimates (perf_models.md 4 lists the planners that ran out of memory by leaving terms out):

* embedding shards and their optimizer state, the state always in fp32 whatever the table's dtype (the
  TorchRec bugs #2652 and #4142 left it out or sized bf16 tables' fp32 state at half);
* tables kept in host memory (UVM) and their software cache in device memory with its slot metadata;
* dense parameters (fp32 master weights), their gradients, the optimizer state, the low-precision weight
  copies autocast keeps, and the data-parallel gradient buckets;
* activations kept for backward at the local batch, plus the activation gradients alive during backward;
* lookup outputs and their gradients, index buffers, the sparse gradients of the owned shards;
* communication buffers of the all-to-alls, the input batch double-buffered by the data pipeline;
* allocator overhead: a fraction of the transient tensors and, on GPUs, the runtime context.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from planner.memo import IdentityMemo
from planner.model import HardwareProfile, Workload
from planner.units import DTYPE_BYTES
from planner.workload import interaction_output_width, mlp_layer_shapes

#: Bytes of one int64 index or offset (the reference model's embedding_bag takes int64).
INDEX_BYTES = 8
#: Optimizer state per parameter element, in fp32 elements (SGD none; Adagrad one squared-gradient sum;
#: Adam two moments). Row-wise Adagrad keeps one fp32 value per row (see :func:`optimizer_state_bytes`).
_STATE_ELEMS = {"sgd": 0, "adagrad": 1, "rowwise_adagrad": 1, "adam": 2}
#: Software-cache slot metadata per cached row: the int64 row index, an int64 LRU/LFU stamp and an int32
#: lock counter (FBGEMM's lxu_cache_state, lxu_state and lxu_cache_locking_counter).
CACHE_SLOT_METADATA_BYTES = 20
#: Share of HBM TorchRec's planner leaves out of the budget for what it does not count (perf_models.md 4:
#: "reserve dense params + inputs + 15% HBM"); we count those terms, so this is the allocator's slack on
#: the transient tensors (fragmentation of the caching allocator's segments).
ALLOCATOR_SLACK_FRACTION = 0.15
#: CUDA/ROCm runtime context, kernel images and the collective library's buffers per device (of the
#: order of 0.5-1 GB on H100-class devices; assumed 1 GB so as not to under-estimate).
GPU_RUNTIME_BYTES = 1.0e9
#: The data pipeline keeps the next batch while the current one trains (TorchRec pipeline: 2x input).
INPUT_BUFFERS = 2
#: Bucket size of the dense gradient all-reduce (PyTorch DDP bucket_cap_mb default, 25 MiB).
DDP_BUCKET_BYTES = 25 * 1024 * 1024
#: Default share of a host-resident table cached in device memory (TorchRec caching ratio 0.2,
#: perf_models.md 4).
DEFAULT_CACHE_RATIO = 0.2


@dataclass(frozen=True)
class MemoryUse:
    """Memory of one device in bytes, split into device (HBM) and host parts with named components."""

    hbm_bytes: float
    host_bytes: float
    hbm_parts: dict[str, float] = field(default_factory=dict)
    host_parts: dict[str, float] = field(default_factory=dict)

    def __add__(self, other: MemoryUse) -> MemoryUse:
        hbm = dict(self.hbm_parts)
        for key, value in other.hbm_parts.items():
            hbm[key] = hbm.get(key, 0.0) + value
        host = dict(self.host_parts)
        for key, value in other.host_parts.items():
            host[key] = host.get(key, 0.0) + value
        return MemoryUse(self.hbm_bytes + other.hbm_bytes, self.host_bytes + other.host_bytes, hbm, host)

    @property
    def total_bytes(self) -> float:
        """Device plus host bytes."""
        return self.hbm_bytes + self.host_bytes

    def fits_in(self, hbm_capacity_bytes: float, host_capacity_bytes: float) -> bool:
        """Whether both parts fit in the given capacities (bytes)."""
        return self.hbm_bytes <= hbm_capacity_bytes and self.host_bytes <= host_capacity_bytes

    def to_dict(self) -> dict[str, object]:
        """Plain mapping for JSON output."""
        return {"hbm_bytes": self.hbm_bytes, "host_bytes": self.host_bytes,
                "hbm_parts": dict(self.hbm_parts), "host_parts": dict(self.host_parts)}


def act_elem_bytes(workload: Workload) -> int:
    """Bytes per activation element: the autocast dtype for bf16/fp16, else fp32."""
    return DTYPE_BYTES.get(workload.training.precision, 4)


def emb_elem_bytes(workload: Workload) -> int:
    """Bytes per embedding-table element."""
    return DTYPE_BYTES.get(workload.training.embedding_precision, 4)


def sparse_optimizer(workload: Workload) -> str:
    """The optimizer of the embedding tables (``sparse_optimizer`` or the dense one)."""
    return workload.training.sparse_optimizer or workload.training.optimizer


def optimizer_state_bytes(optimizer: str, rows: float, dim: int) -> float:
    """fp32 optimizer state of a ``rows`` x ``dim`` parameter, in bytes (row-wise Adagrad: one per row)."""
    if optimizer == "rowwise_adagrad":
        return 4.0 * rows
    return 4.0 * _STATE_ELEMS.get(optimizer, 2) * rows * dim


def shard_weight_bytes(workload: Workload, rows: float, dim: int) -> float:
    """Weights plus sparse optimizer state of an embedding shard, in bytes."""
    weights = rows * dim * emb_elem_bytes(workload)
    return weights + optimizer_state_bytes(sparse_optimizer(workload), rows, dim)


def shard_step_bytes(workload: Workload, dim: int, lookups: float, bags: float) -> float:
    """Per-step buffers of an owned embedding shard in bytes: outputs, their gradients, ids, sparse grads.

    ``lookups`` rows gathered for ``bags`` pooled outputs of width ``dim``.
    """
    emb = emb_elem_bytes(workload)
    act = act_elem_bytes(workload)
    outputs = bags * dim * (emb + act)  # pooled output (table dtype) and its gradient (activation dtype)
    ids = lookups * INDEX_BYTES + bags * INDEX_BYTES
    # Uncoalesced sparse gradient (one row and one index per lookup) and its coalesced copy (at most as big).
    sparse_grad = 2.0 * lookups * (dim * emb + INDEX_BYTES)
    return outputs + ids + sparse_grad


def cache_bytes(workload: Workload, cached_rows: float, dim: int) -> float:
    """Device bytes of a software cache of ``cached_rows`` rows of width ``dim``."""
    return cached_rows * (dim * emb_elem_bytes(workload) + CACHE_SLOT_METADATA_BYTES)


@dataclass(frozen=True)
class DenseFigures:
    """Per-sample activation bytes and dense parameter counts of a workload (computed once)."""

    dense_params: int
    dense_tensors: int
    saved_bytes_per_sample: float
    max_width_bytes_per_sample: float
    input_bytes_per_sample: float
    pooled_bytes_per_sample: float


_DENSE: IdentityMemo[Workload, DenseFigures] = IdentityMemo(256)


def dense_figures(workload: Workload) -> DenseFigures:
    """Dense parameters and the activation bytes per sample that autograd keeps for backward (memoised)."""
    return _DENSE(workload, _dense_figures)


def _dense_figures(workload: Workload) -> DenseFigures:
    m = workload.model
    act = act_elem_bytes(workload)
    autocast = workload.training.precision in ("bf16", "fp16")
    tables = sum(t.count for t in m.tables)
    d = m.embedding_dim
    params = 0
    tensors = 0
    saved = 0.0
    widest = float(m.dense_features)
    bottom = mlp_layer_shapes(m.dense_features, m.bottom_mlp)
    width = interaction_output_width(workload)
    top = mlp_layer_shapes(width, m.top_mlp)
    for shapes, relu_last in ((bottom, True), (top, False)):
        for i, (fan_in, fan_out) in enumerate(shapes):
            params += fan_in * fan_out + fan_out
            tensors += 2
            saved += fan_in * act + fan_out * act  # addmm input; ReLU output (or the logit)
            if autocast and i == 0:
                saved += fan_in * 4  # the fp32 input before its cast
            if relu_last or i < len(shapes) - 1:
                saved += fan_out * act
            widest = max(widest, fan_in, fan_out)
    features = tables + 1
    pooled = tables * d * (emb_elem_bytes(workload) + (act if autocast else 0))
    saved += pooled
    inter = m.interaction
    if inter.kind == "dot":
        saved += features * d * act + features * features * act + width * act
    elif inter.kind == "cat":
        saved += width * act
    else:
        rank = inter.low_rank
        for _ in range(inter.cross_layers):
            if rank:
                params += width * rank + rank * width + width
                tensors += 3
                saved += (width + rank + 2 * width) * act
            else:
                params += width * width + width
                tensors += 2
                saved += 3 * width * act
        saved += width * act
    widest = max(widest, width, features * features)
    lookups = sum(t.pooling * t.count for t in m.tables)
    input_bytes = m.dense_features * 4 + lookups * INDEX_BYTES + tables * INDEX_BYTES + 4
    return DenseFigures(int(params), int(tensors), float(saved), float(widest * act), float(input_bytes),
                        float(tables * d * act))


def dense_state_bytes(workload: Workload, devices: int) -> dict[str, float]:
    """Dense parameters, gradients, optimizer state, autocast copies and gradient buckets per device."""
    fig = dense_figures(workload)
    p = float(fig.dense_params)
    opt = workload.training.optimizer
    parts = {
        "dense_params": 4.0 * p,
        "dense_grads": 4.0 * p,
        "dense_optimizer": optimizer_state_bytes("adagrad" if opt == "rowwise_adagrad" else opt, p, 1),
    }
    if workload.training.precision in ("bf16", "fp16"):
        parts["autocast_weight_copies"] = 2.0 * p
    if devices > 1:
        parts["allreduce_buckets"] = 4.0 * p  # DDP buckets hold a copy of the gradients
    return parts


def local_batch(workload: Workload, devices: int, batch_size: int | None = None) -> int:
    """Samples each device trains on per step (the global batch split evenly, rounded up)."""
    batch = int(batch_size or workload.training.batch_size)
    return max(1, math.ceil(batch / max(1, devices)))


def activation_bytes(workload: Workload, devices: int, batch_size: int | None = None) -> dict[str, float]:
    """Activations, their gradients, the pooled-embedding buffers and the input batch on one device."""
    fig = dense_figures(workload)
    b = local_batch(workload, devices, batch_size)
    parts = {
        "activations": b * fig.saved_bytes_per_sample,
        # gradients of the two widest activations alive at once during backward
        "activation_grads": 2.0 * b * fig.max_width_bytes_per_sample,
        "input_batch": INPUT_BUFFERS * b * fig.input_bytes_per_sample,
    }
    if devices > 1:
        # received pooled embeddings (forward) and the gradients sent back (backward)
        parts["alltoall_buffers"] = 2.0 * b * fig.pooled_bytes_per_sample
    return parts


def dense_working_bytes(workload: Workload, devices: int, batch_size: int | None = None) -> float:
    """The dense working data one step touches on a device, in bytes: activations and their gradients,
    the batch being trained on (one of the ``INPUT_BUFFERS``: the prefetched one is not touched) and the
    all-to-all buffers (:func:`activation_bytes`), dense weights, gradients, optimizer state, autocast
    copies and all-reduce buckets (:func:`dense_state_bytes`). The step model counts them as the traffic
    that competes with the embedding tables for the cache between two steps' lookups."""
    transient = activation_bytes(workload, devices, batch_size)
    transient["input_batch"] /= INPUT_BUFFERS
    return sum(dense_state_bytes(workload, devices).values()) + sum(transient.values())


def base_memory(workload: Workload, profile: HardwareProfile, devices: int,
                batch_size: int | None = None) -> MemoryUse:
    """Device memory independent of the embedding placement (dense state, activations, buffers, runtime)."""
    parts = dense_state_bytes(workload, devices)
    transient = activation_bytes(workload, devices, batch_size)
    parts.update(transient)
    parts["allocator_slack"] = ALLOCATOR_SLACK_FRACTION * sum(transient.values())
    if profile.kind != "cpu":
        parts["runtime_context"] = GPU_RUNTIME_BYTES
    return MemoryUse(sum(parts.values()), 0.0, parts, {})


def host_capacity_per_device(profile: HardwareProfile) -> float:
    """Host memory available to one device's host-resident tables, in bytes (the node's DRAM shared)."""
    if profile.kind == "cpu":
        return 0.0  # the device memory already is the DRAM
    return float(profile.node.host_memory_bytes) / max(1, int(profile.node.devices))
