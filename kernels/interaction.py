"""Interaction suite: DLRM's dot interaction and a DCNv2 cross layer, forward and backward.

Dot: ``Z`` (batch, features, dim) -> ``bmm(Z, Zᵀ)`` -> strictly-lower-triangle gather, (batch, F(F-1)/2).
DCN: ``x0 * (V(U x) + b) + x`` with ``U`` (width x low_rank) and ``V`` (low_rank x width); full rank
(``W x`` with a width x width ``W``) when ``low_rank`` is 0. Backward is timed on a retained graph with
``torch.autograd.grad`` (inputs and weights), so it excludes the forward. The results of the last calls
stay alive, one per input, as in a training step (see :mod:`kernels.gemm`).
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


def run(case: Case, ctx: BenchContext) -> tuple[dict[str, Any], dict[str, Any]]:
    """Measure one interaction case; returns (timing, extra)."""
    import torch

    p = case.params
    elem = bytes_per_elem(case.dtype)
    dtype = torch_dtype(case.dtype)
    backward = case.kernel.endswith("_backward")
    rotate = max(1, ctx.rotate)
    torch.manual_seed(ctx.seed)
    extra: dict[str, Any] = {"bytes_per_elem": elem, "rotating_inputs": rotate, "results_kept": rotate}
    with MatmulPrecision(case.dtype, ctx.device):
        if case.kernel.startswith("dot_"):
            b, f, d = p["batch"], p["features"], p["dim"]
            require_memory(elem * b * (2 * rotate * f * d + (rotate + 3) * f * f + f * d), ctx.device)
            rows, cols = torch.tril_indices(f, f, offset=-1, device=ctx.device)
            inputs = [
                random_tensor((b, f, d), dtype, ctx.device, requires_grad=backward)
                for _ in range(rotate)
            ]
            weights: list[Any] = []

            def op(x: Any) -> Any:
                return torch.bmm(x, x.transpose(1, 2))[:, rows, cols]

            extra["flops_forward"] = 2.0 * b * f * f * d
        else:
            b, w, r = p["batch"], p["width"], p["low_rank"]
            weights_elems = 2 * w * max(r, 1) + w * w * (r == 0)
            require_memory(elem * (b * w * (3 * rotate + 6) + weights_elems), ctx.device)
            if r:
                u = random_tensor((w, r), dtype, ctx.device, scale=w**-0.5)
                v = random_tensor((r, w), dtype, ctx.device, scale=r**-0.5)
                weights = [u, v]
            else:
                full = random_tensor((w, w), dtype, ctx.device, scale=w**-0.5)
                weights = [full]
            bias = torch.zeros(w, device=ctx.device, dtype=dtype)
            weights.append(bias)
            for t in weights:
                t.requires_grad_(backward)
            inputs = [
                random_tensor((b, w), dtype, ctx.device, requires_grad=backward)
                for _ in range(rotate)
            ]

            def op(x: Any) -> Any:
                proj = (x @ weights[0] @ weights[1]) if r else (x @ weights[0])
                return x * (proj + bias) + x

            extra["flops_forward"] = 2.0 * b * w * (2 * r if r else w)
        kept: list[Any] = [None] * rotate  # the last results, alive as in a training step
        if not backward:

            def forward(rep: int) -> None:
                with torch.no_grad():
                    kept[rep % rotate] = op(inputs[rep % rotate])

            timing = measure(forward, ctx.device, ctx.policy, ctx.deadline)
        else:
            outs = [op(x) for x in inputs]
            grad_out = random_tensor(tuple(outs[0].shape), dtype, ctx.device)

            def backward_only(rep: int) -> None:
                i = rep % rotate
                kept[i] = torch.autograd.grad(outs[i], [inputs[i], *weights], grad_out, retain_graph=True)

            timing = measure(backward_only, ctx.device, ctx.policy, ctx.deadline)
    return timing.as_dict(), extra
