"""The DLRM training step as a program of work items, and the SimPy processes that run it.

:func:`build_program` turns a workload, a sharding plan's device class and a cost model into the ordered
list of :class:`Item` s one rank's host thread issues in a step (DESIGN.md, "The discrete-event step
model")::

    input (H2D) -> lengths and ids all-to-all -> embedding fwd -> pooled all-to-all (row-wise:
    reduce-scatter) | bottom MLP -> interaction -> top MLP + loss -> top MLP bwd (dense gradients
    all-reduced in buckets as they become ready) -> interaction bwd -> gradient all-to-all (row-wise:
    all-gather) | bottom MLP bwd -> embedding bwd + sparse update -> dense optimizer step

The ``|`` marks work on the other stream that overlaps. On GPUs the host thread runs ahead of the device
except where it must read a result back (a sparse gradient's coalesce has a data-dependent size), which
is modelled as a host-device synchronisation after each table's backward.

Each item is a run of ops on one stream (``compute`` or ``comm``) that waits for earlier items.
Three small generators per rank run it: :func:`host_thread` (launches ops; on a CPU it also runs the
compute items, since host and device are the same cores), and :func:`stream` for each of the two
streams. A collective item joins a :class:`planner.sim.resources.Barrier` shared by the device classes:
it starts when the slowest class arrives and lasts as long as the slowest class's part. The processes
never print; they append ``(kind, phase, start_s, end_s)`` records to the rank's trace.

A step's dense ops share the cache with everything else the step touches, where a benchmark times each
op alone with its operands left in the cache by its previous call. Every GEMM, interaction and
element-wise op of the step therefore carries ``context_bytes``: the rank's dense working data
(:func:`planner.memory.dense_working_bytes`) and the distinct embedding rows its tables read
(:meth:`~planner.cost.registry.AnalyticCostModel.embedding_step_bytes`). A step whose data fits in the
cache with the op's own prices it as warm as the benchmark; a step that overflows the cache reads the
op's weights and writes its outputs through memory. On this project's 2-core Xeon VM the forward of a
13-table DLRM (batch 1024) took 4.3 ms repeated on its own, 5.5 ms after 256 MiB of other data had
passed through the cache and 5.4 ms inside a training step; its GEMMs, casts, concatenations and
lookups each lost a little, none much.
"""

from __future__ import annotations

import copy
from collections.abc import Generator
from dataclasses import dataclass, replace
from typing import Any

import simpy

from planner import memory
from planner.cost.embedding import COALESCING
from planner.cost.memory_bound import optimizer_ops, optimizer_step_bytes
from planner.interfaces import CollectiveOp, CostModel, GemmOp, InteractionOp, MemoryOp
from planner.model import HardwareProfile, Workload
from planner.sharding import DeviceClass, ShardingPlan, expand_tables, shard_ops
from planner.sim.resources import Barrier
from planner.workload import interaction_output_width, mlp_layer_shapes

#: Element-wise kernels of ``BCEWithLogitsLoss`` forward and backward over the logits (the profiler's
#: count of the reference model's loss on a CPU, fp32: 3 fills, 3 subs, 2 muls, 2 copies, a sigmoid and
#: an add; the cast of fp32 logits is free).
LOSS_OPS = 12
#: Dense-gradient all-reduce buckets: PyTorch DDP's first bucket (1 MiB) and later buckets (25 MiB).
FIRST_BUCKET_BYTES = 1024 * 1024
BUCKET_BYTES = 25 * 1024 * 1024
#: Element-wise ops of one DCN cross layer's backward, ``x_{l+1} = x0 * V(U x_l) + x_l``: the multiply's two
#: products and the two adds that accumulate the gradients of x_l and x0 (the profiler's count of a
#: loss.backward() through 1-3 layers, low and full rank: 2 mul and 2 add per layer); V's bias gradient,
#: a column sum, comes on top.
DCN_BACKWARD_ELEMENTWISE = 4


