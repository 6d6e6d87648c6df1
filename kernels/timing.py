"""Timing a callable on the device: warm-up, repeat until the median is stable or a cap is hit.

CPU: ``time.perf_counter`` around each call, with the caller fixing the thread count
(``torch.set_num_threads``). CUDA: a pair of CUDA events around each call, read after one synchronise
at the end of a batch of repetitions, so the host does not stall between kernels.

The callable receives the repetition index so it can rotate through several prepared inputs (caches do
not flatter repeated identical inputs). Summaries are in seconds.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Timing:
    """Summary of repeated measurements of one case, in seconds."""

    median_s: float
    p10_s: float
    p90_s: float
    reps: int

    def as_dict(self) -> dict[str, Any]:
        """Plain mapping in the record layout (``median_s``, ``p10_s``, ``p90_s``, ``reps``)."""
        return asdict(self)


@dataclass(frozen=True)
class TimingPolicy:
    """How long to measure one case.

    Args:
        warmup: calls made (and discarded) before timing; at least ``warmup_min_s`` seconds are also spent,
            and no more calls are made once ``warmup_max_s`` have passed.
        min_reps: timed calls made before the stability test may stop the loop.
        max_reps: hard cap on timed calls.
        max_time_s: wall-clock cap on the timed loop (the warm-up is not counted).
        rel_tol: stop once the median of the last half of the samples is within this fraction of the
            median of all samples (after ``min_reps``).
        warmup_min_s: minimum warm-up wall time in seconds.
        warmup_max_s: the warm-up stops after this many seconds even before ``warmup`` calls (a call of
            tens of milliseconds has warmed caches, allocator and threads by its end).
    """

    warmup: int = 3
    min_reps: int = 5
    max_reps: int = 200
    max_time_s: float = 2.0
    rel_tol: float = 0.03
    warmup_min_s: float = 0.0
    warmup_max_s: float = float("inf")

    def __post_init__(self) -> None:
        if self.warmup_max_s < self.warmup_min_s:
            raise ValueError(f"warmup_max_s ({self.warmup_max_s}) is below warmup_min_s "
                             f"({self.warmup_min_s})")


#: Quick runs: at least 11 timed calls (the median of few calls of a microsecond op on a shared machine is
#: noise) unless 0.15 s have passed, up to 300, a 2% stability test, and a short warm-up (allocator,
#: caches, threads): two calls, or one where that took 0.02 s (the second warm-up calls of the 17 quick
#: cases of 20-60 ms, GEMMs and embedding updates, took 1.6 s of a 55 s bench). The host's speed
#: drifts over seconds, so a longer window per case buys little: a later pass over the cases does
#: (:data:`CPU_PASSES`).
QUICK_POLICY = TimingPolicy(
    warmup=2, min_reps=11, max_reps=300, max_time_s=0.15, rel_tol=0.02, warmup_min_s=0.01, warmup_max_s=0.02
)
#: Passes over the kernel cases a CPU bench makes by default, keeping each case's fastest. On this
#: project's 2-core VM an embedding backward+update case ran 1.6-3.6 ms in 0.15 s windows a second apart.
#: Three passes of 0.03 s (the same 50 s) were tried: two such benches differed per case by a median 5.6%
#: (embedding backward+update 12.2%) where two-pass benches differ by 8.6% (16.3%), but the fastest of
#: three short windows catches the host's fast moments, which a training step of tens of milliseconds does
#: not: its kernels came out 3-8% faster (embedding backward+update 10-20%) and the whole-step predictions
#: of two calibrations 15-45% low on nearly every configuration (median error 22-26%, where two-pass
#: calibrations of the same hour gave 6-29%). Two passes of 0.15 s stay the default.
CPU_PASSES = 2
FULL_POLICY = TimingPolicy(
    warmup=3, min_reps=7, max_reps=200, max_time_s=2.0, rel_tol=0.02, warmup_min_s=0.05
)


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile ``q`` in [0, 100] of ``values`` (same rule as numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    pos = (len(ordered) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def summarize(samples_s: list[float]) -> Timing:
    """Median, 10th and 90th percentile and count of per-call times in seconds."""
    return Timing(
        median_s=float(statistics.median(samples_s)),
        p10_s=float(percentile(samples_s, 10)),
        p90_s=float(percentile(samples_s, 90)),
        reps=len(samples_s),
    )


def is_stable(samples_s: list[float], rel_tol: float) -> bool:
    """True when the median of the newest half agrees with the overall median within ``rel_tol``."""
    if len(samples_s) < 4:
        return False
    overall = statistics.median(samples_s)
    recent = statistics.median(samples_s[len(samples_s) // 2 :])
    if overall <= 0:
        return True
    return abs(recent - overall) / overall <= rel_tol


def _is_cuda(device: Any) -> bool:
    return str(device).startswith("cuda")


def measure(
    fn: Callable[[int], Any],
    device: Any = "cpu",
    policy: TimingPolicy | None = None,
    deadline: float | None = None,
    setup: Callable[[int], Any] | None = None,
) -> Timing:
    """Time ``fn(rep)`` per call in seconds: warm up, then repeat until stable or capped.

    Args:
        fn: the work of one repetition; receives the repetition index (for rotating inputs).
        device: ``"cpu"`` or a CUDA device; CUDA uses events and synchronises once per batch.
        policy: warm-up, repetition and time caps (default :data:`FULL_POLICY`).
        deadline: optional ``time.monotonic()`` instant after which no new repetition starts (at least
            one timed repetition is always made).
        setup: optional ``setup(rep)`` run before every call of ``fn(rep)`` and not timed (on CUDA,
            synchronised before the call's start event); its wall time counts towards ``max_time_s``.

    Returns:
        A :class:`Timing` with per-call seconds.
    """
    policy = policy or FULL_POLICY
    cuda = _is_cuda(device)
    if cuda:
        import torch

        sync = torch.cuda.synchronize
    else:

        def sync() -> None:
            return None

    start = time.monotonic()
    rep = 0
    while rep < policy.warmup or time.monotonic() - start < policy.warmup_min_s:
        if setup is not None:
            setup(rep)
        fn(rep)
        rep += 1
        if time.monotonic() - start >= policy.warmup_max_s:
            break
        if deadline is not None and time.monotonic() > deadline:
            break
        if rep > 1000:
            break
    sync()

    samples: list[float] = []
    loop_start = time.monotonic()
    while True:
        if cuda:
            batch = _cuda_batch(fn, rep, min(4, policy.max_reps - len(samples)), setup)
            rep += len(batch)
            samples.extend(batch)
        else:
            if setup is not None:
                setup(rep)
            t0 = time.perf_counter()
            fn(rep)
            samples.append(time.perf_counter() - t0)
            rep += 1
        now = time.monotonic()
        if len(samples) >= policy.max_reps:
            break
        if now - loop_start >= policy.max_time_s and samples:
            break
        if deadline is not None and now >= deadline:
            break
        if len(samples) >= policy.min_reps and is_stable(samples, policy.rel_tol):
            break
    return summarize(samples)


def _cuda_batch(fn: Callable[[int], Any], first_rep: int, count: int,
                setup: Callable[[int], Any] | None = None) -> list[float]:
    import torch

    count = max(1, count)
    events = [
        (torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(count)
    ]
    for i, (begin, end) in enumerate(events):
        if setup is not None:  # untimed work between the calls: done before the start event
            setup(first_rep + i)
            torch.cuda.synchronize()
        begin.record()
        fn(first_rep + i)
        end.record()
    torch.cuda.synchronize()
    return [begin.elapsed_time(end) / 1000.0 for begin, end in events]
