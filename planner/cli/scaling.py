"""``recplan scaling``: fit scaling laws to observations, list presets, run the built-in DLRM scaling study.

* ``fit OBSERVATIONS.csv --x samples|params|flops``: robust multi-start fit with bootstrap intervals;
  rich tables on stdout, or exactly one JSON document with ``--json`` (narration on stderr). Bad input exits
  2 with one line; a fit that does not converge exits 1. ``--form two_axis`` fits L(N, D) = E + A/N^alpha +
  B/D^beta over the file's ``params`` (N) and ``samples`` (D) columns together, so ``--x`` must be omitted
  (refused rather than ignored, so that nobody believes a one-axis fit was made), and ``--predict`` takes
  ``N:D`` pairs. A ``--predict`` value more than ``scaling_fit.EXTRAPOLATION_FACTOR`` (10x) outside the range
  prints one warning line on stderr; every prediction carries ``extrapolation`` (x over the largest x).
* ``presets``: the shipped laws with metric and provenance.
* ``study [--quick] --out OBSERVATIONS.csv``: trains reference DLRMs with torch on this CPU (imported only
  here), writes the observations atomically and fits them.
"""

from __future__ import annotations

import datetime as _dt
import math
from pathlib import Path
from typing import Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from planner.cli.common import console, emit_json, err_console
from planner.errors import InputError

app = typer.Typer(no_args_is_help=True, help="Scaling laws: fit observations, presets, run a study.")

_FORMS = ("power_plus_const", "power_law", "log_linear", "two_axis")


def _positive(part: str, shown: str) -> float:
    try:
        v = float(part)
    except ValueError:
        raise InputError(f"not a number: {shown!r}", file="--predict") from None
    if not math.isfinite(v) or v <= 0:
        raise InputError(f"must be a positive number, got {shown!r}", file="--predict")
    return v


def _parse_predict(text: str | None, two_axis: bool = False) -> list[Any]:
    """Comma-separated x values, or for ``two_axis`` comma-separated ``N:D`` (params:samples) pairs."""
    if not text:
        return []
    out: list[Any] = []
    for part in text.split(","):
        part = part.strip()
        if two_axis:
            pieces = part.split(":")
            if len(pieces) != 2:
                raise InputError(
                    f"--form two_axis predicts at N:D pairs (params:samples, e.g. 1e6:1e9), got {part!r}",
                    file="--predict",
                )
            out.append((_positive(pieces[0].strip(), part), _positive(pieces[1].strip(), part)))
        elif ":" in part:
            raise InputError(
                f"N:D pairs are for --form two_axis; give x values, got {part!r}", file="--predict"
            )
        else:
            out.append(_positive(part, part))
    return out


def _g(v: Any) -> str:
    return "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.6g}"


def _g3(v: Any) -> str:
    return "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.3g}"


def _g2(v: Any) -> str:
    return "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.2g}"


def _bound(v: Any) -> str:
    """An interval bound; "-" where it is unknown (no bootstrap), never the point value."""
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.6g}"


def _render_fit(doc: dict[str, Any]) -> None:
    title = (f"{doc['form']} fit of NE over {doc['x']}: {doc['n_points']} points, {doc['n_runs']} runs, "
             f"{'converged' if doc['converged'] else 'NOT converged: ' + doc['message']}")
    table = Table(title=title)
    for col in ("parameter", "estimate", "80% lo", "80% hi", "95% lo", "95% hi"):
        table.add_column(col, justify="left" if col == "parameter" else "right")
    for name, value in doc["params"].items():
        ci = doc["ci"].get(name, {})
        table.add_row(name, _g(value), _g(ci.get("lo80")), _g(ci.get("hi80")), _g(ci.get("lo95")),
                      _g(ci.get("hi95")))
    console.print(table)
    if doc.get("predictions"):
        preds = doc["predictions"]
        known = any(p["lo80"] is not None for p in preds)
        two = doc["form"] == "two_axis"
        title = "bootstrap percentile intervals" if known else "no bootstrap: intervals unknown"
        title += "; N params, D samples" if two else ""
        pt = Table(title=f"Predictions ({title}; x/max: over the largest observed x)")
        for col in (*(("N", "D") if two else ("x",)), "NE", "80% lo", "80% hi", "95% lo", "95% hi", "x/max"):
            pt.add_column(col, justify="right")
        for p in preds:
            where = (_g(p["params"]), _g(p["samples"])) if two else (_g(p["x"]),)
            pt.add_row(*where, _g(p["ne"]), *(_bound(p[k]) for k in ("lo80", "hi80", "lo95", "hi95")),
                       f"{p['extrapolation']:.3g}")
        console.print(pt)
    if doc.get("holdout"):
        h = doc["holdout"]
        ht = Table(title=f"Extrapolation check: largest {h['k']} held out, fitted on {h['fit_points']}")
        for col in ("x", "NE observed", "NE predicted", "rel error", "decades beyond"):
            ht.add_column(col, justify="right")
        for p in h["points"]:
            ht.add_row(_g(p["x"]), _g(p["ne"]), _g(p["predicted"]), f"{p['rel_error']:+.3%}",
                       f"{p['decades_beyond']:.2f}")
        console.print(ht)
    if doc.get("comparison"):
        ct = Table(title="Forms compared (lower AICc and held-out error are better)")
        for col in ("form", "converged", "AICc", "rms log resid", "held-out |rel err|"):
            ct.add_column(col, justify="left" if col == "form" else "right")
        for c in doc["comparison"]:
            ho = c.get("holdout_mean_abs_rel_error")
            ct.add_row(c["form"], "yes" if c["converged"] else "no", _g(c["aicc"]), _g(c["rms_log_residual"]),
                       "-" if ho is None else f"{ho:.3%}")
        console.print(ct)
    console.print(
        f"AIC {_g(doc['aic'])}, AICc {_g(doc['aicc'])}, rms log residual {_g(doc['rms_log_residual'])}; "
        f"bootstrap {doc['bootstrap']['used']}/{doc['bootstrap']['resamples']} converged, "
        f"seed {doc['bootstrap']['seed']}"
    )
    console.print(
        f"input {doc['input']['file']} sha256 {doc['input']['sha256']}; fitted {_dt.date.today().isoformat()}"
    )
    console.print(f"method: {doc['method']}")
    for w in doc.get("warnings", []):
        console.print(f"[yellow]warning:[/yellow] {w}")


