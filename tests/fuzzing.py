"""Hypothesis strategies that break valid inputs in the ways hand-written and machine-written files break.

Two kinds of strategy:

* exploratory, ``mutated(valid)`` and ``broken_text(text)``: one defect that may or may not leave the
  input valid (a key removed, a leaf replaced by junk, an unknown key, bytes inserted); a test asserts only
  that recplan answers cleanly (exit 0, 1 or 2; never a traceback);
* malformed, ``malformed(valid, ...)``, ``malformed_csv(header, rows)`` and ``bad_argv(...)``: one defect
  that is invalid by construction (a non-finite or negative number, a number where text belongs, text
  where a number belongs, true/false where a number belongs, an unknown key, an empty list, a required key
  removed); each returns a :class:`Defect` that knows where the defect is, so a test can assert exit 2 and
  a one-line message naming the file and that field.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from([0, -1, -1e-9, 1e300, math.nan, math.inf, -math.inf, 10**40]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)

KeyPath = tuple[Any, ...]


def _paths(node: Any, prefix: KeyPath = ()) -> list[KeyPath]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            out.extend(_paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out.extend(_paths(value, (*prefix, i)))
    return out


def _get(root: Any, path: KeyPath) -> Any:
    node = root
    for part in path:
        node = node[part]
    return node


def _get_parent(root: Any, path: KeyPath) -> Any:
    return _get(root, path[:-1])


def field_path(path: Sequence[Any]) -> str:
    """The dotted field path recplan prints for ``path`` (``model.tables[2].rows``)."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


