"""What-if scenarios: parse and validate a scenario YAML into a fully resolved :class:`Scenario`.

A scenario (DESIGN.md, "Scenario YAML") names a workload, an optional ``model_scale`` knob, a quality law,
a sweep over hardware x device counts x batch sizes x data sizes, constraints and economic overrides::

    name: next-year
    workload: dlrm-dcnv2-multihot        # preset name, file path (relative to the scenario) or a mapping
    model_scale: [1, 2]                  # optional, default 1
    quality: {law: {form: power_plus_const, x: samples, alpha: 2.0, beta: 0.25, gamma: 0.70}}
    sweep:
      hardware: [h100-sxm-80gb, b200, ./future-device.yaml]   # names or profile paths (relative)
      devices: [8, 16, 64]
      batch_size: [65536]                # optional, default the workload's global batch
      samples: [1.0e9, 4.0e9]            # optional: total samples seen; default samples x epochs
    constraints: {max_days: 7, max_cost_usd: 50000, target_ne: 0.72, must_fit_memory: true}
    overrides: {price_usd_per_device_hour: {h100-sxm-80gb: 3.0}, power_w: {b200: 1000}, pue: 1.2,
                grid_kg_co2_per_kwh: 0.4}
    objective: cost                      # optional: cost | time | ne | quality_per_dollar
    simulation: {steps: 20, seed: 0, sharding: auto}   # optional simulator settings

Semantics (units are SI unless the key says otherwise):

* ``sweep.samples`` are total samples seen in training, every epoch counted (DESIGN.md: "default: the
  workload's samples x epochs"): they are not multiplied by the workload's ``epochs``, so ``samples:
  [1.0e9]`` with ``epochs: 3`` trains on 1e9 samples, about a third of them per pass. Without
  ``sweep.samples`` the one data size is the workload's ``training.samples`` (per epoch) x
  ``training.epochs``. Time-to-train is ``samples seen / throughput``, and a quality law over samples or
  FLOPs is evaluated at the samples seen.
* ``model_scale: s`` multiplies every embedding table's rows by ``s`` (rounded, at least 1) and every hidden
  MLP width by ``sqrt(s)`` (rounded, at least 1), so embedding and dense parameter counts both grow about
  ``s``-fold. The widths that fix the architecture stay: the bottom MLP's last width (it must equal
  ``embedding_dim`` for the dot interaction), the top MLP's final logit, the embedding dimension and the
  number of tables.
* Prices: ``overrides.price_usd_per_device_hour`` (keyed by profile name, or by the sweep entry as written)
  wins over the profile's list price. A profile without a list price (``price: null``, e.g. ``gb200``) and
  without an override is an input error (exit 2) naming the sweep entry: a cost of zero or "unknown" would
  silently corrupt the frontier, so the planner asks for the price instead.
* ``overrides.power_w`` is one number for every device or a mapping by name; default the profile's
  ``device.power_w`` (the accelerator's TDP; host CPUs, NICs and switches are not counted).
  ``overrides.pue`` (power usage effectiveness, >= 1) defaults to 1.0, i.e. device energy only.
  ``grid_kg_co2_per_kwh`` is optional; without it no CO2 figure is reported.
* Constraints: ``must_fit_memory`` defaults to true; the others are off unless given.

Every problem is an :class:`~planner.errors.InputError` naming the scenario file and the field path
(``sweep.devices[2]``). Unknown keys, wrong types, NaN, infinities and negative numbers are refused.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from planner.errors import InputError
from planner.hardware import figure_source, load_profile, preset_names
from planner.io import load_yaml_mapping, to_json
from planner.model import HardwareProfile, Workload
from planner.validation import check_keys, require_mapping

#: Objectives the options can be ranked by (the recommendation is the best feasible option).
OBJECTIVES = ("cost", "time", "ne", "quality_per_dollar")
SHARDINGS = ("auto", "table", "row", "column", "data")
#: Guards against typos of extra zeros; the planner itself has no hard limit.
MAX_OPTIONS = 1_000_000
MAX_DEVICES = 1_000_000
MAX_MODEL_SCALE = 1e4
#: The profile schema's bounds (planner.model PriceSpec, DeviceSpec), so an override cannot overflow a cost.
MAX_PRICE_USD_PER_DEVICE_HOUR = 1e5
MAX_POWER_W = 1e5

_TOP_KEYS = {
    "name",
    "description",
    "workload",
    "model_scale",
    "quality",
    "sweep",
    "constraints",
    "overrides",
    "objective",
    "simulation",
}
_SWEEP_KEYS = {"hardware", "devices", "batch_size", "samples"}
_CONSTRAINT_KEYS = {"max_days", "max_cost_usd", "target_ne", "must_fit_memory"}
_OVERRIDE_KEYS = {"price_usd_per_device_hour", "power_w", "pue", "grid_kg_co2_per_kwh"}
_SIM_KEYS = {"steps", "seed", "sharding"}


@dataclass(frozen=True)
class Provenance:
    """Where one input figure comes from: a source text, its date and status (datasheet, override, ...)."""

    source: str
    as_of: str
    status: str

    def to_dict(self) -> dict[str, str]:
        """Plain mapping for JSON."""
        return {"source": self.source, "as_of": self.as_of, "status": self.status}


@dataclass(frozen=True)
class HardwareChoice:
    """One sweep entry: the profile, where it came from, and its resolved price and power.

    ``price_usd_per_device_hour`` is US dollars per device-hour, ``power_w`` watts per device.
    """

    entry: str
    origin: str
    profile: HardwareProfile
    price_usd_per_device_hour: float
    price: Provenance
    power_w: float
    power: Provenance

    @property
    def name(self) -> str:
        """The profile's name (what options and tables show)."""
        return self.profile.name


