"""``recplan workloads``: list, show and validate DLRM workloads."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from planner.cli.common import console, emit_json, err_console
from planner.errors import InputError
from planner.units import fmt_bytes, fmt_count

app = typer.Typer(no_args_is_help=True, help="DLRM workloads: list, show, validate.")


def _document(workload) -> dict:
    from dataclasses import asdict

    from planner.workload import derive

    doc = asdict(workload)
    doc.update(derive(workload).as_dict())
    return doc


@app.command("list")
def list_workloads(json_out: bool = typer.Option(False, "--json", help="Print a JSON array.")) -> None:
    """List the built-in workload presets with their size."""
    from planner.workload import derive, load_workload, preset_names

    rows = []
    for name in preset_names():
        w = load_workload(name)
        d = derive(w)
        rows.append({"name": name, "description": w.description, "source": w.source,
                     "tables": d.tables, "embedding_params": d.embedding_params,
                     "dense_params": d.dense_params, "embedding_bytes": d.embedding_bytes,
                     "lookups_per_sample": d.lookups_per_sample, "flops_per_sample": d.flops_per_sample,
                     "batch_size": w.training.batch_size})
    if json_out:
        emit_json(rows)
        return
    table = Table(title="Workload presets")
    for col in ("name", "tables", "embedding params", "embedding bytes", "dense params", "lookups/sample",
                "FLOP/sample", "batch"):
        if col == "name":
            table.add_column(col, no_wrap=True, min_width=max(len(r["name"]) for r in rows))
        else:
            table.add_column(col, justify="right")
    for r in rows:
        table.add_row(r["name"], str(r["tables"]), fmt_count(r["embedding_params"]),
                      fmt_bytes(r["embedding_bytes"]), fmt_count(r["dense_params"]),
                      f"{r['lookups_per_sample']:g}", fmt_count(r["flops_per_sample"]), str(r["batch_size"]))
    console.print(table)


@app.command("show")
def show(
    name: str = typer.Argument(..., help="Preset name or path to a workload YAML."),
    json_out: bool = typer.Option(False, "--json", help="Print the workload and derived figures as JSON."),
) -> None:
    """Show a workload with its derived figures (parameters, bytes, lookups and FLOPs per sample)."""
    from planner.workload import load_workload

    doc = _document(load_workload(name))
    if json_out:
        emit_json(doc)
        return
    m, t = doc["model"], doc["training"]
    console.print(f"[bold]{doc['name']}[/bold]: {doc['description']}")
    inter = m["interaction"]
    inter_text = inter["kind"] + (f" ({inter['cross_layers']} layers, rank {inter['low_rank']})"
                                  if inter["kind"] == "dcn" else "")
    console.print(f"bottom MLP {m['dense_features']}-{'-'.join(map(str, m['bottom_mlp']))}, "
                  f"dim {m['embedding_dim']}, {doc['tables']} tables, interaction {inter_text}, "
                  f"top MLP {'-'.join(map(str, m['top_mlp']))}")
    access = t["access"]["kind"]
    if access == "zipf":
        access += ":" + format(t["access"]["exponent"], "g")
    console.print(f"batch {t['batch_size']}, {t['precision']}, {t['optimizer']}, access {access}, "
                  f"{fmt_count(t['samples'])} samples x {t['epochs']:g} epochs")
    table = Table(show_header=True)
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key in ("embedding_params", "bottom_mlp_params", "interaction_params", "top_mlp_params",
                "dense_params", "embedding_bytes", "lookups_per_sample", "flops_per_sample",
                "bytes_per_sample"):
        value = doc[key]
        table.add_row(key, fmt_bytes(value) if key.endswith("bytes") or key == "bytes_per_sample"
                      else f"{value:,.0f}" if key != "lookups_per_sample" else f"{value:g}")
    console.print(table)


@app.command("validate")
def validate(file: Path = typer.Argument(..., help="Workload YAML to check.")) -> None:
    """Validate a workload file; exit 2 with one line naming the field if it is bad."""
    from planner.io import load_yaml_mapping
    from planner.workload import workload_from_mapping

    if not file.exists():
        raise InputError("file not found", file=str(file))
    w = workload_from_mapping(load_yaml_mapping(file), str(file))
    err_console.print(f"{file}: ok ({w.name})")
