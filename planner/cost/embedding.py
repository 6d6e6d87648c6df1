"""Embedding-bag cost model: bytes moved at the access granularity, split by a cache-hit model.

After Lin et al. (arXiv 2201.07821; perf_models.md 1). Each looked-up row costs ``ceil(dim * elem /
access_bytes) * access_bytes`` bytes (32 B sectors on GPUs, 64 B lines on CPUs), so small rows are less
efficient per useful byte; each lookup also costs ``lookup_overhead_bytes`` of issue work expressed at
memory bandwidth (Lin's 1.55x / 1.1x penalties for narrow rows). Rows that are in the last-level cache are
served at ``cache_bandwidth_ratio`` times the memory rate. The cache holds the hottest rows (independent
reference model): with ``K = cache_fraction * cache_bytes / row_bytes`` cached rows the hit fraction is
``K / rows`` for uniform access and the Zipf mass of the top ``K`` ranks for skewed access.

Every random row access also needs its address translated. The translation cache (TLB) covers
``translation_entries`` pages (4 KiB on CPUs, where PyTorch's allocations are not backed by huge pages
unless asked; 2 MiB on GPUs); a lookup whose page is not covered pays a page walk of
``page_walk_bytes`` (bytes-equivalent at memory bandwidth). The covered rows are the hottest ones, at
least one per entry and at least the share ``reach / table_bytes`` of the table, so skewed access into a
huge table still translates mostly from the TLB while uniform access does not.

Forward (gather + sum)::

    time_s = launches * fixed_s + [L * row_bytes * ((1 - hit) + hit / cache_bandwidth_ratio)
             + L * (1 - hit) * miss_overhead_bytes + L * (1 - tlb_hit) * page_walk_bytes
             + L * lookup_overhead_bytes + B * bag_overhead_bytes + index_and_output_bytes]
             / (memory_bandwidth * bandwidth_fraction)

Backward with the optimizer update: the sparse gradient (one row per lookup, ``backward_value_passes``
passes over it). How it reaches the table depends on the optimizer, as in PyTorch's sparse path:

* SGD adds the *uncoalesced* gradient into the table (``index_add`` on GPUs, a per-row axpy loop on CPUs):
  one weight-row read-modify-write per lookup, through the cache model (repeated hot rows hit); on a
  GPU nothing else (no coalesced rows or optimizer passes over them).
* Adagrad, row-wise Adagrad and Adam first coalesce it (``coalesce``: a sort of the ``n = B x L`` lookup
  keys, ``sort_bytes_per_key x n x log2 n`` bytes-equivalent at memory bandwidth; comparison sorts on CPUs,
  radix passes on GPUs), then read and write the ``U`` unique rows touched (binomial / Zipf model of
  distinct draws) and their optimizer state in random row passes (``_ROW_PASSES``: each pass pays the
  miss cost of its rows); each of the optimizer's element-wise ops makes one more pass over the ``U``
  touched values.

The update rewrites rows its forward read a moment before, so it does not see the long-run hit above
(rows cached from earlier steps) but what is left of the forward's rows. A step's dense work, and its
other tables, touch ``evicted_bytes`` of other data between a table's forward and its update; of the
``S = U x row_bytes`` bytes the forward read, the last-level cache (its datasheet size ``C``, not a fitted
share: the survival of a line depends on the whole cache) still holds ``held = min(1, C / S) x
exp(-evicted_bytes / C)``: at most a cache's worth of them, each surviving the other data as under random
replacement (a shared, not strictly LRU cache; a sharp LRU threshold let the fit place the cache between
the bench's eviction and a step's). A row neither held nor kept by the long-run cache misses at its first
touch in the update; its later touches in the same update (SGD's one read-modify-write per lookup) hit.
The update's accesses then hit at ``hit_u`` (which prices its row bytes and ``miss_overhead_bytes`` as
above), and each miss also pays ``evicted_row_bytes`` (bytes-equivalent at memory bandwidth: a scattered
read-modify-write that waits on memory)::

    misses = U * (1 - held) * (1 - hit),   hit_u = 1 - misses / updated
    extra_s = misses * evicted_row_bytes / (memory_bandwidth * bandwidth_fraction)

A bench case that times the update right after its forward has ``evicted_bytes`` 0, so ``held`` is 1
(unless the forward read more than the cache) and its update hits; the bench's evicted cases
(``params.evict_bytes``) measure the misses.

On a GPU the coalesce that Adagrad, row-wise Adagrad and Adam start with sums each distinct row's
duplicates in one warp, one after another (PyTorch's ``coalesceValuesKernel``: a warp per row and
128-feature chunk, a loop over the row's lookups, each a dependent load from the per-lookup values), so
the hottest row sets a floor under the kernel: ``max_dup x coalesce_row_s``, beyond the values pass
the rest of the backward streams (:func:`hottest_row_lookups`: ``lookups / H(rows, s)`` under Zipf,
``lookups / rows + sqrt(2 lookups / rows x ln rows)`` uniform); PyTorch's indexing backward has the same
serial loop over duplicates (pytorch/pytorch issue 41162: "extremely slow when there are many duplicate
indices"). A Zipf(1.05) table of 10^7 rows looked up 1.3 M times per step gives its hottest row 112 k
of them::

    serial_s = max(0, max_dup * coalesce_row_s - lookups * dim * elem / bw)   (kind gpu, coalescing)

(PyTorch's CUDA and ROCm kernels; TPU and other accelerator profiles run their own sparse updates, which
this term and the GPU SGD path below do not describe.)

On CPUs a buffer of at least ``FRESH_MAPPING_BYTES`` (glibc's largest mmap threshold, 32 MiB) is mapped
fresh on every allocation and freed on release, so its first touch pays one page fault (kernel zeroing
included) per 4 KiB page: ``page_fault_s`` per page of each such per-step gradient buffer (the per-lookup
values and indices, and the coalesced values). GPU caching allocators reuse blocks: no such term there.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from planner.cost.params import (
    FRESH_MAPPING_BYTES,
    PAGE_BYTES,
    DeviceFigures,
    ParamSpec,
    ceil_div,
    fresh_mapping_fault_s,
    launch_basis,
    memory_rate_bytes,
    memory_system_specs,
    page_fault_spec,
)
from planner.model import EfficiencySpec

FAMILY = "embedding"

#: Kernel launches of one op, counted from the PyTorch eager path the reference model uses. Forward: one
#: fused embedding_bag. Backward: the sparse embedding_bag backward (3 ops) plus the update: SGD adds the
#: sparse gradient in place (coalesce + index_add: 2); torch's sparse Adagrad coalesces, squares, builds
#: sparse tensors, adds into the state, masks it, takes sqrt, adds eps, divides and adds (10); the row-wise
#: Adagrad of kernels/optim.py coalesces, squares, means, index_adds, index_selects, sqrt, adds eps, divides,
#: multiplies and index_adds (10); sparse Adam updates two moments with bias corrections (13).
#: FBGEMM's fused kernels launch fewer, which the fitted ``backward_fixed_s`` absorbs.
FORWARD_LAUNCHES = 1
BACKWARD_LAUNCHES = {"none": 3, "sgd": 5, "adagrad": 13, "rowwise_adagrad": 13, "adam": 16}
#: Launches of the backward proper; the rest are the optimizer's ops, each one pass (read + write) over the
#: touched rows' values.
BACKWARD_BASE_LAUNCHES = 3

#: Random row passes of each optimizer's update over the updated rows: (row-byte units read + written,
#: passes that each pay the miss cost of a random row). SGD: weight read-modify-write. PyTorch's sparse
#: Adagrad: add grad^2 into the state rows (2), gather them back with ``sparse_mask`` (1), add the step
#: into the weight rows (2): 3 random passes. SparseAdam: both moments and the weight (3 x 2). Row-wise
#: Adagrad: the weight rows (2) plus one fp32 state scalar per row (read + write, own access unit).
_ROW_PASSES = {"none": (0.0, 0.0), "sgd": (2.0, 1.0), "adagrad": (5.0, 3.0), "adam": (6.0, 3.0),
               "rowwise_adagrad": (2.0, 1.0)}

#: Bytes of one int64 index or offset (PyTorch embedding_bag takes int64 indices and offsets).
INDEX_BYTES = 8
#: Optimizers whose sparse update coalesces the gradient first (sort + unique); SGD adds it uncoalesced.
COALESCING = ("adagrad", "rowwise_adagrad", "adam")
#: Page size that address translation of a table works in: x86-64 base pages on CPUs (PyTorch's CPU
#: allocator does not request transparent huge pages by default), 2 MiB pages on GPUs (CUDA's allocation
#: granularity).
TRANSLATION_PAGE_BYTES = {"cpu": PAGE_BYTES}
GPU_TRANSLATION_PAGE_BYTES = 2 * 1024 * 1024

_EXACT_RANKS = 1024
_EXACT_UNIQUE_RANKS = 64
#: Ranks beyond the exact head are grouped in geometric buckets of this ratio (error well below 1%).
_BUCKET_RATIO = 1.1


def param_specs(efficiency: EfficiencySpec) -> dict[str, ParamSpec]:
    """The embedding parameters with their datasheet defaults."""
    launch = float(efficiency.kernel_launch_s)
    return {
        **memory_system_specs(efficiency),
        "miss_overhead_bytes": ParamSpec(
            "miss_overhead_bytes", float(efficiency.embedding_access_bytes),
            "one extra access unit (efficiency.embedding_access_bytes) per missed row: a random row pays "
            "DRAM latency/activation beyond its sectors (assumed; Lin et al. count sectors only)",
            1e-3, 1e5, "bytes-equivalent per missed row"),
        "lookup_overhead_bytes": ParamSpec(
            "lookup_overhead_bytes", 0.55 * 128,
            "Lin et al.: time x1.55 for rows of dim <= 32 (fp32: 128 B), i.e. 0.55 x 128 B per lookup",
            1e-3, 1e5, "bytes-equivalent per lookup"),
        "bag_overhead_bytes": ParamSpec(
            "bag_overhead_bytes", 1.0,
            "about nothing (1 B): a bag's own work (its offsets, zeroing the sum, the loop's set-up) is in "
            "the output row's bytes; fitted where measured (a CPU kernel pays a per-bag set-up that heavy "
            "pooling amortises)", 1e-3, 1e6, "bytes-equivalent per bag (forward)"),
        "backward_value_passes": ParamSpec(
            "backward_value_passes", 2.0,
            "the per-lookup gradient rows (and their indices) are written by the backward and read once by "
            "the coalescing update: two passes (fitted where measured: sorting adds passes on CPUs)",
            0.1, 1e3, "passes over lookups x (dim x elem + index) bytes"),
        "backward_bandwidth_ratio": ParamSpec(
            "backward_bandwidth_ratio", 1.0,
            "1: the backward and the update stream at the forward's rate; fitted where measured (the forward "
            "is one fused gather kernel, the backward a chain of scatters and row loops)",
            1e-2, 1e2, "x the forward's effective bandwidth"),
        "backward_lookup_bytes": ParamSpec(
            "backward_lookup_bytes", 0.55 * 128,
            "as lookup_overhead_bytes for the backward: per-lookup issue work of the gradient scatter and of "
            "the update's row loop, independent of the row width (fitted where measured)",
            1e-3, 1e5, "bytes-equivalent per lookup"),
        **{f"update_row_bytes_{name}": ParamSpec(
            f"update_row_bytes_{name}", 0.55 * 128,
            f"per touched row of the {name} update, the issue work of its row loops independent of the "
            "row width: as lookup_overhead_bytes (Lin et al.'s narrow-row penalty), fitted per optimizer "
            "where measured, since fused and unfused implementations differ in row loops",
            1e-3, 1e6, "bytes-equivalent per updated row")
           for name in ("sgd", "adagrad", "rowwise_adagrad", "adam")},
        "sort_bytes_per_key": ParamSpec(
            "sort_bytes_per_key", 2.0 * INDEX_BYTES,
            "coalescing sorts the B x L lookup keys with their positions: one read + write of a 16 B "
            "(key, position) pair per merge level, i.e. 2 x 8 B per key per log2 level (assumed; radix sorts "
            "on GPUs make fewer passes, which the fit absorbs)",
            1e-3, 1e4, "bytes-equivalent per key per log2(keys) level"),
        "evicted_row_bytes": ParamSpec(
            "evicted_row_bytes", float(efficiency.embedding_access_bytes),
            "one more access unit (efficiency.embedding_access_bytes) per updated row whose lines were "
            "evicted since its forward, as miss_overhead_bytes (assumed); fitted on the bench's evicted "
            "cases (random row read-modify-writes that wait on memory)",
            1e-3, 1e6, "bytes-equivalent per updated row evicted since its forward"),
        "page_fault_s": page_fault_spec(),
        "translation_entries": ParamSpec(
            "translation_entries", 2048.0,
            "second-level TLB entries of a current x86 core (2048 on Intel Golden Cove, 3072 on AMD Zen 4; "
            "assumed the same order on GPUs, whose 2 MiB pages give far more reach): fitted where measured",
            1.0, 1e8, "pages"),
        "page_walk_bytes": ParamSpec(
            "page_walk_bytes", float(efficiency.embedding_access_bytes),
            "one extra access unit per translation miss: the page-table entry is read from the cache "
            "hierarchy (assumed; fitted where measured)", 1e-3, 1e5, "bytes-equivalent per translation miss"),
        "coalesce_row_s": ParamSpec(
            "coalesce_row_s", 0.35e-6,
            "one dependent HBM load per duplicate of the hottest row in the GPU coalesce's serial sum: about "
            "600 cycles at 1.7 GHz (H100 HBM3 latency, fp4-site.pages.dev GPU memory hierarchy table; "
            "assumed for other GPUs; a compiler unrolling the loop would overlap a few); GPU only, fitted "
            "where skewed coalescing updates are measured", 1e-9, 1e-4, "s per duplicate lookup"),
        "fixed_s": ParamSpec("fixed_s", launch, launch_basis(), 1e-8, 1e-2, "s per launch"),
        "backward_fixed_s": ParamSpec("backward_fixed_s", launch, launch_basis(), 1e-8, 1e-2,
                                      "s per launch"),
        "step_call_s": ParamSpec(
            "step_call_s", 20.0 * launch,
            "the calls around one sparse update: the bench times each table's backward + update as its "
            "own backward() and optimizer step() (autograd engine start, the optimizer's per-call Python), "
            "which a training step makes once for all its tables; assumed 20 x efficiency.kernel_launch_s "
            "(here an SGD step() over one table took 122 us, over 16 tables 34 us per table); fitted where "
            "measured, which takes cases of several tables in one call (one-table cases alone cannot tell "
            "it from backward_fixed_s). A benchmark case pays it once; the step model once per step (the "
            "sparse optimizer's step(); the engine start is overhead.backward_start_s)",
            1e-8, 1e-2, "s per update call"),
    }


@lru_cache(maxsize=64)
def _prefix_harmonic(s: float) -> tuple[float, ...]:
    """Partial sums of k^-s for k = 0 .. 1024 (cached per exponent)."""
    sums = [0.0]
    for k in range(1, _EXACT_RANKS + 1):
        sums.append(sums[-1] + k ** -s)
    return tuple(sums)


def _harmonic(n: float, s: float) -> float:
    """Generalised harmonic number H(n, s) = sum_{k<=n} k^-s (exact to 1024 terms, then the integral)."""
    if n <= 0:
        return 0.0
    total = _prefix_harmonic(s)[min(int(n), _EXACT_RANKS)]
    if n > _EXACT_RANKS:
        a, b = _EXACT_RANKS + 0.5, n + 0.5
        total += math.log(b / a) if abs(s - 1.0) < 1e-9 else (b ** (1 - s) - a ** (1 - s)) / (1 - s)
    return total


@lru_cache(maxsize=4096)
def hit_fraction(rows: float, cached_rows: float, zipf_exponent: float) -> float:
    """Fraction of lookups served from cache when the ``cached_rows`` hottest rows are resident."""
    if cached_rows >= rows:
        return 1.0
    if cached_rows <= 0:
        return 0.0
    if zipf_exponent <= 0:
        return cached_rows / rows
    return min(1.0, _harmonic(cached_rows, zipf_exponent) / _harmonic(rows, zipf_exponent))


@lru_cache(maxsize=4096)
def unique_rows(rows: int, lookups: float, zipf_exponent: float = 0.0) -> float:
    """Expected number of distinct rows among ``lookups`` draws (binomial model; bounded Zipf if skewed)."""
    if rows <= 0 or lookups <= 0:
        return 0.0
    if zipf_exponent <= 0:
        return rows * -math.expm1(lookups * math.log1p(-1.0 / rows)) if rows > 1 else 1.0
    s = zipf_exponent
    norm = _harmonic(rows, s)
    total = 0.0
    for k in range(1, min(rows, _EXACT_UNIQUE_RANKS) + 1):
        p = k ** -s / norm
        total += -math.expm1(lookups * math.log1p(-p)) if p < 1 else 1.0
    lo = float(_EXACT_UNIQUE_RANKS + 1)
    while lo <= rows:
        hi = min(float(rows), math.floor(lo * _BUCKET_RATIO) + 1.0)
        count = hi - lo + 1.0
        p = math.sqrt(lo * hi) ** -s / norm
        total += count * -math.expm1(lookups * math.log1p(-p))
        lo = hi + 1.0
    return min(total, float(rows), lookups)


def translation_hit_fraction(p: Mapping[str, float], kind: str, rows: float, rbytes: float,
                             zipf_exponent: float, share: float = 1.0) -> float:
    """Fraction of row accesses whose page translation is in the TLB (see the module docstring); the
    table keeps ``share`` of the TLB's entries."""
    page = TRANSLATION_PAGE_BYTES.get(kind, GPU_TRANSLATION_PAGE_BYTES)
    entries = max(p["translation_entries"] * share, 1.0)
    table_bytes = rows * rbytes
    reach = entries * page
    if table_bytes <= reach:
        return 1.0
    covered = max(entries, rows * reach / table_bytes)
    return hit_fraction(float(rows), covered, zipf_exponent)


