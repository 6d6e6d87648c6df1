"""The built wheel carries the data files, the console script works, and the planner needs no torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out),
         str(ROOT)],
        check=True, capture_output=True, text=True,
    )
    (path,) = out.glob("recplan-*.whl")
    return path


def test_wheel_contains_profiles_and_presets(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "hardware_profiles/h100-sxm-80gb.yaml" in names
    assert "planner/presets/workloads/dlrm-dcnv2-multihot.yaml" in names
    assert any(n.startswith("kernels/") for n in names)
    assert any(n.startswith("calibration/") for n in names)


def test_installed_wheel_finds_its_data(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
                    str(wheel)], check=True, capture_output=True, text=True)
    code = (
        "import json, planner, planner.hardware as h, planner.workload as w;"
        "print(json.dumps([planner.__file__, h.preset_names(), w.preset_names()]))"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         check=True)
    planner_file, profiles, workloads = json.loads(run.stdout)
    assert planner_file.startswith(str(target))
    assert "h100-sxm-80gb" in profiles and "cpu-generic" in profiles
    assert "dlrm-dcnv2-multihot" in workloads


def test_planner_imports_without_torch():
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import planner, planner.cli.main, planner.hardware, planner.workload\n"
        "from planner.cli.main import run\n"
        "assert run(['workloads', 'show', 'tiny', '--json']) == 0\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr


def test_console_script_smoke():
    run = subprocess.run(["recplan", "--version"], capture_output=True, text=True)
    assert run.returncode == 0 and run.stdout.startswith("recplan ")
