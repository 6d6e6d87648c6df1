"""The identity memo: one build per live object, never another object's value."""

from __future__ import annotations

from planner.memo import IdentityMemo


def test_builds_once_per_object_and_empties_past_its_limit():
    calls = []
    memo: IdentityMemo[list, int] = IdentityMemo(limit=2)

    def build(obj: list) -> int:
        calls.append(obj)
        return len(obj)

    a, b, c = [1], [1, 2], [1, 2, 3]
    assert memo(a, build) == 1 and memo(a, build) == 1
    assert memo(b, build) == 2 and memo(c, build) == 3
    assert len(calls) == 3  # a was built once
    d = [9, 9, 9, 9]
    assert memo(d, build) == 4  # more than two entries: emptied, then d stored
    assert memo(a, build) == 1 and len(calls) == 5  # a rebuilt after the reset
    assert memo([1], build) == 1 and len(calls) == 6  # an equal but distinct object is its own entry
