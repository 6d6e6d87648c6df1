"""Workload loading, validation and derived figures."""

from __future__ import annotations

import pytest

from planner.errors import InputError
from planner.workload import derive, load_workload, preset_names, workload_from_mapping


def _tiny_mapping(**model_overrides):
    model = {
        "dense_features": 13,
        "bottom_mlp": [64, 16],
        "embedding_dim": 16,
        "tables": [{"rows": 1000, "pooling": 2}, {"rows": 10, "count": 3}],
        "interaction": "dot",
        "top_mlp": [32, 1],
    }
    model.update(model_overrides)
    return {
        "name": "t",
        "model": model,
        "training": {"batch_size": 128, "precision": "fp32", "optimizer": "sgd", "access": "uniform",
                     "samples": 1000},
    }


def test_presets_are_the_four_documented():
    assert preset_names() == ["criteo-kaggle-dlrm", "criteo-terabyte-dlrm", "dlrm-dcnv2-multihot", "tiny"]


def test_dcnv2_multihot_reference_figures():
    d = derive(load_workload("dlrm-dcnv2-multihot"))
    assert d.embedding_params == 26_135_627_264
    assert d.lookups_per_sample == 214
    assert d.tables == 26


def test_dcnv2_flops_hand_calculation():
    # Hand calculation (multiply-add = 2 FLOPs, backward = 2 x forward):
    # bottom 13-512-256-128: 13*512 + 512*256 + 256*128 = 6656 + 131072 + 32768 = 170,496 MACs
    # interaction input width = 128 * (26 + 1) = 3456; 3 low-rank (512) cross layers: 3 * 2 * 3456 * 512
    #   = 10,616,832 MACs
    # top 3456-1024-1024-512-256-1: 3,538,944 + 1,048,576 + 524,288 + 131,072 + 256 = 5,243,136 MACs
    macs = 170_496 + 10_616_832 + 5_243_136
    d = derive(load_workload("dlrm-dcnv2-multihot"))
    assert d.interaction_width == 3456
    assert d.flops_per_sample_forward == 2 * macs
    assert d.flops_per_sample == 6 * macs == 96_182_784


def test_kaggle_dot_interaction_width_and_params():
    d = derive(load_workload("criteo-kaggle-dlrm"))
    # 27 features -> 27*26/2 = 351 pairwise dots + 16 dense = 367 inputs to the top MLP
    assert d.interaction_width == 367
    assert d.top_mlp_params == 367 * 512 + 512 + 512 * 256 + 256 + 256 + 1
    assert d.embedding_params == 33_762_577 * 16


def test_counts_repeat_tables_and_pooling_sums():
    w = workload_from_mapping(_tiny_mapping())
    d = derive(w)
    assert d.tables == 4
    assert d.lookups_per_sample == 2 + 3 * 1
    assert d.embedding_params == (1000 + 30) * 16
    assert d.embedding_bytes == d.embedding_params * 4


def test_access_string_forms():
    m = _tiny_mapping()
    m["training"]["access"] = "zipf:1.2"
    w = workload_from_mapping(m)
    assert w.training.access.kind == "zipf" and w.training.access.exponent == pytest.approx(1.2)


@pytest.mark.parametrize("access", ["zipf:-1", "zipf:0", "zipf:nan", "zipf:inf"])
def test_a_zipf_exponent_that_is_not_positive_gets_one_message(access):
    m = _tiny_mapping()
    m["training"]["access"] = access
    with pytest.raises(InputError, match="the Zipf exponent must be a positive number") as info:
        workload_from_mapping(m, "w.yaml")
    assert info.value.field == "training.access"


def test_dcn_mapping_form():
    w = workload_from_mapping(_tiny_mapping(interaction={"dcn": {"cross_layers": 2, "low_rank": 8}}))
    assert w.model.interaction.kind == "dcn"
    d = derive(w)
    width = 16 * 5
    assert d.interaction_params == 2 * (2 * width * 8 + width)


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda m: m["model"].update(bottom_mlp=[64, 8]), "model.bottom_mlp"),
        (lambda m: m["model"].update(top_mlp=[32, 2]), "model.top_mlp"),
        (lambda m: m["model"].update(embedding_dim=-4), "model.embedding_dim"),
        (lambda m: m["model"]["tables"][0].update(rows=0), "model.tables[0].rows"),
        (lambda m: m["model"]["tables"][1].update(colour="red"), "model.tables[1].colour"),
        (lambda m: m["training"].update(precision="fp64"), "training.precision"),
        (lambda m: m["training"].update(optimizer="lamb"), "training.optimizer"),
        (lambda m: m["training"].update(access="pareto"), "training.access"),
        (lambda m: m["training"].update(batch_size=float("nan")), "training.batch_size"),
        (lambda m: m["training"].update(samples=float("inf")), "training.samples"),
        (lambda m: m.update(extra=1), "extra"),
        (lambda m: m["model"].update(tables=[]), "model.tables"),
        (lambda m: m["model"].update(interaction="dcn"), "model.interaction"),
        (lambda m: m["training"].pop("batch_size"), "training.batch_size"),
    ],
)
def test_bad_workloads_name_the_field(mutate, field):
    m = _tiny_mapping()
    mutate(m)
    with pytest.raises(InputError) as info:
        workload_from_mapping(m, "w.yaml")
    assert info.value.file == "w.yaml"
    assert info.value.field == field
    assert "\n" not in str(info.value)


def test_unknown_preset():
    with pytest.raises(InputError, match="unknown workload preset"):
        load_workload("no-such-workload")
