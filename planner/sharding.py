"""Placement of embedding tables on devices: table-, row-, column-wise, data-parallel and host (UVM) shards.

A :class:`ShardingPlan` lists the shards every device owns, grouped into :class:`DeviceClass` es of ranks
with identical shards (symmetric ranks are simulated once). Kinds:

* ``table``: each table whole on one device, placed greedily (longest processing time first) by its
  estimated cost under the per-device memory budget, then refined by moves and swaps between the most and
  the least loaded device (TorchRec's greedy partitioner stops after the first pass);
* ``column``: each table cut into column chunks (as many as devices allow, no narrower than one memory
  access unit of the device), chunks placed as in ``table``;
* ``row``: each table split by rows over all devices (partial sums are reduce-scattered);
* ``data``: every table replicated, gradients all-reduced;
* ``auto``: small tables whose gradient all-reduce moves no more bytes than their pooled all-to-all are
  data-parallel, the others cut into just enough column chunks that no chunk exceeds the mean per-device
  load (and that each fits the memory budget), placed greedily and refined; the engine compares this plan
  with ``table`` and ``row`` by simulation and keeps the fastest that fits. Balancing uses device time
  only, so the plan does not depend on the network (more bandwidth can then only speed a step up).
* one device: every table whole on it (all kinds are the same there).

A shard that fits in no device's memory budget goes to host memory (UVM) behind a software cache in device
memory sized ``DEFAULT_CACHE_RATIO`` of the shard (capped by the device memory left once every shard is
placed, shared by the device's host shards in proportion to the caches they want); the cache's hit
fraction follows from the index distribution (Zipf mass of the hottest cached rows, or cached/rows for
uniform access). Costs are seconds per training step; memory is bytes.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

from planner import memory
from planner.cost.embedding import hit_fraction, row_bytes, unique_rows
from planner.cost.memory_bound import optimizer_step_bytes
from planner.interfaces import CostModel, EmbeddingOp, MemoryOp
from planner.memo import IdentityMemo
from planner.model import HardwareProfile, Workload

SHARDING_KINDS = ("auto", "table", "row", "column", "data")
#: Local-search rounds of the refinement after the greedy pass (each moves or swaps one shard).
REFINE_ROUNDS = 64


@dataclass(frozen=True, order=True)
class Shard:
    """One piece of one table on one device.

    ``rows`` x ``dim`` elements are stored; each of ``batch`` bags per step looks up ``pooling`` rows of
    this shard (row-wise shards see their share of the table's lookups). ``on_host`` shards live in host
    memory behind ``cached_rows`` rows of device cache that serve ``hit`` of the lookups.
    """

    table: int
    kind: str
    rows: int
    dim: int
    pooling: float
    batch: int
    on_host: bool = False
    cached_rows: float = 0.0
    hit: float = 1.0


@dataclass(frozen=True)
class DeviceClass:
    """Ranks with identical shards: ``count`` ranks like ``rank``; their estimated embedding cost in s."""

    rank: int
    count: int
    shards: tuple[Shard, ...]
    cost_s: float
    embedding_hbm_bytes: float
    embedding_host_bytes: float
    cache_bytes: float = 0.0


@dataclass(frozen=True)
class ShardingPlan:
    """Where every table lives: the plan kind, the device classes and summary figures."""

    kind: str
    devices: int
    classes: tuple[DeviceClass, ...]
    imbalance_ratio: float
    tables_on_host: int
    table_kinds: tuple[str, ...]
    fits: bool
    reason: str = ""
    unplaced_bytes: float = 0.0  # shards that fit nowhere (a plan that does not fit): counted in the total
    largest_unplaced_bytes: float = 0.0  # the largest of them: a device would need at least this much more

    def summary(self) -> dict[str, object]:
        """Plain mapping for JSON output."""
        counts: dict[str, int] = {}
        for kind in self.table_kinds:
            counts[kind] = counts.get(kind, 0) + 1
        return {"kind": self.kind, "imbalance_ratio": self.imbalance_ratio,
                "tables_on_host": self.tables_on_host, "table_kinds": counts,
                "device_classes": len(self.classes)}


@dataclass(frozen=True)
class TableInfo:
    """One embedding table after ``count`` expansion."""

    index: int
    rows: int
    pooling: float


_EXPANDED: IdentityMemo[Workload, list[TableInfo]] = IdentityMemo(256)


def expand_tables(workload: Workload) -> list[TableInfo]:
    """Every table of the workload, ``count`` repeats expanded, in order (memoised per workload object)."""
    return _EXPANDED(workload, _expand)


def _expand(workload: Workload) -> list[TableInfo]:
    out: list[TableInfo] = []
    for spec in workload.model.tables:
        for _ in range(int(spec.count)):
            out.append(TableInfo(len(out), int(spec.rows), float(spec.pooling)))
    return out


# ------------------------------------------------------------------------------------------ shard costs
def shard_ops(workload: Workload, shard: Shard, profile: HardwareProfile) -> tuple[list, list]:
    """The forward and backward(+update) ops of one shard, as lists of op records."""
    emb = memory.emb_elem_bytes(workload)
    zipf = float(workload.training.access.exponent) if workload.training.access.kind == "zipf" else 0.0
    optimizer = memory.sparse_optimizer(workload)
    optimizer_bwd = "none" if shard.kind == "data" else optimizer
    fwd: list = [EmbeddingOp(shard.rows, shard.dim, shard.pooling, shard.batch, emb, "forward", optimizer,
                             zipf)]
    bwd: list = [EmbeddingOp(shard.rows, shard.dim, shard.pooling, shard.batch, emb, "backward",
                             optimizer_bwd, zipf)]
    if shard.on_host:
        access = int(profile.efficiency.embedding_access_bytes)
        rbytes = row_bytes(shard.dim, emb, access)
        lookups = shard.batch * shard.pooling
        missed = lookups * (1.0 - shard.hit)
        # MemoryOp bytes count read + write; a host transfer moves half of them across the link.
        fwd.append(MemoryOp("h2d", 2.0 * missed * rbytes))
        touched = unique_rows(shard.rows, lookups, zipf) * (1.0 - shard.hit)
        state = memory.optimizer_state_bytes(optimizer, 1, shard.dim)
        bwd.append(MemoryOp("h2d", 2.0 * touched * (rbytes + state)))
        bwd.append(MemoryOp("d2h", 2.0 * touched * (rbytes + state)))
    if shard.kind == "data":
        bwd.append(MemoryOp("optimizer", optimizer_step_bytes(optimizer, shard.rows * shard.dim * emb),
                            optimizer=optimizer))
    return fwd, bwd


def shard_compute_s(workload: Workload, shard: Shard, profile: HardwareProfile, cost: CostModel) -> float:
    """Estimated device seconds per step of one shard (forward plus backward and update)."""
    fwd, bwd = shard_ops(workload, shard, profile)
    return sum(cost.predict(op).time_s for op in fwd) + sum(cost.predict(op).time_s for op in bwd)


# ------------------------------------------------------------------------------------------ planning
class _Placer:
    """Greedy longest-processing-time placement under a memory budget, with a refinement pass."""

    def __init__(self, workload: Workload, profile: HardwareProfile, devices: int, cost: CostModel,
                 budget_bytes: float) -> None:
        self.workload = workload
        self.profile = profile
        self.devices = devices
        self.cost = cost
        self.load = [0.0] * devices
        self.free = [budget_bytes] * devices
        self.host_free = [memory.host_capacity_per_device(profile)] * devices
        self.owned: list[list[tuple[Shard, float, float]]] = [[] for _ in range(devices)]
        self.per_node = min(devices, int(profile.node.devices))
        self.failed = ""
        self.hosted = False  # some shard went to host memory (size_caches has caches to size)
        self.unplaced_bytes = 0.0  # weights and step buffers of the shards that fit nowhere
        self.largest_unplaced_bytes = 0.0
        # Free memory only shrinks while placing, so a shard at least as large as one that found no room
        # finds none either: skipping the search keeps placement O(shards log devices) when many shards fit
        # nowhere (10,000 huge tables on a million devices took minutes).
        self._no_device_room = math.inf
        self._no_host_room = (math.inf, math.inf)

    def shard_cost(self, shard: Shard) -> float:
        # Device time only: the all-to-all volume follows the owned columns, which the balance of compute
        # already spreads; keeping the network out makes the plan independent of its bandwidth.
        return shard_compute_s(self.workload, shard, self.profile, self.cost)

    def shard_bytes(self, shard: Shard) -> float:
        return memory.shard_weight_bytes(self.workload, shard.rows, shard.dim) + memory.shard_step_bytes(
            self.workload, shard.dim, shard.batch * shard.pooling, shard.batch)

    def place(self, shards: list[Shard]) -> None:
        items = sorted(((self.shard_cost(s), s) for s in shards), key=lambda x: (-x[0], x[1]))
        heap = [(0.0, d) for d in range(self.devices)]
        for cost_s, shard in items:
            need = self.shard_bytes(shard)
            popped = []
            chosen = -1
            while heap and need < self._no_device_room:
                load, d = heapq.heappop(heap)
                if load != self.load[d]:
                    continue
                popped.append((load, d))
                if self.free[d] >= need:
                    chosen = d
                    break
            for entry in popped:
                if entry[1] != chosen:
                    heapq.heappush(heap, entry)
            if chosen < 0:
                self._no_device_room = min(self._no_device_room, need)
                chosen, shard, cost_s, need = self._host_place(shard)
                if chosen < 0:
                    # Nowhere has room (the plan is marked as not fitting): its bytes still count in the
                    # job's memory (placing thousands of such shards would only slow the simulation).
                    self.unplaced_bytes += self.shard_bytes(shard)
                    self.largest_unplaced_bytes = max(self.largest_unplaced_bytes, self.shard_bytes(shard))
                    continue
            else:
                self.free[chosen] -= need
            self.owned[chosen].append((shard, cost_s, need))
            self.load[chosen] += cost_s
            heapq.heappush(heap, (self.load[chosen], chosen))

    def _host_place(self, shard: Shard) -> tuple[int, Shard, float, float]:
        """Put ``shard`` in host memory of the least-loaded device with room; (-1, ...) if none has."""
        weights = memory.shard_weight_bytes(self.workload, shard.rows, shard.dim)
        step = memory.shard_step_bytes(self.workload, shard.dim, shard.batch * shard.pooling, shard.batch)
        failed_weights, failed_step = self._no_host_room
        order = [] if weights >= failed_weights and step >= failed_step else sorted(
            range(self.devices), key=lambda d: (self.load[d], d))
        for d in order:
            if self.host_free[d] < weights or self.free[d] < step:
                continue
            # its step buffers now; its cache later, from what the device has left once every shard is
            # placed (size_caches), so a cache never takes the room a later shard needs
            host_shard = self._cached(shard, memory.DEFAULT_CACHE_RATIO * shard.rows)
            self.free[d] -= step
            self.host_free[d] -= weights
            self.hosted = True
            return d, host_shard, self.shard_cost(host_shard), step
        if weights <= failed_weights and step <= failed_step:
            self._no_host_room = (weights, step)
        # the first shard that fits nowhere names the failure
        self.failed = self.failed or (f"table {shard.table} ({shard.rows} rows x {shard.dim} columns) fits "
                                      "in no device's memory nor in host memory")
        return -1, shard, 0.0, 0.0

    def _cached(self, shard: Shard, cached_rows: float) -> Shard:
        """``shard`` in host memory behind a device cache of ``cached_rows`` (whole) rows."""
        zipf = (float(self.workload.training.access.exponent)
                if self.workload.training.access.kind == "zipf" else 0.0)
        cached = max(0.0, math.floor(min(cached_rows, shard.rows)))
        return Shard(shard.table, shard.kind, shard.rows, shard.dim, shard.pooling, shard.batch, True, cached,
                     hit_fraction(float(shard.rows), cached, zipf))

    def size_caches(self) -> None:
        """Size the software caches of the host-resident shards from the device memory left after every
        shard is placed: each device's room is shared by its host shards in proportion to the cache each
        wants (``DEFAULT_CACHE_RATIO`` of its rows), none getting more than it wants. While placing, a host
        shard was balanced at the cost it has with the cache it wants."""
        if not self.hosted:
            return
        ratio = memory.DEFAULT_CACHE_RATIO
        for d in range(self.devices):
            hosted = [(i, s) for i, (s, _c, _n) in enumerate(self.owned[d]) if s.on_host]
            wanted = sum(memory.cache_bytes(self.workload, ratio * s.rows, s.dim) for _i, s in hosted)
            share = min(1.0, max(self.free[d], 0.0) / wanted) if wanted > 0 else 0.0
            for i, shard in hosted:
                _shard, cost_s, need = self.owned[d][i]
                per_row = memory.cache_bytes(self.workload, 1, shard.dim)
                sized = self._cached(shard, share * ratio * shard.rows)
                cache = memory.cache_bytes(self.workload, sized.cached_rows, sized.dim)
                if cache > self.free[d] and per_row > 0:  # rounding: never more than is left
                    sized = self._cached(shard, self.free[d] / per_row)
                    cache = memory.cache_bytes(self.workload, sized.cached_rows, sized.dim)
                # the cache it was balanced with, when it gets all of it, costs what it did
                new_cost = cost_s if sized == shard else self.shard_cost(sized)
                self.owned[d][i] = (sized, new_cost, need + cache)
                self.free[d] -= cache
                self.load[d] += new_cost - cost_s

    def refine(self) -> None:
        """Move or swap shards between the most and least loaded devices while the maximum drops."""
        owners = [d for d in range(self.devices) if self.owned[d]]
        empty = next((d for d in range(self.devices) if not self.owned[d]), None)
        candidates = owners + ([empty] if empty is not None else [])
        for _ in range(REFINE_ROUNDS):
            hi = max(candidates, key=lambda d: (self.load[d], -d))
            lo = min(candidates, key=lambda d: (self.load[d], d))
            if hi == lo:
                return
            best = None
            peak = self.load[hi]
            for i, (s, c, need) in enumerate(self.owned[hi]):
                if s.on_host:
                    continue
                if need <= self.free[lo]:
                    new_peak = max(self.load[hi] - c, self.load[lo] + c)
                    if new_peak < peak - 1e-15:
                        peak, best = new_peak, (i, None)
                for j, (t, ct, need_t) in enumerate(self.owned[lo]):
                    if t.on_host or ct >= c:
                        continue
                    if need - need_t > self.free[lo] or need_t - need > self.free[hi]:
                        continue
                    new_peak = max(self.load[hi] - c + ct, self.load[lo] + c - ct)
                    if new_peak < peak - 1e-15:
                        peak, best = new_peak, (i, j)
            if best is None:
                return
            i, j = best
            if lo == empty:
                empty = next((d for d in range(self.devices) if not self.owned[d] and d != lo), None)
                if empty is not None:
                    candidates.append(empty)
            s, c, need = self.owned[hi].pop(i)
            self.owned[lo].append((s, c, need))
            self.load[hi] -= c
            self.load[lo] += c
            self.free[hi] += need
            self.free[lo] -= need
            if j is not None:
                t, ct, need_t = self.owned[lo].pop(j)
                self.owned[hi].append((t, ct, need_t))
                self.load[lo] -= ct
                self.load[hi] += ct
                self.free[lo] += need_t
                self.free[hi] -= need_t


def _column_splits(dim: int, chunks: int) -> list[int]:
    base, extra = divmod(dim, chunks)
    return [base + (1 if i < extra else 0) for i in range(chunks)]


def min_column_width(workload: Workload, profile: HardwareProfile) -> int:
    """Narrowest column chunk: one memory access unit of the device (narrower rows waste the unit)."""
    emb = memory.emb_elem_bytes(workload)
    return max(1, int(profile.efficiency.embedding_access_bytes) // emb)


def plan_sharding(workload: Workload, profile: HardwareProfile, devices: int, cost: CostModel,
                  kind: str = "auto", batch_size: int | None = None) -> ShardingPlan:
    """Place the workload's tables on ``devices`` devices with the given strategy (see the module doc).

    ``kind`` ``auto`` here builds the greedy cost-balanced plan; :func:`planner.sim.engine.simulate`
    compares it with ``table`` and ``row`` by simulation.
    """
    tables = expand_tables(workload)
    dim = int(workload.model.embedding_dim)
    batch = int(batch_size or workload.training.batch_size)
    base = memory.base_memory(workload, profile, devices, batch_size)
    budget = float(profile.device.hbm_bytes) - base.hbm_bytes
    local = memory.local_batch(workload, devices, batch_size)
    kind_used = "table" if devices == 1 else kind
    placer = _Placer(workload, profile, devices, cost, max(budget, 0.0))
    table_kinds = []
    replicated: list[Shard] = []
    if kind_used == "data":
        for t in tables:
            replicated.append(Shard(t.index, "data", t.rows, dim, t.pooling, local))
            table_kinds.append("data")
    elif kind_used == "row":
        for t in tables:
            rows = math.ceil(t.rows / devices)
            replicated.append(Shard(t.index, "row", rows, dim, t.pooling * rows / t.rows, batch))
            table_kinds.append("row")
    else:
        shards: list[Shard] = []
        width = min_column_width(workload, profile)
        max_chunks = max(1, min(devices, dim // width))
        whole = [Shard(t.index, "table", t.rows, dim, t.pooling, batch) for t in tables]
        costs = [placer.shard_cost(s) for s in whole]
        target = sum(costs) / devices
        for t, s, c in zip(tables, whole, costs, strict=True):
            if kind_used == "auto" and devices > 1:
                # Replicate a table when all-reducing its gradient (about its own bytes per rank) moves no
                # more than the all-to-all of its pooled outputs would (local batch x dim), and it is small.
                dp = Shard(t.index, "data", t.rows, dim, t.pooling, local)
                dp_bytes = placer.shard_bytes(dp)
                emb_b = memory.emb_elem_bytes(workload)
                if t.rows * emb_b <= local * memory.act_elem_bytes(workload) and dp_bytes <= 0.01 * budget:
                    replicated.append(dp)
                    table_kinds.append("data")
                    continue
            if kind_used == "column":
                chunks = max_chunks
            elif kind_used == "auto":
                chunks = max(1, min(max_chunks, math.ceil(c / target - 1e-9) if target > 0 else 1))
                need = placer.shard_bytes(s)
                if budget > 0 and need > budget:
                    chunks = max(chunks, min(max_chunks, math.ceil(need / budget)))
            else:
                chunks = 1
            if chunks == 1:
                shards.append(s)
                table_kinds.append("table")
            else:
                for part in _column_splits(dim, chunks):
                    shards.append(Shard(t.index, "column", t.rows, part, t.pooling, batch))
                table_kinds.append("column")
        if replicated:
            rep_bytes = sum(placer.shard_bytes(s) for s in replicated)
            placer.free = [f - rep_bytes for f in placer.free]
        placer.place(shards)
        placer.refine()
        placer.size_caches()
    return _finish(workload, profile, devices, cost, kind if devices > 1 else "table", placer, replicated,
                   table_kinds, budget)


def _finish(workload: Workload, profile: HardwareProfile, devices: int, cost: CostModel, kind: str,
            placer: _Placer, replicated: list[Shard], table_kinds: list[str], budget: float) -> ShardingPlan:
    rep_cost = sum(shard_compute_s(workload, s, profile, cost) for s in replicated)
    rep_hbm = sum(placer.shard_bytes(s) for s in replicated)
    groups: dict[tuple[Shard, ...], list[int]] = {}
    loads: dict[tuple[Shard, ...], float] = {}
    for d in range(devices):
        key = tuple(sorted(s for s, _, _ in placer.owned[d]))
        if key in groups:
            groups[key].append(d)
        else:
            groups[key] = [d]
            loads[key] = placer.load[d]
    classes = []
    for key, ranks in groups.items():
        hbm = rep_hbm
        host = 0.0
        cache = 0.0
        for s in key:
            step = memory.shard_step_bytes(workload, s.dim, s.batch * s.pooling, s.batch)
            if s.on_host:
                host += memory.shard_weight_bytes(workload, s.rows, s.dim)
                cache += memory.cache_bytes(workload, s.cached_rows, s.dim)
                hbm += step + memory.cache_bytes(workload, s.cached_rows, s.dim)
            else:
                hbm += memory.shard_weight_bytes(workload, s.rows, s.dim) + step
        classes.append(DeviceClass(ranks[0], len(ranks), tuple(replicated) + key, loads[key] + rep_cost,
                                   hbm, host, cache))
    classes.sort(key=lambda c: c.rank)
    costs = [c.cost_s for c in classes]
    total = sum(c.cost_s * c.count for c in classes)
    mean = total / devices if devices else 0.0
    imbalance = max(costs) / mean if mean > 0 else 1.0
    on_host = len({s.table for c in classes for s in c.shards if s.on_host})
    fits = not placer.failed and budget >= 0 and all(c.embedding_hbm_bytes <= budget for c in classes)
    reason = placer.failed
    if budget < 0:  # the root cause: no table could fit, so it is not the table's fault
        hbm = float(profile.device.hbm_bytes)
        reason = (f"dense state, activations and buffers alone need {(hbm - budget) / 1e9:.3g} GB per "
                  f"device, more than its {hbm / 1e9:.3g} GB")
    elif not reason and not fits:
        reason = "embedding shards exceed the device memory budget"
    return ShardingPlan(kind, devices, tuple(classes), float(imbalance), on_host, tuple(table_kinds), fits,
                        reason, placer.unplaced_bytes, placer.largest_unplaced_bytes)
