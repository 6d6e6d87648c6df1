"""``recplan profiles derive`` and ``validate`` refusals: exit 2, one line, nothing written."""

from __future__ import annotations

import json
from importlib import resources

import pytest
from test_cli_foundation import _assert_one_line_error as _one_line


def _assert_one_line_error(result, *needles: str) -> None:
    _one_line(result, *needles)
    assert result.out == ""


def _derive(cli, base: str, sets: list[str], out, name: str = "n"):
    args = ["profiles", "derive", base]
    for expr in sets:
        args += ["--set", expr]
    return cli(*args, "--name", name, "--out", out)


@pytest.mark.parametrize(
    ("base", "field"),
    [
        ("b300", "price.usd_per_device_hour"),
        ("b300", "node.host_memory_bandwidth_bytes_per_s"),
        ("a100-sxm4-40gb", "device.peak_flops.fp8"),
    ],
)
def test_derive_refuses_scaling_a_figure_the_base_lacks(cli, tmp_path, base, field):
    out = tmp_path / "sub" / "f21.yaml"
    r = _derive(cli, base, [f"{field}=x2"], out)
    _assert_one_line_error(
        r, f"--set: {field}: the base profile {base} has no value to scale; give an absolute value"
    )
    assert not out.exists() and not out.parent.exists()


def test_derive_absolute_value_for_a_null_price_then_validates(cli, tmp_path):
    out = tmp_path / "priced.yaml"
    r = _derive(cli, "b300", ["price.usd_per_device_hour=5.5"], out, name="b300-priced")
    assert r.code == 0, r.err
    assert cli("profiles", "validate", out).code == 0
    shown = json.loads(cli("profiles", "show", out, "--json").out)
    assert shown["price"]["usd_per_device_hour"] == 5.5
    assert shown["derived_from"]["changes"] == {"price.usd_per_device_hour": "None -> 5.5"}


@pytest.mark.parametrize("second", ["device.hbm_bytes=x3", "device.hbm_bytes=1e9"])
def test_derive_refuses_a_field_given_twice(cli, tmp_path, second):
    out = tmp_path / "v2.yaml"
    r = _derive(cli, "h100-sxm-80gb", ["device.hbm_bytes=x2", second], out)
    _assert_one_line_error(r, "--set: device.hbm_bytes: given more than once")
    assert not out.exists()


def test_derive_twice_records_the_true_base_value(cli, tmp_path):
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    assert _derive(cli, "h100-sxm-80gb", ["device.hbm_bytes=x2"], first, name="a").code == 0
    r = _derive(cli, str(first), ["device.hbm_bytes=x3"], second, name="b")
    assert r.code == 0, r.err
    shown = json.loads(cli("profiles", "show", second, "--json").out)
    assert shown["device"]["hbm_bytes"] == pytest.approx(480e9)
    assert shown["derived_from"] == {
        "base": "h100-sxm-80gb",
        "changes": {"device.hbm_bytes": "80000000000.0 -> 480000000000.0"},
    }


def _profile_text() -> str:
    return resources.files("hardware_profiles").joinpath("h100-sxm-80gb.yaml").read_text()


@pytest.mark.parametrize(
    ("key", "needle"),
    [
        ("device.foo", "figures.device.foo: unknown figure"),
        ("device.hbm_byte", "figures.device.hbm_byte: unknown figure"),
        ("device.peak_flops.fp4", "figures.device.peak_flops.fp4: unknown figure"),
    ],
)
def test_validate_refuses_an_unknown_figures_key(cli, tmp_path, key, needle):
    p = tmp_path / "p.yaml"
    p.write_text(_profile_text() + f"  {key}: {{source: 'x', as_of: '2025'}}\n")
    _assert_one_line_error(cli("profiles", "validate", p), f"{p}: {needle}")


def test_validate_accepts_the_shipped_text_with_an_extra_known_key(cli, tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text(_profile_text() + "  device.peak_flops.bf16: {source: 'x', as_of: '2025'}\n")
    r = cli("profiles", "validate", p)
    assert r.code == 0, r.err
