"""Simulation time of ``recplan simulate`` on dlrm-dcnv2-multihot for 8, 64, 512 and 4096 devices.

Reports, per device count, the whole command's wall time (a fresh ``recplan`` process: start-up included)
and the in-process time of :func:`planner.sim.engine.simulate` (after a warm-up call), for one step and for
the default 20 steps. Run: ``python benchmarks/bench_simulate.py [--profile h100-sxm-80gb]``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

WORKLOAD = "dlrm-dcnv2-multihot"
DEVICES = (8, 64, 512, 4096)


def command_seconds(devices: int, profile: str, steps: int, reps: int = 3) -> float:
    """Median wall time of the whole ``recplan simulate`` command, in seconds."""
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "planner.cli.main", "simulate", WORKLOAD, "--hardware", profile,
                        "--devices", str(devices), "--steps", str(steps), "--json"],
                       check=False, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def in_process_seconds(devices: int, profile: str, steps: int, reps: int = 5) -> tuple[float, float]:
    """Median in-process time of ``simulate`` (s) and the simulated step time (s)."""
    from planner.hardware import load_profile
    from planner.sim.engine import simulate
    from planner.workload import load_workload

    w = load_workload(WORKLOAD)
    p = load_profile(profile)
    result = simulate(w, p, devices, steps=steps)
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        result = simulate(w, p, devices, steps=steps)
        times.append(time.perf_counter() - start)
    return statistics.median(times), result.step_time_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="h100-sxm-80gb")
    args = parser.parse_args()
    print(f"{WORKLOAD} on {args.profile}")
    print(f"{'devices':>8} {'command 1 step':>15} {'command 20 steps':>17} {'in-process 1 step':>18} "
          f"{'in-process 20 steps':>20} {'simulated step':>15}")
    for n in DEVICES:
        cmd1 = command_seconds(n, args.profile, 1)
        cmd20 = command_seconds(n, args.profile, 20)
        in1, _ = in_process_seconds(n, args.profile, 1)
        in20, step = in_process_seconds(n, args.profile, 20)
        print(f"{n:>8} {cmd1:>14.3f}s {cmd20:>16.3f}s {in1 * 1e3:>16.1f}ms {in20 * 1e3:>18.1f}ms "
              f"{step * 1e3:>13.3f}ms")


if __name__ == "__main__":
    main()
