"""Which cases each suite measures: the sweeps, the quick subset, and cases derived from a workload.

A :class:`Case` is one record to be: suite, kernel, dtype and shape parameters; its ``case_id`` is the
record's. Full sweeps vary one axis at a time around a base point (plus a rows x dim grid for embeddings),
which covers the cost-model axes without a Cartesian explosion. Cases that cannot fit are still listed:
the runner records them as out-of-memory errors. Workloads are duck-typed (``planner.model.Workload``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import random
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from kernels.records import MAX_CASE_TABLES, SUITES, case_id

KB = 1024
MB = 1024 * KB
GB = 1024 * MB


@dataclass(frozen=True)
class Case:
    """One case to measure; ``params`` are the record's params (JSON-ready)."""

    suite: str
    kernel: str
    dtype: str
    params: dict[str, Any] = field(hash=False)

    @cached_property
    def case_id(self) -> str:
        """The record's stable id (see :func:`kernels.records.case_id`); worked out once per case (the
        runner asks for every planned case's id after each finished one)."""
        return case_id(self.suite, self.kernel, self.params, self.dtype)


def _dedupe(cases: list[Case]) -> list[Case]:
    seen: set[str] = set()
    out = []
    for case in cases:
        if case.case_id not in seen:
            seen.add(case.case_id)
            out.append(case)
    return out


#: Seed of the space-filling extra cases of the quick suites (fixed: the same cases on every machine).
QUICK_DESIGN_SEED = 20261201
#: Bytes of other data an evicted embedding case rewrites between a table's forward and its update: twice
#: a 32 MB CPU last-level cache, above a 50 MB GPU L2.
EVICT_BYTES = 64 * MB
#: Largest table of the quick embedding design (bytes of fp32 rows).
QUICK_MAX_TABLE_BYTES = 256 * MB


# ------------------------------------------------------------------------------------------- embedding
def _emb(
    rows: int,
    dim: int,
    pooling: int,
    batch: int,
    dist: str = "uniform",
    exponent: float = 0.0,
    dtype: str = "fp32",
    optimizers: tuple[str, ...] = ("sgd",),
    tables: int = 1,
    evict: int = 0,
) -> list[Case]:
    """A forward case and one backward+update case per optimizer; ``tables`` > 1 gives backward+update
    cases of that many tables in one backward and one optimizer step (no forward case); ``evict`` > 0
    gives backward+update cases alone, each call after its forward and ``evict`` bytes of other data (the
    rows then out of the cache, as in a training step: ``kernels.embedding_bag``)."""
    base = {
        "rows": int(rows),
        "dim": int(dim),
        "pooling": int(pooling),
        "batch": int(batch),
        "distribution": dist,
        "zipf_exponent": float(exponent) if dist == "zipf" else 0.0,
    }
    if not 1 <= tables <= MAX_CASE_TABLES:
        raise ValueError(f"{tables} tables in one case: expected 1 to {MAX_CASE_TABLES}")
    alone = {**({"tables": int(tables)} if tables > 1 else {}),
             **({"evict_bytes": int(evict)} if evict > 0 else {})}
    if alone:
        return [Case("embedding", "embedding_bag_backward_update", dtype,
                     {**base, "optimizer": opt, **alone}) for opt in optimizers]
    out = [Case("embedding", "embedding_bag_forward", dtype, {**base, "optimizer": "none"})]
    out += [
        Case("embedding", "embedding_bag_backward_update", dtype, {**base, "optimizer": opt})
        for opt in optimizers
    ]
    return out


