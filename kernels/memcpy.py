"""Memory suite: the bandwidth-versus-size curve of copies, host<->device transfers, elementwise ops and a
dense optimizer step, from 1 KB to 1 GB.

``params.bytes`` is the buffer size, ``params.bytes_moved`` the algorithmic bytes read plus written (see
:func:`kernels.specs.memory_bytes_moved`); ``extra.bandwidth_bytes_per_s`` = bytes_moved / median time.
Small buffers rotate over several copies (up to ``ROTATE_TARGET_BYTES`` in all) so successive calls do
not hit the same cache lines.
"""

from __future__ import annotations

from typing import Any

from kernels.device import BenchContext, CaseFailed, require_memory
from kernels.specs import Case
from kernels.timing import measure

ROTATE_TARGET_BYTES = 64 * 1024 * 1024
MAX_ROTATE = 16


def _rotation(size: int) -> int:
    return max(1, min(MAX_ROTATE, ROTATE_TARGET_BYTES // max(size, 1)))


def run(case: Case, ctx: BenchContext) -> tuple[dict[str, Any], dict[str, Any]]:
    """Measure one memory case; returns (timing, extra)."""
    import torch

    p = case.params
    size = p["bytes"]
    numel = max(1, size // 4)
    k = _rotation(size)
    dev = ctx.device
    kernel = case.kernel
    extra: dict[str, Any] = {"rotating_buffers": k}
    if kernel in ("h2d", "d2h"):
        if not ctx.is_cuda:
            raise CaseFailed("unsupported: host-device copies need a CUDA device")
        pinned = bool(p.get("pinned", False))
        require_memory(2 * k * size, dev)
        host = [torch.empty(numel, dtype=torch.float32, pin_memory=pinned).fill_(1.0) for _ in range(k)]
        gpu = [torch.empty(numel, dtype=torch.float32, device=dev) for _ in range(k)]
        if kernel == "h2d":

            def op(rep: int) -> None:
                gpu[rep % k].copy_(host[rep % k], non_blocking=pinned)
        else:

            def op(rep: int) -> None:
                host[rep % k].copy_(gpu[rep % k], non_blocking=pinned)
                if pinned:
                    torch.cuda.current_stream(dev).synchronize()
    elif kernel == "copy":
        require_memory(2 * k * size, dev)
        src = [torch.ones(numel, dtype=torch.float32, device=dev) for _ in range(k)]
        dst = [torch.empty(numel, dtype=torch.float32, device=dev) for _ in range(k)]

        def op(rep: int) -> None:
            dst[rep % k].copy_(src[rep % k])
    elif kernel == "elementwise":
        require_memory(3 * k * size, dev)
        a = [torch.ones(numel, dtype=torch.float32, device=dev) for _ in range(k)]
        b = [torch.ones(numel, dtype=torch.float32, device=dev) for _ in range(k)]
        c = [torch.empty(numel, dtype=torch.float32, device=dev) for _ in range(k)]

        def op(rep: int) -> None:
            i = rep % k
            torch.add(a[i], b[i], out=c[i])
    elif kernel == "optimizer_step":
        name = p.get("optimizer", "adagrad")
        require_memory((4 if name == "adagrad" else 3) * k * size, dev)
        weights = [torch.nn.Parameter(torch.zeros(numel, dtype=torch.float32, device=dev)) for _ in range(k)]
        for w in weights:
            w.grad = torch.full_like(w, 1e-3)
        cls = torch.optim.Adagrad if name == "adagrad" else torch.optim.SGD
        # foreach=False: one fused pass per tensor, the way a single large dense parameter is updated.
        opts = [cls([w], lr=0.01, foreach=False) for w in weights]
        extra["optimizer"] = name

        def op(rep: int) -> None:
            opts[rep % k].step()
    else:
        raise CaseFailed(f"unsupported: memory kernel {kernel!r}")
    timing = measure(op, dev, ctx.policy, ctx.deadline)
    extra["bandwidth_bytes_per_s"] = p["bytes_moved"] / timing.median_s if timing.median_s > 0 else None
    return timing.as_dict(), extra
