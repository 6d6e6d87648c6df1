"""What-if sweeps: evaluate every option of a scenario, find the cost/quality frontier and recommend one.

An *option* is one point of the sweep: hardware x model scale x devices x batch size x samples. For each,
the step model (:func:`planner.sim.engine.simulate`) gives step time, throughput and memory; the economics
(:mod:`planner.economics`) give time-to-train, cost, energy and CO2; the quality law gives the predicted NE
with its 80% interval and the samples needed to reach the target NE. Constraints decide feasibility and
``binding`` says what limits each option, in the vocabulary of the ``whatif --json`` contract (DESIGN.md:
``memory``, ``compute``, ``communication``, ``budget``, ``deadline``) plus ``target_ne``:

* infeasible options: the first violated constraint of ``memory`` (does not fit), ``deadline``
  (``max_days``), ``budget`` (``max_cost_usd``), ``target_ne`` (predicted NE above the target); every
  violated constraint is in ``violations``;
* feasible options: the simulator's bottleneck of the step, ``compute`` or ``communication`` (or
  ``memory`` when ``must_fit_memory`` is off and the option does not fit). A step bound by the host
  launching kernels is reported as ``compute``: the host's CPU issuing the kernels is computation, and
  tools that check ``binding`` against the contract's list keep working. The finer reason stays in the
  option's ``bottleneck`` field (``compute``, ``communication``, ``host`` or ``memory``, the simulator's
  word unchanged), and the table, the recommendation and the reports show it beside the binding
  (``compute (host)``).

Why ``target_ne`` stays although the contract's list does not name it: an option that misses only the
target NE is excluded by the quality constraint the scenario contract defines (``constraints.target_ne``),
and none of the listed words says that. ``budget`` or ``deadline`` would blame a constraint the option
meets (it may be cheap and fast; it just sees too little data), and the step's bottleneck would call an
infeasible option's limit a property of a step that is fine. A tool that checks the list sees
``target_ne`` only when the scenario sets ``target_ne`` and the option misses it, and then
``violations`` says the same.

Simulations depend only on (hardware, model scale, devices, batch), so options that differ only in data
size share one simulation; identical simulations are also memoised across calls in this process. The
unique simulations run serially, in local processes, or on a Dask cluster (``executor="dask"``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
from collections import Counter
from collections.abc import Callable, Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any

from planner import economics
from planner.economics import fmt_kwh, fmt_usd
from planner.errors import InputError
from planner.io import to_json
from planner.quality import EXTRAPOLATION_FACTOR, fmt_number, law_x
from planner.scenario import Scenario
from planner.units import SECONDS_PER_DAY

#: Executors for the unique simulations of a sweep.
EXECUTORS = ("auto", "serial", "process", "dask")
#: Constraint names in the order they are reported as an infeasible option's binding.
CONSTRAINT_ORDER = ("memory", "deadline", "budget", "target_ne")
#: A feasible option's binding for each simulator bottleneck that is not itself a contract word (see the
#: module docstring): a host-bound step is compute-bound on the host's CPU.
BOTTLENECK_BINDING = {"host": "compute"}
#: Below this many unique simulations ``auto`` runs serially (a process pool costs more than it saves).
_AUTO_PARALLEL_MIN = 48

SimulateFn = Callable[..., Any]
ProgressFn = Callable[[int, int], None]


# ------------------------------------------------------------------------------------------ simulations
@dataclass(frozen=True)
class SimTask:
    """A batch of simulations of one (hardware, model scale): ``pairs`` of (devices, global batch)."""

    workload_hash: str
    profile_hash: str
    workload: Any
    profile: Any
    pairs: tuple[tuple[int, int], ...]
    steps: int
    seed: int
    sharding: str


#: Worker-side copies of workloads and profiles by content hash, so the engine's per-profile cost-model cache
#: is reused by every task a worker runs.
_WORKER_OBJECTS: dict[str, Any] = {}
#: Memoised simulation summaries of the real simulator, keyed by content (see :func:`_sim_key`).
_SIM_CACHE: dict[tuple, dict[str, Any]] = {}
_SIM_CACHE_LIMIT = 200_000


def _summarise(result: Any) -> dict[str, Any]:
    """The parts of a simulation result the what-if needs (small, picklable)."""
    sharding = getattr(result, "sharding", None) or {}
    return {
        "step_time_s": float(result.step_time_s),
        "step_time_p99_s": float(result.step_time_p99_s),
        "samples_per_s": float(result.samples_per_s),
        "peak_memory_bytes": float(result.peak_memory_bytes),
        "host_memory_bytes": float(getattr(result, "host_memory_bytes", 0.0)),
        "fits_in_memory": bool(result.fits_in_memory),
        "infeasible_reason": str(getattr(result, "infeasible_reason", "") or ""),
        "breakdown_s": {k: float(v) for k, v in dict(result.breakdown_s).items()},
        "bottleneck": str(result.binding),
        "sharding": str(sharding.get("kind", "")) if isinstance(sharding, dict) else str(sharding),
    }


def run_task(task: SimTask, simulate_fn: SimulateFn | None = None) -> list[dict[str, Any]]:
    """Run the simulations of one task (in this process or a worker); returns one summary per pair."""
    if simulate_fn is None:
        from planner.sim.engine import simulate as simulate_fn
    workload = _WORKER_OBJECTS.setdefault(task.workload_hash, task.workload)
    profile = _WORKER_OBJECTS.setdefault(task.profile_hash, task.profile)
    out = []
    for devices, batch in task.pairs:
        result = simulate_fn(
            workload,
            profile,
            devices,
            sharding=task.sharding,
            steps=task.steps,
            seed=task.seed,
            batch_size=batch,
        )
        out.append(_summarise(result))
    return out


def _content_hash(obj: Any) -> str:
    return hashlib.sha256(to_json(dataclasses.asdict(obj)).encode("utf-8")).hexdigest()[:32]


def _chunks(pairs: list[tuple[int, int]], size: int) -> Iterable[tuple[tuple[int, int], ...]]:
    for i in range(0, len(pairs), size):
        yield tuple(pairs[i : i + size])


def _run_serial(
    tasks: list[SimTask], simulate_fn: SimulateFn | None, progress: ProgressFn | None, total: int
) -> list[list[dict[str, Any]]]:
    out = []
    done = 0
    for task in tasks:
        out.append(run_task(task, simulate_fn))
        done += len(task.pairs)
        if progress:
            progress(done, total)
    return out


def _run_process(
    tasks: list[SimTask],
    simulate_fn: SimulateFn | None,
    workers: int,
    progress: ProgressFn | None,
    total: int,
) -> list[list[dict[str, Any]]]:
    from concurrent.futures import ProcessPoolExecutor, as_completed

    results: list[list[dict[str, Any]] | None] = [None] * len(tasks)
    done = 0
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(run_task, t, simulate_fn): i for i, t in enumerate(tasks)}
        for fut in as_completed(futures):
            i = futures[fut]
            results[i] = fut.result()
            done += len(tasks[i].pairs)
            if progress:
                progress(done, total)
    return [r for r in results if r is not None]


def _run_dask(
    tasks: list[SimTask],
    simulate_fn: SimulateFn | None,
    scheduler: str | None,
    progress: ProgressFn | None,
    total: int,
) -> list[list[dict[str, Any]]]:
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise InputError(
            "the dask executor needs dask.distributed: pip install 'recplan[dask]'", field="--executor"
        ) from None
    if not scheduler:
        raise InputError(
            "the dask executor needs --scheduler ADDRESS (e.g. tcp://10.0.0.5:8786)", field="--scheduler"
        )
    try:
        client = Client(scheduler, timeout="10s")
    except (OSError, TimeoutError) as exc:
        raise InputError(f"cannot reach the Dask scheduler: {exc}", field="--scheduler") from None
    try:
        futures = client.map(run_task, tasks, simulate_fn=simulate_fn, pure=False)
        index = {f.key: i for i, f in enumerate(futures)}
        results: list[list[dict[str, Any]] | None] = [None] * len(tasks)
        done = 0
        for fut in as_completed(futures):
            i = index[fut.key]
            results[i] = fut.result()
            done += len(tasks[i].pairs)
            if progress:
                progress(done, total)
    finally:
        client.close()
    return [r for r in results if r is not None]


# ------------------------------------------------------------------------------------------ options
@dataclass(frozen=True)
class Option:
    """One evaluated option. Times in seconds, memory in bytes, money in US dollars, energy in kWh.

    ``samples`` is the total number of samples seen in training (the scenario's ``sweep.samples``, every
    epoch counted; ``samples_seen`` is the same number) and ``epochs`` the passes it makes over the
    workload's data set (``samples`` / the workload's samples per epoch). ``ne``/``ne_lo80``/``ne_hi80``
    are the law's prediction of the quality metric (NE unless the law says otherwise) and its 80% interval;
    for a law without uncertainty (an inline ``law:``, a ``fit:`` without bootstrap) the bounds, 80% and
    95%, are ``None`` (``null`` in JSON, an empty CSV cell), never a zero-width interval that would claim
    certainty. Ranking, the frontier and ``target_ne`` use ``ne`` alone. ``samples_to_target`` is the
    total samples seen needed to reach the target NE (``None`` when no target is set or the law cannot
    reach it along this axis).
    ``binding`` is what limits the option (module docstring); ``bottleneck`` the simulator's bottleneck of
    the step (``compute``, ``communication``, ``host`` or ``memory``).
    """

    id: int
    hardware: str
    hardware_origin: str
    model_scale: float
    devices: int
    batch_size: int
    samples: float
    epochs: float
    samples_seen: float
    params: int
    step_time_s: float
    step_time_p99_s: float
    samples_per_s: float
    time_to_train_s: float
    time_to_train_days: float
    price_usd_per_device_hour: float
    cost_usd: float
    power_w: float
    energy_kwh: float
    co2_kg: float | None
    peak_memory_bytes: float
    memory_capacity_bytes: float
    host_memory_bytes: float
    fits_in_memory: bool
    memory_reason: str
    ne: float
    ne_lo80: float | None
    ne_hi80: float | None
    ne_lo95: float | None
    ne_hi95: float | None
    samples_to_target: float | None
    time_to_target_s: float | None
    cost_to_target_usd: float | None
    quality_per_dollar: float
    feasible: bool
    violations: tuple[str, ...]
    binding: str
    bottleneck: str
    pareto: bool
    rank: int
    sharding: str
    breakdown_s: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        """Plain mapping for JSON (contract keys of ``whatif --json`` plus the rest)."""
        d = dataclasses.asdict(self)
        d["violations"] = list(self.violations)
        return d

    def summary(self) -> dict[str, Any]:
        """The few fields that identify and rank an option (frontier and recommendation entries)."""
        keys = (
            "id",
            "hardware",
            "devices",
            "batch_size",
            "model_scale",
            "samples",
            "time_to_train_s",
            "cost_usd",
            "energy_kwh",
            "ne",
            "ne_lo80",
            "ne_hi80",
            "binding",
            "bottleneck",
            "feasible",
        )
        return {k: getattr(self, k) for k in keys}

    @property
    def interval80(self) -> tuple[float, float] | None:
        """The 80% interval ``(lo, hi)`` when the law gives one of non-zero width, else None."""
        lo, hi = self.ne_lo80, self.ne_hi80
        if lo is None or hi is None or not hi > lo:
            return None
        return (lo, hi)

    @property
    def host_bound(self) -> bool:
        """Whether compute binds the option and its step is the host's (its CPU launching kernels)."""
        return self.binding == "compute" and self.bottleneck == "host"

    def binding_text(self) -> str:
        """The binding for people: ``compute (host)`` for a feasible option whose step the host bounds."""
        if self.feasible and self.bottleneck != self.binding:
            return f"{self.binding} ({self.bottleneck})"
        return self.binding

    def label(self) -> str:
        """Short human label: ``b200 x 64, batch 65536, 4e+09 samples``."""
        scale = f", scale x{self.model_scale:g}" if self.model_scale != 1 else ""
        return f"{self.hardware} x {self.devices}, batch {self.batch_size}, {self.samples:.3g} samples{scale}"


