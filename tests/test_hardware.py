"""Hardware profile loading, provenance checks and derivation of hypothetical devices."""

from __future__ import annotations

import copy

import pytest

from planner.errors import InputError
from planner.hardware import (
    derive_profile,
    figure_source,
    load_profile,
    load_profile_mapping,
    preset_names,
    profile_from_mapping,
    profile_yaml,
    schema_paths,
)
from planner.io import parse_yaml_text


def _h100():
    data, _ = load_profile_mapping("h100-sxm-80gb")
    return copy.deepcopy(data)


def test_si_units_on_load():
    p = load_profile("h100-sxm-80gb")
    assert p.device.hbm_bytes == 80e9
    assert p.node.intra_bandwidth_bytes_per_s == 450e9  # per direction, half the 900 GB/s bidir figure
    assert p.peak_flops_for("bf16") == pytest.approx(989.4e12)


def test_peak_falls_back_to_nearest_dtype():
    data = _h100()
    del data["device"]["peak_flops"]["fp8"]
    p = profile_from_mapping(data)
    assert p.peak_flops_for("fp8") == pytest.approx(989.4e12)


def test_every_figure_needs_a_source():
    data = _h100()
    del data["figures"]["device.hbm_bytes"]
    with pytest.raises(InputError) as info:
        profile_from_mapping(data, "p.yaml")
    assert info.value.field == "device.hbm_bytes"


def test_prefix_covers_group():
    p = load_profile("h100-sxm-80gb")
    key, fig = figure_source(p, "device.peak_flops.bf16")
    assert key == "device.peak_flops" and fig.status == "datasheet"
    assert figure_source(p, "device.l2_bytes")[1].status == "unverified"


def test_derive_records_base_and_changes():
    data = derive_profile(
        "h100-sxm-80gb",
        ["device.hbm_bandwidth_bytes_per_s=x2", "price.usd_per_device_hour=9"],
        "h100-fast",
        today="2026-11-24",
    )
    assert data["derived_from"]["base"] == "h100-sxm-80gb"
    assert set(data["derived_from"]["changes"]) == {
        "device.hbm_bandwidth_bytes_per_s",
        "price.usd_per_device_hour",
    }
    assert data["device"]["hbm_bandwidth_bytes_per_s"] == pytest.approx(6.7e12)
    assert data["figures"]["device.hbm_bandwidth_bytes_per_s"]["status"] == "derived"
    reloaded = profile_from_mapping(parse_yaml_text(profile_yaml(data), "x"))
    assert reloaded.name == "h100-fast"
    assert reloaded.price.usd_per_device_hour == 9
    # unchanged figures keep their datasheet source
    assert figure_source(reloaded, "device.hbm_bytes")[1].status == "datasheet"


def test_derive_twice_keeps_original_base():
    first = derive_profile("h100-sxm-80gb", ["device.hbm_bytes=x2"], "a", today="2026-11-24")
    import planner.hardware as hw

    original = hw.load_profile_mapping
    try:
        hw.load_profile_mapping = lambda _name: (copy.deepcopy(first), "a")
        second = derive_profile("a", ["node.devices=16"], "b", today="2026-11-24")
    finally:
        hw.load_profile_mapping = original
    assert second["derived_from"]["base"] == "h100-sxm-80gb"
    assert set(second["derived_from"]["changes"]) == {"device.hbm_bytes", "node.devices"}


@pytest.mark.parametrize(
    ("sets", "field"),
    [
        (["device.hbm_bytes"], "device.hbm_bytes"),
        (["device.nope=1"], "device.nope"),
        (["device.hbm_bytes=abc"], "device.hbm_bytes"),
        (["device.hbm_bytes=x-2"], "device.hbm_bytes"),
        (["device.hbm_bytes=nan"], "device.hbm_bytes"),
        (["name=foo"], "name"),
        (["device.hbm_bytes=-5"], "device.hbm_bytes"),
    ],
)
def test_bad_derive_sets(sets, field):
    with pytest.raises(InputError) as info:
        derive_profile("h100-sxm-80gb", sets, "bad")
    assert info.value.field == field


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d["device"].update(hbm_bytes=-1.0), "device.hbm_bytes"),
        (lambda d: d["device"].update(hbm_bytes=float("nan")), "device.hbm_bytes"),
        (lambda d: d["device"].update(hbm_bytes=1e30), "device.hbm_bytes"),
        (lambda d: d["device"]["peak_flops"].update(fp64=1.0), "device.peak_flops.fp64"),
        (lambda d: d["node"].update(turbo=True), "node.turbo"),
        (lambda d: d.update(kind="quantum"), "kind"),
        (lambda d: d["efficiency"].update(hbm_fraction=3.0), "efficiency.hbm_fraction"),
        (lambda d: d.pop("network"), "network"),
        (lambda d: d["figures"].update({"colour": {"source": "x", "as_of": "2025"}}), "figures.colour"),
        (lambda d: d["figures"].update({"device.foo": {"source": "x", "as_of": "2025"}}),
         "figures.device.foo"),
        (lambda d: d["figures"].update({"device.peak_flops.fp4": {"source": "x", "as_of": "2025"}}),
         "figures.device.peak_flops.fp4"),
        (lambda d: d["figures"].update({"efficiency.cache": {"source": "x", "as_of": "2025"}}),
         "figures.efficiency.cache"),
    ],
)
def test_bad_profiles_name_the_field(mutate, field):
    data = _h100()
    mutate(data)
    with pytest.raises(InputError) as info:
        profile_from_mapping(data, "p.yaml")
    assert info.value.file == "p.yaml"
    assert info.value.field == field


