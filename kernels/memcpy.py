"""Memory suite: the bandwidth-versus-size curve of copies, host<->device transfers, elementwise ops and a
dense optimizer step, from 1 KB to 1 GB.

``params.bytes`` is the buffer size, ``params.bytes_moved`` the algorithmic bytes read plus written (see
:func:`kernels.specs.memory_bytes_moved`); ``extra.bandwidth_bytes_per_s`` = bytes_moved / median time.
Small buffers rotate over several copies (up to ``ROTATE_TARGET_BYTES`` in all) so successive calls do
not hit the same cache lines. Every buffer, outputs included, is written once before timing: an output
made with ``torch.empty`` is only mapped, and its first write pays a page fault per 4 KiB page inside the
timed loop (a bf16 add into 16 fresh 4 MiB outputs ran 1.5 ms a call, against 0.45 ms into written
ones), which a step does not pay: its allocator hands out memory already touched.

``launch_overhead`` measures the host's cost per launched op in training: a chain of ``params.ops`` tiny
autograd ops on a 64-element tensor, cycling through ``params.kinds`` op kinds of a DLRM step in turn
(:data:`CHAIN_KINDS`: element-wise, matmul, cast, concatenation, lookup, indexing, reduction), then its
backward (as many launches again), timed on the host with ``perf_counter`` and one device synchronisation
at the end. Its ``timing`` is seconds per launch (``2 x ops`` launches); the work of each op is negligible,
so on a GPU it is the rate at which the host issues ops (framework dispatch, autograd bookkeeping, driver
launch) and on a CPU the whole cost of a launch-bound op.

With ``params.autograd`` false the same 24 kinds run forward only, without autograd, in two layouts
timed one after the other, each kind in turn and each :data:`kernels.specs.DISPATCH_CHAIN_REPEAT` times
in a row; the case records the difference per op, the part of the launch cost that is code running cold
(``overhead.cold_dispatch_share``).

How many kinds matters: an op's dispatch code runs faster when it ran a moment ago (instruction cache,
its translations, branch history). A training step runs 65-85 distinct aten ops (counted with the torch
profiler over five of the fidelity configurations), so each finds its code colder than an op repeated in
a loop. Here, on the 2-core VM, ops cycled over 3, 6, 12, 20 and 30 kinds cost 0.9-1.1, 0.8-1.15,
0.95-1.6, 1.4-2.6 and 1.85-2.8 times the same ops each repeated. The suite's chains cycle through all
:data:`CHAIN_KINDS` (``kinds`` = 24); records without ``kinds`` come from the older six-kind chain
(:data:`LEGACY_CHAIN_KINDS`), which measures the warm end of that range. The kinds are chosen so that
a chain op runs about as many aten ops as before: 1.44 non-view aten ops per launch counted (forward and
backward) against 1.41 for the six kinds, and 1.04-1.40 per launch the step model counts in four steps
of the fidelity set, so the two chains' figures compare per launch.
"""

from __future__ import annotations

from typing import Any

from kernels.device import BenchContext, CaseFailed, bytes_per_elem, require_memory, torch_dtype
from kernels.records import LEGACY_CHAIN_KINDS
from kernels.specs import CHAIN_KINDS, Case
from kernels.timing import measure, summarize

ROTATE_TARGET_BYTES = 64 * 1024 * 1024

MAX_ROTATE = 16


