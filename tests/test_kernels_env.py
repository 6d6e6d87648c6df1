"""The measurement environment: cache size, the busy-host and fresh-boot warnings (no torch needed)."""

from __future__ import annotations

from kernels.env import (
    FRESH_BOOT_S,
    boot_warning,
    busy_warning,
    env_warnings,
    last_level_cache_bytes,
    uptime_s,
)


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


def test_boot_warning_only_for_cpu_measurements_begun_soon_after_boot():
    fresh = {"device_kind": "cpu", "uptime_s": 150.0}
    text = boot_warning(fresh)
    assert text is not None and "booted 2 min" in text and "10 minutes" in text
    assert boot_warning(dict(fresh, uptime_s=FRESH_BOOT_S)) is None
    assert boot_warning(dict(fresh, device_kind="cuda")) is None
    assert boot_warning({"device_kind": "cpu"}) is None  # files from before uptime was recorded


def test_env_warnings_lists_the_busy_and_boot_warnings_in_order():
    env = {"device_kind": "cpu", "load_average": 3.9, "logical_cpus": 2, "threads": 2, "uptime_s": 60.0}
    warnings = env_warnings(env)
    assert len(warnings) == 2 and "busy" in warnings[0] and "booted" in warnings[1]
    assert env_warnings(dict(env, load_average=0.1, uptime_s=7200.0)) == []


def test_uptime_is_positive_or_unknown():
    up = uptime_s()
    assert up is None or up > 0


def test_boot_warning_counts_seconds_under_a_minute():
    assert "booted 25 s before" in boot_warning({"device_kind": "cpu", "uptime_s": 25.0})
