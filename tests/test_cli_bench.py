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


def test_budget_then_resume_finishes_every_case(cli, tmp_path):
    out = tmp_path / "m.json"
    args = ["bench", "--device", "cpu", "--suite", "memory,interaction", "--quick", "--out", out]
    first = cli(*args, "--budget-s", "0")
    assert first.code == 0, first.err
    doc = json.loads(out.read_text())
    validate_document(doc)
    assert doc["progress"]["stopped"] == "budget" and not doc["progress"]["complete"]
    assert len(doc["records"]) == 0
    second = cli(*args, "--resume")
    assert second.code == 0, second.err
    doc = json.loads(out.read_text())
    validate_document(doc)
    assert doc["progress"]["complete"] and len(doc["records"]) == doc["progress"]["planned_cases"]
    again = cli(*args, "--resume")
    assert again.code == 0
    assert len(json.loads(out.read_text())["records"]) == len(doc["records"])  # nothing repeated
    assert {r["suite"] for r in doc["records"]} == {"memory", "interaction"}
    assert doc["env"]["device_kind"] == "cpu" and doc["env"]["torch"]


def test_interrupted_run_resumes_to_the_same_record_count(cli, tmp_path):
    out = tmp_path / "m.json"
    suites = "gemm,memory"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "planner.cli.main",
            "bench",
            "--device",
            "cpu",
            "--suite",
            suites,
            "--quick",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if out.exists() and len(json.loads(out.read_text())["records"]) >= 3:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    doc = json.loads(out.read_text())
    validate_document(doc)
    planned = doc["progress"]["planned_cases"]
    if proc.returncode == 130:
        assert doc["progress"]["stopped"] == "interrupted"
        assert 3 <= len(doc["records"]) < planned
        assert b"interrupted" in err and b"Traceback" not in err
    resumed = cli("bench", "--device", "cpu", "--suite", suites, "--quick", "--resume", "--out", out)
    assert resumed.code == 0, resumed.err
    final = json.loads(out.read_text())
    validate_document(final)
    fresh = tmp_path / "fresh.json"
    assert cli("bench", "--device", "cpu", "--suite", suites, "--quick", "--out", fresh).code == 0
    assert len(final["records"]) == len(json.loads(fresh.read_text())["records"]) == planned
