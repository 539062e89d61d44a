"""torch.distributed for training: the process group from torchrun's environment
and the few collectives the loop needs, each the identity in a single process.

torchrun sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT; with
WORLD_SIZE > 1 the group is joined through ``env://``.
"""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Dist:
    """This process's place in the job; world_size 1 means no process group."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")  # this process's training device
    backend: str = ""  # nccl | gloo; "" without a process group

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def sum(self, values: Sequence[float | torch.Tensor]) -> list[float]:
        """Element-wise sum over ranks of a few scalars (one all-reduce)."""
        on = self.device if self.backend == "nccl" else torch.device("cpu")
        x = torch.stack([torch.as_tensor(v).to(on, torch.float64) for v in values])
        if self.active:
            dist.all_reduce(x)
        return x.tolist()

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj`` (picklable), in rank order, on every rank."""
        if not self.active:
            return [obj]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        if not self.active:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]


def env_world() -> tuple[int, int, int]:
    """(rank, world_size, local_rank) as torchrun set them; (0, 1, 0) without it."""
    env = os.environ
    return (
        int(env.get("RANK", 0)),
        int(env.get("WORLD_SIZE", 1)),
        int(env.get("LOCAL_RANK", 0)),
    )


def rank_device(device: torch.device, local_rank: int) -> torch.device:
    """A CUDA device without an index becomes this node's GPU number ``local_rank``."""
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return device


def init_distributed(backend: str, device: torch.device) -> Dist:
    """Join the process group when WORLD_SIZE > 1 (once per process); a CUDA
    ``device`` becomes this node's GPU number LOCAL_RANK.

    backend: "auto" (nccl on CUDA, gloo on CPU) | "nccl" | "gloo".
    """
    rank, world_size, local_rank = env_world()
    if world_size == 1:
        return Dist(device=device)
    device = rank_device(device, local_rank)
    if backend == "auto":
        backend = "nccl" if device.type == "cuda" else "gloo"
    if backend not in ("nccl", "gloo"):
        raise ValueError(f"trainer.dist_backend must be auto, nccl or gloo: {backend}")
    if not dist.is_initialized():
        dist.init_process_group(backend, rank=rank, world_size=world_size)
    return Dist(rank, world_size, local_rank, device, backend)


def wrap_ddp(module: nn.Module, device: torch.device) -> nn.Module:
    """DistributedDataParallel over ``module`` (rank 0's weights go to all ranks).

    Buffers are not synchronised at each forward: the frontend's never change."""
    ddp = nn.parallel.DistributedDataParallel
    quiet = "forward_sync_buffers" in inspect.signature(ddp.__init__).parameters
    return ddp(
        module,
        device_ids=[device.index] if device.type == "cuda" else None,
        **({"forward_sync_buffers": False} if quiet else {"broadcast_buffers": False}),
    )


def close_distributed() -> None:
    """Leave the process group, if this process joined one; on gloo only once
    every rank is done with its collectives: a gloo rank whose group was torn down
    while a peer still talked to it aborted ("terminate called without an active
    exception", about 1 run in 14 of tests/test_distributed.py)."""
    if not (dist.is_available() and dist.is_initialized()):
        return
    try:
        if dist.get_backend() == "gloo":  # bounded: a failed rank never arrives
            dist.monitored_barrier(timeout=timedelta(seconds=60))
    except RuntimeError as err:
        log.warning("leaving the process group without the other ranks: %s", err)
    finally:
        dist.destroy_process_group()
