"""Hardware profiles: load (preset name or YAML path), validate provenance, list and derive new devices.

A profile is one YAML file per system (device + node + network + price + efficiency) with a ``figures``
section naming the source and date of every figure. ``derive`` writes a hypothetical device from a base,
recording the base and exactly what changed; see :func:`derive_profile`.
"""

from __future__ import annotations

import copy
import datetime as _dt
import difflib
import functools
import math
import re
import typing
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
#: What a profile name may be (:data:`_PROFILE_NAME`), as told to the user.
PROFILE_NAME_RULE = "letters, digits, '.', '_' or '-' (at most 81, starting with a letter or digit)"


def is_profile_name(name: object) -> bool:
    """Whether ``name`` is a valid profile name (:data:`PROFILE_NAME_RULE`)."""
    return isinstance(name, str) and _PROFILE_NAME.match(name) is not None


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


@functools.cache
def schema_paths() -> tuple[frozenset[str], frozenset[str]]:
    """``(numeric, groups)``: dotted paths of the schema's numeric fields and of its dict-valued groups.

    A group (``device.peak_flops``) contributes one numeric path per allowed key (``device.peak_flops.bf16``).
    """
    sections = typing.get_type_hints(HardwareProfile)
    numeric: set[str] = set()
    groups: set[str] = set()
    for section in _SECTIONS:
        for field_name, hint in typing.get_type_hints(sections[section]).items():
            path = f"{section}.{field_name}"
            if typing.get_origin(hint) is dict:
                groups.add(path)
                numeric.update(f"{path}.{key}" for key in typing.get_args(typing.get_args(hint)[0]))
            else:
                numeric.add(path)
    return frozenset(numeric), frozenset(groups)


@functools.cache
def _figure_keys() -> tuple[list[str], frozenset[str]]:
    """``(known, covering)``: the sorted paths a ``figures`` key may name (schema fields, groups and
    ``efficiency.<family>``), and those with every prefix of them (a key covers every path it prefixes,
    as :func:`figure_source` reads it, so a whole section or group is a source too)."""
    from planner.cost.registry import FAMILIES

    numeric, groups = schema_paths()
    known = numeric | groups | {f"efficiency.{family}" for family in FAMILIES}
    parts = [path.split(".") for path in known]
    covering = {".".join(p[:n]) for p in parts for n in range(1, len(p) + 1)}
    return sorted(known), frozenset(covering)


def _check_figure_key(key: str, file: str | None) -> None:
    """Refuse a ``figures`` key that names no field of the schema (a typo would silently source nothing).

    A key may name a field, a group or a prefix of them (a whole section: it sources every figure under
    it, as :func:`figure_source` reads it). Besides the schema's own paths, ``efficiency.<family>`` names
    a cost-model family fitted by ``recplan calibrate`` (a group source for that family's parameters).
    """
    field = f"figures.{key}"
    section = key.split(".")[0]
    if section not in _SECTIONS:
        raise InputError(f"figures may only name paths under {', '.join(_SECTIONS)}", file=file, field=field)
    known, covering = _figure_keys()
    if key in covering:
        return
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.8)
    hint = f" (did you mean {close[0]}?)" if close else ""
    raise InputError(f"unknown figure: no such field in a hardware profile{hint}", file=file, field=field)


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
    # Keys first: a misspelt key is the likelier cause of a figure that then has no source.
    for key in profile.figures:
        _check_figure_key(key, file)
    for path in numeric_paths(data):
        if figure_source(profile, path) is None:
            raise InputError("figure has no source: add it (or a covering prefix) under 'figures'",
                             file=file, field=path)
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


def _parse_sets(sets: list[str]) -> list[tuple[str, str]]:
    """Split each ``--set`` into ``(path, value)``, refusing a path given twice (factors would compound)."""
    parsed: list[tuple[str, str]] = []
    for expr in sets:
        key, value = _parse_set(expr)
        if any(key == seen for seen, _ in parsed):
            raise InputError("given more than once: set each figure once", file="--set", field=key)
        parsed.append((key, value))
    return parsed


