"""Cost-model formulas: physical behaviour (quantisation, cache, skew, latency floors), speed and transfer."""

from __future__ import annotations

import copy
import itertools
import math
import time
from types import SimpleNamespace

import numpy as np
import pytest

from planner.cost.embedding import hit_fraction, unique_rows
from planner.cost.registry import (
    FAMILIES,
    build_cost_model,
    device_mismatch,
    figure_status,
    validate_calibration,
)
from planner.errors import InputError
from planner.hardware import load_profile, load_profile_mapping, preset_names, profile_from_mapping
from planner.interfaces import CollectiveOp, CostModel, EmbeddingOp, GemmOp, InteractionOp, MemoryOp

OPS = [
    GemmOp(2048, 256, 512, "bf16"), GemmOp(8, 1, 13, "fp32"),
    EmbeddingOp(10_000_000, 128, 20, 8192, 4, "forward"),
    EmbeddingOp(10_000_000, 128, 20, 8192, 4, "backward", "rowwise_adagrad", 1.05),
    InteractionOp(8192, 27, 128, "bf16", "backward"),
    MemoryOp("copy", 1e9), MemoryOp("h2d", 1e6), MemoryOp("optimizer", 4e6),
    CollectiveOp("all_to_all", 64e6, 16, 8), CollectiveOp("all_reduce", 1e8, 8, 8),
    CollectiveOp("all_gather", 1e6, 64, 8), CollectiveOp("reduce_scatter", 1e6, 64, 8),
]


@pytest.mark.parametrize("name", preset_names())
def test_every_shipped_profile_predicts_every_op(name):
    model = build_cost_model(load_profile(name))
    assert isinstance(model, CostModel)
    assert 0 < model.host_overhead_s() < 1e-3
    for op in OPS:
        est = model.predict(op)
        assert math.isfinite(est.time_s) and est.time_s > 0, op
        assert est.family in FAMILIES and est.launches >= 1 and est.sigma_rel > 0
        assert model.predict(op) is est  # memoised


def test_single_rank_collective_is_free():
    est = build_cost_model(load_profile("h100-sxm-80gb")).predict(CollectiveOp("all_reduce", 1e6, 1, 1))
    assert est.time_s == 0 and est.launches == 0


def test_predict_is_fast_enough_for_the_simulator():
    model = build_cost_model(load_profile("h100-sxm-80gb"))
    start = time.perf_counter()
    for i in range(2000):
        model.predict(GemmOp(1024 + i, 512, 256, "bf16"))
        model.predict(EmbeddingOp(1_000_000, 64, 20, 1024 + i, 4, "forward"))
    per_op = (time.perf_counter() - start) / 4000
    assert per_op < 1e-4
    start = time.perf_counter()
    for _ in range(20000):
        model.predict(GemmOp(1024, 512, 256, "bf16"))
    assert (time.perf_counter() - start) / 20000 < 5e-6


def test_gemm_wave_quantisation_and_skinny_shapes():
    model = build_cost_model(load_profile("h100-sxm-80gb"))
    units = 132
    one_wave = model.predict(GemmOp(128 * units, 128, 4096, "bf16")).parts["compute_s"]
    two_waves = model.predict(GemmOp(128 * units + 1, 128, 4096, "bf16")).parts["compute_s"]
    assert two_waves == pytest.approx(2 * one_wave)  # one extra row costs a whole extra wave

    def tflops(m, n, k):
        return 2 * m * n * k / model.predict(GemmOp(m, n, k, "bf16")).time_s / 1e12

    assert tflops(65536, 16, 64) < 0.2 * tflops(8192, 8192, 8192)  # tall-skinny far below square
    tiny = model.predict(GemmOp(16, 16, 16, "bf16"))
    assert tiny.parts["fixed_s"] / tiny.time_s > 0.9  # launch bound


