"""Simulate distributed DLRM training steps: sharding, memory and a SimPy step model -> a result dataclass.

:func:`simulate` is the experiment runner: parameters (workload, profile, devices, sharding, seed) ->
model (sharding plan, per-class step programs of :mod:`planner.sim.processes`) -> SimPy runs of ``steps``
steps -> :class:`SimulationResult`. Ranks with identical shards form one device class and are simulated
once; collectives synchronise the classes (the slowest sets the pace). A class whose every item is no longer
than another class's cannot set the pace and is not simulated (it still counts for memory), so thousands
of devices cost a handful of simulated ranks. Per-op variability is lognormal with the cost model's
``sigma_rel`` (its calibration residual), mean one, drawn from one ``numpy.random.SeedSequence(seed)``
stream per class, so the same inputs and seed give the same result. ``auto`` sharding simulates the greedy
cost-balanced plan, the table-wise one and, when a lower bound of its step says it could win, the row-wise
plan, and keeps the fastest that fits. Times are seconds, memory bytes.

Infeasible jobs are not errors here: the result says ``fits_in_memory = False`` with the reason; the
command line prints the result and then exits 1 with that reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import simpy

from planner import memory
from planner.errors import InputError
from planner.interfaces import CostModel
from planner.memo import IdentityMemo
from planner.memory import MemoryUse
from planner.model import HardwareProfile, Workload
from planner.sharding import SHARDING_KINDS, ShardingPlan, plan_sharding
from planner.sim.processes import Program, build_program, host_thread, stream
from planner.sim.resources import Barrier, new_queues

#: Largest device count accepted (a typo guard; the model itself has no limit).
MAX_DEVICES = 1_000_000
MAX_STEPS = 100_000
#: Phases reported in ``breakdown_s`` (always present, zero when unused), in step order.
PHASES = ("input", "input_a2a", "embedding_fwd", "a2a_fwd", "bottom_mlp", "interaction", "top_mlp",
          "backward_dense", "allreduce_exposed", "a2a_bwd", "embedding_bwd_update", "optimizer",
          "load_imbalance", "host_overhead_exposed")
_COMPUTE_PHASES = ("input", "embedding_fwd", "bottom_mlp", "interaction", "top_mlp", "backward_dense",
                   "embedding_bwd_update", "optimizer")
_COMM_PHASES = ("input_a2a", "a2a_fwd", "allreduce_exposed", "a2a_bwd", "load_imbalance")
#: The row-wise plan is simulated only when a lower bound of its step (its reduce-scatter and all-gather
#: alone, at half their estimate to allow for favourable draws) beats the greedy plan's simulated step.
_ROW_BOUND_SHARE = 0.5

_COST_CACHE: IdentityMemo[HardwareProfile, CostModel] = IdentityMemo(64)


@dataclass(frozen=True)
class SimulationResult:
    """Simulated training steps of one configuration: time distribution, breakdown, memory and plan.

    ``step_time_s`` is the median over the simulated steps, ``breakdown_s`` the critical-path time per
    phase of the median step on its slowest device class (it sums to that step's time), memory figures are
    bytes of the largest device (``peak_memory_bytes`` device memory, ``host_memory_bytes`` host memory);
    ``total_memory_bytes`` sums every device's device and host memory, software caches counted once (in
    host memory, not again as their device copy).
    """

    workload: str
    hardware: str
    devices: int
    batch_size: int
    local_batch_size: int
    steps: int
    seed: int
    step_time_s: float
    step_time_p99_s: float
    step_time_p10_s: float
    step_time_p90_s: float
    samples_per_s: float
    peak_memory_bytes: float
    host_memory_bytes: float
    total_memory_bytes: float
    fits_in_memory: bool
    infeasible_reason: str
    breakdown_s: dict[str, float]
    memory: MemoryUse
    sharding: dict[str, Any]
    binding: str
    host_launch_s: float
    launches_per_step: int
    device_classes: int
    simulated_classes: int
    step_times_s: tuple[float, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """The ``simulate --json`` document (finite numbers only)."""
        return {
            "workload": self.workload, "hardware": self.hardware, "devices": self.devices,
            "batch_size": self.batch_size, "local_batch_size": self.local_batch_size, "steps": self.steps,
            "seed": self.seed, "step_time_s": self.step_time_s, "step_time_p99_s": self.step_time_p99_s,
            "step_time_p10_s": self.step_time_p10_s, "step_time_p90_s": self.step_time_p90_s,
            "samples_per_s": self.samples_per_s, "peak_memory_bytes": self.peak_memory_bytes,
            "host_memory_bytes": self.host_memory_bytes, "total_memory_bytes": self.total_memory_bytes,
            "fits_in_memory": self.fits_in_memory, "infeasible_reason": self.infeasible_reason,
            "breakdown_s": dict(self.breakdown_s), "memory": self.memory.to_dict(),
            "sharding": dict(self.sharding), "binding": self.binding, "host_launch_s": self.host_launch_s,
            "launches_per_step": self.launches_per_step, "device_classes": self.device_classes,
            "simulated_classes": self.simulated_classes,
        }


def _cost_model(profile: HardwareProfile) -> CostModel:
    """The profile's cost model, built once per profile object (its predictions are memoised inside)."""
    from planner.cost.registry import build_cost_model

    return _COST_CACHE(profile, build_cost_model)