def embedding_cases(device_kind: str, quick: bool) -> list[Case]:
    """Embedding-bag forward and backward+update cases (rows, dim, pooling, batch, distribution, dtype)."""
    low = "bf16"
    if quick:
        # Spread over the embedding model's axes so each parameter is identifiable: table sizes from L2-
        # resident (64 KB) to far beyond the LLC (256 MB), dims 8..128 (row bytes vs the 64 B line), pooling
        # 1..50, batch 256..8192 (launch-bound to bandwidth-bound, gradient buffers below and above the
        # allocator's fresh-mapping threshold), uniform and Zipf ids, every optimizer and bf16 tables.
        sa, sr, sad = ("sgd", "rowwise_adagrad"), ("sgd", "adagrad"), ("sgd", "adagrad", "rowwise_adagrad")
        return _dedupe(
            _emb(1_000, 16, 1, 256)
            + _emb(1_000, 8, 1, 4096, optimizers=sr)
            + _emb(1_000, 32, 50, 256, optimizers=("adagrad",))
            + _emb(10_000, 32, 5, 1024, optimizers=sa)
            + _emb(10_000, 64, 20, 2048, optimizers=sr)
            + _emb(10_000, 128, 20, 4096)
            + _emb(100_000, 64, 10, 1024, optimizers=sad)
            + _emb(100_000, 16, 50, 512, optimizers=sa)
            + _emb(100_000, 8, 20, 8192, optimizers=sa)
            + _emb(50_000, 64, 50, 4096, optimizers=sr)
            + _emb(1_000_000, 32, 20, 1024, optimizers=sr)
            + _emb(1_000_000, 32, 20, 1024, "zipf", 1.05, optimizers=sr)
            + _emb(1_000_000, 32, 20, 1024, "zipf", 1.2)
            + _emb(1_000_000, 16, 1, 8192, optimizers=sa)
            + _emb(1_000_000, 64, 5, 4096, "zipf", 1.1, optimizers=sa)
            + _emb(4_000_000, 16, 10, 2048)
            + _emb(100_000, 64, 10, 1024, dtype=low)
            + _emb(1_000_000, 32, 20, 4096, "zipf", 1.05, dtype=low, optimizers=sa)
            # a step's tables share one backward() and one step(): small tables, so the per-call cost
            # stands out of the per-table work (embedding.step_call_s)
            + _emb(1_000, 16, 1, 256, tables=8, optimizers=sad)
            + _emb(5_000, 8, 2, 256, tables=4, dtype=low, optimizers=sr)
            + _emb(10_000, 32, 5, 1024, tables=4, optimizers=sa)
            # the update after the step's dense work has passed through the cache (rows cold)
            + _emb(10_000, 64, 20, 2048, evict=EVICT_BYTES)
            + _emb(100_000, 64, 10, 1024, optimizers=sad, evict=EVICT_BYTES)
            + _emb(1_000_000, 32, 20, 1024, evict=EVICT_BYTES)
            + _emb(1_000_000, 16, 1, 8192, evict=EVICT_BYTES)
            + _emb(1_000_000, 64, 5, 4096, "zipf", 1.1, evict=EVICT_BYTES)
            + _embedding_design(32)
        )
    base = {"rows": 1_000_000, "dim": 64, "pooling": 20, "batch": 4096}
    cases: list[Case] = []
    for rows in (1_000, 10_000, 100_000, 1_000_000, 10_000_000):
        for dim in (4, 16, 64, 128, 256):
            cases += _emb(rows, dim, base["pooling"], base["batch"])
    for pooling in (1, 5, 20, 50, 100):
        cases += _emb(base["rows"], base["dim"], pooling, base["batch"])
    for batch in (256, 1024, 4096, 16_384, 65_536):
        cases += _emb(base["rows"], base["dim"], base["pooling"], batch)
    for rows in (100_000, 1_000_000, 10_000_000):
        for exponent in (1.05, 1.2):
            cases += _emb(rows, base["dim"], base["pooling"], base["batch"], "zipf", exponent)
    cases += _emb(
        base["rows"],
        base["dim"],
        base["pooling"],
        base["batch"],
        optimizers=("sgd", "adagrad", "rowwise_adagrad"),
    )
    # several tables in one backward() and one step(), as a training step runs them (the per-call cost)
    for tables in (4, 16):
        cases += _emb(1_000, 16, 1, 256, tables=tables, optimizers=("sgd", "adagrad", "rowwise_adagrad"))
    cases += _emb(100_000, 64, 20, 4096, tables=4, optimizers=("sgd", "adagrad"))
    # the update with its rows evicted by other data after the forward, as in a step
    for rows in (10_000, 1_000_000, 10_000_000):
        cases += _emb(rows, base["dim"], base["pooling"], base["batch"],
                      optimizers=("sgd", "adagrad", "rowwise_adagrad"), evict=EVICT_BYTES)
    lows = ("bf16", "fp16") if device_kind == "cuda" else ("bf16",)
    for low_dtype in lows:
        for dim in (16, 64, 128):
            cases += _emb(base["rows"], dim, base["pooling"], base["batch"], dtype=low_dtype)
    return _dedupe(cases)