@dataclass(frozen=True)
class WhatIfResult:
    """Every option (ranked by the objective, feasible first), the frontier, and the recommendation.

    ``warnings`` are JSON-ready mappings, at most one per kind and scenario; each has ``kind``, ``options``
    (the ids of the options it concerns) and ``text`` (one line for stderr). The one kind so far,
    ``extrapolation`` (:func:`extrapolation_warning`), also has ``field``, ``law``, ``axis``, ``x_range``
    and ``x_range_kind``, ``factor`` and the out-of-range ``values`` (SI counts).
    """

    scenario: Scenario
    options: tuple[Option, ...]
    frontier: tuple[int, ...]
    recommendation: dict[str, Any]
    reference_ne: float
    unique_simulations: int
    cached_simulations: int
    warnings: tuple[dict[str, Any], ...] = ()

    @property
    def feasible(self) -> bool:
        """Whether at least one option meets every constraint."""
        return bool(self.recommendation.get("feasible"))

    def option(self, option_id: int) -> Option:
        """The option with sweep index ``option_id``."""
        return self._by_id[option_id]

    @property
    def _by_id(self) -> dict[int, Option]:
        return {o.id: o for o in self.options}

    def to_dict(self) -> dict[str, Any]:
        """The ``whatif --json`` document: ``options``, ``frontier``, ``recommendation``, a summary and
        ``warnings`` (see the class docstring)."""
        by_id = self._by_id
        s = self.scenario
        law = s.law
        return {
            "scenario": {
                "name": s.name,
                "file": s.file,
                "objective": s.objective,
                "constraints": s.constraints.to_dict(),
                "metric": law.metric,
                "law": law.describe(),
                "law_source": law.source,
                "reference_ne": self.reference_ne,
                "options": len(self.options),
                "unique_simulations": self.unique_simulations,
            },
            "options": [o.to_dict() for o in self.options],
            "frontier": [by_id[i].summary() for i in self.frontier],
            "recommendation": self.recommendation,
            "warnings": [dict(w) for w in self.warnings],
        }


