"""Data-parallel training under ``torchrun`` (torch.distributed): which process this is, and its collectives.

``torchrun --nproc-per-node N -m pavkit llm train-verifier|rl …`` starts N copies of the command with RANK,
WORLD_SIZE and LOCAL_RANK set. Each builds the same global batch (the verifier's sampling schedule is a pure
function of the seed; RL samples the same responses in every process), runs its share of the rows (:func:`shard`)
and scales its loss so that the exchanged gradient is the whole batch's: averaged by a ``DistributedDataParallel``
model (:func:`data_parallel`, train-verifier) or summed in one flat exchange (:func:`all_reduce_gradients`, the RL
update). The update is the one-process update at the same global batch, to float rounding. Rank 0 alone writes
the run directory. Backend: nccl on CUDA (one
GPU per process, ``cuda:LOCAL_RANK``), gloo on CPU. Without WORLD_SIZE (or with 1) nothing is initialised and
every helper is the identity.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Process:
    """This process's place in the job: ``rank`` of ``world`` processes, and its torch device (None: default)."""

    rank: int = 0
    world: int = 1
    device: str | None = None

    @property
    def main(self) -> bool:
        """Rank 0: the one process that writes files and prints."""
        return self.rank == 0


SINGLE = Process()


def default_device(device: str | None = None) -> str:
    """``device``, or where pavkit puts a model when none is named: "cuda" when torch sees a GPU, else "cpu"."""
    if device:
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def setup() -> Process:
    """The process of this job from torchrun's environment, with the default process group initialised once."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return SINGLE
    import torch
    import torch.distributed as dist

    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    device = None
    if torch.cuda.is_available():
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device else "gloo")
        atexit.register(dist.destroy_process_group)
    return Process(rank, world, device)


def shard(rows: np.ndarray, process: Process) -> np.ndarray:
    """This process's share of a global batch of row indices: every world-th row from its rank (R,) → (≤ R/W,)."""
    return rows[process.rank::process.world]


def all_sum(values: Sequence[float], process: Process) -> list[float]:
    """Σ over the processes of each value (float64); the values themselves in a single process."""
    if process.world == 1:
        return [float(v) for v in values]
    import torch
    import torch.distributed as dist

    t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=process.device or "cpu")
    dist.all_reduce(t)
    return t.cpu().tolist()


def all_reduce_gradients(parameters: Sequence[Any], process: Process) -> None:
    """Σ over the processes of each parameter's gradient, in place, in one flat exchange (a missing gradient counts
    as zeros). With each process's loss a share of the whole batch's, the sum is the whole batch's gradient.
    The data-parallel step where one backward pass follows several forward passes (the RL update: a prompt
    cache, response batches and micro-batches), which DistributedDataParallel's per-forward hooks do not fit."""
    if process.world == 1:
        return
    import torch
    import torch.distributed as dist

    params = [p for p in parameters if p.requires_grad]
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    flat = torch.cat([p.grad.reshape(-1) for p in params])
    dist.all_reduce(flat)
    offset = 0
    for p in params:
        p.grad.copy_(flat[offset:offset + p.numel()].view_as(p))
        offset += p.numel()


def all_gather_rows(mine: Sequence[Any], n: int, process: Process) -> list[Any]:
    """The n items of a list computed in shards (this process holds items rank, rank + W, …, as :func:`shard`
    would give them), on every process in order. Items are pickled: give CPU tensors (a CUDA tensor would arrive
    on its sender's device)."""
    if process.world == 1:
        return list(mine)
    import torch.distributed as dist

    parts: list[Any] = [None] * process.world
    dist.all_gather_object(parts, list(mine))
    out: list[Any] = [None] * n
    for rank, part in enumerate(parts):
        out[rank::process.world] = part
    return out


def barrier(process: Process) -> None:
    """Wait for every process (nothing in a single process)."""
    if process.world > 1:
        import torch.distributed as dist

        dist.barrier()


def data_parallel(module: Any, process: Process) -> Any:
    """``module`` wrapped in DistributedDataParallel (parameters broadcast from rank 0, gradients averaged in the
    backward pass), or the module itself in a single process."""
    if process.world == 1:
        return module
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(module, device_ids=[int(process.device.split(":")[1])] if process.device else None)


def agree(ok: bool, process: Process) -> bool:
    """Whether every process is ``ok`` (so that one process's error stops all of them instead of a hang)."""
    return all_sum([0.0 if ok else 1.0], process)[0] == 0