def held_fraction(fig: DeviceFigures, read_bytes: Any, evicted_bytes: Any) -> Any:
    """Fraction of the ``read_bytes`` a table's forward read that the last-level cache still holds after
    ``evicted_bytes`` of other data: ``min(1, C / read) x exp(-evicted / C)`` (see the module docstring).
    Takes floats or numpy arrays (the vectorised fit)."""
    cache = float(fig.cache_bytes)
    if cache <= 0:
        return np.zeros_like(np.asarray(evicted_bytes, dtype=float))
    return (np.minimum(1.0, cache / np.maximum(read_bytes, 1.0))
            * np.exp(-np.maximum(evicted_bytes, 0.0) / cache))


@lru_cache(maxsize=4096)
def hottest_row_lookups(rows: int, lookups: float, zipf_exponent: float = 0.0) -> float:
    """Expected lookups of the most looked-up row among ``lookups`` draws over ``rows``: the Zipf head's
    share ``lookups / H(rows, s)``, or for uniform draws the mean plus the Gaussian tail of the maximum,
    ``lookups / rows + sqrt(2 lookups / rows ln rows)``; at least one, at most ``lookups``."""
    if rows <= 0 or lookups <= 0:
        return 0.0
    mean = lookups / rows
    spread = mean + math.sqrt(2.0 * mean * math.log(rows)) if rows > 1 else lookups
    head = lookups / _harmonic(rows, zipf_exponent) if zipf_exponent > 0 else 0.0
    return min(float(lookups), max(1.0, spread, head))


