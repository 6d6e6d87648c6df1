"""Turn nccl-tests logs (all_reduce_perf, all_gather_perf, alltoall_perf, reduce_scatter_perf) into
collective records.

A log's data rows read ``size count type redop root  time algbw busbw #wrong  time algbw busbw #wrong``
(out-of-place, then in-place; time in microseconds, bandwidths in GB/s = 1e9 B/s); older versions have no
``root`` column, and MPI launchers may prefix each line with ``[1,0]<stdout>:``. The collective comes from
``# Collective test starting: X``, the command line (``X_perf``) or the file name; the world size from the
``#  Rank N ...`` lines, else ``nGpus`` x ``nThread`` or ``-g``. One record per size: ``timing`` is the
out-of-place time (nccl-tests reports a mean over ``iters``, so median = p10 = p90 and ``extra.statistic``
says so); the in-place figures are kept in ``extra``. ``params.bytes`` is the per-rank input buffer:
nccl-tests' size divided by the world size for all-gather (whose size is the gathered output), the size
itself otherwise.

Every data row's out-of-place time must be a positive finite number: nccl-tests prints a mean of real
launches (a few microseconds at the least), so a zero, negative, ``nan`` or non-numeric time means a
broken run or an edited log, and the log is refused with its line rather than the row dropped.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from kernels.records import make_record

_KERNELS = {
    "all_reduce": "all_reduce",
    "allreduce": "all_reduce",
    "all_gather": "all_gather",
    "allgather": "all_gather",
    "alltoall": "all_to_all",
    "all_to_all": "all_to_all",
    "reduce_scatter": "reduce_scatter",
    "reducescatter": "reduce_scatter",
}
_TYPES = {
    "float": "fp32",
    "float32": "fp32",
    "half": "fp16",
    "float16": "fp16",
    "bfloat16": "bf16",
    "bf16": "bf16",
}
_PREFIX = re.compile(r"^\s*(\[\d+,\d+\]<std(?:out|err)>:)?")
_RANK = re.compile(
    r"^#\s+Rank\s+(\d+)\s+(?:Group\s+\d+\s+)?Pid\s+\d+\s+on\s+(\S+)\s+device\s+(\d+)\s+\[[^\]]*\]\s*(.*)$"
)
_PERF = re.compile(r"\b(all_reduce|all_gather|alltoall|reduce_scatter)_perf\b")


class NcclLogError(ValueError):
    """A log that is not nccl-tests output, whose collective or world size cannot be told, or with a data
    row whose count or time is not a valid number (the message names the line)."""


def _kernel_from(text: str) -> str | None:
    match = _PERF.search(text)
    if match:
        return _KERNELS[match.group(1)]
    lowered = text.lower()
    for key in (
        "all_reduce",
        "allreduce",
        "all_gather",
        "allgather",
        "reduce_scatter",
        "reducescatter",
        "alltoall",
        "all_to_all",
    ):
        if key in lowered:
            return _KERNELS[key]
    return None


def _float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _positive(value: float | None) -> bool:
    return value is not None and math.isfinite(value) and value > 0


def _check_time(text: str, value: float | None, source: str, line: int, column: int, size: str) -> None:
    """Raise :class:`NcclLogError` unless a data row's out-of-place time is a positive finite number."""
    if _positive(value):
        return
    problem = "is not a number" if value is None else "must be a positive finite number of microseconds"
    raise NcclLogError(
        f"{source}: line {line} (size {size}): out-of-place time (column {column}, us) {problem}, "
        f"got {text!r}"
    )


