"""Each suite measures a tiny case; failures become records; collectives run in 2 processes on CPU."""

from __future__ import annotations

import dataclasses

import pytest

torch = pytest.importorskip("torch")

from kernels import specs  # noqa: E402
from kernels.device import BenchContext  # noqa: E402
from kernels.dlrm import build_reference_dlrm, measure_training_steps  # noqa: E402
from kernels.records import validate_record  # noqa: E402
from kernels.runner import run_case  # noqa: E402
from kernels.timing import TimingPolicy  # noqa: E402
from planner.workload import load_workload  # noqa: E402

FAST = TimingPolicy(warmup=1, min_reps=3, max_reps=3, max_time_s=0.2)


@pytest.fixture
def ctx():
    return BenchContext(
        device="cpu", policy=FAST, seed=0, rotate=2, quick=True, workloads={"tiny": load_workload("tiny")}
    )


def _ok(record):
    validate_record(record)
    assert record["error"] is None, record["error"]
    assert record["timing"]["median_s"] > 0
    return record


def test_embedding_forward_and_backward_update(ctx):
    fwd = _ok(run_case(specs._emb(5000, 8, 4, 64, "zipf", 1.05)[0], ctx))
    assert 0 < fwd["extra"]["unique_rows"] <= 256 and fwd["extra"]["bytes_per_elem"] == 4
    for opt in ("sgd", "adagrad", "rowwise_adagrad"):
        case = specs._emb(5000, 8, 4, 64, optimizers=(opt,))[1]
        rec = _ok(run_case(case, ctx))
        extra = rec["extra"]
        assert extra["fwd_bwd_update_median_s"] >= rec["timing"]["median_s"]
        assert "forward_median_s" in extra


def test_cases_rotate_enough_batches_to_cover_the_table_as_training_does(ctx):
    from kernels.embedding_bag import MAX_ROTATION, rotation

    assert rotation(1000, 4096) == 4  # a small table: the bench's usual few batches cover it
    assert rotation(100_000, 1024) == MAX_ROTATION  # a large one: as many as allowed
    assert rotation(5_000, 1000, least=2) == 10  # twice over the rows
    assert rotation(10**9, 10**6) == 4  # ids beyond the budget: no more than the least
    rec = _ok(run_case(specs._emb(20_000, 8, 4, 64)[0], ctx))
    assert rec["extra"]["rotating_batches"] == rotation(20_000, 256, 1, ctx.rotate)


def test_an_evicted_case_times_the_update_alone_after_other_data(ctx):
    cases = specs._emb(5000, 8, 4, 64, optimizers=("sgd", "adagrad"), evict=1 << 20)
    assert [c.kernel for c in cases] == ["embedding_bag_backward_update"] * 2  # no forward case
    for case in cases:
        assert case.params["evict_bytes"] == 1 << 20
        rec = _ok(run_case(case, ctx))
        assert "fwd_bwd_update_median_s" not in rec["extra"] and "rewritten" in rec["extra"]["method"]


def test_a_multi_table_case_updates_every_table_in_one_call(ctx):
    """K tables: one backward() and one step() over all of them, the case's timing for the whole call."""
    (case,) = specs._emb(2000, 8, 2, 64, optimizers=("adagrad",), tables=3)
    assert case.params["tables"] == 3 and case.kernel == "embedding_bag_backward_update"
    rec = _ok(run_case(case, ctx))
    assert rec["extra"]["tables"] == 3 and "3 tables" in rec["extra"]["method"]
    assert rec["extra"]["fwd_bwd_update_median_s"] >= rec["timing"]["median_s"]
    assert specs._emb(2000, 8, 2, 64, tables=3)[0].kernel == "embedding_bag_backward_update"  # no forward
    with pytest.raises(ValueError, match="65 tables"):
        specs._emb(10, 8, 1, 4, tables=65)


def test_gemm_interaction_memory(ctx):
    for case in (
        specs._gemm(64, 32, 16, "fp32")
        + specs._gemm(64, 32, 16, "bf16")
        + specs._dot(32, 5, 8)
        + specs._dcn(32, 24, 4)
        + specs._dcn(32, 24, 0)
        + [
            specs._mem("copy", 4096),
            specs._mem("elementwise", 4096),
            specs._mem("optimizer_step", 4096, optimizer="adagrad"),
        ]
    ):
        rec = _ok(run_case(case, ctx))
        if case.suite == "memory":
            assert rec["extra"]["bandwidth_bytes_per_s"] > 0
        else:  # results stay alive one per rotating input, as a training step keeps its outputs
            assert rec["extra"]["results_kept"] == rec["extra"]["rotating_inputs"] == 2


def test_a_bf16_element_wise_case_adds_bf16_buffers_and_other_memory_kernels_refuse_bf16(ctx):
    rec = _ok(run_case(specs._mem("elementwise", 4096, dtype="bf16"), ctx))
    assert rec["dtype"] == "bf16" and rec["params"]["bytes_moved"] == 3 * 4096
    assert rec["extra"]["bandwidth_bytes_per_s"] > 0
    copy = run_case(specs._mem("copy", 4096, dtype="bf16"), ctx)
    assert copy["timing"] is None and "only element-wise" in copy["error"]


