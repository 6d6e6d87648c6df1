"""Importing nccl-tests logs into collective records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kernels.nccl_tests import NcclLogError, parse_log, records_from_log
from kernels.records import validate_document

DATA = Path(__file__).parent / "data"


def _log(name: str) -> str:
    return (DATA / f"nccl_tests_{name}_perf.log").read_text()


def test_all_reduce_log_parses_world_size_device_and_rows():
    parsed = parse_log(_log("all_reduce"))
    assert parsed["kernel"] == "all_reduce" and parsed["world_size"] == 8 and parsed["ranks_per_node"] == 8
    assert parsed["device"] == "NVIDIA H100 80GB HBM3" and parsed["iters"] == 20
    assert parsed["rows"][0]["size"] == 8 and parsed["avg_busbw_gb_s"] == pytest.approx(112.2375)
    records, warnings = records_from_log(_log("all_reduce"), "nccl_tests_all_reduce_perf.log")
    assert not warnings and len(records) == len(parsed["rows"])
    last = records[-1]
    assert last["params"] == {"bytes": 268435456, "world_size": 8, "ranks_per_node": 8, "backend": "nccl"}
    assert last["timing"]["median_s"] == pytest.approx(1033.65e-6)
    assert last["extra"]["busbw_bytes_per_s"] == pytest.approx(454.47e9)
    assert last["extra"]["in_place_time_s"] == pytest.approx(1032.89e-6)


def test_all_gather_bytes_are_per_rank_input():
    records, _ = records_from_log(_log("all_gather"), "x.log")
    assert records[0]["kernel"] == "all_gather"
    assert records[-1]["params"]["bytes"] == 268435456 // 8
    assert records[-1]["extra"]["nccl_tests_size_bytes"] == 268435456


def test_alltoall_across_two_nodes_with_mpi_prefixes():
    parsed = parse_log(_log("alltoall"))
    assert parsed["kernel"] == "all_to_all" and parsed["world_size"] == 16 and parsed["ranks_per_node"] == 8
    records, _ = records_from_log(_log("alltoall"))
    assert all(r["params"]["world_size"] == 16 for r in records)


def test_reduce_scatter_and_kernel_from_file_name():
    text = "\n".join(line for line in _log("reduce_scatter").splitlines() if "Collective test" not in line)
    with pytest.raises(NcclLogError):
        parse_log(text, "log.txt")
    assert parse_log(text, "runs/reduce_scatter_perf.out")["kernel"] == "reduce_scatter"


def test_not_a_log():
    with pytest.raises(NcclLogError, match="no nccl-tests result table"):
        parse_log("hello\nworld\n")


def test_cli_import(cli, tmp_path):
    out = tmp_path / "coll.json"
    logs = sorted(DATA.glob("nccl_tests_*_perf.log"))
    result = cli("bench", "import-nccl-tests", *logs, "--out", out)
    assert result.code == 0, result.err
    doc = json.loads(out.read_text())
    validate_document(doc)
    kernels = {r["kernel"] for r in doc["records"]}
    assert kernels == {"all_reduce", "all_gather", "all_to_all", "reduce_scatter"}
    assert doc["env"]["device_name"] == "NVIDIA H100 80GB HBM3"


def test_cli_import_bad_log_is_one_line(cli, tmp_path):
    bad = tmp_path / "bad.log"
    bad.write_text("not nccl-tests\n")
    result = cli("bench", "import-nccl-tests", bad, "--out", tmp_path / "o.json")
    assert result.code == 2
    assert result.err.count("\n") == 1 and "bad.log" in result.err and "Traceback" not in result.err


def _with_time(time: str, size: str = "1024") -> tuple[str, int]:
    """The all-reduce log with the out-of-place time of one row replaced; returns (text, its line number)."""
    lines = _log("all_reduce").splitlines()
    number = next(n for n, line in enumerate(lines, 1) if line.split()[:1] == [size])
    fields = lines[number - 1].split()
    fields[5] = time
    lines[number - 1] = "   ".join(fields)
    return "\n".join(lines) + "\n", number


@pytest.mark.parametrize("time", ["-11.2", "nan", "0.00", "abc", "inf"])
def test_parse_log_refuses_a_bad_time_naming_line_and_column(time):
    text, number = _with_time(time)
    with pytest.raises(NcclLogError) as exc:
        parse_log(text, "ar.log")
    message = str(exc.value)
    assert message.startswith(f"ar.log: line {number} (size 1024): out-of-place time (column 6, us) ")
    assert repr(time) in message and "no nccl-tests result table" not in message
    expected = "is not a number" if time == "abc" else "must be a positive finite number"
    assert expected in message


def test_parse_log_refuses_a_non_numeric_count():
    lines = _log("all_reduce").splitlines()
    number = next(n for n, line in enumerate(lines, 1) if line.split()[:1] == ["2048"])
    lines[number - 1] = lines[number - 1].replace(" 512 ", " x12 ", 1)
    with pytest.raises(NcclLogError, match=rf"line {number} \(size 2048\): count \(column 2\) is not a"):
        parse_log("\n".join(lines), "ar.log")


@pytest.mark.parametrize("time", ["-11.2", "nan", "0.00", "abc"])
def test_cli_import_bad_time_is_one_line_exit_2_and_writes_nothing(cli, tmp_path, time):
    text, number = _with_time(time)
    log = tmp_path / "all_reduce_perf.log"
    log.write_text(text)
    fresh = tmp_path / "new.json"
    result = cli("bench", "import-nccl-tests", log, "--out", fresh)
    assert result.code == 2 and result.out == ""
    assert result.err.count("\n") == 1 and "Traceback" not in result.err
    line = " ".join(result.err.split())
    assert f"{log}: line {number} (size 1024): out-of-place time (column 6, us)" in line
    assert repr(time) in line
    assert not fresh.exists() and not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    existing = tmp_path / "old.json"
    existing.write_text('{"keep": true}\n')
    assert cli("bench", "import-nccl-tests", log, "--out", existing).code == 2
    assert existing.read_text() == '{"keep": true}\n'


def test_cli_import_then_calibrate_agree_on_times(cli, tmp_path):
    """Every time the importer writes is one ``calibrate`` accepts (positive seconds)."""
    out = tmp_path / "coll.json"
    assert cli("bench", "import-nccl-tests", DATA / "nccl_tests_all_reduce_perf.log", "--out", out).code == 0
    timings = [r["timing"] for r in json.loads(out.read_text())["records"]]
    assert timings and all(t[k] > 0 for t in timings for k in ("median_s", "p10_s", "p90_s"))
