"""Embedding index generators: uniform, and bounded Zipf with the hot ids scattered over the table.

A bounded Zipf over ``rows`` ids gives rank ``k`` (1-based) probability proportional to ``k^-s``. Hot ranks
are mapped to ids by an affine permutation ``id = (a * rank + b) mod rows`` with ``a`` a prime that does not
divide ``rows``, so the hottest rows are spread across the table instead of sitting in its first pages
(which would make caches look better than they are in production).

Sampling is exact (inverse CDF over the discrete probabilities) up to ``EXACT_ZIPF_MAX_ROWS`` rows and uses
the continuous inverse-CDF approximation above that, which keeps 1e7-row tables cheap.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

EXACT_ZIPF_MAX_ROWS = 1 << 21
_PRIMES = (2_654_435_761, 2_246_822_519, 3_266_489_917, 668_265_263, 374_761_393)


def _multiplier(rows: int) -> int:
    for prime in _PRIMES:
        if rows % prime != 0:
            return prime % rows if rows > 1 else 1
    return 1


@lru_cache(maxsize=8)
def _zipf_cdf(rows: int, exponent: float) -> Any:
    import torch

    ranks = torch.arange(1, rows + 1, dtype=torch.float64)
    weights = ranks.pow(-exponent)
    cdf = torch.cumsum(weights, 0)
    return cdf / cdf[-1]


def zipf_ranks(rows: int, exponent: float, count: int, generator: Any) -> Any:
    """Draw ``count`` 0-based ranks from a bounded Zipf(``exponent``) over ``rows`` ranks (int64 tensor)."""
    import torch

    u = torch.rand(count, generator=generator, dtype=torch.float64)
    if rows <= EXACT_ZIPF_MAX_ROWS:
        ranks = torch.searchsorted(_zipf_cdf(rows, exponent), u)
        return ranks.clamp_(max=rows - 1).to(torch.int64)
    n1 = float(rows + 1)
    if abs(exponent - 1.0) < 1e-9:
        x = torch.exp(u * math.log(n1))
    else:
        e = 1.0 - exponent
        x = (1.0 + u * (n1**e - 1.0)).pow(1.0 / e)
    return (x.floor().to(torch.int64) - 1).clamp_(0, rows - 1)


def sample_indices(
    rows: int,
    count: int,
    distribution: str = "uniform",
    exponent: float = 0.0,
    seed: int = 0,
    generator: Any = None,
) -> Any:
    """Draw ``count`` embedding ids in ``[0, rows)`` as an int64 CPU tensor.

    Args:
        rows: table size in rows.
        count: how many ids to draw.
        distribution: ``"uniform"`` or ``"zipf"``.
        exponent: Zipf exponent (ignored for uniform).
        seed: seed used when no ``generator`` is given.
        generator: optional ``torch.Generator`` to continue a stream.
    """
    import torch

    if generator is None:
        generator = torch.Generator().manual_seed(seed)
    if distribution == "uniform" or exponent <= 0:
        return torch.randint(0, rows, (count,), generator=generator, dtype=torch.int64)
    if distribution != "zipf":
        raise ValueError(f"unknown index distribution {distribution!r}")
    ranks = zipf_ranks(rows, exponent, count, generator)
    a = _multiplier(rows)
    b = (rows // 3) if rows > 3 else 0
    return (ranks * a + b) % rows


def unique_count(ids: Any) -> int:
    """Number of distinct ids in a tensor."""
    import torch

    return int(torch.unique(ids).numel())
