"""torchrun / DistributedDataParallel: one process per device, set up in one place.

Launched by `torchrun` (which sets RANK, WORLD_SIZE, LOCAL_RANK and the rendezvous address),
`init_distributed` gives every process its own device and joins the process group: NCCL on GPUs,
gloo on CPUs. Started without torchrun (or with one process), it is `select_device` and the run
is the single-process one (CPU, one GPU, or the original's DataParallel over `--gpu 0-3`).

Process `LOCAL_RANK` uses the `LOCAL_RANK`-th GPU of `--gpu` (all visible GPUs without it), and
binds to it with `torch.cuda.set_device` before anything touches CUDA, so that `--gpu 2` opens no
context on GPU 0.
"""
from __future__ import annotations

import contextlib
import datetime
import logging
import os
from dataclasses import dataclass
from typing import Any, Iterator, List, Optional, Tuple

import torch
import torch.distributed as dist

from common.runtime.device import GPU_FORMS, parse_gpu_ids, select_device
from common.errors import UsageError

logger = logging.getLogger("integral_action.distributed")

# torchrun's variables; all of them are set in a process it started.
_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the run: rank among `world_size` processes, `local_rank` on its
    node. The single-process run is `DistInfo()`."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        """A process group exists (torchrun with more than one process)."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes logs, snapshots and results."""
        return self.rank == 0


def torchrun_env() -> Optional[DistInfo]:
    """The rank, world size and local rank torchrun set, or None outside torchrun."""
    if not all(name in os.environ for name in _ENV):
        return None
    try:
        return DistInfo(*(int(os.environ[name]) for name in _ENV))
    except ValueError:
        raise UsageError("torchrun's RANK, WORLD_SIZE and LOCAL_RANK must be integers, got "
                         + ", ".join(f"{n}={os.environ[n]!r}" for n in _ENV)) from None


def init_distributed(gpu_ids: Optional[str], backend: Optional[str] = None
                     ) -> Tuple[DistInfo, torch.device, List[int]]:
    """Set up this process: (its place in the run, its device, the GPU ids it spreads over).

    Args:
        gpu_ids: the `--gpu` value (see `common.runtime.device.parse_gpu_ids`).
        backend: 'nccl', 'gloo' or None (nccl on GPUs, gloo on the CPU).

    Raises:
        UsageError: `--gpu` names fewer GPUs than torchrun started processes per node, or GPUs
            that are not there; NCCL asked for on the CPU.
    """
    info = torchrun_env()
    if info is None or info.world_size == 1:
        device, ids = select_device(gpu_ids)
        if device.type == "cuda":
            torch.cuda.set_device(device)  # stray allocations go to this GPU, not GPU 0
        return DistInfo(), device, ids

    chose_cpu = gpu_ids is not None and str(gpu_ids).strip().lower() == "cpu"
    available = torch.cuda.device_count() if torch.cuda.is_available() else 0
    named = parse_gpu_ids(gpu_ids)
    if chose_cpu or (available == 0 and not named):
        device = torch.device("cpu")
    else:
        pool = named or list(range(available))
        missing = [i for i in pool if i >= available]
        if missing:
            raise UsageError(f"--gpu {gpu_ids}: GPU {missing[0]} not available ({available} "
                             "visible; CUDA_VISIBLE_DEVICES renumbers them from 0)")
        if info.local_rank >= len(pool):
            raise UsageError(
                f"torchrun started {info.local_rank + 1}+ processes on this node but --gpu "
                f"{gpu_ids or '(all visible)'} gives {len(pool)} GPU(s); start at most "
                f"{len(pool)} (--nproc_per_node) or name more GPUs ({GPU_FORMS})")
        device = torch.device("cuda", pool[info.local_rank])
        torch.cuda.set_device(device)
    backend = backend or ("nccl" if device.type == "cuda" else "gloo")
    if backend == "nccl" and device.type != "cuda":
        raise UsageError("--dist_backend nccl needs GPUs; use gloo (or leave it out) on the CPU")
    if not dist.is_initialized():
        kwargs: dict = {"backend": backend, "timeout": datetime.timedelta(minutes=30)}
        if device.type == "cuda":
            kwargs["device_id"] = device  # binds NCCL's communicator to this GPU only
        dist.init_process_group(**kwargs)
    return info, device, [device.index] if device.type == "cuda" else []


def shutdown_distributed() -> None:
    """Leave the process group (a no-op without one)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


@contextlib.contextmanager
def distributed_process(gpu_ids: Optional[str], backend: Optional[str] = None
                        ) -> Iterator[Tuple[DistInfo, torch.device, List[int]]]:
    """`with distributed_process(...) as (info, device, gpu_ids):` `init_distributed` on
    entry, `shutdown_distributed` on the way out, whatever the way."""
    setup = init_distributed(gpu_ids, backend)
    try:
        yield setup
    finally:
        shutdown_distributed()


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def all_gather_objects(obj: Any, info: DistInfo) -> List[Any]:
    """Every rank's `obj`, in rank order (`[obj]` in a single-process run)."""
    if not info.enabled:
        return [obj]
    out: List[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, info: DistInfo, src: int = 0) -> Any:
    """Rank `src`'s `obj` on every rank."""
    if not info.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def describe(info: DistInfo) -> str:
    if not info.enabled:
        return "single process"
    backend = dist.get_backend() if dist.is_initialized() else "?"
    return (f"torchrun: rank {info.rank} of {info.world_size} (local rank {info.local_rank}), "
            f"backend {backend}")
