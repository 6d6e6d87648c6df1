"""DLRM workloads: load from YAML (preset name or file), validate, and derive per-sample figures.

A workload YAML follows DESIGN.md. Derived figures (all per training sample unless stated):

* parameters per component: ``embedding_params`` (rows x dim over all tables), ``bottom_mlp_params``,
  ``interaction_params`` (DCN cross layers: U (d x r), V (r x d) and a bias of d each), ``top_mlp_params``;
* ``lookups_per_sample``: sum of pooling over all tables;
* ``flops_per_sample``: forward + backward FLOPs of the dense part (MLPs, dot interaction or DCN cross
  layers), counting a multiply-add as 2 FLOPs and the backward pass as twice the forward (input and
  weight gradients). Embedding pooling sums are memory-bound and counted in bytes, not FLOPs.
* ``embedding_bytes_read_per_sample``: rows gathered in the forward pass (lookups x dim x element size).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from planner.errors import InputError
from planner.io import load_yaml_mapping, parse_yaml_text
from planner.model import AccessSpec, InteractionSpec, Workload
from planner.units import DTYPE_BYTES
from planner.validation import build, check_keys, require_mapping

_PRESET_PACKAGE = "planner.presets.workloads"
_TOP_KEYS = {"name", "description", "source", "model", "training"}
_MODEL_KEYS = {"dense_features", "bottom_mlp", "embedding_dim", "tables", "interaction", "top_mlp"}
#: Embedding tables in all (the sum of ``count``): published DLRMs have tens to about a thousand sparse
#: features; far more is a typo, and the planner's per-table work would take minutes at a million devices.
MAX_TABLES = 10_000


def preset_names() -> list[str]:
    """Names of the built-in workload presets, sorted."""
    folder = resources.files(_PRESET_PACKAGE)
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def _parse_access(value: Any, file: str | None) -> dict[str, Any]:
    field = "training.access"
    if isinstance(value, dict):
        return value
    if not isinstance(value, str):
        raise InputError(f"expected 'uniform' or 'zipf:<exponent>', got {value!r}", file=file, field=field)
    text = value.strip().lower()
    if text == "uniform":
        return {"kind": "uniform", "exponent": 0.0}
    if text.startswith("zipf:"):
        try:
            exponent = float(text.split(":", 1)[1])
        except ValueError:
            raise InputError(f"bad Zipf exponent in {value!r}", file=file, field=field) from None
        if not exponent > 0 or not math.isfinite(exponent):
            raise InputError(f"the Zipf exponent must be a positive number, got {value!r}", file=file,
                             field=field)
        return {"kind": "zipf", "exponent": exponent}
    raise InputError(f"unknown index distribution {value!r} (expected uniform or zipf:<exponent>)",
                     file=file, field=field)


def _parse_interaction(value: Any, file: str | None) -> dict[str, Any]:
    field = "model.interaction"
    if isinstance(value, str):
        if value in ("dot", "cat"):
            return {"kind": value}
        if value == "dcn":
            raise InputError("dcn needs its settings: {dcn: {cross_layers: N, low_rank: R}}", file=file,
                             field=field)
        raise InputError(f"unknown interaction {value!r} (expected dot, cat or dcn)", file=file, field=field)
    if isinstance(value, dict) and set(value) == {"dcn"}:
        inner = require_mapping(value["dcn"], file=file, field=f"{field}.dcn")
        check_keys(inner, {"cross_layers", "low_rank"}, file=file, field=f"{field}.dcn")
        return {"kind": "dcn", **inner}
    if isinstance(value, dict):
        return value
    raise InputError(f"expected dot, cat or {{dcn: {{...}}}}, got {value!r}", file=file, field=field)


def workload_from_mapping(data: Any, file: str | None = None) -> Workload:
    """Validate a workload mapping (as read from YAML) into a :class:`Workload`."""
    data = require_mapping(data, file=file, field=None)
    check_keys(data, _TOP_KEYS, file=file, field=None)
    for key in ("name", "model", "training"):
        if key not in data:
            raise InputError("required key is missing", file=file, field=key)
    model = dict(require_mapping(data["model"], file=file, field="model"))
    check_keys(model, _MODEL_KEYS, file=file, field="model")
    training = dict(require_mapping(data["training"], file=file, field="training"))
    if "interaction" in model:
        model["interaction"] = _parse_interaction(model["interaction"], file)
    else:
        model["interaction"] = {"kind": "dot"}
    if "access" in training:
        training["access"] = _parse_access(training["access"], file)
    else:
        training["access"] = {"kind": "uniform"}
    if isinstance(model.get("tables"), list) and not model["tables"]:
        raise InputError("at least one embedding table is required", file=file, field="model.tables")
    for key in ("bottom_mlp", "top_mlp"):
        if isinstance(model.get(key), list) and not model[key]:
            raise InputError("at least one layer is required", file=file, field=f"model.{key}")
    workload = build(Workload, {**data, "model": model, "training": training}, file=file)
    _check_consistency(workload, file)
    return workload


def _check_consistency(w: Workload, file: str | None) -> None:
    m = w.model
    inter = m.interaction
    tables = sum(t.count for t in m.tables)
    if tables > MAX_TABLES:
        raise InputError(f"{tables:,} embedding tables in all (the sum of count); at most {MAX_TABLES:,}",
                         file=file, field="model.tables")
    if inter.kind == "dot" and m.bottom_mlp[-1] != m.embedding_dim:
        raise InputError(
            f"the last bottom MLP width ({m.bottom_mlp[-1]}) must equal embedding_dim ({m.embedding_dim}) "
            "for the dot interaction",
            file=file, field="model.bottom_mlp",
        )
    if inter.kind == "dcn" and inter.cross_layers < 1:
        raise InputError("dcn needs at least one cross layer", file=file,
                         field="model.interaction.cross_layers")
    if inter.kind != "dcn" and (inter.cross_layers or inter.low_rank):
        raise InputError("cross_layers and low_rank apply to dcn only", file=file, field="model.interaction")
    if m.top_mlp[-1] != 1:
        raise InputError(f"the top MLP must end in one logit, got width {m.top_mlp[-1]}", file=file,
                         field="model.top_mlp")
    if w.training.access.kind == "zipf" and w.training.access.exponent <= 0:
        raise InputError("the Zipf exponent must be a positive number", file=file, field="training.access")
    if w.training.access.kind == "uniform" and w.training.access.exponent != 0:
        raise InputError("uniform access takes no exponent", file=file, field="training.access")


def load_workload(name_or_path: str | Path) -> Workload:
    """Load a workload by preset name or YAML path; raises ``InputError`` for anything malformed."""
    text = str(name_or_path)
    if text in preset_names():
        resource = resources.files(_PRESET_PACKAGE).joinpath(f"{text}.yaml")
        return workload_from_mapping(parse_yaml_text(resource.read_text("utf-8"), f"preset {text}"),
                                     f"preset {text}")
    path = Path(text)
    if not path.exists() and not text.endswith((".yaml", ".yml")) and "/" not in text:
        raise InputError(f"unknown workload preset (known: {', '.join(preset_names())})", file=text)
    return workload_from_mapping(load_yaml_mapping(path), str(path))


@dataclass(frozen=True)
class DerivedFigures:
    """Per-sample and whole-model figures derived from a workload (see the module docstring)."""

    embedding_params: int
    bottom_mlp_params: int
    interaction_params: int
    top_mlp_params: int
    dense_params: int
    total_params: int
    embedding_bytes: int
    dense_bytes: int
    lookups_per_sample: float
    tables: int
    interaction_width: int
    top_input_width: int
    flops_per_sample_forward: float
    flops_per_sample: float
    embedding_bytes_read_per_sample: float
    bytes_per_sample: float

    def as_dict(self) -> dict[str, Any]:
        """Plain dictionary of every figure, for JSON output."""
        return dict(self.__dict__)


def mlp_layer_shapes(input_width: int, widths: tuple[int, ...]) -> list[tuple[int, int]]:
    """(in, out) widths of each layer of an MLP with the given output widths."""
    shapes = []
    current = input_width
    for width in widths:
        shapes.append((current, width))
        current = width
    return shapes


def interaction_output_width(w: Workload) -> int:
    """Width of the vector the interaction hands to the top MLP."""
    m = w.model
    features = sum(t.count for t in m.tables) + 1  # the bottom MLP output counts as one feature
    if m.interaction.kind == "dot":
        return m.embedding_dim + features * (features - 1) // 2
    if m.interaction.kind == "cat":
        return m.bottom_mlp[-1] + (features - 1) * m.embedding_dim
    return m.bottom_mlp[-1] + (features - 1) * m.embedding_dim  # dcn keeps its input width


def derive(w: Workload) -> DerivedFigures:
    """Compute parameters, bytes, lookups and FLOPs per sample for a workload."""
    m = w.model
    d = m.embedding_dim
    n_tables = sum(t.count for t in m.tables)
    embedding_params = sum(t.rows * t.count for t in m.tables) * d
    bottom_shapes = mlp_layer_shapes(m.dense_features, m.bottom_mlp)
    bottom_params = sum(i * o + o for i, o in bottom_shapes)
    features = n_tables + 1
    inter_width = interaction_output_width(w)
    if m.interaction.kind == "dcn":
        r = m.interaction.low_rank or inter_width
        per_layer = ((2 * inter_width * r + inter_width) if m.interaction.low_rank
                     else (inter_width**2 + inter_width))
        interaction_params = m.interaction.cross_layers * per_layer
        # Each cross layer: x0 * (V(U x) + b) + x; matmuls dominate.
        interaction_macs = m.interaction.cross_layers * (
            2 * inter_width * r if m.interaction.low_rank else inter_width**2
        )
    elif m.interaction.kind == "dot":
        interaction_params = 0
        interaction_macs = features * features * d  # batched Z Z^T per sample
    else:
        interaction_params = 0
        interaction_macs = 0
    top_shapes = mlp_layer_shapes(inter_width, m.top_mlp)
    top_params = sum(i * o + o for i, o in top_shapes)
    dense_macs = sum(i * o for i, o in bottom_shapes) + sum(i * o for i, o in top_shapes) + interaction_macs
    forward_flops = 2.0 * dense_macs
    dense_params = bottom_params + interaction_params + top_params
    emb_elem = DTYPE_BYTES[w.training.embedding_precision]
    dense_elem = 4  # dense weights are kept in fp32 (autocast computes in lower precision)
    lookups = sum(t.pooling * t.count for t in m.tables)
    emb_read = lookups * d * emb_elem
    act_elem = DTYPE_BYTES[w.training.precision]
    activation_bytes = act_elem * (
        m.dense_features + sum(o for _, o in bottom_shapes) + sum(o for _, o in top_shapes)
        + n_tables * d + inter_width
    )
    return DerivedFigures(
        embedding_params=int(embedding_params),
        bottom_mlp_params=int(bottom_params),
        interaction_params=int(interaction_params),
        top_mlp_params=int(top_params),
        dense_params=int(dense_params),
        total_params=int(embedding_params + dense_params),
        embedding_bytes=int(embedding_params * emb_elem),
        dense_bytes=int(dense_params * dense_elem),
        lookups_per_sample=float(lookups),
        tables=int(n_tables),
        interaction_width=int(inter_width),
        top_input_width=int(inter_width),
        flops_per_sample_forward=forward_flops,
        flops_per_sample=3.0 * forward_flops,
        embedding_bytes_read_per_sample=float(emb_read),
        # forward gathers + backward sparse-gradient writes of the same rows, plus activations read, written
        bytes_per_sample=float(2 * emb_read + 2 * activation_bytes),
    )


def access_of(w: Workload) -> AccessSpec:
    """The workload's index distribution."""
    return w.training.access


def interaction_of(w: Workload) -> InteractionSpec:
    """The workload's interaction settings."""
    return w.model.interaction