def touched_passes(kind: str, optimizer: str, launches: float) -> float:
    """Read + write passes of a backward over its touched rows' values: the coalesced gradient and one
    per optimizer op after the backward proper; none for SGD on a GPU, which adds the uncoalesced
    gradient with one ``index_add_`` (its row traffic is the update's row passes)."""
    if optimizer == "sgd" and kind == "gpu":
        return 0.0
    return 1.0 + max(launches - BACKWARD_BASE_LAUNCHES, 0)


def row_bytes(dim: int, elem_bytes: int, access_bytes: int) -> int:
    """Bytes one row costs at the memory system's access granularity."""
    return ceil_div(dim * elem_bytes, access_bytes) * access_bytes


def embedding_time_s(p: Mapping[str, float], fig: DeviceFigures, rows: int, dim: int, pooling: float,
                     batch: int, elem_bytes: int, phase: str, optimizer: str = "sgd",
                     zipf_exponent: float = 0.0, footprint_rows: float | None = None,
                     cache_share: float = 1.0, evicted_bytes: float = 0.0) -> tuple[float, dict[str, float]]:
    """Time of one embedding-bag op in seconds, and its parts (fixed, cache, memory, overhead).

    ``footprint_rows`` is the number of distinct rows the access stream touches over many steps (default
    ``rows``: training draws new batches); a benchmark rotating a few batches touches fewer.
    ``cache_share`` scales the cache and the translation reach the table has to itself (see
    :func:`cache_shares`). ``evicted_bytes`` (backward) is the other data touched between the table's
    forward and this update (see the module docstring).
    """
    lookups = batch * pooling
    rbytes = row_bytes(dim, elem_bytes, fig.access_bytes)
    footprint = float(rows if footprint_rows is None else min(rows, max(footprint_rows, 1.0)))
    share = min(max(cache_share, 0.0), 1.0)
    cached_rows = p["cache_fraction"] * fig.cache_bytes * share / rbytes
    hit = hit_fraction(footprint, cached_rows, zipf_exponent)
    walk = (1.0 - translation_hit_fraction(p, fig.kind, rows, rbytes, zipf_exponent, share)) \
        * p["page_walk_bytes"]
    bandwidth = fig.memory_bandwidth_bytes_per_s * p["bandwidth_fraction"]
    row_cost = memory_rate_bytes(p, hit)  # memory-rate bytes per row byte
    fault_s = serial_s = 0.0
    if phase == "forward":
        launches = FORWARD_LAUNCHES
        fixed = launches * p["fixed_s"]
        rows_s = lookups * (rbytes * row_cost + (1.0 - hit) * p["miss_overhead_bytes"] + walk) / bandwidth
        overhead_s = (lookups * p["lookup_overhead_bytes"]
                      + batch * p.get("bag_overhead_bytes", 0.0)) / bandwidth  # per lookup, per bag
        stream_s = (lookups * INDEX_BYTES + batch * INDEX_BYTES + batch * dim * elem_bytes) / bandwidth
    else:
        launches = BACKWARD_LAUNCHES.get(optimizer, BACKWARD_LAUNCHES["adagrad"])
        fixed = launches * p["backward_fixed_s"]
        touched = unique_rows(rows, lookups, zipf_exponent)
        value_bytes = dim * elem_bytes
        coalesces = optimizer in COALESCING
        units, passes = _ROW_PASSES.get(optimizer, _ROW_PASSES["adagrad"])
        scalar_state = 2.0 * fig.access_bytes if optimizer == "rowwise_adagrad" else 0.0
        updated = touched if coalesces else lookups  # SGD: one row read-modify-write per lookup
        update_bytes = updated * (units * rbytes + scalar_state)
        row_work = updated * p.get(f"update_row_bytes_{optimizer}", 0.0)
        # the forward's rows still held hit; the others at the long-run rate; repeats within the update hit
        misses = touched * (1.0 - float(held_fraction(fig, touched * rbytes, evicted_bytes))) * (1.0 - hit)
        hit = 1.0 - misses / max(updated, 1.0)
        row_cost = memory_rate_bytes(p, hit)
        rows_s = (update_bytes * row_cost + row_work
                  + updated * passes * ((1.0 - hit) * p["miss_overhead_bytes"] + walk)
                  + misses * p.get("evicted_row_bytes", 0.0)) / bandwidth
        grad_bytes = (batch * value_bytes
                      + p["backward_value_passes"] * lookups * (value_bytes + INDEX_BYTES)
                      + 2.0 * touched * value_bytes * touched_passes(fig.kind, optimizer, launches))
        if coalesces:
            grad_bytes += p["sort_bytes_per_key"] * lookups * math.log2(max(lookups, 2.0))
        overhead_s = lookups * p["backward_lookup_bytes"] / bandwidth
        fault_s = fresh_mapping_fault_s(p, fig, lookups * value_bytes, lookups * INDEX_BYTES,
                                        touched * value_bytes if coalesces else 0.0)
        stream_s = grad_bytes / bandwidth
        ratio = p.get("backward_bandwidth_ratio", 1.0)
        rows_s, overhead_s, stream_s = rows_s / ratio, overhead_s / ratio, stream_s / ratio
        if coalesces and fig.kind == "gpu":
            hottest = hottest_row_lookups(rows, lookups, zipf_exponent)
            serial_s = max(0.0, hottest * p.get("coalesce_row_s", 0.0) - lookups * value_bytes / bandwidth)
    total = fixed + rows_s + overhead_s + stream_s + fault_s + serial_s
    return total, {"fixed_s": fixed, "rows_s": rows_s, "lookup_overhead_s": overhead_s,
                   "stream_s": stream_s, "page_fault_s": fault_s, "serial_s": serial_s, "hit_fraction": hit}