def test_gemm_cases_keep_the_previous_result_alive_while_the_next_call_runs(ctx, monkeypatch):
    """As in a training step, where each layer's output lives on for the backward: the result of one call
    is still alive when the next one writes its own (so it cannot reuse that memory, still in cache)."""
    import weakref

    outputs: list[weakref.ref] = []
    alive_at_next_call: list[bool] = []
    real_forward = torch.nn.Linear.forward

    def forward(self, x):
        if outputs:
            alive_at_next_call.append(outputs[-1]() is not None)
        out = real_forward(self, x)
        outputs.append(weakref.ref(out))
        return out

    monkeypatch.setattr(torch.nn.Linear, "forward", forward)
    _ok(run_case(specs._gemm(256, 64, 256, "fp32", backward=False)[0], ctx))
    assert len(alive_at_next_call) >= 3 and all(alive_at_next_call)


def test_launch_overhead_is_seconds_per_launch_of_a_forward_backward_chain(ctx):
    short = _ok(run_case(specs.Case("memory", "launch_overhead", "fp32", {"ops": 16}), ctx))
    long = _ok(run_case(specs.Case("memory", "launch_overhead", "fp32", {"ops": 128}), ctx))
    assert short["extra"]["launches"] == 32 and long["extra"]["launches"] == 256
    for rec in (short, long):
        # an eager op on a tiny tensor costs between 0.1 us and 1 ms of host time on any machine
        assert 1e-7 < rec["timing"]["median_s"] < 1e-3
    # 128 forward ops and their backward take longer in all than 16 (per launch figures times launches)
    assert long["timing"]["median_s"] * 256 > short["timing"]["median_s"] * 32
    assert short["extra"]["kinds"] == 6  # a case without ``kinds``: the older six-kind chain


def test_the_suite_launch_chains_cycle_through_every_op_kind(ctx):
    """The suite's chains use all of CHAIN_KINDS (each a differentiable op on 8 x 8), and say so."""
    from kernels.memcpy import CHAIN_KINDS

    assert specs.LAUNCH_CHAIN_KINDS == len(CHAIN_KINDS) == len(set(CHAIN_KINDS))
    chains = [c for c in specs.memory_cases("cpu", quick=True)
              if c.kernel == "launch_overhead" and c.params.get("autograd", True)]
    assert chains and all(c.params["kinds"] == len(CHAIN_KINDS) for c in chains)
    rec = _ok(run_case(chains[0], ctx))
    assert rec["extra"]["kinds"] == len(CHAIN_KINDS)
    assert rec["extra"]["launches"] == 2 * chains[0].params["ops"]
    too_many = run_case(specs.Case("memory", "launch_overhead", "fp32",
                                   {"ops": 16, "kinds": len(CHAIN_KINDS) + 1}), ctx)
    assert too_many["timing"] is None and "kinds" in too_many["error"]


def test_chains_without_autograd_time_the_forward_ops_alone(ctx):
    """The suite's chains without autograd run all kinds, each in turn and each repeated in a row (the same
    mix of ops, its code warm); a case's timing is the difference per op, and it keeps both."""
    plain = [c for c in specs.memory_cases("cpu", quick=True)
             if c.kernel == "launch_overhead" and c.params.get("autograd") is False]
    assert plain and {c.params["kinds"] for c in plain} == {specs.LAUNCH_CHAIN_KINDS}
    for case in plain:  # whole cycles of the warm layout
        assert case.params["ops"] % (specs.LAUNCH_CHAIN_KINDS * specs.DISPATCH_CHAIN_REPEAT) == 0
    rec = _ok(run_case(plain[0], ctx))
    extra = rec["extra"]
    assert extra["launches"] == plain[0].params["ops"] and "without autograd" in extra["method"]
    assert extra["repeat"] == specs.DISPATCH_CHAIN_REPEAT
    assert 1e-7 < extra["warm_per_op_s"] < 1e-3 and 1e-7 < extra["cycled_per_op_s"] < 1e-3
    # the median of the paired differences, kept above 1% of the cycled chain's time per op
    timing = rec["timing"]
    floor = 0.01 * extra["cycled_per_op_s"]
    assert extra["difference"] is True and "paired differences" in extra["method"]
    assert timing["median_s"] >= floor * (1 - 1e-9)
    assert timing["p10_s"] <= timing["median_s"] <= timing["p90_s"]
    assert timing["reps"] >= ctx.policy.min_reps
    # the difference of the two layouts' medians lies near the paired differences' spread (within one
    # p10-p90 width of it: on a noisy host the two need not share their 10-90% band exactly)
    width = timing["p90_s"] - timing["p10_s"] + 1e-7
    assert (timing["p10_s"] - width <= max(extra["cycled_per_op_s"] - extra["warm_per_op_s"], floor)
            <= timing["p90_s"] + width)
    bad = specs.Case("memory", "launch_overhead", "fp32", {"ops": 16, "kinds": 24, "autograd": "no"})
    with pytest.raises(Exception, match="true or false"):
        validate_record(run_case(bad, ctx))