def parse_log(
    text: str, source: str = "log", kernel: str | None = None, world_size: int | None = None
) -> dict[str, Any]:
    """Parse one nccl-tests log into ``{kernel, world_size, ranks_per_node, device, backend, iters, rows,
    avg_busbw_gb_s}``; rows are dicts with ``size, count, type, redop, oop, ip`` (time_us, algbw, busbw)."""
    lines = [_PREFIX.sub("", line, count=1).rstrip() for line in text.splitlines()]
    ranks: dict[int, str] = {}
    device = None
    header: list[str] | None = None
    rows = []
    n_gpus = n_threads = None
    iters = None
    avg_busbw = None
    backend = "rccl" if "rccl" in text.lower() else "nccl"
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            m = re.match(r"#\s*Collective test starting:\s*(\S+)", stripped)
            if m and kernel is None:
                kernel = _kernel_from(m.group(1))
            rank = _RANK.match(stripped)
            if rank:
                ranks[int(rank.group(1))] = rank.group(2)
                device = device or rank.group(4).strip() or None
            m = re.search(r"nThread\s+(\d+)\s+nGpus\s+(\d+)", stripped)
            if m:
                n_threads, n_gpus = int(m.group(1)), int(m.group(2))
            m = re.search(r"(?<!warmup )\biters:\s*(\d+)", stripped)
            if m and iters is None:
                iters = int(m.group(1))
            if re.match(r"#\s+size\s+count\s+type", stripped):
                header = stripped.lstrip("#").split()
            m = re.match(r"#\s*Avg bus bandwidth\s*:\s*([0-9.eE+-]+)", stripped)
            if m:
                avg_busbw = _float(m.group(1))
            continue
        if kernel is None and _PERF.search(stripped):
            kernel = _kernel_from(stripped)
        if world_size is None and _PERF.search(stripped):
            m = re.search(r"\s-g\s+(\d+)", stripped)
            if m:
                n_gpus = int(m.group(1))
        if header is None:
            continue
        fields = stripped.split()
        has_root = "root" in header
        lead = 5 if has_root else 4
        if len(fields) < lead + 6 or not fields[0].isdigit():
            continue

        def placement(values: list[str]) -> dict[str, float | None]:
            return {
                "time_us": _float(values[0]),
                "algbw_gb_s": _float(values[1]),
                "busbw_gb_s": _float(values[2]),
            }

        oop = placement(fields[lead : lead + 3])
        ip = placement(fields[lead + 4 : lead + 7]) if len(fields) >= lead + 7 else None
        _check_time(fields[lead], oop["time_us"], source, number, lead + 1, fields[0])
        if ip is not None and not _positive(ip["time_us"]):
            ip["time_us"] = None  # informational only (kept in ``extra``): dropped, not refused
        if not fields[1].isdigit():
            raise NcclLogError(
                f"{source}: line {number} (size {fields[0]}): count (column 2) is not a whole number, "
                f"got {fields[1]!r}"
            )
        rows.append(
            {
                "size": int(fields[0]),
                "count": int(fields[1]),
                "type": fields[2],
                "redop": fields[3],
                "oop": oop,
                "ip": ip,
            }
        )
    if header is None or not rows:
        raise NcclLogError(
            f"{source}: no nccl-tests result table found (expected the '#  size  count  type' "
            "header and data rows)"
        )
    if kernel is None:
        kernel = _kernel_from(source)
    if kernel is None:
        raise NcclLogError(
            f"{source}: cannot tell the collective (no '_perf' command, 'Collective test "
            "starting' line or collective in the file name)"
        )
    if world_size is None:
        if ranks:
            world_size = len(ranks)
        elif n_gpus is not None:
            world_size = n_gpus * (n_threads or 1)
    if not world_size:
        raise NcclLogError(f"{source}: cannot tell the world size (no '#  Rank' lines or nGpus)")
    if ranks:
        per_host: dict[str, int] = {}
        for host in ranks.values():
            per_host[host] = per_host.get(host, 0) + 1
        ranks_per_node = max(per_host.values())
    else:
        ranks_per_node = world_size
    return {
        "kernel": kernel,
        "world_size": int(world_size),
        "ranks_per_node": int(ranks_per_node),
        "device": device,
        "backend": backend,
        "iters": iters,
        "rows": rows,
        "avg_busbw_gb_s": avg_busbw,
    }


def records_from_log(
    text: str, source: str = "log", kernel: str | None = None, world_size: int | None = None
) -> tuple[list[dict[str, Any]], list[str]]:
    """Collective records of one nccl-tests log; returns (records, warnings about skipped rows)."""
    parsed = parse_log(text, source, kernel, world_size)
    kernel, world = parsed["kernel"], parsed["world_size"]
    records: list[dict[str, Any]] = []
    skipped: dict[str, int] = {}
    for row in parsed["rows"]:
        dtype = _TYPES.get(row["type"])
        if dtype is None:
            skipped[row["type"]] = skipped.get(row["type"], 0) + 1
            continue
        per_rank = row["size"] // world if kernel == "all_gather" else row["size"]
        seconds = row["oop"]["time_us"] * 1e-6
        extra: dict[str, Any] = {
            "source": "nccl-tests",
            "log": Path(source).name,
            "statistic": "mean over iters (nccl-tests)",
            "nccl_tests_size_bytes": row["size"],
            "count": row["count"],
            "redop": row["redop"],
            "algbw_bytes_per_s": (row["oop"]["algbw_gb_s"] or 0.0) * 1e9,
            "busbw_bytes_per_s": (row["oop"]["busbw_gb_s"] or 0.0) * 1e9,
            "device_name": parsed["device"],
        }
        if row["ip"] is not None and row["ip"]["time_us"] is not None:
            extra.update(
                {
                    "in_place_time_s": row["ip"]["time_us"] * 1e-6,
                    "in_place_algbw_bytes_per_s": (row["ip"]["algbw_gb_s"] or 0.0) * 1e9,
                    "in_place_busbw_bytes_per_s": (row["ip"]["busbw_gb_s"] or 0.0) * 1e9,
                }
            )
        params = {
            "bytes": int(per_rank),
            "world_size": world,
            "ranks_per_node": parsed["ranks_per_node"],
            "backend": parsed["backend"],
        }
        timing = {"median_s": seconds, "p10_s": seconds, "p90_s": seconds, "reps": int(parsed["iters"] or 1)}
        records.append(make_record("collective", kernel, dtype, params, timing, None, extra))
    warnings = [
        f"{source}: skipped {n} rows of type {t} (only float, half and bfloat16 map to a record dtype)"
        for t, n in sorted(skipped.items())
    ]
    return records, warnings
