"""The accelerator-session scripts under ``calibration/``: valid shell, and a clear stop without a GPU."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = [ROOT / "calibration" / "device-session.sh", ROOT / "calibration" / "device-wheels.sh"]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_script_parses(script):
    assert shutil.which("bash")
    done = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_session_stops_with_one_line_when_no_gpu_is_visible(tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is visible here")
    python_dir = str(Path(sys.executable).parent)  # the python3 that runs the tests, with recplan's packages
    env = {**os.environ, "OUT": str(tmp_path / "out"), "DEVICE": "cuda", "WHEELS": str(tmp_path / "none"),
           "PATH": python_dir + os.pathsep + os.environ.get("PATH", "")}
    done = subprocess.run(["bash", str(SCRIPTS[0])], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1 and lines[0].endswith("] no CUDA device visible to torch (device cuda)")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["session.log"]  # nothing else written
    assert "no CUDA device" in (tmp_path / "out" / "session.log").read_text()
