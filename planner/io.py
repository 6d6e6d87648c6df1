"""File input and output: YAML/JSON loading with clear errors, and atomic writes.

Every file recplan writes goes through :func:`atomic_write_text` or :func:`atomic_write_bytes`: a temporary
file in the same folder, flushed and fsynced, then renamed over the target, so a reader never sees a half
written file and an interrupted write leaves the old one intact. A symbolic link is written through (the
file it names is replaced, the link stays); a device, fifo or socket is refused, never replaced.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import Any

import yaml

from planner.errors import InputError, kind_of


class _Loader(yaml.SafeLoader):
    """YAML 1.1 safe loader that also reads ``80e9`` and ``1e-6`` as floats (SI figures are written so)."""


_FLOAT = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)
_Loader.yaml_implicit_resolvers = {
    key: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:float"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))


def _no_duplicates(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


def parse_yaml_text(text: str, source: str) -> Any:
    """Parse YAML text; a syntax error becomes an ``InputError`` naming ``source`` and the line."""
    try:
        return yaml.load(text, Loader=_Loader)  # _Loader is a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise InputError(f"malformed YAML: {problem}", file=source, field=where) from None
    except RecursionError:
        raise InputError("malformed YAML: nested too deeply", file=source) from None


def read_text(path: str | Path) -> str:
    """Read a UTF-8 text file; a missing, unreadable or binary file becomes an ``InputError``."""
    p = Path(path)
    try:
        return p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("file not found", file=str(path)) from None
    except IsADirectoryError:
        raise InputError("is a directory, expected a file", file=str(path)) from None
    except PermissionError:
        raise InputError("permission denied", file=str(path)) from None
    except UnicodeDecodeError:
        raise InputError("not a UTF-8 text file", file=str(path)) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", file=str(path)) from None


def load_yaml_file(path: str | Path) -> Any:
    """Load a YAML file with the recplan loader (no duplicate keys, SI floats)."""
    return parse_yaml_text(read_text(path), str(path))


def load_yaml_mapping(path: str | Path) -> dict[str, Any]:
    """Load a YAML file whose top level must be a mapping."""
    data = load_yaml_file(path)
    if not isinstance(data, dict):
        kind = "nothing (an empty file)" if data is None else kind_of(data)
        raise InputError(f"expected a mapping at the top level, found {kind}", file=str(path))
    return data


def load_json_file(path: str | Path) -> Any:
    """Load a JSON file; malformed JSON becomes an ``InputError`` with line and column."""
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"malformed JSON: {exc.msg}", file=str(path), field=f"line {exc.lineno}, column {exc.colno}"
        ) from None
    except RecursionError:
        raise InputError("malformed JSON: nested too deeply", file=str(path)) from None


def _umask() -> int:
    """The process's file-creation mask, read without changing it where the system allows."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # no way to read it without setting it elsewhere: set and restore at once
    os.umask(mask)
    return mask


def _write_problem(exc: OSError) -> str:
    if isinstance(exc, IsADirectoryError):
        return "is a folder, expected a file path"
    if isinstance(exc, PermissionError):
        return "permission denied"
    return f"cannot write: {exc.strerror or exc}"


def nearest_existing(path: Path) -> Path:
    """``path`` itself when it exists, else its nearest existing ancestor (``.`` at the end of a relative
    path none of whose folders exist)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def folder_write_problem(folder: Path, prefix: str = ".recplan-write-check.") -> str | None:
    """Why no new file can be created in ``folder``, or None when one can.

    Probed by creating and at once removing an empty temporary file (named from ``prefix``), because
    ``os.access`` answers yes to root on read-only pseudo file systems such as ``/sys``; nothing is left
    behind. The problem is ``permission denied`` or the system's own words (``Read-only file system``).
    """
    try:
        fd, probe = tempfile.mkstemp(prefix=prefix, suffix=".check", dir=folder)
    except OSError as exc:
        return "permission denied" if isinstance(exc, PermissionError) else exc.strerror or str(exc)
    try:
        os.close(fd)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(probe)
    return None


_KINDS = (
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a fifo"),
    (stat.S_ISSOCK, "a socket"),
)


def _special_kind(path: Path) -> str | None:
    """What ``path`` is when it exists and is neither a regular file nor a folder (``a fifo``), else None."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    return next((kind for test, kind in _KINDS if test(mode)), "a special file")


