"""Validation of the step model against the real reference DLRM: one configuration, or a seeded set.

:func:`validate_workload` times real training steps of ``kernels.dlrm`` on this device (torch imported
inside, only when called), simulates the same configuration on one device and returns predicted against
measured with the error in percent. :func:`random_workloads` draws DLRM configurations from a seeded
generator (table counts and sizes, pooling, dims 8-64, MLPs, batch 256-8192, fp32/bf16, uniform/Zipf);
:func:`fidelity_table` runs many and summarises the absolute errors (median, p90).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kernels.timing import CPU_PASSES
from planner.model import HardwareProfile, Workload
from planner.workload import workload_from_mapping


def random_workloads(count: int, seed: int = 0) -> list[Workload]:
    """``count`` varied DLRM workloads small enough to train on a CPU in well under a second per step."""
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    out = []
    for i in range(count):
        dim = int(rng.choice([8, 16, 32, 64]))
        tables = []
        for _ in range(int(rng.integers(1, 9))):
            tables.append({"rows": int(10 ** rng.uniform(2, 6)), "pooling": int(rng.choice([1, 2, 4, 8, 20])),
                           "count": int(rng.integers(1, 4))})
        interaction = str(rng.choice(["dot", "dot", "cat", "dcn"]))
        bottom = [int(rng.choice([32, 64, 128, 256, 512])) for _ in range(int(rng.integers(0, 3)))] + [dim]
        top = [int(rng.choice([32, 64, 128, 256, 512])) for _ in range(int(rng.integers(1, 3)))] + [1]
        inter: Any = interaction
        if interaction == "dcn":
            inter = {"dcn": {"cross_layers": int(rng.integers(1, 3)),
                             "low_rank": int(rng.choice([0, 32, 64]))}}
        access = "uniform" if rng.random() < 0.5 else f"zipf:{float(rng.choice([0.8, 1.05, 1.2]))}"
        mapping = {
            "name": f"random-{seed}-{i}",
            "model": {"dense_features": int(rng.choice([4, 13, 32])), "bottom_mlp": bottom,
                      "embedding_dim": dim, "tables": tables, "interaction": inter, "top_mlp": top},
            "training": {"batch_size": int(rng.choice([256, 512, 1024, 2048, 4096, 8192])),
                         "precision": str(rng.choice(["fp32", "bf16"])),
                         "optimizer": str(rng.choice(["sgd", "adagrad", "sgd", "rowwise_adagrad"])),
                         "access": access, "samples": 1e6},
        }
        if mapping["training"]["optimizer"] == "rowwise_adagrad":
            mapping["training"]["optimizer"] = "adagrad"
            mapping["training"]["sparse_optimizer"] = "rowwise_adagrad"
        out.append(workload_from_mapping(mapping, f"random workload {i}"))
    return out


#: Simulated steps behind a validation's prediction: their median is the prediction, and with each
#: kernel's calibrated spread 20 steps moved it by up to 6% between seeds (T=2 D=8 B=4096 on the
#: shipped CPU calibration: 9.0-10.1 ms, against 9.13-9.22 ms over 400); 200 take 0.03-0.05 s here.
SIM_STEPS = 200


def validate_workload(workload: Workload, profile: HardwareProfile, device: str = "cpu", *, steps: int = 20,
                      warmup: int = 5, seed: int = 0, threads: int | None = None,
                      sim_steps: int = SIM_STEPS, windows: int | None = None) -> dict[str, Any]:
    """Measure real steps of the reference DLRM on ``device`` and compare with the simulated step (the
    median of ``sim_steps`` simulated steps).

    On a CPU the real model runs with ``threads`` threads, by default as many as the profile's calibration
    was measured with (a calibrated CPU profile describes that many cores).

    Returns ``{workload, predicted: {...}, measured: {...}, error_pct, memory_error_pct}`` where
    ``error_pct`` is (predicted - measured) / measured x 100 of the median step time. When both the
    calibration and this run timed the host-speed probe (:mod:`kernels.probe`), also
    ``host_speed_ratio`` (how many times slower the host is now than when calibrated) and
    ``error_pct_speed_adjusted`` (the error with the prediction scaled by that ratio); ``error_pct``
    itself is never adjusted. A calibrated profile also gives ``calibrated_device_name``, the device its
    measurements came from.
    """
    from kernels.dlrm import measure_training_steps
    from planner.sim.engine import simulate

    if threads is None and str(device) == "cpu":
        threads = calibrated_threads(profile)
    measured = measure_training_steps(workload, device=device, steps=steps, warmup=warmup, seed=seed,
                                      threads=threads, windows=windows)
    result = simulate(workload, profile, 1, steps=sim_steps, seed=seed)
    predicted = {"step_time_s": result.step_time_s, "step_time_p99_s": result.step_time_p99_s,
                 "peak_memory_bytes": result.peak_memory_bytes, "samples_per_s": result.samples_per_s,
                 "breakdown_s": result.breakdown_s, "binding": result.binding}
    meas = {"step_time_s": float(measured["median_s"]), "p10_s": float(measured["p10_s"]),
            "p90_s": float(measured["p90_s"]), "reps": int(measured["reps"]),
            "peak_memory_bytes": float(measured["peak_memory_bytes"]),
            "device_name": str(measured["device_name"]), "threads": int(measured["threads"])}
    error = (predicted["step_time_s"] - meas["step_time_s"]) / meas["step_time_s"] * 100.0
    peak = meas["peak_memory_bytes"]
    mem_error = (predicted["peak_memory_bytes"] - peak) / peak * 100.0 if peak > 0 else 0.0
    out = {"workload": workload.name, "hardware": profile.name, "device": device, "predicted": predicted,
           "measured": meas, "error_pct": error, "memory_error_pct": mem_error}
    from kernels.probe import speed_ratio

    env = ((profile.calibration or {}).get("measured") or {}).get("env") or {}
    if env.get("device_name"):  # which machine the profile was calibrated on (another one: say so)
        out["calibrated_device_name"] = str(env["device_name"])
    ratio = speed_ratio(measured.get("speed_probe"), env.get("speed_probe"))
    if ratio is not None:  # the host's own speed change since calibration, reported beside the error
        out["host_speed_ratio"] = ratio
        out["error_pct_speed_adjusted"] = (predicted["step_time_s"] * ratio - meas["step_time_s"]) / \
            meas["step_time_s"] * 100.0
    return out


def calibrated_threads(profile: HardwareProfile) -> int | None:
    """CPU threads the profile's calibration was measured with (the "device" it describes), or None."""
    env = ((profile.calibration or {}).get("measured") or {}).get("env") or {}
    threads = env.get("threads")
    return int(threads) if isinstance(threads, int) and threads > 0 else None


