"""The reference DLRM of DESIGN.md, built from a workload, and timing of its whole training steps.

The model is the standard DLRM: one ``EmbeddingBag(mode="sum", sparse=True)`` per table (``count``
repeats a table), a bottom MLP with ReLU after every layer, the interaction (``dot``: pairwise dot
products of the bottom output and the pooled embeddings, strictly lower triangle, concatenated with the
bottom output; ``cat``: concatenation; ``dcn``: DCNv2 cross layers ``x_{l+1} = x0 * (V(U x_l) + b) + x_l``
on the concatenation, low rank ``r`` or full rank when ``r`` is 0), a top MLP with ReLU except after the
last layer, and binary cross-entropy with logits.

``workload`` arguments are duck-typed (``planner.model.Workload``-shaped): only attributes are read and
nothing is imported from ``planner`` here, so the kernels package does not depend on planner internals.

Optimizers: dense parameters use ``torch.optim`` (SGD, Adagrad, Adam; ``rowwise_adagrad`` runs as
Adagrad on dense weights, and the result's ``note`` says so); embedding tables use SGD, Adagrad, SparseAdam
or the row-wise Adagrad of :mod:`kernels.optim` (sparse gradients, plain torch ops; FBGEMM's fused kernel is
not used).
"""

from __future__ import annotations

import os
from typing import Any

from kernels.indices import sample_indices
from kernels.malloc import pinned_settings
from kernels.timing import CPU_PASSES, TimingPolicy, measure

_LR = 0.01
#: Memory for the distinct training batches of a timed run (indices, dense features, labels).
BATCH_BUDGET_BYTES = 1 << 30


def _tables(workload: Any) -> list[tuple[int, int]]:
    """(rows, bag size) of every table, ``count`` expanded; bag size is round(pooling), at least 1."""
    out = []
    for table in workload.model.tables:
        bag = max(1, round(float(table.pooling)))
        for _ in range(int(getattr(table, "count", 1))):
            out.append((int(table.rows), bag))
    return out


def _interaction_width(workload: Any) -> int:
    m = workload.model
    features = len(_tables(workload)) + 1
    if m.interaction.kind == "dot":
        return int(m.embedding_dim + features * (features - 1) // 2)
    return int(m.bottom_mlp[-1] + (features - 1) * m.embedding_dim)


def _embedding_dtype(workload: Any) -> Any:
    import torch

    name = getattr(workload.training, "embedding_precision", "fp32") or "fp32"
    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}.get(name, torch.float32)


