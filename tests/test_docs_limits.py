"""docs/limits.md states the input ranges the code enforces; keep the two in step."""

from __future__ import annotations

from pathlib import Path

import pytest

from planner import scenario, workload
from planner.errors import InputError
from planner.sim import engine

LIMITS = (Path(__file__).resolve().parents[1] / "docs" / "limits.md").read_text()


def test_the_documented_ranges_are_the_enforced_ones():
    assert engine.MAX_DEVICES == 1_000_000 and "1 to 1,000,000" in LIMITS
    assert workload.MAX_TABLES == 10_000 and "at most 10,000" in LIMITS
    assert engine.MAX_STEPS == 100_000 and scenario.MAX_OPTIONS == 1_000_000
    assert scenario.MAX_MODEL_SCALE == 1e4
    assert scenario.MAX_PRICE_USD_PER_DEVICE_HOUR == 1e5 and "$100,000" in LIMITS
    assert scenario.MAX_POWER_W == 1e5 and "100 kW" in LIMITS


@pytest.mark.parametrize("section, key, below, at", [
    ("network", "per_device_bandwidth_bytes_per_s", 999.0, 1e3),
    ("device", "hbm_bandwidth_bytes_per_s", 999.0, 1e3),
    ("efficiency", "hbm_fraction", 9e-7, 1e-6),
])
def test_profile_lower_bounds_match_the_document(section, key, below, at):
    import copy

    from planner.hardware import load_profile_mapping, profile_from_mapping

    data, _ = load_profile_mapping("h100-sxm-80gb")
    ok = copy.deepcopy(data)
    ok[section][key] = at
    profile_from_mapping(ok, "edge.yaml")
    bad = copy.deepcopy(data)
    bad[section][key] = below
    with pytest.raises(InputError) as exc:
        profile_from_mapping(bad, "edge.yaml")
    assert exc.value.field == f"{section}.{key}"
    assert "at least 1 kB/s, 1 MFLOP/s, 10^-6 of the peak" in LIMITS