#: Rounds over the set by default: as many as the bench's passes over its cases on a CPU, so both sides
#: keep the fastest of as many measurements.
ROUNDS = CPU_PASSES
#: A configuration whose two fastest rounds agree within this fraction is settled. Two measurements of
#: the same step on a quiet machine differ by about 5%; on this project's VM, two rounds of one
#: configuration minutes apart differed by up to 2.1x.
AGREEMENT = 0.05
#: Rounds at most over a configuration that has not settled: the rounds after the first ``ROUNDS`` are
#: only over the configurations still unsettled.
MAX_ROUNDS = 6


def settled(times: list[float], agreement: float = AGREEMENT) -> bool:
    """True when the two fastest of ``times`` (seconds) agree within ``agreement`` (a fraction).

    Other work on a shared host only slows a step down, so two rounds that agree at the fast end have
    most likely both caught the machine undisturbed; one fast round alone may be luck, or the other
    round a slow spell.
    """
    if len(times) < 2:
        return False
    first, second = sorted(times)[:2]
    return first > 0 and second <= first * (1.0 + agreement)


def validate_rounds(workloads: list[Workload], profile: HardwareProfile, device: str = "cpu",
                    rounds: int = ROUNDS, progress: Any = None, max_rounds: int | None = None,
                    agreement: float = AGREEMENT, **kwargs: Any) -> list[dict[str, Any]]:
    """:func:`validate_workload` of every workload in ``rounds`` rounds over the whole set, then further
    rounds over the workloads not yet :func:`settled` (their two fastest rounds more than ``agreement``
    apart), up to ``max_rounds`` in all (default :data:`MAX_ROUNDS`, at least ``rounds``); per workload the
    round whose measured step was fastest, with every round's median in ``measured.round_medians_s``.

    The same estimator as the bench's passes (the faster of measurements a pass apart): on a host whose
    speed drifts over minutes, two adjacent windows of one configuration share its state, two rounds
    over the set do not. Each round times one window per workload. ``progress(round, index, row)`` is
    called after each measurement. Two caveats: once few configurations are left unsettled, their extra
    rounds follow each other closely and share more of the host's state (a long slow spell can settle
    them slow); and a configuration given more rounds keeps the fastest of more measurements than one
    that settled early. One time never settles, so ``rounds=1`` still gives each a second round.
    """
    rounds = max(1, rounds)
    limit = max(rounds, MAX_ROUNDS if max_rounds is None else max_rounds)
    best: list[dict[str, Any] | None] = [None] * len(workloads)
    medians: list[list[float]] = [[] for _ in workloads]
    for r in range(limit):
        todo = [i for i in range(len(workloads)) if r < rounds or not settled(medians[i], agreement)]
        if not todo:
            break
        for i in todo:
            row = validate_workload(workloads[i], profile, device, windows=1, **kwargs)
            medians[i].append(row["measured"]["step_time_s"])
            current = best[i]
            if current is None or row["measured"]["step_time_s"] < current["measured"]["step_time_s"]:
                best[i] = row
            if progress is not None:
                progress(r, i, row)
    out = []
    for row, times in zip(best, medians, strict=True):
        assert row is not None  # at least one round ran
        row["measured"]["round_medians_s"] = times
        row["measured"]["settled"] = settled(times, agreement)
        out.append(row)
    return out