def test_unknown_figures_key_is_refused_even_when_every_figure_is_sourced():
    data = _h100()
    data["figures"]["device.hbm_byte"] = dict(data["figures"]["device.hbm_bytes"])
    with pytest.raises(InputError) as info:
        profile_from_mapping(data, "p.yaml")
    assert info.value.file == "p.yaml"
    assert info.value.field == "figures.device.hbm_byte"
    assert "unknown figure" in info.value.problem and "device.hbm_bytes" in info.value.problem


def test_figures_may_name_schema_fields_dtypes_and_fitted_families():
    data = _h100()
    keys = ("device.peak_flops.bf16", "price.usd_per_device_hour", "efficiency.gemm", "efficiency.overhead")
    for key in keys:
        data["figures"][key] = {"source": "x", "as_of": "2025"}
    assert profile_from_mapping(data, "p.yaml").figures["efficiency.gemm"].source == "x"


def test_a_whole_section_may_be_one_figure_source():
    """A key covers every path it prefixes (figure_source), so one source for a section is valid."""
    data = _h100()
    data["figures"] = {k: v for k, v in data["figures"].items() if not k.startswith("efficiency.")}
    data["figures"]["efficiency"] = {"source": "one survey", "as_of": "2025"}
    profile = profile_from_mapping(data, "p.yaml")
    assert figure_source(profile, "efficiency.hbm_fraction")[0] == "efficiency"


def _unset_numeric_figures() -> list[tuple[str, str]]:
    """``(preset, path)`` for every schema figure that a shipped profile leaves null or absent."""
    out = []
    numeric, _groups = schema_paths()
    for name in preset_names():
        data, _ = load_profile_mapping(name)
        for path in sorted(numeric):
            node = data
            for part in path.split(".")[:-1]:
                node = node.get(part) if isinstance(node, dict) else None
            if isinstance(node, dict) and node.get(path.split(".")[-1]) is None:
                out.append((name, path))
    return out


UNSET = _unset_numeric_figures()


def test_some_shipped_figures_are_unset():
    assert ("b300", "price.usd_per_device_hour") in UNSET
    assert len(UNSET) > 5


@pytest.mark.parametrize(("base", "path"), UNSET)
@pytest.mark.parametrize("factor", ["x2", "*0.5"])
def test_scaling_an_unset_figure_is_refused(base, path, factor):
    """Reading an unknown figure as 0 would make an unpriced device free; every such figure is refused."""
    with pytest.raises(InputError) as info:
        derive_profile(base, [f"{path}={factor}"], "n", today="2026-11-24")
    assert info.value.file == "--set"
    assert info.value.field == path
    assert info.value.problem == f"the base profile {base} has no value to scale; give an absolute value"


def test_absolute_value_for_a_null_figure_is_recorded():
    data = derive_profile("b300", ["price.usd_per_device_hour=5.5"], "b300-priced", today="2026-11-24")
    assert data["derived_from"]["changes"] == {"price.usd_per_device_hour": "None -> 5.5"}
    reloaded = profile_from_mapping(parse_yaml_text(profile_yaml(data), "x"))
    assert reloaded.price.usd_per_device_hour == 5.5
    assert reloaded.figures["price.usd_per_device_hour"].status == "derived"


def test_absolute_value_for_an_absent_figure_is_recorded():
    data = derive_profile("a100-sxm4-40gb", ["device.peak_flops.fp8=600e12"], "a100-fp8", today="2026-11-24")
    assert data["derived_from"]["changes"] == {"device.peak_flops.fp8": "None -> 600000000000000.0"}
    assert profile_from_mapping(copy.deepcopy(data)).peak_flops_for("fp8") == 600e12


@pytest.mark.parametrize(
    "sets",
    [
        ["device.hbm_bytes=x2", "device.hbm_bytes=x3"],
        ["device.hbm_bytes=x2", " device.hbm_bytes = 1e9"],
        ["device.hbm_bytes=1e9", "node.devices=4", "device.hbm_bytes=1e9"],
    ],
)
def test_a_figure_set_twice_is_refused(sets):
    with pytest.raises(InputError) as info:
        derive_profile("h100-sxm-80gb", sets, "n", today="2026-11-24")
    assert info.value.file == "--set"
    assert info.value.field == "device.hbm_bytes"
    assert "more than once" in info.value.problem


def test_rederiving_a_figure_records_the_original_base_value(tmp_path):
    first = derive_profile("h100-sxm-80gb", ["device.hbm_bytes=x2"], "a", today="2026-11-24")
    path = tmp_path / "a.yaml"
    path.write_text(profile_yaml(first))
    second = derive_profile(str(path), ["device.hbm_bytes=x3", "node.devices=16"], "b", today="2026-11-24")
    assert second["device"]["hbm_bytes"] == pytest.approx(480e9)
    assert second["derived_from"] == {
        "base": "h100-sxm-80gb",
        "changes": {"device.hbm_bytes": "80000000000.0 -> 480000000000.0", "node.devices": "8 -> 16"},
    }