@app.command("fit")
def fit(
    observations: Path = typer.Argument(
        ...,
        help="CSV with columns among run, component, samples, params, "
        "flops, ne (one row per run/evaluation).",
    ),
    x: str = typer.Option(
        None, "--x", help="Scale column: samples, params or flops (default: the only one; not with two_axis)."
    ),
    form: str = typer.Option(
        "power_plus_const",
        "--form",
        help="power_plus_const (NE = alpha*x^-beta + gamma), power_law, log_linear, or two_axis "
        "(NE = E + A/N^alpha + B/D^beta over the params and samples columns; no --x).",
    ),
    holdout_largest: int = typer.Option(
        0, "--holdout-largest", min=0, help="Hold out the K largest runs and report extrapolation error."
    ),
    bootstrap: int = typer.Option(
        1000, "--bootstrap", min=0, max=100_000, help="Bootstrap resamples of runs for intervals (0: none)."
    ),
    predict: str = typer.Option(
        None, "--predict", help="Comma-separated x values to predict NE at (N:D pairs for two_axis)."
    ),
    component: str = typer.Option(None, "--component", help="Use only rows of this component."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the bootstrap."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON document on stdout."),
) -> None:
    """Fit a scaling law of NE to training-run observations, with bootstrap intervals."""
    from calibration.scaling_fit import fit_observations, read_observations
    from planner.quality import AXES

    if form not in _FORMS:
        raise InputError(f"must be one of {', '.join(_FORMS)}, got {form!r}", file="--form")
    two_axis = form == "two_axis"
    if two_axis and x is not None:
        raise InputError(
            "not used with --form two_axis, which fits NE over the params (N) and samples (D) columns "
            "together; omit --x",
            file="--x",
        )
    xs = _parse_predict(predict, two_axis)
    obs = read_observations(str(observations), component=component)
    if two_axis:
        x = "params,samples"
    elif x is None:
        have = [a for a in AXES if a in obs.columns]
        if len(have) != 1:
            raise InputError(f"give --x (the file has {', '.join(have)})", file="--x")
        x = have[0]
    if not two_axis and x not in AXES:
        raise InputError(f"must be one of {', '.join(AXES)}, got {x!r}", file="--x")
    result = fit_observations(
        obs, x=x, form=form, n_bootstrap=bootstrap, seed=seed, holdout_largest=holdout_largest
    )
    doc = result.as_dict(xs)
    far = result.extrapolation_warning(doc["predictions"])
    if far:  # one line on stderr (the console does not wrap it); stdout stays the artifact
        err_console.print(f"warning: {far}", markup=False)
    if json_out:
        emit_json(doc)
    else:
        _render_fit(doc)


@app.command("presets")
def presets_cmd(json_out: bool = typer.Option(False, "--json", help="Print a JSON array.")) -> None:
    """List the shipped scaling-law presets with their metric, constants and provenance."""
    from planner.quality import FORM_FORMULA, presets

    rows = [
        {
            "name": p.name,
            "form": p.form,
            "formula": FORM_FORMULA[p.form],
            "metric": p.metric,
            "x": p.x,
            "x_unit": "pf_day" if p.x_scale != 1.0 else "count",
            "params": p.params,
            "source": p.source,
            "checked": p.checked,
            "note": p.note,
        }
        for p in presets().values()
    ]
    if json_out:
        emit_json(rows)
        return
    table = Table(title="Scaling-law presets (priors from papers; metrics differ: refit on your runs)")
    for col in ("name", "form", "metric", "x", "checked"):
        table.add_column(col, no_wrap=col == "name")
    for r in rows:
        x = f"{r['x']} (PF-days)" if r["x_unit"] == "pf_day" else (r["x"] or "N, D")
        table.add_row(r["name"], r["form"], r["metric"], x, "paper" if r["checked"] else "secondary")
    console.print(table)
    for r in rows:
        consts = (
            "form only" if r["params"] is None else ", ".join(f"{k}={v:.4g}" for k, v in r["params"].items())
        )
        console.print(f"[bold]{r['name']}[/bold]: {r['formula']}; {consts}")
        console.print(f"  source: {r['source']}" + (f"; {r['note']}" if r["note"] else ""))


