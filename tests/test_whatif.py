"""What-if evaluation with an injected step model: economics per option, constraints and bindings,
frontier, recommendation, the simulation cache, and the process and Dask executors."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from planner.scenario import scenario_from_mapping
from planner.whatif import binding_of_bottleneck, evaluate_scenario
from planner.workload import derive

CALLS: list[tuple[str, str, int, int]] = []


@dataclass(frozen=True)
class FakeResult:
    step_time_s: float
    step_time_p99_s: float
    samples_per_s: float
    peak_memory_bytes: float
    host_memory_bytes: float
    fits_in_memory: bool
    infeasible_reason: str
    binding: str
    breakdown_s: dict = field(default_factory=dict)
    sharding: dict = field(default_factory=dict)


def fake_simulate(
    workload, profile, devices, *, sharding="auto", steps=20, seed=0, batch_size=None, cost_model=None
):
    """A made-up step model: throughput grows with devices and HBM bandwidth; memory splits over devices."""
    CALLS.append((workload.name, profile.name, devices, batch_size))
    batch = batch_size or workload.training.batch_size
    per_device = profile.device.hbm_bandwidth_bytes_per_s / 1e7  # samples/s per device (fake)
    comm = 1e-3 * math.log2(devices) if devices > 1 else 0.0
    compute = batch / (per_device * devices)
    step = compute + comm
    memory = 4e11 / devices
    fits = memory <= profile.device.hbm_bytes
    return FakeResult(
        step,
        step * 1.1,
        batch / step,
        memory,
        0.0,
        fits,
        "" if fits else "too big",
        "memory" if not fits else ("compute" if compute >= comm else "communication"),
        {"compute": compute, "a2a_fwd": comm},
        {"kind": "table"},
    )


def scenario(tmp_path: Path | None = None, **changes):
    data = {
        "name": "fake",
        "workload": "tiny",
        "quality": {
            "law": {"form": "power_plus_const", "x": "samples", "alpha": 2.0, "beta": 0.25, "gamma": 0.7}
        },
        "sweep": {
            "hardware": ["h100-sxm-80gb", "mi300x"],
            "devices": [2, 4, 8, 16],
            "batch_size": [4096],
            "samples": [1e8, 1e9, 1e10],
        },
        "overrides": {"pue": 1.5, "grid_kg_co2_per_kwh": 0.5},
    }
    data.update(changes)
    folder = tmp_path or Path(".")
    return scenario_from_mapping(data, str(folder / "fake.yaml"), folder)


def evaluate(s, **kw):
    kw.setdefault("executor", "serial")
    return evaluate_scenario(s, simulate_fn=fake_simulate, **kw)


def test_every_option_costs_devices_times_price_times_hours():
    s = scenario()
    r = evaluate(s)
    assert len(r.options) == s.option_count == 2 * 4 * 3
    prices = {h.name: h.price_usd_per_device_hour for h in s.hardware}
    power = {h.name: h.power_w for h in s.hardware}
    for o in r.options:
        # sweep.samples are total samples seen (DESIGN.md), whatever the workload's epochs
        assert o.samples_seen == o.samples and o.epochs == pytest.approx(o.samples / 1e6)  # tiny: 1e6/epoch
        hours = o.samples / o.samples_per_s / 3600
        assert o.time_to_train_s == pytest.approx(o.samples / o.samples_per_s)
        assert o.cost_usd == pytest.approx(o.devices * prices[o.hardware] * hours)
        assert o.energy_kwh == pytest.approx(o.devices * power[o.hardware] * hours * 1.5 / 1000)
        assert o.co2_kg == pytest.approx(o.energy_kwh * 0.5)
        assert o.ne == pytest.approx(2.0 * o.samples**-0.25 + 0.7)
        assert o.ne_lo80 is None and o.ne_hi80 is None  # an inline law knows no interval


def test_identical_simulations_are_shared():
    s = scenario()
    CALLS.clear()
    cache: dict = {}
    evaluate(s, cache=cache)
    assert len(CALLS) == 2 * 4  # the three data sizes share one simulation
    assert len(set(CALLS)) == len(CALLS)
    CALLS.clear()
    r = evaluate(s, cache=cache)
    assert CALLS == [] and r.cached_simulations == r.unique_simulations == 8


def test_constraints_bindings_and_frontier():
    s = scenario(constraints={"max_days": 0.02, "max_cost_usd": 40, "target_ne": 0.715})
    r = evaluate(s)
    for o in r.options:
        expected = []
        if not o.fits_in_memory:
            expected.append("memory")
        if o.time_to_train_days > 0.02:
            expected.append("deadline")
        if o.cost_usd > 40:
            expected.append("budget")
        if o.ne > 0.715:
            expected.append("target_ne")
        assert list(o.violations) == expected
        assert o.feasible == (not expected)
        assert o.binding == (expected[0] if expected else binding_of_bottleneck(o.bottleneck))
    feasible = [o for o in r.options if o.feasible]
    assert feasible and {o.binding for o in r.options} >= {"memory", "target_ne"}
    front = [r.option(i) for i in r.frontier]
    assert all(o.pareto and o.feasible for o in front)
    assert sum(o.pareto for o in r.options) == len(front)
    for o in feasible:  # no feasible option beats a frontier point on both axes
        for f in front:
            assert not (o.cost_usd < f.cost_usd and o.ne < f.ne)
    # ranking: feasible first, then cheapest; the recommendation is the first option
    assert [o.rank for o in r.options] == list(range(1, len(r.options) + 1))
    assert r.options[0].feasible and r.recommendation["option"]["id"] == r.options[0].id
    costs = [o.cost_usd for o in r.options if o.feasible]
    assert costs == sorted(costs)
    assert r.recommendation["feasible"] and "limited by" in r.recommendation["text"]


def test_nothing_feasible_names_the_binding_constraint():
    r = evaluate(scenario(constraints={"max_days": 1e-6, "max_cost_usd": 1e9}))
    rec = r.recommendation
    assert not r.feasible and rec["option"] is None
    assert rec["bound_by"] == "deadline" and "deadline (max_days 1e-06) binds" in rec["text"]
    assert rec["closest"]["time_to_train_s"] == min(o.time_to_train_s for o in r.options if o.fits_in_memory)
    r = evaluate(scenario(constraints={"target_ne": 0.5}))
    assert r.recommendation["bound_by"] == "target_ne"
    assert "never reaches this target" in r.recommendation["text"]


def test_samples_to_target_and_objectives():
    r = evaluate(scenario(constraints={"target_ne": 0.72}))
    need = (2.0 / 0.02) ** 4  # 2 x^-0.25 + 0.7 = 0.72
    for o in r.options:
        assert o.samples_to_target == pytest.approx(need)
        assert o.cost_to_target_usd == pytest.approx(o.cost_usd * need / o.samples)
    by_time = evaluate(scenario(objective="time"))
    days = [o.time_to_train_days for o in by_time.options if o.feasible]
    assert days == sorted(days)
    by_ne = evaluate(scenario(objective="ne"))
    assert by_ne.options[0].samples == 1e10
    by_q = evaluate(scenario(objective="quality_per_dollar"))
    q = [o.quality_per_dollar for o in by_q.options if o.feasible]
    assert q == sorted(q, reverse=True) and q[0] > 0


def test_json_document_contract():
    doc = evaluate(scenario()).to_dict()
    assert set(doc) >= {"options", "frontier", "recommendation"}
    required = {
        "hardware",
        "devices",
        "batch_size",
        "samples",
        "step_time_s",
        "samples_per_s",
        "time_to_train_s",
        "cost_usd",
        "energy_kwh",
        "peak_memory_bytes",
        "fits_in_memory",
        "ne",
        "ne_lo80",
        "ne_hi80",
        "feasible",
        "pareto",
        "binding",
    }
    for o in doc["options"]:
        assert required <= set(o)


def test_process_executor_matches_serial():
    s = scenario()
    serial = evaluate(s, cache={})
    parallel = evaluate(s, executor="process", workers=2, cache={})
    assert [o.to_dict() for o in serial.options] == [o.to_dict() for o in parallel.options]


def test_dask_executor_on_a_local_cluster():
    distributed = pytest.importorskip("distributed")
    s = scenario()
    serial = evaluate(s, cache={})
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None, silence_logs=40
    ) as cluster:
        remote = evaluate(s, executor="dask", scheduler=cluster.scheduler_address, cache={})
    assert [o.to_dict() for o in serial.options] == [o.to_dict() for o in remote.options]


def test_progress_reports_every_simulation():
    seen: list[tuple[int, int]] = []
    evaluate(scenario(), cache={}, progress=lambda done, total: seen.append((done, total)))
    assert seen[0] == (0, 8) and seen[-1] == (8, 8)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def _slow_network_scenario(tmp_path: Path, devices: list[int], factor: str = "x0.05"):
    from planner.hardware import derive_profile, profile_yaml

    slow = derive_profile(
        "h100-sxm-80gb",
        [f"network.per_device_bandwidth_bytes_per_s={factor}"],
        "h100-slow-net",
        today="2026-01-01",
    )
    (tmp_path / "slow.yaml").write_text(profile_yaml(slow))
    data = {
        "name": "slow-net",
        "workload": "dlrm-dcnv2-multihot",
        "quality": {
            "law": {"form": "power_plus_const", "x": "samples", "alpha": 1.76, "beta": 0.154, "gamma": 0.647}
        },
        "sweep": {"hardware": ["h100-sxm-80gb", "slow.yaml"], "devices": devices, "samples": [1e10]},
        "overrides": {"price_usd_per_device_hour": {"h100-slow-net": 5.0}},
        "simulation": {"steps": 5},
    }
    return scenario_from_mapping(data, str(tmp_path / "slow-net.yaml"), tmp_path)


def test_binding_follows_the_simulated_bottleneck(tmp_path):
    """With the real step model: a 50x slower network makes multi-node DCNv2 training communication-bound
    (at 20x its Zipf tables' coalescing updates still weigh as much as the all-to-alls on 16 GPUs),
    while the same job on the datasheet network stays compute-bound."""
    r = evaluate_scenario(_slow_network_scenario(tmp_path, [16, 64], "x0.02"), executor="serial", cache={})
    binding = {(o.hardware, o.devices): o.binding for o in r.options}
    assert binding[("h100-slow-net", 16)] == binding[("h100-slow-net", 64)] == "communication"
    assert binding[("h100-sxm-80gb", 16)] == binding[("h100-sxm-80gb", 64)] == "compute"
    for o in r.options:  # no constraints: the binding is the step's bottleneck
        assert o.binding == binding_of_bottleneck(o.bottleneck)


def test_binding_is_communication_when_the_input_all_to_all_dominates(tmp_path):
    r = evaluate_scenario(_slow_network_scenario(tmp_path, [1024]), executor="serial", cache={})
    slow = next(o for o in r.options if o.hardware == "h100-slow-net")
    assert slow.binding == "communication"


def _tiny_with_epochs(epochs: float) -> dict:
    import dataclasses
    import json

    from planner.io import to_json
    from planner.workload import load_workload

    mapping = json.loads(to_json(dataclasses.asdict(load_workload("tiny"))))
    mapping["training"]["epochs"] = epochs
    return mapping


def test_sweep_samples_are_total_samples_seen_not_per_epoch():
    """DESIGN.md: sweep.samples defaults to the workload's samples x epochs, so its values are the samples
    seen in training; a 3-epoch workload does not multiply them again."""
    workload = _tiny_with_epochs(3)  # 1e6 samples per epoch
    sweep = {"hardware": ["h100-sxm-80gb"], "devices": [2], "batch_size": [4096], "samples": [1e6]}
    r = evaluate(scenario(workload=workload, sweep=sweep, constraints={"target_ne": 0.72}))
    (o,) = r.options
    assert o.samples == o.samples_seen == 1e6  # not 3e6
    assert o.epochs == pytest.approx(1.0)  # 1e6 samples seen = one pass over the 1e6-sample data set
    assert o.time_to_train_s == pytest.approx(1e6 / o.samples_per_s)
    assert o.ne == pytest.approx(2.0 * 1e6**-0.25 + 0.7)
    need = (2.0 / 0.02) ** 4  # samples seen where 2 x^-0.25 + 0.7 = 0.72, not divided by the epochs
    assert o.samples_to_target == pytest.approx(need)
    assert o.time_to_target_s == pytest.approx(need / o.samples_per_s)

    default = evaluate(scenario(workload=workload, sweep={k: v for k, v in sweep.items() if k != "samples"}))
    (d,) = default.options
    assert default.scenario.samples == (3e6,)  # the default: samples per epoch x epochs
    assert d.samples == d.samples_seen == 3e6 and d.epochs == pytest.approx(3.0)
    assert d.time_to_train_s == pytest.approx(3e6 / d.samples_per_s)


def test_flops_law_target_is_in_samples_seen():
    workload = _tiny_with_epochs(4)
    law = {"law": {"form": "power_plus_const", "x": "flops", "alpha": 2.0, "beta": 0.1, "gamma": 0.7}}
    sweep = {"hardware": ["b200"], "devices": [2], "samples": [1e6, 1e7]}
    s = scenario(workload=workload, quality=law, sweep=sweep, constraints={"target_ne": 0.9})
    r = evaluate(s)
    from planner.workload import derive

    flops = derive(s.workloads[0].workload).flops_per_sample
    for o in r.options:
        assert o.ne == pytest.approx(2.0 * (flops * o.samples) ** -0.1 + 0.7)
        assert o.samples_to_target == pytest.approx(s.law.x_for_target(0.9) / flops)


def fake_host_simulate(workload, profile, devices, **kw):
    """``fake_simulate`` whose fitting steps the host bounds (launch overhead), as at a small batch."""
    result = fake_simulate(workload, profile, devices, **kw)
    return result if result.binding == "memory" else dataclasses.replace(result, binding="host")


CONTRACT_BINDINGS = {"memory", "compute", "communication", "budget", "deadline"}


def test_host_bound_step_binds_as_compute_and_keeps_host_as_bottleneck():
    s = scenario(constraints={"target_ne": 0.715})
    r = evaluate_scenario(s, simulate_fn=fake_host_simulate, executor="serial", cache={})
    host = [o for o in r.options if o.bottleneck == "host"]
    assert host and all(o.binding != "host" for o in r.options)
    for o in host:
        assert o.binding == ("compute" if o.feasible else o.violations[0])
    # target_ne is the one word beyond the contract's list, and only for options that miss the target
    assert {o.binding for o in r.options} <= CONTRACT_BINDINGS | {"target_ne"}
    assert all("target_ne" in o.violations for o in r.options if o.binding == "target_ne")
    doc = r.to_dict()
    for o in doc["options"]:
        assert o["bottleneck"] in ("compute", "communication", "host", "memory")
    rec = r.recommendation
    assert rec["binding"] == "compute" and rec["option"]["bottleneck"] == "host"
    assert "host" not in rec["binding_counts"]
    assert "limited by compute (host-bound" in rec["text"]
    best = r.option(rec["option"]["id"])
    assert best.binding_text() == "compute (host)"


def test_recommendation_sentence_keeps_small_costs_and_energies():
    """Costs of cents and energies below 1 kWh are written as the table writes them, never as $0 or 0."""
    from planner.economics import fmt_kwh, fmt_usd

    sweep = {"hardware": ["h100-sxm-80gb", "mi300x"], "devices": [8, 16], "batch_size": [4096],
             "samples": [6e6]}
    r = evaluate(scenario(sweep=sweep, overrides={"price_usd_per_device_hour": {"h100-sxm-80gb": 1.0}}))
    rec = r.recommendation
    best = r.option(rec["option"]["id"])
    fastest = r.option(rec["alternatives"]["fastest"]["id"])
    assert best.cost_usd < 0.1 and fastest.cost_usd < 0.1 and best.energy_kwh < 1  # the case QA found
    text = rec["text"]
    assert f"{fmt_usd(best.cost_usd)}, {fmt_kwh(best.energy_kwh)} kWh" in text
    assert "$0.01, 0.010 kWh" in text  # was "$0, 0 kWh"
    assert fastest.id != best.id and f"for {fmt_usd(fastest.cost_usd)}." in text
    assert "for $0.08." in text  # was "for $0."
    assert "$0," not in text and " 0 kWh" not in text and "for $0. " not in text


def _fitted(bootstrap: int):
    examples = Path(__file__).resolve().parents[1] / "examples"
    data = {
        "name": "fitted",
        "workload": "tiny",
        "quality": {
            "fit": str(examples / "observations-synthetic.csv"),
            "x": "samples",
            "bootstrap": bootstrap,
        },
        "sweep": {"hardware": ["h100-sxm-80gb", "mi300x"], "devices": [2, 4, 8], "samples": [1e8, 1e10]},
        "constraints": {"max_cost_usd": 600, "target_ne": 0.76},
    }
    return evaluate(scenario_from_mapping(data, "fitted.yaml", Path(".")))


def test_a_law_without_interval_gives_null_bounds_not_a_zero_width_interval():
    """An inline law, or a fit without bootstrap, has no 80%/95% interval: the bounds are None (null in
    JSON), never equal to ``ne``; ranking, frontier, feasibility against target_ne and the recommendation
    follow ``ne`` exactly as with a bootstrap interval."""
    import json

    from planner.io import to_json

    inline = evaluate(scenario(constraints={"target_ne": 0.715}))
    doc = json.loads(to_json(inline.to_dict()))
    for o in doc["options"]:
        assert {"ne_lo80", "ne_hi80", "ne_lo95", "ne_hi95"} <= set(o)
        assert o["ne_lo80"] is None and o["ne_hi80"] is None and o["ne_lo95"] is None and o["ne_hi95"] is None
        assert math.isfinite(o["ne"])
        assert o["feasible"] == (not o["violations"])
        assert ("target_ne" in o["violations"]) == (not o["ne"] <= 0.715)
    assert doc["frontier"] and all(f["ne_lo80"] is None and f["ne_hi80"] is None for f in doc["frontier"])
    rec = doc["recommendation"]
    assert rec["feasible"] and rec["option"]["ne_lo80"] is None and "80%" not in rec["text"]
    assert all(o.interval80 is None for o in inline.options)

    bare, boot = _fitted(0), _fitted(100)
    assert not bare.scenario.law.has_interval and boot.scenario.law.has_interval
    assert all(o.ne_lo80 is None and o.ne_hi95 is None for o in bare.options)
    assert all(o.ne_lo80 <= o.ne <= o.ne_hi80 for o in boot.options)
    assert any(o.interval80 for o in boot.options)
    same = ("id", "ne", "feasible", "violations", "binding", "pareto", "rank")
    assert [[getattr(o, k) for k in same] for o in bare.options] == [
        [getattr(o, k) for k in same] for o in boot.options
    ]
    assert bare.frontier == boot.frontier and bare.recommendation["feasible"]
    assert bare.recommendation["option"]["id"] == boot.recommendation["option"]["id"]
    assert "[80%: " in boot.recommendation["text"] and "80%" not in bare.recommendation["text"]


def test_a_preset_far_outside_its_documented_range_warns_once_and_keeps_its_numbers():
    s = scenario(quality={"preset": "hstu_2024_ranking"})  # tiny: ~1e-10 PF-days against 1e3 to 1e6
    r = evaluate(s)
    assert len(r.warnings) == 1  # one per scenario, not one per option
    w = r.warnings[0]
    assert w["kind"] == "extrapolation" and w["field"] == "quality.preset" and w["axis"] == "flops"
    assert w["law"] == "preset hstu_2024_ranking" and w["x_range_kind"] == "documented"
    assert w["factor"] == 10.0
    assert w["options"] == sorted(o.id for o in r.options)
    assert w["x_range"] == pytest.approx([1e3 * 8.64e19, 1e6 * 8.64e19])
    assert len(w["values"]) == 3 and all(v < 1e3 * 8.64e19 / 10 for v in w["values"])
    assert w["text"].startswith(f"{s.file}: quality.preset: preset hstu_2024_ranking is evaluated at flops ")
    assert "more than 10x outside its documented range 1e3 to 1e6 PF-days (24 of 24 options)" in w["text"]
    assert "\n" not in w["text"]
    flops = derive(s.workloads[0].workload).flops_per_sample
    for o in r.options:  # the numbers are the law's, unchanged
        assert o.ne == s.law.predict(o.samples * flops) and o.ne_lo80 is None
    doc = r.to_dict()
    assert doc["warnings"] == [w] and {"options", "frontier", "recommendation", "scenario"} <= set(doc)


def test_a_fitted_law_warns_only_for_options_beyond_its_observed_runs(tmp_path):
    csv_path = Path(__file__).resolve().parents[1] / "examples" / "observations-synthetic.csv"
    s = scenario(quality={"fit": str(csv_path), "x": "samples", "bootstrap": 20},
                 sweep={"hardware": ["h100-sxm-80gb"], "devices": [2, 4], "samples": [1e8, 2e10, 1e11]})
    r = evaluate(s)
    (w,) = r.warnings
    assert sorted(w["options"]) == sorted(o.id for o in r.options if o.samples == 1e11)  # 2e10: 10x, inside
    assert w["values"] == [1e11] and w["x_range"] == [1e7, 2e9] and w["x_range_kind"] == "observed"
    said = "evaluated at samples 1e11, more than 10x outside its observed range 1e7 to 2e9 (2 of 6 options)"
    assert said in w["text"]
    assert "80% interval leaves out" in w["text"]  # a bootstrapped fit: its interval assumes the form


def test_a_law_inside_its_range_or_without_one_gives_no_warning():
    r = evaluate(scenario())
    assert r.warnings == () and r.to_dict()["warnings"] == []
