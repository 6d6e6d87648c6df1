"""The accelerator-session scripts under ``calibration/``: valid shell, and a clear stop without a GPU."""

from __future__ import annotations

import os
import shutil
import subprocess
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
    env = {**os.environ, "OUT": str(tmp_path), "DEVICE": "cuda"}
    done = subprocess.run(["bash", str(SCRIPTS[0])], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2
    assert "no CUDA device visible to torch" in done.stdout
    assert not list(tmp_path.glob("*.json"))  # nothing measured, nothing half-written
    assert "no CUDA device" in (tmp_path / "session.log").read_text()
