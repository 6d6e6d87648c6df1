"""Time a 10,000-option what-if sweep end to end (simulate, price, predict, rank, recommend).

    python benchmarks/bench_whatif.py [--executor auto|serial|process] [--workers N] [--report DIR]

The sweep: 5 hardware x 10 device counts x 4 batch sizes x 5 model scales x 10 data sizes = 10,000 options,
1,000 unique simulations (options that differ only in data size share one), with the real step model
(20 simulated steps each). Prints the wall time of the cold run, then of a second run of the same scenario
that the in-process simulation cache answers. Target: the cold run within 60 s on a 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

SCENARIO = {
    "name": "bench-10k",
    "workload": "criteo-terabyte-dlrm",
    "model_scale": [0.5, 1, 2, 4, 8],
    "quality": {
        "law": {"form": "power_plus_const", "x": "samples", "alpha": 1.76, "beta": 0.154, "gamma": 0.647}
    },
    "sweep": {
        "hardware": ["h100-sxm-80gb", "h200-sxm-141gb", "b200", "mi300x", "a100-sxm4-80gb"],
        "devices": [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
        "batch_size": [16384, 32768, 65536, 131072],
        "samples": [1e9 * 2**k for k in range(10)],
    },
    "constraints": {"max_days": 2, "max_cost_usd": 20000, "target_ne": 0.69},
    "overrides": {"pue": 1.2, "grid_kg_co2_per_kwh": 0.4},
}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns 0 (the time is printed, not asserted)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executor", default="auto")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--report", type=Path, default=None, help="also write the report into this folder")
    args = parser.parse_args(argv)

    from planner.scenario import scenario_from_mapping
    from planner.whatif import evaluate_scenario

    with tempfile.TemporaryDirectory() as tmp:
        scenario = scenario_from_mapping(SCENARIO, str(Path(tmp) / "bench-10k.yaml"), Path(tmp))
    print(
        f"options: {scenario.option_count:,}; cores: {os.cpu_count()}; executor: {args.executor}",
        file=sys.stderr,
    )
    start = time.perf_counter()
    result = evaluate_scenario(scenario, executor=args.executor, workers=args.workers)
    cold = time.perf_counter() - start
    start = time.perf_counter()
    evaluate_scenario(scenario, executor=args.executor, workers=args.workers)
    warm = time.perf_counter() - start
    print(
        f"10,000-option sweep: {cold:.1f} s cold ({result.unique_simulations} unique simulations), "
        f"{warm:.2f} s with the simulation cache warm; {len(result.frontier)} on the frontier; "
        f"{result.recommendation['feasible_options']} feasible"
    )
    print(result.recommendation["text"])
    if args.report:
        from planner.report import write_report

        start = time.perf_counter()
        write_report(result, args.report)
        print(f"report of {len(result.options):,} options written in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