def resolve_output(path: str | Path, option: str | None = None) -> Path:
    """The file a write to ``path`` must replace: ``path`` itself, or for a symbolic link the file it
    finally names, so that the link stays and its target gets the content.

    Raises:
        InputError: naming ``path`` (and ``option``) when it, or the file its link names, exists and is not
            a regular file or folder (a device, a fifo, a socket), when the links loop, or when a dangling
            link names a file in a folder that does not exist.
    """
    given = Path(path)
    target = given
    if given.is_symlink():
        target = Path(os.path.realpath(given))
        if target.is_symlink():  # realpath stops at a link it cannot resolve: a loop
            raise InputError("symbolic link loop; give a file path", file=str(path), field=option)
        if not target.exists() and not target.parent.is_dir():
            raise InputError(
                f"symbolic link to {target}, whose folder {target.parent} does not exist; give a file path",
                file=str(path), field=option,
            )
    kind = _special_kind(target)
    if kind is not None:
        via = f", via the symbolic link to {target}" if target != given else ""
        raise InputError(f"not a regular file ({kind}{via}); give a file path", file=str(path), field=option)
    return target


def check_output_file(path: str | Path, option: str = "--out") -> None:
    """Refuse, before any work starts, an output path that cannot become a file.

    The path must not be an existing folder, nor an existing device, fifo or socket; a symbolic link is
    checked at the file it names (:func:`resolve_output`). The nearest existing ancestor of that file must
    be a folder (missing folders are created when the file is written) in which this process can create
    files. Writability is probed there (:func:`folder_write_problem`). An existing target need not itself
    be writable: the atomic writers replace it by a rename within its folder.

    Raises:
        InputError: naming the path and ``option``, with the problem in one line.
    """
    if str(path) == "" or Path(path).is_dir():
        raise InputError("is a folder, expected a file path", file=str(path), field=option)
    target = resolve_output(path, option)
    ancestor = nearest_existing(target.parent)
    if not ancestor.is_dir():
        raise InputError(f"cannot create the file: {ancestor} is not a folder", file=str(path), field=option)
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise InputError(
            f"cannot create a file in {ancestor}: permission denied", file=str(path), field=option
        )
    problem = folder_write_problem(ancestor, prefix=f".{target.name}.")
    if problem is not None:
        raise InputError(f"cannot create a file in {ancestor}: {problem.lower()}", file=str(path),
                         field=option)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder, fsync, rename).

    A symbolic link is written through: the temporary file goes beside the file the link names and is
    renamed over it, so the link stays. An existing device, fifo or socket is refused, never replaced
    (:func:`resolve_output`). The file gets the permissions of the file it replaces, or, for a new file,
    the usual ``0o666`` minus the umask (``0o644`` under the common umask 022), not the private ``0o600``
    of a temporary file. Missing folders are created. Raises ``InputError`` naming the path when the file or
    its folder cannot be written (a folder in the way, no permission, disk full); the old file, if any,
    is left untouched.
    """
    given = Path(path)
    target = resolve_output(given)
    folder = target.parent if str(target.parent) else Path(".")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create folder: {exc.strerror or exc}", file=str(folder)) from None
    if target.is_dir():
        raise InputError("is a folder, expected a file path", file=str(given))
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
    except OSError:
        mode = 0o666 & ~_umask()
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise InputError(_write_problem(exc), file=str(given)) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise InputError(_write_problem(exc), file=str(given)) from None
        raise
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)  # make the rename itself durable
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def _finite(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def to_json(obj: Any) -> str:
    """Serialise to deterministic JSON (sorted keys, 2-space indent); NaN and infinity become null."""
    return json.dumps(_finite(obj), indent=2, sort_keys=True, allow_nan=False) + "\n"


def dump_yaml(obj: Any) -> str:
    """Serialise to block-style YAML in insertion order."""
    return yaml.safe_dump(obj, sort_keys=False, default_flow_style=False, allow_unicode=True, width=110)