@dataclass
class Item:
    """A run of ops on one stream: base device seconds, host launch seconds and spread per op."""

    name: str
    phase: str
    stream: str
    device_s: list[float]
    host_s: list[float]
    sigma: list[float]
    waits: tuple[str, ...] = ()
    sync: str | None = None
    collective: str = ""
    offset: int = 0  # index of the first op in the class's flat op arrays
    launches: int = 0
    host_sync: bool = False  # the host waits for the item to finish before launching more


@dataclass
class Program:
    """One device class's step: items in host order and the flat op count."""

    items: list[Item]
    ops: int
    launches: int
    serial_host: bool


def _shares_cache(op: Any) -> bool:
    """Whether ``op`` works on data in the device's cache (its dense ops; not host transfers)."""
    if isinstance(op, MemoryOp):
        return op.kind not in ("h2d", "d2h")
    return isinstance(op, (GemmOp, InteractionOp))


class _Builder:
    """Collects items, pricing ops with the cost model (memoised inside it)."""

    def __init__(self, cost: CostModel, serial_host: bool) -> None:
        self.cost = cost
        self.host_s = float(cost.host_overhead_s())
        # ops whose bench timing holds their host work add only the cold-code share (serial hosts)
        self.cold_host_s = self.host_s * float(getattr(cost, "cold_dispatch_share", lambda: 1.0)())
        self.serial_host = serial_host
        self.context_bytes = 0.0  # the step's other data competing for the cache (module docstring)
        self.items: list[Item] = []
        self.ops = 0
        self.launches = 0
        self._open: Item | None = None

    def begin(self, name: str, phase: str, stream: str = "compute", waits: tuple[str, ...] = (),
              sync: str | None = None, collective: str = "", host_sync: bool = False) -> None:
        self.end()
        self._open = Item(name, phase, stream, [], [], [], waits, sync, collective, self.ops,
                          host_sync=host_sync)

    def op(self, op: Any, repeat: int = 1) -> None:
        if self.context_bytes > 0 and _shares_cache(op):
            op = replace(op, context_bytes=self.context_bytes)
        est = self.cost.predict(op)
        item = self._open
        assert item is not None  # internal invariant, not user input
        held = est.host_in_bench and self.serial_host
        host_s = est.launches * (self.cold_host_s if held else self.host_s)
        for _ in range(repeat):
            item.device_s.append(float(est.time_s))
            item.host_s.append(host_s)
            item.sigma.append(float(est.sigma_rel))
            self.ops += 1
            self.launches += est.launches
            item.launches += est.launches

    def host_before_first(self, seconds: float) -> None:
        """Add ``seconds`` of host time before the first op of the open item (a once-per-step cost)."""
        item = self._open
        if item is not None and item.host_s:
            item.host_s[0] += seconds

    def extend(self, items: list[Item]) -> None:
        """Append ready-made items (shared sections), renumbering their op offsets."""
        self.end()
        for it in items:
            clone = copy.copy(it)
            clone.offset = self.ops
            self.items.append(clone)
            self.ops += len(it.device_s)
            self.launches += it.launches

    def end(self) -> None:
        if self._open is not None:
            if self._open.device_s:
                self.items.append(self._open)
            self._open = None


def _elementwise(b: _Builder, nbytes: float, elem: int = 4) -> None:
    """An element-wise op moving ``nbytes``; ``elem`` is the byte size of the elements it computes on (2
    for bf16/fp16 arithmetic and casts, 4 for fp32 and for copies such as cat, which convert nothing)."""
    b.op(MemoryOp("elementwise", float(nbytes), int(elem)))


def _linear_forward(b: _Builder, batch: int, fan_in: int, fan_out: int, precision: str, act: int,
                    relu: bool, autocast: bool, cast_input: bool) -> None:
    if autocast:  # autocast casts the fp32 weight and the bias to the compute dtype every forward (two
        _elementwise(b, fan_in * fan_out * (4 + act), act)  # kernels: a copy each)
        _elementwise(b, fan_out * (4 + act), act)
        if cast_input:
            _elementwise(b, batch * fan_in * (4 + act), act)
    b.op(GemmOp(batch, fan_out, fan_in, precision))
    if relu:
        _elementwise(b, 2 * batch * fan_out * act, act)


