"""The measurement environment: cache size and the busy-host warning (no torch needed)."""

from __future__ import annotations

from kernels.env import busy_warning, last_level_cache_bytes


def test_busy_warning_only_when_threads_and_load_exceed_the_cpus():
    idle = {"device_kind": "cpu", "load_average": 0.2, "logical_cpus": 2, "threads": 2}
    assert busy_warning(idle) is None
    busy = dict(idle, load_average=3.9)
    text = busy_warning(busy)
    assert text is not None and "3.9" in text and "2 CPUs" in text
    # one thread on a 16-CPU host with a load of 4 still has cores to itself
    assert busy_warning({"device_kind": "cpu", "load_average": 4.0, "logical_cpus": 16, "threads": 1}) is None
    # GPUs time on the device; an old file without a load average gives no warning
    assert busy_warning(dict(busy, device_kind="cuda")) is None
    assert busy_warning({"device_kind": "cpu", "logical_cpus": 2, "threads": 2}) is None


def test_last_level_cache_is_a_plausible_size_or_unknown():
    size = last_level_cache_bytes()
    assert size is None or 64 * 1024 <= size <= 4 * 1024**3
