"""The bench runner's later passes: each kernel case measured again, the faster median kept."""

from __future__ import annotations

import pytest

from kernels.records import make_record
from kernels.runner import merge_passes

torch = pytest.importorskip("torch")


def _record(median_s: float, **extra) -> dict:
    timing = {"median_s": median_s, "p10_s": median_s * 0.9, "p90_s": median_s * 1.1, "reps": 11}
    return make_record("memory", "copy", "fp32", {"bytes": 1024, "bytes_moved": 2048}, timing, None, extra)


def test_merge_keeps_the_faster_pass_and_every_median():
    first, second = _record(2e-3, rotating_buffers=1), _record(1.5e-3, rotating_buffers=2)
    merged = merge_passes(first, second, 2)
    assert merged["timing"]["median_s"] == 1.5e-3
    assert merged["extra"]["rotating_buffers"] == 2  # the kept pass's own extra
    assert merged["extra"]["pass_medians_s"] == [2e-3, 1.5e-3] and merged["extra"]["passes"] == 2
    slower = merge_passes(merged, _record(3e-3), 3)
    assert slower["timing"]["median_s"] == 1.5e-3
    assert slower["extra"]["pass_medians_s"] == [2e-3, 1.5e-3, 3e-3] and slower["extra"]["passes"] == 3


def test_a_difference_of_two_timings_keeps_the_median_of_its_passes():
    """A cold-dispatch chain's figure is slowed on both of its sides: no pass is the better one."""
    first, second = _record(2e-6, difference=True), _record(4e-7, difference=True)
    merged = merge_passes(first, second, 2)
    assert merged["timing"]["median_s"] == pytest.approx(1.2e-6)
    assert merged["timing"]["p10_s"] == pytest.approx(3.6e-7)
    assert merged["timing"]["p90_s"] == pytest.approx(2.2e-6)
    assert merged["extra"]["pass_medians_s"] == [2e-6, 4e-7] and merged["extra"]["passes"] == 2
    third = merge_passes(merged, _record(1.5e-6, difference=True), 3)
    assert third["timing"]["median_s"] == pytest.approx(1.5e-6)  # the median of the three


def test_a_failed_later_pass_keeps_the_first():
    params = {"bytes": 1024, "bytes_moved": 2048}
    failed = make_record("memory", "copy", "fp32", params, None, "out of memory", {})
    merged = merge_passes(_record(2e-3), failed, 2)
    assert merged["timing"]["median_s"] == 2e-3 and merged["extra"]["pass_medians_s"] == [2e-3]


def test_two_passes_over_real_cases(tmp_path):
    from kernels import specs
    from kernels.device import BenchContext
    from kernels.records import new_document
    from kernels.runner import run_cases
    from kernels.timing import QUICK_POLICY

    cases = [specs._mem("copy", 4096), specs._mem("elementwise", 4096)]
    writes = []
    doc = run_cases(new_document({"device_kind": "cpu", "device_name": "test"}, {}), cases,
                    BenchContext(device="cpu", policy=QUICK_POLICY), writes.append, passes=2)
    assert doc["progress"]["complete"] and doc["progress"]["passes_done"] == 2
    for record in doc["records"]:
        assert record["extra"]["passes"] == 2 and len(record["extra"]["pass_medians_s"]) == 2
        assert record["timing"]["median_s"] == min(record["extra"]["pass_medians_s"])
    assert len(writes) >= 5  # before, after each case of each pass, at the end


def test_later_passes_stop_quietly_at_their_deadline():
    """Past ``passes_deadline`` the second pass starts no new case: the run is complete, the cases it
    did not reach keep their one measurement, and the progress block counts them."""
    import time

    from kernels import specs
    from kernels.device import BenchContext
    from kernels.records import new_document
    from kernels.runner import run_cases
    from kernels.timing import QUICK_POLICY

    cases = [specs._mem("copy", 4096), specs._mem("elementwise", 4096)]
    doc = run_cases(new_document({"device_kind": "cpu", "device_name": "test"}, {}), cases,
                    BenchContext(device="cpu", policy=QUICK_POLICY), lambda d: None, passes=2,
                    passes_deadline=time.monotonic())
    progress = doc["progress"]
    assert progress["complete"] and progress["stopped"] is None
    assert progress["later_passes_cut"] == 2
    assert [r["extra"].get("passes", 1) for r in doc["records"]] == [1, 1]


def _emb(rows, kernel="embedding_bag_forward"):
    from kernels.specs import Case

    params = {"rows": rows, "dim": 16, "batch": 256, "pooling": 1}
    return Case("embedding", kernel, "fp32", params)


def test_later_pass_order_keeps_plan_order_when_the_pass_fits():
    from kernels import specs
    from kernels.runner import later_pass_order

    cases = [_emb(1000), _emb(1000, "embedding_bag_backward"), specs._mem("copy", 4096)]
    costs = {c.case_id: 1.0 for c in cases}
    assert later_pass_order(cases, costs, None) == cases
    assert later_pass_order(cases, costs, 3.0) == cases


def test_later_pass_order_shares_a_cut_pass_among_suites_cheapest_groups_first():
    """Embedding costs 8 s, memory 2 s; a 5 s pass gives embedding 4 s (its two cheap tables, each
    forward with its backward) and memory 1 s (its two cheap cases), then the rest in plan order."""
    from kernels import specs
    from kernels.runner import later_pass_order

    big = [_emb(10**6), _emb(10**6, "embedding_bag_backward")]
    small = [_emb(1000), _emb(1000, "embedding_bag_backward"),
             _emb(2000), _emb(2000, "embedding_bag_backward")]
    mem = [specs._mem("copy", 1 << 20), specs._mem("copy", 4096), specs._mem("elementwise", 4096)]
    cases = big + small + mem
    costs = {c.case_id: 2.0 for c in big} | {c.case_id: 1.0 for c in small}
    costs |= {mem[0].case_id: 1.0, mem[1].case_id: 0.5, mem[2].case_id: 0.5}
    order = later_pass_order(cases, costs, 5.0)
    assert sorted(c.case_id for c in order) == sorted(c.case_id for c in cases)
    assert order[:6] == small + mem[1:]
    assert order[6:] == big + mem[:1]