def _gradient_gemms(b: _Builder, batch: int, fan_in: int, fan_out: int, precision: str,
                    input_grad: bool = True) -> None:
    """A layer's gradient GEMMs: the input gradient (batch x fan_in over fan_out), unless the input needs
    none, and the weight gradient dYᵀ X (fan_out x fan_in over the batch, its first operand transposed)."""
    if input_grad:
        b.op(GemmOp(batch, fan_in, fan_out, precision))
    b.op(GemmOp(fan_out, fan_in, batch, precision, transposed_a=True))


def _linear_backward(b: _Builder, batch: int, fan_in: int, fan_out: int, precision: str, act: int,
                     relu: bool, autocast: bool, input_grad: bool) -> None:
    if relu:  # threshold_backward: read grad and output, write grad
        _elementwise(b, 3 * batch * fan_out * act, act)
    _gradient_gemms(b, batch, fan_in, fan_out, precision, input_grad)
    _elementwise(b, batch * fan_out * act + fan_out * 4, act)  # bias gradient: column sum
    if autocast:  # the weight's and the bias's gradients cast back to their fp32 masters (two kernels)
        _elementwise(b, fan_in * fan_out * (act + 4), act)
        _elementwise(b, fan_out * (act + 4), act)


@dataclass(frozen=True)
class CommSizes:
    """Per-rank collective buffer sizes of one device class, in bytes."""

    ids: float
    pooled: float
    row_scatter: float
    row_gather: float
    data_parallel_grad: float


def comm_sizes(workload: Workload, plan: ShardingPlan, dclass: DeviceClass, local: int,
               batch: int) -> CommSizes:
    """Bytes each rank of ``dclass`` sends in the step's embedding collectives (largest of send/receive)."""
    act = memory.act_elem_bytes(workload)
    emb = memory.emb_elem_bytes(workload)
    dim = workload.model.embedding_dim
    kinds = plan.table_kinds
    tables = expand_tables(workload)
    mp_tables = [t for t, k in zip(tables, kinds, strict=True) if k in ("table", "column")]
    row_tables = [t for t, k in zip(tables, kinds, strict=True) if k == "row"]
    ids_send = local * sum(t.pooling for t in mp_tables + row_tables) * memory.INDEX_BYTES
    ids_recv = sum(s.batch * s.pooling for s in dclass.shards if s.kind != "data") * memory.INDEX_BYTES
    pooled_send = sum(s.batch * s.dim for s in dclass.shards if s.kind in ("table", "column")) * act
    pooled_recv = local * dim * len(mp_tables) * act
    row_dims = dim * len(row_tables)
    dp_grad = sum(s.rows * s.dim for s in dclass.shards if s.kind == "data") * emb
    return CommSizes(max(ids_send, ids_recv), max(pooled_send, pooled_recv), batch * row_dims * act,
                     local * row_dims * act, dp_grad)


