"""Collective suite: all-to-all (equal and unequal splits), all-reduce, all-gather and reduce-scatter
through ``torch.distributed`` (gloo on CPUs, NCCL on GPUs).

On one machine :func:`run_spawned` starts ``world_size`` processes (``torch.multiprocessing`` spawn, a free
port on 127.0.0.1); under ``torchrun`` (several nodes) :func:`run_group` runs on the group torchrun made.
Rank 0 decides, case by case, whether to run, skip (already measured) or stop (time budget), and
broadcasts the decision so every rank issues the same collectives.

Timing: a warm-up, one probe call to pick the repetition count (same on every rank: as many as fit the
policy's time window, at least three), a barrier, then
per-call ``perf_counter`` times (after a CUDA synchronise on GPUs); the per-call time is the maximum
over ranks (the slowest rank sets the pace), summarised as median, p10 and p90.

Sizes follow nccl-tests: ``params.bytes`` is each rank's input buffer; algbw = S / t with S the buffer
nccl-tests reports (the gathered output for all-gather, the input otherwise); busbw = algbw x 2(n-1)/n
for all-reduce and (n-1)/n for the others.
"""

from __future__ import annotations

import os
import queue as queue_module
import socket
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from kernels.device import CaseFailed, describe_error
from kernels.specs import Case
from kernels.timing import Timing, TimingPolicy, summarize

#: Seconds without any message from the workers before the parent gives up on them.
WORKER_SILENCE_S = 180.0
_RUN, _SKIP, _STOP = 1, 2, 0
#: Fewest timed calls of a collective case, however long one call takes.
MIN_COLLECTIVE_REPS = 3


def bus_factor(kernel: str, world_size: int) -> float:
    """nccl-tests bus-bandwidth factor: 2(n-1)/n for all-reduce, (n-1)/n for the other collectives."""
    n = max(1, world_size)
    return 2.0 * (n - 1) / n if kernel == "all_reduce" else (n - 1) / n


def algbw_bytes(kernel: str, per_rank_bytes: int, world_size: int) -> int:
    """The size nccl-tests divides by the time: the gathered output for all-gather, else the input."""
    return per_rank_bytes * world_size if kernel == "all_gather" else per_rank_bytes


def bandwidths(kernel: str, per_rank_bytes: int, world_size: int, seconds: float) -> dict[str, float | None]:
    """``algbw_bytes_per_s`` and ``busbw_bytes_per_s`` of one call taking ``seconds``."""
    if seconds <= 0:
        return {"algbw_bytes_per_s": None, "busbw_bytes_per_s": None}
    alg = algbw_bytes(kernel, per_rank_bytes, world_size) / seconds
    return {"algbw_bytes_per_s": alg, "busbw_bytes_per_s": alg * bus_factor(kernel, world_size)}


