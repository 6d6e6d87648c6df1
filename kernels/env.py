"""The environment block of a measurement file: device, memory, clocks, software versions, host, commit."""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import platform
import socket
import subprocess
from pathlib import Path
from typing import Any

from kernels.malloc import pinned_settings


def _run(cmd: list[str], cwd: str | None = None) -> str | None:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10, cwd=cwd, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else None


def cpu_model() -> str:
    """The CPU model name from ``/proc/cpuinfo`` (or ``platform.processor()``)."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def load_average() -> float | None:
    """The host's one-minute load average (runnable processes), or None where the OS does not give it."""
    try:
        return round(float(os.getloadavg()[0]), 2)
    except (OSError, AttributeError):
        return None


def uptime_s() -> float | None:
    """Seconds since the machine booted (``/proc/uptime``), or None where the OS does not say."""
    try:
        with open("/proc/uptime") as handle:
            return round(float(handle.read().split()[0]), 1)
    except (OSError, ValueError, IndexError):
        return None


#: A CPU measurement that begins sooner than this after the machine booted gets a warning.
FRESH_BOOT_S = 600.0


def boot_warning(env: dict[str, Any]) -> str | None:
    """A warning when a CPU measurement began within :data:`FRESH_BOOT_S` of the machine's boot, else None.

    A virtual machine's first minutes run slower than its steady state: its host backs the guest's
    memory only as it is first written (and takes freed memory back through the balloon's free-page
    reporting), so fresh pages fault at a fraction of the usual rate. This project's 2-core EPYC VM
    wrote fresh memory at 0.12-0.22 M pages/s against 0.9-1.0 M pages/s for pages just freed and taken
    again; a quick bench begun two minutes after boot fitted ``page_fault_s`` at 5.2 us per page where
    one five minutes later fitted 1.3 us and the shipped benches 0.9-2.2 us, and its 64 MiB Adagrad
    step (a fresh 64 MiB temporary per call) took 110 ms against 29-44 ms in seven other benches.
    ``uptime_s`` comes from the same ``env`` (files written before it was recorded give no warning).
    """
    up = env.get("uptime_s")
    if env.get("device_kind") != "cpu" or not isinstance(up, (int, float)) or up >= FRESH_BOOT_S:
        return None
    ago = f"{up:.0f} s" if up < 60 else f"{up / 60:.0f} min"
    return (f"the machine had booted {ago} before the measurement began: a VM's first minutes "
            "run slower (memory its host has not yet backed faults several times slower); measure again "
            f"after {FRESH_BOOT_S / 60:.0f} minutes")


def env_warnings(env: dict[str, Any]) -> list[str]:
    """Every warning about the conditions a measurement began in (:func:`busy_warning`,
    :func:`boot_warning`), in that order."""
    return [w for w in (busy_warning(env), boot_warning(env)) if w]


def busy_warning(env: dict[str, Any]) -> str | None:
    """A warning when other work was running as a CPU measurement began, else None.

    Multi-threaded CPU kernels synchronise their threads at every parallel region, so one thread that
    another process keeps off its core stalls the rest: on a busy host such timings can be many times
    too slow (seen here: a 2-thread sparse update 20x slower with the two cores shared). ``threads`` and
    ``logical_cpus`` come from the same ``env``.
    """
    load, cpus = env.get("load_average"), env.get("logical_cpus")
    if env.get("device_kind") != "cpu" or not isinstance(load, float) or not isinstance(cpus, int):
        return None
    threads = int(env.get("threads") or cpus)
    if load < cpus - threads + 1.0:  # fewer than one process more than the free cores, on average
        return None
    return (f"the host was busy (load average {load:.1f} on {cpus} CPUs) as the measurement began: "
            f"{threads}-thread CPU timings are unreliable while other work runs; measure on an idle machine")


