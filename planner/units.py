"""Unit constants and human-readable formatting; SI inside the planner, converted once on load."""

from __future__ import annotations

import math

KB = 1e3
MB = 1e6
GB = 1e9
TB = 1e12
KIB = 1024.0
MIB = 1024.0**2
GIB = 1024.0**3
SECONDS_PER_HOUR = 3600.0
SECONDS_PER_DAY = 86400.0
JOULES_PER_KWH = 3.6e6

#: Bytes per element of each training precision's storage type.
DTYPE_BYTES = {"fp32": 4, "tf32": 4, "bf16": 2, "fp16": 2, "fp8": 1}


def _scaled(value: float, steps: list[tuple[float, str]], unit: str, digits: int = 3) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    for factor, prefix in steps:
        if abs(value) >= factor:
            return f"{value / factor:.{digits}g} {prefix}{unit}"
    return f"{value:.{digits}g} {unit}"


_DECIMAL = [(1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")]


def fmt_bytes(value: float) -> str:
    """Format a byte count with decimal prefixes (GB = 1e9 bytes, as datasheets do)."""
    return _scaled(value, _DECIMAL, "B")


def fmt_rate(value: float, unit: str = "B/s") -> str:
    """Format a rate (bytes/s or FLOP/s) with decimal prefixes."""
    return _scaled(value, _DECIMAL, unit)


def fmt_count(value: float) -> str:
    """Format a plain count with decimal prefixes (k, M, G)."""
    return _scaled(value, _DECIMAL, "").strip()


def fmt_seconds(value: float) -> str:
    """Format a duration in seconds with the most readable unit (us, ms, s, h, d)."""
    if value is None or not math.isfinite(value):
        return "n/a"
    if value >= 2 * SECONDS_PER_DAY:
        return f"{value / SECONDS_PER_DAY:.3g} d"
    if value >= 2 * SECONDS_PER_HOUR:
        return f"{value / SECONDS_PER_HOUR:.3g} h"
    if value >= 1:
        return f"{value:.3g} s"
    if value >= 1e-3:
        return f"{value * 1e3:.3g} ms"
    return f"{value * 1e6:.3g} us"