def _sim_key(workload_hash: str, profile_hash: str, devices: int, batch: int, scenario: Scenario) -> tuple:
    sim = scenario.simulation
    return (workload_hash, profile_hash, devices, batch, sim.steps, sim.seed, sim.sharding)


def simulate_unique(
    scenario: Scenario,
    *,
    simulate_fn: SimulateFn | None = None,
    executor: str = "auto",
    workers: int | None = None,
    scheduler: str | None = None,
    progress: ProgressFn | None = None,
    cache: MutableMapping[tuple, dict[str, Any]] | None = None,
) -> tuple[dict[tuple[int, int, int, int], dict[str, Any]], int, int]:
    """Simulate each unique (hardware, scale, devices, batch) of the sweep once.

    Returns:
        A mapping from (hardware index, scale index, devices, batch) to the simulation summary, the number
        of unique simulations, and how many of them came from the cache.
    """
    if executor not in EXECUTORS:
        raise InputError(
            f"unknown executor {executor!r} (expected {', '.join(EXECUTORS)})", field="--executor"
        )
    if cache is None:
        cache = _SIM_CACHE if simulate_fn is None else {}
    w_hashes = [_content_hash(sw.workload) for sw in scenario.workloads]
    p_hashes = [_content_hash(h.profile) for h in scenario.hardware]
    out: dict[tuple[int, int, int, int], dict[str, Any]] = {}
    todo: dict[tuple[int, int], list[tuple[int, int]]] = {}
    unique = 0
    hits = 0
    for hi in range(len(scenario.hardware)):
        for si in range(len(scenario.workloads)):
            for devices in scenario.devices:
                for batch in scenario.batch_sizes:
                    unique += 1
                    key = _sim_key(w_hashes[si], p_hashes[hi], devices, batch, scenario)
                    hit = cache.get(key)
                    if hit is not None:
                        out[(hi, si, devices, batch)] = hit
                        hits += 1
                    else:
                        todo.setdefault((hi, si), []).append((devices, batch))
    pending = sum(len(v) for v in todo.values())
    if pending:
        cpus = os.cpu_count() or 1
        n_workers = max(1, workers or cpus)
        if executor == "auto":
            executor = "process" if pending >= _AUTO_PARALLEL_MIN and n_workers > 1 else "serial"
        if executor == "process" and n_workers == 1:
            executor = "serial"
        # Chunks small enough to balance the workers, large enough to amortise the transfer.
        size = max(1, min(16, math.ceil(pending / (4 * n_workers))))
        if executor == "serial":
            size = 1_000_000
        tasks: list[SimTask] = []
        owners: list[tuple[int, int]] = []
        sim = scenario.simulation
        for (hi, si), pairs in todo.items():
            for chunk in _chunks(pairs, size):
                tasks.append(
                    SimTask(
                        w_hashes[si],
                        p_hashes[hi],
                        scenario.workloads[si].workload,
                        scenario.hardware[hi].profile,
                        chunk,
                        sim.steps,
                        sim.seed,
                        sim.sharding,
                    )
                )
                owners.append((hi, si))
        if progress:
            progress(0, pending)
        if executor == "serial":
            results = _run_serial(tasks, simulate_fn, progress, pending)
        elif executor == "process":
            results = _run_process(tasks, simulate_fn, n_workers, progress, pending)
        else:
            results = _run_dask(tasks, simulate_fn, scheduler, progress, pending)
        for task, (hi, si), summaries in zip(tasks, owners, results, strict=True):
            for (devices, batch), summary in zip(task.pairs, summaries, strict=True):
                out[(hi, si, devices, batch)] = summary
                if len(cache) < _SIM_CACHE_LIMIT:
                    cache[_sim_key(w_hashes[si], p_hashes[hi], devices, batch, scenario)] = summary
    return out, unique, hits


