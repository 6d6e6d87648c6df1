"""Read and check measurement files written by ``recplan bench`` (schema version 1) for calibration.

A file is ``{"schema_version": 1, "env": {...}, "args": {...}, "records": [...]}``; each record is
``{case_id, suite, kernel, dtype, params, timing: {median_s, p10_s, p90_s, reps} | null, error, extra}``
(see ``kernels/records.py``). Every field is checked here, independently of the writer, and a problem
becomes one :class:`~planner.errors.InputError` naming the file and the field path
(``records[12].timing.median_s``). Times are seconds per call; sizes are bytes.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kernels.records import MAX_CASE_TABLES, MAX_EVICT_BYTES
from planner.errors import InputError
from planner.io import load_json_file

SCHEMA_VERSION = 1
SUITES = ("embedding", "gemm", "interaction", "memory", "collective", "dlrm")
DTYPES = ("fp32", "tf32", "bf16", "fp16")
DEVICE_KINDS = ("cpu", "cuda")

_INT = "int"
_NUM = "number"
_STR = "str"
_EMB = {"rows": _INT, "dim": _INT, "pooling": _INT, "batch": _INT, "distribution": _STR,
        "zipf_exponent": _NUM, "optimizer": _STR}
_LIN = {"batch": _INT, "in_features": _INT, "out_features": _INT}
_DOT = {"batch": _INT, "features": _INT, "dim": _INT}
_DCN = {"batch": _INT, "width": _INT, "low_rank": _INT}
_MEM = {"bytes": _INT, "bytes_moved": _INT}
_COLL = {"bytes": _INT, "world_size": _INT, "ranks_per_node": _INT, "backend": _STR}
_DLRM = {"workload": _STR, "batch": _INT, "precision": _STR, "optimizer": _STR, "devices": _INT,
         "workload_sha256": _STR}
#: suite -> kernel -> required params and their kinds (the bench contract, schema version 1).
KERNELS: dict[str, dict[str, dict[str, str]]] = {
    "embedding": {"embedding_bag_forward": _EMB, "embedding_bag_backward_update": _EMB},
    "gemm": {"linear_forward": _LIN, "linear_backward": _LIN},
    "interaction": {"dot_interaction_forward": _DOT, "dot_interaction_backward": _DOT,
                    "dcn_cross_forward": _DCN, "dcn_cross_backward": _DCN},
    "memory": {**{k: _MEM for k in ("copy", "h2d", "d2h", "elementwise", "optimizer_step")},
               "launch_overhead": {"ops": _INT}},
    "collective": {k: _COLL for k in ("all_to_all", "all_to_all_unequal", "all_reduce", "all_gather",
                                      "reduce_scatter")},
    "dlrm": {"dlrm_train_step": _DLRM},
}
_RECORD_KEYS = ("case_id", "suite", "kernel", "dtype", "params", "timing", "error")
_FILE_KEYS = ("schema_version", "env", "args", "records", "progress")
#: Optional parameters the fit reads, per suite and kernel: integers with their (least, most) value, or
#: None for true/false.
_OPTIONAL: dict[tuple[str, str], dict[str, tuple[int, int] | None]] = {
    ("embedding", "embedding_bag_forward"): {"tables": (1, MAX_CASE_TABLES)},
    ("embedding", "embedding_bag_backward_update"): {"tables": (1, MAX_CASE_TABLES),
                                                     "evict_bytes": (1, MAX_EVICT_BYTES)},
    ("memory", "launch_overhead"): {"kinds": (1, 10**6), "autograd": None},
}
#: Parameters that must be positive when present (sizes and counts).
_POSITIVE = {"ops", "rows", "dim", "pooling", "batch", "in_features", "out_features", "features", "width",
             "bytes", "bytes_moved", "world_size", "ranks_per_node", "devices"}


@dataclass(frozen=True)
class Record:
    """One measured case (successful when ``median_s`` is not None), with where it came from."""

    file: str
    index: int
    case_id: str
    suite: str
    kernel: str
    dtype: str
    params: dict[str, Any]
    median_s: float | None
    p10_s: float | None
    p90_s: float | None
    reps: int | None
    error: str | None
    extra: dict[str, Any]

    @property
    def ok(self) -> bool:
        """True when the case ran and has a timing."""
        return self.median_s is not None


@dataclass(frozen=True)
class MeasurementFile:
    """One checked measurement file: its path, SHA-256, environment, arguments and records."""

    path: str
    sha256: str
    env: dict[str, Any]
    args: dict[str, Any]
    records: tuple[Record, ...]

    @property
    def failed(self) -> int:
        """Number of failed cases (``error`` set) in the file."""
        return sum(1 for r in self.records if not r.ok)


@dataclass(frozen=True)
class MeasurementSet:
    """Several files from the same device, with their records concatenated in file order."""

    files: tuple[MeasurementFile, ...]
    records: tuple[Record, ...] = field(default=())

    @property
    def env(self) -> dict[str, Any]:
        """The environment of the first file (all files share device name and kind)."""
        return self.files[0].env

    @property
    def device_name(self) -> str:
        """The measured device's name as the bench reported it."""
        return str(self.env["device_name"])

    @property
    def device_kind(self) -> str:
        """``cpu`` or ``cuda``."""
        return str(self.env["device_kind"])

    def successful(self, suite: str | None = None) -> list[Record]:
        """Successful records, optionally of one suite."""
        return [r for r in self.records if r.ok and (suite is None or r.suite == suite)]

    def failed(self, suite: str | None = None) -> list[Record]:
        """Failed records (skipped by fits), optionally of one suite."""
        return [r for r in self.records if not r.ok and (suite is None or r.suite == suite)]


