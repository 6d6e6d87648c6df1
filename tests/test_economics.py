"""Economics: the DESIGN.md formulas with hand-computed figures, and the Pareto frontier's properties."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner import economics


def test_time_to_train_is_samples_times_epochs_over_throughput():
    assert economics.time_to_train_s(1e9, 2, 1e6) == pytest.approx(2000.0)
    assert economics.time_to_train_s(1e9, 1, 0.0) == math.inf


def test_cost_is_devices_times_price_times_hours():
    # 16 devices x $6.88/device-hour x 2.5 h = $275.20
    assert economics.cost_usd(16, 6.88, 2.5) == pytest.approx(275.2)


def test_energy_and_co2():
    # 8 devices x 700 W x 10 h x PUE 1.2 = 67.2 kWh; at 0.4 kg/kWh = 26.88 kg
    energy = economics.energy_kwh(8, 700.0, 10.0, 1.2)
    assert energy == pytest.approx(67.2)
    assert economics.co2_kg(energy, 0.4) == pytest.approx(26.88)
    assert economics.co2_kg(energy, None) is None


def test_quality_per_dollar_rewards_improvement_only():
    assert economics.quality_per_dollar(0.70, 0.72, 100.0) == pytest.approx(0.0002)
    assert economics.quality_per_dollar(0.73, 0.72, 100.0) == 0.0
    assert economics.quality_per_dollar(0.30, 0.25, 50.0, higher_is_better=True) == pytest.approx(0.001)
    assert economics.quality_per_dollar(0.70, 0.72, 0.0) == 0.0


def test_frontier_small_case():
    costs = [10, 20, 15, 30, 20, 5]
    nes = [0.70, 0.69, 0.71, 0.68, 0.69, 0.75]
    # 5 (0.75) -> 10 (0.70) -> 20 (0.69, first of the tie) -> 30 (0.68); 15 (0.71) is dominated by 10.
    assert economics.pareto_frontier(costs, nes) == [5, 0, 1, 3]
    assert economics.pareto_frontier([1.0, math.nan], [0.7, 0.6]) == [0]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0.01, 1e6), st.floats(0.5, 1.0)), min_size=1, max_size=40))
def test_frontier_is_exactly_the_non_dominated_set(points):
    costs = [p[0] for p in points]
    nes = [p[1] for p in points]
    front = economics.pareto_frontier(costs, nes)
    assert front == sorted(front, key=lambda i: (costs[i], nes[i], i))
    for i in range(len(points)):
        dominated = any(
            (costs[j] <= costs[i] and nes[j] < nes[i]) or (costs[j] < costs[i] and nes[j] <= nes[i])
            for j in range(len(points))
        )
        duplicate_earlier = any(costs[j] == costs[i] and nes[j] == nes[i] for j in range(i))
        assert (i in front) == (not dominated and not duplicate_earlier)


@pytest.mark.parametrize(
    "value, text",
    [(0.0, "$0.00"), (0.0042, "$0.0042"), (0.08, "$0.08"), (0.48, "$0.48"), (7.25, "$7.25"), (10.0, "$10"),
     (1234.5, "$1,234"), (2_500_000.0, "$2,500,000"), (9.996, "$10"), (0.009996, "$0.01")],
)
def test_money_keeps_cents_below_ten_dollars(value, text):
    assert economics.fmt_usd(value) == text


@pytest.mark.parametrize(
    "value, text",
    [(0.0, "0"), (0.0031, "0.0031"), (0.01031, "0.010"), (0.48, "0.48"), (4.84, "4.8"), (12.6, "13"),
     (1234.4, "1,234"), (9.996, "10"), (0.0099996, "0.010")],
)
def test_energy_keeps_two_significant_digits_when_small(value, text):
    assert economics.fmt_kwh(value) == text
