"""The host-speed probe: positive timings, and ratios between probes."""

from __future__ import annotations

import math

import pytest

from kernels.probe import speed_ratio


def test_speed_ratio_of_probe_indices():
    fast, slow = {"index_s": 1e-4}, {"index_s": 1.5e-4}
    assert speed_ratio(slow, fast) == pytest.approx(1.5)
    assert speed_ratio([slow, slow], [fast, {"index_s": 4e-4}]) == pytest.approx(1.5e-4 / math.sqrt(4e-8))
    assert speed_ratio(None, fast) is None and speed_ratio(slow, [{"index_s": -1}]) is None


def test_speed_probe_times_three_kernels():
    pytest.importorskip("torch")
    from kernels.probe import speed_probe

    probe = speed_probe("cpu")
    assert set(probe) == {"copy_s", "gemm_s", "gather_s", "index_s"}
    assert all(0 < v < 1 for v in probe.values())
    assert min(probe["copy_s"], probe["gemm_s"], probe["gather_s"]) <= probe["index_s"]
