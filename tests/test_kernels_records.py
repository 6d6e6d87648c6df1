"""The measurement record schema, timing statistics, index generators and case planning."""

from __future__ import annotations

import copy
import json

import pytest

from kernels import specs
from kernels.records import (
    SCHEMA_VERSION,
    RecordSchemaError,
    case_id,
    make_record,
    new_document,
    validate_document,
    validate_record,
)
from kernels.timing import TimingPolicy, is_stable, measure, percentile, summarize

TIMING = {"median_s": 2e-3, "p10_s": 1e-3, "p90_s": 3e-3, "reps": 7}
GEMM = {"batch": 2048, "in_features": 512, "out_features": 256}
ENV = {
    k: None
    for k in (
        "device_name",
        "compute_units",
        "memory_bytes",
        "clocks",
        "driver",
        "cuda",
        "torch",
        "cpu_model",
        "threads",
        "hostname",
        "date",
        "git_commit",
        "python",
        "platform",
    )
}
ENV["device_kind"] = "cpu"


def test_record_has_the_fixed_layout():
    rec = make_record("gemm", "linear_forward", "fp32", GEMM, TIMING, extra={"flops": 1.0})
    assert set(rec) == {"case_id", "suite", "kernel", "dtype", "params", "timing", "error", "extra"}
    assert rec["case_id"] == "gemm/linear_forward/fp32/batch=2048,in_features=512,out_features=256"
    assert rec["timing"] == TIMING and rec["error"] is None


def test_case_id_is_stable_under_key_order_and_whole_floats():
    a = case_id("embedding", "embedding_bag_forward", {"rows": 10, "zipf_exponent": 0.0}, "fp32")
    b = case_id("embedding", "embedding_bag_forward", {"zipf_exponent": 0, "rows": 10}, "fp32")
    assert a == b


def test_failed_record_has_error_and_no_timing():
    rec = make_record("gemm", "linear_forward", "tf32", GEMM, TIMING, error="unsupported: tf32")
    assert rec["timing"] is None and rec["error"].startswith("unsupported")


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda r: r.pop("timing"), "record.timing"),
        (lambda r: r.__setitem__("suite", "nope"), "record.suite"),
        (lambda r: r.__setitem__("kernel", "conv2d"), "record.kernel"),
        (lambda r: r.__setitem__("dtype", "fp64"), "record.dtype"),
        (lambda r: r["params"].pop("batch"), "record.params.batch"),
        (lambda r: r["params"].__setitem__("batch", "big"), "record.params.batch"),
        (lambda r: r["timing"].__setitem__("reps", 0), "record.timing.reps"),
        (lambda r: r["timing"].__setitem__("median_s", float("nan")), "record.timing.median_s"),
        (lambda r: r["timing"].update(p10_s=0.0, median_s=0.0), "record.timing.median_s"),
        (lambda r: r["timing"].__setitem__("p10_s", 1.0), "record.timing"),
        (lambda r: r.__setitem__("case_id", "other"), "record.case_id"),
        (lambda r: r.__setitem__("error", "boom"), "record.timing"),
        (lambda r: r.__setitem__("timing", None), "record.timing"),
    ],
)
def test_bad_records_name_the_field(mutate, field):
    rec = make_record("gemm", "linear_forward", "fp32", GEMM, TIMING)
    mutate(rec)
    with pytest.raises(RecordSchemaError) as info:
        validate_record(rec)
    assert info.value.field == field


@pytest.mark.parametrize("kinds", [0, -3, 2.5, True, "many"])
def test_a_launch_chain_names_a_positive_count_of_op_kinds(kinds):
    good = make_record("memory", "launch_overhead", "fp32", {"ops": 16, "kinds": 24}, TIMING)
    validate_record(good)
    bad = make_record("memory", "launch_overhead", "fp32", {"ops": 16, "kinds": 24}, TIMING)
    bad["params"]["kinds"] = kinds
    with pytest.raises(RecordSchemaError) as info:
        validate_record(bad)
    assert info.value.field == "record.params.kinds"