def _embedding_design(count: int) -> list[Case]:
    """``count`` seeded configurations spread over the DLRM embedding space, each with one optimizer.

    Axes drawn independently: rows log-uniform in 1e2..4e6 (at most 256 MB of table), dim 8..128,
    pooling 1..50, batch 256..8192, uniform or Zipf (0.8..1.2) ids, the three sparse optimizers in turn,
    one in five bf16. Hand-picked edge cases alone leave the middle of the space thin, and a fit with a
    dozen parameters needs many cases for its cross-validated error to mean something.
    """
    rng = random.Random(QUICK_DESIGN_SEED)
    optimizers = ("sgd", "adagrad", "rowwise_adagrad")
    cases: list[Case] = []
    for i in range(count):
        dim = rng.choice((8, 16, 32, 64, 128))
        # at most 256 MB of fp32 table (the largest hand-picked case), so setting up a case stays quick
        top = min(6.6, math.log10(QUICK_MAX_TABLE_BYTES / (4 * dim)))
        rows = int(round(10 ** rng.uniform(2.0, top), -1))
        pooling = rng.choice((1, 2, 4, 8, 20, 50))
        batch = rng.choice((256, 512, 1024, 2048, 4096, 8192))
        zipf = rng.random() < 0.4
        exponent = rng.choice((0.8, 1.05, 1.2)) if zipf else 0.0
        dtype = "bf16" if rng.random() < 0.2 else "fp32"
        cases += _emb(rows, dim, pooling, batch, "zipf" if zipf else "uniform", exponent, dtype,
                      (optimizers[i % len(optimizers)],))
    return cases


# ------------------------------------------------------------------------------------------------ gemm
#: (in, out) layer widths of the public DLRM MLPs (Criteo Kaggle/Terabyte, DCNv2) and their edges.
DLRM_LAYERS = (
    (13, 512),
    (512, 256),
    (256, 64),
    (64, 16),
    (13, 1024),
    (512, 128),
    (479, 1024),
    (1024, 1024),
    (1024, 512),
    (512, 256),
    (256, 1),
    (3456, 1024),
    (415, 512),
    (4096, 4096),
)
SQUARE_SIZES = (256, 512, 1024, 2048, 4096)


def _gemm(m: int, k: int, n: int, dtype: str, backward: bool = True) -> list[Case]:
    params = {"batch": int(m), "in_features": int(k), "out_features": int(n)}
    out = [Case("gemm", "linear_forward", dtype, params)]
    if backward:
        out.append(Case("gemm", "linear_backward", dtype, params))
    return out


def _gemm_design(count: int) -> list[Case]:
    """``count`` seeded ``nn.Linear`` shapes over the DLRM MLP space, forward and backward each.

    Batch 256..8192; inputs from the dense features (4, 13) through MLP widths to interaction outputs
    (32..1024, or 400-odd); outputs 1 (the logit) to 1024; one in four bf16. Libraries pick different
    kernels for narrow outputs and inputs (a weight gradient with 4 columns ran 3.6 times slower than one
    with 16 on this project's CPU), so those edges are drawn often, not left to the hand-picked shapes.
    """
    rng = random.Random(QUICK_DESIGN_SEED + 2)
    cases: list[Case] = []
    for _ in range(count):
        batch = rng.choice((256, 512, 1024, 2048, 4096, 8192))
        fan_in = rng.choice((4, 8, 13, 32, 64, 128, 256, 512, 1024, rng.randint(100, 600)))
        fan_out = rng.choice((1, 16, 32, 64, 128, 256, 512, 1024))
        cases += _gemm(batch, fan_in, fan_out, "bf16" if rng.random() < 0.25 else "fp32")
    return cases


def gemm_dtypes(device_kind: str) -> tuple[str, ...]:
    """Dtypes swept for GEMMs: TF32 and FP16 only mean something on GPUs (TF32 on CPU is recorded failed)."""
    return ("fp32", "tf32", "bf16", "fp16") if device_kind == "cuda" else ("fp32", "tf32", "bf16")