def _law_x(axis: str, samples_seen: float, params: float, flops_per_sample: float) -> float:
    return law_x(axis, samples_seen, params, flops_per_sample)


def extrapolation_warning(scenario: Scenario, option_x: dict[int, float]) -> dict[str, Any] | None:
    """The scenario's one warning about options whose law scale (``option_x``, by option id, SI counts) lies
    more than :data:`planner.quality.EXTRAPOLATION_FACTOR` outside the law's known range, or None.

    The numbers stay as the law gives them; the warning says they are the form carried beyond where it was
    fitted or observed (and, for a fitted law, that its bootstrap intervals leave out the form's own error).
    """
    law = scenario.law
    if getattr(law, "x_range", None) is None or not option_x:
        return None
    ids = list(option_x)
    outside = law.outside_range([option_x[i] for i in ids])
    hit = [i for i, far in zip(ids, outside, strict=True) if far]
    if not hit:
        return None
    values = sorted({option_x[i] for i in hit})
    unit = f" {law.x_unit}" if law.x_unit else ""
    if len(values) <= 4:
        shown = ", ".join(fmt_number(v / law.x_scale) for v in values)
    else:
        lowest, highest = (fmt_number(v / law.x_scale) for v in (values[0], values[-1]))
        shown = f"{lowest} to {highest} ({len(values)} values)"
    lo, hi = law.x_range
    kind = law.x_range_kind or "known"
    metric = "NE" if law.metric == "ne" else law.metric
    caveat = ", and its 80% interval leaves out that error" if law.has_interval else ""
    text = (
        f"{scenario.file}: {scenario.quality_field}: {scenario.law_name} is evaluated at {law.x} "
        f"{shown}{unit}, more than {EXTRAPOLATION_FACTOR:g}x outside its {kind} range "
        f"{fmt_number(lo / law.x_scale)} to {fmt_number(hi / law.x_scale)}{unit} ({len(hit)} of {len(ids)} "
        f"options); {metric} there assumes the {law.form} form still holds{caveat}"
    )
    return {
        "kind": "extrapolation",
        "field": scenario.quality_field,
        "law": scenario.law_name,
        "axis": law.x,
        "x_range": [float(lo), float(hi)],
        "x_range_kind": kind,
        "factor": EXTRAPOLATION_FACTOR,
        "values": [float(v) for v in values],
        "options": sorted(hit),
        "text": text,
    }