def unequal_splits(world_size: int, rank: int, unit: int) -> list[int]:
    """Element counts rank ``rank`` sends to each peer: ``unit x (1 + (rank + peer) mod n)``.

    The weight is symmetric in (rank, peer), so what a rank receives from each peer equals what it sends to
    it, and every rank sends the same total: ``unit x n(n+1)/2``.
    """
    return [unit * (1 + (rank + peer) % world_size) for peer in range(world_size)]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _prepare(case: Case, device: str, rotate: int) -> tuple[Callable[[int], None], dict[str, Any]]:
    """Buffers and the call of one case on this rank; returns (op(rep), extra)."""
    import torch
    import torch.distributed as dist

    world = dist.get_world_size()
    rank = dist.get_rank()
    kernel = case.kernel
    numel = max(world, case.params["bytes"] // 4)
    numel -= numel % world  # reduce-scatter and equal all-to-all split the buffer evenly
    extra: dict[str, Any] = {"elements_per_rank": numel}

    def buf(n: int) -> Any:
        return torch.ones(n, dtype=torch.float32, device=device)

    if kernel in ("all_to_all", "all_to_all_unequal"):
        if kernel == "all_to_all":
            splits = [numel // world] * world
        else:
            unit = max(1, numel // (world * (world + 1) // 2))
            splits = unequal_splits(world, rank, unit)
            extra["split_elements"] = splits
        total = sum(splits)
        ins = [buf(total) for _ in range(rotate)]
        outs = [buf(total) for _ in range(rotate)]
        extra["elements_per_rank"] = total
        try:
            dist.all_to_all_single(outs[0], ins[0], splits, splits)
            extra["implementation"] = "torch.distributed.all_to_all_single"

            def op(rep: int) -> None:
                i = rep % rotate
                dist.all_to_all_single(outs[i], ins[i], splits, splits)
        except (RuntimeError, NotImplementedError):
            extra["implementation"] = "pairwise isend/irecv (backend lacks all_to_all)"

            def op(rep: int) -> None:
                i = rep % rotate
                send = list(torch.split(ins[i], splits))
                recv = list(torch.split(outs[i], splits))
                recv[rank].copy_(send[rank])
                ops = [dist.P2POp(dist.isend, send[p], p) for p in range(world) if p != rank]
                ops += [dist.P2POp(dist.irecv, recv[p], p) for p in range(world) if p != rank]
                for req in dist.batch_isend_irecv(ops):
                    req.wait()

    elif kernel == "all_reduce":
        bufs = [buf(numel) for _ in range(rotate)]
        extra["implementation"] = "torch.distributed.all_reduce (sum)"

        def op(rep: int) -> None:
            dist.all_reduce(bufs[rep % rotate])

    elif kernel == "all_gather":
        ins = [buf(numel) for _ in range(rotate)]
        outs = [buf(numel * world) for _ in range(rotate)]
        extra["implementation"] = "torch.distributed.all_gather_into_tensor"

        def op(rep: int) -> None:
            i = rep % rotate
            dist.all_gather_into_tensor(outs[i], ins[i])

    elif kernel == "reduce_scatter":
        ins = [buf(numel) for _ in range(rotate)]
        outs = [buf(numel // world) for _ in range(rotate)]
        extra["implementation"] = "torch.distributed.reduce_scatter_tensor (sum)"

        def op(rep: int) -> None:
            i = rep % rotate
            dist.reduce_scatter_tensor(outs[i], ins[i])

    else:
        raise CaseFailed(f"unsupported: collective {kernel!r}")
    return op, extra


def _time_case(
    case: Case, device: str, policy: TimingPolicy, deadline_wall: float | None
) -> tuple[Timing, dict]:
    import torch
    import torch.distributed as dist

    cuda = device.startswith("cuda")

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize(torch.device(device))

    rotate = 2 if case.params["bytes"] <= 64 * 1024 * 1024 else 1
    op, extra = _prepare(case, device, rotate)
    for rep in range(max(1, policy.warmup)):
        op(rep)
    sync()
    probe = time.perf_counter()
    op(0)
    sync()
    elapsed = torch.tensor([time.perf_counter() - probe], dtype=torch.float64, device=device)
    dist.all_reduce(elapsed, op=dist.ReduceOp.MAX)
    per_call = max(float(elapsed.item()), 1e-7)
    # as many calls as fill the policy's time window (capped at max_reps), never fewer than
    # MIN_COLLECTIVE_REPS: a median needs a few calls
    reps = int(min(policy.max_reps, max(policy.max_time_s / per_call, MIN_COLLECTIVE_REPS)))
    if deadline_wall is not None and time.time() > deadline_wall:
        reps = min(reps, policy.min_reps)
    dist.barrier()
    samples = []
    for rep in range(reps):
        start = time.perf_counter()
        op(rep)
        sync()
        samples.append(time.perf_counter() - start)
    slowest = torch.tensor(samples, dtype=torch.float64, device=device)
    dist.all_reduce(slowest, op=dist.ReduceOp.MAX)
    timing = summarize([float(x) for x in slowest.cpu().tolist()])
    extra["timing_method"] = "per-call perf_counter, max over ranks"
    extra.update(bandwidths(case.kernel, case.params["bytes"], dist.get_world_size(), timing.median_s))
    return timing, extra


def run_group(
    cases: list[Case],
    device: str,
    policy: TimingPolicy,
    deadline_wall: float | None,
    report: Callable[[tuple], None],
    skip_ids: set[str] | None = None,
) -> None:
    """Run ``cases`` on the current process group; rank 0 ``report``s ``("result", case_id, timing,
    error, extra)`` per case. Every rank must call this with the same case list."""
    import torch
    import torch.distributed as dist

    rank = dist.get_rank()
    skip_ids = skip_ids or set()
    flag_device = device if device.startswith("cuda") else "cpu"
    for case in cases:
        decision = _RUN
        if rank == 0:
            if case.case_id in skip_ids:
                decision = _SKIP
            elif deadline_wall is not None and time.time() >= deadline_wall:
                decision = _STOP
        flag = torch.tensor([decision], dtype=torch.int64, device=flag_device)
        dist.broadcast(flag, src=0)
        decision = int(flag.item())
        if decision == _STOP:
            break
        if decision == _SKIP:
            continue
        report(("start", case.case_id))
        try:
            timing, extra = _time_case(case, device, policy, deadline_wall)
            report(("result", case.case_id, timing.as_dict(), None, extra))
        except Exception as exc:
            report(("result", case.case_id, None, describe_error(exc), {}))
            if device.startswith("cuda"):
                torch.cuda.empty_cache()


def _spawn_worker(
    rank: int,
    world: int,
    port: int,
    backend: str,
    device_kind: str,
    cases: list[Case],
    policy: TimingPolicy,
    deadline_wall: float | None,
    results: Any,
) -> None:
    import warnings

    import torch
    import torch.distributed as dist

    warnings.filterwarnings("ignore", message=r".*torch\.distributed\.\w+` is deprecated")
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)
    device = f"cuda:{rank}" if device_kind == "cuda" else "cpu"
    if device_kind == "cuda":
        torch.cuda.set_device(rank)

    def report(message: tuple) -> None:
        if rank == 0:
            results.put(message)

    try:
        dist.init_process_group(backend, rank=rank, world_size=world, timeout=timedelta(seconds=120))
        run_group(cases, device, policy, deadline_wall, report)
        report(("done",))
    except KeyboardInterrupt:
        return
    except Exception as exc:
        report(("fatal", describe_error(exc)))
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def run_spawned(
    cases: list[Case],
    world_size: int,
    backend: str,
    device_kind: str,
    policy: TimingPolicy,
    deadline_wall: float | None,
    on_result: Callable[[Case, dict | None, str | None, dict], None],
    on_start: Callable[[Case], None] | None = None,
) -> None:
    """Run ``cases`` (all with this ``world_size``) in ``world_size`` local processes.

    ``on_result(case, timing, error, extra)`` is called in this process as each case finishes; cases
    left unrun when a worker dies are reported with the worker's error. Interrupting (Ctrl-C) stops the
    workers and re-raises.
    """
    import torch.multiprocessing as mp

    if not cases:
        return
    by_id = {c.case_id: c for c in cases}
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    port = free_port()
    procs = [
        ctx.Process(
            target=_spawn_worker,
            daemon=True,
            args=(r, world_size, port, backend, device_kind, cases, policy, deadline_wall, results),
        )
        for r in range(world_size)
    ]
    for proc in procs:
        proc.start()
    finished: set[str] = set()
    current: str | None = None
    fatal: str | None = None
    last_message = time.monotonic()
    try:
        while True:
            try:
                message = results.get(timeout=0.5)
            except queue_module.Empty:
                dead = [p for p in procs if p.exitcode not in (None, 0)]
                silent = time.monotonic() - last_message > WORKER_SILENCE_S
                if dead or silent or all(p.exitcode is not None for p in procs):
                    if dead or silent:
                        fatal = fatal or (
                            f"collective worker exited with code {dead[0].exitcode}"
                            if dead
                            else f"collective workers silent for {WORKER_SILENCE_S:.0f} s"
                        )
                    break
                continue
            last_message = time.monotonic()
            kind = message[0]
            if kind == "start":
                current = message[1]
                if on_start is not None:
                    on_start(by_id[current])
            elif kind == "result":
                _, cid, timing, error, extra = message
                finished.add(cid)
                current = None
                on_result(by_id[cid], timing, error, extra)
            elif kind == "fatal":
                fatal = message[1]
                break
            elif kind == "done":
                break
    finally:
        for proc in procs:
            proc.join(timeout=5)
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5)
    if fatal is not None and current is not None and current not in finished:
        on_result(by_id[current], None, fatal, {})
    elif fatal is not None and not finished:
        # Setting up the group failed: nothing ran; record the reason on the first case only, so a
        # resumed run can try the others again.
        on_result(cases[0], None, fatal, {})
