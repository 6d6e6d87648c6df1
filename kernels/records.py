"""The measurement file written by ``recplan bench`` and read by ``recplan calibrate``: schema and checks.

File (schema version 1)::

    {"schema_version": 1, "env": {...}, "args": {...}, "records": [record, ...],
     "progress": {...}}          # optional: planned/finished case counts, whether the run completed

Record::

    {"case_id": str, "suite": str, "kernel": str, "dtype": "fp32"|"tf32"|"bf16"|"fp16",
     "params": {...}, "timing": {"median_s", "p10_s", "p90_s", "reps"} | null, "error": str | null,
     "extra": {...}}

``timing`` is null exactly when ``error`` is set (a failed case: out of memory, unsupported dtype).
Times are seconds per call; sizes are bytes. This module imports nothing from torch or planner.
"""

from __future__ import annotations

import json
import math
from typing import Any

SCHEMA_VERSION = 1
DTYPES = ("fp32", "tf32", "bf16", "fp16")
SUITES = ("embedding", "gemm", "interaction", "memory", "collective", "dlrm")
OPTIMIZERS = ("none", "sgd", "adagrad", "rowwise_adagrad", "adam")

#: kernel -> required params (name -> accepted Python types) per suite.
_INT = (int,)
_NUM = (int, float)
_STR = (str,)
_BOOL = (bool,)
KERNELS: dict[str, dict[str, dict[str, tuple[type, ...]]]] = {
    "embedding": {
        k: {
            "rows": _INT,
            "dim": _INT,
            "pooling": _INT,
            "batch": _INT,
            "distribution": _STR,
            "zipf_exponent": _NUM,
            "optimizer": _STR,
        }
        for k in ("embedding_bag_forward", "embedding_bag_backward_update")
    },
    "gemm": {
        k: {"batch": _INT, "in_features": _INT, "out_features": _INT}
        for k in ("linear_forward", "linear_backward")
    },
    "interaction": {
        "dot_interaction_forward": {"batch": _INT, "features": _INT, "dim": _INT},
        "dot_interaction_backward": {"batch": _INT, "features": _INT, "dim": _INT},
        "dcn_cross_forward": {"batch": _INT, "width": _INT, "low_rank": _INT},
        "dcn_cross_backward": {"batch": _INT, "width": _INT, "low_rank": _INT},
    },
    "memory": {
        **{
            k: {"bytes": _INT, "bytes_moved": _INT}
            for k in ("copy", "h2d", "d2h", "elementwise", "optimizer_step")
        },
        "launch_overhead": {"ops": _INT},
    },
    "collective": {
        k: {"bytes": _INT, "world_size": _INT, "ranks_per_node": _INT, "backend": _STR}
        for k in ("all_to_all", "all_to_all_unequal", "all_reduce", "all_gather", "reduce_scatter")
    },
    "dlrm": {
        "dlrm_train_step": {
            "workload": _STR,
            "batch": _INT,
            "precision": _STR,
            "optimizer": _STR,
            "devices": _INT,
            "workload_sha256": _STR,
        },
    },
}
#: Op kinds of the launch-overhead chain that records without a ``kinds`` parameter measured (the first
#: six of ``kernels.memcpy.CHAIN_KINDS``).
LEGACY_CHAIN_KINDS = 6
#: Most tables an embedding case runs in one backward and one optimizer step (``params.tables``).
MAX_CASE_TABLES = 64
#: Most other data an evicted embedding case may rewrite between a forward and its update
#: (``params.evict_bytes``): 1 TiB, far beyond any cache.
MAX_EVICT_BYTES = 1 << 40
TIMING_KEYS = ("median_s", "p10_s", "p90_s", "reps")
ENV_KEYS = (
    "device_name",
    "device_kind",
    "compute_units",
    "memory_bytes",
    "clocks",
    "driver",
    "cuda",
    "torch",
    "cpu_model",
    "threads",
    "hostname",
    "date",
    "git_commit",
    "python",
    "platform",
)


class RecordSchemaError(ValueError):
    """A measurement file or record does not follow the schema; ``field`` is the path to the problem."""

    def __init__(self, problem: str, field: str | None = None) -> None:
        self.problem = problem
        self.field = field
        super().__init__(f"{field}: {problem}" if field else problem)