def test_document_checks_version_env_and_duplicates():
    doc = new_document(ENV, {"quick": True})
    assert doc["schema_version"] == SCHEMA_VERSION
    doc["records"].append(make_record("gemm", "linear_forward", "fp32", GEMM, TIMING))
    validate_document(doc)
    dup = copy.deepcopy(doc)
    dup["records"].append(copy.deepcopy(doc["records"][0]))
    with pytest.raises(RecordSchemaError, match="duplicate"):
        validate_document(dup)
    old = dict(doc, schema_version=0)
    with pytest.raises(RecordSchemaError) as info:
        validate_document(old)
    assert info.value.field == "schema_version"
    no_env = {k: v for k, v in doc.items() if k != "env"}
    with pytest.raises(RecordSchemaError):
        validate_document(no_env)


def test_every_suite_kernel_schema_accepts_planned_cases():
    for kind in ("cpu", "cuda"):
        cases = (
            specs.embedding_cases(kind, False)
            + specs.gemm_cases(kind, False)
            + specs.interaction_cases(kind, False)
            + specs.memory_cases(kind, False)
            + specs.collective_cases([2, 4], "gloo", False)
        )
        for case in cases:
            make_record(case.suite, case.kernel, case.dtype, case.params, TIMING)
        assert len({c.case_id for c in cases}) == len(cases)


def test_percentiles_and_summary():
    values = [float(v) for v in range(1, 11)]
    assert percentile(values, 50) == pytest.approx(5.5)
    assert percentile(values, 10) == pytest.approx(1.9)
    timing = summarize(values)
    assert timing.reps == 10 and timing.p10_s <= timing.median_s <= timing.p90_s


def test_measure_stops_when_stable_and_rotates_inputs():
    seen = []
    timing = measure(
        lambda rep: seen.append(rep),
        "cpu",
        TimingPolicy(warmup=2, min_reps=5, max_reps=50, max_time_s=5.0, rel_tol=10.0),
    )
    assert timing.reps == 5
    assert seen == list(range(7))  # warm-up reps 0-1, then timed reps 2-6: inputs rotate by index
    assert is_stable([1.0, 1.0, 1.0, 1.0], 0.01)
    assert not is_stable([1.0, 1.0, 2.0, 2.0], 0.01)


def test_measure_runs_setup_before_every_call_untimed():
    import time

    order = []

    def setup(rep: int) -> None:
        order.append(("setup", rep))
        time.sleep(0.02)

    policy = TimingPolicy(warmup=1, min_reps=3, max_reps=3, max_time_s=5.0, rel_tol=10.0)
    timing = measure(lambda rep: order.append(("call", rep)), "cpu", policy, setup=setup)
    assert order == [(kind, rep) for rep in range(4) for kind in ("setup", "call")]
    assert timing.reps == 3 and timing.median_s < 0.01  # the 20 ms set-up is not in the time


def test_measure_warm_up_stops_after_warmup_max_s_but_makes_one_call():
    import time

    seen = []

    def slow(rep: int) -> None:
        seen.append(rep)
        time.sleep(0.03)

    policy = TimingPolicy(warmup=3, min_reps=2, max_reps=2, max_time_s=5.0, rel_tol=10.0, warmup_max_s=0.02)
    assert measure(slow, "cpu", policy).reps == 2
    assert seen == [0, 1, 2]  # one warm-up call (it took longer than warmup_max_s), then two timed
    seen.clear()
    measure(lambda rep: seen.append(rep), "cpu", policy)
    assert seen == list(range(5))  # fast calls: all three warm-up calls


def test_zipf_indices_are_bounded_skewed_and_scattered():
    torch = pytest.importorskip("torch")
    from kernels.indices import sample_indices

    for rows in (1000, 5_000_000):
        ids = sample_indices(rows, 20_000, "zipf", 1.2, seed=1)
        assert int(ids.min()) >= 0 and int(ids.max()) < rows
        counts = torch.bincount(ids, minlength=rows)
        hottest = torch.topk(counts, 5).indices
        assert int(counts.max()) > 20  # skewed: a hot id repeats far more than uniform would
        assert int(hottest.max() - hottest.min()) > rows // 10  # hot ids spread over the table
    uniform = sample_indices(1000, 20_000, "uniform", seed=1)
    assert int(torch.bincount(uniform).max()) < 60
    assert torch.equal(
        sample_indices(1000, 50, "zipf", 1.05, seed=3), sample_indices(1000, 50, "zipf", 1.05, seed=3)
    )