def _check_args(devices: Any, sharding: str, steps: Any, batch_size: Any) -> None:
    if isinstance(devices, bool) or not isinstance(devices, (int, np.integer)):
        raise InputError(f"expected a whole number of devices, got {devices!r}", field="--devices")
    if not 1 <= int(devices) <= MAX_DEVICES:
        raise InputError(f"must be between 1 and {MAX_DEVICES}, got {devices}", field="--devices")
    if sharding not in SHARDING_KINDS:
        raise InputError(f"unknown sharding {sharding!r} (expected {', '.join(SHARDING_KINDS)})",
                         field="--sharding")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or not 1 <= steps <= MAX_STEPS:
        raise InputError(f"must be between 1 and {MAX_STEPS}, got {steps!r}", field="--steps")
    if batch_size is not None and (isinstance(batch_size, bool)
                                   or not isinstance(batch_size, (int, np.integer))
                                   or not 1 <= batch_size <= 10**9):
        raise InputError(f"must be a whole number between 1 and 1e9, got {batch_size!r}",
                         field="--batch-size")


@dataclass
class _Run:
    plan: ShardingPlan
    programs: list[Program]
    times: np.ndarray
    breakdown: dict[str, float]
    host_launch_s: float
    launches: int
    simulated_classes: int


def _simulate_plan(plan: ShardingPlan, workload: Workload, profile: HardwareProfile, cost: CostModel,
                   devices: int, batch: int, steps: int, seed: int) -> _Run:
    serial = bool(getattr(cost, "serial_host", profile.kind == "cpu"))
    cache: dict = {}
    built = [build_program(workload, profile, plan, c, cost, devices, batch, serial_host=serial, cache=cache)
             for c in plan.classes]
    # One random stream per device class, keyed by the class (not by its position after pruning).
    streams = np.random.SeedSequence(seed).spawn(len(built))
    kept = _dominant(built)
    chosen = {id(p) for p in kept}
    programs = [p for p in built if id(p) in chosen]
    streams = [s for p, s in zip(built, streams, strict=True) if id(p) in chosen]
    factors = []
    for prog, ss in zip(programs, streams, strict=True):
        base = np.array([d for it in prog.items for d in it.device_s], dtype=float)
        sigma = np.array([s for it in prog.items for s in it.sigma], dtype=float)
        z = np.random.default_rng(ss).standard_normal((steps, base.size))
        factors.append(base * np.exp(sigma * z - 0.5 * sigma * sigma))
    env = simpy.Environment()
    times = np.empty(steps)
    traces_per_step: list[tuple[float, list[list]]] = []
    for k in range(steps):
        start = env.now
        barriers: dict[str, Barrier] = {}
        traces: list[list] = []
        all_done = []
        for prog, fac in zip(programs, factors, strict=True):
            row = fac[k].tolist()
            item_times = [row[it.offset:it.offset + len(it.device_s)] for it in prog.items]
            for it in prog.items:
                if it.sync is not None and it.sync not in barriers:
                    barriers[it.sync] = Barrier(len(programs))
            done = {it.name: env.event() for it in prog.items}
            all_done.extend(done.values())
            queues = new_queues(env, serial)
            trace: list = []
            traces.append(trace)
            env.process(host_thread(env, prog.items, item_times, queues, done, trace))
            for name in ("compute", "comm"):
                count = sum(1 for it in prog.items
                            if it.stream == name and not (serial and name == "compute"))
                env.process(stream(env, name, queues[name], count, barriers, done, trace))
        env.run()
        if not all(e.triggered for e in all_done):
            raise RuntimeError("step model deadlocked: device classes disagree on their collectives")
        times[k] = env.now - start
        traces_per_step.append((start, traces))
    median_index = int(np.argsort(times)[(steps - 1) // 2])
    start, traces = traces_per_step[median_index]
    ends = [max((r[3] for r in tr), default=start) for tr in traces]
    critical = int(np.argmax(ends))
    breakdown = _paint(traces[critical], start, start + float(times[median_index]))
    host_s = sum(h for it in programs[critical].items for h in it.host_s)
    return _Run(plan, programs, times, breakdown, host_s, programs[critical].launches, len(programs))


def _dominant(programs: list[Program]) -> list[Program]:
    """The programs not dominated by another: a class whose every item is no longer than another class's
    cannot set the pace at any collective, so it is represented by that class (memory still counts it).
    """
    if len(programs) <= 1:
        return programs
    names: dict[str, int] = {}
    for prog in programs:
        for it in prog.items:
            names.setdefault(it.name, len(names))
    table = np.zeros((len(programs), len(names)))
    for i, prog in enumerate(programs):
        for it in prog.items:
            table[i, names[it.name]] = sum(it.device_s) + sum(it.host_s)
    le = np.all(table[:, None, :] <= table[None, :, :], axis=2)  # le[x, y]: x no longer than y everywhere
    lt = np.any(table[:, None, :] < table[None, :, :], axis=2)
    order = np.arange(len(programs))
    beaten = le & (lt | (order[None, :] < order[:, None]))
    np.fill_diagonal(beaten, False)
    keep = ~beaten.any(axis=1)
    return [p for p, k in zip(programs, keep, strict=True) if k]


_PRIORITY = {"wait": 1, "comm": 2, "host": 3, "compute": 4}


def _paint(trace: list, start: float, end: float) -> dict[str, float]:
    """Critical-path seconds per phase over [start, end]: compute over communication over waiting.

    Time no stream is busy (the device waits for the host to launch work) is ``host_overhead_exposed``.
    """
    out = dict.fromkeys(PHASES, 0.0)
    if end <= start:
        return out
    records = sorted((r for r in trace if r[0] in _PRIORITY and r[3] > r[2]), key=lambda r: r[2])
    bounds = sorted({start, end, *(min(max(r[2], start), end) for r in records),
                     *(min(max(r[3], start), end) for r in records)})
    labels: list[tuple[int, str]] = [(0, "host_overhead_exposed")] * (len(bounds) - 1)
    index = {b: i for i, b in enumerate(bounds)}
    for kind, phase, s, e in records:
        lo = index[min(max(s, start), end)]
        hi = index[min(max(e, start), end)]
        prio = _PRIORITY[kind]
        for i in range(lo, hi):
            if prio > labels[i][0]:
                labels[i] = (prio, phase)
    for i, (_, phase) in enumerate(labels):
        out[phase] = out.get(phase, 0.0) + bounds[i + 1] - bounds[i]
    return out


def _memory_of(plan: ShardingPlan, workload: Workload, profile: HardwareProfile, devices: int,
               batch: int) -> tuple[MemoryUse, float, float, float]:
    """Largest device's memory, its device and host peaks, and the job's total over all devices.

    A plan that does not fit may hold shards that fit nowhere: the device with the least memory in use
    is charged the largest of them (``unplaced_shard``), so the reported peak is a lower bound on what
    any placement of the whole job needs, never the job without its largest table."""
    base = memory.base_memory(workload, profile, devices, batch)
    worst: MemoryUse | None = None
    peak_hbm = 0.0
    peak_host = 0.0
    total = 0.0
    for c in plan.classes:
        use = base + MemoryUse(c.embedding_hbm_bytes, c.embedding_host_bytes,
                               {"embedding_shards": c.embedding_hbm_bytes},
                               {"embedding_shards": c.embedding_host_bytes} if c.embedding_host_bytes else {})
        # The software cache holds copies of host-resident rows: counted in the device's memory, but
        # once only in the job's total (else caching a table would make it "bigger" than holding it).
        total += c.count * (use.total_bytes - c.cache_bytes)
        if worst is None or use.hbm_bytes > worst.hbm_bytes:
            worst = use
        peak_hbm = max(peak_hbm, use.hbm_bytes)
        peak_host = max(peak_host, use.host_bytes)
    assert worst is not None  # a plan always has at least one class
    if plan.largest_unplaced_bytes > 0:
        least = min((base + MemoryUse(c.embedding_hbm_bytes, c.embedding_host_bytes,
                                      {"embedding_shards": c.embedding_hbm_bytes}, {}) for c in plan.classes),
                    key=lambda use: use.hbm_bytes)
        charged = least + MemoryUse(plan.largest_unplaced_bytes, 0.0,
                                    {"unplaced_shard": plan.largest_unplaced_bytes}, {})
        if charged.hbm_bytes > worst.hbm_bytes:
            worst = charged
        peak_hbm = max(peak_hbm, charged.hbm_bytes)
    return worst, peak_hbm, peak_host, total + plan.unplaced_bytes


def _fits(plan: ShardingPlan, peak_hbm: float, peak_host: float,
          profile: HardwareProfile) -> tuple[bool, str]:
    if not plan.fits:
        return False, plan.reason
    if peak_hbm > float(profile.device.hbm_bytes):
        return False, (f"the largest device needs {peak_hbm / 1e9:.3g} GB of device memory, "
                       f"{float(profile.device.hbm_bytes) / 1e9:.3g} GB available")
    host_cap = memory.host_capacity_per_device(profile)
    if peak_host > 0 and peak_host > host_cap:
        return False, (f"host-resident tables need {peak_host / 1e9:.3g} GB of host memory per device, "
                       f"{host_cap / 1e9:.3g} GB available")
    return True, ""


def _row_lower_bound_s(tables: int, workload: Workload, cost: CostModel, devices: int,
                       per_node: int, batch: int) -> float:
    """A lower bound of the row-wise plan's step: its reduce-scatter and all-gather (same comm stream)."""
    from planner.interfaces import CollectiveOp

    dim = workload.model.embedding_dim * tables
    act = memory.act_elem_bytes(workload)
    local = memory.local_batch(workload, devices, batch)
    rs = cost.predict(CollectiveOp("reduce_scatter", batch * dim * act, devices, per_node)).time_s
    ag = cost.predict(CollectiveOp("all_gather", local * dim * act, devices, per_node)).time_s
    return _ROW_BOUND_SHARE * (rs + ag)


def simulate(workload: Workload, profile: HardwareProfile, devices: int, *, sharding: str = "auto",
             steps: int = 20, seed: int = 0, batch_size: int | None = None,
             cost_model: CostModel | None = None) -> SimulationResult:
    """Simulate ``steps`` training steps of ``workload`` on ``devices`` devices of ``profile``.

    Args:
        workload: the DLRM job.
        profile: the hardware profile (its cost model is built once and cached unless ``cost_model``).
        devices: number of devices (ranks), 1 to 1,000,000.
        sharding: ``auto`` (the fastest by simulation of the greedy cost-balanced plan, the table-wise
            and the row-wise one, among those that fit), ``table``, ``row``,
            ``column`` or ``data``.
        steps: simulated steps (the result's distribution is over them).
        seed: seeds the per-op variability.
        batch_size: global batch (default the workload's).
        cost_model: a :class:`planner.interfaces.CostModel` to use instead of the profile's.

    Returns:
        The :class:`SimulationResult`. A job that does not fit is still simulated; ``fits_in_memory`` is
        false and ``infeasible_reason`` says why.

    Raises:
        InputError: bad ``devices``, ``sharding``, ``steps`` or ``batch_size``.
    """
    _check_args(devices, sharding, steps, batch_size)
    devices = int(devices)
    cost = cost_model if cost_model is not None else _cost_model(profile)
    batch = int(batch_size or workload.training.batch_size)
    per_node = min(devices, int(profile.node.devices))
    plan = plan_sharding(workload, profile, devices, cost, sharding, batch)
    runs = [_simulate_plan(plan, workload, profile, cost, devices, batch, steps, seed)]
    greedy_s = float(np.median(runs[0].times))
    built: dict[str, Any] = {}

    def plan_of(kind: str) -> Any:
        """The ``kind`` placement, built once however many candidates ask for it."""
        if kind not in built:
            built[kind] = plan_sharding(workload, profile, devices, cost, kind, batch)
        return built[kind]

    if sharding == "auto" and devices > 1 and any(kind != "table" for kind in plan.table_kinds):
        # the greedy plan's replicated small tables and column chunks can cost more (all-reduces, more
        # lookups and launches) than they save in balance: each table whole is a candidate too
        table = plan_of("table")
        if table.fits:
            runs.append(_simulate_plan(table, workload, profile, cost, devices, batch, steps, seed))
    if sharding == "auto" and devices > 1 and _row_lower_bound_s(
            len(plan.table_kinds), workload, cost, devices, per_node, batch) < greedy_s:
        row = plan_of("row")
        if row.fits:
            runs.append(_simulate_plan(row, workload, profile, cost, devices, batch, steps, seed))

    def rank(run: _Run) -> tuple[bool, float]:
        _use, hbm, host, _ = _memory_of(run.plan, workload, profile, devices, batch)
        fits, _ = _fits(run.plan, hbm, host, profile)
        return (not fits, float(np.median(run.times)))

    best = min(runs, key=rank)
    if sharding == "auto" and rank(best)[0]:
        # the greedy plan's own memory estimate let it through but the full memory model does not: try
        # the other placements (table-wise may put the largest tables in host memory) before giving up
        tried = {run.plan.kind for run in runs}
        for kind in ("table", "row"):
            other = plan_of(kind)
            if other.kind not in tried:
                tried.add(other.kind)
                runs.append(_simulate_plan(other, workload, profile, cost, devices, batch, steps, seed))
        best = min(runs, key=rank)
    use, peak_hbm, peak_host, total = _memory_of(best.plan, workload, profile, devices, batch)
    fits, reason = _fits(best.plan, peak_hbm, peak_host, profile)
    times = best.times
    median = float(np.median(times))
    breakdown = best.breakdown
    compute = sum(breakdown[p] for p in _COMPUTE_PHASES)
    comm = sum(breakdown[p] for p in _COMM_PHASES)
    host = breakdown["host_overhead_exposed"]
    if not fits:
        binding = "memory"
    else:
        binding = max((("compute", compute), ("communication", comm), ("host", host)), key=lambda x: x[1])[0]
    summary = best.plan.summary()
    if sharding == "auto" and devices > 1:
        summary["kind"] = f"auto:{best.plan.kind if best.plan.kind in ('row', 'table') else 'greedy'}"
    return SimulationResult(
        workload=workload.name, hardware=profile.name, devices=devices, batch_size=batch,
        local_batch_size=memory.local_batch(workload, devices, batch), steps=int(steps), seed=int(seed),
        step_time_s=median, step_time_p99_s=float(np.percentile(times, 99)),
        step_time_p10_s=float(np.percentile(times, 10)), step_time_p90_s=float(np.percentile(times, 90)),
        samples_per_s=batch / median if median > 0 else 0.0,
        peak_memory_bytes=float(peak_hbm), host_memory_bytes=float(peak_host),
        total_memory_bytes=float(total),
        fits_in_memory=fits, infeasible_reason=reason, breakdown_s=breakdown, memory=use, sharding=summary,
        binding=binding, host_launch_s=float(best.host_launch_s), launches_per_step=int(best.launches),
        device_classes=len(best.plan.classes), simulated_classes=best.simulated_classes,
        step_times_s=tuple(float(t) for t in times),
    )


def is_finite_result(result: SimulationResult) -> bool:
    """Whether every number of the result's JSON document is finite."""
    def walk(value: Any) -> bool:
        if isinstance(value, float):
            return math.isfinite(value)
        if isinstance(value, dict):
            return all(walk(v) for v in value.values())
        if isinstance(value, (list, tuple)):
            return all(walk(v) for v in value)
        return True
    return walk(result.to_dict())
