"""``recplan bench``: bad input, budget and resume, interruption, and torch staying out of the planner."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kernels.records import validate_document
from kernels.timing import CPU_PASSES

ROOT = Path(__file__).resolve().parents[1]


def _one_line(result):
    assert result.code == 2
    assert result.err.count("\n") == 1 and "Traceback" not in result.err
    return result.err


def test_planner_imports_without_torch():
    code = (
        "import sys; sys.modules['torch'] = None; import planner, planner.cli.main, kernels, kernels.records"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--device", "tpu"], "--device"),
        (["--device", "cpu", "--suite", "gemm,warp"], "--suite"),
        (["--device", "cpu"], "--out"),
        (["--device", "cpu", "--world-sizes", "1"], "--world-sizes"),
    ],
)
def test_bad_arguments_are_one_line(cli, tmp_path, args, needle):
    if "--out" not in args and needle != "--out":
        args = [*args, "--out", str(tmp_path / "m.json")]
    err = _one_line(cli("bench", *args))
    assert needle in err


def test_corrupt_resume_file_is_one_line(cli, tmp_path):
    out = tmp_path / "m.json"
    out.write_text("{not json")
    assert "m.json" in _one_line(
        cli("bench", "--device", "cpu", "--suite", "memory", "--resume", "--out", out)
    )
    out.write_text(json.dumps({"schema_version": 1, "env": {}, "args": {}, "records": []}))
    assert "env.device_name" in _one_line(
        cli("bench", "--device", "cpu", "--suite", "memory", "--resume", "--out", out)
    )


#: A real, small selection: the GEMM, memory and interaction cases the ``tiny`` workload runs (13 cases,
#: a few seconds on two cores), so the interruption tests measure real kernels without taking minutes.
# one pass: these tests are about the case loop; a second pass refines records in place (tested below)
SMALL = ["--device", "cpu", "--suite", "gemm,memory,interaction", "--for", "tiny", "--quick", "--passes", "1"]


def test_budget_then_resume_finishes_every_case(cli, tmp_path):
    out = tmp_path / "m.json"
    args = ["bench", "--device", "cpu", "--suite", "memory,interaction", "--for", "tiny", "--quick",
            "--out", out]
    first = cli(*args, "--budget-s", "0")
    assert first.code == 0, first.err
    doc = json.loads(out.read_text())
    validate_document(doc)
    assert doc["progress"]["stopped"] == "budget" and not doc["progress"]["complete"]
    assert len(doc["records"]) == 0 and doc["progress"]["planned_cases"] > 0
    second = cli(*args, "--resume")
    assert second.code == 0, second.err
    doc = json.loads(out.read_text())
    validate_document(doc)
    assert doc["progress"]["complete"] and len(doc["records"]) == doc["progress"]["planned_cases"]
    again = cli(*args, "--resume")
    assert again.code == 0
    assert json.loads(out.read_text())["records"] == doc["records"]  # nothing repeated or re-measured
    assert {r["suite"] for r in doc["records"]} == {"memory", "interaction"}
    assert doc["env"]["device_kind"] == "cpu" and doc["env"]["torch"]
    assert out.stat().st_mode & 0o044 == 0o044  # readable by others (0666 minus the umask, not 0600)


def _start(out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "planner.cli.main", "bench", *SMALL, *extra, "--out", str(out)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )


def _records_once_there_are(out: Path, proc: subprocess.Popen, at_least: int) -> list[dict]:
    """Poll the file the running bench writes until it holds ``at_least`` records (a valid file each time)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if out.exists():
            doc = json.loads(out.read_text())  # atomic writes: every read is a whole, valid document
            if len(doc["records"]) >= at_least:
                return doc["records"]
        time.sleep(0.02)
    raise AssertionError(f"bench ended or stalled before {at_least} records: {proc.poll()}")


def test_interrupted_and_killed_runs_resume_with_nothing_lost(cli, tmp_path):
    """Ctrl-C, then a hard kill (SIGKILL, no clean-up at all), then --resume: every record measured before
    each interruption is still there, unchanged (not re-measured), and the run ends with the same cases as
    an uninterrupted run."""
    out = tmp_path / "m.json"
    proc = _start(out)
    try:
        before_int = _records_once_there_are(out, proc, 3)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert b"interrupted" in err and b"Traceback" not in err
    doc = json.loads(out.read_text())
    validate_document(doc)
    planned = doc["progress"]["planned_cases"]
    assert doc["progress"]["stopped"] == "interrupted"
    assert 3 <= len(doc["records"]) < planned
    assert doc["records"][: len(before_int)] == before_int

    proc = _start(out, "--resume")
    try:
        before_kill = _records_once_there_are(out, proc, len(doc["records"]) + 2)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    killed = json.loads(out.read_text())
    validate_document(killed)
    assert killed["records"][: len(doc["records"])] == doc["records"]
    assert len(killed["records"]) >= len(before_kill) and len(killed["records"]) < planned

    resumed = cli("bench", *SMALL, "--resume", "--out", out)
    assert resumed.code == 0, resumed.err
    final = json.loads(out.read_text())
    validate_document(final)
    assert final["progress"]["complete"]
    assert final["records"][: len(killed["records"])] == killed["records"]  # nothing lost or re-measured
    fresh = tmp_path / "fresh.json"
    assert cli("bench", *SMALL, "--out", fresh).code == 0
    uninterrupted = json.loads(fresh.read_text())["records"]
    assert len(final["records"]) == len(uninterrupted) == planned
    assert sorted(r["case_id"] for r in final["records"]) == sorted(r["case_id"] for r in uninterrupted)


def test_second_pass_keeps_every_first_pass_median(cli, tmp_path):
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    args = ["--device", "cpu", "--suite", "memory", "--for", "tiny", "--quick"]
    assert cli("bench", *args, "--passes", "1", "--out", one).code == 0
    assert cli("bench", *args, "--out", two).code == 0  # the CPU default number of passes
    first = json.loads(one.read_text())
    second = json.loads(two.read_text())
    assert second["args"]["passes"] == CPU_PASSES and second["progress"]["passes_done"] == CPU_PASSES
    assert [r["case_id"] for r in first["records"]] == [r["case_id"] for r in second["records"]]
    for record in second["records"]:
        medians = record["extra"]["pass_medians_s"]
        assert len(medians) == CPU_PASSES and record["timing"]["median_s"] == min(medians)
