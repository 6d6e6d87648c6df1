"""A fixed host-speed probe: the same three small kernels timed whenever the host is measured.

The VM this project is developed on changes speed by up to 1.7x over seconds with work elsewhere on its
physical host (no steal time shows); a kernel measured in a slow minute and a step validated in a fast one
differ for that reason alone. The probe times a memory-bound copy (32 MiB), a cache-resident GEMM
(256 x 256 x 256) and a gather of a lower triangle (the dot interaction's index pattern) in a fixed
order, the median of ``PROBE_REPS`` calls each, about a tenth of a second in all. ``index_s`` is their
geometric mean: the ratio of two probes' indices says how much faster or slower the host itself was,
which ``recplan validate`` reports beside its error (it never changes the measured figures).
"""

from __future__ import annotations

import math
from typing import Any

from kernels.timing import TimingPolicy, measure

PROBE_REPS = 25
_COPY_BYTES = 32 * 1024 * 1024
_GEMM = 256
_TRIANGLE = (512, 27, 16)


def speed_probe(device: str = "cpu") -> dict[str, Any]:
    """Time the probe kernels on ``device``; returns ``{copy_s, gemm_s, gather_s, index_s}`` in seconds."""
    import torch

    dev = torch.device(device)
    src = torch.ones(_COPY_BYTES // 4, device=dev)
    dst = torch.empty_like(src)
    a = torch.randn(_GEMM, _GEMM, device=dev)
    b, f, d = _TRIANGLE
    z = torch.randn(b, f, d, device=dev)
    products = torch.bmm(z, z.transpose(1, 2))
    rows, cols = torch.tril_indices(f, f, offset=-1, device=dev)

    # host-timed ("cpu" in measure) with a synchronisation inside each call on a GPU
    policy = TimingPolicy(warmup=3, min_reps=PROBE_REPS, max_reps=PROBE_REPS, max_time_s=float("inf"))

    def timed(op: Any) -> float:
        def call(_rep: int) -> None:
            op()
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)

        return float(measure(call, "cpu", policy).median_s)

    with torch.no_grad():
        out = {"copy_s": timed(lambda: dst.copy_(src)), "gemm_s": timed(lambda: a @ a),
               "gather_s": timed(lambda: products[:, rows, cols])}
    out["index_s"] = float(math.exp(sum(math.log(v) for v in out.values()) / 3.0))
    return out


def speed_ratio(now: Any, then: Any) -> float | None:
    """How many times slower the host is ``now`` than ``then`` (probe dicts or lists of them), or None."""

    def index(value: Any) -> float | None:
        if isinstance(value, dict):
            value = [value]
        if not isinstance(value, list):
            return None
        found = [p.get("index_s") for p in value if isinstance(p, dict)]
        found = [v for v in found if isinstance(v, (int, float)) and v > 0 and math.isfinite(v)]
        return float(math.exp(sum(math.log(v) for v in found) / len(found))) if found else None

    a, b = index(now), index(then)
    return None if a is None or b is None else a / b