def test_quick_plan_covers_all_suites_and_orders_for_budget():
    cases = (
        specs.embedding_cases("cpu", True)
        + specs.gemm_cases("cpu", True)
        + specs.interaction_cases("cpu", True)
        + specs.memory_cases("cpu", True)
        + specs.collective_cases([2], "gloo", True)
    )
    ordered = specs.order_for_budget(cases, ("collective",))
    assert [c.suite for c in ordered[:4]] == ["embedding", "gemm", "interaction", "memory"]
    assert all(c.suite == "collective" for c in ordered[4 : 4 + 15])
    assert sorted(c.case_id for c in ordered) == sorted(c.case_id for c in cases)


def test_dumps_is_sorted_json_with_one_line_per_record():
    from kernels.records import dumps

    doc = {"schema_version": 1, "records": [{"b": 1, "a": [1, 2]}, {"c": {"d": 0.5}}],
           "env": {"z": 1, "a": {"nested": [1]}}}
    text = dumps(doc)
    assert json.loads(text) == doc
    lines = text.splitlines()
    assert lines[0] == "{" and lines[-1] == "}"
    assert '    {"a": [1, 2], "b": 1},' in lines and '    {"c": {"d": 0.5}}' in lines
    keys = [line.split('"')[1] for line in lines if line.startswith('  "')]
    assert keys == ["env", "records", "schema_version"]
    assert json.loads(dumps({"records": []})) == {"records": []}
    with pytest.raises(ValueError):
        dumps({"records": [{"x": float("nan")}]})


def test_dumps_with_a_memo_encodes_each_record_once_and_writes_the_same_text():
    from kernels.records import dumps

    first, second = {"case_id": "a", "x": 1.5}, {"case_id": "b", "x": 2}
    doc = {"schema_version": 1, "records": [first]}
    memo: dict = {}
    assert dumps(doc, memo) == dumps(doc)
    doc["records"].append(second)
    assert dumps(doc, memo) == dumps(doc)
    assert set(memo) == {id(first), id(second)}
    memo[id(first)] = (first, '{"case_id": "a", "from": "memo"}')  # a second write reads the memo
    assert '"from": "memo"' in dumps(doc, memo)
    doc["records"][0] = {"case_id": "a", "x": 3}  # a replaced record (a later pass) is encoded afresh
    assert dumps(doc, memo) == dumps(doc)


def test_a_case_works_out_its_id_once():
    from kernels import specs

    case = specs._mem("copy", 4096)
    assert case.case_id == "memory/copy/fp32/bytes=4096,bytes_moved=8192"
    assert case.__dict__["case_id"] is case.case_id  # cached on the instance


@pytest.mark.parametrize("tables", [0, 65, 2.0, True, "four"])
def test_an_embedding_case_names_from_1_to_64_tables(tables):
    params = {"rows": 10, "dim": 4, "pooling": 1, "batch": 2, "distribution": "uniform", "zipf_exponent": 0.0,
              "optimizer": "sgd", "tables": 8}
    validate_record(make_record("embedding", "embedding_bag_backward_update", "fp32", params, TIMING))
    bad = make_record("embedding", "embedding_bag_backward_update", "fp32", params, TIMING)
    bad["params"]["tables"] = tables
    with pytest.raises(RecordSchemaError) as info:
        validate_record(bad)
    assert info.value.field == "record.params.tables"


@pytest.mark.parametrize("evict", [0, -5, 2 ** 41, 1e30, 2.0, True, "abc"])
def test_an_evicted_embedding_case_rewrites_a_positive_whole_number_of_bytes(evict):
    params = {"rows": 10, "dim": 4, "pooling": 1, "batch": 2, "distribution": "uniform", "zipf_exponent": 0.0,
              "optimizer": "sgd", "evict_bytes": 1 << 26}
    validate_record(make_record("embedding", "embedding_bag_backward_update", "fp32", params, TIMING))
    bad = make_record("embedding", "embedding_bag_backward_update", "fp32", params, TIMING)
    bad["params"]["evict_bytes"] = evict
    with pytest.raises(RecordSchemaError) as info:
        validate_record(bad)
    assert info.value.field == "record.params.evict_bytes"
    with pytest.raises(RecordSchemaError):  # a forward case has no update to evict before
        validate_record(make_record("embedding", "embedding_bag_forward", "fp32",
                                    {**params, "optimizer": "none"}, TIMING))