def build_reference_dlrm(workload: Any, device: str = "cpu") -> Any:
    """Build the reference DLRM (a ``torch.nn.Module``) of ``workload`` on ``device``.

    The module's ``forward(dense, sparse)`` takes ``dense`` of shape (batch, dense_features) and
    ``sparse``, a list with one int64 tensor of shape (batch, bag size) per table, and returns logits of
    shape (batch,). ``module.loss_fn`` is ``BCEWithLogitsLoss``; ``module.table_shapes`` lists
    (rows, bag size) per table.
    """
    import torch
    from torch import nn

    m = workload.model
    tables = _tables(workload)
    dim = int(m.embedding_dim)
    emb_dtype = _embedding_dtype(workload)

    def mlp(width_in: int, widths: Any, relu_last: bool) -> nn.Sequential:
        layers: list[nn.Module] = []
        current = width_in
        for i, width in enumerate(widths):
            layers.append(nn.Linear(current, int(width)))
            if relu_last or i < len(widths) - 1:
                layers.append(nn.ReLU())
            current = int(width)
        return nn.Sequential(*layers)

    class CrossNetwork(nn.Module):
        """DCNv2 cross layers: x_{l+1} = x0 * (V(U x_l) + b) + x_l (full rank when low_rank is 0)."""

        def __init__(self, width: int, layers: int, low_rank: int) -> None:
            super().__init__()
            if low_rank:
                self.u = nn.ModuleList(nn.Linear(width, low_rank, bias=False) for _ in range(layers))
                self.v = nn.ModuleList(nn.Linear(low_rank, width, bias=True) for _ in range(layers))
            else:
                self.u = nn.ModuleList(nn.Identity() for _ in range(layers))
                self.v = nn.ModuleList(nn.Linear(width, width, bias=True) for _ in range(layers))

        def forward(self, x0: Any) -> Any:
            x = x0
            for u, v in zip(self.u, self.v, strict=True):
                x = x0 * v(u(x)) + x
            return x

    class ReferenceDLRM(nn.Module):
        """DLRM: embedding bags + bottom MLP -> interaction -> top MLP -> logit."""

        def __init__(self) -> None:
            super().__init__()
            self.table_shapes = tables
            self.interaction_kind = m.interaction.kind
            self.embeddings = nn.ModuleList(
                nn.EmbeddingBag(rows, dim, mode="sum", sparse=True, dtype=emb_dtype) for rows, _ in tables
            )
            for emb in self.embeddings:
                bound = (1.0 / max(emb.num_embeddings, 1)) ** 0.5
                nn.init.uniform_(emb.weight, -bound, bound)
            self.bottom = mlp(int(m.dense_features), m.bottom_mlp, relu_last=True)
            width = _interaction_width(workload)
            self.cross = (
                CrossNetwork(width, int(m.interaction.cross_layers), int(m.interaction.low_rank))
                if m.interaction.kind == "dcn"
                else None
            )
            self.top = mlp(width, m.top_mlp, relu_last=False)
            self.loss_fn = nn.BCEWithLogitsLoss()
            features = len(tables) + 1
            rows, cols = torch.tril_indices(features, features, offset=-1)
            self.register_buffer("tril_rows", rows, persistent=False)
            self.register_buffer("tril_cols", cols, persistent=False)

        def forward(self, dense: Any, sparse: list[Any]) -> Any:
            x = self.bottom(dense)
            pooled = [emb(ids).to(x.dtype) for emb, ids in zip(self.embeddings, sparse, strict=True)]
            if self.interaction_kind == "dot":
                z = torch.stack([x, *pooled], dim=1)  # (batch, features, dim)
                products = torch.bmm(z, z.transpose(1, 2))
                flat = products[:, self.tril_rows, self.tril_cols]
                y = torch.cat([x, flat], dim=1)
            else:
                y = torch.cat([x, *pooled], dim=1)
                if self.cross is not None:
                    y = self.cross(y)
            return self.top(y).squeeze(-1)

    return ReferenceDLRM().to(device)


def make_optimizers(model: Any, optimizer: str, sparse_optimizer: str | None = None) -> tuple[list[Any], str]:
    """Dense and sparse optimizers for ``model``; returns (optimizers, note on any approximation)."""
    import torch

    sparse_name = sparse_optimizer or optimizer
    dense_params = [p for name, p in model.named_parameters() if not name.startswith("embeddings.")]
    sparse_params = [p for name, p in model.named_parameters() if name.startswith("embeddings.")]
    notes = []
    dense_opt = optimizer
    if optimizer == "rowwise_adagrad":
        dense_opt = "adagrad"
        notes.append("dense rowwise_adagrad run as Adagrad")
    dense_cls = {"sgd": torch.optim.SGD, "adagrad": torch.optim.Adagrad, "adam": torch.optim.Adam}[dense_opt]
    if sparse_name == "sgd":
        sparse = torch.optim.SGD(sparse_params, lr=_LR)
    elif sparse_name == "rowwise_adagrad":
        from kernels.optim import RowWiseAdagrad

        sparse = RowWiseAdagrad(sparse_params, lr=_LR)
    elif sparse_name == "adagrad":
        sparse = torch.optim.Adagrad(sparse_params, lr=_LR)
    elif sparse_name == "adam":
        sparse = torch.optim.SparseAdam(sparse_params, lr=_LR)
    else:
        raise ValueError(f"unknown optimizer {sparse_name!r}")
    return [dense_cls(dense_params, lr=_LR), sparse], "; ".join(notes)


