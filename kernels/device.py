"""Device helpers shared by the suites: dtypes, free memory, out-of-memory guard and error wording."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from kernels.timing import TimingPolicy

#: Fraction of the free memory a case may plan to use; the rest is left for the allocator and the OS.
MEMORY_HEADROOM = 0.8


class CaseFailed(Exception):
    """A case that cannot run here (unsupported dtype, does not fit); recorded with this message."""


@dataclass
class BenchContext:
    """What every case needs: the device, the timing policy, seeds, a deadline and loaded workloads.

    Args:
        device: ``"cpu"`` or ``"cuda:N"``.
        policy: warm-up and repetition caps.
        seed: base seed; each case derives its own from it.
        deadline: ``time.monotonic()`` instant after which timing loops stop early (None: no limit).
        workloads: workload name -> workload object, for the dlrm suite.
        rotate: number of distinct input sets cycled through per case.
        quick: quick mode (smaller DLRM step counts).
    """

    device: str = "cpu"
    policy: TimingPolicy = field(default_factory=TimingPolicy)
    seed: int = 0
    deadline: float | None = None
    workloads: dict[str, Any] = field(default_factory=dict)
    rotate: int = 4
    quick: bool = False

    @property
    def is_cuda(self) -> bool:
        """True for a CUDA device."""
        return self.device.startswith("cuda")


#: Elements of the random block :func:`random_tensor` repeats over large CPU tensors.
RANDOM_BLOCK = 1 << 16


def random_tensor(shape: tuple[int, ...], dtype: Any, device: str, scale: float = 1.0,
                  requires_grad: bool = False) -> Any:
    """A tensor of standard-normal values times ``scale``, of this shape, dtype and device.

    On a CPU a block of :data:`RANDOM_BLOCK` normal values is drawn and repeated over larger tensors:
    a kernel's time does not depend on the values, and drawing every value of a 4096x4096 input took
    a fifth of a GEMM case's wall time (1.2 s of the quick GEMM suite); GPUs draw them all.
    """
    import math

    import torch

    numel = math.prod(shape)
    if str(device).startswith("cuda") or numel <= RANDOM_BLOCK:
        out = torch.randn(*shape, device=device, dtype=dtype)
    else:
        block = torch.randn(RANDOM_BLOCK, device=device, dtype=dtype)
        out = block.repeat(-(-numel // RANDOM_BLOCK))[:numel].view(*shape)
    if scale != 1.0:
        out.mul_(scale)
    return out.requires_grad_(requires_grad)


def torch_dtype(name: str) -> Any:
    """The torch storage dtype of a record dtype (tf32 is stored as fp32)."""
    import torch

    return {"fp32": torch.float32, "tf32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[name]


def bytes_per_elem(name: str) -> int:
    """Bytes per element of a record dtype."""
    return 2 if name in ("bf16", "fp16") else 4


class MatmulPrecision:
    """Context enabling TF32 matmuls on CUDA for dtype ``tf32``; TF32 on a CPU raises :class:`CaseFailed`."""

    def __init__(self, dtype: str, device: str) -> None:
        self.dtype = dtype
        self.device = device
        self._saved: tuple[bool, bool] | None = None

    def __enter__(self) -> MatmulPrecision:
        import torch

        if self.dtype == "tf32":
            if not self.device.startswith("cuda"):
                raise CaseFailed("unsupported: tf32 is a GPU tensor-core mode; CPU matmuls have no TF32")
            self._saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        elif self.device.startswith("cuda"):
            self._saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
        return self

    def __exit__(self, *exc: Any) -> None:
        import torch

        if self._saved is not None:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = self._saved


def host_available_bytes() -> int:
    """Host memory available to new allocations (``MemAvailable``), in bytes."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 8 * 1024**3


def available_bytes(device: str) -> int:
    """Free memory on ``device`` in bytes (CUDA: ``mem_get_info``; CPU: ``MemAvailable``)."""
    if device.startswith("cuda"):
        import torch

        free, _ = torch.cuda.mem_get_info(torch.device(device))
        return int(free)
    return host_available_bytes()


def require_memory(needed_bytes: float, device: str) -> None:
    """Raise :class:`CaseFailed` ("out of memory") when a case would need more than the headroom allows.

    Checking first keeps a case that cannot fit from being killed by the OS instead of failing cleanly.
    """
    free = available_bytes(device)
    if needed_bytes > MEMORY_HEADROOM * free:
        raise CaseFailed(
            f"out of memory: needs about {needed_bytes / 1e9:.2f} GB, {free / 1e9:.2f} GB free on {device}"
        )


def describe_error(exc: BaseException) -> str:
    """One-line description of a case failure for the record's ``error`` field."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    lowered = text.lower()
    if isinstance(exc, MemoryError) or "out of memory" in lowered or "can't allocate memory" in lowered:
        if not lowered.startswith("out of memory"):
            text = f"out of memory: {text}"
    elif isinstance(exc, CaseFailed):
        pass
    elif "not implemented for" in lowered or "unsupported" in lowered or "not supported" in lowered:
        if not lowered.startswith("unsupported"):
            text = f"unsupported: {text}"
    else:
        text = f"{type(exc).__name__}: {text}"
    return text[:500]


def release(device: str) -> None:
    """Return cached device memory between cases (CUDA) so one case's leftovers do not fail the next."""
    import gc

    gc.collect()
    if device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()


def synchronize(device: str) -> None:
    """Wait for queued device work (a no-op on CPUs)."""
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize(torch.device(device))