def _rows_read(fig: DeviceFigures, tables: list[tuple[float, int, int, float, float]]) -> list[float]:
    """Distinct bytes each table's forward reads, at the access granularity, from ``(rows, dim, elem_bytes,
    lookups, zipf_exponent)``."""
    return [unique_rows(int(rows), float(lookups), float(s))
            * row_bytes(int(dim), int(elem), fig.access_bytes) for rows, dim, elem, lookups, s in tables]


def step_read_bytes(fig: DeviceFigures, tables: list[tuple[float, int, int, float, float]]) -> float:
    """Distinct bytes of rows a step's forwards read over ``tables`` (``(rows, dim, elem_bytes, lookups,
    zipf_exponent)`` each), at the access granularity."""
    return float(sum(_rows_read(fig, tables)))


def evicted_between(fig: DeviceFigures, tables: list[tuple[float, int, int, float, float]],
                    other_bytes: float = 0.0) -> list[float]:
    """Bytes of other data a step touches between each table's forward and its update, from ``(rows, dim,
    elem_bytes, lookups, zipf_exponent)`` per table: ``other_bytes`` of dense working data and the rows the
    other tables' forwards read (their distinct rows at the access granularity)."""
    read = _rows_read(fig, tables)
    total = float(sum(read))
    return [max(float(other_bytes), 0.0) + total - own for own in read]