def gemm_cases(device_kind: str, quick: bool) -> list[Case]:
    """nn.Linear forward and backward over DLRM's tall-skinny MLP shapes and square sizes."""
    if quick:
        # Public DLRM MLP shapes (Criteo's 13 dense inputs, the 479- and 1024-wide top layers, the logit)
        # and compute-bound large ones that pin the peak, forward and backward, fp32 and bf16 (autocast
        # training); the seeded design fills the rest of the MLP space. Criteo's first bottom layer at
        # batch 8192 writes a 16 MiB output: the public shape, not the 8 inputs measured before. Layers on
        # 4 and 8 dense features pin the narrow weight-gradient kernel (planner.cost.gemm).
        fp32 = ((256, 13, 64), (512, 1024, 1), (1024, 13, 512), (1024, 1024, 1024), (2048, 64, 16),
                (2048, 479, 1024), (4096, 1024, 512), (8192, 512, 256), (8192, 16, 8), (8192, 256, 1),
                (8192, 1024, 16), (8192, 512, 64), (8192, 256, 32), (8192, 13, 512), (4096, 1024, 32),
                (8192, 4, 512), (4096, 4, 256), (2048, 8, 512))
        bf16 = ((256, 13, 64), (1024, 1024, 1024), (2048, 512, 256), (8192, 1024, 64))
        cases = [c for m, k, n in fp32 for c in _gemm(m, k, n, "fp32")]
        cases += [c for m, k, n in bf16 for c in _gemm(m, k, n, "bf16")]
        return _dedupe(cases + _gemm_design(24) + _gemm(2048, 512, 256, "tf32", backward=False))
    cases: list[Case] = []
    batches = (2048, 8192, 32_768) if device_kind == "cpu" else (2048, 8192, 32_768, 65_536)
    for dtype in gemm_dtypes(device_kind):
        for m in batches:
            for k, n in DLRM_LAYERS:
                cases += _gemm(m, k, n, dtype)
        for size in SQUARE_SIZES:
            cases += _gemm(size, size, size, dtype)
    return _dedupe(cases)


# ----------------------------------------------------------------------------------------- interaction
def _dot(batch: int, features: int, dim: int, dtype: str = "fp32") -> list[Case]:
    params = {"batch": int(batch), "features": int(features), "dim": int(dim)}
    return [
        Case("interaction", "dot_interaction_forward", dtype, params),
        Case("interaction", "dot_interaction_backward", dtype, params),
    ]


def _dcn(batch: int, width: int, low_rank: int, dtype: str = "fp32") -> list[Case]:
    params = {"batch": int(batch), "width": int(width), "low_rank": int(low_rank)}
    return [
        Case("interaction", "dcn_cross_forward", dtype, params),
        Case("interaction", "dcn_cross_backward", dtype, params),
    ]


def _scalar_loop_dots() -> list[Case]:
    """Dot interactions whose matrices hold under 400 multiply-adds, which a CPU runs in PyTorch's scalar
    loop (planner.cost.params.CPU_NAIVE_BMM_MACS): F^2 D = 288, 256 and 288."""
    return _dot(1024, 3, 32) + _dot(4096, 4, 16) + _dot(2048, 6, 8)


def interaction_cases(device_kind: str, quick: bool) -> list[Case]:
    """Dot interaction (batched Z·Zᵀ plus lower-triangle gather) and DCN cross-layer cases."""
    if quick:
        return _dedupe(
            _dot(256, 9, 16)
            + _dot(1024, 27, 16)
            + _dot(4096, 27, 16)
            + _dot(1024, 9, 64)
            + _dot(8192, 14, 32)
            + _dot(2048, 5, 8)
            + _dot(512, 27, 64)
            + _dot(4096, 27, 32, "bf16")
            + _dot(2048, 14, 16, "bf16")
            + _scalar_loop_dots()
            + _dcn(1024, 432, 64)
            + _dcn(1024, 432, 0)
            + _dcn(4096, 256, 32)
            + _dcn(2048, 432, 64, "bf16")
            + _interaction_design(12)
        )
    cases: list[Case] = []
    for batch in (512, 2048, 8192, 32_768):
        for features, dim in ((27, 16), (27, 128), (9, 64), (53, 64)):
            cases += _dot(batch, features, dim)
        for width, rank in ((432, 0), (3456, 512), (1024, 256)):
            cases += _dcn(batch, width, rank)
    cases += _scalar_loop_dots() + _dot(2048, 5, 8)
    for dtype in ("bf16",) + (("fp16",) if device_kind == "cuda" else ()):
        cases += _dot(8192, 27, 128, dtype) + _dcn(8192, 3456, 512, dtype)
    return _dedupe(cases)


