"""A small memo keyed by object identity, for derived figures of frozen inputs (workloads, profiles).

The inputs are frozen dataclasses holding lists and mappings, so they are not always hashable; identity is
enough because the planner builds each once and reuses it. The entry keeps the object itself, so an id
reused after the object is freed cannot return another object's figures. The memo empties itself when it
holds more than ``limit`` entries (a sweep touches a few hundred objects at most).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class IdentityMemo(Generic[K, V]):
    """``memo(obj, build)`` returns ``build(obj)``, computed once per live object."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._entries: dict[int, tuple[K, V]] = {}

    def __call__(self, obj: K, build: Callable[[K], V]) -> V:
        hit = self._entries.get(id(obj))
        if hit is not None and hit[0] is obj:
            return hit[1]
        value = build(obj)
        if len(self._entries) > self.limit:
            self._entries.clear()
        self._entries[id(obj)] = (obj, value)
        return value
