"""Memory suite: the bandwidth-versus-size curve of copies, host<->device transfers, elementwise ops and a
dense optimizer step, from 1 KB to 1 GB.

``params.bytes`` is the buffer size, ``params.bytes_moved`` the algorithmic bytes read plus written (see
:func:`kernels.specs.memory_bytes_moved`); ``extra.bandwidth_bytes_per_s`` = bytes_moved / median time.
Small buffers rotate over several copies (up to ``ROTATE_TARGET_BYTES`` in all) so successive calls do
not hit the same cache lines.

``launch_overhead`` measures the host's cost per launched op in training: a chain of ``params.ops`` tiny
autograd ops (the element-wise, matmul, cast and reduction kinds of a DLRM step, in turn) on a 64-element
tensor, then its backward (as many launches again), timed on the host with ``perf_counter`` and one
device synchronisation at the end. Its ``timing`` is seconds per launch (``2 x ops`` launches); the work of
each op is negligible, so on a GPU it is the rate at which the host issues ops (framework dispatch,
autograd bookkeeping, driver launch) and on a CPU the whole cost of a launch-bound op.
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
    if case.kernel == "launch_overhead":
        return _launch_overhead(int(p["ops"]), ctx)
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


def _launch_overhead(ops: int, ctx: BenchContext) -> tuple[dict[str, Any], dict[str, Any]]:
    """Host seconds per launched op of a tiny autograd chain (forward then backward); see the module doc."""
    import torch

    from kernels.timing import Timing

    dev = ctx.device
    x = torch.full((8, 8), 0.5, device=dev, requires_grad=True)
    w = torch.full((8, 8), 0.01, device=dev, requires_grad=True)
    steps = (
        lambda t: t + 1.0,
        lambda t: t * 0.5,
        torch.relu,
        lambda t: t @ w,
        lambda t: t.to(torch.bfloat16).to(torch.float32),
        lambda t: torch.cat([t[:4], t[4:]]),
    )
    launches = 2 * ops

    def chain(_rep: int) -> None:
        y = x
        for i in range(ops):
            y = steps[i % len(steps)](y)
        y.sum().backward()
        x.grad = None
        w.grad = None
        if ctx.is_cuda:
            torch.cuda.synchronize(dev)

    # timed as host work ("cpu"), whatever the device: the chain synchronises at its own end
    per_chain = measure(chain, "cpu", ctx.policy, ctx.deadline)
    timing = Timing(per_chain.median_s / launches, per_chain.p10_s / launches, per_chain.p90_s / launches,
                    per_chain.reps)
    return timing.as_dict(), {"launches": launches, "method": "host perf_counter over a forward+backward "
                                                             "chain of tiny autograd ops, per launch"}