def test_every_chain_op_keeps_the_shape_and_passes_a_gradient():
    import torch

    from kernels.memcpy import CHAIN_KINDS, _chain_steps

    steps, leaves = _chain_steps(len(CHAIN_KINDS), torch.device("cpu"))
    for name, step in zip(CHAIN_KINDS, steps, strict=True):
        x = torch.linspace(-0.5, 1.0, 64).reshape(8, 8).requires_grad_()
        out = step(x)
        assert out.shape == (8, 8) and out.dtype == torch.float32, name
        (out * torch.linspace(0.1, 1.0, 64).reshape(8, 8)).sum().backward()  # a weighted loss: no op
        assert x.grad is not None and bool((x.grad != 0).any()), name  # has a zero gradient
    assert all(t.requires_grad for t in leaves)


def test_unsupported_and_out_of_memory_cases_are_recorded(ctx):
    tf32 = run_case(specs._gemm(64, 32, 16, "tf32", backward=False)[0], ctx)
    validate_record(tf32)
    assert tf32["timing"] is None and tf32["error"].startswith("unsupported")
    huge = run_case(specs._emb(10**12, 256, 1, 64)[0], ctx)
    validate_record(huge)
    assert huge["timing"] is None and huge["error"].startswith("out of memory")
    h2d = run_case(specs._mem("h2d", 4096, pinned=True), ctx)
    assert h2d["error"].startswith("unsupported")


def test_dlrm_case(ctx):
    rec = _ok(run_case(specs.dlrm_case(ctx.workloads["tiny"]), ctx))
    assert rec["params"]["workload"] == "tiny" and len(rec["params"]["workload_sha256"]) == 64
    assert rec["extra"]["peak_memory_bytes"] > 0


def test_reference_dlrm_shapes_and_variants():
    tiny = load_workload("tiny")
    model = build_reference_dlrm(tiny)
    assert len(model.embeddings) == 4 and all(e.sparse and e.mode == "sum" for e in model.embeddings)
    dense = torch.rand(3, 4)
    sparse = [torch.zeros(3, bag, dtype=torch.int64) for _, bag in model.table_shapes]
    assert model(dense, sparse).shape == (3,)
    m = tiny.model
    dcn = dataclasses.replace(
        tiny,
        model=dataclasses.replace(
            m, interaction=dataclasses.replace(m.interaction, kind="dcn", cross_layers=2, low_rank=4)
        ),
        training=dataclasses.replace(tiny.training, optimizer="rowwise_adagrad", precision="bf16"),
    )
    result = measure_training_steps(dcn, steps=3, warmup=1, threads=1, batch_size=32)
    assert set(result) >= {
        "median_s",
        "p10_s",
        "p90_s",
        "reps",
        "peak_memory_bytes",
        "device_name",
        "threads",
    }
    assert result["reps"] == 3 and result["threads"] == 1 and result["peak_memory_bytes"] > 0


def test_collectives_run_in_two_gloo_processes():
    from kernels.collectives import run_spawned, unequal_splits

    assert sum(unequal_splits(3, 0, 2)) == sum(unequal_splits(3, 2, 2)) == 12
    cases = specs.collective_cases([2], "gloo", True, sizes=[4096])
    got = {}
    run_spawned(cases, 2, "gloo", "cpu", FAST, None, lambda c, t, e, x: got.__setitem__(c.kernel, (t, e, x)))
    assert set(got) == set(specs.COLLECTIVE_KERNELS)
    for kernel, (timing, error, extra) in got.items():
        assert error is None, (kernel, error)
        assert timing["median_s"] > 0 and extra["busbw_bytes_per_s"] > 0 and extra["implementation"]


def test_random_tensor_shape_dtype_scale_and_grad():
    from kernels.device import RANDOM_BLOCK, random_tensor

    big = random_tensor((RANDOM_BLOCK + 7, 3), torch.bfloat16, "cpu", scale=0.01, requires_grad=True)
    assert big.shape == (RANDOM_BLOCK + 7, 3) and big.dtype == torch.bfloat16
    assert big.is_leaf and big.requires_grad and big.is_contiguous()
    assert 0.005 < float(big.detach().float().std()) < 0.02
    small = random_tensor((4, 5), torch.float32, "cpu")
    assert small.shape == (4, 5) and not small.requires_grad


def test_torch_lazy_imports_happen_before_the_freeze():
    """After the runner's preparation, building an optimizer adds almost nothing for the collector to walk
    (without it, ~117,000 objects of torch's compiler stack made each collection between cases 50 ms)."""
    import subprocess
    import sys

    code = (
        "import gc, torch\n"
        "from kernels.runner import _import_lazy_modules\n"
        "_import_lazy_modules(); gc.freeze(); before = len(gc.get_objects())\n"
        "torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=0.1)\n"
        "print(len(gc.get_objects()) - before)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(out.stdout.strip()) < 2000