def _interaction_design(count: int) -> list[Case]:
    """``count`` seeded dot-interaction and DCN configurations (half each) over the DLRM space."""
    rng = random.Random(QUICK_DESIGN_SEED + 1)
    cases: list[Case] = []
    for i in range(count):
        batch = rng.choice((256, 512, 1024, 2048, 4096, 8192))
        dtype = "bf16" if rng.random() < 0.25 else "fp32"
        if i % 2 == 0:
            cases += _dot(batch, rng.randint(3, 30), rng.choice((8, 16, 32, 64)), dtype)
        else:
            width = rng.choice((64, 128, 256, 512, 1024))
            cases += _dcn(batch, width, rng.choice((0, 16, 32, 64, 128)) if width <= 512 else 64, dtype)
    return cases


# ---------------------------------------------------------------------------------------------- memory
def memory_bytes_moved(kernel: str, size: int, optimizer: str = "adagrad") -> int:
    """Algorithmic bytes read plus written by one memory-suite op on a buffer of ``size`` bytes.

    copy/h2d/d2h read and write it once (2x); elementwise ``c = a + b`` reads two and writes one (3x);
    an SGD step reads the parameter and gradient and writes the parameter (3x); Adagrad also reads and
    writes its squared-gradient sum (5x). This count names the case and its ``bandwidth_bytes_per_s``;
    PyTorch's Adagrad step streams 11x through a temporary, which the cost model prices from
    ``params.bytes`` (``planner.cost.memory_bound.OPTIMIZER_OPS``).
    """
    if kernel in ("copy", "h2d", "d2h"):
        return 2 * size
    if kernel == "elementwise":
        return 3 * size
    if kernel == "optimizer_step":
        return (5 if optimizer == "adagrad" else 3) * size
    raise ValueError(kernel)


def _mem(kernel: str, size: int, pinned: bool | None = None, optimizer: str | None = None,
         dtype: str = "fp32") -> Case:
    params: dict[str, Any] = {
        "bytes": int(size),
        "bytes_moved": memory_bytes_moved(kernel, size, optimizer or ""),
    }
    if pinned is not None:
        params["pinned"] = pinned
    if optimizer is not None:
        params["optimizer"] = optimizer
    return Case("memory", kernel, dtype, params)


def memory_cases(device_kind: str, quick: bool) -> list[Case]:
    """Bandwidth-versus-size cases: device copy, H2D/D2H (GPUs), elementwise add, dense optimizer step."""
    # quick: 1 KB .. 256 MB in steps of 4x (launch-bound, cache-resident, DRAM); full: 1 KB .. 1 GB
    sizes = tuple(KB * 4**i for i in range(10)) if quick else tuple(KB * 4**i for i in range(11))
    cases: list[Case] = []
    for size in sizes:
        cases.append(_mem("copy", size))
        cases.append(_mem("elementwise", size))
    # bf16 element-wise adds, cache-resident to DRAM (memory_bound.low_precision_rate): a training step
    # under autocast runs its activations' element-wise ops in bf16
    for size in ((256 * KB, 4 * MB, 16 * MB, 64 * MB) if quick else sizes[3::2]):
        cases.append(_mem("elementwise", size, dtype="bf16"))
    if quick:  # dense optimizer steps: small tensors are launch bound (biases, small layers)
        for size in (KB, 16 * KB, 256 * KB, 4 * MB, 64 * MB):
            cases.append(_mem("optimizer_step", size, optimizer="adagrad"))
        for size in (KB, 64 * KB, 4 * MB):
            cases.append(_mem("optimizer_step", size, optimizer="sgd"))
    else:
        for size in sizes[::2]:
            cases.append(_mem("optimizer_step", size, optimizer="adagrad"))
            cases.append(_mem("optimizer_step", size, optimizer="sgd"))
    if device_kind == "cuda":
        for size in sizes:
            for pinned in (True, False):
                cases.append(_mem("h2d", size, pinned=pinned))
                cases.append(_mem("d2h", size, pinned=pinned))
    # host launch rate: chains of tiny autograd ops of a step's many kinds, forward and backward (see
    # kernels.memcpy)
    for ops in LAUNCH_CHAIN_OPS:
        cases.append(Case("memory", "launch_overhead", "fp32", {"ops": ops, "kinds": LAUNCH_CHAIN_KINDS}))
    # the same ops without autograd, each kind in turn against each repeated in a row (the same mix, its
    # code warm): the code-cache part of the per-launch cost
    for ops in DISPATCH_CHAIN_OPS:
        cases.append(Case("memory", "launch_overhead", "fp32",
                          {"ops": ops, "kinds": LAUNCH_CHAIN_KINDS, "autograd": False}))
    return _dedupe(cases)


