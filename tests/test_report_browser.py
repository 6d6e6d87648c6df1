"""Open the HTML report in headless Chromium: every plot is in the rendered page and nothing is logged.

Skips when no Chromium is installed (.ci/install-chromium.sh installs Debian's ``chromium`` package).
"""

from __future__ import annotations

import shutil
import subprocess

import pytest
from test_whatif import fake_simulate, scenario

from planner.report import write_report
from planner.report.plots import PLOTS
from planner.whatif import evaluate_scenario

CHROMIUM = next(
    (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None
)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (run .ci/install-chromium.sh)"
)
_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--hide-scrollbars",
    "--no-first-run",
    "--disable-extensions",
    "--enable-logging=stderr",
    "--v=0",
]


def _chromium(args: list[str], cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, *_FLAGS, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def test_report_renders_every_plot_without_console_errors(tmp_path):
    s = scenario(constraints={"max_days": 0.05})
    result = evaluate_scenario(s, simulate_fn=fake_simulate, executor="serial", cache={})
    write_report(result, tmp_path, ["html"])
    url = (tmp_path / "report.html").resolve().as_uri()
    dom = _chromium(["--dump-dom", url], tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    for pid in PLOTS:
        assert f'id="{pid}"' in dom.stdout, pid
    console = [line for line in dom.stderr.splitlines() if ":CONSOLE" in line]
    assert console == [], console
    shot = tmp_path / "report.png"
    run = _chromium(["--window-size=1280,2400", f"--screenshot={shot}", url], tmp_path)
    assert run.returncode == 0 and shot.exists() and shot.stat().st_size > 20_000, run.stderr[-2000:]
    assert not [line for line in run.stderr.splitlines() if ":CONSOLE" in line]