def _settable_leaf(data: dict[str, Any], key: str) -> tuple[dict[str, Any], str, Any]:
    """The mapping that holds figure ``key`` in a profile mapping, and the figure's name in it.

    The figure may be null or absent in the base where the schema defines it (an optional figure such as
    ``price.usd_per_device_hour``, or a dtype the base device lacks); it must be a number, not a group.
    """
    parts = key.split(".")
    if parts[0] not in _SECTIONS or len(parts) < 2:
        raise InputError(f"can only set figures under {', '.join(_SECTIONS)}", file="--set", field=key)
    node: Any = data
    for part in parts[:-1]:
        if not isinstance(node, dict) or part not in node or not isinstance(node[part], dict):
            raise InputError("no such figure in the base profile", file="--set", field=key)
        node = node[part]
    leaf = parts[-1]
    old = node.get(leaf)
    is_number = isinstance(old, (int, float)) and not isinstance(old, bool)
    if not is_number and not (old is None and key in schema_paths()[0]):
        raise InputError("no such numeric figure in the base profile", file="--set", field=key)
    return node, leaf, old


def _new_value(old: float | None, value: str, key: str, base_name: str) -> float | int:
    """The figure ``--set key=value`` gives: ``value`` (SI) or ``old`` times a factor ``xF``/``*F``.

    ``old`` is the base's value, ``None`` where the base has none; scaling that is refused, since reading
    an unknown figure as zero would, for instance, make an unpriced device free.
    """
    scale = value.lower().startswith(("x", "*"))
    if scale and old is None:
        raise InputError(f"the base profile {base_name} has no value to scale; give an absolute value",
                         file="--set", field=key)
    try:
        if scale:
            factor = float(value[1:])
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

    Each ``--set`` is ``path=value`` (absolute, SI) or ``path=xF`` (multiply the base's value by F; refused
    where the base has no value); each path at most once. The result records ``derived_from: {base,
    changes}`` with every change as ``"base value -> new value"`` (for a profile derived from a derived one,
    the original base's value), marks each changed figure ``status: derived`` with its base value, and keeps
    every unchanged figure's source. Calibrated efficiencies are kept; the cost models scale them with the
    changed datasheet figures (see ``planner.cost``).
    """
    if not sets:
        raise InputError("nothing to change: give at least one --set key=value", file="--set")
    if not is_profile_name(name):
        raise InputError(f"must be {PROFILE_NAME_RULE}, got {name!r}", file="--name")
    parsed = _parse_sets(sets)
    data, _label = load_profile_mapping(base)
    base_profile = profile_from_mapping(copy.deepcopy(data), _label)
    data = copy.deepcopy(data)
    date = today or _dt.date.today().isoformat()
    changes: dict[str, tuple[str, str]] = {}  # each figure's (base value, new value), as written
    figures = dict(data.get("figures", {}))
    for key, value in parsed:
        node, leaf, old = _settable_leaf(data, key)
        new = _new_value(old, value, key, base_profile.name)
        node[leaf] = new
        changes[key] = (repr(old), repr(new))
        figures[key] = {
            "source": f"hypothetical: derived from {base_profile.name} ({key} was {old!r})",
            "as_of": date,
            "status": "derived",
        }
    data["name"] = name
    data["description"] = f"Hypothetical device derived from {base_profile.name}: " + ", ".join(
        f"{k}={new}" for k, (_old, new) in changes.items()
    )
    data["source"] = f"derived from {base_profile.name} by recplan profiles derive"
    data["as_of"] = date
    data["figures"] = figures
    prior = data.get("derived_from") or {}
    # A figure changed again keeps the original base's value: the record is always "base -> final".
    merged = dict(prior.get("changes", {}))
    for key, (old_text, new_text) in changes.items():
        if key in merged:
            old_text = merged[key].split(" -> ")[0]
        merged[key] = f"{old_text} -> {new_text}"
    data["derived_from"] = {"base": prior.get("base", base_profile.name), "changes": merged}
    profile_from_mapping(copy.deepcopy(data), f"derived {name}")
    return data


def profile_yaml(data: dict[str, Any]) -> str:
    """Serialise a profile mapping as YAML in the canonical section order."""
    order = ["name", "kind", "description", "source", "as_of", "derived_from", "device", "node", "network",
             "price", "efficiency", "calibration", "figures"]
    ordered = {k: data[k] for k in order if k in data}
    ordered.update({k: v for k, v in data.items() if k not in ordered})
    return dump_yaml(ordered)
