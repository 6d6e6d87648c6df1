"""Hypothesis strategies that break valid inputs in the ways hand-written files break.

``mutated(valid)`` draws a copy of a valid nested mapping with one defect: a key removed, a leaf
replaced by junk (wrong type, negative, zero, NaN, infinity, absurd size, empty container), an unknown key
added, or a container swapped for a scalar. ``broken_text(valid_text)`` damages serialised text.
"""

from __future__ import annotations

import copy
import math
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


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            out.extend(_paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out.extend(_paths(value, (*prefix, i)))
    return out


def _get_parent(root: Any, path: tuple) -> Any:
    node = root
    for part in path[:-1]:
        node = node[part]
    return node


@st.composite
def mutated(draw: st.DrawFn, valid: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of ``valid`` with one defect at a random place."""
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
        junk = draw(st.sampled_from(["{", "[", ":", "\t", "- ", "&a", "*b", '"', "!!python/object:os.system"]))
        return valid_text[:pos] + junk + valid_text[pos:]
    if action == "duplicate" and lines:
        return "\n".join([*lines[: i + 1], lines[i], *lines[i + 1 :]])
    if lines:
        lines[i] = "   " + lines[i]
    return "\n".join(lines)