def _rotation(size: int) -> int:
    return max(1, min(MAX_ROTATE, ROTATE_TARGET_BYTES // max(size, 1)))


def run(case: Case, ctx: BenchContext) -> tuple[dict[str, Any], dict[str, Any]]:
    """Measure one memory case; returns (timing, extra)."""
    import torch

    p = case.params
    if case.kernel == "launch_overhead":
        kinds = int(p.get("kinds", LEGACY_CHAIN_KINDS))
        if p.get("autograd", True) is False:
            return _dispatch_chain(int(p["ops"]), kinds, ctx)
        return _launch_overhead(int(p["ops"]), kinds, ctx)
    if case.dtype != "fp32" and case.kernel != "elementwise":
        raise CaseFailed(f"unsupported: {case.dtype} for {case.kernel} (only element-wise cases take a "
                         "low-precision dtype)")
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
        gpu = [torch.zeros(numel, dtype=torch.float32, device=dev) for _ in range(k)]
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
        dst = [torch.zeros(numel, dtype=torch.float32, device=dev) for _ in range(k)]

        def op(rep: int) -> None:
            dst[rep % k].copy_(src[rep % k])
    elif kernel == "elementwise":  # fp32, or bf16/fp16 elements (``bytes`` is the buffer size either way)
        require_memory(3 * k * size, dev)
        dtype = torch_dtype(case.dtype)
        count = max(1, size // bytes_per_elem(case.dtype))
        a = [torch.ones(count, dtype=dtype, device=dev) for _ in range(k)]
        b = [torch.ones(count, dtype=dtype, device=dev) for _ in range(k)]
        c = [torch.zeros(count, dtype=dtype, device=dev) for _ in range(k)]

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


def _chain_steps(kinds: int, dev: Any) -> tuple[list[Any], list[Any]]:
    """The first ``kinds`` op kinds of :data:`CHAIN_KINDS` as callables on an 8 x 8 tensor, and the leaf
    tensors that need their gradients cleared."""
    import torch
    import torch.nn.functional as F

    if not 1 <= kinds <= len(CHAIN_KINDS):
        raise CaseFailed(f"kinds must be 1 to {len(CHAIN_KINDS)}, got {kinds}")
    # varied values, so the chain does not start on constant tensors
    w = (torch.linspace(-0.1, 0.1, 64, device=dev).reshape(8, 8) + 0.1).requires_grad_()
    bias = torch.linspace(-0.01, 0.01, 8, device=dev).requires_grad_()
    w3 = (torch.linspace(-0.1, 0.1, 128, device=dev).reshape(2, 8, 8) + 0.1).requires_grad_()
    ids = torch.arange(16, device=dev) % 8
    offsets = torch.arange(0, 16, 2, device=dev)
    perm = torch.arange(7, -1, -1, device=dev)
    flat = torch.arange(64, device=dev).flip(0)
    mask = (torch.arange(64, device=dev) % 3 != 0).reshape(8, 8)
    by_name = {
        "add": lambda t: t + 1.0,
        "mul": lambda t: t * 0.5,
        "relu": torch.relu,
        "matmul": lambda t: t @ w,
        "cast": lambda t: t.to(torch.bfloat16).to(torch.float32),
        "cat": lambda t: torch.cat([t[:4], t[4:]]),
        "sigmoid": torch.sigmoid,
        "addmm": lambda t: F.linear(t, w, bias),
        "embedding_bag": lambda t: F.embedding_bag(ids, t, offsets, mode="sum"),
        "index_select": lambda t: t.index_select(0, perm),
        "bmm": lambda t: torch.bmm(t.reshape(2, 4, 8), w3).reshape(8, 8),
        "tanh": torch.tanh,
        "clamp": lambda t: t.clamp(-1.0, 1.0),
        "where": lambda t: torch.where(mask, t, 0.0),
        "transpose_copy": lambda t: t.transpose(0, 1).contiguous(),
        "softplus": F.softplus,
        "flip": lambda t: t.flip(0),
        "gather": lambda t: t.flatten()[flat].reshape(8, 8),
        "sin": torch.sin,
        "div": lambda t: t / 2.0,
        "roll": lambda t: t.roll(1, 0),
        "neg": torch.neg,
        "square": torch.square,
        "log_sigmoid": F.logsigmoid,
    }
    return [by_name[name] for name in CHAIN_KINDS[:kinds]], [w, bias, w3]


def _launch_overhead(ops: int, kinds: int, ctx: BenchContext) -> tuple[dict[str, Any], dict[str, Any]]:
    """Host seconds per launched op of a tiny autograd chain (forward then backward); see the module doc."""
    import torch

    from kernels.timing import Timing

    dev = ctx.device
    x = torch.linspace(-0.5, 1.0, 64, device=dev).reshape(8, 8).requires_grad_()
    steps, leaves = _chain_steps(kinds, dev)
    launches = 2 * ops

    def chain(_rep: int) -> None:
        y = x
        for i in range(ops):
            y = steps[i % len(steps)](y)
        y.sum().backward()
        for t in (x, *leaves):
            t.grad = None
        if ctx.is_cuda:
            torch.cuda.synchronize(dev)

    # timed as host work ("cpu"), whatever the device: the chain synchronises at its own end
    per_chain = measure(chain, "cpu", ctx.policy, ctx.deadline)
    timing = Timing(per_chain.median_s / launches, per_chain.p10_s / launches, per_chain.p90_s / launches,
                    per_chain.reps)
    return timing.as_dict(), {"launches": launches, "kinds": len(steps),
                              "method": "host perf_counter over a forward+backward chain of tiny autograd "
                                        f"ops of {len(steps)} kinds in turn, per launch"}


def _dispatch_chain(ops: int, kinds: int, ctx: BenchContext) -> tuple[dict[str, Any], dict[str, Any]]:
    """Host seconds per op that code running cold costs: the chain run forward only without autograd
    (``params.autograd`` false), each kind in turn (as in a step) minus the same mix with each kind
    :data:`kernels.specs.DISPATCH_CHAIN_REPEAT` times in a row (its code warm). The two layouts run in
    alternation, one of each per repetition, and the case's figure is the median of the per-repetition
    differences per op: the host's speed drifts over seconds (two layouts timed one after the other, a
    window each, gave 0.05 and 2.1 us in two passes of one bench), and a pair a millisecond apart sees
    the same host. ``extra`` keeps both layouts' per-op medians. The difference is the code-cache part
    of the host's per-launch cost (``overhead.cold_dispatch_share``); no graph is recorded or walked."""
    import statistics
    import time

    import torch

    from kernels.specs import DISPATCH_CHAIN_REPEAT

    dev = ctx.device
    x = torch.linspace(-0.5, 1.0, 64, device=dev).reshape(8, 8)
    steps, _leaves = _chain_steps(kinds, dev)

    def chain(repeat: int) -> float:
        t0 = time.perf_counter()
        with torch.no_grad():
            y = x
            for i in range(ops):
                y = steps[(i // repeat) % len(steps)](y)
        if ctx.is_cuda:
            torch.cuda.synchronize(dev)
        return time.perf_counter() - t0

    policy = ctx.policy
    for _ in range(max(policy.warmup, 1)):
        chain(1), chain(DISPATCH_CHAIN_REPEAT)
    cycled: list[float] = []
    warm: list[float] = []
    start = time.monotonic()
    while True:
        if len(cycled) % 2:  # alternate which layout goes first, so neither always follows the other
            warm.append(chain(DISPATCH_CHAIN_REPEAT))
            cycled.append(chain(1))
        else:
            cycled.append(chain(1))
            warm.append(chain(DISPATCH_CHAIN_REPEAT))
        now = time.monotonic()
        enough = len(cycled) >= policy.min_reps and now - start >= policy.max_time_s
        if len(cycled) >= policy.max_reps or enough:
            break
        if ctx.deadline is not None and now >= ctx.deadline:
            break
    paired = summarize([(c - w) / ops for c, w in zip(cycled, warm, strict=True)])
    cycled_per_op = statistics.median(cycled) / ops
    floor = 0.01 * cycled_per_op  # noise can make the difference tiny or negative; keep it positive
    median = max(paired.median_s, floor)
    timing = {"median_s": median, "p10_s": min(max(paired.p10_s, floor), median),
              "p90_s": max(paired.p90_s, median), "reps": paired.reps}
    return timing, {"launches": ops, "kinds": len(steps), "repeat": DISPATCH_CHAIN_REPEAT,
                    "cycled_per_op_s": cycled_per_op, "warm_per_op_s": statistics.median(warm) / ops,
                    "difference": True,
                    "method": "host perf_counter over a forward chain without autograd of tiny ops of "
                              f"{len(steps)} kinds in turn, minus the same with each kind "
                              f"{DISPATCH_CHAIN_REPEAT} times in a row run just before or after it, "
                              "median of the paired differences per op"}
