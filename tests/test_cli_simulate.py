"""``recplan simulate``: the JSON contract, exit codes, determinism, the human summary."""

from __future__ import annotations

import json
import math

KEYS = {"step_time_s", "step_time_p99_s", "samples_per_s", "peak_memory_bytes", "fits_in_memory",
        "breakdown_s", "devices"}


def _finite(value):
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, list):
        return all(_finite(v) for v in value)
    return True


def test_json_has_the_contract_keys(cli):
    r = cli("simulate", "dlrm-dcnv2-multihot", "--hardware", "h100-sxm-80gb", "--devices", "64", "--json")
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    assert set(doc) >= KEYS
    assert doc["devices"] == 64 and doc["fits_in_memory"] is True
    assert doc["step_time_p99_s"] >= doc["step_time_s"] > 0
    assert doc["samples_per_s"] == doc["batch_size"] / doc["step_time_s"]
    assert abs(sum(doc["breakdown_s"].values()) - doc["step_time_s"]) < 0.2 * doc["step_time_s"]
    assert doc["binding"] in ("compute", "memory", "communication", "host")
    assert _finite(doc)


def test_same_seed_same_bytes(cli):
    args = ("simulate", "tiny", "--hardware", "h100-sxm-80gb", "--devices", "4", "--steps", "5", "--json")
    assert cli(*args).out == cli(*args).out


def test_infeasible_job_prints_the_result_and_exits_1(cli):
    r = cli("simulate", "dlrm-dcnv2-multihot", "--hardware", "h100-sxm-80gb", "--devices", "1", "--json")
    assert r.code == 1
    doc = json.loads(r.out)
    assert doc["fits_in_memory"] is False and doc["infeasible_reason"]
    assert len(r.err.strip().splitlines()) == 1 and "does not fit" in r.err


def test_bad_input_exits_2_with_one_line(cli):
    for args in (("simulate", "tiny", "--hardware", "no-such-profile"),
                 ("simulate", "no-such-workload", "--hardware", "h100-sxm-80gb"),
                 ("simulate", "tiny", "--hardware", "h100-sxm-80gb", "--devices", "0"),
                 ("simulate", "tiny", "--hardware", "h100-sxm-80gb", "--devices", "100000000"),
                 ("simulate", "tiny", "--hardware", "h100-sxm-80gb", "--sharding", "diagonal"),
                 ("simulate", "tiny", "--hardware", "h100-sxm-80gb", "--steps", "0")):
        r = cli(*args)
        assert r.code == 2, args
        assert r.out == "" and len(r.err.strip().splitlines()) == 1 and "Traceback" not in r.err


def test_human_summary(cli):
    r = cli("simulate", "tiny", "--hardware", "h100-sxm-80gb", "--devices", "8", "--sharding", "table")
    assert r.code == 0
    assert "critical path" in r.out and "samples/s" in r.out and "fits in memory" in r.out


def test_every_sharding_kind_runs(cli):
    for kind in ("auto", "table", "row", "column", "data"):
        r = cli("simulate", "tiny", "--hardware", "h100-sxm-80gb", "--devices", "16", "--sharding", kind,
                "--json")
        assert r.code == 0, (kind, r.err)


def test_a_stand_in_peak_and_idle_devices_are_warned_about(cli):
    """gaudi3 lists no fp32 peak, so an fp32 job is priced at its bf16 peak: stderr says so, once, and
    that it is optimistic; 300 devices for tiny's global batch of 256 leave 44 idle: stderr says so. A
    job on a profile with its precision listed and fewer devices than samples gets no warning; the JSON
    on stdout is unchanged by either."""
    r = cli("simulate", "tiny", "--hardware", "gaudi3", "--devices", "300", "--json")
    assert r.code == 0, r.err
    json.loads(r.out)
    lines = [line for line in r.err.splitlines() if line.startswith("warning:")]
    assert len(lines) == 2, r.err
    assert "no fp32 peak" in lines[0] and "bf16 peak" in lines[0] and "optimistic" in lines[0]
    assert lines[1].startswith("warning: 44 of the 300 devices") and "idle" in lines[1]
    quiet = cli("simulate", "tiny", "--hardware", "h100-sxm-80gb", "--devices", "8", "--json")
    assert quiet.code == 0 and "warning" not in quiet.err


def test_validate_blames_the_option_that_is_out_of_range(cli):
    for option, value in (("--steps", "0"), ("--warmup", "-1")):
        r = cli("validate", "tiny", "--device", "cpu", "--hardware", "cpu-generic", option, value)
        assert r.code == 2 and r.err.strip().startswith(f"recplan: error: {option}: must be at least"), r.err


def test_a_table_that_fits_nowhere_still_counts_in_the_peak(cli, tmp_path):
    """A 10^13-row table fits in no device nor host memory: the job does not fit (exit 1), and the peak
    per device is at least that table's smallest shard (the device with the least in use is charged
    it, as ``unplaced_shard``), never the job without it."""
    path = tmp_path / "big.yaml"
    path.write_text(
        "name: big\n"
        "model: {dense_features: 13, bottom_mlp: [64, 16], embedding_dim: 16, tables: [{rows: 1000, "
        "pooling: 2}, {rows: 1e13, pooling: 1}], interaction: dot, top_mlp: [32, 1]}\n"
        "training: {batch_size: 256, precision: fp32, optimizer: sgd, access: uniform, samples: 1e6}\n")
    r = cli("simulate", path, "--hardware", "h100-sxm-80gb", "--devices", "8", "--json")
    assert r.code == 1 and "fits in no device's memory" in r.err
    doc = json.loads(r.out)
    assert doc["fits_in_memory"] is False
    unplaced = doc["memory"]["hbm_parts"]["unplaced_shard"]
    assert unplaced >= 1e13 * 8 * 4 / 8  # at least one eighth of the table's fp32 rows at its narrowest
    assert doc["peak_memory_bytes"] >= unplaced + doc["memory"]["hbm_parts"]["runtime_context"]
    assert doc["total_memory_bytes"] >= doc["peak_memory_bytes"]