@dataclass(frozen=True)
class ScaledWorkload:
    """The workload at one ``model_scale`` (1 is the workload as given)."""

    scale: float
    workload: Workload


@dataclass(frozen=True)
class Constraints:
    """Limits an option must meet to be feasible; ``None`` means no limit."""

    max_days: float | None = None
    max_cost_usd: float | None = None
    target_ne: float | None = None
    must_fit_memory: bool = True

    def to_dict(self) -> dict[str, Any]:
        """Plain mapping for JSON."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Economics:
    """Facility figures shared by every option: PUE (dimensionless) and grid intensity (kg CO2 per kWh)."""

    pue: float = 1.0
    pue_source: str = "default: 1.0 (device energy only; set overrides.pue)"
    grid_kg_co2_per_kwh: float | None = None


@dataclass(frozen=True)
class SimulationSettings:
    """Simulator settings used for every option (steps per simulation, seed, sharding strategy)."""

    steps: int = 20
    seed: int = 0
    sharding: str = "auto"


@dataclass(frozen=True)
class Scenario:
    """A parsed, validated and resolved what-if scenario (see the module docstring for the semantics).

    ``samples`` are the data sizes of the sweep as total samples seen in training; ``epochs`` and
    ``samples_per_epoch`` are the workload's own ``training.epochs`` and ``training.samples`` (the default
    data size is their product).
    """

    name: str
    description: str
    file: str
    base_dir: Path
    sha256: str
    workload_ref: str
    workloads: tuple[ScaledWorkload, ...]
    quality_spec: dict[str, Any]
    law: Any
    hardware: tuple[HardwareChoice, ...]
    devices: tuple[int, ...]
    batch_sizes: tuple[int, ...]
    samples: tuple[float, ...]
    epochs: float
    samples_per_epoch: float
    constraints: Constraints
    economics: Economics
    objective: str
    simulation: SimulationSettings
    raw: dict[str, Any]

    @property
    def quality_field(self) -> str:
        """The field path of the scenario's law, for messages: ``quality.law``, ``quality.preset`` or
        ``quality.fit``."""
        return _quality_field(self.quality_spec)

    @property
    def law_name(self) -> str:
        """The law for people: ``preset hstu_2024_ranking``, ``the law fitted to runs.csv``, ``the inline
        law``."""
        spec = self.quality_spec
        if "preset" in spec:
            return f"preset {spec['preset']}"
        if "fit" in spec:
            return f"the law fitted to {spec['fit']}"
        return "the inline law"

    @property
    def option_count(self) -> int:
        """Number of options the sweep spans."""
        return (
            len(self.hardware)
            * len(self.workloads)
            * len(self.devices)
            * len(self.batch_sizes)
            * len(self.samples)
        )


# ------------------------------------------------------------------------------------------- primitives
def _fail(problem: str, file: str, field: str | None) -> InputError:
    return InputError(problem, file=file, field=field)


def _number(
    value: Any,
    file: str,
    field: str,
    *,
    positive: bool = True,
    minimum: float | None = None,
    maximum: float | None = None,
) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(f"must be a number, got {value!r}", file, field)
    v = float(value)
    if not math.isfinite(v):
        raise _fail(f"must be a finite number, got {value!r}", file, field)
    if positive and v <= 0:
        raise _fail(f"must be positive, got {value!r}", file, field)
    if not positive and v < 0:
        raise _fail(f"must not be negative, got {value!r}", file, field)
    if minimum is not None and v < minimum:
        raise _fail(f"must be at least {minimum:g}, got {value!r}", file, field)
    if maximum is not None and v > maximum:
        raise _fail(f"must be at most {maximum:g}, got {value!r}", file, field)
    return v


def _integer(value: Any, file: str, field: str, *, maximum: int) -> int:
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(f"must be a whole number, got {value!r}", file, field)
    if not 1 <= value <= maximum:
        raise _fail(f"must be between 1 and {maximum:g}, got {value}", file, field)
    return value


def _as_list(value: Any, file: str, field: str) -> list[Any]:
    if isinstance(value, (list, tuple)):
        if not value:
            raise _fail("must not be empty", file, field)
        return list(value)
    if isinstance(value, dict) or value is None:
        raise _fail(f"expected a value or a list of values, got {value!r}", file, field)
    return [value]


def _unique(values: list[Any], file: str, field: str) -> None:
    seen: set[Any] = set()
    for i, v in enumerate(values):
        if v in seen:
            raise _fail(f"duplicate value {v!r}", file, f"{field}[{i}]")
        seen.add(v)


# ------------------------------------------------------------------------------------------- workload
def scale_workload(workload: Workload, scale: float) -> Workload:
    """The workload with embedding rows x ``scale`` and hidden MLP widths x ``sqrt(scale)`` (see module doc).

    Raises:
        InputError: when the scaled model is out of the workload schema's bounds.
    """
    from planner.validation import build

    if scale == 1:
        return workload
    data = dataclasses.asdict(workload)
    model = data["model"]
    model["tables"] = [{**t, "rows": max(1, round(t["rows"] * scale))} for t in model["tables"]]
    width = math.sqrt(scale)
    bottom = list(model["bottom_mlp"])
    model["bottom_mlp"] = [max(1, round(w * width)) for w in bottom[:-1]] + [bottom[-1]]
    top = list(model["top_mlp"])
    model["top_mlp"] = [max(1, round(w * width)) for w in top[:-1]] + [top[-1]]
    data["name"] = f"{workload.name}@x{scale:g}"
    return build(Workload, data, file=None)


def _load_workload(value: Any, file: str, base_dir: Path) -> tuple[Workload, str]:
    from planner.workload import load_workload, preset_names, workload_from_mapping

    if isinstance(value, dict):
        try:
            return workload_from_mapping(value, file), "inline"
        except InputError as exc:
            raise InputError(
                exc.problem, file=file, field=f"workload.{exc.field}" if exc.field else "workload"
            ) from None
    if not isinstance(value, str) or not value:
        raise _fail(
            "must be a workload preset name, a file path or an inline workload mapping", file, "workload"
        )
    if value in preset_names():
        return load_workload(value), f"preset {value}"
    path = Path(value)
    if not path.is_absolute():
        path = base_dir / path
    if not path.exists():
        if "/" not in value and not value.endswith((".yaml", ".yml")):
            raise _fail(
                f"unknown workload preset {value!r} (known: {', '.join(preset_names())})", file, "workload"
            )
        raise _fail(f"workload file not found: {path}", file, "workload")
    return load_workload(path), str(path)


# ------------------------------------------------------------------------------------------- hardware
def _load_hardware(entry: Any, file: str, field: str, base_dir: Path) -> tuple[HardwareProfile, str]:
    if not isinstance(entry, str) or not entry:
        raise _fail(f"must be a profile name or a profile file path, got {entry!r}", file, field)
    if entry in preset_names():
        return load_profile(entry), f"preset {entry}"
    path = Path(entry)
    if not path.is_absolute():
        path = base_dir / path
    if not path.exists():
        if "/" not in entry and not entry.endswith((".yaml", ".yml")):
            raise _fail(
                f"unknown hardware profile {entry!r} (known: {', '.join(preset_names())})", file, field
            )
        raise _fail(f"hardware profile file not found: {path}", file, field)
    return load_profile(path), str(path)


def _source_of(profile: HardwareProfile, path: str) -> Provenance:
    found = figure_source(profile, path)
    if found is None:
        return Provenance(f"profile {profile.name}", profile.as_of, "unverified")
    _key, fig = found
    return Provenance(fig.source, fig.as_of, fig.status)


def _per_name(
    value: Any,
    file: str,
    field: str,
    entries: list[tuple[str, str]],
    *,
    allow_scalar: bool,
    minimum: float | None = None,
    maximum: float | None = None,
) -> dict[str, float] | float | None:
    """A per-hardware override mapping (keys: profile names or sweep entries), or one number for all."""
    if value is None:
        return None
    if allow_scalar and not isinstance(value, dict):
        return _number(value, file, field, minimum=minimum, maximum=maximum)
    mapping = require_mapping(value, file=file, field=field)
    known = {n for pair in entries for n in pair}
    out: dict[str, float] = {}
    for key, v in mapping.items():
        if key not in known:
            names = ", ".join(sorted({name for name, _ in entries}))
            raise _fail(f"{key!r} is not in sweep.hardware ({names})", file, f"{field}.{key}")
        out[key] = _number(v, file, f"{field}.{key}", positive=False, maximum=maximum)
    return out


def _lookup(table: dict[str, float] | None, name: str, entry: str) -> float | None:
    if not table:
        return None
    if name in table:
        return table[name]
    return table.get(entry)


# ------------------------------------------------------------------------------------------- scenario
def _hash(data: Any) -> str:
    return hashlib.sha256(to_json(data).encode("utf-8")).hexdigest()


def scenario_from_mapping(
    data: Any, file: str, base_dir: Path | None = None, *, law_loader: Any = None
) -> Scenario:
    """Validate a scenario mapping into a resolved :class:`Scenario`.

    Args:
        data: the mapping as read from YAML.
        file: the scenario's file name (for error messages and provenance).
        base_dir: folder that relative paths are resolved against (default: the file's folder).
        law_loader: ``(spec, base_dir=..., file=...) -> QualityLaw``; default
            :func:`planner.quality.law_from_spec`.

    Raises:
        InputError: naming ``file`` and the field path of the first problem.
    """
    base = Path(base_dir) if base_dir is not None else Path(file).parent
    data = require_mapping(data, file=file, field=None)
    check_keys(data, _TOP_KEYS, file=file, field=None)
    for key in ("workload", "quality", "sweep"):
        if key not in data:
            raise _fail("required key is missing", file, key)
    name = data.get("name", Path(file).stem)
    if not isinstance(name, str) or not name.strip():
        raise _fail("must be non-empty text", file, "name")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise _fail("must be text", file, "description")

    workload, workload_ref = _load_workload(data["workload"], file, base)

    scales_raw = _as_list(data.get("model_scale", 1), file, "model_scale")
    scales: list[float] = []
    for i, v in enumerate(scales_raw):
        field = f"model_scale[{i}]" if isinstance(data.get("model_scale"), list) else "model_scale"
        scales.append(_number(v, file, field, maximum=MAX_MODEL_SCALE))
    _unique(scales, file, "model_scale")
    workloads = []
    for i, s in enumerate(scales):
        try:
            workloads.append(ScaledWorkload(s, scale_workload(workload, s)))
        except InputError as exc:
            raise _fail(
                f"the scaled model is out of bounds: {exc.problem} ({exc.field})", file, f"model_scale[{i}]"
            ) from None

    sweep = require_mapping(data["sweep"], file=file, field="sweep")
    check_keys(sweep, _SWEEP_KEYS, file=file, field="sweep")
    for key in ("hardware", "devices"):
        if key not in sweep:
            raise _fail("required key is missing", file, f"sweep.{key}")
    hw_entries = _as_list(sweep["hardware"], file, "sweep.hardware")
    loaded: list[tuple[HardwareProfile, str, str]] = []
    for i, entry in enumerate(hw_entries):
        profile, origin = _load_hardware(entry, file, f"sweep.hardware[{i}]", base)
        loaded.append((profile, origin, entry))
    names = [p.name for p, _, _ in loaded]
    for i, n in enumerate(names):
        if names.index(n) != i:
            raise _fail(f"profile {n!r} appears twice", file, f"sweep.hardware[{i}]")

    devices = [
        _integer(v, file, f"sweep.devices[{i}]", maximum=MAX_DEVICES)
        for i, v in enumerate(_as_list(sweep["devices"], file, "sweep.devices"))
    ]
    _unique(devices, file, "sweep.devices")
    if "batch_size" in sweep:
        batches = [
            _integer(v, file, f"sweep.batch_size[{i}]", maximum=10**9)
            for i, v in enumerate(_as_list(sweep["batch_size"], file, "sweep.batch_size"))
        ]
        _unique(batches, file, "sweep.batch_size")
    else:
        batches = [int(workload.training.batch_size)]
    if "samples" in sweep:
        samples = [
            _number(v, file, f"sweep.samples[{i}]", maximum=1e16)
            for i, v in enumerate(_as_list(sweep["samples"], file, "sweep.samples"))
        ]
        _unique(samples, file, "sweep.samples")
    else:
        samples = [float(workload.training.samples) * float(workload.training.epochs)]

    constraints = _constraints(data.get("constraints", {}), file)
    overrides = require_mapping(data.get("overrides", {}) or {}, file=file, field="overrides")
    check_keys(overrides, _OVERRIDE_KEYS, file=file, field="overrides")
    entries = [(p.name, e) for p, _, e in loaded]
    prices = _per_name(
        overrides.get("price_usd_per_device_hour"),
        file,
        "overrides.price_usd_per_device_hour",
        entries,
        allow_scalar=False,
        maximum=MAX_PRICE_USD_PER_DEVICE_HOUR,
    )
    powers = _per_name(overrides.get("power_w"), file, "overrides.power_w", entries, allow_scalar=True,
                       maximum=MAX_POWER_W)
    scenario_src = f"scenario {file}"
    choices = []
    for i, (profile, origin, entry) in enumerate(loaded):
        price = _lookup(prices, profile.name, entry)  # type: ignore[arg-type]
        if price is not None:
            price_prov = Provenance(
                f"{scenario_src}: overrides.price_usd_per_device_hour", "scenario", "override"
            )
        elif profile.price.usd_per_device_hour is not None:
            price = float(profile.price.usd_per_device_hour)
            price_prov = _source_of(profile, "price.usd_per_device_hour")
        else:
            raise _fail(
                f"profile {profile.name} has no list price; set "
                f"overrides.price_usd_per_device_hour.{profile.name}",
                file,
                f"sweep.hardware[{i}]",
            )
        if isinstance(powers, float):
            power, power_prov = (
                powers,
                Provenance(f"{scenario_src}: overrides.power_w", "scenario", "override"),
            )
        elif (p := _lookup(powers, profile.name, entry)) is not None:
            if p <= 0:
                raise _fail(f"must be positive, got {p!r}", file, f"overrides.power_w.{entry}")
            power, power_prov = p, Provenance(f"{scenario_src}: overrides.power_w", "scenario", "override")
        else:
            power, power_prov = float(profile.device.power_w), _source_of(profile, "device.power_w")
        choices.append(
            HardwareChoice(entry, origin, profile, float(price), price_prov, float(power), power_prov)
        )

    if "pue" in overrides:
        economics_pue = _number(overrides["pue"], file, "overrides.pue", minimum=1.0, maximum=5.0)
        pue_source = f"{scenario_src}: overrides.pue"
    else:
        economics_pue, pue_source = 1.0, Economics.pue_source
    grid = overrides.get("grid_kg_co2_per_kwh")
    grid_value = (
        None
        if grid is None
        else _number(grid, file, "overrides.grid_kg_co2_per_kwh", positive=False, maximum=10.0)
    )
    economics = Economics(economics_pue, pue_source, grid_value)

    objective = data.get("objective", "cost")
    if objective not in OBJECTIVES:
        raise _fail(f"must be one of {', '.join(OBJECTIVES)}, got {objective!r}", file, "objective")
    simulation = _simulation(data.get("simulation", {}), file)

    quality_spec = require_mapping(data["quality"], file=file, field="quality")
    if law_loader is None:
        from planner.quality import law_from_spec as law_loader
    law = law_loader(dict(quality_spec), base_dir=base, file=file)
    check_law_values(law, workloads, samples, file, _quality_field(quality_spec))

    count = len(choices) * len(workloads) * len(devices) * len(batches) * len(samples)
    if count > MAX_OPTIONS:
        raise _fail(f"the sweep spans {count:,} options, more than {MAX_OPTIONS:,}", file, "sweep")
    return Scenario(
        name=name.strip(),
        description=description,
        file=file,
        base_dir=base,
        sha256=_hash(data),
        workload_ref=workload_ref,
        workloads=tuple(workloads),
        quality_spec=dict(quality_spec),
        law=law,
        hardware=tuple(choices),
        devices=tuple(devices),
        batch_sizes=tuple(batches),
        samples=tuple(samples),
        epochs=float(workload.training.epochs),
        samples_per_epoch=float(workload.training.samples),
        constraints=constraints,
        economics=economics,
        objective=objective,
        simulation=simulation,
        raw=data,
    )


def _quality_field(spec: dict[str, Any]) -> str:
    return next((f"quality.{k}" for k in ("law", "preset", "fit") if k in spec), "quality")


def law_points(law: Any, workloads: Any, samples: Any) -> list[tuple[float, float, float]]:
    """The distinct scales the law is evaluated at over the sweep, as ``(x, model_scale, samples)`` (x in SI
    counts, see :func:`planner.quality.law_x`), in sweep order."""
    from planner.quality import law_x
    from planner.workload import derive

    points: dict[float, tuple[float, float, float]] = {}
    for sw in workloads:
        d = derive(sw.workload)
        for n in samples:
            x = float(law_x(law.x, float(n), float(d.total_params), float(d.flops_per_sample)))
            points.setdefault(x, (x, float(sw.scale), float(n)))
    return list(points.values())


def check_law_values(law: Any, workloads: Any, samples: Any, file: str, field: str) -> None:
    """Refuse a law that predicts an impossible value of its metric (NE <= 0, a hit rate outside [0, 1], a
    non-finite value) at any point of the sweep: there it is outside its valid range, and ranking, frontier
    and quality per dollar would take the impossible number at face value.

    Raises:
        InputError: naming ``file``, ``field`` (``quality.law``), the point(s), the value(s) and the law.
    """
    from planner.quality import fmt_number, metric_excess, metric_problem

    points = law_points(law, workloads, samples)
    values = [float(y) for y in law.predict_many([x for x, _, _ in points])]
    bad = []
    for (x, scale, n), y in zip(points, values, strict=True):
        excess = metric_excess(law.metric, y)
        if excess is not None:
            bad.append((excess, x, scale, n, y))
    if not bad:
        return
    bad.sort(key=lambda b: (b[0], b[1]))  # nearest the possible values first: where the law goes wrong
    several_scales = len(workloads) > 1

    def where(x: float, scale: float, n: float) -> str:
        text = f"{law.x} {law.x_text(x)}"
        context = []
        if law.x == "flops":
            context.append(f"samples {fmt_number(n)}")
        if law.x != "samples" and several_scales:
            context.append(f"model_scale {scale:g}")
        return f"{text} ({', '.join(context)})" if context else text

    metric = "NE" if law.metric == "ne" else law.metric
    first, last = bad[0], bad[-1]
    said = f"predicts {metric} {fmt_number(first[4])} at {where(*first[1:4])}"
    if len(bad) == 1:
        said += f" ({law.params_text()})"
    else:
        said += (f" to {fmt_number(last[4])} at {where(*last[1:4])} ({len(bad)} of {len(points)} points of "
                 f"the sweep; {law.params_text()})")
    problem = metric_problem(law.metric, first[4])
    raise InputError(f"{said}; {problem}: the law is outside its valid range", file=file, field=field)


def _constraints(value: Any, file: str) -> Constraints:
    c = require_mapping(value if value is not None else {}, file=file, field="constraints")
    check_keys(c, _CONSTRAINT_KEYS, file=file, field="constraints")
    must_fit = c.get("must_fit_memory", True)
    if not isinstance(must_fit, bool):
        raise _fail(f"must be true or false, got {must_fit!r}", file, "constraints.must_fit_memory")

    def opt(key: str) -> float | None:
        return None if c.get(key) is None else _number(c[key], file, f"constraints.{key}")

    return Constraints(
        max_days=opt("max_days"),
        max_cost_usd=opt("max_cost_usd"),
        target_ne=opt("target_ne"),
        must_fit_memory=must_fit,
    )


def _simulation(value: Any, file: str) -> SimulationSettings:
    s = require_mapping(value if value is not None else {}, file=file, field="simulation")
    check_keys(s, _SIM_KEYS, file=file, field="simulation")
    steps = _integer(s.get("steps", 20), file, "simulation.steps", maximum=10_000)
    seed = s.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise _fail(f"must be a non-negative whole number, got {seed!r}", file, "simulation.seed")
    sharding = s.get("sharding", "auto")
    if sharding not in SHARDINGS:
        raise _fail(f"must be one of {', '.join(SHARDINGS)}, got {sharding!r}", file, "simulation.sharding")
    return SimulationSettings(steps, seed, sharding)


def load_scenario(path: str | Path, *, law_loader: Any = None) -> Scenario:
    """Load, validate and resolve a scenario YAML file (paths inside are relative to its folder).

    Raises:
        InputError: naming the file and the field path of the first problem.
    """
    p = Path(path)
    data = load_yaml_mapping(p)
    return scenario_from_mapping(data, str(path), p.parent, law_loader=law_loader)