def cache_shares(p: Mapping[str, float], fig: DeviceFigures, tables: list[tuple[float, int, int, float]],
                 other_bytes: float = 0.0) -> list[float]:
    """The share of the cache each of a step's tables keeps, from ``(rows, dim, elem_bytes, lookups)``.

    Between two lookups of one table a step looks up every other table on the device, so the tables
    share the cache (and the TLB). With least-recently-used replacement a row stays cached while it is
    looked up again within the cache's characteristic time ``T`` (Che's approximation): a row of a table
    looked up ``lookups / rows`` times per step (uniform over its rows) is resident with probability
    ``1 - exp(-lookups / rows * T)``, and ``T`` fills the cache::

        sum_i rows_i * row_bytes_i * (1 - exp(-lookups_i / rows_i * T)) = cache_fraction * cache_bytes

    The rest of the step competes too: ``other_bytes`` of dense working data (activations and their
    gradients, the input batch, dense weights, gradients and optimizer state) are each touched about once
    per step between two steps' lookups of a table, so they enter the sum as one more stream of rate 1
    (``other_bytes * (1 - exp(-T))``). A one-table benchmark case has none and keeps the whole cache;
    a case of K same-shaped tables in one call gives each a share of 1/K.

    A table's share is its resident bytes over the cache. Tables that fit together with the other data
    keep the whole cache each (share 1). Skewed ids make hot rows hotter than this uniform rate; the share
    is an upper bound on the cache such a table needs, and its hot rows then get the hit fraction of
    :func:`hit_fraction`.
    """
    cache = p["cache_fraction"] * fig.cache_bytes
    sizes = [rows * row_bytes(dim, elem, fig.access_bytes) for rows, dim, elem, _ in tables]
    other = float(other_bytes)
    if not math.isfinite(other) or other < 0:
        raise ValueError(f"other_bytes must be a finite number of bytes >= 0, got {other_bytes!r}")
    if cache <= 0 or sum(sizes) + other <= cache:
        return [1.0] * len(tables)
    rates = [lookups / max(rows, 1.0) for rows, _, _, lookups in tables]

    def resident(t: float) -> float:
        return other * -math.expm1(-t) + sum(size * -math.expm1(-rate * t)
                                             for size, rate in zip(sizes, rates, strict=True))

    lo, hi = 0.0, 1.0
    while resident(hi) < cache and hi < 1e30:
        hi *= 2.0
    for _ in range(60):  # bisection on the characteristic time
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if resident(mid) < cache else (lo, mid)
    t = 0.5 * (lo + hi)
    return [min(1.0, size * -math.expm1(-rate * t) / cache) for size, rate in zip(sizes, rates, strict=True)]


