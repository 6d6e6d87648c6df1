"""``options.csv``: one row per option, every scalar figure of the what-if plus the step-time breakdown.

Columns are fixed (see :data:`COLUMNS`, then ``breakdown_<phase>_s`` per phase in the simulator's order);
rows follow the ranking (feasible first, best first). Floats are written with ``repr`` (shortest exact
round trip), so the same inputs give the same bytes.
"""

from __future__ import annotations

import csv
import io
from typing import Any

#: Scalar columns, in order (units in the names; ``ne*`` is the law's metric).
COLUMNS = (
    "rank",
    "id",
    "hardware",
    "model_scale",
    "devices",
    "batch_size",
    "samples",
    "epochs",
    "samples_seen",
    "params",
    "step_time_s",
    "step_time_p99_s",
    "samples_per_s",
    "time_to_train_s",
    "time_to_train_days",
    "price_usd_per_device_hour",
    "cost_usd",
    "power_w",
    "energy_kwh",
    "co2_kg",
    "peak_memory_bytes",
    "memory_capacity_bytes",
    "host_memory_bytes",
    "fits_in_memory",
    "ne",
    "ne_lo80",
    "ne_hi80",
    "ne_lo95",
    "ne_hi95",
    "samples_to_target",
    "time_to_target_s",
    "cost_to_target_usd",
    "quality_per_dollar",
    "feasible",
    "pareto",
    "binding",
    "bottleneck",
    "violations",
    "sharding",
    "hardware_origin",
)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return ";".join(str(v) for v in value)
    return str(value)


def render_csv(result: Any) -> str:
    """Every option as CSV text (header row first, ``\\n`` line endings)."""
    phases: list[str] = []
    for o in result.options:
        for p in o.breakdown_s:
            if p not in phases:
                phases.append(p)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([*COLUMNS, *(f"breakdown_{p}_s" for p in phases)])
    for o in result.options:
        writer.writerow(
            [_cell(getattr(o, c)) for c in COLUMNS]
            + [_cell(float(o.breakdown_s.get(p, 0.0))) for p in phases]
        )
    return buf.getvalue()