@st.composite
def mutated(draw: st.DrawFn, valid: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of ``valid`` with one defect at a random place (may still be valid)."""
    data = copy.deepcopy(valid)
    paths = _paths(data)
    path = draw(st.sampled_from(paths))
    parent = _get_parent(data, path)
    key = path[-1]
    action = draw(st.sampled_from(["junk", "junk", "junk", "delete", "unknown", "scalar_root"]))
    if action == "junk":
        parent[key] = draw(JUNK)
    elif action == "delete":
        if isinstance(parent, dict):
            del parent[key]
        else:
            parent.pop(key)
    elif action == "unknown":
        target = parent[key] if isinstance(parent[key], dict) else parent
        if isinstance(target, dict):
            target[draw(st.sampled_from(["colour", "extra", "x_bytes", "Name", "__class__"]))] = 1
        else:
            parent[key] = draw(JUNK)
    else:
        return draw(st.sampled_from([[], "text", 42, None, [1, 2]]))  # type: ignore[return-value]
    return data


@st.composite
def broken_text(draw: st.DrawFn, valid_text: str) -> str:
    """``valid_text`` truncated, with bytes inserted, or with a line duplicated or re-indented."""
    action = draw(st.sampled_from(["truncate", "insert", "duplicate", "indent"]))
    if action == "truncate":
        return valid_text[: draw(st.integers(0, max(0, len(valid_text) - 1)))]
    lines = valid_text.splitlines()
    i = draw(st.integers(0, max(0, len(lines) - 1)))
    if action == "insert":
        pos = draw(st.integers(0, len(valid_text)))
        junk = draw(st.sampled_from(["{", "[", ":", "\t", "- ", "&a", "*b", '"', "!!python/object:os.system",
                                     "\x00", "\ufeff", "\\"]))
        return valid_text[:pos] + junk + valid_text[pos:]
    if action == "duplicate" and lines:
        return "\n".join([*lines[: i + 1], lines[i], *lines[i + 1 :]])
    if lines:
        lines[i] = "   " + lines[i]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ malformed
@dataclass(frozen=True)
class Defect:
    """A document broken at one place: ``path`` (``()`` for the whole file) and what was done there."""

    data: Any
    path: KeyPath
    kind: str
    value: Any = None

    @property
    def field(self) -> str:
        """The dotted field path of the defect ("" for the whole file)."""
        return field_path(self.path)

    def named_by(self, message: str) -> bool:
        """True when ``message`` names the defect's field or its nearest container."""
        if not self.path:
            return True
        candidates = {field_path(self.path)}
        if len(self.path) > 1:
            candidates.add(field_path(self.path[:-1]))
        return any(c in message for c in candidates)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _under(path: KeyPath, prefixes: Iterable[KeyPath]) -> bool:
    return any(path[: len(p)] == tuple(p) for p in prefixes)


def _matches(path: KeyPath, pattern: KeyPath) -> bool:
    """``pattern`` matches ``path`` exactly, with ``"*"`` standing for any one key or index."""
    return len(path) == len(pattern) and all(p == "*" or p == q for p, q in zip(pattern, path, strict=True))


@st.composite
def malformed(
    draw: st.DrawFn,
    valid: dict[str, Any],
    *,
    free: Sequence[KeyPath] = (),
    open_maps: Sequence[KeyPath] = (),
    required: Sequence[KeyPath] = (),
    signed: Sequence[KeyPath] = (),
) -> Defect:
    """A deep copy of ``valid`` with one defect that makes it invalid by construction.

    Args:
        valid: a valid document (mapping as read from YAML or JSON).
        free: path prefixes whose content is free-form (never broken here; ``"*"`` matches any key).
        open_maps: mappings that accept keys of any name (no unknown key is added there).
        required: paths of keys that must be present (one may be deleted).
        signed: numeric leaves where a negative number is allowed (only non-finite and type defects there).
    """
    data = copy.deepcopy(valid)

    def is_free(path: KeyPath) -> bool:
        return any(_matches(path[: len(p)], tuple(p)) for p in free if len(path) >= len(p))

    def is_open(path: KeyPath) -> bool:
        return any(_matches(path, tuple(p)) for p in open_maps)

    candidates = [p for p in _paths(data) if not is_free(p)]
    leaf_paths = [p for p in candidates if not isinstance(_get(data, p), (dict, list))]
    map_paths = [p for p in candidates if isinstance(_get(data, p), dict) and not is_open(p)]
    if not is_open(()):
        map_paths.append(())
    list_paths = [p for p in candidates if isinstance(_get(data, p), list)]
    req = [p for p in candidates if any(_matches(p, tuple(r)) for r in required)]
    kinds = ["leaf"] * 6 + ["unknown_key"] * 2 + ["root"]
    if list_paths:
        kinds.append("empty_list")
    if req:
        kinds += ["missing"] * 2
    kind = draw(st.sampled_from(kinds))
    if kind == "root":
        return Defect(draw(st.sampled_from([[], "text", 42, None, [1, 2]])), (), "root")
    if kind == "unknown_key":
        path = draw(st.sampled_from(map_paths))
        key = draw(st.sampled_from(["colour", "x_bytes", "Name", "__class__", "extra_key"]))
        _get(data, path)[key] = 1
        return Defect(data, (*path, key), "unknown_key")
    if kind == "empty_list":
        path = draw(st.sampled_from(list_paths))
        _get_parent(data, path)[path[-1]] = draw(st.sampled_from([[], {"a": 1}]))
        return Defect(data, path, "empty_list")
    if kind == "missing":
        path = draw(st.sampled_from(req))
        del _get_parent(data, path)[path[-1]]
        return Defect(data, path, "missing")
    path = draw(st.sampled_from(leaf_paths))
    old = _get(data, path)
    if _number(old):
        choices = [math.nan, math.inf, -math.inf, "abc", "12 GB", "", True, [1, "x"], []]
        if not any(_matches(path, tuple(s)) for s in signed):
            choices += [-1, -1e9]
    elif isinstance(old, bool):
        choices = ["abc", 2, [1], {"a": 1}]
    elif isinstance(old, str):
        choices = [[1], {"a": 1}, 42, True]
    else:  # None
        choices = ["abc", [1], {"a": 1}]
    value = draw(st.sampled_from(choices))
    _get_parent(data, path)[path[-1]] = value
    return Defect(data, path, "leaf", value)


@dataclass(frozen=True)
class CsvDefect:
    """A broken observations CSV and the row/column (or ``header``) a message must name ("" for none)."""

    text: str
    where: str
    kind: str


@st.composite
def malformed_csv(draw: st.DrawFn, header: list[str], rows: list[list[str]],
                  scale_columns: Sequence[str] = ("samples", "params", "flops")) -> CsvDefect:
    """An observations CSV with one defect that makes it invalid by construction (rows numbered from 2)."""
    rows = [list(r) for r in rows]
    head = list(header)
    numeric = [c for c in head if c in scale_columns or c == "ne"]
    kind = draw(st.sampled_from(["cell"] * 5 + ["ragged", "ragged", "duplicate", "no_ne", "no_scale",
                                                "empty", "header_only"]))
    where = ""
    if kind == "cell":
        i = draw(st.integers(0, len(rows) - 1))
        col = draw(st.sampled_from(numeric))
        j = head.index(col)
        bad = ["abc", "nan", "inf", "-inf", "1e400", "", "0x10", '"1,5"', "--1", "1e", "\u00bd"]
        bad += ["0", "-1", "-2.5e7"] if col != "ne" else ["0", "-0.5", "1.5", "7", "1e-400"]
        rows[i][j] = draw(st.sampled_from(bad))
        where = f"row {i + 2}, column {col}"
    elif kind == "ragged":
        i = draw(st.integers(0, len(rows) - 1))
        if draw(st.booleans()) or len(rows[i]) < 2:
            rows[i].append("1")
        else:
            rows[i].pop()
        where = f"row {i + 2}"
    elif kind == "duplicate":
        head.append(draw(st.sampled_from(head)))
        rows = [[*r, r[0]] for r in rows]
        where = "header"
    elif kind == "no_ne":
        head[head.index("ne")] = draw(st.sampled_from(["NE_", "loss", "ne2"]))
        where = "header"
    elif kind == "no_scale":
        for c in scale_columns:
            if c in head:
                head[head.index(c)] = f"{c}_x"
        where = "header"
    elif kind == "empty":
        return CsvDefect(draw(st.sampled_from(["", "\n", "  \n\n"])), "", kind)
    else:
        return CsvDefect(",".join(head) + "\n", "", kind)
    lines = [",".join(head), *(",".join(r) for r in rows)]
    return CsvDefect("\n".join(lines) + "\n", where, kind)


@dataclass(frozen=True)
class ArgDefect:
    """A command line with one bad argument; the one-line message must contain one of ``needles``."""

    argv: list[str]
    needles: tuple[str, ...]


@st.composite
def bad_argv(draw: st.DrawFn, base: list[str], options: dict[str, list[str]],
             positional: dict[int, list[str]] | None = None) -> ArgDefect:
    """``base`` with one option set to a bad value, one positional argument replaced, or junk appended.

    Args:
        base: a valid command line (``["simulate", "tiny", "--hardware", "h100-sxm-80gb"]``).
        options: option name -> bad values for it (the option replaces its value in ``base`` or is added).
        positional: index in ``base`` -> bad values for the positional argument there.
    """
    argv = list(base)
    choices = ["option"] * 4 + ["unknown", "dangling"] + (["positional"] * 2 if positional else [])
    kind = draw(st.sampled_from(choices))
    if kind == "positional":
        assert positional is not None
        i = draw(st.sampled_from(sorted(positional)))
        argv[i] = draw(st.sampled_from(positional[i]))
        return ArgDefect(argv, (argv[i],))
    if kind == "unknown":
        option = draw(st.sampled_from(["--colour", "--devics", "-z"]))
        argv += [option, "1"]
        return ArgDefect(argv, (option,))
    name = draw(st.sampled_from(sorted(options)))
    if kind == "dangling":
        if name in argv:
            i = argv.index(name)
            del argv[i : i + 2]
        return ArgDefect([*argv, name], (name,))
    value = draw(st.sampled_from(options[name]))
    if name in argv:
        argv[argv.index(name) + 1] = value
    else:
        argv += [name, value]
    needles = [name, value] + ([value.split("=", 1)[0]] if "=" in value else [])
    return ArgDefect(argv, tuple(n for n in needles if n.strip()) or (name,))