def _study_summary(result: Any) -> dict[str, Any]:
    return {
        "bayes_ne": result.bayes_ne,
        "runs": len(result.rows),
        "seconds": result.seconds,
        "fits": result.fits,
    }


@app.command("study")
def study(
    out: Path = typer.Option(..., "--out", help="Observations CSV to write."),
    quick: bool = typer.Option(False, "--quick", help="A few minutes instead of tens of minutes."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seeds the teacher, the data and the models."),
    bootstrap: int = typer.Option(
        1000, "--bootstrap", min=0, max=100_000, help="Bootstrap resamples per fit."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the fitted exponents as one JSON document."),
) -> None:
    """Run the built-in DLRM scaling study on this CPU (needs torch), write observations, fit the laws."""
    from planner.io import check_output_file

    check_output_file(out)  # before minutes of training, not after
    try:
        import torch  # noqa: F401
    except ImportError:
        raise InputError("needs torch (pip install 'recplan[bench]')", file="study") from None
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from calibration.scaling_study import observations_csv, run_study
    from planner.io import atomic_write_text

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=err_console,
        transient=False,
    ) as bar:
        task = bar.add_task("generating data", total=None)
        # Off a terminal the bar is drawn only at the end: log one line per run instead.
        log_lines = not err_console.is_terminal

        def progress(desc: str, done: int, total: int) -> None:
            bar.update(task, description=desc[:60], completed=done, total=total)
            if log_lines:
                bar.console.print(f"[{done}/{total}] {desc}")

        def checkpoint(rows: list[dict[str, Any]]) -> None:
            atomic_write_text(out, observations_csv(rows))

        result = run_study(quick=quick, seed=seed, progress=progress, n_bootstrap=bootstrap,
                           on_rows=checkpoint)
    atomic_write_text(out, observations_csv(result.rows))
    err_console.print(
        f"wrote {len(result.rows)} observations to {out} in {result.seconds:.0f} s "
        f"({_dt.date.today().isoformat()})"
    )
    doc = _study_summary(result)
    if json_out:
        emit_json(doc)
        return
    table = Table(title=f"Study fits: NE = alpha*x^-beta + gamma (Bayes-optimal NE {result.bayes_ne:.4f})",
                  box=box.SIMPLE_HEAD, padding=(0, 1))
    for col in ("series", "x", "n", "NE first -> last", "beta [80%]", "gamma", "NE gain 10x [80%]", "fit"):
        table.add_column(col, justify="left" if col in ("series", "x", "fit") else "right",
                         no_wrap=not console.is_terminal or col in ("series", "x", "fit"))
    for comp, e in result.fits.items():
        ppc = e.get("power_plus_const", {})
        p = ppc.get("params") or {}
        ci = (ppc.get("ci") or {}).get("beta", {})
        gain = ppc.get("gain_10x") or {}
        beta = f"{_g3(p.get('beta'))} [{_g2(ci.get('lo80'))}, {_g2(ci.get('hi80'))}]" if p else "n/a"
        gain_s = (f"{_g3(gain.get('ne_gain'))} [{_g2(gain.get('lo80'))}, {_g2(gain.get('hi80'))}]"
                  if gain else "n/a")
        table.add_row(comp, e["x"], str(e["points"]), f"{e['ne_first']:.4f} -> {e['ne_last']:.4f}", beta,
                      _g3(p.get("gamma")), gain_s, "ok" if ppc.get("converged") else "refused")
    # A file or pipe has no width to respect (rich assumes 80): give the table room instead of wrapping cells.
    out = console if console.is_terminal else Console(file=console.file, width=max(console.width, 140),
                                                      highlight=False, soft_wrap=False)
    out.print(table)
    for comp, e in result.fits.items():
        ppc = e.get("power_plus_const", {})
        if not ppc.get("converged"):
            console.print(f"{comp}: fit refused: {ppc.get('message', '')}")
        h = ppc.get("holdout")
        if h:
            console.print(f"{comp}: largest {h['k']} runs held out, predicted {h['max_decades_beyond']:.2f} "
                          f"decades beyond the fit with mean |rel err| {h['mean_abs_rel_error']:.2%}")
        for w in ppc.get("warnings", []):
            console.print(f"[yellow]warning:[/yellow] {comp}: {w}")
