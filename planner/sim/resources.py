"""SimPy resources of the step model: the collective barrier that synchronises device classes.

A collective cannot start on any rank before every rank has reached it, and it ends for all of them when
the slowest rank's part is done; so it starts at the latest arrival and lasts the longest part.
Streams are plain ``simpy.Store`` queues (FIFO, as CUDA streams are).
"""

from __future__ import annotations

import simpy


class Barrier:
    """A collective joined by ``parties`` device classes; releases all with the longest duration (s)."""

    __slots__ = ("_event", "_longest_s", "_waiting", "parties")

    def __init__(self, parties: int) -> None:
        self.parties = parties
        self._waiting = 0
        self._longest_s = 0.0
        self._event: simpy.Event | None = None

    def join(self, env: simpy.Environment, duration_s: float) -> simpy.Event:
        """Arrive with this class's duration; the event fires, valued the longest duration, at the last."""
        if self._event is None:
            self._event = env.event()
        self._waiting += 1
        self._longest_s = max(self._longest_s, duration_s)
        event = self._event
        if self._waiting >= self.parties:
            event.succeed(self._longest_s)
            self._event = None
            self._waiting = 0
            self._longest_s = 0.0
        return event


def new_queues(env: simpy.Environment, serial_host: bool) -> dict:
    """The two stream queues of one rank (``compute``, ``comm``) and the serial-host flag."""
    return {"compute": simpy.Store(env), "comm": simpy.Store(env), "serial": serial_host}
