"""The 18 shipped hardware profiles: they load, every figure has a source, and spot values match hardware.md.

Figures are checked against ``shared/reference/hardware.md`` (the single source of every datasheet figure):
bandwidths are per direction (half the vendor "bidir" figure), peaks are dense, and figures the reference
marks [R] stay marked ``unverified``.
"""

from __future__ import annotations

import copy
import math
from importlib import resources

import pytest

from planner.errors import InputError
from planner.hardware import (
    figure_source,
    load_profile,
    load_profile_mapping,
    numeric_paths,
    preset_names,
    profile_from_mapping,
)

# The shipped profile names, exactly as DESIGN.md ("Shipped profile names") lists them.
SHIPPED = ["v100-sxm2-32gb", "a100-sxm4-40gb", "a100-sxm4-80gb", "h100-sxm-80gb", "h100-pcie-80gb",
           "h200-sxm-141gb", "b200", "gb200", "b300", "mi250x", "mi300x", "mi325x", "mi355x", "gaudi3",
           "tpu-v5e", "tpu-v5p", "tpu-v6e", "cpu-generic"]

NVIDIA = ["v100-sxm2-32gb", "a100-sxm4-40gb", "a100-sxm4-80gb", "h100-sxm-80gb", "h100-pcie-80gb",
          "h200-sxm-141gb", "b200", "gb200", "b300"]
AMD = ["mi250x", "mi300x", "mi325x", "mi355x"]
TPU = ["tpu-v5e", "tpu-v5p", "tpu-v6e"]


def _raw(name: str) -> dict:
    data, _label = load_profile_mapping(name)
    return copy.deepcopy(data)


def _get(data: dict, path: str):
    node = data
    for part in path.split("."):
        node = node[part]
    return node


