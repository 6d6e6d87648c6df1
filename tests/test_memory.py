"""Memory accounting: complete terms, fp32 optimizer state, MemoryUse algebra."""

from __future__ import annotations

import pytest
from test_sim_fakes import micro_workload

from planner import memory
from planner.hardware import load_profile
from planner.memory import MemoryUse


def test_memory_use_algebra_and_fits_in():
    a = MemoryUse(1.0, 2.0, {"x": 1.0}, {"y": 2.0})
    b = MemoryUse(3.0, 0.0, {"x": 1.0, "z": 2.0}, {})
    c = a + b
    assert (c.hbm_bytes, c.host_bytes) == (4.0, 2.0)
    assert c.hbm_parts == {"x": 2.0, "z": 2.0}
    assert c.fits_in(4.0, 2.0) and not c.fits_in(3.9, 2.0) and not c.fits_in(4.0, 1.9)
    assert c.total_bytes == 6.0


def test_optimizer_state_is_fp32_whatever_the_table_dtype():
    # TorchRec #4142 sized bf16 tables' fp32 momentum at half; we never do.
    assert memory.optimizer_state_bytes("adagrad", 10, 8) == 10 * 8 * 4
    assert memory.optimizer_state_bytes("adam", 10, 8) == 2 * 10 * 8 * 4
    assert memory.optimizer_state_bytes("rowwise_adagrad", 10, 8) == 10 * 4
    assert memory.optimizer_state_bytes("sgd", 10, 8) == 0


def test_base_memory_counts_dense_state_activations_and_buffers():
    w = micro_workload(batch=1024)
    gpu = load_profile("h100-sxm-80gb")
    one = memory.base_memory(w, gpu, 1)
    two = memory.base_memory(w, gpu, 2)
    params = memory.dense_figures(w).dense_params
    assert one.hbm_parts["dense_params"] == 4 * params
    assert one.hbm_parts["dense_grads"] == 4 * params
    assert "allreduce_buckets" not in one.hbm_parts and "allreduce_buckets" in two.hbm_parts
    assert one.hbm_parts["runtime_context"] > 0
    assert one.hbm_parts["activations"] == pytest.approx(2 * two.hbm_parts["activations"])
    cpu = memory.base_memory(w, load_profile("cpu-generic"), 1)
    assert "runtime_context" not in cpu.hbm_parts


def test_autocast_keeps_low_precision_weight_copies():
    fp32 = memory.dense_state_bytes(micro_workload(precision="fp32"), 1)
    bf16 = memory.dense_state_bytes(micro_workload(precision="bf16"), 1)
    assert "autocast_weight_copies" not in fp32 and bf16["autocast_weight_copies"] > 0


def test_dense_working_bytes_add_the_dense_state_and_the_activations():
    from planner.memory import activation_bytes, dense_state_bytes, dense_working_bytes
    from planner.workload import load_workload

    w = load_workload("criteo-kaggle-dlrm")
    transient = activation_bytes(w, 8)
    # the batch being trained on, not the one prefetched beside it
    total = (sum(dense_state_bytes(w, 8).values()) + sum(transient.values())
             - transient["input_batch"] * (1 - 1 / memory.INPUT_BUFFERS))
    assert dense_working_bytes(w, 8) == pytest.approx(total) and total > 0
    # a larger batch per device touches more activations
    assert dense_working_bytes(w, 1) > dense_working_bytes(w, 8)
