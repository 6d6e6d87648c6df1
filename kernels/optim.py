"""Row-wise Adagrad for sparse embedding gradients (torch has none): one accumulator per row.

``state[row] += mean(grad[row]^2)``; ``weight[row] -= lr * grad[row] / (sqrt(state[row]) + eps)``, the
update FBGEMM's fused ``rowwise_adagrad`` applies, here as plain torch ops on the touched rows only.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1)
def rowwise_adagrad_class() -> Any:
    """The ``RowWiseAdagrad`` optimizer class (defined on first use so importing kernels needs no torch)."""
    import torch

    class RowWiseAdagrad(torch.optim.Optimizer):
        """Row-wise Adagrad over sparse (or dense) gradients of 2-D embedding weights."""

        def __init__(self, params: Any, lr: float = 0.01, eps: float = 1e-8) -> None:
            super().__init__(params, {"lr": lr, "eps": eps})

        @torch.no_grad()
        def step(self, closure: Any = None) -> Any:
            """Apply one update to every parameter that has a gradient."""
            loss = closure() if closure is not None else None
            for group in self.param_groups:
                lr, eps = group["lr"], group["eps"]
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    state = self.state[p]
                    if "sum" not in state:
                        state["sum"] = torch.zeros(p.shape[0], dtype=torch.float32, device=p.device)
                    grad = p.grad
                    if grad.is_sparse:
                        grad = grad.coalesce()
                        rows = grad.indices()[0]
                        values = grad.values().float()
                    else:
                        rows = torch.arange(p.shape[0], device=p.device)
                        values = grad.float()
                    acc = state["sum"].index_add_(0, rows, values.pow(2).mean(dim=1))
                    scale = lr / (acc.index_select(0, rows).sqrt_().add_(eps))
                    p.index_add_(0, rows, (values * -scale.unsqueeze(1)).to(p.dtype))
            return loss

    return RowWiseAdagrad


def RowWiseAdagrad(params: Any, lr: float = 0.01, eps: float = 1e-8) -> Any:
    """Build a row-wise Adagrad optimizer over ``params`` (learning rate ``lr``)."""
    return rowwise_adagrad_class()(params, lr=lr, eps=eps)
