"""``planner.io``: atomic writes (permissions, failures leave the old file), output-path checks, and an audit
that every writer in recplan goes through them."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest

from planner import io as pio
from planner.errors import InputError
from planner.io import atomic_write_bytes, atomic_write_text, check_output_file

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def umask():
    """Set the process umask for one test and restore it afterwards."""
    saved = os.umask(0o022)

    def set_mask(mask: int) -> None:
        os.umask(mask)

    yield set_mask
    os.umask(saved)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600), (0o002, 0o664)])
def test_new_files_get_the_usual_permissions_under_the_umask(tmp_path, umask, mask, expected):
    umask(mask)
    target = tmp_path / "out" / "f.json"
    atomic_write_text(target, "{}\n")
    assert target.read_text() == "{}\n"
    assert _mode(target) == expected
    assert _leftovers(target.parent) == []


def test_the_umask_is_read_without_being_changed(umask):
    umask(0o027)
    assert pio._umask() == 0o027
    assert os.umask(0o027) == 0o027  # still what the test set


def test_replacing_a_file_keeps_its_permissions(tmp_path, umask):
    target = tmp_path / "f.yaml"
    target.write_text("old\n")
    target.chmod(0o600)
    atomic_write_text(target, "new\n")
    assert target.read_text() == "new\n" and _mode(target) == 0o600


def test_a_folder_in_the_way_is_one_clear_error_and_nothing_is_left(tmp_path):
    folder = tmp_path / "adir"
    folder.mkdir()
    with pytest.raises(InputError) as exc:
        atomic_write_bytes(folder, b"x")
    assert exc.value.file == str(folder) and "folder" in exc.value.problem
    assert _leftovers(tmp_path) == []


def test_a_failed_write_leaves_the_old_file_intact(tmp_path, monkeypatch):
    target = tmp_path / "m.json"
    target.write_text('{"records": [1, 2, 3]}\n')

    def full_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pio.os, "fsync", full_disk)
    with pytest.raises(InputError) as exc:
        atomic_write_text(target, '{"records": []}\n')
    assert "No space left on device" in exc.value.problem and exc.value.file == str(target)
    assert target.read_text() == '{"records": [1, 2, 3]}\n'
    assert _leftovers(tmp_path) == []


def test_an_interrupt_during_the_write_leaves_the_old_file_and_propagates(tmp_path, monkeypatch):
    target = tmp_path / "m.json"
    target.write_text("old\n")

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(pio.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_text(target, "new\n")
    assert target.read_text() == "old\n" and _leftovers(tmp_path) == []


def test_check_output_file(tmp_path):
    check_output_file(tmp_path / "new" / "deeper" / "f.json")  # missing folders are created on write
    check_output_file(tmp_path / "f.json")
    with pytest.raises(InputError, match="folder"):
        check_output_file(tmp_path)
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(InputError, match="not a folder") as exc:
        check_output_file(blocker / "f.json", "--out")
    assert exc.value.field == "--out"


def test_check_output_file_leaves_nothing_behind(tmp_path):
    existing = tmp_path / "old.csv"
    existing.write_text("keep\n")
    before = sorted(tmp_path.iterdir())
    for path in (tmp_path / "f.json", existing, tmp_path / "new" / "deeper" / "f.json"):
        check_output_file(path)
    assert sorted(tmp_path.iterdir()) == before  # no probe file, no folder created
    assert existing.read_text() == "keep\n"


def test_check_output_file_accepts_a_read_only_file_in_a_writable_folder(tmp_path):
    target = tmp_path / "ro.csv"
    target.write_text("x\n")
    target.chmod(0o444)
    check_output_file(target)  # the atomic writers replace it by a rename, which the folder allows
    atomic_write_text(target, "y\n")
    assert target.read_text() == "y\n"


def test_check_output_file_refuses_a_folder_it_cannot_write(tmp_path, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    monkeypatch.setattr(pio.os, "access", lambda path, mode: Path(path) != locked)
    with pytest.raises(InputError) as exc:
        check_output_file(locked / "obs.csv", "--out")
    line = str(exc.value)
    assert line == f"{locked / 'obs.csv'}: --out: cannot create a file in {locked}: permission denied"
    with pytest.raises(InputError, match=re.escape(f"cannot create a file in {locked}: permission denied")):
        check_output_file(locked / "sub" / "obs.csv")  # the nearest existing folder is the one that counts


def test_check_output_file_probes_where_access_says_yes(tmp_path, monkeypatch):
    """``os.access`` tells root yes on pseudo file systems such as /sys; creating a file there fails."""
    locked = tmp_path / "pseudo"
    locked.mkdir()
    real = pio.tempfile.mkstemp

    def refuse(*args, dir=None, **kwargs):
        if dir is not None and Path(dir) == locked:
            raise PermissionError(13, "Permission denied")
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(pio.tempfile, "mkstemp", refuse)
    with pytest.raises(InputError, match=r"cannot create a file in .*pseudo: permission denied") as exc:
        check_output_file(locked / "x.csv")
    assert str(locked / "x.csv") in str(exc.value) and len(str(exc.value).splitlines()) == 1
    check_output_file(tmp_path / "x.csv")  # elsewhere the probe succeeds and is removed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pseudo"]


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_check_output_file_refuses_proc():
    with pytest.raises(InputError) as exc:
        check_output_file("/proc/recplan-no-such/x.csv")
    assert str(exc.value).startswith("/proc/recplan-no-such/x.csv: --out: cannot create a file in /proc: ")


# Calls that write a file other than through planner.io's atomic writers.
_DIRECT_WRITES = re.compile(
    r"\.write_text\(|\.write_bytes\(|\bopen\([^)]*['\"][wax]b?\+?['\"]|json\.dump\(|yaml\.(safe_)?dump\([^)]*,\s*\w+\)"
    r"|\.savefig\(|np\.save|\.to_csv\(|shutil\.(copy|move)|os\.O_(WRONLY|RDWR|CREAT)"
)


def test_every_writer_goes_through_the_atomic_writers():
    offenders = []
    for package in ("planner", "calibration", "kernels", "benchmarks"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if path == ROOT / "planner" / "io.py":
                continue
            for n, line in enumerate(path.read_text().splitlines(), 1):
                code = line.split("#", 1)[0]
                if _DIRECT_WRITES.search(code):
                    offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert offenders == [], "write these through planner.io.atomic_write_text/bytes:\n" + "\n".join(offenders)


def test_command_outputs_are_world_readable(cli, tmp_path, umask):
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        "workload: tiny\nquality: {law: {form: power_plus_const, x: samples, alpha: 2.0, beta: 0.25, "
        "gamma: 0.7}}\nsweep: {hardware: [h100-sxm-80gb], devices: [1]}\n"
    )
    derived = tmp_path / "derived.yaml"
    assert cli("profiles", "derive", "h100-sxm-80gb", "--set", "device.hbm_bytes=x2", "--name", "h2",
               "--out", derived).code == 0
    assert cli("report", scenario, "--out", tmp_path / "rep", "--no-progress").code == 0
    written = [derived, *sorted((tmp_path / "rep").iterdir())]
    assert [p.name for p in written] == ["derived.yaml", "options.csv", "report.html", "report.json",
                                         "report.md"]
    assert {p.name: oct(_mode(p)) for p in written} == {p.name: oct(0o644) for p in written}


def test_a_fifo_is_refused_and_left_alone(tmp_path):
    special = tmp_path / "pipe"
    os.mkfifo(special)
    for check in (check_output_file, lambda p: atomic_write_text(p, "x\n")):
        with pytest.raises(InputError) as exc:
            check(special)
        assert str(exc.value).startswith(f"{special}: ")
        assert "not a regular file (a fifo); give a file path" in str(exc.value)
        assert len(str(exc.value).splitlines()) == 1
    assert stat.S_ISFIFO(special.stat().st_mode) and _leftovers(tmp_path) == []


def test_a_character_device_is_named_as_such(tmp_path, monkeypatch):
    """No real device is touched: ``stat`` reports one for a plain file."""
    fake = tmp_path / "fake-device"
    fake.write_text("keep\n")
    real_stat = Path.stat

    def device_stat(self, *args, **kwargs):
        result = real_stat(self, *args, **kwargs)
        if self == fake:
            return os.stat_result((stat.S_IFCHR | 0o666, *tuple(result)[1:]))
        return result

    monkeypatch.setattr(Path, "stat", device_stat)
    with pytest.raises(InputError, match=re.escape("not a regular file (a character device); give a file")):
        check_output_file(fake)
    with pytest.raises(InputError, match="a character device"):
        atomic_write_text(fake, "new\n")
    assert fake.read_text() == "keep\n" and _leftovers(tmp_path) == []


def test_cli_refuses_a_fifo_out_with_one_line(cli, tmp_path):
    fifo = tmp_path / "out.yaml"
    os.mkfifo(fifo)
    result = cli("profiles", "derive", "h100-sxm-80gb", "--set", "device.hbm_bytes=x2", "--name", "t1",
                 "--out", fifo)
    assert result.code == 2 and result.err.count("\n") == 1 and "Traceback" not in result.err
    assert f"{fifo}: --out: not a regular file (a fifo); give a file path" in " ".join(result.err.split())
    assert stat.S_ISFIFO(fifo.stat().st_mode)


def test_a_symlink_is_written_through_and_stays_a_link(tmp_path, umask):
    other = tmp_path / "elsewhere"
    other.mkdir()
    target = other / "tgt.yaml"
    target.write_text("old\n")
    target.chmod(0o640)
    link = tmp_path / "lnk.yaml"
    link.symlink_to(Path("elsewhere") / "tgt.yaml")  # relative: resolved from the link's folder
    check_output_file(link)
    atomic_write_text(link, "new\n")
    assert link.is_symlink() and os.readlink(link) == str(Path("elsewhere") / "tgt.yaml")
    assert target.read_text() == "new\n" and _mode(target) == 0o640
    assert _leftovers(tmp_path) == [] and _leftovers(other) == []


def test_a_chain_of_links_is_written_at_the_last_target(tmp_path):
    target = tmp_path / "tgt.json"
    target.write_text("old\n")
    (tmp_path / "b.json").symlink_to(target)
    (tmp_path / "a.json").symlink_to(tmp_path / "b.json")
    atomic_write_text(tmp_path / "a.json", "new\n")
    assert (tmp_path / "a.json").is_symlink() and (tmp_path / "b.json").is_symlink()
    assert target.read_text() == "new\n"


def test_a_failed_write_through_a_link_leaves_link_and_target_intact(tmp_path, monkeypatch):
    target = tmp_path / "tgt.json"
    target.write_text("old\n")
    link = tmp_path / "lnk.json"
    link.symlink_to(target)

    def full_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pio.os, "fsync", full_disk)
    with pytest.raises(InputError) as exc:
        atomic_write_text(link, "new\n")
    assert exc.value.file == str(link) and "No space left" in exc.value.problem
    assert link.is_symlink() and target.read_text() == "old\n" and _leftovers(tmp_path) == []


def test_a_dangling_link_creates_the_file_it_names(tmp_path, umask):
    link = tmp_path / "lnk.yaml"
    link.symlink_to(tmp_path / "new.yaml")
    check_output_file(link)
    atomic_write_text(link, "made\n")
    assert link.is_symlink() and (tmp_path / "new.yaml").read_text() == "made\n"
    assert _mode(tmp_path / "new.yaml") == 0o644


def test_a_dangling_link_into_a_missing_folder_is_refused(tmp_path):
    link = tmp_path / "lnk.yaml"
    link.symlink_to(tmp_path / "missing" / "new.yaml")
    for check in (check_output_file, lambda p: atomic_write_text(p, "x\n")):
        with pytest.raises(InputError, match=r"link to .*new\.yaml, whose folder .*missing does not exist"):
            check(link)
    assert not (tmp_path / "missing").exists() and link.is_symlink()


def test_a_link_loop_and_a_link_to_a_fifo_are_refused(tmp_path):
    loop = tmp_path / "loop.yaml"
    loop.symlink_to(loop)
    with pytest.raises(InputError, match="symbolic link loop"):
        check_output_file(loop)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    link = tmp_path / "to-pipe.yaml"
    link.symlink_to(fifo)
    expected = f"not a regular file (a fifo, via the symbolic link to {fifo})"
    with pytest.raises(InputError, match=re.escape(expected)):
        atomic_write_text(link, "x\n")
    assert link.is_symlink() and stat.S_ISFIFO(fifo.stat().st_mode)


def test_cli_writes_through_a_symlinked_out(cli, tmp_path):
    target = tmp_path / "tgt.yaml"
    target.write_text("old\n")
    link = tmp_path / "lnk.yaml"
    link.symlink_to(target)
    result = cli("profiles", "derive", "h100-sxm-80gb", "--set", "device.hbm_bytes=x2", "--name", "t1",
                 "--out", link)
    assert result.code == 0, result.err
    assert link.is_symlink() and "t1" in target.read_text()