def test_gemm_partial_tiles_and_matrix_vector_products():
    """A CPU's partial output tiles cost ``edge_slowdown`` full tiles; m or n of 1 streams the matrix."""
    from planner.cost.gemm import gemm_time_s
    from planner.cost.params import device_figures
    from planner.cost.registry import default_parameters

    profile = load_profile("cpu-generic")
    fig = device_figures(profile)
    p = dict(default_parameters(profile)["gemm"], bandwidth_fraction=10.0)  # compute bound here
    tile_m, tile_n = fig.tile
    m, k = 64 * tile_m * fig.compute_units, 8192
    full = gemm_time_s(p, fig, m, tile_n, k, "fp32")[1]
    edge = gemm_time_s(p, fig, m, tile_n // 4, k, "fp32")[1]
    assert edge == pytest.approx(full)  # padding: a quarter-wide tile costs a whole one
    slow = dict(p, edge_slowdown=3.0)
    assert gemm_time_s(slow, fig, m, tile_n // 4, k, "fp32")[1] == pytest.approx(3.0 * full)
    assert gemm_time_s(slow, fig, m, tile_n, k, "fp32")[1] == pytest.approx(full)  # no partial tile
    # matrix-vector: no tile padding; the traffic beyond the cache runs at gemv_fraction of the GEMM's
    # memory rate (with no cache to speak of: all of it), what the cache serves at the cache's rate (a
    # 16 KiB matrix in a cache of hundreds of MB)
    gemv = dict(p, bandwidth_fraction=1e-3)
    uncached = dict(gemv, cache_fraction=1e-6)
    base = gemm_time_s(uncached, fig, 131072, 1, 512, "fp32")
    slower = gemm_time_s(dict(uncached, gemv_fraction=0.25), fig, 131072, 1, 512, "fp32")
    assert slower[2] == pytest.approx(4.0 * base[2], rel=1e-3)
    cached = gemm_time_s(gemv, fig, 8, 1, 512, "fp32")
    assert gemm_time_s(dict(gemv, gemv_fraction=0.25), fig, 8, 1, 512, "fp32")[2] == pytest.approx(
        cached[2], rel=1e-3)
    assert base[1] == pytest.approx(2 * 131072 * 512 / (fig.peak_for("fp32") * p["peak_fraction_fp32"]
                                                      * 512 / (512 + p["k_half"])))


def test_narrow_weight_gradient_runs_at_narrow_fraction_on_a_cpu():
    """A CPU fp32 product with a transposed first operand and 2-11 columns (a weight gradient of a layer
    on a few dense features) is priced by its bytes at ``narrow_fraction`` of the GEMM's rates; one with
    12 columns, an untransposed one, bf16 and GPUs keep the tile model."""
    from planner.cost.gemm import gemm_time_s, linear_time_s
    from planner.cost.params import CPU_NARROW_COLUMNS, device_figures
    from planner.cost.registry import default_parameters

    cpu = load_profile("cpu-generic")
    fig = device_figures(cpu)
    p = dict(default_parameters(cpu)["gemm"], narrow_fraction=0.1)
    lo, hi = CPU_NARROW_COLUMNS
    assert (lo, hi) == (2, 11)
    narrow = gemm_time_s(p, fig, 512, 4, 8192, "fp32", transposed_a=True)
    plain = gemm_time_s(p, fig, 512, 4, 8192, "fp32")
    neutral = gemm_time_s(dict(p, narrow_fraction=1.0), fig, 512, 4, 8192, "fp32", transposed_a=True)
    assert narrow[2] == pytest.approx(10.0 * neutral[2])  # memory time scales with 1 / narrow_fraction
    assert narrow[0] > 2.0 * plain[0]
    # no exposed stream: the time is the launch floor plus the slower of compute and the slowed traffic
    assert narrow[2] > narrow[1]  # memory bound here
    assert narrow[0] == pytest.approx(p["fixed_s"] + narrow[2])
    # the time follows the bytes, not the columns: 2 and 11 columns cost about the same
    two = gemm_time_s(p, fig, 512, lo, 8192, "fp32", transposed_a=True)[0]
    eleven = gemm_time_s(p, fig, 512, hi, 8192, "fp32", transposed_a=True)[0]
    assert eleven == pytest.approx(two, rel=0.05)
    # the cost model prices a GemmOp that says so the same way
    from planner.cost.registry import AnalyticCostModel
    from planner.interfaces import GemmOp

    model = AnalyticCostModel(cpu, params={"gemm": {"narrow_fraction": 0.1}})
    assert model.predict(GemmOp(512, 4, 8192, "fp32", transposed_a=True)).time_s > 2.0 * model.predict(
        GemmOp(512, 4, 8192, "fp32")).time_s
    for args in ((512, hi + 1, 8192, "fp32"), (512, 1, 8192, "fp32"), (512, 4, 8192, "bf16")):
        assert gemm_time_s(p, fig, *args, transposed_a=True) == gemm_time_s(p, fig, *args)
    gpu = load_profile("h100-sxm-80gb")
    gfig, gp = device_figures(gpu), dict(default_parameters(gpu)["gemm"], narrow_fraction=0.1)
    assert gemm_time_s(gp, gfig, 512, 4, 8192, "fp32", transposed_a=True) == gemm_time_s(
        gp, gfig, 512, 4, 8192, "fp32")
    # an nn.Linear backward prices its weight gradient (out x in over the batch) this way
    slow = linear_time_s(p, fig, 8192, 4, 512, "fp32", backward=True)
    fast = linear_time_s(dict(p, narrow_fraction=1.0), fig, 8192, 4, 512, "fp32", backward=True)
    assert slow - fast == pytest.approx(narrow[0] - neutral[0])


@pytest.mark.parametrize("interaction", ["dot", {"dcn": {"cross_layers": 1, "low_rank": 0}}])
def test_step_marks_weight_gradients_as_transposed_products(monkeypatch, interaction):
    """The step model emits each weight gradient (MLP layers and DCN cross layers) as a product with its
    first operand transposed, and no other GEMM."""
    import dataclasses

    from planner.interfaces import GemmOp
    from planner.sim import processes
    from planner.sim.engine import simulate
    from planner.workload import load_workload, workload_from_mapping

    seen: list[GemmOp] = []
    original = processes._Builder.op

    def spy(self, op, repeat=1):
        if isinstance(op, GemmOp):
            seen.append(op)
        return original(self, op, repeat)

    monkeypatch.setattr(processes._Builder, "op", spy)
    tiny = load_workload("tiny")
    mapping = {"name": "marks", "model": {**{f.name: getattr(tiny.model, f.name)
                                              for f in dataclasses.fields(tiny.model)}},
               "training": {"batch_size": 512, "precision": "fp32", "optimizer": "sgd", "samples": 1e6}}
    mapping["model"]["tables"] = [{"rows": t.rows, "pooling": t.pooling, "count": t.count}
                                  for t in tiny.model.tables]
    mapping["model"]["interaction"] = interaction
    mapping["model"]["bottom_mlp"] = list(tiny.model.bottom_mlp)
    mapping["model"]["top_mlp"] = list(tiny.model.top_mlp)
    workload = workload_from_mapping(mapping, "marks")
    simulate(workload, load_profile("cpu-generic"), 1, steps=1, seed=0)
    batch = 512
    first = GemmOp(tiny.model.bottom_mlp[0], tiny.model.dense_features, batch, "fp32", transposed_a=True)
    assert first in seen  # the first bottom layer's weight gradient, on 4 dense features
    assert all(op.transposed_a == (op.k == batch and op.m != batch) for op in seen)
    assert sum(op.transposed_a for op in seen) >= len(tiny.model.bottom_mlp) + len(tiny.model.top_mlp)


def test_gemm_output_beyond_the_cache_pays_its_write_cost():
    from planner.cost.gemm import gemm_time_s
    from planner.cost.params import device_figures
    from planner.cost.registry import default_parameters

    profile = load_profile("cpu-generic")
    fig = device_figures(profile)
    p = dict(default_parameters(profile)["gemm"], cache_sharpness=8.0)
    big, small = 64 * fig.cache_bytes, fig.cache_bytes / 64  # output bytes far beyond / well inside
    m_big, m_small = int(big / 4 / 256), int(small / 4 / 256)
    for m, grows in ((m_big, True), (m_small, False)):
        one = gemm_time_s(dict(p, output_write_cost=1.0), fig, m, 256, 2, "fp32")[2]
        three = gemm_time_s(dict(p, output_write_cost=3.0), fig, m, 256, 2, "fp32")[2]
        assert (three > 2.5 * one) if grows else (three == pytest.approx(one, rel=1e-3))


def test_gemm_output_of_a_fresh_mapping_pays_page_faults_on_a_cpu_only():
    """An output of at least 32 MiB is mapped afresh per call on a CPU: page_fault_s per 4 KiB page."""
    from planner.cost.embedding import FRESH_MAPPING_BYTES, PAGE_BYTES
    from planner.cost.gemm import gemm_time_s
    from planner.cost.params import device_figures
    from planner.cost.registry import default_parameters

    cpu = load_profile("cpu-generic")
    fig = device_figures(cpu)
    p = default_parameters(cpu)["gemm"]
    n, k = 1024, 8
    m_fresh = FRESH_MAPPING_BYTES // (4 * n)  # exactly 32 MiB of fp32 output
    for m, pages in ((m_fresh, FRESH_MAPPING_BYTES / PAGE_BYTES), (m_fresh // 2, 0.0)):
        free = gemm_time_s(dict(p, page_fault_s=0.0), fig, m, n, k, "fp32")[0]
        paid = gemm_time_s(dict(p, page_fault_s=2e-6), fig, m, n, k, "fp32")[0]
        assert paid - free == pytest.approx(pages * 2e-6)
    gpu = load_profile("h100-sxm-80gb")
    g = dict(default_parameters(gpu)["gemm"])
    gfig = device_figures(gpu)
    assert (gemm_time_s(dict(g, page_fault_s=1e-3), gfig, m_fresh, n, k, "fp32")[0]
            == gemm_time_s(dict(g, page_fault_s=1e-9), gfig, m_fresh, n, k, "fp32")[0])


def test_gemm_exposed_stream_adds_the_traffic_beyond_the_cache_to_compute():
    """``exposed_stream`` adds that share of the out-of-cache traffic to a compute-bound GEMM; a GEMM whose
    operands sit in the cache keeps its roofline time."""
    from planner.cost.gemm import gemm_time_s
    from planner.cost.params import device_figures
    from planner.cost.registry import default_parameters

    profile = load_profile("cpu-generic")
    fig = device_figures(profile)
    p = dict(default_parameters(profile)["gemm"], cache_sharpness=8.0, page_fault_s=0.0)
    elem = 4
    big_m = int(64 * fig.cache_bytes / (elem * 512))  # an input far beyond the cache
    small_m = int(fig.cache_bytes / (64 * elem * 512))  # one well inside it
    for m, moves in ((big_m, True), (small_m, False)):
        none = gemm_time_s(dict(p, exposed_stream=1e-3), fig, m, 512, 512, "fp32")
        some = gemm_time_s(dict(p, exposed_stream=2.0), fig, m, 512, 512, "fp32")
        assert none[1] > none[2]  # compute bound
        if moves:
            assert some[0] - none[0] == pytest.approx((2.0 - 1e-3) * none[2], rel=0.02)
        else:
            assert some[0] == pytest.approx(none[0], rel=1e-3)


def test_low_precision_gemm_calls_pay_their_set_up():
    """A bf16 (fp16, fp8) GEMM call pays ``low_precision_fixed_s`` on top of ``fixed_s``; fp32 does not."""
    from planner.cost.gemm import gemm_time_s
    from planner.cost.params import device_figures
    from planner.cost.registry import default_parameters

    profile = load_profile("cpu-generic")
    fig = device_figures(profile)
    p = default_parameters(profile)["gemm"]
    for dtype, pays in (("bf16", True), ("fp16", True), ("fp32", False)):
        for m, n, k in ((256, 64, 13), (4096, 1, 256)):  # a tiled GEMM and a matrix-vector product
            base = gemm_time_s(dict(p, low_precision_fixed_s=1e-9), fig, m, n, k, dtype)[0]
            more = gemm_time_s(dict(p, low_precision_fixed_s=2e-5), fig, m, n, k, dtype)[0]
            assert more - base == pytest.approx(2e-5 - 1e-9 if pays else 0.0, abs=1e-12)


def test_dcn_backward_counts_autograd_element_wise_work():
    """The backward of x0 * (U(Vx) + b) + x is 4 GEMMs and 5 element-wise launches (13 tensor passes)."""
    from planner.cost import interaction
    from planner.cost.params import device_figures
    from planner.cost.registry import default_parameters

    profile = load_profile("cpu-generic")
    fig = device_figures(profile)
    params = default_parameters(profile)
    p = dict(params["interaction"], cache_fraction=0.0)  # every pass from memory
    gemm_p = params["gemm"]
    batch, width = 4096, 512
    forward, launches_f = interaction.dcn_cross_time_s(p, gemm_p, fig, batch, width, 32, "fp32", "forward")
    backward, launches_b = interaction.dcn_cross_time_s(p, gemm_p, fig, batch, width, 32, "fp32",
                                                        "backward")
    assert (launches_f, launches_b) == (2 + 3, 4 + 5)
    # the rest is the element-wise passes, all from memory here: 13 of B x width, and 5 launches
    from planner.cost.gemm import gemm_time_s
    shapes = ((batch, width, 32), (width, 32, batch), (batch, 32, width), (32, width, batch))
    gemms = sum(gemm_time_s(gemm_p, fig, m, n, k, "fp32")[0] for m, n, k in shapes)
    tensor_s = batch * width * 4 / (fig.memory_bandwidth_bytes_per_s * p["bandwidth_fraction"])
    assert backward == pytest.approx(gemms + 13.0 * tensor_s + 5 * p["fixed_s"], rel=1e-9)
    assert backward > forward


def test_memory_cache_knee_sharpness():
    """``cache_sharpness`` 1 is the gradual C / (C + bytes) curve; a sharp knee keeps small working sets
    at cache speed and sends large ones to memory speed."""
    from planner.cost.memory_bound import memory_time_s
    from planner.cost.params import device_figures
    from planner.cost.registry import default_parameters

    profile = load_profile("cpu-generic")
    fig = device_figures(profile)
    p = dict(default_parameters(profile)["memory"], fixed_s=0.0)
    cache = p["cache_fraction"] * fig.cache_bytes
    gradual = memory_time_s(dict(p, cache_sharpness=1.0), fig, "copy", cache)[1]["hit_fraction"]
    assert gradual == pytest.approx(0.5)
    sharp = dict(p, cache_sharpness=6.0)
    assert memory_time_s(sharp, fig, "copy", cache / 4)[1]["hit_fraction"] > 0.99
    assert memory_time_s(sharp, fig, "copy", cache * 4)[1]["hit_fraction"] < 0.01
    assert memory_time_s(dict(p, cache_sharpness=1.0), fig, "copy", cache * 4)[1]["hit_fraction"] > 0.15


def test_tables_of_one_step_share_the_cache():
    """Tables that fit together keep the whole cache; beyond it each keeps a share (Che's approximation)
    that fills the cache, hot (small, often looked-up) tables a larger one, and a shared table is slower."""
    from planner.cost.embedding import cache_shares, embedding_time_s
    from planner.cost.params import device_figures
    from planner.cost.registry import default_parameters

    profile = load_profile("cpu-generic")
    fig = device_figures(profile)
    p = default_parameters(profile)["embedding"]
    cache = p["cache_fraction"] * fig.cache_bytes
    rows_fit = int(cache / 4 / (64 * 4))  # four 64-float tables filling a quarter of the cache each
    assert cache_shares(p, fig, [(rows_fit, 64, 4, 8192.0)] * 4) == [1.0] * 4
    big = int(cache / (64 * 4))  # each table alone fills the cache
    shares = cache_shares(p, fig, [(big, 64, 4, 8192.0), (big, 64, 4, 81920.0), (big // 100, 64, 4, 8192.0)])
    assert sum(s * cache for s in shares) == pytest.approx(cache, rel=1e-3)
    assert shares[1] > shares[0]  # looked up ten times as often: more of it stays
    alone = embedding_time_s(p, fig, big, 64, 20, 4096, 4, "forward")[0]
    shared = embedding_time_s(p, fig, big, 64, 20, 4096, 4, "forward", cache_share=shares[0])[0]
    assert shared > alone


def test_the_steps_dense_data_competes_with_the_tables_for_the_cache():
    """Dense working data touched once per step takes cache from the tables: none leaves the shares as
    they were, more never raises a share, and tables that fit beside it keep the whole cache."""
    from planner.cost.embedding import cache_shares
    from planner.cost.params import device_figures
    from planner.cost.registry import default_parameters

    profile = load_profile("cpu-generic")
    fig = device_figures(profile)
    p = default_parameters(profile)["embedding"]
    cache = p["cache_fraction"] * fig.cache_bytes
    quarter = int(cache / 4 / (64 * 4))
    tables = [(quarter, 64, 4, 8192.0)] * 2  # half the cache in all
    assert cache_shares(p, fig, tables, other_bytes=cache / 4) == [1.0, 1.0]
    big = int(cache / (64 * 4))
    tables = [(big, 64, 4, 8192.0), (big // 10, 64, 4, 8192.0)]
    assert cache_shares(p, fig, tables, 0.0) == cache_shares(p, fig, tables)
    shares = [cache_shares(p, fig, tables, other) for other in (0.0, cache / 2, 4 * cache, 64 * cache)]
    for before, after in itertools.pairwise(shares):
        assert all(b >= a for b, a in zip(before, after, strict=True))
    assert shares[-1][0] < 0.5 * shares[0][0]
    # tables and dense data together fill the cache (the dense stream's resident part makes up the rest)
    assert sum(shares[1]) <= 1.0 + 1e-9
    assert all(0.0 < s < 1.0 for s in cache_shares(p, fig, tables, 1e30))  # converges however much
    for bad in (float("nan"), float("inf"), -1.0):
        with pytest.raises(ValueError, match="other_bytes"):
            cache_shares(p, fig, tables, bad)


def test_the_step_prices_its_tables_with_the_dense_data_in_the_cache(monkeypatch):
    """build_program hands the step's dense working bytes to the cache solve: with more of them the
    embedding ops of the same step are priced with a smaller cache share and take longer."""
    from planner import memory
    from planner.sim.engine import simulate
    from planner.workload import load_workload

    profile = load_profile("cpu-generic")
    w = load_workload("tiny")
    seen = []
    real = memory.dense_working_bytes

    def spy(*args, **kwargs):
        seen.append(real(*args, **kwargs))
        return seen[-1]

    monkeypatch.setattr(memory, "dense_working_bytes", spy)
    base = simulate(w, profile, 1, steps=2, seed=0)
    assert seen and seen[0] > 0
    monkeypatch.setattr(memory, "dense_working_bytes", lambda *a, **k: 1e12)
    crowded = simulate(w, load_profile("cpu-generic"), 1, steps=2, seed=0)
    assert crowded.breakdown_s["embedding_fwd"] > base.breakdown_s["embedding_fwd"]


def test_embedding_small_rows_skew_and_cache():
    model = build_cost_model(load_profile("h100-sxm-80gb"))

    def per_useful_byte(dim):
        est = model.predict(EmbeddingOp(10_000_000, dim, 20, 8192, 4, "forward"))
        return (est.time_s - est.parts["fixed_s"]) / (8192 * 20 * dim * 4)

    assert per_useful_byte(4) > 2 * per_useful_byte(128)  # 16 B rows still move 32 B sectors
    uniform = model.predict(EmbeddingOp(10_000_000, 64, 20, 8192, 4, "forward"))
    skewed = model.predict(EmbeddingOp(10_000_000, 64, 20, 8192, 4, "forward", zipf_exponent=1.2))
    small = model.predict(EmbeddingOp(10_000, 64, 20, 8192, 4, "forward"))
    assert skewed.parts["hit_fraction"] > 0.5 > uniform.parts["hit_fraction"]
    assert small.parts["hit_fraction"] == 1.0
    assert skewed.time_s < uniform.time_s and small.time_s < uniform.time_s
    sgd = model.predict(EmbeddingOp(10_000_000, 64, 20, 8192, 4, "backward", "sgd"))
    adagrad = model.predict(EmbeddingOp(10_000_000, 64, 20, 8192, 4, "backward", "adagrad"))
    assert adagrad.time_s > sgd.time_s and adagrad.launches > sgd.launches


@pytest.mark.parametrize("rows,lookups,s", [(100_000, 10_240, 0.0), (100_000, 10_240, 1.05),
                                              (1_000_000, 20_480, 1.2), (5_000, 100_000, 0.8)])
def test_unique_rows_match_simulation(rows, lookups, s):
    rng = np.random.default_rng(1)
    if s == 0:
        draws = rng.integers(0, rows, lookups)
    else:
        p = np.arange(1, rows + 1.0) ** -s
        draws = rng.choice(rows, lookups, p=p / p.sum())
    assert unique_rows(rows, lookups, s) == pytest.approx(len(np.unique(draws)), rel=0.03)


def test_hit_fraction_is_zipf_mass_of_cached_rows():
    assert hit_fraction(1000.0, 100.0, 0.0) == pytest.approx(0.1)
    exact = sum(k ** -1.1 for k in range(1, 101)) / sum(k ** -1.1 for k in range(1, 5001))
    assert hit_fraction(5000.0, 100.0, 1.1) == pytest.approx(exact, rel=0.01)


def test_collectives_latency_floor_and_levels():
    model = build_cost_model(load_profile("h100-sxm-80gb"))
    tiny = model.predict(CollectiveOp("all_reduce", 1024, 8, 8))
    assert tiny.time_s == pytest.approx(10e-6, rel=0.05)  # latency bound
    big = model.predict(CollectiveOp("all_reduce", 1e9, 8, 8))
    busbw = 2 * 7 / 8 * 1e9 / big.time_s
    assert busbw == pytest.approx(0.8 * 450e9, rel=0.01)
    across = model.predict(CollectiveOp("all_to_all", 64e6, 16, 8))
    inside = model.predict(CollectiveOp("all_to_all", 64e6, 8, 8))
    assert across.time_s > 3 * inside.time_s and across.parts["inter_s"] > across.parts["intra_s"]


def _calibrated_h100() -> dict:
    data, _ = load_profile_mapping("h100-sxm-80gb")
    data = copy.deepcopy(data)
    data["calibration"] = {
        "device_name": "NVIDIA H100 80GB HBM3", "device_kind": "cuda",
        "measured": {"files": [{"path": "m.json", "sha256": "a" * 64}]},
        "families": {"memory": {"status": "measured", "sigma_rel": 0.03,
                                "params": {"bandwidth_fraction": {"value": 0.5, "stderr": 0.01}}}},
    }
    data["figures"]["efficiency.memory"] = {"source": "recplan calibrate (test)", "as_of": "2026-11-24",
                                            "status": "measured"}
    return data


def test_calibrated_parameters_drive_the_model_and_transfer_to_derived_profiles():
    calibrated = profile_from_mapping(_calibrated_h100(), "test")
    model = build_cost_model(calibrated)
    assert model.params["memory"]["bandwidth_fraction"] == 0.5
    copy_op = MemoryOp("copy", 4e9)
    est = model.predict(copy_op)
    assert est.sigma_rel == 0.03
    derived_data = _calibrated_h100()
    derived_data["device"]["hbm_bandwidth_bytes_per_s"] *= 2
    derived_data["name"] = "h100-2x-hbm"
    derived_data["derived_from"] = {"base": "h100-sxm-80gb",
                                    "changes": {"device.hbm_bandwidth_bytes_per_s": "x2"}}
    derived = profile_from_mapping(derived_data, "test")
    derived_est = build_cost_model(derived).predict(copy_op)
    fixed = est.parts["fixed_s"]
    assert derived_est.time_s - fixed == pytest.approx((est.time_s - fixed) / 2, rel=1e-9)
    status = figure_status(derived)
    assert status["calibration.memory"] == "transferred"
    assert status["efficiency.memory"] == "transferred"
    assert status["calibration.gemm"] == "datasheet"
    assert figure_status(calibrated)["calibration.memory"] == "measured"
    assert figure_status(calibrated)["device.hbm_bytes"] == "datasheet"


@pytest.mark.parametrize("mutate,field", [
    (lambda c: c.update(device_kind="cpu"), "calibration.device_kind"),
    (lambda c: c.update(device_name="NVIDIA A100-SXM4-40GB"), "calibration.device_name"),
    (lambda c: c["families"].update(warp={}), "calibration.families.warp"),
    (lambda c: c["families"]["memory"]["params"].update(speed={"value": 1}),
     "calibration.families.memory.params.speed"),
    (lambda c: c["families"]["memory"]["params"]["bandwidth_fraction"].update(value=9.0),
     "calibration.families.memory.params.bandwidth_fraction.value"),
    (lambda c: c["families"]["memory"].update(status="guessed"), "calibration.families.memory.status"),
    (lambda c: c["measured"]["files"][0].update(sha256="xyz"), "calibration.measured.files[0].sha256"),
])
def test_validate_calibration_names_the_field(mutate, field):
    data = _calibrated_h100()
    mutate(data["calibration"])
    with pytest.raises(InputError) as err:
        profile_from_mapping(data, "p.yaml")
    assert err.value.field == field and err.value.file == "p.yaml"


def test_validate_calibration_requires_a_mapping():
    with pytest.raises(InputError, match="mapping"):
        validate_calibration(SimpleNamespace(calibration=[1]), file="f")


@pytest.mark.parametrize("profile,kind,device,memory,ok", [
    ("cpu-generic", "cpu", "AMD EPYC", None, True),
    ("cpu-generic", "cuda", "NVIDIA H100 80GB HBM3", None, False),
    ("h100-sxm-80gb", "cpu", "AMD EPYC", None, False),
    ("h100-sxm-80gb", "cuda", "NVIDIA H100 80GB HBM3", 85e9, True),
    ("h100-pcie-80gb", "cuda", "NVIDIA H100 80GB HBM3", 85e9, False),
    ("h100-pcie-80gb", "cuda", "NVIDIA H100 PCIe", 85e9, True),
    ("a100-sxm4-40gb", "cuda", "NVIDIA A100-SXM4-80GB", 85e9, False),
    ("a100-sxm4-80gb", "cuda", "NVIDIA A100-SXM4-80GB", 85e9, True),
    ("mi300x", "cuda", "AMD Instinct MI300X", 206e9, True),
])
def test_device_matching_rule(profile, kind, device, memory, ok):
    assert (device_mismatch(load_profile(profile), kind, device, memory) is None) is ok


def test_gpu_small_gemm_outputs_get_small_tiles_and_more_per_unit():
    from planner.cost.params import device_figures, gemm_tiling

    gpu = device_figures(load_profile("h100-sxm-80gb"))
    assert gemm_tiling(gpu, 8192, 1024) == (128, 128, 1)
    assert gemm_tiling(gpu, 27, 27) == (32, 32, 16)  # 16 tiles of 32 x 32 cover one 128 x 128 tile's area
    assert gemm_tiling(gpu, 4096, 1) == (128, 16, 8)
    cpu = device_figures(load_profile("cpu-generic"))
    assert gemm_tiling(cpu, 27, 27) == (*cpu.tile, 1)


def test_cpu_batched_products_pad_columns_to_groups_of_four_not_to_the_register_tile():
    """On a CPU the dot interaction's products cost per output row and per group of 4 columns: 15 and 16
    features cost the same, 17 more (one more group), and rows are not padded to the 8-row tile."""
    from planner.cost.interaction import batched_gemm_time_s
    from planner.cost.params import CPU_BATCHED_TILE, device_figures
    from planner.cost.registry import default_parameters

    profile = load_profile("cpu-generic")
    fig = device_figures(profile)
    params = default_parameters(profile)
    p, g = params["interaction"], params["gemm"]

    def compute_s(f: int) -> float:
        return batched_gemm_time_s(p, g, fig, 1024, f, f, 64, "fp32", 1e18)[1]

    assert CPU_BATCHED_TILE == (1, 4)
    # (to the last wave over the profile's cores)
    assert compute_s(13) == pytest.approx(compute_s(16) * 13 / 16, rel=1e-2)  # rows: no padding
    assert compute_s(15) == pytest.approx(compute_s(16) * 15 / 16, rel=1e-2)  # 15 columns: 4 groups, as 16
    assert compute_s(17) == pytest.approx(compute_s(16) * 17 / 16 * 5 / 4, rel=1e-2)  # 17: five groups


def test_dot_interaction_on_a_gpu_is_bound_by_memory_not_by_padded_tiles():
    model = build_cost_model(load_profile("h100-sxm-80gb"))
    est = model.predict(InteractionOp(8192, 27, 128, "bf16", "forward"))
    # 8192 products of 27 x 27 over 128: 1.5 GFLOP but 123 MB of traffic: memory bound on an H100
    assert est.parts["compute_s"] < est.parts["memory_s"]
    assert est.time_s < 200e-6


@pytest.mark.parametrize("name", ["cpu-generic", "h100-sxm-80gb"])
def test_vectorised_embedding_times_equal_the_per_op_formula(name):
    """The fit's vectorised embedding model gives exactly what :func:`embedding_time_s` gives per op."""
    import itertools

    from planner.cost.embedding import embedding_batch, embedding_time_s, embedding_times
    from planner.cost.params import device_figures
    from planner.cost.registry import default_parameters

    profile = load_profile(name)
    fig = device_figures(profile)
    p = dict(default_parameters(profile)["embedding"], update_row_bytes_sgd=300.0, page_fault_s=2e-6,
             bag_overhead_bytes=40.0)
    ops = []
    for rows, dim, pooling, batch, elem, zipf in itertools.product(
            (300, 50_000, 4_000_000), (8, 64), (1.0, 20.0), (256, 8192), (2, 4), (0.0, 0.8, 1.0, 1.2)):
        for phase, optimizer in (("forward", "none"), ("backward", "sgd"), ("backward", "adagrad"),
                                 ("backward", "rowwise_adagrad")):
            footprint = None if dim == 8 else rows / 3
            share = 0.4 if zipf else 1.0
            evicted = 48e6 if phase == "backward" and batch == 8192 else 0.0
            ops.append((rows, dim, pooling, batch, elem, phase, optimizer, zipf, footprint, share, evicted))
    vector = embedding_times(p, fig, embedding_batch(fig, ops))
    scalar = np.array([embedding_time_s(p, fig, *op)[0] for op in ops])
    assert np.allclose(vector, scalar, rtol=1e-12, atol=0.0)


@pytest.mark.parametrize("name", ["cpu-generic", "h100-sxm-80gb"])
def test_vectorised_memory_times_equal_the_per_op_formula(name):
    """The fit's vectorised memory-bound model gives exactly what :func:`memory_time_s` gives per op,
    page faults of large optimizer temporaries and host links included."""
    from planner.cost.memory_bound import memory_batch, memory_time_s, memory_times
    from planner.cost.params import device_figures
    from planner.cost.registry import default_parameters

    profile = load_profile(name)
    fig = device_figures(profile)
    p = dict(default_parameters(profile)["memory"], page_fault_s=2e-6, cache_sharpness=2.5)
    p["low_precision_rate"] = 0.6
    ops = [(kind, float(size), opt, elem)
           for kind in ("copy", "elementwise", "optimizer_step", "optimizer", "h2d", "d2h")
           for size in (0, 1024, 3 << 20, 40 << 20, 1 << 30)
           for opt in ("adagrad", "sgd", "adam")
           for elem in (4, 2)]
    vector = memory_times(p, fig, memory_batch(fig, ops))
    scalar = np.array([memory_time_s(p, fig, *op)[0] for op in ops])
    assert np.array_equal(vector, scalar)
    no_cache = dict(p, cache_fraction=0.0)
    assert np.array_equal(memory_times(no_cache, fig, memory_batch(fig, ops)),
                          [memory_time_s(no_cache, fig, *op)[0] for op in ops])


def test_vectorised_linear_times_equal_the_per_call_formula():
    """The fit's vectorised ``nn.Linear`` model gives what :func:`linear_time_s` gives per call on a CPU:
    matrix-vector products, narrow weight gradients, edge tiles, fresh 32 MiB outputs and bf16 calls
    included; a GPU's calls stay per call (split-K)."""
    import itertools

    from planner.cost.gemm import linear_batch, linear_time_s, linear_times
    from planner.cost.params import device_figures
    from planner.cost.registry import default_parameters

    fig = device_figures(load_profile("cpu-generic"))
    p = dict(default_parameters(load_profile("cpu-generic"))["gemm"], page_fault_s=2e-6,
             edge_slowdown=1.6, narrow_fraction=0.1, exposed_stream=2.0, gemv_fraction=0.5,
             low_precision_fixed_s=2e-5, output_write_cost=1.7)
    ops = [(batch, fan_in, fan_out, dtype, backward)
           for batch, fan_in, fan_out in itertools.product((1, 256, 8192), (1, 4, 13, 479, 1024),
                                                           (1, 4, 16, 1024))
           for dtype in ("fp32", "bf16") for backward in (False, True)]
    batch = linear_batch(fig, ops)
    gemms = batch.gemms
    assert gemms.matvec.any() and gemms.narrow.any() and gemms.fresh_bytes.max() > 0  # each branch is met
    vector = linear_times(p, fig, batch)
    scalar = np.array([linear_time_s(p, fig, *op) for op in ops])
    assert np.allclose(vector, scalar, rtol=1e-12, atol=0.0)
    assert linear_batch(device_figures(load_profile("h100-sxm-80gb")), ops) is None


def test_vectorised_interaction_times_equal_the_per_op_formulas():
    """The fit's vectorised interaction model gives what :func:`dot_interaction_time_s` and
    :func:`dcn_cross_time_s` give per op on a CPU: the scalar bmm loop and the tiled products, low-rank
    and full DCN layers, fp32 and bf16, forward and backward; a GPU's ops stay per op."""
    import itertools

    from planner.cost.interaction import (
        dcn_cross_time_s,
        dot_interaction_time_s,
        interaction_batch,
        interaction_times,
    )
    from planner.cost.params import device_figures
    from planner.cost.registry import default_parameters

    profile = load_profile("cpu-generic")
    fig = device_figures(profile)
    defaults = default_parameters(profile)
    p = dict(defaults["interaction"], naive_output_s=3e-9, naive_mac_s=2e-9, naive_strided_mac_s=4e-9,
             matrix_s=5e-8, batched_k_half=12.0, batched_efficiency_bf16=0.4, low_precision_rate=0.6,
             cache_sharpness=2.0)
    g = dict(defaults["gemm"], page_fault_s=2e-6, edge_slowdown=1.6, narrow_fraction=0.1, exposed_stream=2.0,
             low_precision_fixed_s=2e-5)
    ops, scalar = [], []
    for batch, dtype, phase in itertools.product((256, 8192), ("fp32", "bf16"), ("forward", "backward")):
        for features, dim in ((4, 8), (15, 16), (27, 64), (40, 128)):
            ops.append(("dot", batch, features, dim, dtype, phase))
            scalar.append(dot_interaction_time_s(p, g, fig, batch, features, dim, dtype, phase)[0])
        for width, low_rank in ((13, 0), (256, 0), (512, 64), (1024, 8)):
            ops.append(("dcn", batch, width, low_rank, dtype, phase))
            scalar.append(dcn_cross_time_s(p, g, fig, batch, width, low_rank, dtype, phase)[0])
    batch = interaction_batch(fig, ops)
    assert batch.naive.any() and not batch.naive.all()  # both kinds of batched product are met
    assert np.allclose(interaction_times(p, g, fig, batch), scalar, rtol=1e-12, atol=0.0)
    assert interaction_batch(device_figures(load_profile("h100-sxm-80gb")), ops) is None


def test_an_element_wise_op_on_two_byte_floats_streams_at_the_low_precision_rate():
    """bf16 element-wise bytes move at low_precision_rate x the fp32 rate; copies and fp32 ops do not."""
    from planner.cost.memory_bound import memory_time_s
    from planner.cost.params import device_figures
    from planner.cost.registry import default_parameters

    profile = load_profile("cpu-generic")
    fig = device_figures(profile)
    p = dict(default_parameters(profile)["memory"], low_precision_rate=0.5)
    size = 256.0 * 2**20
    fp32 = memory_time_s(p, fig, "elementwise", size)[1]["transfer_s"]
    bf16 = memory_time_s(p, fig, "elementwise", size, elem_bytes=2)[1]["transfer_s"]
    assert bf16 == pytest.approx(2.0 * fp32)
    assert memory_time_s(p, fig, "copy", size, elem_bytes=2) == memory_time_s(p, fig, "copy", size)
    assert memory_time_s(dict(p, low_precision_rate=1.0), fig, "elementwise", size, elem_bytes=2) == \
        memory_time_s(p, fig, "elementwise", size)


@pytest.mark.parametrize("low_rank", [0, 16])
def test_a_dcn_layer_backward_runs_autograds_four_element_wise_ops(monkeypatch, low_rank):
    """Per cross layer the step runs x0 * h and + x forward, and backward the multiply's two products and
    the two adds that accumulate the gradients of x_l and x0 (the profiler's count), each over three
    batch x width tensors, at low and full rank alike."""
    from planner.sim import processes
    from planner.sim.engine import simulate
    from planner.workload import interaction_output_width, workload_from_mapping

    layers, batch = 2, 256
    w = workload_from_mapping({
        "name": "dcn-count",
        "model": {"dense_features": 13, "bottom_mlp": [32, 16], "embedding_dim": 16,
                  "tables": [{"rows": 1000, "pooling": 2, "count": 3}],
                  "interaction": {"dcn": {"cross_layers": layers, "low_rank": low_rank}}, "top_mlp": [32, 1]},
        "training": {"batch_size": batch, "precision": "fp32", "optimizer": "sgd", "samples": 1e6}}, "test")
    tensor = 3.0 * batch * interaction_output_width(w) * 4
    sizes = []
    real = processes._elementwise
    monkeypatch.setattr(processes, "_elementwise",
                        lambda b, n, elem=4: (sizes.append(n), real(b, n, elem))[1])
    simulate(w, load_profile("cpu-generic"), 1, steps=1, seed=0)
    assert processes.DCN_BACKWARD_ELEMENTWISE == 4
    assert sum(1 for n in sizes if n == pytest.approx(tensor)) == (2 + 4) * layers


def test_the_step_marks_bf16_arithmetic_and_casts_but_not_copies(monkeypatch):
    """Under bf16 autocast the step's element-wise arithmetic (x0 * h, + x, ReLU, gradients) and casts
    run on 2-byte elements and take memory.low_precision_rate; copies such as the cat of the pooled
    embeddings convert nothing and keep the fp32 rate; an fp32 step marks nothing; and each cross layer's
    backward ends with V's bias gradient, a column sum."""
    from planner.sim import processes
    from planner.sim.engine import simulate
    from planner.workload import interaction_output_width, workload_from_mapping

    def run(precision: str) -> tuple[list[tuple[float, int]], float]:
        w = workload_from_mapping({
            "name": f"dcn-{precision}",
            "model": {"dense_features": 13, "bottom_mlp": [32, 16], "embedding_dim": 16,
                      "tables": [{"rows": 1000, "pooling": 2, "count": 3}],
                      "interaction": {"dcn": {"cross_layers": 2, "low_rank": 8}}, "top_mlp": [32, 1]},
            "training": {"batch_size": 256, "precision": precision, "optimizer": "sgd", "samples": 1e6}},
            "test")
        seen: list[tuple[float, int]] = []
        real = processes._elementwise
        monkeypatch.setattr(processes, "_elementwise",
                            lambda b, n, elem=4: (seen.append((n, elem)), real(b, n, elem))[1])
        simulate(w, load_profile("cpu-generic"), 1, steps=1, seed=0)
        return seen, 256.0 * interaction_output_width(w)

    fp32, _ = run("fp32")
    assert {elem for _, elem in fp32} == {4}
    bf16, tensor = run("bf16")
    marks = {n: elem for n, elem in bf16}
    assert marks[3 * tensor * 2] == 2  # x0 * h, + x and their gradients
    assert marks[2 * tensor * 2] == 4  # the cat of the bottom output and the pooled embeddings (a copy)
    assert sum(1 for n, elem in bf16 if n == tensor * 2 + (tensor / 256) * 4 and elem == 2) == 2  # bias sums
    assert any(elem == 2 for n, elem in bf16 if n != 3 * tensor * 2)  # casts and the MLPs' ReLUs too


def test_a_cpu_step_adds_only_the_cold_share_of_the_host_overhead_to_embedding_updates():
    """On a serial (CPU) host an embedding backward + update, whose bench timing holds its host work, adds
    cold_dispatch_share x host_overhead_s per launch; forward ops add the whole overhead; a GPU adds the
    whole overhead to every op."""
    from planner.cost.registry import AnalyticCostModel
    from planner.sim.processes import _Builder

    cpu = AnalyticCostModel(load_profile("cpu-generic"), params={"overhead": {"cold_dispatch_share": 0.25}})
    fwd = EmbeddingOp(rows=1000, dim=16, pooling=2, batch=256, elem_bytes=4, phase="forward")
    bwd = EmbeddingOp(rows=1000, dim=16, pooling=2, batch=256, elem_bytes=4, phase="backward",
                      optimizer="adagrad")
    assert not cpu.predict(fwd).host_in_bench and cpu.predict(bwd).host_in_bench
    b = _Builder(cpu, serial_host=True)
    b.begin("t", "embedding_bwd_update")
    b.op(fwd)
    b.op(bwd)
    host = cpu.host_overhead_s()
    assert b._open.host_s == pytest.approx([cpu.predict(fwd).launches * host,
                                            cpu.predict(bwd).launches * host * 0.25])
    gpu = build_cost_model(load_profile("h100-sxm-80gb"))
    assert not gpu.predict(bwd).host_in_bench
    default = build_cost_model(load_profile("cpu-generic"))  # share 1 where not measured: as before
    assert default.cold_dispatch_share() == 1.0
    same = _Builder(default, serial_host=True)
    same.begin("t", "embedding_bwd_update")
    same.op(bwd)
    assert same._open.host_s == [default.predict(bwd).launches * default.host_overhead_s()]


def test_an_update_after_other_data_passed_the_cache_pays_for_its_evicted_rows():
    """Eviction between a table's forward and its update: no cost without other data, more the more data
    passes (up to every distinct row a miss), and a small hot table pays once per distinct row, not per
    lookup; rows the long-run cache keeps anyway pay nothing."""
    from planner.cost.embedding import embedding_time_s, held_fraction, unique_rows
    from planner.cost.params import device_figures
    from planner.cost.registry import default_parameters

    profile = load_profile("cpu-generic")
    fig = device_figures(profile)
    p = dict(default_parameters(profile)["embedding"], evicted_row_bytes=10_000.0)
    cache = fig.cache_bytes
    assert held_fraction(fig, 1e6, 0.0) == 1.0
    assert held_fraction(fig, 4 * cache, 0.0) == pytest.approx(0.25)
    assert held_fraction(fig, 1e6, cache) == pytest.approx(math.exp(-1.0))

    def update(rows: int, pooling: float, evicted: float, share: float = 1.0) -> float:
        return embedding_time_s(p, fig, rows, 64, pooling, 4096, 4, "backward", "sgd", cache_share=share,
                                evicted_bytes=evicted)[0]

    big = [update(10_000_000, 4, e) for e in (0.0, 8e6, 32e6, 128e6, 1e10)]
    assert big == sorted(big) and big[-1] > 1.5 * big[0]
    bw = fig.memory_bandwidth_bytes_per_s * p["bandwidth_fraction"]
    touched = unique_rows(10_000_000, 4096 * 4)
    # fully evicted: every distinct row of a table far beyond the cache misses (its evicted cost, plus
    # the ordinary miss costs of those rows)
    assert big[-1] - big[0] == pytest.approx(touched * 10_000.0 / bw, rel=0.25)
    # a 500-row table looked up 82k times that the cache does not keep: its rows miss once each
    small = update(500, 20, 1e10, share=0.0) - update(500, 20, 0.0, share=0.0)
    assert small == pytest.approx(500 * 10_000.0 / bw, rel=0.25)
    assert update(500, 20, 1e10) == update(500, 20, 0.0)  # kept by the cache: no extra cost


def test_a_step_gives_each_table_the_other_data_touched_between_its_forward_and_update():
    from planner.cost.embedding import evicted_between, row_bytes, unique_rows
    from planner.cost.params import device_figures

    fig = device_figures(load_profile("cpu-generic"))
    tables = [(1_000_000.0, 64, 4, 8192.0, 0.0), (1_000.0, 16, 4, 8192.0, 0.0)]
    first, second = evicted_between(fig, tables, other_bytes=5e6)
    read = [unique_rows(int(r), lk, s) * row_bytes(d, e, fig.access_bytes) for r, d, e, lk, s in tables]
    assert first == pytest.approx(5e6 + read[1])
    assert second == pytest.approx(5e6 + read[0])


def test_a_dense_optimizer_step_streams_what_pytorchs_step_streams():
    """Adagrad's single-tensor step launches 5 ops and streams 11 passes over the parameter (its sqrt
    temporary included), SGD's one op 3, Adam's 8 ops 18: with the cache and launch costs off, the three
    steps of one parameter take 11 : 3 : 18 of the streaming time, and the fit prices a bench record
    from its parameter bytes, not the algorithmic ``bytes_moved`` the record is named by."""
    from calibration.fit import _case
    from calibration.measurements import Record
    from planner.cost.memory_bound import launches_for, memory_time_s, optimizer_step_bytes
    from planner.cost.params import device_figures
    from planner.cost.registry import default_parameters

    profile = load_profile("cpu-generic")
    fig = device_figures(profile)
    p = dict(default_parameters(profile)["memory"], cache_fraction=0.0, optimizer_fixed_s=0.0,
             optimizer_launch_s=0.0, page_fault_s=0.0)
    size = 4.0 * 2**20
    times = {opt: memory_time_s(p, fig, "optimizer", optimizer_step_bytes(opt, size), opt)[0]
             for opt in ("sgd", "adagrad", "adam")}
    assert times["adagrad"] / times["sgd"] == pytest.approx(11 / 3)
    assert times["adam"] / times["sgd"] == pytest.approx(18 / 3)
    assert (launches_for("optimizer", "sgd"), launches_for("optimizer", "adagrad"),
            launches_for("optimizer", "adam")) == (1, 5, 8)
    params = {"bytes": 4194304, "bytes_moved": 20971520, "optimizer": "adagrad"}
    record = Record("m.json", 0, "memory/optimizer_step/fp32/bytes=4194304,bytes_moved=20971520,"
                    "optimizer=adagrad", "memory", "optimizer_step", "fp32", params, 1e-3, 1e-3, 1e-3, 11,
                    None, {})
    family, launches, predict, _batch = _case(record, fig)
    assert (family, launches) == ("memory", 5)
    full = default_parameters(profile)
    assert predict(full)[0] == memory_time_s(full["memory"], fig, "optimizer_step", 11.0 * size, "adagrad")[0]


def test_the_cache_holds_an_ops_buffers_not_its_traffic():
    """An in-place SGD step over P bytes touches 2P (parameter, gradient) while streaming 3P; an add
    c = a + b of the same traffic touches 3P, so near the cache's knee the step keeps more in cache."""
    from planner.cost.memory_bound import memory_time_s, working_set_bytes
    from planner.cost.params import device_figures
    from planner.cost.registry import default_parameters

    profile = load_profile("cpu-generic")
    fig = device_figures(profile)
    p = default_parameters(profile)["memory"]
    cache = p["cache_fraction"] * fig.cache_bytes
    traffic = 1.5 * cache
    assert working_set_bytes("optimizer", traffic, "sgd") == pytest.approx(cache)
    assert working_set_bytes("optimizer", 11.0 * cache, "adagrad") == pytest.approx(4.0 * cache)
    assert working_set_bytes("elementwise", traffic) == traffic
    step = memory_time_s(p, fig, "optimizer", traffic, "sgd")[1]["hit_fraction"]
    add = memory_time_s(p, fig, "elementwise", traffic)[1]["hit_fraction"]
    assert step == pytest.approx(0.5) and add < step


def test_a_gpu_splits_the_inner_dimension_of_a_small_output_over_its_idle_sms():
    """A weight gradient of 512 x 4 outputs over a batch of 8192 fills 4 of an H100's tiles: unsplit it
    would run 8192-deep tiles on 4 SMs (~0.7 ms); split over the idle SMs and reduced, it costs a few
    times its roofline. A CPU, whose tiles already fill its cores, prices it unsplit, and a split never
    makes a GEMM slower than the unsplit tiles."""
    from planner.cost.gemm import gemm_time_s
    from planner.cost.params import device_figures
    from planner.cost.registry import default_parameters

    profile = load_profile("h100-sxm-80gb")
    fig = device_figures(profile)
    p = default_parameters(profile)["gemm"]
    total, _compute, memory_s = gemm_time_s(p, fig, 512, 4, 8192, "fp32", transposed_a=True)
    flops_s = 2.0 * 512 * 4 * 8192 / fig.peak_for("fp32")
    roofline = max(flops_s, memory_s)
    assert total < 2 * p["fixed_s"] + 4 * roofline + 20e-6 and total < 100e-6
    eff = p["peak_fraction_fp32"] * 8192 / (8192 + p["k_half"])
    unsplit = 2.0 * fig.compute_units * 8 * 16 * 128 * 8192 / (fig.peak_for("fp32") * eff)
    assert unsplit > 10 * total  # one wave of 8192-deep tiles (16 x 128, eight per SM)
    # 64 tiles of 128 x 128 on 132 SMs: unsplit one wave of 8192-deep tiles; split in two, half as deep
    eff16 = p["peak_fraction_bf16"] * 8192 / (8192 + p["k_half"])
    one_wave = 2.0 * fig.compute_units * 128 * 128 * 8192 / (fig.peak_for("bf16") * eff16)
    split_total, split_compute, _ = gemm_time_s(p, fig, 1024, 1024, 8192, "bf16", transposed_a=True)
    assert split_compute < 0.6 * one_wave and split_total < p["fixed_s"] + one_wave
    cpu = load_profile("cpu-generic")
    cfig = device_figures(cpu)
    cp = default_parameters(cpu)["gemm"]
    # 2 tiles of 8 x 16 on many cores: one wave, unsplit
    expected = 2.0 * cfig.compute_units * 8 * 16 * 8192 / (
        cfig.peak_for("bf16") * cp["peak_fraction_bf16"] * 8192 / (8192 + cp["k_half"]))
    assert gemm_time_s(cp, cfig, 16, 16, 8192, "bf16")[1] == pytest.approx(expected)


def test_the_dot_interactions_self_product_reads_its_operand_once():
    """On a GPU Z Zᵀ reads each sample's F x D block from memory once for both operands: B (F D + F²)
    elements, where a product of two distinct operands of the same shapes streams B (2 F D + F²); a CPU
    BLAS packs both operands, so it streams the latter."""
    from planner.cost.interaction import batched_gemm_time_s
    from planner.cost.params import device_figures
    from planner.cost.registry import default_parameters

    profile = load_profile("h100-sxm-80gb")
    fig = device_figures(profile)
    params = default_parameters(profile)
    b, f, d, bw = 8192.0, 27.0, 128.0, 1e12
    once = batched_gemm_time_s(params["interaction"], params["gemm"], fig, b, f, f, d, "bf16", bw,
                               self_product=True)[2]
    twice = batched_gemm_time_s(params["interaction"], params["gemm"], fig, b, f, f, d, "bf16", bw)[2]
    assert once == pytest.approx(b * (f * d + f * f) * 2 / bw)
    assert twice == pytest.approx(b * (2 * f * d + f * f) * 2 / bw)
    cpu = load_profile("cpu-generic")
    cparams = default_parameters(cpu)
    packed = batched_gemm_time_s(cparams["interaction"], cparams["gemm"], device_figures(cpu), b, f, f, d,
                                 "bf16", bw, self_product=True)[2]
    assert packed == pytest.approx(twice)  # a CPU BLAS packs each operand into its own buffer


def test_a_gpu_kernels_own_fixed_cost_is_the_device_share_of_a_launch():
    """Lin et al. charge 10 us of host time per launch and 5 us of GPU overhead per kernel: on a GPU the
    per-kernel fixed costs default to GPU_KERNEL_SHARE of efficiency.kernel_launch_s (the host pays the
    launch on its own timeline), on a CPU, which runs the kernel itself, to the whole launch."""
    from planner.cost.registry import GPU_KERNEL_SHARE, KERNEL_FIXED_COSTS, default_parameters

    gpu = load_profile("h100-sxm-80gb")
    cpu = load_profile("cpu-generic")
    for profile, share in ((gpu, GPU_KERNEL_SHARE), (cpu, 1.0)):
        params = default_parameters(profile)
        launch = float(profile.efficiency.kernel_launch_s)
        for family, names in KERNEL_FIXED_COSTS.items():
            for name in names:
                assert params[family][name] == pytest.approx(launch * share), (profile.name, family, name)
        assert params["overhead"]["host_overhead_s"] == pytest.approx(launch)


def test_a_gpu_coalesce_is_floored_by_its_hottest_row():
    """On a GPU a coalescing update sums each distinct row's lookups serially in one warp: a Zipf(1.05)
    table gives its hottest row lookups / H(rows, 1.05) of them and costs at least that many
    coalesce_row_s; uniform ids over many rows add nothing, SGD (which does not coalesce) nothing, and a
    CPU nothing. The fit's vectorised formula gives the same."""
    from planner.cost.embedding import (
        _harmonic,
        embedding_batch,
        embedding_time_s,
        embedding_times,
        hottest_row_lookups,
    )
    from planner.cost.params import device_figures
    from planner.cost.registry import default_parameters

    rows, lookups = 10_000_000, 65536 * 20
    assert hottest_row_lookups(rows, lookups, 1.05) == pytest.approx(lookups / _harmonic(rows, 1.05))
    uniform = hottest_row_lookups(3, 65536, 0.0)
    assert 65536 / 3 < uniform < 65536 / 3 * 1.05
    gpu = load_profile("h100-sxm-80gb")
    fig = device_figures(gpu)
    p = default_parameters(gpu)["embedding"]
    skew = embedding_time_s(p, fig, rows, 128, 20, 65536, 4, "backward", "adagrad", 1.05)
    assert skew[1]["serial_s"] > 0.9 * hottest_row_lookups(rows, lookups, 1.05) * p["coalesce_row_s"] - 1e-3
    assert skew[0] > skew[1]["serial_s"] > 1e-2
    assert embedding_time_s(p, fig, rows, 128, 20, 65536, 4, "backward", "adagrad", 0.0)[1]["serial_s"] == 0
    assert embedding_time_s(p, fig, rows, 128, 20, 65536, 4, "backward", "sgd", 1.05)[1]["serial_s"] == 0
    cpu = load_profile("cpu-generic")
    cp = default_parameters(cpu)["embedding"]
    cfig = device_figures(cpu)
    cpu_parts = embedding_time_s(cp, cfig, rows, 128, 20, 65536, 4, "backward", "adagrad", 1.05)[1]
    assert cpu_parts["serial_s"] == 0
    ops = [(rows, 128, 20.0, 65536, 4, "backward", opt, s, None, 1.0, 0.0)
           for opt in ("adagrad", "sgd", "rowwise_adagrad") for s in (0.0, 1.05)]
    for profile, params, figures in ((gpu, p, fig), (cpu, cp, cfig)):
        vector = embedding_times(params, figures, embedding_batch(figures, ops))
        scalar = [embedding_time_s(params, figures, *op[:8], op[8], op[9], op[10])[0] for op in ops]
        assert np.allclose(vector, scalar, rtol=1e-9), profile.name


def test_a_slower_dtype_amortises_a_gpu_tiles_fill_over_fewer_k():
    """On a GPU k_half is of the tensor-core rate: fp32 on CUDA cores, 15 times slower on an H100,
    reaches half efficiency at a 15 times shorter inner dimension, so a 64-deep fp32 layer is not priced
    at a fifth of its peak; a CPU keeps its fitted k_half for every dtype."""
    from planner.cost.gemm import k_half_for
    from planner.cost.params import device_figures

    fig = device_figures(load_profile("h100-sxm-80gb"))
    assert k_half_for(128.0, fig, "bf16") == 128.0
    assert k_half_for(128.0, fig, "fp32") == pytest.approx(128.0 * 66.9 / 989.4)
    assert k_half_for(128.0, fig, "tf32") == pytest.approx(128.0 * 494.7 / 989.4)
    assert k_half_for(128.0, fig, "fp8") == 128.0
    cpu = device_figures(load_profile("cpu-generic"))
    assert k_half_for(100.0, cpu, "fp32") == k_half_for(100.0, cpu, "bf16") == 100.0


def test_a_gpu_sgd_update_streams_no_coalesced_gradient():
    """SGD adds the uncoalesced gradient with one index_add_ on a GPU: its backward streams the output
    gradient and the per-lookup values, not the coalesced rows and optimizer passes Adagrad makes."""
    from planner.cost.embedding import INDEX_BYTES, embedding_time_s
    from planner.cost.params import device_figures
    from planner.cost.registry import default_parameters

    gpu = load_profile("h100-sxm-80gb")
    fig = device_figures(gpu)
    p = default_parameters(gpu)["embedding"]
    parts = embedding_time_s(p, fig, 10_000_000, 128, 20, 65536, 4, "backward", "sgd")[1]
    bandwidth = fig.memory_bandwidth_bytes_per_s * p["bandwidth_fraction"]
    lookups, value = 65536 * 20, 128 * 4
    expected = (65536 * value + p["backward_value_passes"] * lookups * (value + INDEX_BYTES)) / bandwidth
    assert parts["stream_s"] == pytest.approx(expected / p.get("backward_bandwidth_ratio", 1.0))


def test_a_cpu_bmm_of_under_400_multiply_adds_per_matrix_runs_pytorchs_scalar_loop():
    """Below CPU_NAIVE_BMM_MACS multiply-adds a CPU matrix costs m n (naive_output_s + k mac) over the
    cores, the mac of a self product (both operands along k) apart from a strided one; at 400 and above,
    and on every GPU, the tiled BLAS price holds."""
    from planner.cost.interaction import batched_gemm_time_s
    from planner.cost.params import CPU_NAIVE_BMM_MACS, device_figures
    from planner.cost.registry import default_parameters

    profile = load_profile("cpu-generic")
    fig = device_figures(profile)
    params = default_parameters(profile)
    p = dict(params["interaction"], naive_output_s=1e-9, naive_mac_s=2e-10, naive_strided_mac_s=5e-10)
    g = params["gemm"]
    assert CPU_NAIVE_BMM_MACS == 400
    batch, m, n, k = 40960, 7, 7, 8  # 392 multiply-adds: 83 matrices per thread, all 112 cores busy
    loose = batch * m * n * (1e-9 + k * 5e-10) / fig.compute_units
    tight = batch * m * n * (1e-9 + k * 2e-10) / fig.compute_units
    assert batched_gemm_time_s(p, g, fig, batch, m, n, k, "fp32", 1e18)[0] == pytest.approx(loose)
    assert batched_gemm_time_s(p, g, fig, batch, m, n, k, "fp32", 1e18, self_product=True)[0] == \
        pytest.approx(tight)
    # a small batch runs on the threads ATen's grain allows: 830 matrices on 10 of the 112 cores
    assert batched_gemm_time_s(p, g, fig, 830, m, n, k, "fp32", 1e18)[0] == pytest.approx(
        830 * m * n * (1e-9 + k * 5e-10) / 10)
    # bf16 goes to oneDNN, not the loop
    assert batched_gemm_time_s(p, g, fig, batch, m, n, k, "bf16", 1e18) == batched_gemm_time_s(
        dict(p, naive_mac_s=1.0, naive_strided_mac_s=1.0), g, fig, batch, m, n, k, "bf16", 1e18)
    # 400 multiply-adds (5 x 5 over 16): the BLAS path, where the naive parameters play no part
    blas = batched_gemm_time_s(p, g, fig, batch, 5, 5, 16, "fp32", 1e18)
    assert blas == batched_gemm_time_s(dict(p, naive_mac_s=1.0, naive_strided_mac_s=1.0), g, fig, batch, 5,
                                       5, 16, "fp32", 1e18)
    gpu = load_profile("h100-sxm-80gb")
    gp = default_parameters(gpu)
    gfig = device_figures(gpu)
    small = batched_gemm_time_s(gp["interaction"], gp["gemm"], gfig, batch, m, n, k, "fp32", 1e12)
    assert small == batched_gemm_time_s(dict(gp["interaction"], naive_mac_s=1.0, naive_strided_mac_s=1.0),
                                        gp["gemm"], gfig, batch, m, n, k, "fp32", 1e12)


def test_the_dot_interactions_element_wise_data_is_served_by_the_cache_while_it_fits():
    """The triangle gather's data runs at the cache's rate while the op's tensors fit (its index work at
    one rate): with a cache 8x faster, a small batch's gather gets faster and a batch far beyond the
    cache does not; 2-byte floats stream at the low-precision rate."""
    from planner.cost.interaction import dot_interaction_time_s
    from planner.cost.params import device_figures
    from planner.cost.registry import default_parameters

    profile = load_profile("cpu-generic")
    fig = device_figures(profile)
    params = default_parameters(profile)
    p = dict(params["interaction"], cache_fraction=0.1, cache_sharpness=4.0, cache_bandwidth_ratio=1.0)
    fast = dict(p, cache_bandwidth_ratio=8.0)
    g = params["gemm"]

    def gather(q: dict, batch: int, precision: str = "fp32") -> float:
        return dot_interaction_time_s(q, g, fig, batch, 27, 64, precision, "forward")[1]["gather_s"]

    # the data part (8 of the 24 bytes-equivalent per pair with the default index work) 8x faster
    assert gather(fast, 256) == pytest.approx(gather(p, 256) * (8 / 8 + 16) / 24, rel=1e-3)
    no_index = dict(p, gather_bytes_per_element=1e-6)
    assert gather(dict(no_index, cache_bandwidth_ratio=8.0), 256) == pytest.approx(gather(no_index, 256) / 8,
                                                                                   rel=1e-3)
    assert gather(fast, 1_000_000) == pytest.approx(gather(p, 1_000_000), rel=1e-3)
    slow = dict(no_index, low_precision_rate=0.5)  # the rate slows the data, not the index work
    assert gather(slow, 256, "bf16") == pytest.approx(2.0 * gather(no_index, 256, "bf16"), rel=1e-3)
    assert gather(slow, 256) == gather(no_index, 256)
    assert gather(dict(p, gather_bytes_per_element=1e3, low_precision_rate=0.5), 256, "bf16") < \
        1.05 * gather(dict(p, gather_bytes_per_element=1e3), 256, "bf16")


def test_the_step_context_competes_with_a_dense_ops_operands_for_the_cache():
    """An op priced with context bytes reads the cache curve at its own bytes plus them: none is the
    benchmark's price, a context that still fits changes little, one far beyond the cache prices the op
    through memory (never faster); host transfers and collectives take no context."""
    model = build_cost_model(load_profile("cpu-generic"))
    for op in (GemmOp(2048, 256, 512, "fp32"), MemoryOp("elementwise", 3e6),
               InteractionOp(2048, 14, 32, "fp32", "forward"), MemoryOp("optimizer", 4e6)):
        alone = model.predict(op).time_s
        crowded = model.predict(type(op)(**{**op.__dict__, "context_bytes": 1e12})).time_s
        assert crowded > alone
        assert model.predict(type(op)(**{**op.__dict__, "context_bytes": 0.0})).time_s == alone


def test_the_step_gives_its_dense_ops_the_ranks_other_data_as_context(monkeypatch):
    """build_program hands every dense op of a step the rank's dense working bytes plus the distinct
    embedding rows its tables read (one forward per table), and no context to host transfers."""
    from planner import memory
    from planner.cost import registry
    from planner.sim.engine import simulate
    from planner.workload import load_workload

    w = load_workload("tiny")
    seen: list = []
    rows_read: list = []
    real_predict = registry.AnalyticCostModel.predict
    real_rows = registry.AnalyticCostModel.embedding_step_bytes

    def spy(self, op):
        seen.append(op)
        return real_predict(self, op)

    def spy_rows(self, ops):
        rows_read.append((len(ops), real_rows(self, ops)))
        return rows_read[-1][1]

    monkeypatch.setattr(registry.AnalyticCostModel, "predict", spy)
    monkeypatch.setattr(registry.AnalyticCostModel, "embedding_step_bytes", spy_rows)
    simulate(w, load_profile("cpu-generic"), 1, steps=2, seed=0)
    assert rows_read and all(n == sum(t.count for t in w.model.tables) for n, _ in rows_read)
    assert rows_read[0][1] > 0
    expected = memory.dense_working_bytes(w, 1, w.training.batch_size) + rows_read[0][1]
    dense = [op for op in seen if isinstance(op, (GemmOp, InteractionOp))
             or (isinstance(op, MemoryOp) and op.kind not in ("h2d", "d2h"))]
    in_step = [op for op in dense if op.context_bytes > 0]
    assert len(in_step) > 20 and all(op.context_bytes == pytest.approx(expected) for op in in_step)
    assert all(op.context_bytes == 0.0 for op in seen if isinstance(op, MemoryOp) and op.kind == "h2d")


def test_an_embedding_forward_pays_its_bag_overhead_once_per_bag():
    """bag_overhead_bytes is paid once per bag of the forward, whatever the pooling, and not by the
    backward."""
    from planner.cost.embedding import embedding_time_s
    from planner.cost.params import device_figures
    from planner.cost.registry import default_parameters

    profile = load_profile("cpu-generic")
    fig = device_figures(profile)
    p = default_parameters(profile)["embedding"]
    bw = fig.memory_bandwidth_bytes_per_s * p["bandwidth_fraction"]

    def t(q: dict, pooling: float, phase: str = "forward") -> float:
        return embedding_time_s(q, fig, 100_000, 32, pooling, 4096, 4, phase, "sgd")[0]

    bags = dict(p, bag_overhead_bytes=p["bag_overhead_bytes"] + 100.0)
    for pooling in (1.0, 50.0):
        assert t(bags, pooling) - t(p, pooling) == pytest.approx(4096 * 100.0 / bw)
        assert t(bags, pooling, "backward") == t(p, pooling, "backward")
