"""torch.distributed for metrics and training: the process group from torchrun's variables, sharding by chunk,
sums all-reduced, per-chunk values gathered, gradients averaged."""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import os
from datetime import timedelta

import torch
import torch.distributed as dist

from stylegan_core.errors import InputError

ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
_ALONE = contextvars.ContextVar("stylegan_metrics_alone", default=False)  # inside `alone()`


@contextlib.contextmanager
def alone(enabled: bool = True):
    """Within it (when `enabled`) this process acts as a world of one: no sharding, no collective calls,
    files written here. For a library caller that runs a metric on one rank only (`if rank == 0: fid(...)`)."""
    token = _ALONE.set(_ALONE.get() or enabled)
    try:
        yield
    finally:
        _ALONE.reset(token)


def _in_group() -> bool:
    return dist.is_available() and dist.is_initialized() and not _ALONE.get()


def rank() -> int:
    return dist.get_rank() if _in_group() else 0


def world_size() -> int:
    return dist.get_world_size() if _in_group() else 1


def gpus_used(device: torch.device) -> int:
    """GPUs working on this run: one per process on CUDA, none on the CPU."""
    return world_size() if device.type == "cuda" else 0


def is_main() -> bool:
    return rank() == 0


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_from_env(device: torch.device) -> torch.device:
    """Join the group that torchrun (or `--gpus N`) described in the environment; returns this rank's device.

    NCCL on CUDA (one GPU per process: cuda:LOCAL_RANK), gloo on the CPU. Without WORLD_SIZE > 1 this is a
    single-process run and `device` comes back unchanged."""
    if _ALONE.get():
        return device
    if not launched_by_torchrun() or dist.is_initialized():
        return _rank_device(device)
    missing = [k for k in ENV if k not in os.environ]
    if missing:
        raise InputError(f"WORLD_SIZE > 1 but {', '.join(missing)} not set: launch with torchrun or --gpus N")
    device = _rank_device(device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=timedelta(hours=2))
    atexit.register(_leave_group)  # a group left to the interpreter's teardown can abort the process (SIGABRT)
    return device


def _leave_group() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def _rank_device(device: torch.device) -> torch.device:
    if device.type != "cuda" or not launched_by_torchrun():
        return device
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if local >= torch.cuda.device_count():
        raise InputError(f"process {local} needs cuda:{local} but only {torch.cuda.device_count()} GPUs are visible")
    return torch.device("cuda", local)


def my_chunks(num_chunks: int) -> range:
    """Chunks of this rank: c with c % world_size == rank (each chunk is one fixed range of sample indices)."""
    return range(rank(), num_chunks, world_size())


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """In place on every rank; a no-op in a single process. gloo and NCCL both reduce float64."""
    if world_size() == 1:
        return tensor
    if dist.get_backend() == "nccl" and tensor.device.type != "cuda":  # NCCL reduces GPU tensors only
        on_gpu = tensor.cuda()
        dist.all_reduce(on_gpu, op=dist.ReduceOp.SUM)
        return tensor.copy_(on_gpu)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def average_(tensor: torch.Tensor) -> torch.Tensor:
    """In place: the mean of `tensor` over the ranks (running statistics such as w_avg)."""
    if world_size() > 1:
        all_reduce_sum(tensor).div_(world_size())
    return tensor


def average_gradients(params) -> None:
    """Every gradient replaced by its mean over the ranks (one all-reduce). Parameters without a gradient keep
    none, so Adam skips them as in a single process; which ones have one is the same on every rank."""
    if world_size() == 1:
        return
    params = [p for p in params if p.grad is not None]
    if not params:
        return
    flat = torch.cat([p.grad.reshape(-1) for p in params])
    average_(flat)
    offset = 0
    for p in params:
        p.grad.copy_(flat[offset:offset + p.numel()].view_as(p.grad))
        offset += p.numel()


def all_gather_chunks(mine: dict[int, object]) -> dict[int, object]:
    """Every rank's {chunk index: value} merged on every rank."""
    if world_size() == 1:
        return dict(mine)
    parts: list[dict[int, object] | None] = [None] * world_size()
    dist.all_gather_object(parts, mine)
    return _merge(parts)


def all_agree(flag: bool) -> bool:
    """Whether `flag` holds on every rank (a collective: every rank must call it). Decisions that lead to collective
    calls, such as using a cache instead of a pass, are taken together, or a rank that decided alone would wait."""
    return all(all_gather_chunks({rank(): bool(flag)}).values())


def gather_chunks_to_main(mine: dict[int, object]) -> dict[int, object]:
    """Every rank's {chunk index: value} merged on rank 0; other ranks get {}."""
    if world_size() == 1:
        return dict(mine)
    parts: list[dict[int, object] | None] | None = [None] * world_size() if is_main() else None
    dist.gather_object(mine, parts, dst=0)
    return _merge(parts or [])


def _merge(parts: list[dict[int, object] | None]) -> dict[int, object]:
    merged: dict[int, object] = {}
    for part in parts:
        merged.update(part or {})
    return merged


def broadcast_from_main(value: object) -> object:
    """Rank 0's `value` on every rank."""
    if world_size() == 1:
        return value
    box = [value if is_main() else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()
