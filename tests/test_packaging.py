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


_NO_TORCH = """
import sys

class _NoTorch:
    '''Refuse torch and its submodules, as on a machine where it is not installed.'''

    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return None

sys.meta_path.insert(0, _NoTorch())
for name in [m for m in sys.modules if m == "torch" or m.startswith("torch.")]:
    del sys.modules[name]
"""


def test_every_planning_command_runs_without_torch(tmp_path):
    """simulate, whatif, report, scaling fit and calibrate need no torch; bench says it needs it."""
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        "workload: tiny\nquality: {law: {form: power_plus_const, x: samples, alpha: 2.0, beta: 0.25, "
        "gamma: 0.7}}\nsweep: {hardware: [h100-sxm-80gb], devices: [1, 2]}\n"
    )
    obs = tmp_path / "obs.csv"
    obs.write_text("run,samples,ne\n" + "\n".join(
        f"r{i},{1e6 * 2**i:g},{1.8 * (1e6 * 2**i) ** -0.15 + 0.7:.6f}" for i in range(8)) + "\n")
    code = _NO_TORCH + f"""
from planner.cli.main import run
assert run(["simulate", "tiny", "--hardware", "h100-sxm-80gb", "--devices", "4", "--json"]) == 0
assert run(["whatif", {str(scenario)!r}, "--json", "--no-progress"]) == 0
assert run(["report", {str(scenario)!r}, "--out", {str(tmp_path / "rep")!r}, "--no-progress"]) == 0
assert run(["scaling", "fit", {str(obs)!r}, "--x", "samples", "--bootstrap", "20", "--json"]) == 0
assert run(["calibrate", {str(ROOT / "calibration/measurements/cpu-quick-epyc-2core.json")!r}, "--out",
            {str(tmp_path / "cal.yaml")!r}, "--json"]) == 0
assert run(["bench", "--device", "cpu", "--out", {str(tmp_path / "m.json")!r}]) == 2
assert not any(m == "torch" or m.startswith("torch.") for m in sys.modules)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "torch is not installed" in result.stderr
    assert (tmp_path / "rep" / "report.html").exists() and (tmp_path / "cal.yaml").exists()