def _positive_number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            and value > 0)


def _is_int(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and math.isfinite(value) and value.is_integer()


def _check_params(params: Any, spec: dict[str, str], file: str, where: str,
                  optional: dict[str, tuple[int, int] | None] | None = None) -> dict[str, Any]:
    if not isinstance(params, dict):
        raise InputError("must be a mapping", file=file, field=where)
    out = dict(params)
    for key, bounds in (optional or {}).items():
        if key not in params:
            continue
        value = params[key]
        if bounds is None:
            if not isinstance(value, bool):
                raise InputError(f"must be true or false, got {value!r}", file=file, field=f"{where}.{key}")
        elif not _is_int(value) or not bounds[0] <= int(value) <= bounds[1]:
            raise InputError(f"must be an integer from {bounds[0]} to {bounds[1]}, got {value!r}", file=file,
                             field=f"{where}.{key}")
    for key, kind in spec.items():
        if key not in params:
            raise InputError("required parameter is missing", file=file, field=f"{where}.{key}")
        value = params[key]
        if kind == _INT:
            if not _is_int(value):
                raise InputError(f"must be an integer, got {value!r}", file=file, field=f"{where}.{key}")
            out[key] = int(value)
            if key in _POSITIVE and out[key] <= 0:
                raise InputError(f"must be positive, got {value!r}", file=file, field=f"{where}.{key}")
        elif kind == _NUM:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or value < 0:
                raise InputError(f"must be a finite non-negative number, got {value!r}", file=file,
                                 field=f"{where}.{key}")
        elif not isinstance(value, str) or not value:
            raise InputError(f"must be non-empty text, got {value!r}", file=file, field=f"{where}.{key}")
    if "distribution" in spec and params["distribution"] not in ("uniform", "zipf"):
        raise InputError("must be uniform or zipf", file=file, field=f"{where}.distribution")
    return out


def _check_timing(timing: Any, file: str, where: str) -> tuple[float, float, float, int]:
    if not isinstance(timing, dict):
        raise InputError("must be a mapping with median_s, p10_s, p90_s, reps (or null with an error)",
                         file=file, field=where)
    for key in ("median_s", "p10_s", "p90_s"):
        if key not in timing:
            raise InputError("required field is missing", file=file, field=f"{where}.{key}")
        if not _positive_number(timing[key]):
            raise InputError(f"must be a positive finite number of seconds, got {timing[key]!r}", file=file,
                             field=f"{where}.{key}")
    reps = timing.get("reps")
    if not _is_int(reps) or reps < 1:
        raise InputError(f"must be a positive integer, got {reps!r}", file=file, field=f"{where}.reps")
    median, p10, p90 = float(timing["median_s"]), float(timing["p10_s"]), float(timing["p90_s"])
    tolerance = 1e-9 + 1e-6 * median
    if p10 > median + tolerance or median > p90 + tolerance:
        raise InputError(f"percentiles out of order: p10 {p10!r}, median {median!r}, p90 {p90!r}", file=file,
                         field=where)
    return median, p10, p90, int(reps)


def check_record(raw: Any, file: str, index: int) -> Record:
    """Check one raw record mapping and return it as a :class:`Record` (raises ``InputError``)."""
    where = f"records[{index}]"
    if not isinstance(raw, dict):
        raise InputError("must be a mapping", file=file, field=where)
    for key in _RECORD_KEYS:
        if key not in raw:
            raise InputError("required field is missing", file=file, field=f"{where}.{key}")
    for key in raw:
        if key not in (*_RECORD_KEYS, "extra"):
            raise InputError(f"unknown field (expected {', '.join((*_RECORD_KEYS, 'extra'))})", file=file,
                             field=f"{where}.{key}")
    for key in ("case_id", "suite", "kernel", "dtype"):
        if not isinstance(raw[key], str) or not raw[key]:
            raise InputError(f"must be non-empty text, got {raw[key]!r}", file=file, field=f"{where}.{key}")
    suite = raw["suite"]
    if suite not in KERNELS:
        raise InputError(f"unknown suite {suite!r} (known: {', '.join(SUITES)})", file=file,
                         field=f"{where}.suite")
    kernel = raw["kernel"]
    if kernel not in KERNELS[suite]:
        raise InputError(f"unknown {suite} kernel {kernel!r} (known: {', '.join(KERNELS[suite])})", file=file,
                         field=f"{where}.kernel")
    if raw["dtype"] not in DTYPES:
        raise InputError(f"unknown dtype {raw['dtype']!r} (known: {', '.join(DTYPES)})", file=file,
                         field=f"{where}.dtype")
    params = _check_params(raw["params"], KERNELS[suite][kernel], file, f"{where}.params",
                           _OPTIONAL.get((suite, kernel), {}))
    error = raw["error"]
    if error is not None and not isinstance(error, str):
        raise InputError("must be text or null", file=file, field=f"{where}.error")
    extra = raw.get("extra", {})
    if extra is None:
        extra = {}
    if not isinstance(extra, dict):
        raise InputError("must be a mapping", file=file, field=f"{where}.extra")
    if error is None:
        if raw["timing"] is None:
            raise InputError("timing is null but no error is given", file=file, field=f"{where}.timing")
        median, p10, p90, reps = _check_timing(raw["timing"], file, f"{where}.timing")
    else:
        if raw["timing"] is not None:
            raise InputError("a failed case (error set) must have timing null", file=file,
                             field=f"{where}.timing")
        median = p10 = p90 = None
        reps = None
    for key in ("unique_rows", "bytes_per_elem", "rotating_batches"):
        if key in extra and extra[key] is not None and not _positive_number(extra[key]):
            raise InputError(f"must be a positive number, got {extra[key]!r}", file=file,
                             field=f"{where}.extra.{key}")
    return Record(file, index, raw["case_id"], suite, kernel, raw["dtype"], params, median, p10, p90, reps,
                  error, dict(extra))


def _check_env(env: Any, file: str) -> dict[str, Any]:
    if not isinstance(env, dict):
        raise InputError("must be a mapping", file=file, field="env")
    name = env.get("device_name")
    if not isinstance(name, str) or not name.strip():
        raise InputError("required text field is missing", file=file, field="env.device_name")
    if env.get("device_kind") not in DEVICE_KINDS:
        raise InputError(f"must be one of {', '.join(DEVICE_KINDS)}, got {env.get('device_kind')!r}",
                         file=file, field="env.device_kind")
    for key in ("compute_units", "threads", "memory_bytes", "cache_bytes"):
        value = env.get(key)
        if value is not None and not _positive_number(value):
            raise InputError(f"must be a positive number or null, got {value!r}", file=file,
                             field=f"env.{key}")
    return dict(env)


def load_measurement_file(path: str | Path) -> MeasurementFile:
    """Load and check one measurement file; a corrupt, empty or malformed file raises ``InputError``."""
    label = str(path)
    try:
        raw_bytes = Path(path).read_bytes()
    except FileNotFoundError:
        raise InputError("file not found", file=label) from None
    except IsADirectoryError:
        raise InputError("is a directory, expected a measurement JSON file", file=label) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", file=label) from None
    if not raw_bytes.strip():
        raise InputError("empty file (no measurements)", file=label)
    data = load_json_file(path)
    if not isinstance(data, dict):
        raise InputError("expected a JSON object with schema_version, env, args and records", file=label)
    for key in data:
        if key not in _FILE_KEYS:
            raise InputError(f"unknown field (expected {', '.join(_FILE_KEYS)})", file=label, field=str(key))
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise InputError(f"unsupported schema_version {version!r} (expected {SCHEMA_VERSION})", file=label,
                         field="schema_version")
    env = _check_env(data.get("env"), label)
    args = data.get("args", {})
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise InputError("must be a mapping", file=label, field="args")
    raw_records = data.get("records")
    if not isinstance(raw_records, list):
        raise InputError("must be a list of records", file=label, field="records")
    if not raw_records:
        raise InputError("no records (empty measurement file)", file=label, field="records")
    records = tuple(check_record(raw, label, i) for i, raw in enumerate(raw_records))
    return MeasurementFile(label, hashlib.sha256(raw_bytes).hexdigest(), env, dict(args), records)


def load_measurements(paths: list[str | Path]) -> MeasurementSet:
    """Load several files measured on one device; a file from another device raises ``InputError``."""
    if not paths:
        raise InputError("no measurement files given", file="MEASUREMENTS")
    files = [load_measurement_file(p) for p in paths]
    first = files[0]
    seen: dict[str, str] = {}
    for f in files:  # the same measurements twice would count every case as its own repeat
        if f.sha256 in seen:
            raise InputError(f"holds the same measurements as {seen[f.sha256]} (sha256 {f.sha256[:12]}); "
                             "give each file once", file=f.path)
        seen[f.sha256] = f.path
    for other in files[1:]:
        for key in ("device_kind", "device_name"):
            if other.env[key] != first.env[key]:
                raise InputError(f"measured on {other.env[key]!r} but {first.path} was measured on "
                                 f"{first.env[key]!r}; calibrate one device at a time", file=other.path,
                                 field=f"env.{key}")
    records = tuple(r for f in files for r in f.records)
    if not any(r.ok for r in records):
        raise InputError("no successful records to fit (every case failed)", file=first.path,
                         field="records")
    return MeasurementSet(tuple(files), records)
