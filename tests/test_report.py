"""Reports: four files, byte-identical on a second run, well-formed inline SVG plots, CSV of every option,
JSON with resolved inputs and provenance."""

from __future__ import annotations

import csv
import io
import json
import re
import xml.etree.ElementTree as ET

import pytest
from test_whatif import fake_simulate, scenario

from planner.report import FILES, render, write_report
from planner.report.plots import PLOTS
from planner.whatif import evaluate_scenario


@pytest.fixture(scope="module")
def result():
    s = scenario(
        constraints={"max_days": 0.05, "target_ne": 0.715},
        overrides={"price_usd_per_device_hour": {"mi300x": 4.5}, "pue": 1.2},
    )
    return evaluate_scenario(s, simulate_fn=fake_simulate, executor="serial", cache={})


def test_writes_four_files_byte_identical(result, tmp_path):
    first = write_report(result, tmp_path / "a")
    second = write_report(result, tmp_path / "b")
    assert [p.name for p in first] == ["report.html", "report.md", "report.json", "options.csv"]
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name
    only = write_report(result, tmp_path / "c", ["csv", "md"])
    assert sorted(p.name for p in only) == ["options.csv", "report.md"]


def test_html_is_self_contained_with_every_plot(result):
    html = render(result, ["html"])[FILES["html"]]
    assert "<script" not in html and not re.search(r'(src|href)="(?!#)', html)
    for pid in PLOTS:
        match = re.search(rf'<svg[^>]*id="{pid}".*?</svg>', html, re.S)
        assert match, pid
        root = ET.fromstring(match.group(0))  # well-formed XML
        shapes = [e for e in root.iter() if e.tag.endswith(("circle", "rect", "polyline"))]
        assert len(shapes) > 5, pid
    assert 'class="frontier"' in html
    assert result.recommendation["text"].split(":")[0] in html


def test_csv_has_every_option_and_the_cost_formula(result):
    text = render(result, ["csv"])[FILES["csv"]]
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == len(result.options)
    prices = {h.name: h.price_usd_per_device_hour for h in result.scenario.hardware}
    for row in rows:
        hours = float(row["time_to_train_s"]) / 3600
        assert float(row["cost_usd"]) == pytest.approx(int(row["devices"]) * prices[row["hardware"]] * hours)
        assert row["feasible"] in ("true", "false")
    assert any(k.startswith("breakdown_") for k in rows[0])


def test_json_resolves_inputs_and_carries_provenance(result):
    doc = json.loads(render(result, ["json"])[FILES["json"]])
    assert set(doc) >= {"inputs", "provenance", "options", "frontier", "recommendation", "plots"}
    assert doc["inputs"]["workloads"][0]["workload"]["name"] == "tiny"
    assert doc["inputs"]["hardware"][0]["profile"]["device"]["hbm_bytes"] == 80e9
    prov = doc["provenance"]
    h100 = prov["hardware"]["h100-sxm-80gb"]
    assert h100["price"]["status"] == "datasheet" and h100["price"]["as_of"] == "2025-06"
    assert prov["hardware"]["mi300x"]["price"]["status"] == "override"
    assert h100["figures"]["device.hbm_bytes"]["as_of"] and h100["calibration"]["status"] in (
        "none",
        "calibrated",
    )
    assert prov["law"]["source"] and prov["law"]["params"]["beta"] == 0.25
    assert prov["economics"]["pue"]["value"] == 1.2
    for o in doc["options"]:
        hw = o["provenance"]["hardware"]
        assert hw.split(".", 1)[1] in prov["hardware"]
    for field, sources in prov["option_fields"].items():
        assert sources, field
    assert set(doc["plots"]) == set(PLOTS)


def test_markdown_twin(result):
    md = render(result, ["md"])[FILES["md"]]
    assert md.startswith("# Capacity report: fake")
    assert "## Frontier" in md and "## Provenance" in md and "| rank |" in md
    assert result.recommendation["text"] in md
