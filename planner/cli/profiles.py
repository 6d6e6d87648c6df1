"""``recplan profiles``: list, show, validate and derive hardware profiles."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from planner.cli.common import console, emit_json, err_console
from planner.errors import InputError
from planner.units import fmt_bytes, fmt_rate

app = typer.Typer(no_args_is_help=True, help="Hardware profiles: list, show, validate, derive.")


def _summary(profile) -> dict:
    from planner.hardware import figure_source

    def src(path: str) -> dict | None:
        found = figure_source(profile, path)
        if found is None:
            return None
        _key, fig = found
        return {"source": fig.source, "as_of": fig.as_of, "status": fig.status}

    return {
        "name": profile.name,
        "kind": profile.kind,
        "description": profile.description,
        "source": profile.source,
        "as_of": profile.as_of,
        "bf16_peak_flops": profile.peak_flops_for("bf16"),
        # the dtype that figure is (another where the profile lists no bf16 peak: fp16 on a V100)
        "bf16_peak_dtype": profile.peak_precision_for("bf16"),
        "hbm_bytes": profile.device.hbm_bytes,
        "hbm_bandwidth_bytes_per_s": profile.device.hbm_bandwidth_bytes_per_s,
        "intra_bandwidth_bytes_per_s": profile.node.intra_bandwidth_bytes_per_s,
        "devices_per_node": profile.node.devices,
        "usd_per_device_hour": profile.price.usd_per_device_hour,
        "calibrated": profile.calibration is not None,
        "derived_from": profile.derived_from.base if profile.derived_from else None,
        "sources": {
            "bf16_peak_flops": src(f"device.peak_flops.{profile.peak_precision_for('bf16')}"),
            "hbm_bytes": src("device.hbm_bytes"),
            "hbm_bandwidth_bytes_per_s": src("device.hbm_bandwidth_bytes_per_s"),
            "intra_bandwidth_bytes_per_s": src("node.intra_bandwidth_bytes_per_s"),
            "usd_per_device_hour": src("price.usd_per_device_hour"),
        },
    }


def _label(row: dict) -> str:
    return row["name"] + (" (calibrated)" if row["calibrated"] else "")


@app.command("list")
def list_profiles(json_out: bool = typer.Option(False, "--json", help="Print a JSON array.")) -> None:
    """List the shipped hardware profiles with their headline figures."""
    from planner.hardware import load_profile, preset_names

    rows = [_summary(load_profile(name)) for name in preset_names()]
    if json_out:
        emit_json(rows)
        return
    stand_ins = sorted({r["bf16_peak_dtype"] for r in rows} - {"bf16"})
    caption = "sources of every figure: recplan profiles show NAME (or --json)"
    if stand_ins:
        caption = (f"* no bf16 peak listed: the {' / '.join(stand_ins)} peak the planner prices bf16 at; "
                   + caption)
    table = Table(title="Hardware profiles (dense peaks; bandwidths per direction)", caption=caption)
    for col in ("name", "bf16 peak", "HBM", "HBM BW", "intra-node", "$/dev-h"):
        if col == "name":
            table.add_column(col, no_wrap=True, min_width=max(len(_label(r)) for r in rows))
        else:
            table.add_column(col, justify="right", no_wrap=True)
    for r in rows:
        price = r["usd_per_device_hour"]
        table.add_row(
            _label(r),
            fmt_rate(r["bf16_peak_flops"], "FLOP/s") + ("" if r["bf16_peak_dtype"] == "bf16" else "*"),
            fmt_bytes(r["hbm_bytes"]),
            fmt_rate(r["hbm_bandwidth_bytes_per_s"]),
            fmt_rate(r["intra_bandwidth_bytes_per_s"]),
            f"{price:.2f}" if price is not None else "n/a",
        )
    console.print(table)


def _status_of(profile) -> dict[str, str]:
    try:
        from planner.cost.registry import figure_status
    except ImportError:  # the cost registry is optional for showing a profile
        return {}
    return figure_status(profile)


@app.command("show")
def show(
    name: str = typer.Argument(..., help="Profile name or path to a profile YAML."),
    json_out: bool = typer.Option(False, "--json", help="Print the whole profile as JSON."),
) -> None:
    """Show every figure of a profile with its source, date and status (datasheet, measured, ...)."""
    from planner.hardware import figure_source, load_profile, numeric_paths, profile_to_mapping

    profile = load_profile(name)
    data = profile_to_mapping(profile)
    statuses = _status_of(profile)
    if json_out:
        data["figure_status"] = {
            path: statuses.get(path, (figure_source(profile, path) or ("", None))[1].status
                               if figure_source(profile, path) else "unknown")
            for path in numeric_paths(data)
        }
        emit_json(data)
        return
    console.print(f"[bold]{profile.name}[/bold] ({profile.kind}): {profile.description}")
    if profile.derived_from:
        changes = ", ".join(f"{k}: {v}" for k, v in profile.derived_from.changes.items())
        console.print(f"derived from [bold]{profile.derived_from.base}[/bold]: {changes}")
    table = Table(show_lines=False)
    for col in ("figure", "value", "status", "as of", "source"):
        table.add_column(col, overflow="fold")
    for path in numeric_paths(data):
        node = data
        for part in path.split("."):
            node = node[part]
        found = figure_source(profile, path)
        fig = found[1] if found else None
        status = statuses.get(path, fig.status if fig else "unknown")
        table.add_row(path, f"{node:.6g}" if isinstance(node, float) else str(node), status,
                      fig.as_of if fig else "", fig.source if fig else "")
    console.print(table)
    if profile.calibration:
        console.print("calibration: " + ", ".join(sorted(profile.calibration.get("families", {}))))


@app.command("validate")
def validate(file: Path = typer.Argument(..., help="Profile YAML to check.")) -> None:
    """Validate a profile file: schema, units, sources of every figure; exit 2 with one line if bad."""
    from planner.hardware import load_profile_mapping, profile_from_mapping

    if not file.exists():
        raise InputError("file not found", file=str(file))
    data, label = load_profile_mapping(file)
    profile = profile_from_mapping(data, label)
    err_console.print(f"{file}: ok ({profile.name}, {profile.kind})")


@app.command("derive")
def derive(
    name: str = typer.Argument(..., help="Base profile name or path."),
    sets: list[str] = typer.Option(..., "--set", help="figure=value (SI) or figure=xF to multiply; repeat."),
    new_name: str = typer.Option(..., "--name", help="Name of the hypothetical device."),
    out: Path = typer.Option(..., "--out", help="Where to write the new profile YAML."),
) -> None:
    """Write a hypothetical device derived from a profile, recording the base and exactly what changed."""
    from planner.hardware import derive_profile, profile_yaml
    from planner.io import atomic_write_text, check_output_file

    check_output_file(out)
    data = derive_profile(name, sets, new_name)
    atomic_write_text(out, profile_yaml(data))
    changes = data["derived_from"]["changes"]
    err_console.print(f"wrote {out}: {new_name} from {data['derived_from']['base']} "
                      + "; ".join(f"{k}: {v}" for k, v in changes.items()))