def make_batches(workload: Any, batch_size: int, count: int, seed: int, device: str = "cpu") -> list[Any]:
    """``count`` distinct training batches (dense, sparse ids per table, labels) drawn with ``seed``.

    Ids follow the workload's access distribution (uniform or bounded Zipf with scattered hot ids).
    """
    import torch

    gen = torch.Generator().manual_seed(seed)
    access = workload.training.access
    kind = getattr(access, "kind", "uniform")
    exponent = float(getattr(access, "exponent", 0.0) or 0.0)
    batches = []
    for _ in range(count):
        dense = torch.rand(batch_size, int(workload.model.dense_features), generator=gen)
        sparse = [
            sample_indices(rows, batch_size * bag, kind, exponent, generator=gen)
            .view(batch_size, bag)
            .to(device)
            for rows, bag in _tables(workload)
        ]
        labels = torch.randint(0, 2, (batch_size,), generator=gen).float()
        batches.append((dense.to(device), sparse, labels.to(device)))
    return batches


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def _step_tensor_bytes(model: Any, batch: Any, precision: str, device: str) -> int:
    """Bytes of the activations autograd saves in one forward pass plus the gradients of one step."""
    import torch

    seen: dict[int, int] = {}

    def pack(tensor: Any) -> Any:
        if isinstance(tensor, torch.Tensor) and not isinstance(tensor, torch.nn.Parameter):
            try:
                key = tensor.untyped_storage().data_ptr()
                seen[key] = max(seen.get(key, 0), tensor.untyped_storage().nbytes())
            except RuntimeError:  # sparse or storage-less tensors
                pass
        return tensor

    dense, sparse, labels = batch
    model.zero_grad(set_to_none=True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), _Precision(precision, device):
        loss = model.loss_fn(model(dense, sparse).float(), labels)
    loss.backward()
    grads = 0
    for p in model.parameters():
        if p.grad is None:
            continue
        if p.grad.is_sparse:
            grads += p.grad._values().nbytes + p.grad._indices().nbytes
        else:
            grads += p.grad.nbytes
    model.zero_grad(set_to_none=True)
    return int(sum(seen.values()) + grads)


def _warm_up_runtime(device: str) -> None:
    """Run one tiny embedding bag and linear layer so torch's one-off allocations precede the RSS baseline."""
    import torch

    emb = torch.nn.EmbeddingBag(8, 4, mode="sum", sparse=True).to(device)
    lin = torch.nn.Linear(4, 4).to(device)
    lin(emb(torch.zeros(2, 1, dtype=torch.int64, device=device))).sum().backward()


def device_name(device: str) -> str:
    """Human name of ``device``: the CUDA device name or the CPU model."""
    if str(device).startswith("cuda"):
        import torch

        return str(torch.cuda.get_device_name(torch.device(device)))
    from kernels.env import cpu_model

    return cpu_model()


def state_bytes(model: Any, optimizers: list[Any]) -> int:
    """Bytes of the model's parameters plus every optimizer state tensor."""
    import torch

    total = sum(p.numel() * p.element_size() for p in model.parameters())
    for opt in optimizers:
        for per_param in opt.state.values():
            for value in per_param.values():
                if isinstance(value, torch.Tensor) and not value.is_sparse:
                    total += value.numel() * value.element_size()
    return int(total)


class _Precision:
    """Context for the workload's precision: autocast for bf16/fp16, TF32 matmuls for tf32 on CUDA."""

    def __init__(self, precision: str, device: str) -> None:
        self.precision = precision
        self.device_type = "cuda" if str(device).startswith("cuda") else "cpu"
        self._ctx: Any = None
        self._tf32: tuple[bool, bool] | None = None

    def __enter__(self) -> _Precision:
        import torch

        if self.precision in ("bf16", "fp16"):
            dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
            self._ctx = torch.autocast(self.device_type, dtype=dtype)
            self._ctx.__enter__()
        elif self.precision == "tf32" and self.device_type == "cuda":
            self._tf32 = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        return self

    def __exit__(self, *exc: Any) -> None:
        import torch

        if self._ctx is not None:
            self._ctx.__exit__(*exc)
        if self._tf32 is not None:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = self._tf32


