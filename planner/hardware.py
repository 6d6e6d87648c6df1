"""Hardware profiles: load (preset name or YAML path), validate provenance, list and derive new devices.

A profile is one YAML file per system (device + node + network + price + efficiency) with a ``figures``
section naming the source and date of every figure. ``derive`` writes a hypothetical device from a base,
recording the base and exactly what changed; see :func:`derive_profile`.
"""

from __future__ import annotations

import copy
import datetime as _dt
import math
import re
from dataclasses import asdict
from importlib import resources
from pathlib import Path
from typing import Any

from planner.errors import InputError
from planner.io import dump_yaml, load_yaml_mapping, parse_yaml_text
from planner.model import HardwareProfile
from planner.validation import build, require_mapping

_PACKAGE = "hardware_profiles"
_SECTIONS = ("device", "node", "network", "price", "efficiency")
#: What a profile's ``name`` may be (the pattern of :class:`planner.model.HardwareProfile`).
_PROFILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,80}$")


def preset_names() -> list[str]:
    """Names of the shipped hardware profiles, sorted."""
    folder = resources.files(_PACKAGE)
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def numeric_paths(data: dict[str, Any], sections: tuple[str, ...] = _SECTIONS) -> list[str]:
    """Dotted paths of every numeric leaf under the given sections of a profile mapping."""
    out: list[str] = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{path}.{key}")
        elif isinstance(node, (int, float)) and not isinstance(node, bool):
            out.append(path)

    for section in sections:
        if section in data:
            walk(data[section], section)
    return out


def figure_source(profile: HardwareProfile, path: str) -> tuple[str, Any] | None:
    """The ``figures`` entry covering ``path`` (longest matching prefix), as ``(key, FigureSource)``."""
    parts = path.split(".")
    for n in range(len(parts), 0, -1):
        key = ".".join(parts[:n])
        if key in profile.figures:
            return key, profile.figures[key]
    return None


def profile_from_mapping(data: Any, file: str | None = None) -> HardwareProfile:
    """Validate a profile mapping into a :class:`HardwareProfile`, checking every figure has a source."""
    data = require_mapping(data, file=file, field=None)
    profile = build(HardwareProfile, data, file=file)
    for path in numeric_paths(data):
        if figure_source(profile, path) is None:
            raise InputError("figure has no source: add it (or a covering prefix) under 'figures'",
                             file=file, field=path)
    for key in profile.figures:
        root = key.split(".")[0]
        if root not in _SECTIONS:
            raise InputError(f"figures may only name paths under {', '.join(_SECTIONS)}", file=file,
                             field=f"figures.{key}")
    if not profile.device.peak_flops:
        raise InputError("at least one dtype peak is required", file=file, field="device.peak_flops")
    if profile.calibration is not None:
        from planner.cost.registry import validate_calibration

        validate_calibration(profile, file=file)
    return profile


def _preset_text(name: str) -> str:
    return resources.files(_PACKAGE).joinpath(f"{name}.yaml").read_text("utf-8")


def load_profile_mapping(name_or_path: str | Path) -> tuple[dict[str, Any], str]:
    """Raw mapping of a profile (preset or file) and the label used in error messages."""
    text = str(name_or_path)
    if text in preset_names():
        label = f"profile {text}"
        data = parse_yaml_text(_preset_text(text), label)
        return require_mapping(data, file=label, field=None), label
    path = Path(text)
    if not path.exists() and not text.endswith((".yaml", ".yml")) and "/" not in text:
        raise InputError(f"unknown hardware profile (known: {', '.join(preset_names())})", file=text)
    return load_yaml_mapping(path), str(path)


def load_profile(name_or_path: str | Path) -> HardwareProfile:
    """Load and validate a hardware profile by shipped name or YAML path."""
    data, label = load_profile_mapping(name_or_path)
    return profile_from_mapping(data, label)


def profile_to_mapping(profile: HardwareProfile) -> dict[str, Any]:
    """Plain mapping of a profile (the YAML/JSON shape), dropping empty optional sections."""
    data = asdict(profile)
    for key in ("calibration", "derived_from"):
        if data.get(key) is None:
            data.pop(key, None)
    return data


