"""The collective barrier: starts at the last arrival, lasts the longest part."""

from __future__ import annotations

import simpy

from planner.sim.resources import Barrier


def test_barrier_releases_all_at_last_arrival_with_longest_duration():
    env = simpy.Environment()
    barrier = Barrier(2)
    ends = {}

    def rank(name, arrive_s, duration_s):
        yield env.timeout(arrive_s)
        span = yield barrier.join(env, duration_s)
        yield env.timeout(span)
        ends[name] = env.now

    env.process(rank("a", 1.0, 2.0))
    env.process(rank("b", 3.0, 5.0))
    env.run()
    assert ends == {"a": 8.0, "b": 8.0}


def test_barrier_is_reusable():
    env = simpy.Environment()
    barrier = Barrier(1)
    ends = []

    def rank():
        for d in (1.0, 2.0):
            span = yield barrier.join(env, d)
            yield env.timeout(span)
            ends.append(env.now)

    env.process(rank())
    env.run()
    assert ends == [1.0, 3.0]