def evaluate_scenario(
    scenario: Scenario,
    *,
    simulate_fn: SimulateFn | None = None,
    executor: str = "auto",
    workers: int | None = None,
    scheduler: str | None = None,
    progress: ProgressFn | None = None,
    cache: MutableMapping[tuple, dict[str, Any]] | None = None,
) -> WhatIfResult:
    """Evaluate every option of ``scenario``: simulate, price, predict quality, check constraints, rank.

    Args:
        scenario: a resolved scenario (:func:`planner.scenario.load_scenario`).
        simulate_fn: the step model, ``simulate(workload, profile, devices, *, sharding, steps, seed,
            batch_size)``; default :func:`planner.sim.engine.simulate`. Must be picklable for the
            ``process`` and ``dask`` executors.
        executor: ``auto`` (local processes for large sweeps), ``serial``, ``process`` or ``dask``.
        workers: local worker processes (default: every core).
        scheduler: the Dask scheduler's address for ``executor="dask"``.
        progress: called with (simulations done, simulations to run).
        cache: memo of simulation summaries by content key (default: a process-wide memo for the real
            simulator, none for an injected one).

    Returns:
        The :class:`WhatIfResult`; nothing feasible is not an error here (see ``recommendation``).
    """
    from planner.workload import derive

    sims, unique, hits = simulate_unique(
        scenario,
        simulate_fn=simulate_fn,
        executor=executor,
        workers=workers,
        scheduler=scheduler,
        progress=progress,
        cache=cache,
    )
    law = scenario.law
    c = scenario.constraints
    econ = scenario.economics
    per_epoch = scenario.samples_per_epoch
    derived = [derive(sw.workload) for sw in scenario.workloads]
    # Total samples seen needed to reach the target (sweep.samples counts every epoch, DESIGN.md).
    target_samples: list[float | None] = []
    x_target = law.x_for_target(c.target_ne) if c.target_ne is not None else None
    for d in derived:
        if x_target is None or law.x == "params":
            target_samples.append(None)
        elif law.x == "samples":
            target_samples.append(x_target)
        else:
            target_samples.append(x_target / d.flops_per_sample if d.flops_per_sample > 0 else None)

    rows: list[dict[str, Any]] = []
    option_x: dict[int, float] = {}  # the law's scale of each option, for the extrapolation warning
    option_id = 0
    for hi, hw in enumerate(scenario.hardware):
        capacity = float(hw.profile.device.hbm_bytes)
        for si, sw in enumerate(scenario.workloads):
            d = derived[si]
            for devices in scenario.devices:
                for batch in scenario.batch_sizes:
                    sim = sims[(hi, si, devices, batch)]
                    for samples in scenario.samples:
                        # sweep.samples is the total samples seen, every epoch counted
                        t = economics.time_to_train_s(samples, 1.0, sim["samples_per_s"])
                        h = economics.hours(t)
                        cost = economics.cost_usd(devices, hw.price_usd_per_device_hour, h)
                        energy = economics.energy_kwh(devices, hw.power_w, h, econ.pue)
                        option_x[option_id] = _law_x(law.x, samples, d.total_params, d.flops_per_sample)
                        q = law.predict_interval(option_x[option_id])
                        to_target = target_samples[si]
                        t_target = (
                            economics.time_to_train_s(to_target, 1.0, sim["samples_per_s"])
                            if to_target is not None
                            else None
                        )
                        rows.append(
                            {
                                "id": option_id,
                                "hardware": hw.name,
                                "hardware_origin": hw.origin,
                                "model_scale": sw.scale,
                                "devices": devices,
                                "batch_size": batch,
                                "samples": samples,
                                "epochs": samples / per_epoch,
                                "samples_seen": samples,
                                "params": d.total_params,
                                "step_time_s": sim["step_time_s"],
                                "step_time_p99_s": sim["step_time_p99_s"],
                                "samples_per_s": sim["samples_per_s"],
                                "time_to_train_s": t,
                                "time_to_train_days": t / SECONDS_PER_DAY,
                                "price_usd_per_device_hour": hw.price_usd_per_device_hour,
                                "cost_usd": cost,
                                "power_w": hw.power_w,
                                "energy_kwh": energy,
                                "co2_kg": economics.co2_kg(energy, econ.grid_kg_co2_per_kwh),
                                "peak_memory_bytes": sim["peak_memory_bytes"],
                                "memory_capacity_bytes": capacity,
                                "host_memory_bytes": sim["host_memory_bytes"],
                                "fits_in_memory": sim["fits_in_memory"],
                                "memory_reason": sim["infeasible_reason"],
                                "ne": q["ne"],
                                "ne_lo80": q["lo80"],
                                "ne_hi80": q["hi80"],
                                "ne_lo95": q["lo95"],
                                "ne_hi95": q["hi95"],
                                "samples_to_target": to_target,
                                "time_to_target_s": t_target,
                                "cost_to_target_usd": (
                                    economics.cost_usd(
                                        devices, hw.price_usd_per_device_hour, economics.hours(t_target)
                                    )
                                    if t_target is not None
                                    else None
                                ),
                                "bottleneck": sim["bottleneck"],
                                "sharding": sim["sharding"],
                                "breakdown_s": sim["breakdown_s"],
                            }
                        )
                        option_id += 1

    better = law.higher_is_better
    metrics = [r["ne"] for r in rows]
    finite = [m for m in metrics if math.isfinite(m)]
    reference = (min(finite) if better else max(finite)) if finite else math.nan
    for r in rows:
        violations = []
        if c.must_fit_memory and not r["fits_in_memory"]:
            violations.append("memory")
        if c.max_days is not None and not r["time_to_train_days"] <= c.max_days:
            violations.append("deadline")
        if c.max_cost_usd is not None and not r["cost_usd"] <= c.max_cost_usd:
            violations.append("budget")
        if c.target_ne is not None and not (r["ne"] >= c.target_ne if better else r["ne"] <= c.target_ne):
            violations.append("target_ne")
        r["violations"] = tuple(violations)
        r["feasible"] = not violations
        r["binding"] = violations[0] if violations else binding_of_bottleneck(r["bottleneck"])
        r["quality_per_dollar"] = economics.quality_per_dollar(
            r["ne"], reference, r["cost_usd"], higher_is_better=better
        )
    feasible = [r for r in rows if r["feasible"]]
    front_local = economics.pareto_frontier(
        [r["cost_usd"] for r in feasible], [r["ne"] for r in feasible], higher_is_better=better
    )
    frontier = tuple(feasible[i]["id"] for i in front_local)
    on_front = set(frontier)
    ranked = sorted(rows, key=_rank_key(scenario.objective, better))
    options = tuple(Option(**r, pareto=r["id"] in on_front, rank=k + 1) for k, r in enumerate(ranked))
    recommendation = recommend(scenario, options, frontier)
    far = extrapolation_warning(scenario, option_x)
    return WhatIfResult(scenario, options, frontier, recommendation, reference, unique, hits,
                        warnings=(far,) if far else ())