#: Lengths of the launch-overhead chains (forward ops; the backward launches as many again).
LAUNCH_CHAIN_OPS = (16, 32, 64, 128, 256, 512)
#: Lengths of the chains without autograd (forward only), whole cycles of every kind repeated
#: ``DISPATCH_CHAIN_REPEAT`` times in a row.
DISPATCH_CHAIN_OPS = (384, 768)
#: How many times in a row each kind runs in the warm layout of a chain without autograd.
DISPATCH_CHAIN_REPEAT = 16
#: Op kinds the launch chains cycle through, in this order (a chain of ``kinds`` uses the first ``kinds``;
#: ``kernels.memcpy`` builds them).
CHAIN_KINDS = ("add", "mul", "relu", "matmul", "cast", "cat", "sigmoid", "addmm", "embedding_bag",
               "index_select", "bmm", "tanh", "clamp", "where", "transpose_copy", "softplus", "flip",
               "gather", "sin", "div", "roll", "neg", "square", "log_sigmoid")
#: Op kinds each launch chain of the suite cycles through: all of them (a step runs 65-85 distinct aten
#: ops, and an op costs more when other kinds ran between its calls).
LAUNCH_CHAIN_KINDS = len(CHAIN_KINDS)


# ------------------------------------------------------------------------------------------ collective
COLLECTIVE_KERNELS = ("all_to_all", "all_to_all_unequal", "all_reduce", "all_gather", "reduce_scatter")


def _coll(kernel: str, size: int, world: int, per_node: int, backend: str) -> Case:
    return Case(
        "collective",
        kernel,
        "fp32",
        {"bytes": int(size), "world_size": int(world), "ranks_per_node": int(per_node), "backend": backend},
    )


def collective_cases(
    world_sizes: list[int],
    backend: str,
    quick: bool,
    ranks_per_node: int | None = None,
    sizes: list[int] | None = None,
    kernels: tuple[str, ...] = COLLECTIVE_KERNELS,
) -> list[Case]:
    """Collective cases for each world size: all five kernels over message sizes (1 KB .. 1 GB)."""
    if sizes is None:
        # quick: 1 KB .. 16 MB, five sizes (latency-bound to bandwidth-bound) per kind; the seven sizes up
        # to 32 MB measured before took 12 s of a 55 s quick bench, these five 7.5 s. Only an all-gather's
        # 2 x 16 MiB output reaches the 32 MiB fresh-mapping threshold now; collective.page_fault_s starts
        # from the memory family's fit (calibration.fit.SHARED_FROM_MEMORY) and keeps it where unmoved
        quick_sizes = [KB, 16 * KB, 256 * KB, 2 * MB, 16 * MB]
        sizes = quick_sizes if quick else [KB * 4**i for i in range(11)]
    cases = []
    for world in world_sizes:
        per_node = ranks_per_node or world
        for kernel in kernels:
            for size in sizes:
                cases.append(_coll(kernel, size, world, per_node, backend))
    return _dedupe(cases)


# ------------------------------------------------------------------------------------------------ dlrm
def workload_sha256(workload: Any) -> str:
    """SHA-256 of the workload's canonical JSON (``dataclasses.asdict``, sorted keys, no spaces)."""
    data = dataclasses.asdict(workload) if dataclasses.is_dataclass(workload) else dict(vars(workload))
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def dlrm_case(workload: Any, batch: int | None = None) -> Case:
    """One whole-training-step case of ``workload`` at ``batch`` samples (default: its batch size)."""
    training = workload.training
    precision = str(training.precision)
    dtype = precision if precision in ("fp32", "tf32", "bf16", "fp16") else "fp32"
    return Case(
        "dlrm",
        "dlrm_train_step",
        dtype,
        {
            "workload": str(workload.name),
            "batch": int(batch or training.batch_size),
            "precision": precision,
            "optimizer": str(training.optimizer),
            "devices": 1,
            "workload_sha256": workload_sha256(workload),
        },
    )


