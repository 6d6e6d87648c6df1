"""GEMM suite: ``nn.Linear`` forward, and backward (input gradient + weight gradient + bias gradient).

Backward is timed with ``torch.autograd.grad`` on a retained graph, so it is the two GEMMs and the bias
reduction, without the forward. Inputs rotate over several activation matrices; the weight stays (as in
training). The results of the last calls are kept alive, one per input, as a training step keeps each
layer's output for the backward and its weight gradient for the update: a result dropped at once hands
its memory to the next call, which then writes into a buffer still in the cache (an 8192 x 512 fp32
output, 16 MiB, took 0.66 ms so and 2.06 ms when kept, as in a step). ``tf32`` is FP32 storage with
TF32 tensor-core matmuls on CUDA; on a CPU it is recorded as unsupported.
"""

from __future__ import annotations

from typing import Any

from kernels.device import (
    BenchContext,
    MatmulPrecision,
    bytes_per_elem,
    random_tensor,
    require_memory,
    torch_dtype,
)
from kernels.specs import Case
from kernels.timing import measure


def flops(params: dict[str, Any], kernel: str) -> float:
    """Floating-point operations of one call: 2mkn forward, 4mkn backward (input and weight gradients)."""
    m, k, n = params["batch"], params["in_features"], params["out_features"]
    return (2.0 if kernel == "linear_forward" else 4.0) * m * k * n


def run(case: Case, ctx: BenchContext) -> tuple[dict[str, Any], dict[str, Any]]:
    """Measure one GEMM case; returns (timing, extra)."""
    import torch

    p = case.params
    m, k, n = p["batch"], p["in_features"], p["out_features"]
    elem = bytes_per_elem(case.dtype)
    rotate = max(1, min(ctx.rotate, int(2**28 // max(1, m * k * elem)) or 1))
    with MatmulPrecision(case.dtype, ctx.device):
        require_memory(elem * (2 * rotate * m * k + 3 * k * n + (rotate + 3) * m * n + m * k), ctx.device)
        torch.manual_seed(ctx.seed)
        dtype = torch_dtype(case.dtype)
        layer = torch.nn.Linear(k, n, device=ctx.device, dtype=dtype)
        backward = case.kernel == "linear_backward"
        xs = [
            random_tensor((m, k), dtype, ctx.device, requires_grad=backward) for _ in range(rotate)
        ]
        kept: list[Any] = [None] * rotate  # the last results, alive as in a training step
        if not backward:

            def forward(rep: int) -> None:
                with torch.no_grad():
                    kept[rep % rotate] = layer(xs[rep % rotate])

            timing = measure(forward, ctx.device, ctx.policy, ctx.deadline)
        else:
            outs = [layer(x) for x in xs]
            grad_out = random_tensor((m, n), dtype, ctx.device)
            wrt = [layer.weight, layer.bias]

            def backward_only(rep: int) -> None:
                i = rep % rotate
                kept[i] = torch.autograd.grad(outs[i], [xs[i], *wrt], grad_out, retain_graph=True)

            timing = measure(backward_only, ctx.device, ctx.policy, ctx.deadline)
    work = flops(p, case.kernel)
    return timing.as_dict(), {
        "flops": work,
        "flops_per_s": work / timing.median_s if timing.median_s > 0 else None,
        "bytes_per_elem": elem,
        "rotating_inputs": rotate,
        "results_kept": rotate,
    }
