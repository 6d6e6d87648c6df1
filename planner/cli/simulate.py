"""``recplan simulate`` and ``recplan validate``: the step model, and the step model against the real model.

``simulate WORKLOAD --hardware PROFILE [--devices N] [--sharding ...] [--steps K] [--seed S] [--json]``
prints the simulated step (median, p99, samples/s), the critical-path breakdown, memory of the largest
device and the sharding. With ``--json`` stdout carries one JSON document (DESIGN.md keys). A job that does
not fit in memory is still simulated and printed (``fits_in_memory: false``); the command then prints the
reason as one line on stderr and exits 1. Bad input exits 2.

``validate WORKLOAD --device cpu|cuda --hardware PROFILE`` trains the reference DLRM with torch on this
device (torch is imported only here), simulates the same configuration on one device and prints predicted
against measured with the error in percent (``--json``: ``{predicted, measured, error_pct, ...}``).
``--max-error-pct X`` turns a larger error into exit 1.
"""

from __future__ import annotations

import math
import os
from typing import Any

import typer

_DEVICES_HELP = "Number of devices (default: one node of the profile)."


def _load(workload: str, hardware: str) -> tuple[Any, Any]:
    from planner.hardware import load_profile
    from planner.workload import load_workload

    return load_workload(workload), load_profile(hardware)


def plan_warnings(workload: Any, profile: Any, devices: int, batch_size: int | None = None) -> list[str]:
    """What a user should know before trusting a simulation of ``workload`` on ``devices`` x ``profile``:
    a training precision whose peak the profile does not list (priced at a stand-in dtype's peak), and
    devices beyond the global batch (they have no sample to train and sit idle, paid for)."""
    out = []
    precision = str(workload.training.precision)
    used = profile.peak_precision_for(precision)
    if used != precision:
        from planner.units import fmt_rate

        speed = {"fp32": 0, "tf32": 1, "bf16": 2, "fp16": 2, "fp8": 3}  # a dtype's usual rank in peak
        lean = speed.get(used, 0) - speed.get(precision, 0)
        note = ", a faster dtype's: optimistic" if lean > 0 else ", a slower dtype's" if lean < 0 else ""
        out.append(f"{profile.name} lists no {precision} peak: {precision} GEMMs are priced at its {used} "
                   f"peak ({fmt_rate(float(profile.device.peak_flops[used]), 'FLOP/s')}{note})")
    batch = int(batch_size or workload.training.batch_size)
    if devices > batch:
        out.append(f"{devices - batch} of the {devices} devices have no sample of the global batch ({batch}) "
                   "to train: they sit idle, and are paid for")
    return out


def render_summary(result: Any) -> None:
    """Print a simulation result as a rich summary on stdout."""
    from rich.table import Table

    from planner.cli.common import console
    from planner.units import fmt_bytes, fmt_count, fmt_seconds

    r = result
    console.print(
        f"[bold]{r.workload}[/bold] on {r.devices} x {r.hardware} (batch {r.batch_size}, "
        f"{r.local_batch_size} per device, sharding {r.sharding['kind']}, {r.steps} steps, seed {r.seed})")
    console.print(
        f"step {fmt_seconds(r.step_time_s)} median, {fmt_seconds(r.step_time_p99_s)} p99; "
        f"{fmt_count(r.samples_per_s)} samples/s; bound by {r.binding}")
    table = Table(title="critical path of the median step")
    table.add_column("phase", no_wrap=True)
    table.add_column("time", justify="right")
    table.add_column("share", justify="right")
    total = sum(r.breakdown_s.values()) or 1.0
    for phase, seconds in r.breakdown_s.items():
        if seconds > 0:
            table.add_row(phase, fmt_seconds(seconds), f"{100 * seconds / total:.1f}%")
    console.print(table)
    mem = Table(title="memory of the largest device")
    mem.add_column("part", no_wrap=True)
    mem.add_column("device", justify="right")
    for part, nbytes in sorted(r.memory.hbm_parts.items(), key=lambda kv: -kv[1]):
        if nbytes > 0:
            mem.add_row(part, fmt_bytes(nbytes))
    mem.add_row("[bold]total[/bold]", fmt_bytes(r.peak_memory_bytes))
    if r.host_memory_bytes:
        mem.add_row("host-resident tables", fmt_bytes(r.host_memory_bytes))
    console.print(mem)
    s = r.sharding
    kinds = ", ".join(f"{k} {v}" for k, v in s["table_kinds"].items())
    console.print(f"sharding: {kinds}; imbalance {s['imbalance_ratio']:.2f} (max/mean device embedding "
                  f"cost); tables on host {s['tables_on_host']}; {r.device_classes} device classes, "
                  f"{r.simulated_classes} simulated (the others dominated)")
    console.print("fits in memory" if r.fits_in_memory else f"[red]does not fit[/red]: {r.infeasible_reason}")