def launches_for(phase: str, optimizer: str) -> int:
    """Kernel launches one embedding op implies."""
    if phase == "forward":
        return FORWARD_LAUNCHES
    return BACKWARD_LAUNCHES.get(optimizer, BACKWARD_LAUNCHES["adagrad"])


@dataclass(frozen=True)
class ZipfPacking:
    """The skewed ops of an :class:`EmbeddingBatch` (``s > 0``), packed so the harmonic numbers of all of
    them come from one set of array operations (:func:`_harmonic_array`)."""

    index: np.ndarray  # positions of the skewed ops in the batch
    one_minus: np.ndarray  # 1 - s per skewed op
    unit: np.ndarray  # s == 1 (within 1e-9): the tail is a logarithm
    table: np.ndarray  # prefix sums of k^-s, k = 0 .. _EXACT_RANKS, one row per distinct exponent
    row: np.ndarray  # each skewed op's row of ``table``


def zipf_packing(zipf: np.ndarray) -> ZipfPacking:
    """Pack the exponents ``zipf`` of a batch's ops (0 where uniform) for :func:`_harmonic_array`."""
    index = np.flatnonzero(zipf > 0)
    values, row = np.unique(zipf[index], return_inverse=True)
    table = (np.array([_prefix_harmonic(float(v)) for v in values]) if len(values)
             else np.zeros((0, _EXACT_RANKS + 1)))
    exponent = zipf[index]
    return ZipfPacking(index, 1.0 - exponent, np.abs(exponent - 1.0) < 1e-9, table, row.astype(np.int64))


