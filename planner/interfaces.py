"""Every role of the planner as a narrow Protocol, and the small operation records they exchange.

Read this file with ``planner/model.py`` to know the pipeline:

    workload + HardwareProfile --CostModel--> per-op Estimates --Sharder--> ShardingPlan
        --Simulator (SimPy)--> SimulationResult --whatif/economics--> options --Reporter--> files

Operation records are plain frozen dataclasses (not validated: they are built by the planner itself and
sit on hot paths). Sizes are in elements or bytes as the field names say; times in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from planner.model import HardwareProfile, Workload

Phase = Literal["forward", "backward"]
CollectiveKind = Literal["all_to_all", "all_reduce", "all_gather", "reduce_scatter"]
MemoryKind = Literal["copy", "h2d", "d2h", "elementwise", "optimizer"]


@dataclass(frozen=True)
class GemmOp:
    """C[m, n] = A[m, k] @ B[k, n] in ``precision`` (one nn.Linear forward is m=batch, k=in, n=out).

    ``transposed_a`` says A is read transposed, as in a weight gradient dYᵀ X (m=out, n=in, k=batch).
    ``context_bytes`` is the data a training step touches between two calls of the op (its own a small
    share of it), which competes with its operands for the cache (set by the step model,
    :mod:`planner.sim.processes`): 0 for an op timed alone (a benchmark).
    """

    m: int
    n: int
    k: int
    precision: str
    transposed_a: bool = False
    context_bytes: float = 0.0


@dataclass(frozen=True)
class EmbeddingOp:
    """Pooled lookups of one table shard: ``batch`` bags of ``pooling`` rows of width ``dim``.

    ``phase`` is ``forward`` (gather + sum) or ``backward`` (sparse gradient + optimizer update of the
    unique rows touched). ``zipf_exponent`` is 0 for uniform access. ``cache_share`` is the fraction of
    the device's cache (and address-translation reach) the table's rows keep between its own lookups: 1
    for a table alone (a benchmark), less in a step whose other tables compete for the same cache.
    ``evicted_bytes`` (backward) is the other data a step touches between the table's forward and this
    update (its dense work and other tables): 0 for an update right after its forward.
    """

    rows: int
    dim: int
    pooling: float
    batch: int
    elem_bytes: int
    phase: Phase
    optimizer: str = "sgd"
    zipf_exponent: float = 0.0
    cache_share: float = 1.0
    evicted_bytes: float = 0.0


@dataclass(frozen=True)
class InteractionOp:
    """The dot interaction: batched Z Z^T over ``features`` vectors of width ``dim``, then the triangle."""

    batch: int
    features: int
    dim: int
    precision: str
    phase: Phase
    context_bytes: float = 0.0


@dataclass(frozen=True)
class MemoryOp:
    """A memory-bound operation moving ``bytes`` in total (read + write) over elements of ``elem_bytes``
    each (2 for bf16/fp16 activations; 4 for fp32 data); ``optimizer`` names a dense optimizer step's
    algorithm (kind ``optimizer``: its launches and temporaries); ``context_bytes`` as for :class:`GemmOp`."""

    kind: MemoryKind
    bytes: float
    elem_bytes: int = 4
    optimizer: str = "adagrad"
    context_bytes: float = 0.0


@dataclass(frozen=True)
class CollectiveOp:
    """A collective over ``ranks`` devices, ``ranks_per_node`` of them per node; ``bytes`` per rank."""

    kind: CollectiveKind
    bytes: float
    ranks: int
    ranks_per_node: int


Op = GemmOp | EmbeddingOp | InteractionOp | MemoryOp | CollectiveOp


@dataclass(frozen=True)
class Estimate:
    """A predicted device time for one op, its relative spread (lognormal sigma) and host launches."""

    time_s: float
    sigma_rel: float = 0.0
    launches: int = 1
    family: str = ""
    parts: dict[str, float] = field(default_factory=dict)
    #: the bench's timing of this op already holds its host work (a CPU op timed through autograd and
    #: Python): a serial host adds only the cold-code share of the per-launch overhead
    host_in_bench: bool = False


@runtime_checkable
class CostModel(Protocol):
    """Predicts the device time of one operation on the profile it was built for."""

    def predict(self, op: Op) -> Estimate:
        """Return the estimated time of ``op`` in seconds with its spread."""
        ...

    def host_overhead_s(self) -> float:
        """Host-side time to launch one op (framework + driver), in seconds."""
        ...


@runtime_checkable
class Sharder(Protocol):
    """Places embedding tables (or their row/column shards) on devices under memory limits."""

    def plan(self, workload: Workload, profile: HardwareProfile, devices: int, cost: CostModel) -> Any:
        """Return a sharding plan for ``devices`` devices."""
        ...


@runtime_checkable
class Simulator(Protocol):
    """Simulates distributed training steps and returns a result with step time, breakdown and memory."""

    def run(self, workload: Workload, profile: HardwareProfile, devices: int, *, sharding: str = "auto",
            steps: int = 20, seed: int = 0) -> Any:
        """Simulate ``steps`` steps and return the result."""
        ...


@runtime_checkable
class Reporter(Protocol):
    """Renders a what-if result to one output format (bytes, deterministic)."""

    def render(self, result: Any) -> bytes:
        """Return the rendered document."""
        ...