def measure_training_steps(
    workload: Any,
    device: str = "cpu",
    steps: int = 20,
    warmup: int = 5,
    seed: int = 0,
    threads: int | None = None,
    batch_size: int | None = None,
    rotate: int | None = None,
    windows: int | None = None,
) -> dict[str, Any]:
    """Time whole training steps (forward, backward, optimizer update) of the reference DLRM.

    Args:
        workload: a ``planner.model.Workload`` (duck-typed).
        device: ``"cpu"`` or ``"cuda[:N]"``.
        steps: timed steps per window (exactly this many); the window with the lower median is kept,
            as the bench's passes do.
        windows: windows timed, one after another (default: as many as the bench's passes on a CPU,
            :data:`kernels.timing.CPU_PASSES`; 1 on a GPU).
        warmup: untimed steps first.
        seed: seeds the model initialisation and the generated batches.
        threads: CPU threads for torch (``torch.set_num_threads``); default: leave as is.
        batch_size: samples per step; default the workload's (global) batch size, on one device.
        rotate: distinct batches cycled through; default (None) a fresh batch for every step as in
            training (each embedding lookup then finds the table as a long run does, not a few hot batches
            in cache), as many as fit in ``BATCH_BUDGET_BYTES`` of index data.

    Returns:
        ``{median_s, p10_s, p90_s, reps, peak_memory_bytes, device_name, threads, batch_size, precision,
        optimizer, note, forward_s, state_bytes, rss_growth_bytes, malloc}``: per-step seconds; on GPUs
        ``peak_memory_bytes`` is the CUDA allocator's peak; on CPUs (no allocator statistics) it is counted
        from the tensors: parameters and optimizer state (``state_bytes``), plus the activations autograd
        saves in the forward pass and the gradients of one step. ``rss_growth_bytes`` is the growth of the
        process's resident set over the run (includes allocator slack and torch's own buffers).
    """
    import warnings

    import torch

    warnings.filterwarnings("ignore", message="Sparse invariant checks")
    if steps < 1:
        raise ValueError("steps must be at least 1")
    old_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(int(threads))
    cuda = str(device).startswith("cuda")
    windows_wanted = int(windows) if windows is not None else (1 if cuda else CPU_PASSES)
    if not cuda:
        from kernels.malloc import pin_steady_state

        pin_steady_state()  # the allocator state of a long run, as in the bench
    try:
        torch.manual_seed(seed)
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        _warm_up_runtime(device)
        rss_before = _rss_bytes()
        model = build_reference_dlrm(workload, device)
        training = workload.training
        optimizers, note = make_optimizers(
            model, training.optimizer, getattr(training, "sparse_optimizer", None)
        )
        batch = int(batch_size or training.batch_size)
        if rotate is None:
            lookups = sum(bag for _rows, bag in _tables(workload)) * batch
            per_batch = lookups * 8 + batch * (int(workload.model.dense_features) + 1) * 4
            rotate = max(4, min(warmup + 2 * steps, int(BATCH_BUDGET_BYTES // max(per_batch, 1))))
        batches = make_batches(workload, batch, max(1, rotate), seed + 1, device)
        precision = str(training.precision)
        rss_peak = [_rss_bytes()]

        def step(rep: int) -> None:
            dense, sparse, labels = batches[rep % len(batches)]
            for opt in optimizers:
                opt.zero_grad(set_to_none=True)
            with _Precision(precision, device):
                logits = model(dense, sparse)
                loss = model.loss_fn(logits.float(), labels)
            loss.backward()
            for opt in optimizers:
                opt.step()
            if not cuda:
                rss_peak[0] = max(rss_peak[0], _rss_bytes())

        def forward_only(rep: int) -> None:
            dense, sparse, _ = batches[rep % len(batches)]
            with torch.no_grad(), _Precision(precision, device):
                model(dense, sparse)

        from kernels.probe import speed_probe

        probes = [speed_probe(device)]
        policy = TimingPolicy(warmup=warmup, min_reps=steps, max_reps=steps, max_time_s=float("inf"))
        timed = [measure(step, device, policy)]
        fwd_steps = max(3, steps // 4)
        forward = measure(
            forward_only,
            device,
            TimingPolicy(warmup=1, min_reps=fwd_steps, max_reps=fwd_steps, max_time_s=float("inf")),
        )
        for _ in range(max(1, windows_wanted) - 1):  # as the bench's passes: keep the faster
            timed.append(measure(step, device, TimingPolicy(warmup=1, min_reps=steps, max_reps=steps,
                                                            max_time_s=float("inf"))))
        timing = min(timed, key=lambda t: t.median_s)
        probes.append(speed_probe(device))
        state = state_bytes(model, optimizers)
        rss_growth = max(0, rss_peak[0] - rss_before)
        accounted = state + _step_tensor_bytes(model, batches[0], precision, device)
        peak = int(torch.cuda.max_memory_allocated(device)) if cuda else accounted
        return {
            **timing.as_dict(),
            "peak_memory_bytes": peak,
            "device_name": device_name(device),
            "threads": int(torch.get_num_threads()),
            "batch_size": batch,
            "precision": precision,
            "optimizer": str(training.optimizer),
            "note": note,
            "forward_s": forward.median_s,
            "state_bytes": state,
            "rss_growth_bytes": rss_growth,
            "malloc": pinned_settings(),
            "window_medians_s": [w.median_s for w in timed],
            "distinct_batches": len(batches),
            "speed_probe": probes,
        }
    finally:
        if threads is not None:
            torch.set_num_threads(old_threads)