def _render_validation(report: dict[str, Any]) -> None:
    from rich.table import Table

    from planner.cli.common import console
    from planner.units import fmt_bytes, fmt_seconds

    p, m = report["predicted"], report["measured"]
    table = Table(title=f"{report['workload']}: predicted ({report['hardware']}) against measured "
                        f"({m['device_name']}, {m['threads']} threads)")
    for col in ("figure", "predicted", "measured", "error"):
        table.add_column(col, justify="left" if col == "figure" else "right", no_wrap=True)
    table.add_row("step time (median)", fmt_seconds(p["step_time_s"]), fmt_seconds(m["step_time_s"]),
                  f"{report['error_pct']:+.1f}%")
    table.add_row("peak memory", fmt_bytes(p["peak_memory_bytes"]), fmt_bytes(m["peak_memory_bytes"]),
                  f"{report['memory_error_pct']:+.1f}%")
    console.print(table)
    ratio = report.get("host_speed_ratio")
    if ratio is not None:
        # The probe (a fixed copy, GEMM and gather) is context, not a correction: on this project's VM it
        # did not follow the slowdowns of whole steps, so the adjusted error stays in --json only.
        console.print(f"host speed now against calibration (probe): x{ratio:.2f} "
                      f"({'slower' if ratio > 1 else 'faster'} by a fixed copy, GEMM and gather)")