def build_program(workload: Workload, profile: HardwareProfile, plan: ShardingPlan, dclass: DeviceClass,
                  cost: CostModel, devices: int, batch: int, *, serial_host: bool,
                  cache: dict | None = None) -> Program:
    """The ordered items of one training step on a rank of ``dclass`` (see the module docstring).

    ``cache`` (a dict shared by the classes of one plan) keeps the dense working bytes, identical on every
    rank, and the dense sections, per context (ranks whose tables read as many bytes share them).
    """
    m = workload.model
    act = memory.act_elem_bytes(workload)
    autocast = workload.training.precision in ("bf16", "fp16")
    local = memory.local_batch(workload, devices, batch)
    per_node = min(devices, int(profile.node.devices))
    b = _Builder(cost, serial_host)
    multi = devices > 1
    sizes = comm_sizes(workload, plan, dclass, local, batch)
    fig = memory.dense_figures(workload)

    def coll(kind: str, nbytes: float) -> None:
        b.op(CollectiveOp(kind, float(nbytes), devices, per_node))  # type: ignore[arg-type]

    if cache is None:
        cache = {}
    fwd_ops, bwd_ops, dp_bwd_ops, dp_update_ops = [], [], [], []
    bwd_groups: list[list] = []
    shard_op_lists = [shard_ops(workload, shard, profile) for shard in dclass.shards]
    if "dense_bytes" not in cache:  # the same on every rank of the plan
        cache["dense_bytes"] = memory.dense_working_bytes(workload, devices, batch)
    step_bytes_of = getattr(cost, "embedding_step_bytes", None)
    forwards = [f[0] for f, _ in shard_op_lists]
    b.context_bytes = cache["dense_bytes"] + (step_bytes_of(forwards) if step_bytes_of is not None else 0.0)
    shares_of = getattr(cost, "embedding_cache_shares", None)
    if shares_of is not None and shard_op_lists:  # the tables share the cache with each other and the dense
        shares = shares_of(forwards, cache["dense_bytes"])
        evicted_of = getattr(cost, "embedding_evicted_bytes", None)
        evicted = (evicted_of(forwards, cache["dense_bytes"]) if evicted_of is not None
                   else [0.0] * len(forwards))
        shard_op_lists = [([replace(f[0], cache_share=share), *f[1:]],
                           [replace(bw[0], cache_share=share, evicted_bytes=gone), *bw[1:]])
                          for (f, bw), share, gone in zip(shard_op_lists, shares, evicted, strict=True)]
    for shard, (f, bw) in zip(dclass.shards, shard_op_lists, strict=True):
        fwd_ops.extend(f)
        if shard.kind == "data":
            dp_bwd_ops.extend(bw[:-1])
            dp_update_ops.append(bw[-1])
        else:
            bwd_ops.extend(bw)
            bwd_groups.append(bw)
    dense = cache.get(("dense", b.context_bytes))
    if dense is None:  # the same on every rank whose tables touch as much
        dense = _dense_sections(workload, cost, devices, batch, per_node, serial_host, len(plan.table_kinds),
                                dp_update_ops, b.context_bytes)
        cache[("dense", b.context_bytes)] = dense
    forward_dense, backward_top, backward_bottom, optimizer = dense
    # ---- input
    if profile.kind != "cpu":
        b.begin("h2d", "input")
        b.op(MemoryOp("h2d", 2.0 * local * fig.input_bytes_per_sample))
    if multi and sizes.ids > 0:
        # TorchRec's input distribution: an all-to-all of the per-bag lengths (int32), then of the ids.
        b.begin("lengths_a2a", "input_a2a", "comm", ("h2d",), "lengths", "all_to_all")
        coll("all_to_all", local * len(plan.table_kinds) * 4.0)
        b.begin("ids_a2a", "input_a2a", "comm", ("h2d",), "ids", "all_to_all")
        coll("all_to_all", sizes.ids)
    # ---- embedding forward on the local shards
    b.begin("emb_fwd", "embedding_fwd", waits=("ids_a2a",))
    for op in fwd_ops:
        b.op(op)
    if autocast:  # pooled outputs cast to the compute dtype
        _elementwise(b, local * m.embedding_dim * len(plan.table_kinds)
                     * (memory.emb_elem_bytes(workload) + act), act)
    if multi and sizes.pooled > 0:
        b.begin("pooled_a2a", "a2a_fwd", "comm", ("emb_fwd",), "pooled", "all_to_all")
        coll("all_to_all", sizes.pooled)
    if multi and sizes.row_scatter > 0:
        b.begin("row_rs", "a2a_fwd", "comm", ("emb_fwd",), "row_rs", "reduce_scatter")
        coll("reduce_scatter", sizes.row_scatter)
    # ---- bottom MLP (overlapping the pooled all-to-all), interaction, top MLP, top and interaction bwd
    b.extend(forward_dense)
    b.extend(backward_top)
    # ---- gradient all-to-all (overlapping the bottom MLP backward)
    if multi and sizes.pooled > 0:
        b.begin("grad_a2a", "a2a_bwd", "comm", ("inter_bwd",), "grad_a2a", "all_to_all")
        coll("all_to_all", sizes.pooled)
    if multi and sizes.row_gather > 0:
        b.begin("row_ag", "a2a_bwd", "comm", ("inter_bwd",), "row_ag", "all_gather")
        coll("all_gather", sizes.row_gather)
    step_call_s = float(getattr(cost, "sparse_step_call_s", lambda: 0.0)())

    def sparse_step_call() -> None:
        """The sparse optimizer's step() call: once per step, before the first embedding update."""
        nonlocal step_call_s
        b.host_before_first(step_call_s)
        step_call_s = 0.0

    if dp_bwd_ops:
        b.begin("dp_emb_bwd", "embedding_bwd_update", waits=("inter_bwd",))
        for op in dp_bwd_ops:
            b.op(op)
        sparse_step_call()
    b.extend(backward_bottom)
    if multi and sizes.data_parallel_grad > 0:
        b.begin("dp_allreduce", "allreduce_exposed", "comm", ("dp_emb_bwd",), "dp_ar", "all_reduce")
        coll("all_reduce", sizes.data_parallel_grad)
    # ---- embedding backward + sparse update, then the dense optimizer step (after every all-reduce)
    if bwd_ops and serial_host:
        b.begin("emb_bwd", "embedding_bwd_update", waits=("inter_bwd", "grad_a2a", "row_ag"))
        for op in bwd_ops:
            b.op(op)
        sparse_step_call()
    elif bwd_ops:
        # Coalescing a sparse gradient (sort + unique) has a data-dependent size: the host reads it back,
        # waiting for the device, once per table before it can launch the rest of the update.
        sync = memory.sparse_optimizer(workload) in COALESCING
        for k, ops in enumerate(bwd_groups):
            b.begin(f"emb_bwd_{k}", "embedding_bwd_update", waits=("inter_bwd", "grad_a2a", "row_ag"),
                    host_sync=sync)
            for op in ops:
                b.op(op)
            if k == 0:
                sparse_step_call()
    b.end()
    ar_names = tuple(i.name for i in b.items if i.collective == "all_reduce")
    b.extend([replace(it, waits=it.waits + ar_names) for it in optimizer])
    return Program(b.items, b.ops, b.launches, serial_host)