def fidelity_table(workloads: list[Workload], profile: HardwareProfile, device: str = "cpu",
                   rounds: int = ROUNDS, **kwargs: Any) -> dict[str, Any]:
    """Validate every workload in ``rounds`` rounds and the unsettled ones in more, up to ``max_rounds``
    in all if given (:func:`validate_rounds`); returns ``{rows, median_abs_error_pct,
    p90_abs_error_pct}``."""
    rows = validate_rounds(workloads, profile, device, rounds=rounds, **kwargs)
    errors = np.abs([r["error_pct"] for r in rows])
    table = {"rows": rows, "median_abs_error_pct": float(np.median(errors)),
             "p90_abs_error_pct": float(np.percentile(errors, 90))}
    adjusted = [abs(r["error_pct_speed_adjusted"]) for r in rows if "error_pct_speed_adjusted" in r]
    if len(adjusted) == len(rows):
        table["median_abs_error_speed_adjusted_pct"] = float(np.median(adjusted))
        table["p90_abs_error_speed_adjusted_pct"] = float(np.percentile(adjusted, 90))
    return table


def describe(workload: Workload) -> str:
    """A one-line summary of a workload's shape for tables."""
    m = workload.model
    t = workload.training
    tables = sum(s.count for s in m.tables)
    inter = m.interaction.kind
    return (f"T={tables} D={m.embedding_dim} B={t.batch_size} {t.precision} {inter} "
            f"{t.access.kind}{'' if t.access.kind == 'uniform' else t.access.exponent} "
            f"opt={t.sparse_optimizer or t.optimizer}")


def main(argv: list[str] | None = None) -> int:
    """Print the fidelity table: ``python -m planner.sim.validation --profile CALIBRATED.yaml``."""
    import argparse
    import os

    from planner.hardware import load_profile

    parser = argparse.ArgumentParser(description="Step-time fidelity of the simulator on this CPU.")
    parser.add_argument("--profile", default="cpu-generic", help="calibrated CPU profile (name or YAML)")
    parser.add_argument("--count", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="rounds over the set (the fastest kept)")
    parser.add_argument("--max-rounds", type=int, default=MAX_ROUNDS,
                        help="rounds in all, at most, over a configuration whose two fastest disagree")
    args = parser.parse_args(argv)
    if args.max_rounds < args.rounds:
        parser.error(f"--max-rounds ({args.max_rounds}) is below --rounds ({args.rounds})")
    profile = load_profile(args.profile)
    workloads = random_workloads(args.count, args.seed)
    print(f"load average before: {os.getloadavg()[0]:.2f}")

    def progress(r: int, i: int, row: dict[str, Any]) -> None:
        print(f"round {r + 1}: {i} {describe(workloads[i])}: {row['measured']['step_time_s'] * 1e3:.2f} ms",
              flush=True)

    rows = validate_rounds(workloads, profile, "cpu", rounds=args.rounds, progress=progress,
                           max_rounds=args.max_rounds,
                           steps=args.steps, warmup=args.warmup, threads=args.threads)
    print("| # | configuration | predicted ms | measured ms (rounds) | error % | memory error % |"
          " host speed x | speed-adjusted error % |")
    print("|---|---|---|---|---|---|---|---|")
    for i, (workload, row) in enumerate(zip(workloads, rows, strict=True)):
        rounds = ", ".join(f"{t * 1e3:.2f}" for t in row["measured"]["round_medians_s"])
        print(f"| {i} | {describe(workload)} | {row['predicted']['step_time_s'] * 1e3:.2f} | "
              f"{row['measured']['step_time_s'] * 1e3:.2f} ({rounds}) | {row['error_pct']:+.1f} | "
              f"{row['memory_error_pct']:+.1f} | {row.get('host_speed_ratio', float('nan')):.2f} | "
              f"{row.get('error_pct_speed_adjusted', float('nan')):+.1f} |")
    errors = np.abs([r["error_pct"] for r in rows])
    unsettled = sum(1 for r in rows if not r["measured"]["settled"])
    print(f"median |error| {np.median(errors):.1f}%, p90 {np.percentile(errors, 90):.1f}% over {len(rows)} "
          f"configurations ({unsettled} unsettled after {args.max_rounds} rounds); load average after: "
          f"{os.getloadavg()[0]:.2f}")
    adjusted = [abs(r["error_pct_speed_adjusted"]) for r in rows if "error_pct_speed_adjusted" in r]
    if adjusted:
        print(f"speed-adjusted: median |error| {np.median(adjusted):.1f}%, p90 "
              f"{np.percentile(adjusted, 90):.1f}% (prediction scaled by the host-speed probe ratio)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