def register(app: typer.Typer) -> None:
    """Add the ``simulate`` and ``validate`` commands to the root app."""

    @app.command("simulate")
    def simulate_cmd(
        workload: str = typer.Argument(..., help="Workload preset name or YAML file.", show_default=False),
        hardware: str = typer.Option(..., "--hardware", help="Hardware profile name or YAML file."),
        devices: int | None = typer.Option(None, "--devices", help=_DEVICES_HELP),
        sharding: str = typer.Option("auto", "--sharding", help="auto, table, row, column or data."),
        steps: int = typer.Option(20, "--steps", help="Simulated steps (the distribution is over them)."),
        seed: int = typer.Option(0, "--seed", min=0, help="Seed of the per-kernel variability."),
        batch_size: int | None = typer.Option(None, "--batch-size", help="Global batch (default: the "
                                              "workload's)."),
        json_out: bool = typer.Option(False, "--json", help="Print one JSON document on stdout."),
    ) -> None:
        """Simulate distributed training steps: step time, critical path, memory and sharding."""
        from planner.errors import InfeasibleError
        from planner.sim.engine import simulate

        w, p = _load(workload, hardware)
        n = int(p.node.devices) if devices is None else devices
        result = simulate(w, p, n, sharding=sharding, steps=steps, seed=seed, batch_size=batch_size)
        from planner.cli.common import err_console

        for warning in plan_warnings(w, p, n, batch_size):
            err_console.print(f"warning: {warning}")
        if json_out:
            from planner.cli.common import emit_json

            emit_json(result.to_dict())
        else:
            render_summary(result)
        if not result.fits_in_memory:
            raise InfeasibleError(f"{w.name} does not fit on {n} x {p.name}: {result.infeasible_reason}")

    @app.command("validate")
    def validate_cmd(
        workload: str = typer.Argument(..., help="Workload preset name or YAML file.", show_default=False),
        device: str = typer.Option("cpu", "--device", help="cpu, cuda or cuda:N (this machine)."),
        hardware: str = typer.Option(..., "--hardware", help="Profile of this device (calibrated ideally)."),
        steps: int = typer.Option(20, "--steps", help="Timed real training steps."),
        warmup: int = typer.Option(5, "--warmup", help="Untimed steps first."),
        seed: int = typer.Option(0, "--seed", min=0, help="Seed of model, batches and simulation."),
        threads: int | None = typer.Option(None, "--threads", min=1, help="CPU threads for torch (default: "
                                           "as many as the profile was calibrated with)."),
        max_error_pct: float | None = typer.Option(None, "--max-error-pct",
                                                   help="Exit 1 when |error| exceeds this."),
        json_out: bool = typer.Option(False, "--json", help="Print one JSON document on stdout."),
    ) -> None:
        """Run the real reference DLRM on this device and compare with the simulated step."""
        from planner.errors import InfeasibleError, InputError

        if not (device == "cpu" or device == "cuda" or device.startswith("cuda:")):
            raise InputError(f"expected cpu, cuda or cuda:N, got {device!r}", field="--device")
        if steps < 1:
            raise InputError(f"must be at least 1, got {steps}", field="--steps")
        if warmup < 0:
            raise InputError(f"must be at least 0, got {warmup}", field="--warmup")
        if max_error_pct is not None and not (math.isfinite(max_error_pct) and max_error_pct >= 0):
            raise InputError(f"must be a finite percentage >= 0, got {max_error_pct!r}",
                             field="--max-error-pct")
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        if threads is not None and threads > cpus:
            raise InputError(f"must be at most the {cpus} CPUs this process may use, got {threads}",
                             field="--threads")
        w, p = _load(workload, hardware)
        want = ("cpu",) if device == "cpu" else ("gpu", "accelerator")
        if p.kind not in want:
            raise InputError(f"profile {p.name} is kind {p.kind}, which cannot describe a {device} device",
                             field="--hardware")
        try:
            import torch
        except ImportError:
            raise InputError("validate needs torch installed (the planner itself does not)",
                             field="--device") from None
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise InputError("no CUDA device is available here", field="--device")
        from planner.cli.common import err_console
        from planner.sim.validation import calibrated_threads, validate_workload

        if not p.calibration:
            kind = device.split(":")[0]
            err_console.print(f"note: profile {p.name} is not calibrated; for a fair comparison run "
                              f"`recplan bench --device {kind} --quick` and `recplan calibrate` on this "
                              "machine and validate against the profile it writes")
        if device == "cpu":
            from kernels.env import env_warnings, load_average, uptime_s

            env = {"device_kind": "cpu", "load_average": load_average(), "logical_cpus": os.cpu_count(),
                   "threads": threads or calibrated_threads(p) or os.cpu_count(), "uptime_s": uptime_s()}
            for warning in env_warnings(env):
                err_console.print(f"warning: {warning}")
        report = validate_workload(w, p, device, steps=steps, warmup=warmup, seed=seed, threads=threads)
        calibrated_on = report.get("calibrated_device_name")
        if calibrated_on and calibrated_on != report["measured"]["device_name"]:
            err_console.print(f"note: profile {p.name} was calibrated on {calibrated_on!r}, this device is "
                              f"{report['measured']['device_name']!r}: the error includes the difference "
                              "between the two machines (calibrate here for a like-for-like comparison)")
        if json_out:
            from planner.cli.common import emit_json

            emit_json(report)
        else:
            _render_validation(report)
        if max_error_pct is not None and abs(report["error_pct"]) > max_error_pct:
            raise InfeasibleError(f"step-time error {report['error_pct']:+.1f}% exceeds {max_error_pct}%")