# ------------------------------------------------------------------------------------------- the set
def test_preset_names_are_exactly_the_design_list():
    assert len(SHIPPED) == 18
    assert preset_names() == sorted(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_profile_loads(name):
    p = load_profile(name)
    assert p.name == name
    assert p.kind in ("gpu", "tpu", "cpu", "accelerator")
    assert p.device.peak_flops
    assert p.description.strip() and p.source.strip()


@pytest.mark.parametrize("name", SHIPPED)
def test_every_numeric_figure_has_a_source(name):
    data = _raw(name)
    p = profile_from_mapping(copy.deepcopy(data), name)
    paths = numeric_paths(data)
    assert paths
    for path in paths:
        covered = figure_source(p, path)
        assert covered is not None, path
        _key, fig = covered
        assert fig.source.strip() and len(fig.as_of) >= 4


@pytest.mark.parametrize("name", SHIPPED)
def test_figures_entries_name_existing_figures(name):
    """No stale or misspelt ``figures`` keys: each names a figure (or group) present in the profile."""
    data = _raw(name)
    for key in data["figures"]:
        value = _get(data, key)
        assert value is not None, key
        assert isinstance(value, (int, float, dict)) and not isinstance(value, bool), key


@pytest.mark.parametrize("name", SHIPPED)
def test_figure_provenance_is_explicit(name):
    data = _raw(name)
    assert isinstance(data["as_of"], str)
    for key, fig in data["figures"].items():
        # Dates are quoted in YAML so they stay strings ('2025', '2025-06', '2026-11-24').
        assert isinstance(fig["as_of"], str), key
        status = fig.get("status", "datasheet")
        if status == "assumed":
            assert "assumed" in fig["source"].lower(), key
        if status in ("datasheet", "unverified"):
            assert "[S" in fig["source"] or "Lin et al." in fig["source"] or "[R]" in fig["source"], key
        if status == "derived":
            # A derived figure gives its formula.
            assert "x" in fig["source"] and ("=" in fig["source"] or "[D]" in fig["source"]), key


@pytest.mark.parametrize("name", SHIPPED)
def test_price_is_sourced_or_null(name):
    p = load_profile(name)
    price = p.price.usd_per_device_hour
    if price is None:
        assert "price.usd_per_device_hour" not in p.figures
    else:
        assert 0 < price < 100
        assert figure_source(p, "price.usd_per_device_hour") is not None


def test_prices_not_found_in_the_reference_are_null():
    for name in ("gb200", "b300", "mi250x", "mi355x", "gaudi3", "cpu-generic"):
        assert load_profile(name).price.usd_per_device_hour is None, name


# ------------------------------------------------------------------------------------------- [R] marks
UNVERIFIED = {
    "h100-sxm-80gb": ["device.l2_bytes"],
    "h100-pcie-80gb": ["device.peak_flops.bf16", "device.l2_bytes", "node.intra_bandwidth_bytes_per_s",
                       "price.usd_per_device_hour"],
    "h200-sxm-141gb": ["device.l2_bytes"],
    "v100-sxm2-32gb": ["node.devices", "node.intra_bandwidth_bytes_per_s", "node.host_memory_bytes",
                       "network.per_device_bandwidth_bytes_per_s", "price.usd_per_device_hour"],
    "a100-sxm4-40gb": ["price.usd_per_device_hour"],
    "a100-sxm4-80gb": ["price.usd_per_device_hour"],
    "b200": ["device.l2_bytes", "node.host_memory_bandwidth_bytes_per_s", "price.usd_per_device_hour"],
    "gb200": ["node.host_memory_bytes", "node.host_memory_bandwidth_bytes_per_s"],
    "b300": ["device.power_w", "node.host_memory_bytes"],
    "mi250x": ["device.l2_bytes", "node.host_memory_bytes", "network.per_device_bandwidth_bytes_per_s"],
    "mi300x": ["network.per_device_bandwidth_bytes_per_s", "price.usd_per_device_hour"],
    "mi325x": ["node.intra_bandwidth_bytes_per_s", "network.per_device_bandwidth_bytes_per_s"],
    "mi355x": ["device.peak_flops.bf16", "node.intra_bandwidth_bytes_per_s",
               "node.host_memory_bandwidth_bytes_per_s"],
    "tpu-v5e": ["price.usd_per_device_hour"],
    "tpu-v5p": ["price.usd_per_device_hour"],
    "tpu-v6e": ["price.usd_per_device_hour"],
}


@pytest.mark.parametrize("name", sorted(UNVERIFIED))
def test_reference_R_marks_stay_unverified(name):
    p = load_profile(name)
    for path in UNVERIFIED[name]:
        _key, fig = figure_source(p, path)
        assert fig.status == "unverified", (name, path)


def test_cpu_generic_is_an_assumed_placeholder():
    p = load_profile("cpu-generic")
    assert p.kind == "cpu" and p.node.devices == 1
    statuses = {fig.status for fig in p.figures.values()}
    assert statuses == {"assumed"}
    assert "calibrate" in p.description
    assert p.efficiency.embedding_access_bytes == 64


# ------------------------------------------------------------------------------------------- units
PER_DIRECTION = {
    # profile, path, per-direction value (reference figure in the comment)
    ("h100-sxm-80gb", "node.intra_bandwidth_bytes_per_s"): 450e9,  # NVLink 4 900 GB/s bidir
    ("h100-sxm-80gb", "node.host_link_bandwidth_bytes_per_s"): 64e9,  # PCIe Gen5 x16 128 GB/s bidir
    ("v100-sxm2-32gb", "node.intra_bandwidth_bytes_per_s"): 150e9,  # NVLink 2 300 GB/s bidir
    ("a100-sxm4-80gb", "node.intra_bandwidth_bytes_per_s"): 300e9,  # NVLink 3 600 GB/s bidir
    ("a100-sxm4-40gb", "node.host_link_bandwidth_bytes_per_s"): 32e9,  # PCIe Gen4 32+32
    ("h100-pcie-80gb", "node.intra_bandwidth_bytes_per_s"): 300e9,  # bridge 600 GB/s bidir
    ("h200-sxm-141gb", "node.intra_bandwidth_bytes_per_s"): 450e9,  # 900 GB/s bidir
    ("b200", "node.intra_bandwidth_bytes_per_s"): 900e9,  # NVLink 5 1.8 TB/s bidir
    ("gb200", "node.intra_bandwidth_bytes_per_s"): 900e9,  # 1.8 TB/s bidir per GPU
    ("gb200", "node.host_link_bandwidth_bytes_per_s"): 450e9,  # NVLink-C2C 900 GB/s bidir
    ("b300", "node.intra_bandwidth_bytes_per_s"): 900e9,
    ("mi300x", "node.intra_bandwidth_bytes_per_s"): 448e9,  # 7 x 128 = 896 GB/s bidir
    ("mi325x", "node.intra_bandwidth_bytes_per_s"): 448e9,
    ("mi355x", "node.intra_bandwidth_bytes_per_s"): 537.6e9,  # 7 x 153.6 = 1075 GB/s bidir
    ("gaudi3", "node.intra_bandwidth_bytes_per_s"): 525e9,  # 525 GB/s/dir (1050 bidir)
    ("gaudi3", "network.per_device_bandwidth_bytes_per_s"): 75e9,  # 3 x 200 GbE per direction
    ("tpu-v5e", "node.intra_bandwidth_bytes_per_s"): 200e9,  # ICI 400 GB/s bidir
    ("tpu-v5p", "node.intra_bandwidth_bytes_per_s"): 600e9,  # ICI 1200 GB/s bidir
    ("tpu-v6e", "node.intra_bandwidth_bytes_per_s"): 400e9,  # ICI 800 GB/s bidir
    ("h100-sxm-80gb", "network.per_device_bandwidth_bytes_per_s"): 50e9,  # 400 Gb/s per GPU
    ("a100-sxm4-80gb", "network.per_device_bandwidth_bytes_per_s"): 25e9,  # 200 Gb/s HDR per GPU
    ("b300", "network.per_device_bandwidth_bytes_per_s"): 100e9,  # CX-8 800 Gb/s per GPU
    ("tpu-v5e", "network.per_device_bandwidth_bytes_per_s"): 3.125e9,  # 25 Gbps per chip
}


@pytest.mark.parametrize(("name", "path"), sorted(PER_DIRECTION))
def test_bandwidths_are_per_direction(name, path):
    assert _get(_raw(name), path) == pytest.approx(PER_DIRECTION[(name, path)])


def test_h100_intra_is_half_the_bidir_figure():
    assert load_profile("h100-sxm-80gb").node.intra_bandwidth_bytes_per_s == 450e9


# ------------------------------------------------------------------------------------------- spot checks
SPOT = [
    ("v100-sxm2-32gb", "device.peak_flops.fp16", 125e12),
    ("v100-sxm2-32gb", "device.hbm_bandwidth_bytes_per_s", 0.90e12),
    ("a100-sxm4-40gb", "device.hbm_bandwidth_bytes_per_s", 1.555e12),
    ("a100-sxm4-80gb", "device.hbm_bandwidth_bytes_per_s", 2.039e12),
    ("a100-sxm4-80gb", "efficiency.gemm_peak_fraction", 0.81),  # 253.7 / 312 [S63]
    ("h100-pcie-80gb", "device.peak_flops.bf16", 756e12),
    ("h100-pcie-80gb", "device.power_w", 350),
    ("h200-sxm-141gb", "device.hbm_bytes", 141e9),
    ("h200-sxm-141gb", "device.hbm_bandwidth_bytes_per_s", 4.8e12),
    ("h200-sxm-141gb", "efficiency.hbm_fraction", 0.84),  # 4.01 / 4.8 [S68]
    ("b200", "device.peak_flops.bf16", 2250e12),
    ("b200", "device.hbm_bytes", 180e9),  # usable in DGX B200
    ("gb200", "device.peak_flops.fp8", 5000e12),
    ("gb200", "node.devices", 72),
    ("gb200", "efficiency.host_link_fraction", 0.45),  # 201 / 450 [S69]
    ("b300", "device.hbm_bytes", 288e9),
    ("mi250x", "device.peak_flops.bf16", 383e12),
    ("mi250x", "device.power_w", 560),
    ("mi300x", "device.peak_flops.fp8", 2614.9e12),
    ("mi300x", "device.sm_count", 304),
    ("mi300x", "efficiency.allreduce_intra_fraction", 0.71),  # 317 / 448 [S70]
    ("mi325x", "device.hbm_bytes", 256e9),
    ("mi355x", "device.power_w", 1400),
    ("mi355x", "device.sm_count", 256),
    ("gaudi3", "device.peak_flops.bf16", 1835e12),
    ("gaudi3", "device.hbm_bandwidth_bytes_per_s", 3.67e12),
    ("tpu-v5e", "device.peak_flops.bf16", 197e12),
    ("tpu-v5e", "price.usd_per_device_hour", 1.20),
    ("tpu-v5p", "device.hbm_bandwidth_bytes_per_s", 2.765e12),
    ("tpu-v6e", "device.peak_flops.bf16", 918e12),
    ("tpu-v6e", "price.usd_per_device_hour", 2.70),
]


@pytest.mark.parametrize(("name", "path", "value"), SPOT)
def test_spot_figures_match_the_reference(name, path, value):
    assert _get(_raw(name), path) == pytest.approx(value)


def test_dtypes_follow_what_each_device_supports():
    v100 = load_profile("v100-sxm2-32gb").device.peak_flops
    assert set(v100) == {"fp32", "fp16"}  # no BF16, no TF32
    for name in TPU:
        peaks = load_profile(name).device.peak_flops
        assert "fp32" not in peaks and "bf16" in peaks, name
    assert "fp8" not in load_profile("tpu-v5e").device.peak_flops
    v5p = load_profile("tpu-v5p").device.peak_flops
    assert v5p["fp8"] == v5p["bf16"]  # no FP8 speed-up on v5p
    for name in ("a100-sxm4-40gb", "a100-sxm4-80gb", "mi250x"):
        assert "fp8" not in load_profile(name).device.peak_flops, name
    # fp16 equals bf16 wherever the reference lists BF16/FP16 together.
    for name in SHIPPED:
        peaks = load_profile(name).device.peak_flops
        if "fp16" in peaks and "bf16" in peaks:
            assert peaks["fp16"] == peaks["bf16"], name


def test_dense_peaks_and_fallback():
    h100 = load_profile("h100-sxm-80gb")
    assert h100.device.peak_flops["fp8"] == pytest.approx(1978.9e12)  # 3957.8 is sparse
    tpu = load_profile("tpu-v5e")
    assert tpu.peak_flops_for("fp32") == pytest.approx(197e12)  # falls back to the nearest listed dtype


def test_efficiency_conventions():
    for name in NVIDIA:
        eff = load_profile(name).efficiency
        assert eff.embedding_access_bytes == 32, name
        assert eff.kernel_launch_s == pytest.approx(10e-6), name
    for name in [*AMD, "gaudi3", *TPU, "cpu-generic"]:
        assert load_profile(name).efficiency.embedding_access_bytes == 64, name
    for name in AMD:
        assert load_profile(name).efficiency.kernel_launch_s == pytest.approx(10e-6), name
    # Measured fractions carry datasheet status; the reference's 'unmeasured devices' values are assumed.
    a100 = load_profile("a100-sxm4-80gb")
    assert figure_source(a100, "efficiency.hbm_fraction")[1].status == "datasheet"
    v100 = load_profile("v100-sxm2-32gb")
    assert v100.efficiency.gemm_peak_fraction == pytest.approx(0.75)
    assert figure_source(v100, "efficiency.gemm_peak_fraction")[1].status == "assumed"
    b200 = load_profile("b200")
    assert (b200.efficiency.gemm_peak_fraction, b200.efficiency.hbm_fraction) == (0.70, 0.85)
    assert figure_source(b200, "efficiency.allreduce_intra_fraction")[1].status == "assumed"


@pytest.mark.parametrize("name", SHIPPED)
def test_figures_are_physically_plausible(name):
    p = load_profile(name)
    d, n = p.device, p.node
    assert all(1e12 <= v <= 1e17 for v in d.peak_flops.values())
    assert 1e9 <= d.hbm_bytes <= 1e13
    assert 1e11 <= d.hbm_bandwidth_bytes_per_s <= 1e14
    assert 0 <= d.l2_bytes <= 1e9
    assert 50 <= d.power_w <= 2000
    assert n.devices >= 1
    assert n.host_link_bandwidth_bytes_per_s < d.hbm_bandwidth_bytes_per_s
    assert p.network.per_device_bandwidth_bytes_per_s <= n.intra_bandwidth_bytes_per_s or n.devices == 1
    assert 0 < p.efficiency.gemm_peak_fraction <= 1
    raw = _raw(name)
    for path in numeric_paths(raw):
        assert math.isfinite(float(_get(raw, path))), path


# ------------------------------------------------------------------------------------------- bad input
def _mutated(mutate) -> dict:
    data = _raw("b200")
    mutate(data)
    return data


BAD = {
    "unknown-device-key": (lambda d: d["device"].__setitem__("tensor_cores", 528), "device.tensor_cores"),
    "unknown-top-key": (lambda d: d.__setitem__("vendor", "NVIDIA"), "vendor"),
    "unknown-dtype": (lambda d: d["device"]["peak_flops"].__setitem__("fp4", 9e15), "device.peak_flops.fp4"),
    "nan-bandwidth": (lambda d: d["node"].__setitem__("intra_bandwidth_bytes_per_s", float("nan")),
                      "node.intra_bandwidth_bytes_per_s"),
    "inf-latency": (lambda d: d["network"].__setitem__("latency_s", float("inf")), "network.latency_s"),
    "negative-hbm": (lambda d: d["device"].__setitem__("hbm_bytes", -180e9), "device.hbm_bytes"),
    "negative-host-memory": (lambda d: d["node"].__setitem__("host_memory_bytes", -1.0),
                             "node.host_memory_bytes"),
    "no-source": (lambda d: d["figures"].pop("device.power_w"), "device.power_w"),
    "no-source-group": (lambda d: d["figures"].pop("device.peak_flops"), "device.peak_flops"),
    "figure-outside-sections": (
        lambda d: d["figures"].__setitem__("name", dict(d["figures"]["device.power_w"])), "figures.name"),
    "bad-status": (lambda d: d["figures"]["device.hbm_bytes"].__setitem__("status", "guessed"),
                   "figures.device.hbm_bytes.status"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_profiles_raise_input_error_naming_the_field(case):
    mutate, field = BAD[case]
    with pytest.raises(InputError) as info:
        profile_from_mapping(_mutated(mutate), "bad.yaml")
    assert info.value.field is not None
    assert info.value.field.startswith(field), (info.value.field, field)
    assert "bad.yaml" in str(info.value)


def test_bad_yaml_file_names_the_field(tmp_path):
    src = resources.files("hardware_profiles").joinpath("tpu-v5e.yaml").read_text("utf-8")
    path = tmp_path / "p.yaml"
    path.write_text(src.replace("hbm_bytes: 16.0e9", "hbm_bytes: .nan"), "utf-8")
    with pytest.raises(InputError) as info:
        load_profile(path)
    assert info.value.field == "device.hbm_bytes"
    assert str(path) in str(info.value)