def binding_of_bottleneck(bottleneck: str) -> str:
    """The ``binding`` of a feasible option whose step the simulator says ``bottleneck`` limits."""
    return BOTTLENECK_BINDING.get(bottleneck, bottleneck)


def _rank_key(objective: str, higher_is_better: bool) -> Callable[[dict[str, Any]], tuple]:
    sign = -1.0 if higher_is_better else 1.0

    def key(r: dict[str, Any]) -> tuple:
        primary = {
            "cost": (r["cost_usd"], r["time_to_train_s"], sign * r["ne"]),
            "time": (r["time_to_train_s"], r["cost_usd"], sign * r["ne"]),
            "ne": (sign * r["ne"], r["cost_usd"], r["time_to_train_s"]),
            "quality_per_dollar": (-r["quality_per_dollar"], r["cost_usd"], r["time_to_train_s"]),
        }[objective]
        return (not r["feasible"], *primary, r["id"])

    return key


# ------------------------------------------------------------------------------------------ recommendation
def _constraint_text(name: str, scenario: Scenario) -> str:
    c = scenario.constraints
    return {
        "memory": "memory (must fit in device memory)",
        "deadline": f"deadline (max_days {c.max_days:g})" if c.max_days is not None else "deadline",
        "budget": (
            f"budget (max_cost_usd {fmt_usd(c.max_cost_usd)})" if c.max_cost_usd is not None else "budget"
        ),
        "target_ne": f"target NE ({c.target_ne:g})" if c.target_ne is not None else "target NE",
    }[name]