def last_level_cache_bytes() -> int | None:
    """Size of the largest cache level of CPU 0 in bytes (from sysfs), or None where it is not exposed."""
    base = "/sys/devices/system/cpu/cpu0/cache"
    best = None
    try:
        entries = sorted(os.listdir(base))
    except OSError:
        return None
    for entry in entries:
        if not entry.startswith("index"):
            continue
        try:
            with open(os.path.join(base, entry, "size")) as handle:
                text = handle.read().strip().upper()
            with open(os.path.join(base, entry, "type")) as handle:
                kind = handle.read().strip()
        except OSError:
            continue
        if kind == "Instruction":
            continue
        scale = {"K": 1024, "M": 1024**2, "G": 1024**3}.get(text[-1:], 1)
        digits = text[:-1] if text[-1:] in "KMG" else text
        if digits.isdigit():
            size = int(digits) * scale
            best = size if best is None else max(best, size)
    return best


def host_memory_bytes() -> int | None:
    """Total host memory in bytes (``MemTotal``)."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return None


def cpu_clocks() -> dict[str, Any]:
    """CPU clocks in Hz: the maximum from cpufreq when exposed, and the current ``cpu MHz`` reading."""
    clocks: dict[str, Any] = {}
    max_khz = Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
    with contextlib.suppress(OSError, ValueError):
        clocks["cpu_max_hz"] = int(max_khz.read_text().strip()) * 1000
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("cpu MHz"):
                    clocks["cpu_current_hz"] = float(line.split(":", 1)[1]) * 1e6
                    break
    except (OSError, ValueError):
        pass
    return clocks


def git_commit(start: str | None = None) -> str | None:
    """The git commit of the working tree (with ``-dirty`` when it has uncommitted changes), or None."""
    folder = start or str(Path(__file__).resolve().parent)
    commit = _run(["git", "rev-parse", "HEAD"], cwd=folder)
    if commit is None:
        return None
    status = _run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=folder)
    return f"{commit}-dirty" if status else commit


def collect_env(device: str, threads: int | None = None) -> dict[str, Any]:
    """The ``env`` block for a run on ``device`` (``"cpu"`` or ``"cuda:N"``); needs torch."""
    import torch

    env: dict[str, Any] = {
        "device_kind": "cuda" if device.startswith("cuda") else "cpu",
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cpu_model": cpu_model(),
        "threads": int(threads if threads is not None else torch.get_num_threads()),
        "hostname": socket.gethostname(),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "logical_cpus": os.cpu_count(),
        "load_average": load_average(),
        "uptime_s": uptime_s(),
        "malloc": pinned_settings(),
    }
    if device.startswith("cuda"):
        props = torch.cuda.get_device_properties(torch.device(device))
        index = torch.device(device).index or 0
        env.update(
            {
                "device_name": props.name,
                "compute_units": int(props.multi_processor_count),
                "memory_bytes": int(props.total_memory),
                "compute_capability": f"{props.major}.{props.minor}",
                "cache_bytes": int(getattr(props, "L2_cache_size", 0) or 0) or None,
                "device_count": torch.cuda.device_count(),
            }
        )
        smi = _run(
            [
                "nvidia-smi",
                f"--id={index}",
                "--query-gpu=driver_version,clocks.max.sm,clocks.max.mem,clocks.sm,clocks.mem",
                "--format=csv,noheader,nounits",
            ]
        )
        clocks: dict[str, Any] = {}
        driver = None
        if smi:
            parts = [p.strip() for p in smi.splitlines()[0].split(",")]
            driver = parts[0] if parts else None
            keys = ("sm_max_hz", "mem_max_hz", "sm_current_hz", "mem_current_hz")
            for key, value in zip(keys, parts[1:], strict=False):
                with contextlib.suppress(ValueError):
                    clocks[key] = float(value) * 1e6
        env["clocks"] = clocks
        env["driver"] = driver
    else:
        env.update(
            {
                "device_name": cpu_model(),
                "compute_units": int(threads if threads is not None else torch.get_num_threads()),
                "memory_bytes": host_memory_bytes(),
                "cache_bytes": last_level_cache_bytes(),
                "clocks": cpu_clocks(),
                "driver": None,
            }
        )
    return env