def _dense_sections(workload: Workload, cost: CostModel, devices: int, batch: int, per_node: int,
                    serial_host: bool, tables: int, dp_update_ops: list,
                    context_bytes: float = 0.0) -> tuple[list[Item], ...]:
    """Items every rank runs alike: forward dense, backward top (with buckets), backward bottom, optimizer;
    their ops share the cache with ``context_bytes`` of the step's other data (module docstring)."""
    m = workload.model
    t = workload.training
    precision = t.precision
    act = memory.act_elem_bytes(workload)
    autocast = precision in ("bf16", "fp16")
    local = memory.local_batch(workload, devices, batch)
    b = _Builder(cost, serial_host)
    b.context_bytes = context_bytes
    multi = devices > 1
    fig = memory.dense_figures(workload)
    bottom = mlp_layer_shapes(m.dense_features, m.bottom_mlp)
    b.begin("bottom_fwd", "bottom_mlp")
    for i, (fi, fo) in enumerate(bottom):
        _linear_forward(b, local, fi, fo, precision, act, True, autocast, i == 0)
    width = interaction_output_width(workload)
    features = tables + 1
    d = m.embedding_dim
    b.begin("inter_fwd", "interaction", waits=("emb_fwd", "pooled_a2a", "row_rs"))
    inter = m.interaction
    dcn_shapes: list[tuple[int, int]] = []
    if inter.kind == "dot":
        _elementwise(b, 2 * local * features * d * act)  # stack
        b.op(InteractionOp(local, features, d, precision, "forward"))
        _elementwise(b, 2 * local * width * act)  # cat with the bottom output
    else:
        _elementwise(b, 2 * local * width * act)  # cat
        for _ in range(inter.cross_layers if inter.kind == "dcn" else 0):
            rank = inter.low_rank
            shapes = [(width, rank), (rank, width)] if rank else [(width, width)]
            for fi, fo in shapes:
                if autocast:
                    _elementwise(b, (fi * fo + fo) * (4 + act), act)
                b.op(GemmOp(local, fo, fi, precision))
                dcn_shapes.append((fi, fo))
            _elementwise(b, 3 * local * width * act, act)  # x0 * h
            _elementwise(b, 3 * local * width * act, act)  # + x
    top = mlp_layer_shapes(width, m.top_mlp)
    b.begin("top_fwd", "top_mlp")
    for i, (fi, fo) in enumerate(top):
        _linear_forward(b, local, fi, fo, precision, act, i < len(top) - 1, autocast, False)
    for _ in range(LOSS_OPS):  # BCE-with-logits forward and backward, its seed and casts
        _elementwise(b, 3 * local * 4)
    b.end()
    forward_dense = list(b.items)
    b.items.clear()
    # ---- backward: dense gradients bucketed (reverse layer order) as they become ready
    buckets: list[tuple[str, float]] = []
    state = {"pending": 0.0, "limit": float(FIRST_BUCKET_BYTES), "flushed": 0}

    def grads_ready(item_name: str, nbytes: float, last: bool = False) -> None:
        state["pending"] += nbytes
        if multi and (state["pending"] >= state["limit"] or (last and state["pending"] > 0)):
            buckets.append((item_name, state["pending"]))
            state["pending"] = 0.0
            state["limit"] = float(BUCKET_BYTES)

    def flush_buckets() -> None:
        while buckets:
            after, nbytes = buckets.pop(0)
            key = f"allreduce_{int(state['flushed'])}"
            state["flushed"] += 1
            b.begin(key, "allreduce_exposed", "comm", (after,), key, "all_reduce")
            b.op(CollectiveOp("all_reduce", float(nbytes), devices, per_node))

    start_s = float(getattr(cost, "backward_start_s", lambda: 0.0)())
    for i in range(len(top) - 1, -1, -1):
        fi, fo = top[i]
        name = f"top_bwd_{i}"
        b.begin(name, "backward_dense")
        _linear_backward(b, local, fi, fo, precision, act, i < len(top) - 1, autocast, True)
        if i == len(top) - 1:
            b.host_before_first(start_s)  # the host starts the backward pass before its first launch
        grads_ready(name, 4.0 * (fi * fo + fo))
        flush_buckets()
    b.begin("inter_bwd", "backward_dense")
    if inter.kind == "dot":
        _elementwise(b, 2 * local * width * act)  # split of the cat gradient
        b.op(InteractionOp(local, features, d, precision, "backward"))
        _elementwise(b, 2 * local * features * d * act)  # unstack
    else:
        per_layer = len(dcn_shapes) // max(inter.cross_layers, 1)  # GEMMs per layer: 2 low rank, 1 full
        for layer in range(inter.cross_layers - 1, -1, -1):
            # autograd's ops per layer (counted with the profiler, low and full rank alike): the multiply's
            # two products (g * h, g * x0) and two adds accumulating the gradients of x_l and x0, each
            # reading two B x width tensors and writing one
            for _ in range(DCN_BACKWARD_ELEMENTWISE):
                _elementwise(b, 3 * local * width * act, act)
            for fi, fo in reversed(dcn_shapes[layer * per_layer:(layer + 1) * per_layer]):
                _gradient_gemms(b, local, fi, fo, precision)
                if autocast:
                    _elementwise(b, (fi * fo + fo) * (act + 4), act)
            _elementwise(b, local * width * act + width * 4, act)  # V's bias gradient: column sum
        _elementwise(b, 2 * local * width * act)  # split of the cat gradient
    dense_inter = fig.dense_params - sum(i * o + o for i, o in bottom + top)
    grads_ready("inter_bwd", 4.0 * dense_inter)
    flush_buckets()
    b.end()
    backward_top = list(b.items)
    b.items.clear()
    for i in range(len(bottom) - 1, -1, -1):
        fi, fo = bottom[i]
        name = f"bottom_bwd_{i}"
        b.begin(name, "backward_dense")
        _linear_backward(b, local, fi, fo, precision, act, True, autocast, i > 0)
        grads_ready(name, 4.0 * (fi * fo + fo), last=(i == 0))
        flush_buckets()
    b.end()
    backward_bottom = list(b.items)
    b.items.clear()
    b.begin("optimizer", "optimizer")
    opt = t.optimizer
    step_bytes = optimizer_step_bytes(opt, 4.0 * fig.dense_params)
    step_ops = optimizer_ops(opt).ops
    # torch.optim defaults to its multi-tensor (foreach) kernels only when every parameter is on an
    # accelerator; on CPUs it loops over the parameter tensors, launching each op once per tensor.
    per_tensor = serial_host
    b.op(MemoryOp("optimizer", step_bytes, optimizer=opt))
    for _ in range(fig.dense_tensors - 1 if per_tensor else 0):
        for _ in range(step_ops):
            _elementwise(b, 0.0)
    for op in dp_update_ops:
        b.op(op)
    b.end()
    return forward_dense, backward_top, backward_bottom, list(b.items)


