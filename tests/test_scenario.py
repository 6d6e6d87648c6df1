"""Scenario parsing: examples load, defaults, model scaling, prices, and one-line errors naming the field."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
import yaml

from planner.errors import InputError
from planner.io import to_json
from planner.scenario import load_scenario, scale_workload, scenario_from_mapping
from planner.workload import derive, load_workload

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
LAW = {"law": {"form": "power_plus_const", "x": "samples", "alpha": 2.0, "beta": 0.25, "gamma": 0.7}}


def base(**changes):
    data = {
        "name": "t",
        "workload": "tiny",
        "quality": LAW,
        "sweep": {"hardware": ["h100-sxm-80gb", "b200"], "devices": [1, 2, 4]},
    }
    data.update(changes)
    return data


def parse(data, tmp_path=None):
    folder = tmp_path or Path(".")
    return scenario_from_mapping(data, str(folder / "s.yaml"), folder)


def error(data, tmp_path=None) -> InputError:
    with pytest.raises(InputError) as info:
        parse(data, tmp_path)
    return info.value


@pytest.mark.parametrize("name", ["future-device-scenario", "model-scale", "gb200-priced", "infeasible"])
def test_examples_load(name):
    s = load_scenario(EXAMPLES / f"{name}.yaml")
    assert s.option_count >= 4
    assert all(h.price_usd_per_device_hour > 0 for h in s.hardware)


def test_defaults_come_from_the_workload():
    s = parse(base())
    w = load_workload("tiny")
    assert s.batch_sizes == (w.training.batch_size,)
    assert s.samples == (w.training.samples * w.training.epochs,)
    assert s.epochs == w.training.epochs and s.samples_per_epoch == w.training.samples
    assert s.constraints.must_fit_memory is True
    assert s.economics.pue == 1.0 and s.economics.grid_kg_co2_per_kwh is None
    assert s.objective == "cost" and s.simulation.steps == 20
    assert s.option_count == 2 * 3


def test_prices_power_and_their_provenance():
    s = parse(
        base(
            overrides={
                "price_usd_per_device_hour": {"b200": 10.0},
                "power_w": {"h100-sxm-80gb": 650},
                "pue": 1.25,
                "grid_kg_co2_per_kwh": 0.3,
            }
        )
    )
    h100, b200 = s.hardware
    assert h100.price_usd_per_device_hour == 6.88 and h100.price.status == "datasheet"
    assert "AWS" in h100.price.source and h100.price.as_of
    assert b200.price_usd_per_device_hour == 10.0 and b200.price.status == "override"
    assert h100.power_w == 650 and b200.power_w == b200.profile.device.power_w
    assert s.economics.pue == 1.25 and s.economics.grid_kg_co2_per_kwh == 0.3


def test_unpriced_profile_needs_an_override():
    err = error(base(sweep={"hardware": ["b200", "gb200"], "devices": [8]}))
    assert err.field == "sweep.hardware[1]" and "overrides.price_usd_per_device_hour.gb200" in err.problem
    s = parse(
        base(
            sweep={"hardware": ["gb200"], "devices": [8]},
            overrides={"price_usd_per_device_hour": {"gb200": 15}},
        )
    )
    assert s.hardware[0].price_usd_per_device_hour == 15


def test_model_scale_multiplies_rows_and_sqrt_widths():
    w = load_workload("criteo-kaggle-dlrm")
    w4 = scale_workload(w, 4)
    assert [t.rows for t in w4.model.tables] == [t.rows * 4 for t in w.model.tables]
    assert w4.model.bottom_mlp[:-1] == tuple(2 * x for x in w.model.bottom_mlp[:-1])
    assert w4.model.bottom_mlp[-1] == w.model.embedding_dim and w4.model.top_mlp[-1] == 1
    ratio = derive(w4).total_params / derive(w).total_params
    assert 3.0 < ratio < 4.5
    assert scale_workload(w, 1) is w


def test_relative_paths_resolve_against_the_scenario(tmp_path):
    (tmp_path / "sub").mkdir()
    src = (EXAMPLES / "future-device.yaml").read_text()
    (tmp_path / "sub" / "dev.yaml").write_text(src)
    (tmp_path / "sub" / "s.yaml").write_text(
        "name: t\nworkload: tiny\nquality: {law: {form: power_law, x: samples, alpha: 1.0, beta: 0.1}}\n"
        "sweep: {hardware: [dev.yaml], devices: [1]}\noverrides: {price_usd_per_device_hour: {dev.yaml: 5}}\n"
    )
    s = load_scenario(tmp_path / "sub" / "s.yaml")
    assert s.hardware[0].name == "h100-next-2xbw" and s.hardware[0].profile.derived_from is not None
    assert s.hardware[0].price_usd_per_device_hour == 5


@pytest.mark.parametrize(
    "change, field",
    [
        ({"colour": "red"}, "colour"),
        ({"sweep": {"hardware": ["b200"], "devices": [1, 2, -4]}}, "sweep.devices[2]"),
        ({"sweep": {"hardware": ["b200"], "devices": [1, 2.5]}}, "sweep.devices[1]"),
        ({"sweep": {"hardware": ["b200"], "devices": [1, 1]}}, "sweep.devices[1]"),
        ({"sweep": {"hardware": ["b200"], "devices": [1], "samples": [1e9, math.nan]}}, "sweep.samples[1]"),
        ({"sweep": {"hardware": ["b200"], "devices": [1], "batch_size": ["big"]}}, "sweep.batch_size[0]"),
        ({"sweep": {"hardware": ["b200", "no-such-gpu"], "devices": [1]}}, "sweep.hardware[1]"),
        ({"sweep": {"hardware": ["b200"], "devices": [1], "nodes": [1]}}, "sweep.nodes"),
        ({"sweep": {"hardware": ["b200"]}}, "sweep.devices"),
        ({"model_scale": [1, 0]}, "model_scale[1]"),
        ({"model_scale": math.inf}, "model_scale"),
        ({"constraints": {"max_days": -1}}, "constraints.max_days"),
        ({"constraints": {"must_fit_memory": "yes"}}, "constraints.must_fit_memory"),
        ({"constraints": {"deadline": 3}}, "constraints.deadline"),
        ({"overrides": {"pue": 0.8}}, "overrides.pue"),
        (
            {"overrides": {"price_usd_per_device_hour": {"b300": 3}}},
            "overrides.price_usd_per_device_hour.b300",
        ),
        (
            {"overrides": {"price_usd_per_device_hour": {"b200": -3}}},
            "overrides.price_usd_per_device_hour.b200",
        ),
        ({"objective": "speed"}, "objective"),
        ({"simulation": {"steps": 0}}, "simulation.steps"),
        ({"workload": "no-such-workload"}, "workload"),
        (
            {
                "quality": {
                    "law": {
                        "form": "power_plus_const",
                        "x": "samples",
                        "alpha": 2.0,
                        "beta": -1,
                        "gamma": 0.7,
                    }
                }
            },
            "quality.law.beta",
        ),
    ],
)
def test_bad_input_names_file_and_field(change, field):
    data = base(**change)
    err = error(data)
    assert err.file == "s.yaml" and err.field == field, err.one_line()
    assert "\n" not in err.one_line()


def test_missing_file_and_malformed_yaml(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        load_scenario(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(InputError, match="malformed YAML"):
        load_scenario(bad)
    err = error(base(workload={"name": "x", "model": {}, "training": {}}), tmp_path)
    assert err.field.startswith("workload.")


def test_workload_inline_or_file_and_sweeps_over_batch_and_scale(tmp_path):
    mapping = json.loads(to_json(dataclasses.asdict(load_workload("tiny"))))
    sweep = {"hardware": ["b200"], "devices": [1, 2], "batch_size": [128, 256]}
    inline = parse(base(workload=mapping, model_scale=[1, 2], sweep=sweep), tmp_path)
    assert inline.workload_ref == "inline" and inline.option_count == 2 * 2 * 2
    assert [sw.scale for sw in inline.workloads] == [1, 2]
    assert inline.batch_sizes == (128, 256)
    (tmp_path / "w.yaml").write_text(yaml.safe_dump(mapping))
    from_file = parse(base(workload="w.yaml"), tmp_path)
    assert from_file.workload_ref == str(tmp_path / "w.yaml")
    assert from_file.workloads[0].workload == inline.workloads[0].workload


def test_quality_law_preset_inline_or_fit():
    preset = parse(base(quality={"preset": "hstu_2024_ranking"}))
    assert preset.law.x == "flops" and "HSTU" in preset.law.source.upper()
    inline = parse(base())
    assert inline.law.params == {"alpha": 2.0, "beta": 0.25, "gamma": 0.7}
    csv_path = EXAMPLES / "observations-synthetic.csv"
    fitted = parse(base(quality={"fit": str(csv_path), "x": "samples", "bootstrap": 100}))
    assert fitted.law.has_interval and "observations-synthetic.csv" in fitted.law.source


def test_sweep_samples_are_samples_seen_and_the_default_counts_every_epoch():
    """DESIGN.md: ``sweep.samples`` is "optional; default: the workload's samples x epochs"."""
    mapping = json.loads(to_json(dataclasses.asdict(load_workload("tiny"))))
    mapping["training"]["epochs"] = 3
    default = parse(base(workload=mapping))
    assert default.samples == (3e6,) and default.epochs == 3 and default.samples_per_epoch == 1e6
    given = parse(base(workload=mapping, sweep={"hardware": ["b200"], "devices": [1], "samples": [1e6, 4e6]}))
    assert given.samples == (1e6, 4e6)  # as written: not multiplied by the 3 epochs


def test_a_law_predicting_negative_ne_is_refused_naming_the_point():
    ll = {"law": {"form": "log_linear", "x": "samples", "y0": 0.5, "k": -0.05}}
    e = error(base(quality=ll, sweep={"hardware": ["b200"], "devices": [1], "samples": [1e6, 1e12]}))
    assert e.field == "quality.law" and e.file.endswith("s.yaml")
    assert e.problem == (
        "predicts NE -0.191 at samples 1e6 to -0.882 at samples 1e12 (2 of 2 points of the sweep; log_linear "
        "y0 0.5, k -0.05); NE must be positive: the law is outside its valid range"
    )
    one = error(base(quality=ll, sweep={"hardware": ["b200"], "devices": [1], "samples": [1e3, 1e4, 1e12]}))
    assert one.problem.startswith("predicts NE -0.882 at samples 1e12 (log_linear y0 0.5, k -0.05); NE must")
    rising = {"law": {"form": "log_linear", "x": "samples", "y0": -1.0, "k": 0.1}}  # negative below ~2.2e4
    e = error(base(quality=rising, sweep={"hardware": ["b200"], "devices": [1], "samples": [100, 1e6]}))
    assert "predicts NE -0.539 at samples 100 (" in e.problem
    ok = parse(base(quality=ll, sweep={"hardware": ["b200"], "devices": [1], "samples": [1e3, 1e4]}))
    assert ok.law.predict(1e4) > 0  # inside its valid range: accepted


def test_every_form_is_checked_for_impossible_values():
    # A power law is positive in exact arithmetic, but an underflow to NE 0 must not pass silently.
    tiny_alpha = {"law": {"form": "power_law", "x": "samples", "alpha": 1e-300, "beta": 10.0}}
    e = error(base(quality=tiny_alpha, sweep={"hardware": ["b200"], "devices": [1], "samples": [1e16]}))
    assert e.field == "quality.law" and "predicts NE 0 at samples 1e16" in e.problem
    floor0 = {"law": {"form": "power_plus_const", "x": "samples", "alpha": 1e-300, "beta": 10.0,
                      "gamma": 0.0}}
    assert "NE must be positive" in error(base(quality=floor0, sweep={"hardware": ["b200"], "devices": [1],
                                                                       "samples": [1e16]})).problem
    # A preset: HSTU's retrieval hit rate far below its range goes negative; the error names the preset field.
    e = error(base(quality={"preset": "hstu_2024_retrieval"}))
    assert e.field == "quality.preset"
    assert e.problem.startswith("predicts hr_at_100 -0.") and "PF-days" in e.problem
    assert "hr_at_100 is a fraction and must be in [0, 1]" in e.problem
    # A metric that may be negative (a relative change) is not refused.
    rel = {"law": {"form": "log_linear", "x": "samples", "y0": 0.0, "k": -0.1,
                   "metric": "relative_logloss_pct"}}
    assert parse(base(quality=rel)).law.metric == "relative_logloss_pct"


def test_an_impossible_value_over_flops_names_samples_and_model_scale():
    ll = {"law": {"form": "log_linear", "x": "flops", "y0": 0.5, "k": -0.05}}
    e = error(base(quality=ll, model_scale=[1, 4], sweep={"hardware": ["b200"], "devices": [1],
                                                          "samples": [1e6]}))
    assert e.field == "quality.law"
    assert "at flops " in e.problem and "(samples 1e6, model_scale " in e.problem


def test_the_quality_field_and_name_of_each_kind_of_law():
    assert (parse(base()).quality_field, parse(base()).law_name) == ("quality.law", "the inline law")
    p = parse(base(quality={"preset": "hstu_2024_ranking"}))
    assert (p.quality_field, p.law_name) == ("quality.preset", "preset hstu_2024_ranking")
    csv_path = EXAMPLES / "observations-synthetic.csv"
    f = parse(base(quality={"fit": str(csv_path), "x": "samples", "bootstrap": 10}))
    assert (f.quality_field, f.law_name) == ("quality.fit", f"the law fitted to {csv_path}")