def _limit_text(option: Option) -> str:
    """What limits a feasible option, for the recommendation sentence."""
    if option.host_bound:
        return "compute (host-bound: the host's CPU launching kernels sets the step time)"
    return option.binding_text()


def _shortfall(option: Option, name: str, scenario: Scenario) -> float:
    """How far an option misses one constraint, as a ratio >= 1 (smaller is closer)."""
    c = scenario.constraints
    if name == "memory":
        return option.peak_memory_bytes / max(option.memory_capacity_bytes, 1.0)
    if name == "deadline" and c.max_days:
        return option.time_to_train_days / c.max_days
    if name == "budget" and c.max_cost_usd:
        return option.cost_usd / c.max_cost_usd
    if name == "target_ne" and c.target_ne:
        return option.ne / c.target_ne if option.ne > 0 else math.inf
    return math.inf


def _miss_text(option: Option, name: str, scenario: Scenario) -> str:
    if name == "memory":
        return (
            f"needs {option.peak_memory_bytes / 1e9:.3g} GB per device of "
            f"{option.memory_capacity_bytes / 1e9:.3g} GB"
        )
    if name == "deadline":
        return f"takes {option.time_to_train_days:.3g} days"
    if name == "budget":
        return f"costs {fmt_usd(option.cost_usd)}"
    return f"reaches NE {option.ne:.5g}"