# ------------------------------------------------------------------------------------------ processes
def _run_ops(start: float, launched: list[float], times: list[float]) -> list[tuple[float, float]]:
    """Busy runs ``(begin, end)`` of ops run in order on a stream free at ``start``, each op no earlier
    than its launch; a run breaks where the stream waits for the host."""
    runs: list[tuple[float, float]] = []
    begin = end = start
    for ready, dur in zip(launched, times, strict=True):
        if ready > end:
            if end > begin:
                runs.append((begin, end))
            begin = end = ready
        end += dur
    runs.append((begin, end))
    return runs


def host_thread(env: simpy.Environment, items: list[Item], times: list[list[float]], queues: dict,
                done: dict[str, simpy.Event], trace: list) -> Generator[Any, Any, None]:
    """Issue a step's items in order: pay each op's launch time, hand the item to its stream.

    On a serial host (CPU) compute items run here, op after op, their launch cost added to their time.
    """
    serial = queues.get("serial", False)
    for item, dur in zip(items, times, strict=True):
        if serial and item.stream == "compute":
            waits = [done[n] for n in item.waits if n in done]
            if waits:
                yield simpy.AllOf(env, waits)
            start = env.now
            host = sum(item.host_s)
            yield env.timeout(host + sum(dur))
            trace.append(("host", "host_overhead_exposed", start, start + host))
            trace.append(("compute", item.phase, start + host, env.now))
            done[item.name].succeed()
            continue
        now = env.now
        launched = []
        acc = now
        for h in item.host_s:
            acc += h
            launched.append(acc)
        # The stream may start each op as soon as that op is launched, before the rest of the item is.
        queues[item.stream].put((item, dur, launched))
        if acc > now:
            yield env.timeout(acc - now)
        if item.host_sync:
            yield done[item.name]


def stream(env: simpy.Environment, name: str, queue: simpy.Store, count: int, barriers: dict[str, Barrier],
           done: dict[str, simpy.Event], trace: list) -> Generator[Any, Any, None]:
    """Run ``count`` items from ``queue`` in order, each after its waits (and its collective's peers)."""
    for _ in range(count):
        item, dur, launched = yield queue.get()
        waits = [done[n] for n in item.waits if n in done]
        if waits:
            yield simpy.AllOf(env, waits)
        if item.sync is not None:
            arrive = env.now
            span = yield barriers[item.sync].join(env, sum(dur))
            if env.now > arrive:
                trace.append(("wait", "load_imbalance", arrive, env.now))
            start = env.now
            yield env.timeout(span)
            trace.append((name, item.phase, start, env.now))
        else:
            start = env.now
            runs = _run_ops(start, launched, dur)
            yield env.timeout(runs[-1][1] - start)
            for begin, end in runs:
                trace.append((name, item.phase, begin, end))
        done[item.name].succeed()
