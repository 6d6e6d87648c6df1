"""Exact timelines of the SimPy step model on tiny scenarios with a deterministic fake cost model."""

from __future__ import annotations

import pytest
from test_sim_fakes import FakeCost, micro_workload

from planner.hardware import load_profile
from planner.sim.engine import simulate

# The micro workload on one GPU issues 31 ops: h2d 1, embedding fwd 1, bottom fwd (GEMM + ReLU) 2,
# interaction fwd (stack, bmm + gather, cat) 3, top fwd (GEMM) 1 + loss 12 (processes.LOSS_OPS), top bwd
# (2 GEMMs + bias) 3, interaction bwd 3, bottom bwd (ReLU bwd, weight GEMM, bias; no input gradient) 3,
# embedding bwd 1, SGD step 1 (multi-tensor). On a CPU: no h2d, and the SGD step loops over the 4
# parameter tensors.
MICRO_OPS_GPU = 31
MICRO_OPS_CPU = 33


@pytest.fixture(scope="module")
def gpu():
    return load_profile("h100-sxm-80gb")


@pytest.fixture(scope="module")
def cpu():
    return load_profile("cpu-generic")


def test_device_bound_step_is_the_sum_of_op_times(gpu):
    result = simulate(micro_workload(), gpu, 1, steps=3, cost_model=FakeCost(device_s=1e-3))
    assert result.step_time_s == pytest.approx(MICRO_OPS_GPU * 1e-3, rel=1e-12)
    assert result.step_time_p99_s == pytest.approx(result.step_time_s, rel=1e-12)
    assert sum(result.breakdown_s.values()) == pytest.approx(result.step_time_s, rel=1e-12)
    assert result.breakdown_s["embedding_fwd"] == pytest.approx(1e-3)
    assert result.breakdown_s["backward_dense"] == pytest.approx(9e-3)
    assert result.breakdown_s["optimizer"] == pytest.approx(1e-3)
    assert result.binding == "compute"


def test_host_bound_step_waits_for_launches(gpu):
    result = simulate(micro_workload(), gpu, 1, steps=1, cost_model=FakeCost(device_s=1e-6, host_s=1e-3))
    # The device runs each op as soon as it is launched: the last launch ends at 22 ms, its op 1 us later.
    assert result.step_time_s == pytest.approx(MICRO_OPS_GPU * 1e-3 + 1e-6, rel=1e-12)
    busy = MICRO_OPS_GPU * 1e-6
    assert result.breakdown_s["host_overhead_exposed"] == pytest.approx(result.step_time_s - busy, rel=1e-9)
    assert result.binding == "host"


def test_cpu_host_overhead_adds_to_compute(cpu):
    cost = FakeCost(device_s=1e-3, host_s=0.5e-3, serial_host=True)
    result = simulate(micro_workload(), cpu, 1, steps=1, cost_model=cost)
    ops = MICRO_OPS_CPU
    assert result.step_time_s == pytest.approx(ops * 1.5e-3, rel=1e-12)
    assert result.breakdown_s["host_overhead_exposed"] == pytest.approx(ops * 0.5e-3, rel=1e-9)


def test_two_devices_collectives_and_overlap(gpu):
    """Hand-traced timeline (ms): h2d 0-1; lengths a2a 1-11; ids a2a 11-21; emb fwd 21-22; pooled a2a
    22-32 while the bottom MLP runs 22-24; interaction 32-35; top fwd + loss (12 ops) 35-48; top bwd
    48-51; interaction bwd 51-54; gradient a2a 54-64 while the bottom bwd runs 54-57; dense all-reduce
    64-74 (queued behind the a2a); embedding bwd 64-65; optimizer 74-75."""
    result = simulate(micro_workload(), gpu, 2, sharding="table", steps=1,
                      cost_model=FakeCost(device_s=1e-3, collective_s=10e-3))
    assert result.step_time_s == pytest.approx(75e-3, rel=1e-12)
    b = result.breakdown_s
    assert b["input"] == pytest.approx(1e-3)  # the host-to-device copy
    assert b["input_a2a"] == pytest.approx(20e-3)  # lengths and ids all-to-all
    assert b["a2a_fwd"] == pytest.approx(8e-3)  # 22-32 less the bottom MLP's 2 ms
    assert b["a2a_bwd"] == pytest.approx(7e-3)  # 54-64 less the bottom bwd's 3 ms
    assert b["allreduce_exposed"] == pytest.approx(9e-3)  # 64-74 less the embedding bwd's 1 ms
    assert b["optimizer"] == pytest.approx(1e-3)
    assert sum(b.values()) == pytest.approx(75e-3, rel=1e-12)


def test_same_seed_same_result_and_spread_with_sigma(gpu):
    cost = FakeCost(device_s=1e-3, sigma=0.2)
    a = simulate(micro_workload(), gpu, 4, steps=30, seed=7, cost_model=cost)
    b = simulate(micro_workload(), gpu, 4, steps=30, seed=7, cost_model=cost)
    c = simulate(micro_workload(), gpu, 4, steps=30, seed=8, cost_model=cost)
    assert a.step_times_s == b.step_times_s
    assert a.step_times_s != c.step_times_s
    assert a.step_time_p99_s > a.step_time_s


def test_coalescing_update_makes_the_host_wait_for_the_device(gpu):
    """With 1 ms ops and 0.5 ms launches the host runs ahead (31.5 ms: the first launch, then 31 ops);
    Adagrad's coalesce reads back a size, so the host waits for the embedding update before launching the
    optimizer step: the device idles for that launch, 0.5 ms more."""
    cost = FakeCost(device_s=1e-3, host_s=0.5e-3)
    sgd = simulate(micro_workload(optimizer="sgd"), gpu, 1, steps=1, cost_model=cost)
    adagrad = simulate(micro_workload(optimizer="adagrad"), gpu, 1, steps=1, cost_model=cost)
    assert sgd.step_time_s == pytest.approx(31.5e-3, rel=1e-12)
    assert adagrad.step_time_s == pytest.approx(32.0e-3, rel=1e-12)


class _StepCallCost(FakeCost):
    """A fake cost model whose sparse optimizer step() call costs ``call_s`` on the host."""

    def __init__(self, call_s: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.call_s = call_s

    def sparse_step_call_s(self) -> float:
        return self.call_s


@pytest.mark.parametrize("serial_host", [True, False])
def test_the_sparse_optimizer_call_is_paid_once_per_step_whatever_the_table_count(cpu, gpu, serial_host):
    """A CPU (serial host) adds the call to the step once, for 1 table as for 8; a GPU's host makes it
    while the device still runs earlier work, so at most the call is added (less with more work queued)."""
    profile = cpu if serial_host else gpu
    added = []
    for tables in (1, 8):
        workload = micro_workload(tables=tables)
        base = simulate(workload, profile, 1, steps=1,
                        cost_model=_StepCallCost(0.0, device_s=1e-5, host_s=1e-6, serial_host=serial_host))
        more = simulate(workload, profile, 1, steps=1,
                        cost_model=_StepCallCost(2e-3, device_s=1e-5, host_s=1e-6, serial_host=serial_host))
        added.append(more.step_time_s - base.step_time_s)
    if serial_host:
        assert added == pytest.approx([2e-3, 2e-3], rel=1e-6)
    else:
        assert all(0.0 < a <= 2e-3 + 1e-12 for a in added)
        assert added[1] <= added[0] + 1e-12