def _canonical(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        return repr(value)
    return str(value)


def case_id(suite: str, kernel: str, params: dict[str, Any], dtype: str) -> str:
    """Stable id of a case: ``suite/kernel/dtype/k=v,...`` with the params in sorted key order.

    Floats that are whole numbers are written as integers, so ``1.0`` and ``1`` give the same id.
    """
    body = ",".join(f"{k}={_canonical(params[k])}" for k in sorted(params))
    return f"{suite}/{kernel}/{dtype}/{body}"


def make_record(
    suite: str,
    kernel: str,
    dtype: str,
    params: dict[str, Any],
    timing: dict[str, Any] | None,
    error: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Build a record (with its ``case_id``) and validate it."""
    record = {
        "case_id": case_id(suite, kernel, params, dtype),
        "suite": suite,
        "kernel": kernel,
        "dtype": dtype,
        "params": dict(params),
        "timing": None if error is not None else (dict(timing) if timing is not None else None),
        "error": error,
        "extra": dict(extra or {}),
    }
    validate_record(record)
    return record


def _finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def validate_record(record: Any, where: str = "record") -> None:
    """Raise :class:`RecordSchemaError` naming the field when ``record`` breaks the schema."""
    if not isinstance(record, dict):
        raise RecordSchemaError("expected an object", where)
    required = ("case_id", "suite", "kernel", "dtype", "params", "timing", "error", "extra")
    for key in required:
        if key not in record:
            raise RecordSchemaError("required key is missing", f"{where}.{key}")
    unknown = sorted(set(record) - set(required))
    if unknown:
        raise RecordSchemaError(f"unknown keys {unknown}", where)
    suite = record["suite"]
    if suite not in SUITES:
        raise RecordSchemaError(
            f"unknown suite {suite!r} (expected one of {', '.join(SUITES)})", f"{where}.suite"
        )
    kernel = record["kernel"]
    if kernel not in KERNELS[suite]:
        raise RecordSchemaError(f"unknown kernel {kernel!r} for suite {suite}", f"{where}.kernel")
    if record["dtype"] not in DTYPES:
        raise RecordSchemaError(
            f"unknown dtype {record['dtype']!r} (expected one of {', '.join(DTYPES)})", f"{where}.dtype"
        )
    params = record["params"]
    if not isinstance(params, dict):
        raise RecordSchemaError("expected an object", f"{where}.params")
    for name, types in KERNELS[suite][kernel].items():
        if name not in params:
            raise RecordSchemaError("required parameter is missing", f"{where}.params.{name}")
        value = params[name]
        if isinstance(value, bool) or not isinstance(value, types):
            raise RecordSchemaError(
                f"expected {'/'.join(t.__name__ for t in types)}, got {value!r}", f"{where}.params.{name}"
            )
        if types in (_INT, _NUM) and (not _finite_number(value) or value < 0):
            raise RecordSchemaError(
                f"expected a non-negative finite number, got {value!r}", f"{where}.params.{name}"
            )
    if kernel == "launch_overhead" and "kinds" in params:
        kinds = params["kinds"]
        if isinstance(kinds, bool) or not isinstance(kinds, int) or kinds < 1:
            raise RecordSchemaError(f"expected a positive integer, got {kinds!r}", f"{where}.params.kinds")
    if kernel == "launch_overhead" and "autograd" in params and not isinstance(params["autograd"], bool):
        raise RecordSchemaError("expected true or false", f"{where}.params.autograd")
    if suite == "embedding" and "tables" in params:
        tables = params["tables"]
        if isinstance(tables, bool) or not isinstance(tables, int) or not 1 <= tables <= MAX_CASE_TABLES:
            raise RecordSchemaError(f"expected an integer from 1 to {MAX_CASE_TABLES}, got {tables!r}",
                                    f"{where}.params.tables")
    if suite == "embedding" and "evict_bytes" in params:
        evict = params["evict_bytes"]
        if (kernel != "embedding_bag_backward_update" or isinstance(evict, bool) or not isinstance(evict, int)
                or not 1 <= evict <= MAX_EVICT_BYTES):
            raise RecordSchemaError(f"expected an integer from 1 to {MAX_EVICT_BYTES} on a backward+update "
                                    f"case, got {evict!r}", f"{where}.params.evict_bytes")
    if suite == "embedding" and params["distribution"] not in ("uniform", "zipf"):
        raise RecordSchemaError("expected uniform or zipf", f"{where}.params.distribution")
    if suite == "embedding" and params["optimizer"] not in OPTIMIZERS:
        raise RecordSchemaError(f"expected one of {', '.join(OPTIMIZERS)}", f"{where}.params.optimizer")
    if "pinned" in params and not isinstance(params["pinned"], bool):
        raise RecordSchemaError("expected true or false", f"{where}.params.pinned")
    if not isinstance(record["case_id"], str) or not record["case_id"]:
        raise RecordSchemaError("expected a non-empty string", f"{where}.case_id")
    expected_id = case_id(suite, kernel, params, record["dtype"])
    if record["case_id"] != expected_id:
        raise RecordSchemaError(
            f"does not match its suite, kernel, dtype and params (expected {expected_id!r})",
            f"{where}.case_id",
        )
    error = record["error"]
    timing = record["timing"]
    if error is not None and not isinstance(error, str):
        raise RecordSchemaError("expected a string or null", f"{where}.error")
    if error is not None and timing is not None:
        raise RecordSchemaError("a failed case has no timing (expected null)", f"{where}.timing")
    if error is None:
        if not isinstance(timing, dict):
            raise RecordSchemaError("expected an object (or an error for a failed case)", f"{where}.timing")
        for key in TIMING_KEYS:
            if key not in timing:
                raise RecordSchemaError("required key is missing", f"{where}.timing.{key}")
            if key != "reps" and (not _finite_number(timing[key]) or timing[key] <= 0):  # as calibrate reads
                raise RecordSchemaError(f"expected a positive finite number of seconds, got {timing[key]!r}",
                                        f"{where}.timing.{key}")
        if not isinstance(timing["reps"], int) or timing["reps"] < 1:
            raise RecordSchemaError("expected a positive integer", f"{where}.timing.reps")
        if not timing["p10_s"] <= timing["median_s"] <= timing["p90_s"]:
            raise RecordSchemaError("expected p10_s <= median_s <= p90_s", f"{where}.timing")
    if not isinstance(record["extra"], dict):
        raise RecordSchemaError("expected an object", f"{where}.extra")


def validate_document(doc: Any) -> None:
    """Raise :class:`RecordSchemaError` when a whole measurement file breaks the schema."""
    if not isinstance(doc, dict):
        raise RecordSchemaError("expected an object at the top level")
    if doc.get("schema_version") != SCHEMA_VERSION:
        raise RecordSchemaError(
            f"expected {SCHEMA_VERSION}, got {doc.get('schema_version')!r}", "schema_version"
        )
    for key in ("env", "args", "records"):
        if key not in doc:
            raise RecordSchemaError("required key is missing", key)
    unknown = sorted(set(doc) - {"schema_version", "env", "args", "records", "progress"})
    if unknown:
        raise RecordSchemaError(f"unknown keys {unknown}")
    if not isinstance(doc["env"], dict):
        raise RecordSchemaError("expected an object", "env")
    for key in ENV_KEYS:
        if key not in doc["env"]:
            raise RecordSchemaError("required key is missing", f"env.{key}")
    if doc["env"]["device_kind"] not in ("cpu", "cuda"):
        raise RecordSchemaError("expected cpu or cuda", "env.device_kind")
    if not isinstance(doc["args"], dict):
        raise RecordSchemaError("expected an object", "args")
    if not isinstance(doc["records"], list):
        raise RecordSchemaError("expected a list", "records")
    seen: set[str] = set()
    for i, record in enumerate(doc["records"]):
        validate_record(record, f"records[{i}]")
        if record["case_id"] in seen:
            raise RecordSchemaError(f"duplicate case_id {record['case_id']!r}", f"records[{i}].case_id")
        seen.add(record["case_id"])


def new_document(env: dict[str, Any], args: dict[str, Any]) -> dict[str, Any]:
    """An empty measurement file for ``env`` and ``args``."""
    return {"schema_version": SCHEMA_VERSION, "env": dict(env), "args": dict(args), "records": []}


def dumps(doc: dict[str, Any], memo: dict[int, tuple[dict[str, Any], str]] | None = None) -> str:
    """Serialise a measurement file deterministically: sorted keys, NaN refused, everything but the
    records indented by 2, each record on one line (the bench rewrites the whole file after every case;
    one line per record reads and diffs well and takes a tenth of the time to encode).

    ``memo`` (kept by a caller that writes the same growing document again and again) holds each record's
    line by the record object, so a record is encoded once, not once per write; a record must then be
    replaced, never changed in place, once written (the runner only appends and replaces records).
    """
    parts = []
    for key in sorted(doc):
        value = doc[key]
        if key == "records" and isinstance(value, list) and value:
            lines = ",\n    ".join(_record_line(r, memo) for r in value)
            parts.append(f'  "records": [\n    {lines}\n  ]')
        else:  # the member as json.dumps writes it inside an object indented by 2
            member = json.dumps({key: value}, indent=2, sort_keys=True, allow_nan=False)
            parts.append("  " + member[1:-1].strip())
    return "{\n" + ",\n".join(parts) + "\n}\n" if parts else "{}\n"


def _record_line(record: dict[str, Any], memo: dict[int, tuple[dict[str, Any], str]] | None) -> str:
    if memo is None:
        return json.dumps(record, sort_keys=True, allow_nan=False)
    hit = memo.get(id(record))
    if hit is not None and hit[0] is record:  # the memo keeps the record alive, so its id is not reused
        return hit[1]
    line = json.dumps(record, sort_keys=True, allow_nan=False)
    memo[id(record)] = (record, line)
    return line
