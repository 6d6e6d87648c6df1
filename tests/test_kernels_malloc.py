"""The host allocator is pinned to its long-run thresholds before CPU timings (glibc only)."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_pin_steady_state_sets_glibc_thresholds_once():
    code = (
        "from kernels.malloc import pin_steady_state, pinned_settings\n"
        "assert pinned_settings() is None\n"
        "a = pin_steady_state()\n"
        "b = pin_steady_state()\n"
        "print(a == b == pinned_settings(), a)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    if "None" in out:
        pytest.skip("the C library here is not glibc")
    assert out.startswith("True")
    assert "'mmap_threshold_bytes': 33554432" in out and "'trim_threshold_bytes': 67108864" in out


def test_pinned_thresholds_match_the_cost_models_fresh_mapping_size():
    from kernels.malloc import MMAP_THRESHOLD_BYTES
    from planner.cost.embedding import FRESH_MAPPING_BYTES

    assert MMAP_THRESHOLD_BYTES == FRESH_MAPPING_BYTES
