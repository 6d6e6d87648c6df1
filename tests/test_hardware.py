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
    profile_from_mapping,
    profile_yaml,
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
    ],
)
def test_bad_profiles_name_the_field(mutate, field):
    data = _h100()
    mutate(data)
    with pytest.raises(InputError) as info:
        profile_from_mapping(data, "p.yaml")
    assert info.value.file == "p.yaml"
    assert info.value.field == field
