"""Economics of one training option: time-to-train, cost, energy, CO2, quality per dollar, Pareto frontier.

The formulas (DESIGN.md, "Economics and what-if"), all in SI or the unit named in the function:

* time-to-train [s] = samples per epoch x epochs / throughput [samples/s] (the what-if passes the total
  samples seen with ``epochs=1``: a scenario's ``sweep.samples`` already counts every epoch)
* cost [USD] = devices x price [USD per device-hour] x hours
* energy [kWh] = devices x power [W] x hours x PUE / 1000
* CO2 [kg] = energy [kWh] x grid intensity [kg CO2 per kWh]
* quality per dollar [metric units per USD] = improvement of the metric over a reference / cost

Pure functions of numbers; nothing here reads files or knows about hardware profiles. :func:`fmt_usd` and
:func:`fmt_kwh` are the one way every text output (the ``whatif`` table and recommendation, the reports)
writes money and energy, so a sentence never rounds a figure that the table beside it shows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from planner.units import SECONDS_PER_HOUR

WATT_HOURS_PER_KWH = 1000.0


def time_to_train_s(samples: float, epochs: float, samples_per_s: float) -> float:
    """Seconds to train on ``samples`` per epoch for ``epochs`` at ``samples_per_s`` (inf at zero rate).

    With ``epochs=1``, ``samples`` is the total number of samples seen in training.
    """
    if samples_per_s <= 0:
        return math.inf
    return samples * epochs / samples_per_s


def cost_usd(devices: int, price_usd_per_device_hour: float, hours: float) -> float:
    """US dollars for ``devices`` devices rented for ``hours`` hours at the given price per device-hour."""
    return devices * price_usd_per_device_hour * hours


def energy_kwh(devices: int, power_w: float, hours: float, pue: float = 1.0) -> float:
    """Facility energy in kWh: devices x power (W) x hours x PUE."""
    return devices * power_w * hours * pue / WATT_HOURS_PER_KWH


def co2_kg(energy: float, grid_kg_co2_per_kwh: float | None) -> float | None:
    """Kilograms of CO2 for ``energy`` kWh at the grid's intensity; ``None`` when the intensity is unknown."""
    if grid_kg_co2_per_kwh is None:
        return None
    return energy * grid_kg_co2_per_kwh


def hours(seconds: float) -> float:
    """Seconds to hours."""
    return seconds / SECONDS_PER_HOUR


def quality_per_dollar(
    metric: float, reference: float, cost: float, *, higher_is_better: bool = False
) -> float:
    """Improvement of the quality metric over ``reference`` per US dollar (0 for a free or worse option).

    For lower-is-better metrics (NE, losses) the improvement is ``reference - metric``.
    """
    gain = (metric - reference) if higher_is_better else (reference - metric)
    if cost <= 0 or not math.isfinite(cost) or not math.isfinite(gain):
        return 0.0
    return max(gain, 0.0) / cost


def pareto_frontier(
    costs: Sequence[float], metrics: Sequence[float], *, higher_is_better: bool = False
) -> list[int]:
    """Indices of the options no other option beats on both cost and quality, sorted by cost.

    An option is on the frontier when every cheaper (or equally cheap) option has a strictly worse metric.
    Among exact ties in both cost and metric, the first index is kept, so the result is deterministic.
    Non-finite costs or metrics are never on the frontier.
    """
    sign = -1.0 if higher_is_better else 1.0
    order = sorted(
        (i for i in range(len(costs)) if math.isfinite(costs[i]) and math.isfinite(metrics[i])),
        key=lambda i: (costs[i], sign * metrics[i], i),
    )
    frontier: list[int] = []
    best = math.inf
    for i in order:
        value = sign * metrics[i]
        if value < best:
            frontier.append(i)
            best = value
    return frontier


def _two_significant(value: float) -> str:
    """``value`` (non-zero, below 10 in size) to two significant digits, without exponent notation."""
    value = float(f"{value:.2g}")  # round first, so 0.009996 reads 0.010, not 0.0100
    digits = max(0, 1 - math.floor(math.log10(abs(value))))
    return f"{value:.{digits}f}"


def fmt_usd(value: float) -> str:
    """US dollars as text: whole dollars from $10 up (``$1,234``), cents below (``$0.08``), and two
    significant digits below one cent (``$0.0042``), so a small cost never reads as ``$0``."""
    if not math.isfinite(value):
        return f"${value}"
    if abs(round(value, 2)) >= 10:  # rounded first: $9.996 reads $10, as $10.00 would
        return f"${value:,.0f}"
    if value == 0 or abs(float(f"{value:.2g}")) >= 0.01:
        return f"${value:.2f}"
    return f"${_two_significant(value)}"


def fmt_kwh(value: float) -> str:
    """Energy in kWh as text (no unit): whole kWh from 10 up (``1,234``), two significant digits below
    (``4.8``, ``0.48``, ``0.0031``), so a small energy never reads as ``0``."""
    if not math.isfinite(value):
        return str(value)
    if abs(float(f"{value:.2g}")) >= 10:  # rounded first: 9.996 reads 10
        return f"{value:,.0f}"
    if value == 0:
        return "0"
    return _two_significant(value)
