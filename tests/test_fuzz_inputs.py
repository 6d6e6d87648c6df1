"""Fuzz every input format: a malformed file gives exit 2 and one line naming the file, never a traceback."""

from __future__ import annotations

import copy
from importlib import resources

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner.cli.main import run
from planner.errors import InputError
from planner.hardware import load_profile_mapping, profile_from_mapping
from planner.io import dump_yaml, parse_yaml_text
from planner.workload import workload_from_mapping
from tests.fuzzing import broken_text, mutated

_SETTINGS = settings(max_examples=60, deadline=None, derandomize=True,
                     suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

_WORKLOAD_TEXT = resources.files("planner.presets.workloads").joinpath("tiny.yaml").read_text()
_WORKLOAD = parse_yaml_text(_WORKLOAD_TEXT, "tiny")
_PROFILE, _ = load_profile_mapping("h100-sxm-80gb")


def _accepts_or_input_error(loader, data) -> None:
    try:
        loader(copy.deepcopy(data), "fuzz.yaml")
    except InputError as exc:
        assert exc.file == "fuzz.yaml"
        assert "\n" not in str(exc)


@_SETTINGS
@given(mutated(_WORKLOAD))
def test_fuzz_workload_mappings(data):
    _accepts_or_input_error(workload_from_mapping, data)


@_SETTINGS
@given(mutated(_PROFILE))
def test_fuzz_profile_mappings(data):
    _accepts_or_input_error(profile_from_mapping, data)


def _cli_one_line(args: list[str], capsys) -> None:
    capsys.readouterr()
    code = run(args)
    err = capsys.readouterr().err
    assert code in (0, 2), (code, err)
    if code == 2:
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and "Traceback" not in err, err


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.one_of(broken_text(_WORKLOAD_TEXT), mutated(_WORKLOAD).map(dump_yaml)))
def test_fuzz_workload_files_through_cli(tmp_path_factory, capsys, text):
    path = tmp_path_factory.mktemp("fz") / "w.yaml"
    path.write_text(text)
    _cli_one_line(["workloads", "validate", str(path)], capsys)


@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(st.sampled_from(["profiles", "workloads", "show", "list", "derive", "--json", "--set",
                                 "x=1", "tiny", "h100-sxm-80gb", "--name", "--out", "-", "", "--", "validate",
                                 "/nonexistent", "device.hbm_bytes=x0"]), max_size=6))
def test_fuzz_command_lines(capsys, args):
    capsys.readouterr()
    code = run(args)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert code in (0, 1, 2)