def _parse_set(expr: str) -> tuple[str, str]:
    if "=" not in expr:
        raise InputError("expected key=value (for example device.hbm_bandwidth_bytes_per_s=x2)",
                         file="--set", field=expr)
    key, value = expr.split("=", 1)
    return key.strip(), value.strip()


def _new_value(old: Any, value: str, key: str) -> float | int:
    text = value.lower()
    try:
        if text.startswith(("x", "*")):
            factor = float(text[1:])
            if not math.isfinite(factor) or factor <= 0:
                raise ValueError
            new = old * factor
        else:
            new = float(value)
            if not math.isfinite(new):
                raise ValueError
    except (TypeError, ValueError):
        raise InputError(f"expected a finite number or a positive factor like x2, got {value!r}",
                         file="--set", field=key) from None
    if isinstance(old, int) and not isinstance(old, bool) and float(new).is_integer():
        return int(new)
    return new


def derive_profile(base: str, sets: list[str], name: str, *, today: str | None = None) -> dict[str, Any]:
    """Derive a hypothetical profile from ``base`` by setting figures; returns the validated mapping.

    Each ``--set`` is ``path=value`` (absolute, SI) or ``path=xF`` (multiply by F). The result records
    ``derived_from: {base, changes}``, marks each changed figure ``status: derived`` with its base value,
    and keeps every unchanged figure's source. Calibrated efficiencies are kept; the cost models scale
    them with the changed datasheet figures (see ``planner.cost``).
    """
    if not sets:
        raise InputError("nothing to change: give at least one --set key=value", file="--set")
    if not isinstance(name, str) or not _PROFILE_NAME.match(name):
        raise InputError(f"must be letters, digits, '.', '_' or '-' (at most 81, starting with a letter or "
                         f"digit), got {name!r}", file="--name")
    data, _label = load_profile_mapping(base)
    base_profile = profile_from_mapping(copy.deepcopy(data), _label)
    data = copy.deepcopy(data)
    date = today or _dt.date.today().isoformat()
    changes: dict[str, str] = {}
    figures = dict(data.get("figures", {}))
    for expr in sets:
        key, value = _parse_set(expr)
        parts = key.split(".")
        if parts[0] not in _SECTIONS or len(parts) < 2:
            raise InputError(f"can only set figures under {', '.join(_SECTIONS)}", file="--set", field=key)
        node = data
        for part in parts[:-1]:
            if not isinstance(node, dict) or part not in node or not isinstance(node[part], dict):
                raise InputError("no such figure in the base profile", file="--set", field=key)
            node = node[part]
        leaf = parts[-1]
        old = node.get(leaf) if isinstance(node, dict) else None
        if leaf not in node or isinstance(old, (dict, list, bool)) \
                or not isinstance(old, (int, float, type(None))):
            raise InputError("no such numeric figure in the base profile", file="--set", field=key)
        new = _new_value(old if old is not None else 0.0, value, key)
        node[leaf] = new
        changes[key] = f"{old!r} -> {new!r}"
        figures[key] = {
            "source": f"hypothetical: derived from {base_profile.name} ({key} was {old!r})",
            "as_of": date,
            "status": "derived",
        }
    data["name"] = name
    data["description"] = f"Hypothetical device derived from {base_profile.name}: " + ", ".join(
        f"{k}={v.split(' -> ')[1]}" for k, v in changes.items()
    )
    data["source"] = f"derived from {base_profile.name} by recplan profiles derive"
    data["as_of"] = date
    data["figures"] = figures
    prior = data.get("derived_from")
    if prior:
        merged = dict(prior.get("changes", {}))
        merged.update(changes)
        data["derived_from"] = {"base": prior.get("base", base_profile.name), "changes": merged}
    else:
        data["derived_from"] = {"base": base_profile.name, "changes": changes}
    profile_from_mapping(copy.deepcopy(data), f"derived {name}")
    return data


def profile_yaml(data: dict[str, Any]) -> str:
    """Serialise a profile mapping as YAML in the canonical section order."""
    order = ["name", "kind", "description", "source", "as_of", "derived_from", "device", "node", "network",
             "price", "efficiency", "calibration", "figures"]
    ordered = {k: data[k] for k in order if k in data}
    ordered.update({k: v for k, v in data.items() if k not in ordered})
    return dump_yaml(ordered)
