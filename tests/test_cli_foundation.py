"""The profiles and workloads commands, and bad input: one line, exit 2, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from planner import __version__
from planner.hardware import preset_names as profile_names

GOOD_WORKLOAD = """\
name: w
model:
  dense_features: 4
  bottom_mlp: [16, 8]
  embedding_dim: 8
  tables:
    - {rows: 100, pooling: 2}
  interaction: dot
  top_mlp: [16, 1]
training:
  batch_size: 64
  precision: fp32
  optimizer: sgd
  access: uniform
  samples: 1000
"""


def _assert_one_line_error(result, *needles: str) -> None:
    assert result.code == 2, (result.code, result.err)
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 1, result.err
    assert "Traceback" not in result.err
    assert lines[0].startswith("recplan: error: ")
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def test_version(cli):
    r = cli("--version")
    assert r.code == 0 and __version__ in r.out


def test_profiles_list_json_has_every_shipped_profile_with_sources(cli):
    r = cli("profiles", "list", "--json")
    assert r.code == 0
    rows = json.loads(r.out)
    assert [row["name"] for row in rows] == profile_names()
    for row in rows:
        assert row["source"] and row["as_of"]
        assert row["sources"]["hbm_bytes"]["source"]


def test_profiles_list_table(cli):
    r = cli("profiles", "list")
    assert r.code == 0 and "h100-sxm-80gb" in r.out


def test_profiles_list_marks_a_bf16_peak_that_is_another_dtypes(cli):
    """A V100 lists no bf16 peak: its bf16 column is its fp16 peak, said so in the JSON (with that
    figure's source) and starred in the table, whose caption names the stand-in dtypes."""
    rows = {row["name"]: row for row in json.loads(cli("profiles", "list", "--json").out)}
    assert rows["v100-sxm2-32gb"]["bf16_peak_dtype"] == "fp16"
    assert rows["v100-sxm2-32gb"]["bf16_peak_flops"] == 125e12
    assert rows["v100-sxm2-32gb"]["sources"]["bf16_peak_flops"]["source"]
    assert rows["h100-sxm-80gb"]["bf16_peak_dtype"] == "bf16"
    table = cli("profiles", "list").out
    assert "125 TFLOP/s*" in table and "no bf16 peak listed" in table and "fp16" in table


def test_profiles_show_json(cli):
    r = cli("profiles", "show", "h100-sxm-80gb", "--json")
    assert r.code == 0
    doc = json.loads(r.out)
    assert doc["device"]["hbm_bytes"] == 80e9
    assert doc["figure_status"]["device.l2_bytes"] == "unverified"


def test_derive_then_validate(cli, tmp_path):
    out = tmp_path / "fast.yaml"
    r = cli(
        "profiles",
        "derive",
        "h100-sxm-80gb",
        "--set",
        "device.hbm_bandwidth_bytes_per_s=x2",
        "--name",
        "h100-2xbw",
        "--out",
        out,
    )
    assert r.code == 0, r.err
    r = cli("profiles", "validate", out)
    assert r.code == 0, r.err
    shown = json.loads(cli("profiles", "show", out, "--json").out)
    assert shown["device"]["hbm_bandwidth_bytes_per_s"] == pytest.approx(6.7e12)
    assert shown["derived_from"]["base"] == "h100-sxm-80gb"


def test_workloads_show_json_dcnv2(cli):
    doc = json.loads(cli("workloads", "show", "dlrm-dcnv2-multihot", "--json").out)
    assert doc["embedding_params"] == 26_135_627_264
    assert doc["lookups_per_sample"] == 214
    for key in ("dense_params", "embedding_bytes", "flops_per_sample"):
        assert doc[key] > 0


def test_workloads_list_and_show_text(cli):
    assert "tiny" in cli("workloads", "list").out
    r = cli("workloads", "show", "criteo-kaggle-dlrm")
    assert r.code == 0 and "embedding_params" in r.out


def test_workloads_validate_good(cli, tmp_path):
    p = tmp_path / "w.yaml"
    p.write_text(GOOD_WORKLOAD)
    assert cli("workloads", "validate", p).code == 0


# --------------------------------------------------------------------------------------------- bad input
BAD_WORKLOADS = {
    "malformed": ("name: [unclosed\n", "malformed YAML"),
    "tabs": ("name: w\n\tmodel: 1\n", "malformed YAML"),
    "duplicate-key": (GOOD_WORKLOAD + "name: again\n", "duplicate key"),
    "empty": ("", "expected a mapping"),
    "list-top": ("- 1\n- 2\n", "expected a mapping"),
    "unknown-top-key": (GOOD_WORKLOAD + "colour: red\n", "colour"),
    "unknown-model-key": (
        GOOD_WORKLOAD.replace("  dense_features: 4", "  dense_features: 4\n  heads: 2"),
        "model.heads",
    ),
    "string-size": (GOOD_WORKLOAD.replace("rows: 100", "rows: lots"), "model.tables[0].rows"),
    "negative-rows": (GOOD_WORKLOAD.replace("rows: 100", "rows: -100"), "model.tables[0].rows"),
    "zero-batch": (GOOD_WORKLOAD.replace("batch_size: 64", "batch_size: 0"), "training.batch_size"),
    "nan-samples": (GOOD_WORKLOAD.replace("samples: 1000", "samples: .nan"), "training.samples"),
    "inf-samples": (GOOD_WORKLOAD.replace("samples: 1000", "samples: .inf"), "training.samples"),
    "absurd-rows": (
        GOOD_WORKLOAD.replace("rows: 100", "rows: 100000000000000000000"),
        "model.tables[0].rows",
    ),
    "bottom-mismatch": (GOOD_WORKLOAD.replace("[16, 8]", "[16, 4]"), "model.bottom_mlp"),
    "top-not-logit": (GOOD_WORKLOAD.replace("top_mlp: [16, 1]", "top_mlp: [16, 3]"), "model.top_mlp"),
    "bad-precision": (GOOD_WORKLOAD.replace("precision: fp32", "precision: fp64"), "training.precision"),
    "bad-optimizer": (GOOD_WORKLOAD.replace("optimizer: sgd", "optimizer: lion"), "training.optimizer"),
    "bad-access": (GOOD_WORKLOAD.replace("access: uniform", "access: normal"), "training.access"),
    "bad-zipf": (GOOD_WORKLOAD.replace("access: uniform", "access: zipf:abc"), "training.access"),
    "bad-interaction": (
        GOOD_WORKLOAD.replace("interaction: dot", "interaction: attention"),
        "model.interaction",
    ),
    "missing-model": ("name: w\ntraining: {}\n", "model"),
    "tables-not-list": (
        GOOD_WORKLOAD.replace("  tables:\n    - {rows: 100, pooling: 2}", "  tables: 5"),
        "model.tables",
    ),
    "empty-mlp": (GOOD_WORKLOAD.replace("top_mlp: [16, 1]", "top_mlp: []"), "model.top_mlp"),
    "bool-dim": (GOOD_WORKLOAD.replace("embedding_dim: 8", "embedding_dim: [8]"), "model.embedding_dim"),
}


@pytest.mark.parametrize("case", sorted(BAD_WORKLOADS))
def test_bad_workload_files(cli, tmp_path, case):
    text, needle = BAD_WORKLOADS[case]
    p = tmp_path / f"{case}.yaml"
    p.write_text(text)
    for cmd in (("workloads", "validate", p), ("workloads", "show", p, "--json")):
        r = cli(*cmd)
        _assert_one_line_error(r, str(p), needle)
        assert r.out == ""


def _profile_text() -> str:
    from importlib import resources

    return resources.files("hardware_profiles").joinpath("h100-sxm-80gb.yaml").read_text()


BAD_PROFILES = {
    "negative-hbm": (lambda t: t.replace("hbm_bytes: 80.0e9", "hbm_bytes: -80.0e9"), "device.hbm_bytes"),
    "nan-bw": (lambda t: t.replace("latency_s: 5.0e-6", "latency_s: .nan"), "network.latency_s"),
    "unknown-key": (
        lambda t: t.replace("  sm_count: 132", "  sm_count: 132\n  tensor_cores: 528"),
        "device.tensor_cores",
    ),
    "no-source": (
        lambda t: (
            "\n".join(line for line in t.splitlines() if not line.startswith("  device.power_w:")) + "\n"
        ),
        "device.power_w",
    ),
    "bad-kind": (lambda t: t.replace("kind: gpu", "kind: fpga"), "kind"),
    "malformed": (lambda t: t + "device: [\n", "malformed YAML"),
    "fraction-above-one": (
        lambda t: t.replace("hbm_fraction: 0.87", "hbm_fraction: 7"),
        "efficiency.hbm_fraction",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_PROFILES))
def test_bad_profile_files(cli, tmp_path, case):
    mutate, needle = BAD_PROFILES[case]
    p = tmp_path / f"{case}.yaml"
    p.write_text(mutate(_profile_text()))
    _assert_one_line_error(cli("profiles", "validate", p), str(p), needle)


BAD_COMMANDS = {
    "unknown-profile": (("profiles", "show", "h900"), "unknown hardware profile"),
    "unknown-workload": (("workloads", "show", "huge"), "unknown workload preset"),
    "missing-file": (("workloads", "validate", "/nonexistent/w.yaml"), "file not found"),
    "missing-profile-file": (("profiles", "validate", "/nonexistent/p.yaml"), "file not found"),
    "unknown-command": (("frobnicate",), "No such command"),
    "unknown-option": (("profiles", "list", "--colour"), "No such option"),
    "derive-no-equals": (
        (
            "profiles",
            "derive",
            "h100-sxm-80gb",
            "--set",
            "device.hbm_bytes",
            "--name",
            "x",
            "--out",
            "/tmp/recplan-never.yaml",
        ),
        "key=value",
    ),
    "derive-unknown-field": (
        (
            "profiles",
            "derive",
            "h100-sxm-80gb",
            "--set",
            "device.warp=2",
            "--name",
            "x",
            "--out",
            "/tmp/recplan-never.yaml",
        ),
        "device.warp",
    ),
    "derive-missing-name": (
        (
            "profiles",
            "derive",
            "h100-sxm-80gb",
            "--set",
            "device.hbm_bytes=1e9",
            "--out",
            "/tmp/recplan-never.yaml",
        ),
        "--name",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_COMMANDS))
def test_bad_commands(cli, case):
    args, needle = BAD_COMMANDS[case]
    _assert_one_line_error(cli(*args), needle)
    assert not Path("/tmp/recplan-never.yaml").exists()


def test_directory_and_binary_files(cli, tmp_path):
    _assert_one_line_error(cli("workloads", "validate", tmp_path), "file")
    binary = tmp_path / "b.yaml"
    binary.write_bytes(b"\xff\xfe\x00\x01garbage")
    _assert_one_line_error(cli("workloads", "validate", binary), "UTF-8")


def test_failed_derive_leaves_existing_file_untouched(cli, tmp_path):
    out = tmp_path / "keep.yaml"
    out.write_text("precious\n")
    r = cli(
        "profiles", "derive", "h100-sxm-80gb", "--set", "device.hbm_bytes=-1", "--name", "x", "--out", out
    )
    assert r.code == 2
    assert out.read_text() == "precious\n"
