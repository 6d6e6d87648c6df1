"""``recplan whatif`` and ``recplan report``: evaluate a scenario's sweep; print it or write a report.

``whatif SCENARIO.yaml [--json]`` prints a table of the options ranked by the scenario's objective (feasible
first, the cost/NE frontier marked with *), the frontier and a recommendation. With ``--json`` stdout carries
one document ``{"scenario", "options", "frontier", "recommendation"}``.

``report SCENARIO.yaml --out DIR [--format html,md,json,csv]`` writes ``report.html`` (self-contained, plots
inlined as SVG), ``report.md``, ``report.json`` (every input resolved, every figure with its provenance) and
``options.csv``; the same inputs give the same bytes. Every file is rendered and every target path checked
before the first write, so a path that cannot be written (a folder where a file should go, a read-only
folder) exits 2 with the old report untouched.

A law evaluated more than 10x outside its known range (a preset's documented range, a fit's observed runs)
prints one warning line on stderr per scenario (``whatif --json`` lists it under ``warnings``, with the
ids of the options concerned); a law that predicts an impossible metric (NE <= 0) at any point of the sweep
is bad input (exit 2, naming ``quality.law``, the point and the value).

Both exit 1 when no option meets the constraints (after printing or writing everything) and say which
constraint bound; bad input exits 2. Simulations run serially, on local cores (``--executor process``, the
default for large sweeps) or on a Dask cluster (``--executor dask --scheduler tcp://HOST:8786``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

_EXECUTOR_HELP = "Where simulations run: auto (local cores for large sweeps), serial, process or dask."
_FORMATS = ("html", "md", "json", "csv")


class _Progress:
    """A rich progress bar on stderr, started on the first update of a large sweep when stderr is a
    terminal (a redirected stderr gets no bar, not even its closing newline)."""

    def __init__(self, enabled: bool, threshold: int = 20) -> None:
        self.enabled = enabled
        self.threshold = threshold
        self._bar: Any = None
        self._task: Any = None

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or total < self.threshold:
            return
        if self._bar is None:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            from planner.cli.common import err_console

            if not err_console.is_terminal:
                self.enabled = False
                return

            self._bar = Progress(
                TextColumn("simulating"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=err_console,
                transient=True,
            )
            self._bar.start()
            self._task = self._bar.add_task("simulate", total=total)
        self._bar.update(self._task, completed=done)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def _evaluate(
    scenario_path: Path, executor: str, scheduler: str | None, workers: int | None, progress: bool
) -> Any:
    from planner.errors import InputError
    from planner.scenario import load_scenario
    from planner.whatif import EXECUTORS, evaluate_scenario

    if executor not in EXECUTORS:
        raise InputError(f"must be one of {', '.join(EXECUTORS)}, got {executor!r}", field="--executor")
    if workers is not None and workers < 1:
        raise InputError(f"must be at least 1, got {workers}", field="--workers")
    if scheduler and executor != "dask":
        raise InputError("--scheduler applies to --executor dask only", field="--scheduler")
    scenario = load_scenario(scenario_path)
    bar = _Progress(progress)
    try:
        result = evaluate_scenario(
            scenario, executor=executor, scheduler=scheduler, workers=workers, progress=bar
        )
    finally:
        bar.close()
    from planner.cli.common import err_console

    for warning in result.warnings:  # one line each, at most one per kind (an extrapolated law)
        err_console.print(f"warning: {warning['text']}", markup=False, highlight=False)
    return result


def _columns(result: Any) -> list[tuple[str, str, int, Any]]:
    """(title, justify, priority, cell function) of the table; lower priority columns drop first."""
    from planner.economics import fmt_kwh, fmt_usd
    from planner.units import fmt_bytes, fmt_count, fmt_seconds

    s = result.scenario
    metric = "NE" if s.law.metric == "ne" else s.law.metric
    cols: list[tuple[str, str, int, Any]] = [
        ("#", "right", 9, lambda o: str(o.rank)),
        ("*", "left", 9, lambda o: "*" if o.pareto else ""),
        ("hardware", "left", 10, lambda o: o.hardware),
        ("dev", "right", 10, lambda o: str(o.devices)),
    ]
    if len(s.workloads) > 1:
        cols.append(("scale", "right", 8, lambda o: f"x{o.model_scale:g}"))
    if len(s.batch_sizes) > 1:
        cols.append(("batch", "right", 8, lambda o: str(o.batch_size)))
    cols += [
        ("samples", "right", 8, lambda o: f"{o.samples:.3g}"),
        ("step", "right", 3, lambda o: fmt_seconds(o.step_time_s)),
        ("samples/s", "right", 2, lambda o: fmt_count(o.samples_per_s)),
        ("days", "right", 9, lambda o: f"{o.time_to_train_days:.3g}"),
        ("cost", "right", 10, lambda o: fmt_usd(o.cost_usd)),
        ("kWh", "right", 1, lambda o: fmt_kwh(o.energy_kwh)),
        (
            "mem/dev",
            "right",
            5,
            lambda o: f"{fmt_bytes(o.peak_memory_bytes)}/{fmt_bytes(o.memory_capacity_bytes)}",
        ),
        (metric, "right", 9, lambda o: f"{o.ne:.4f}"),
        ("80%", "right", 4, lambda o: f"{o.interval80[0]:.4f}-{o.interval80[1]:.4f}" if o.interval80 else ""),
        ("binding", "left", 10, lambda o: o.binding_text()),
    ]
    return cols


def render_table(result: Any, top: int) -> None:
    """Print the ranked options, the frontier and the recommendation on stdout.

    Columns are dropped, least important first (energy, throughput, step time, interval, memory), until the
    table fits the terminal; ``--json`` and ``recplan report`` carry every figure.
    """
    from rich.table import Table

    from planner.cli.common import console
    from planner.economics import fmt_usd
    from planner.report.tables import law_text, target_text

    s = result.scenario
    law = s.law
    console.print(
        f"[bold]{s.name}[/bold]: {len(result.options)} options ({result.unique_simulations} "
        f"simulations) ranked by {s.objective}, feasible first"
    )
    console.print(f"quality: {law_text(law)}", markup=False)
    shown = result.options if top <= 0 else result.options[:top]
    cols = _columns(result)
    cells = [[fn(o) for _, _, _, fn in cols] for o in shown]
    widths = [max([len(t)] + [len(r[i]) for r in cells]) for i, (t, _, _, _) in enumerate(cols)]
    keep = list(range(len(cols)))
    while sum(widths[i] + 3 for i in keep) + 1 > console.width:
        droppable = [i for i in keep if cols[i][2] < 8]
        if not droppable:
            break
        keep.remove(min(droppable, key=lambda i: (cols[i][2], i)))
    table = Table(
        caption="* on the cost/NE frontier. binding: the violated constraint, else the step's bottleneck "
        "(compute (host): the host's CPU launching kernels bounds the step)",
        caption_justify="left",
    )
    for i in keep:
        title, justify, _, _ = cols[i]
        if title == "binding":  # "compute (host)" may wrap after its first word rather than be cropped
            words = [len(w) for r in cells for w in r[i].split()]
            table.add_column(title, justify=justify, min_width=max([len(title), *words]))
        else:
            table.add_column(title, justify=justify, no_wrap=True, min_width=widths[i])
    binding = next(k for k, i in enumerate(keep) if cols[i][0] == "binding")
    for o, row in zip(shown, cells, strict=True):
        values = [row[i] for i in keep]
        if not o.feasible:
            values[binding] = f"[red]{values[binding]}[/red]"
        table.add_row(*values, style=None if o.feasible else "dim")
    console.print(table)
    if len(shown) < len(result.options):
        console.print(
            f"... {len(result.options) - len(shown)} more options (--top 0 shows all; --json or "
            "`recplan report` writes every option)"
        )
    metric = "NE" if law.metric == "ne" else law.metric
    if result.frontier:
        console.print("[bold]Frontier[/bold] (cost against NE, cheapest first):")
        for oid in result.frontier:
            o = result.option(oid)
            console.print(
                f"  {fmt_usd(o.cost_usd):>9}  {metric} {o.ne:.5f}  {o.label()}, "
                f"{o.time_to_train_days:.3g} days"
            )
    rec = result.recommendation
    colour = "green" if rec["feasible"] else "red"
    console.print(f"[bold {colour}]Recommendation[/bold {colour}]: ", end="")
    console.print(rec["text"], markup=False, highlight=False)
    target = target_text(result)
    if target:
        console.print(target, markup=False, highlight=False)


def whatif(
    scenario: Path = typer.Argument(..., help="Scenario YAML (see DESIGN.md, 'Scenario YAML')."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document on stdout."),
    executor: str = typer.Option("auto", "--executor", help=_EXECUTOR_HELP),
    scheduler: str = typer.Option(None, "--scheduler", help="Dask scheduler address (with --executor dask)."),
    workers: int = typer.Option(None, "--workers", help="Local worker processes (default: every core)."),
    top: int = typer.Option(25, "--top", help="Rows of the table to print (0: all; negative is refused)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bar on large sweeps."),
) -> None:
    """Evaluate a scenario: cost, time, energy, memory and NE of every option; frontier and recommendation."""
    from planner.cli.common import emit_json
    from planner.errors import InfeasibleError, InputError

    if top < 0:
        raise InputError(f"must be 0 (all rows) or more, got {top}", field="--top")
    result = _evaluate(scenario, executor, scheduler, workers, progress)
    if as_json:
        emit_json(result.to_dict())
    else:
        render_table(result, top)
    if not result.feasible:
        raise InfeasibleError(result.recommendation["text"])


def report(
    scenario: Path = typer.Argument(..., help="Scenario YAML."),
    out: Path = typer.Option(..., "--out", help="Folder to write the report into (created if missing)."),
    formats: str = typer.Option(",".join(_FORMATS), "--format", help="Comma-separated: html,md,json,csv."),
    executor: str = typer.Option("auto", "--executor", help=_EXECUTOR_HELP),
    scheduler: str = typer.Option(None, "--scheduler", help="Dask scheduler address (with --executor dask)."),
    workers: int = typer.Option(None, "--workers", help="Local worker processes (default: every core)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bar on large sweeps."),
) -> None:
    """Write a capacity report: HTML (plots inlined), Markdown, JSON with provenance, CSV of all options."""
    from planner.cli.common import err_console
    from planner.errors import InfeasibleError, InputError
    from planner.report import check_targets, write_report

    chosen = [f.strip().lower() for f in formats.split(",") if f.strip()]
    for f in chosen:
        if f not in _FORMATS:
            raise InputError(f"unknown format {f!r} (expected {', '.join(_FORMATS)})", field="--format")
    if not chosen:
        raise InputError("give at least one format", field="--format")
    check_targets(out, chosen)  # before the simulations: a bad --out fails at once, and nothing is written
    result = _evaluate(scenario, executor, scheduler, workers, progress)
    written = write_report(result, out, chosen)
    for path in written:
        err_console.print(f"wrote {path}")
    err_console.print(result.recommendation["text"], markup=False)
    if not result.feasible:
        raise InfeasibleError(result.recommendation["text"])


def register(app: typer.Typer) -> None:
    """Add ``whatif`` and ``report`` to the root app."""
    app.command("whatif")(whatif)
    app.command("report")(report)