@dataclass(frozen=True)
class EmbeddingBatch:
    """The parameter-independent inputs of :func:`embedding_time_s` for many ops, as arrays (one entry
    per op), so a fit can price all its cases in one vectorised call (:func:`embedding_times`)."""

    rows: np.ndarray
    dim: np.ndarray
    elem: np.ndarray
    batch: np.ndarray
    lookups: np.ndarray
    rbytes: np.ndarray
    footprint: np.ndarray
    share: np.ndarray
    zipf: np.ndarray
    forward: np.ndarray
    touched: np.ndarray
    h_rows: np.ndarray  # H(footprint, s) of the skewed ops (1 where uniform)
    h_rows_tlb: np.ndarray  # H(rows, s)
    launches: np.ndarray
    coalesces: np.ndarray
    units: np.ndarray
    passes: np.ndarray
    scalar_state: np.ndarray
    optimizers: tuple[str, ...]  # the distinct optimizers; ``opt_index`` points into them
    opt_index: np.ndarray
    zipf_packing: ZipfPacking  # the skewed ops (s > 0), for :func:`_harmonic_array`
    evicted: np.ndarray  # other data touched between a table's forward and its update (bytes)
    hottest: np.ndarray  # lookups of the most looked-up row of a coalescing GPU update (0 elsewhere)
    touched_passes: np.ndarray  # passes over the touched rows' values (:func:`touched_passes`)
    # the parameter-free parts of :func:`embedding_times`' formulas, computed once per batch (bytes)
    table_bytes: np.ndarray  # rows x row bytes
    forward_stream_bytes: np.ndarray  # indices, offsets and the pooled output of a forward
    updated: np.ndarray  # rows an update rewrites: the touched rows, or every lookup (SGD)
    update_bytes: np.ndarray  # updated x (row-byte units x row bytes + row-wise state)
    update_passes: np.ndarray  # updated x random row passes
    unheld: np.ndarray  # touched rows the cache no longer holds since the forward (before long-run hits)
    value_bytes: np.ndarray  # one row's values: dim x elem
    gradient_bytes: np.ndarray  # the pooled gradient: batch x dim x elem
    lookup_value_bytes: np.ndarray  # one per-lookup gradient row and its index
    touched_value_bytes: np.ndarray  # the passes over the touched rows' values
    sort_levels: np.ndarray  # log2 of the keys a coalescing update sorts
    fault_pages: np.ndarray  # pages of the per-step buffers mapped afresh (CPU)


#: One op's parameter-independent inputs: rows, dim, pooling, batch, elem_bytes, phase, optimizer,
#: zipf_exponent, footprint_rows, cache_share, evicted_bytes (the arguments of :func:`embedding_time_s`).
BatchOp = tuple[int, int, float, int, int, str, str, float, "float | None", float, float]


def embedding_batch(fig: DeviceFigures, ops: list[BatchOp]) -> EmbeddingBatch:
    """Pack ``(rows, dim, pooling, batch, elem_bytes, phase, optimizer, zipf_exponent, footprint_rows,
    cache_share, evicted_bytes)`` per op (the arguments of :func:`embedding_time_s`) for
    :func:`embedding_times`."""
    rows = np.array([float(o[0]) for o in ops])
    dim = np.array([float(o[1]) for o in ops])
    pooling = np.array([float(o[2]) for o in ops])
    batch = np.array([float(o[3]) for o in ops])
    elem = np.array([float(o[4]) for o in ops])
    lookups = batch * pooling
    rbytes = np.array([float(row_bytes(int(o[1]), int(o[4]), fig.access_bytes)) for o in ops])
    footprint = np.array([float(o[0] if o[8] is None else min(o[0], max(o[8], 1.0))) for o in ops])
    share = np.array([min(max(float(o[9]), 0.0), 1.0) for o in ops])
    evicted = np.array([float(o[10]) if len(o) > 10 else 0.0 for o in ops])
    zipf = np.array([float(o[7]) for o in ops])
    forward = np.array([o[5] == "forward" for o in ops])
    optimizer = tuple("none" if o[5] == "forward" else str(o[6]) for o in ops)
    touched = np.array([0.0 if o[5] == "forward" else unique_rows(int(o[0]), float(o[3] * o[2]), float(o[7]))
                        for o in ops])
    h_rows = np.array([_harmonic(f, s) if s > 0 else 1.0 for f, s in zip(footprint, zipf, strict=True)])
    h_tlb = np.array([_harmonic(r, s) if s > 0 else 1.0 for r, s in zip(rows, zipf, strict=True)])
    launches = np.array([float(BACKWARD_LAUNCHES.get(o, BACKWARD_LAUNCHES["adagrad"])) for o in optimizer])
    coalesces = np.array([o in COALESCING for o in optimizer])
    units = np.array([_ROW_PASSES.get(o, _ROW_PASSES["adagrad"])[0] for o in optimizer])
    passes = np.array([_ROW_PASSES.get(o, _ROW_PASSES["adagrad"])[1] for o in optimizer])
    scalar_state = np.array([2.0 * fig.access_bytes if o == "rowwise_adagrad" else 0.0 for o in optimizer])
    distinct = tuple(sorted(set(optimizer)))
    opt_index = np.array([distinct.index(o) for o in optimizer], dtype=np.int64)
    hottest = np.array([hottest_row_lookups(int(o[0]), float(o[3] * o[2]), float(o[7]))
                        if fig.kind == "gpu" and c else 0.0 for o, c in zip(ops, coalesces, strict=True)])
    passes_touched = np.array([touched_passes(fig.kind, o, n)
                               for o, n in zip(optimizer, launches, strict=True)])
    value_bytes = dim * elem
    updated = np.where(coalesces, touched, lookups)
    fault_pages = np.zeros_like(lookups)
    if fig.kind == "cpu":
        fresh = sum(np.where(buf >= FRESH_MAPPING_BYTES, buf, 0.0)
                    for buf in (lookups * value_bytes, lookups * INDEX_BYTES,
                                np.where(coalesces, touched * value_bytes, 0.0)))
        fault_pages = fresh / PAGE_BYTES
    return EmbeddingBatch(
        rows, dim, elem, batch, lookups, rbytes, footprint, share, zipf, forward, touched, h_rows, h_tlb,
        launches, coalesces, units, passes, scalar_state, distinct, opt_index, zipf_packing(zipf), evicted,
        hottest, passes_touched,
        table_bytes=rows * rbytes,
        forward_stream_bytes=lookups * INDEX_BYTES + batch * INDEX_BYTES + batch * dim * elem,
        updated=updated, update_bytes=updated * (units * rbytes + scalar_state),
        update_passes=updated * passes,
        unheld=touched * (1.0 - held_fraction(fig, touched * rbytes, evicted)),
        value_bytes=value_bytes, gradient_bytes=batch * value_bytes,
        lookup_value_bytes=value_bytes + INDEX_BYTES,
        touched_value_bytes=2.0 * touched * value_bytes * passes_touched,
        sort_levels=np.log2(np.maximum(lookups, 2.0)), fault_pages=fault_pages)


