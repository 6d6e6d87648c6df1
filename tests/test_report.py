"""Reports: four files, byte-identical on a second run, well-formed inline SVG plots, CSV of every option,
JSON with resolved inputs and provenance."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from test_whatif import fake_host_simulate, fake_simulate, scenario

from planner.errors import InputError
from planner.report import FILES, render, write_report
from planner.report.plots import PLOTS
from planner.scenario import scenario_from_mapping
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


ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def _svg(html: str, pid: str) -> ET.Element:
    match = re.search(rf'<svg[^>]*id="{pid}".*?</svg>', html, re.S)
    assert match, pid
    return ET.fromstring(match.group(0))


def test_cost_ne_plot_marks_frontier_intervals_and_recommendation(tmp_path):
    """80% intervals are drawn for frontier options only (one error bar and two caps each); the recommended
    option is ringed in both the cost/NE and the time/devices plots."""
    data = {
        "name": "fitted",
        "workload": "tiny",
        "quality": {"fit": str(EXAMPLES / "observations-synthetic.csv"), "x": "samples", "bootstrap": 100},
        "sweep": {"hardware": ["h100-sxm-80gb", "mi300x"], "devices": [2, 4, 8], "samples": [1e8, 1e10]},
        "constraints": {"max_cost_usd": 30},
    }
    s = scenario_from_mapping(data, str(tmp_path / "fitted.yaml"), tmp_path)
    r = evaluate_scenario(s, simulate_fn=fake_simulate, executor="serial", cache={})
    html = render(r, ["html"])[FILES["html"]]
    root = _svg(html, "plot-cost-ne")
    ns = "{http://www.w3.org/2000/svg}"
    bars = [
        e for e in root.iter(f"{ns}line") if e.get("stroke") == "#111111" and e.get("stroke-width") == "1.2"
    ]
    with_interval = [o for o in (r.option(i) for i in r.frontier) if o.ne_hi80 > o.ne_lo80]
    assert with_interval and len(bars) == 3 * len(with_interval) + 1  # + the legend's sample bar
    assert len([e for e in root.iter(f"{ns}circle") if e.get("class") == "recommended"]) == 1
    assert (
        len(
            [
                e
                for e in _svg(html, "plot-time-devices").iter(f"{ns}circle")
                if e.get("class") == "recommended"
            ]
        )
        == 1
    )
    assert "over budget ($30)" in "".join(root.itertext())
    # The at-a-glance table and the data needed for the target come before the plots.
    assert html.index(">recommended<") < html.index('id="plot-cost-ne"')


def test_calibrated_profile_carries_its_measurement_hash(tmp_path):
    data = {
        "name": "cpu",
        "workload": "tiny",
        "quality": {"law": {"form": "power_law", "x": "samples", "alpha": 1.0, "beta": 0.1}},
        "sweep": {"hardware": [str(EXAMPLES / "cpu-calibrated.yaml"), "b200"], "devices": [1, 2]},
        "overrides": {"price_usd_per_device_hour": {"cpu-calibrated": 2.5}},
    }
    s = scenario_from_mapping(data, str(tmp_path / "cpu.yaml"), tmp_path)
    r = evaluate_scenario(s, simulate_fn=fake_simulate, executor="serial", cache={})
    texts = render(r, ["json", "html", "md"])
    cal = json.loads(texts[FILES["json"]])["provenance"]["hardware"]["cpu-calibrated"]["calibration"]
    assert cal["status"] == "calibrated" and cal["device_name"] == "AMD EPYC"
    assert cal["date"] == s.hardware[0].profile.calibration["date"]
    measured = ROOT / "calibration/measurements/cpu-quick-epyc-2core-d.json"
    digest = hashlib.sha256(measured.read_bytes()).hexdigest()
    assert cal["files"][0]["sha256"] == digest  # the shipped calibration cites its measurement file
    for name in (FILES["html"], FILES["md"]):
        assert f"sha256 {digest[:12]}" in texts[name], name


def test_log_axis_ticks_stay_readable():
    from planner.report.plots import _Axis

    assert _Axis(80, 12000, 0, 1, True).ticks() == [100, 200, 500, 1000, 2000, 5000, 10000]
    narrow = _Axis(0.85, 1.7, 0, 1, True).ticks()  # less than a decade: evenly spaced instead
    assert len(narrow) >= 3 and all(0.85 <= v <= 1.7 for v in narrow)
    assert _Axis(1, 1e8, 0, 1, True).ticks() == [10.0**e for e in range(9)]


def test_every_option_figure_has_resolvable_provenance(result):
    """provenance.option_fields names, for every field of an option, entries that exist in the document:
    ``inputs.*`` from the root, the rest under ``provenance`` (``{hardware}`` is the option's hardware)."""
    doc = json.loads(render(result, ["json"])[FILES["json"]])
    fields = doc["provenance"]["option_fields"]
    option = doc["options"][0]
    assert set(option) - {"id", "rank", "provenance"} <= set(fields)

    def resolve(path: str) -> object:  # raises AssertionError when a part of the path is missing
        node: object = doc if path.startswith("inputs.") else doc["provenance"]
        parts = path.split(".")
        k = 0
        while k < len(parts):
            assert isinstance(node, dict), path
            # figure keys contain dots themselves (device.hbm_bytes): take the longest key that matches
            for j in range(len(parts), k, -1):
                key = ".".join(parts[k:j])
                if key in node:
                    node, k = node[key], j
                    break
            else:
                raise AssertionError(f"{path}: {parts[k]!r} not found")
        return node

    for paths in fields.values():
        for path in paths:
            resolve(path.replace("{hardware}", option["provenance"]["hardware"]))


def _old_report(folder: Path) -> dict[str, bytes]:
    folder.mkdir(parents=True, exist_ok=True)
    old = {}
    for k, name in enumerate(FILES.values()):
        old[name] = f"OLD {name} {k}\n".encode()
        (folder / name).write_bytes(old[name])
    return old


def _listing(folder: Path) -> dict[str, bytes | None]:
    return {p.name: (None if p.is_dir() else p.read_bytes()) for p in sorted(folder.iterdir())}


def test_a_folder_in_the_way_leaves_the_old_report_byte_for_byte(result, tmp_path):
    """QA: options.csv a folder used to fail only after report.html, .md and .json were rewritten."""
    out = tmp_path / "r15"
    (out / "options.csv").mkdir(parents=True)
    (out / "report.html").write_bytes(b"OLD\n")
    before = _listing(out)
    with pytest.raises(InputError) as info:
        write_report(result, out)
    assert info.value.one_line() == f"{out / 'options.csv'}: is a folder, expected a file path"
    assert (out / "report.html").read_bytes() == b"OLD\n"
    assert _listing(out) == before  # nothing written, no temporary file left behind


def test_a_write_failing_part_way_restores_the_old_files(result, tmp_path, monkeypatch):
    """A failure after the checks (disk full on the third file) puts back what was already replaced."""
    import planner.io

    out = tmp_path / "rep"
    old = _old_report(out)
    (out / "report.json").unlink()  # one file new: it must be removed again
    del old["report.json"]
    real = planner.io.atomic_write_bytes
    calls = []

    def failing(path, data):
        calls.append(Path(path).name)
        if len(calls) == 3:
            raise InputError("cannot write: No space left on device", file=str(path))
        real(path, data)

    monkeypatch.setattr(planner.io, "atomic_write_bytes", failing)
    with pytest.raises(InputError, match="No space left"):
        write_report(result, out)
    assert calls[:3] == ["report.html", "report.md", "report.json"]
    assert _listing(out) == old


def test_an_unwritable_folder_is_refused_before_anything_is_written(result, tmp_path, monkeypatch):
    import planner.io

    out = tmp_path / "ro"
    old = _old_report(out)

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(planner.io.tempfile, "mkstemp", refuse)
    with pytest.raises(InputError) as info:
        write_report(result, out)
    assert info.value.one_line() == f"{out}: --out: cannot write into the folder: permission denied"
    assert _listing(out) == old


def test_a_file_where_the_folder_should_be_is_refused(result, tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(InputError, match="is not a folder"):
        write_report(result, tmp_path / "f")
    with pytest.raises(InputError, match="cannot create the folder"):
        write_report(result, tmp_path / "f" / "sub")
    assert (tmp_path / "f").read_text() == "x"


def test_host_bound_steps_read_as_compute_with_the_host_named(tmp_path):
    s = scenario(constraints={"target_ne": 0.715})
    r = evaluate_scenario(s, simulate_fn=fake_host_simulate, executor="serial", cache={})
    texts = render(r, ["md", "csv", "json"])
    md = texts[FILES["md"]]
    host = sum(1 for o in r.options if o.bottleneck == "host" and o.binding == "compute")
    assert host and f"({host} of these host-bound: bottleneck host)" in md
    assert "| compute (host) |" in md and "| host |" not in md
    rows = list(csv.DictReader(io.StringIO(texts[FILES["csv"]])))
    assert {row["binding"] for row in rows} <= {"memory", "compute", "communication", "budget", "deadline",
                                                 "target_ne"}
    assert any(row["bottleneck"] == "host" and row["binding"] == "compute" for row in rows)
    doc = json.loads(texts[FILES["json"]])
    assert "host" not in doc["recommendation"]["binding_counts"]


def test_target_sentence_counts_samples_seen(result):
    from planner.report.tables import target_text

    text = target_text(result)
    need = (2.0 / 0.015) ** 4  # 2 x^-0.25 + 0.7 = 0.715, in samples seen
    assert text and f"takes {need:.3g} samples seen" in text


def test_a_law_without_interval_reports_empty_bounds_and_still_renders(result, tmp_path):
    """The module's scenario has an inline law (no interval): every report renders, byte-reproducibly, with
    null bounds in JSON, empty CSV cells and no zero-width interval drawn or printed."""
    assert not result.scenario.law.has_interval
    first = write_report(result, tmp_path / "a")
    second = write_report(result, tmp_path / "b")
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name
    files = render(result, ["html", "md", "json", "csv"])
    rows = list(csv.DictReader(io.StringIO(files[FILES["csv"]])))
    assert rows and all(float(r["ne"]) > 0 for r in rows)
    assert all(r[k] == "" for r in rows for k in ("ne_lo80", "ne_hi80", "ne_lo95", "ne_hi95"))
    doc = json.loads(files[FILES["json"]])
    assert all(o["ne_lo80"] is None and o["ne_hi80"] is None for o in doc["options"])
    assert doc["provenance"]["option_fields"]["ne_lo80"] == ["law"]
    html = files[FILES["html"]]
    root = _svg(html, "plot-cost-ne")
    ns = "{http://www.w3.org/2000/svg}"
    bars = [
        e for e in root.iter(f"{ns}line") if e.get("stroke") == "#111111" and e.get("stroke-width") == "1.2"
    ]
    assert bars == []  # no error bars and no legend entry for an interval that does not exist
    assert "None" not in html and "(80%: " not in html and "no 80% interval" in html
    md = files[FILES["md"]]
    assert "None" not in md and "none (law without interval)" in md