def recommend(scenario: Scenario, options: tuple[Option, ...], frontier: tuple[int, ...]) -> dict[str, Any]:
    """The recommendation: the best feasible option by the objective, or which constraint binds.

    ``options`` must be ranked (feasible first, best first). Returns a JSON-ready mapping with ``feasible``,
    ``option`` (summary or None), ``binding`` (what limits the recommended option, or the constraint that
    excludes the most options when nothing is feasible), counts of every option's binding and violations,
    the frontier size and one paragraph of ``text``.
    """
    bindings = Counter(o.binding for o in options)
    violated = Counter(v for o in options for v in o.violations)
    only = Counter(o.violations[0] for o in options if len(o.violations) == 1)
    feasible = [o for o in options if o.feasible]
    out: dict[str, Any] = {
        "objective": scenario.objective,
        "feasible": bool(feasible),
        "feasible_options": len(feasible),
        "options": len(options),
        "frontier_size": len(frontier),
        "binding_counts": dict(sorted(bindings.items())),
        "violations": {k: violated[k] for k in CONSTRAINT_ORDER if violated[k]},
    }
    excluded = "; ".join(
        f"{_constraint_text(k, scenario)} excludes {violated[k]}" for k in CONSTRAINT_ORDER if violated[k]
    )
    if feasible:
        best = feasible[0]
        fastest = min(feasible, key=lambda o: (o.time_to_train_s, o.cost_usd, o.id))
        better = scenario.law.higher_is_better
        best_q = min(feasible, key=lambda o: ((-o.ne if better else o.ne), o.cost_usd, o.id))
        out.update(
            {
                "option": best.summary(),
                "binding": best.binding,
                "alternatives": {"fastest": fastest.summary(), "best_quality": best_q.summary()},
                "bound_by": None,
            }
        )
        metric = "NE" if scenario.law.metric == "ne" else scenario.law.metric
        iv = best.interval80
        interval = f" [80%: {iv[0]:.5f}-{iv[1]:.5f}]" if iv else ""
        text = (
            f"Recommended ({scenario.objective}): {best.label()}: {best.time_to_train_days:.3g} days, "
            f"{fmt_usd(best.cost_usd)}, {fmt_kwh(best.energy_kwh)} kWh, {metric} {best.ne:.5g}"
            f"{interval}; limited by {_limit_text(best)}."
        )
        if fastest.id != best.id:
            text += (
                f" Fastest feasible: {fastest.label()} in {fastest.time_to_train_days:.3g} days for "
                f"{fmt_usd(fastest.cost_usd)}."
            )
        if best_q.id != best.id and best_q.ne != best.ne:
            text += (
                f" Best quality: {best_q.label()} ({metric} {best_q.ne:.5g}) for "
                f"{fmt_usd(best_q.cost_usd)}."
            )
        text += (
            f" {len(feasible)} of {len(options)} options feasible; {len(frontier)} on the cost/NE frontier."
        )
        if excluded:
            text += f" Excluded: {excluded}."
        out["text"] = text
        return out

    # Nothing feasible: the bound constraint is the one whose relaxation alone admits the most options.
    def weight(name: str) -> tuple[int, int, int]:
        return (only[name], violated[name], -CONSTRAINT_ORDER.index(name))

    bound = max((k for k in CONSTRAINT_ORDER if violated[k]), key=weight)
    if only[bound]:
        candidates = [o for o in options if o.violations == (bound,)]
    else:
        candidates = [o for o in options if bound in o.violations]
    closest = min(candidates or options, key=lambda o: (_shortfall(o, bound, scenario), o.id))
    out.update(
        {
            "option": None,
            "binding": bound,
            "bound_by": bound,
            "closest": closest.summary(),
            "alternatives": {},
        }
    )
    text = f"No option meets the constraints; {_constraint_text(bound, scenario)} binds"
    if only[bound]:
        text += f" ({only[bound]} options miss only this constraint)"
    text += f". Closest: {closest.label()}, which {_miss_text(closest, bound, scenario)}."
    if (
        bound == "target_ne"
        and scenario.constraints.target_ne is not None
        and scenario.law.x_for_target(scenario.constraints.target_ne) is None
    ):
        text += " The quality law never reaches this target (it is beyond the law's floor)."
    text += f" Excluded: {excluded}."
    out["text"] = text
    return out
