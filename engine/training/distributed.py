"""Process-group helpers for DDP runs under `torchrun`; every helper is a no-op in a plain single process.

torchrun sets RANK / WORLD_SIZE / LOCAL_RANK (+ MASTER_ADDR / MASTER_PORT); without them `init()` does
nothing and `is_distributed()` stays False, so normal runs take exactly the code path they always took.
Rank 0 is the only rank that talks to the database, validates, writes checkpoints and reports progress;
its decisions reach the other ranks through `decide_on_main` / `run_on_main`, so no rank ever waits on a
collective the others skipped.
"""
from __future__ import annotations

import logging
import os
import pickle
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import TypeVar

import torch
import torch.distributed as dist
from torch import nn

log = logging.getLogger("medssl.distributed")
T = TypeVar("T")
ENV_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK")
FAILED = -1  # decide_on_main: rank 0 raised; the exception follows


def launched_by_torchrun() -> bool:
    return all(name in os.environ for name in ENV_VARS)


def backend_for(device: str | None) -> str:
    """nccl when the run uses CUDA, gloo on CPU (and wherever NCCL is missing)."""
    use_cuda = device != "cpu" and torch.cuda.is_available() and dist.is_nccl_available()
    return "nccl" if use_cuda else "gloo"


def init(device: str | None = None) -> bool:
    """Join torchrun's process group (env:// rendezvous); False, doing nothing, when not under torchrun."""
    if not launched_by_torchrun() or not dist.is_available():
        return False
    if dist.is_initialized():
        return True
    backend = backend_for(device)
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))  # plain "cuda" tensors land on this rank's GPU
    # rank 0 validates alone while the others wait in a collective: allow for a long validation pass
    minutes = float(os.environ.get("MEDSSL_DDP_TIMEOUT_MINUTES", "60"))
    dist.init_process_group(backend=backend, timeout=timedelta(minutes=minutes))
    log.info("rank %d/%d joined the process group (%s)", rank(), world_size(), backend)
    return True


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def local_world_size() -> int:
    return int(os.environ.get("LOCAL_WORLD_SIZE", world_size())) if is_distributed() else 1


def is_main() -> bool:
    return rank() == 0


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def _device() -> torch.device:
    """Where collective tensors live: this rank's GPU under nccl, CPU under gloo."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def broadcast_int(value: int, src: int = 0) -> int:
    """Rank `src`'s value on every rank (one tiny collective)."""
    if not is_distributed():
        return int(value)
    tensor = torch.tensor([int(value)], dtype=torch.int64, device=_device())
    dist.broadcast(tensor, src)
    return int(tensor.item())


def any_true(flag: bool) -> bool:
    """True on every rank when it is True on any rank."""
    if not is_distributed():
        return bool(flag)
    tensor = torch.tensor([int(flag)], dtype=torch.int64, device=_device())
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item())


def _portable(error: Exception) -> Exception:
    try:
        pickle.dumps(error)
        return error
    except Exception:  # noqa: BLE001 -- an unpicklable exception still has to reach the other ranks
        return RuntimeError(f"rank 0 failed: {error!r}")


def _raise_from_main(error: Exception | None) -> None:
    box = [_portable(error) if error is not None else None]
    dist.broadcast_object_list(box, src=0)
    raise error if error is not None else box[0]


def decide_on_main(decide: Callable[[], int]) -> int:
    """decide() on rank 0 only, its non-negative int result on every rank (one small collective per call).

    An exception raised there (a cancel, a database error) is re-raised on every rank, so all stop together.
    """
    if not is_distributed():
        return decide()
    code, error = 0, None
    if is_main():
        try:
            code = int(decide())
        except Exception as exc:  # noqa: BLE001 -- re-raised below, on every rank
            code, error = FAILED, exc
    code = broadcast_int(code)
    if code == FAILED:
        _raise_from_main(error)
    return code


def run_on_main(func: Callable[[], T]) -> T:
    """func() on rank 0 only; its (picklable) result is sent to every rank, its exception raised on every rank."""
    if not is_distributed():
        return func()
    box: list = [None]
    error = None
    if is_main():
        try:
            box = [(True, func())]
        except Exception as exc:  # noqa: BLE001 -- re-raised below, on every rank
            error, box = exc, [(False, _portable(exc))]
    dist.broadcast_object_list(box, src=0)
    ok, value = box[0]
    if not ok:
        raise error if error is not None else value
    return value


def average_gradients_(params: Iterable[nn.Parameter]) -> None:
    """Mean of .grad over ranks, for trainable tensors DDP does not own (e.g. a method's projection head)."""
    if not is_distributed():
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world_size()
    offset = 0
    for grad in grads:
        grad.copy_(flat[offset: offset + grad.numel()].view_as(grad))
        offset += grad.numel()


@torch.no_grad()
def sync_from_main_(module: nn.Module) -> None:
    """Copy rank 0's parameters and buffers into every rank (teachers, queues and BN stats drift per rank)."""
    if not is_distributed():
        return
    for tensor in [*module.parameters(), *module.buffers()]:
        dist.broadcast(tensor.data, 0)


def wrap_ddp(module: nn.Module, device: torch.device) -> nn.Module:
    """DistributedDataParallel around `module`; rank 0's weights are broadcast to all ranks here."""
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" \
        else None
    return DistributedDataParallel(module, device_ids=ids)
