"""Pin the host allocator to its long-run state, so CPU timings do not depend on what ran before.

glibc's ``malloc`` serves a large request from a fresh ``mmap`` until a chunk that size has been freed;
each free raises its mmap threshold (up to 32 MiB on 64-bit) and the heap's trim threshold to twice that.
A fresh mapping pays a page fault per 4 KiB page on first touch, so early in a process every large tensor
is slow to write, later ones are recycled: one case measured after another, or a training step early in a
run, can differ by tens of percent for that reason alone (seen here: a DLRM step 76 ms with 9,000 faults,
then 55 ms with none, same process). :func:`pin_steady_state` sets the thresholds a long training run
settles at: requests below 32 MiB come from the heap, larger ones are mapped afresh each time, which is
what the CPU cost models assume (:data:`planner.cost.params.FRESH_MAPPING_BYTES`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
from typing import Any

#: glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit systems: the dynamic threshold never rises above it.
MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024
#: glibc keeps the trim threshold at twice the dynamic mmap threshold.
TRIM_THRESHOLD_BYTES = 2 * MMAP_THRESHOLD_BYTES
#: mallopt parameter numbers (glibc malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

_APPLIED: dict[str, Any] | None = None


def pin_steady_state() -> dict[str, Any] | None:
    """Fix glibc's mmap and trim thresholds at their long-run values; returns what was set, or None.

    Does nothing (returns None) where the C library is not glibc. Safe to call more than once.
    """
    global _APPLIED
    if _APPLIED is not None:
        return dict(_APPLIED)
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
        version = libc.gnu_get_libc_version
    except (OSError, AttributeError):
        return None
    version.restype = ctypes.c_char_p
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    ok = mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
    ok = mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1 and ok
    if not ok:
        return None
    _APPLIED = {"allocator": f"glibc {version().decode()}", "mmap_threshold_bytes": MMAP_THRESHOLD_BYTES,
                "trim_threshold_bytes": TRIM_THRESHOLD_BYTES}
    return dict(_APPLIED)


def pinned_settings() -> dict[str, Any] | None:
    """What :func:`pin_steady_state` set in this process, or None when it has not run (or could not)."""
    return None if _APPLIED is None else dict(_APPLIED)