# ---------------------------------------------------------------------------------------- from workload
def _mlp_shapes(width_in: int, widths: Any) -> list[tuple[int, int]]:
    shapes, current = [], int(width_in)
    for width in widths:
        shapes.append((current, int(width)))
        current = int(width)
    return shapes


def cases_for_workload(
    workload: Any,
    suites: list[str],
    device_kind: str,
    world_sizes: list[int],
    backend: str,
    ranks_per_node: int | None = None,
) -> list[Case]:
    """Cases derived from the shapes ``workload`` runs (its tables, MLP layers, interaction, messages)."""
    m, t = workload.model, workload.training
    batch = int(t.batch_size)
    dim = int(m.embedding_dim)
    precision = str(t.precision)
    dtype = precision if precision in ("fp32", "tf32", "bf16", "fp16") else "fp32"
    access = t.access
    dist = "zipf" if getattr(access, "kind", "uniform") == "zipf" else "uniform"
    exponent = float(getattr(access, "exponent", 0.0) or 0.0)
    sparse_opt = str(getattr(t, "sparse_optimizer", None) or t.optimizer)
    if sparse_opt == "adam":
        sparse_opt = "adagrad"  # the embedding suite runs SGD/Adagrad/row-wise Adagrad; Adam is not swept
    emb_dtype = str(getattr(t, "embedding_precision", "fp32") or "fp32")
    tables = sorted({(int(tab.rows), max(1, round(float(tab.pooling)))) for tab in m.tables})
    n_tables = sum(int(getattr(tab, "count", 1)) for tab in m.tables)
    features = n_tables + 1
    if m.interaction.kind == "dot":
        inter_width = dim + features * (features - 1) // 2
    else:
        inter_width = int(m.bottom_mlp[-1]) + n_tables * dim
    layers = _mlp_shapes(int(m.dense_features), m.bottom_mlp) + _mlp_shapes(inter_width, m.top_mlp)
    dense_params = sum(i * o + o for i, o in layers)
    cases: list[Case] = []
    if "embedding" in suites:
        for rows, pooling in tables:
            cases += _emb(rows, dim, pooling, batch, dist, exponent, emb_dtype, optimizers=(sparse_opt,))
    if "gemm" in suites:
        for k, n in layers:
            cases += _gemm(batch, k, n, dtype)
    if "interaction" in suites:
        if m.interaction.kind == "dot":
            cases += _dot(batch, features, dim, dtype)
        elif m.interaction.kind == "dcn":
            cases += _dcn(batch, inter_width, int(m.interaction.low_rank), dtype)
    if "memory" in suites:
        dense_bytes = max(KB, 4 * dense_params)
        act_bytes = max(KB, 4 * batch * max(o for _, o in layers))
        opt = "sgd" if t.optimizer == "sgd" else "adagrad"
        cases += [
            _mem("optimizer_step", dense_bytes, optimizer=opt),
            _mem("copy", act_bytes),
            _mem("elementwise", act_bytes),
        ]
        if device_kind == "cuda":
            input_bytes = batch * (4 * int(m.dense_features) + 8 * int(sum(p for _, p in tables)))
            cases += [_mem("h2d", max(KB, input_bytes), pinned=True)]
    if "collective" in suites:
        for world in world_sizes:
            per_rank = max(1, batch // world)
            a2a = max(KB, per_rank * n_tables * dim * 4)
            cases += collective_cases(
                [world], backend, False, ranks_per_node, [a2a], ("all_to_all", "all_to_all_unequal")
            )
            cases += collective_cases(
                [world], backend, False, ranks_per_node, [max(KB, 4 * dense_params)], ("all_reduce",)
            )
    if "dlrm" in suites:
        cases.append(dlrm_case(workload))
    return _dedupe(cases)


def order_for_budget(cases: list[Case], whole_first: tuple[str, ...] = ()) -> list[Case]:
    """Order cases so every suite gets measured early: the first case of each suite (all cases of the
    suites in ``whole_first``), then the rest in suite order. A run stopped by its budget then still
    covers every suite."""
    by_suite: dict[str, list[Case]] = {s: [] for s in SUITES}
    for case in cases:
        by_suite[case.suite].append(case)
    head: list[Case] = []
    tail: list[Case] = []
    for suite in SUITES:
        group = by_suite[suite]
        if not group:
            continue
        if suite in whole_first:
            head += group
        else:
            head.append(group[0])
            tail += group[1:]
    return head + tail