def _harmonic_array(n: np.ndarray, z: ZipfPacking) -> np.ndarray:
    """:func:`_harmonic` of ``n`` at each skewed op of ``z``, with that op's exponent (0 elsewhere)."""
    out = np.zeros_like(n, dtype=float)
    m = np.maximum(n[z.index], 0.0)
    total = z.table[z.row, np.minimum(m.astype(np.int64), _EXACT_RANKS)]
    a, b = _EXACT_RANKS + 0.5, m + 0.5
    power = np.where(z.unit, 1.0, z.one_minus)  # any non-zero exponent where the tail is a logarithm
    with np.errstate(divide="ignore", invalid="ignore"):
        tail = np.where(z.unit, np.log(b / a), (b ** power - a ** power) / power)
    out[z.index] = np.where(m > _EXACT_RANKS, total + tail, total)
    return out


def _hit_array(rows: np.ndarray, cached: np.ndarray, b: EmbeddingBatch, h_rows: np.ndarray) -> np.ndarray:
    """:func:`hit_fraction` over arrays, with ``H(rows, s)`` given."""
    hit = cached / np.where(rows > 0, rows, 1.0)
    if len(b.zipf_packing.index):
        skewed = b.zipf > 0
        hit = np.where(skewed, np.minimum(1.0, _harmonic_array(cached, b.zipf_packing) / h_rows), hit)
    hit = np.where(cached <= 0, 0.0, hit)
    return np.where(cached >= rows, 1.0, hit)


def embedding_times(p: Mapping[str, float], fig: DeviceFigures, b: EmbeddingBatch) -> np.ndarray:
    """:func:`embedding_time_s` (the total, in seconds) of every op of ``b`` (packed for the same
    ``fig``), vectorised."""
    cached = p["cache_fraction"] * fig.cache_bytes * b.share / b.rbytes
    hit = _hit_array(b.footprint, cached, b, b.h_rows)
    page = TRANSLATION_PAGE_BYTES.get(fig.kind, GPU_TRANSLATION_PAGE_BYTES)
    entries = np.maximum(p["translation_entries"] * b.share, 1.0)
    reach = entries * page
    covered = np.maximum(entries, b.rows * reach / b.table_bytes)
    tlb = np.where(b.table_bytes <= reach, 1.0, _hit_array(b.rows, covered, b, b.h_rows_tlb))
    walk = (1.0 - tlb) * p["page_walk_bytes"]
    bandwidth = fig.memory_bandwidth_bytes_per_s * p["bandwidth_fraction"]
    row_cost = memory_rate_bytes(p, hit)
    miss = (1.0 - hit) * p["miss_overhead_bytes"] + walk
    lookups = b.lookups
    # forward
    fwd = (FORWARD_LAUNCHES * p["fixed_s"]
           + lookups * (b.rbytes * row_cost + miss) / bandwidth
           + (lookups * p["lookup_overhead_bytes"] + b.batch * p.get("bag_overhead_bytes", 0.0))
           / bandwidth
           + b.forward_stream_bytes / bandwidth)
    # backward + update, per optimizer
    row_work_per = np.array([p.get(f"update_row_bytes_{o}", 0.0) for o in b.optimizers])[b.opt_index]
    updated = b.updated
    misses = b.unheld * (1.0 - hit)
    hit_b = 1.0 - misses / np.maximum(updated, 1.0)
    miss_b = (1.0 - hit_b) * p["miss_overhead_bytes"] + walk
    rows_s = (b.update_bytes * memory_rate_bytes(p, hit_b)
              + updated * row_work_per
              + b.update_passes * miss_b + misses * p.get("evicted_row_bytes", 0.0)) / bandwidth
    grad_bytes = (b.gradient_bytes + p["backward_value_passes"] * lookups * b.lookup_value_bytes
                  + b.touched_value_bytes)
    grad_bytes = grad_bytes + np.where(b.coalesces, p["sort_bytes_per_key"] * lookups * b.sort_levels, 0.0)
    overhead_s = lookups * p["backward_lookup_bytes"] / bandwidth
    fault_s = b.fault_pages * p["page_fault_s"] if fig.kind == "cpu" else 0.0
    ratio = p.get("backward_bandwidth_ratio", 1.0)
    bwd = (b.launches * p["backward_fixed_s"] + (rows_s + overhead_s + grad_bytes / bandwidth) / ratio
           + fault_s)
    if b.hottest.any():  # a GPU coalesce's serial sum over the hottest row
        serial = b.hottest * p.get("coalesce_row_s", 0.0) - lookups * b.value_bytes / bandwidth
        bwd = bwd + np.maximum(0.0, serial)
    return np.where(b.forward, fwd, bwd)
