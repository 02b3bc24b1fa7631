"""Data-parallel training helpers: one GAN trained over several processes with DDP.

The trainers and the training loop ask this module where they run: ``rank()`` and
``world_size()`` are 0 and 1 when no ``torch.distributed`` process group is up, so the
single-process path never changes. Under torchrun (see :mod:`augment.pipeline.distributed`):

- every rank builds the same networks from the same seed, and :func:`wrap` puts the ones whose
  backward is to be averaged in :class:`~torch.nn.parallel.DistributedDataParallel`;
- every rank draws its own batches (:func:`rank_seed`), so the effective batch is
  ``batch_size x world_size``;
- rank 0 alone reads and writes files; what the other ranks need from a file (a checkpoint, the
  loaded data) reaches them through :func:`from_main`.

Backends: ``nccl`` on CUDA (one GPU per process, ``LOCAL_RANK``), ``gloo`` on the CPU.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from augment.core.config import setting
from augment.core.device import resolve_device
from augment.core.errors import DeviceError

T = TypeVar("T")
# Far apart, so that rank r's streams never meet another rank's nor a seed + 1 stream.
RANK_SEED_STRIDE = 1_000_003


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    """True on rank 0, and always in a single process: the process that writes and logs."""
    return rank() == 0


def rank_seed(seed: int) -> int:
    """The seed of this rank's batch streams; rank 0 keeps ``seed`` (a single process's draws)."""
    return seed + RANK_SEED_STRIDE * rank()


def init(device_name: str = "auto", timeout_minutes: float = 30) -> torch.device:
    """Join the process group torchrun describes in the environment and pick this rank's device.

    ``nccl`` when the device resolves to CUDA (process ``LOCAL_RANK`` gets GPU ``LOCAL_RANK``),
    ``gloo`` on the CPU. The timeout bounds how long a rank waits for the others at a collective
    (rank 0 fits the data and writes output while the others wait for its broadcast).
    """
    device = resolve_device(device_name)
    if device.type == "cuda":
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if local_rank >= torch.cuda.device_count():
            raise DeviceError(
                f"process LOCAL_RANK={local_rank} has no GPU of its own "
                f"({torch.cuda.device_count()} visible); start at most that many processes per "
                f"machine (--nproc / --nproc_per_node), or use {setting('train.device', 'cpu')}"
            )
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    if not is_distributed():
        dist.init_process_group(
            backend="nccl" if device.type == "cuda" else "gloo",
            timeout=timedelta(minutes=timeout_minutes),
        )
    return device


def barrier() -> None:
    """Wait until every rank gets here (no-op without a process group)."""
    if is_distributed():
        dist.barrier()


def shutdown() -> None:
    """Leave the process group.

    ``destroy_process_group`` only drops the group from torch's registry: DDP wrappers left in
    reference cycles still hold it, and the gloo backend is then torn down with the interpreter,
    which can abort the process ("terminate called without an active exception", seen once in CI
    on a worker rank that exited right after training). A DDP wrapper does sit in a cycle: with
    a one-rank gloo group it outlives ``del`` until ``gc.collect()``. So the unreachable wrappers
    are collected first, while the group is still alive.
    """
    if is_distributed():
        gc.collect()
        dist.destroy_process_group()


def wrap(module: nn.Module, find_unused_parameters: bool = False) -> nn.Module:
    """``module`` in DDP when a process group is up (gradients averaged over ranks), else as is.

    The wrapper shares the module's parameters; keep the plain module for state dicts, and call
    the wrapper only for the forward pass whose backward is to be averaged. A forward through the
    plain module (a gradient penalty's second pass, a frozen critic in the generator step) is not
    tracked by DDP, yet its gradients flow into the parameters before DDP reduces them.
    """
    if not is_distributed():
        return module
    device = next(module.parameters()).device
    return nn.parallel.DistributedDataParallel(
        module,
        device_ids=[device.index] if device.type == "cuda" else None,
        # By default DDP also hands rank 0's buffers (batch-norm statistics, spectral-norm
        # vectors) to every rank before each forward, so the replicas' buffers follow rank 0's.
        find_unused_parameters=find_unused_parameters,
    )


def average_gradients(params: Sequence[torch.Tensor]) -> None:
    """Average ``.grad`` of ``params`` over ranks (no-op without a process group).

    For gradients computed outside autograd, which a DDP wrapper never sees: one all-reduce of
    all of them flattened together.
    """
    if not is_distributed():
        return
    flat = torch.cat([param.grad.reshape(-1) for param in params])
    dist.all_reduce(flat)
    flat /= world_size()
    offset = 0
    for param in params:
        param.grad.copy_(flat[offset : offset + param.numel()].view_as(param.grad))
        offset += param.numel()


def from_main(produce: Callable[[], T]) -> T:
    """Run ``produce`` on rank 0 and hand its result (or its exception) to every rank.

    Without a process group this is ``produce()``. An exception on rank 0 is raised on every rank,
    so no rank is left waiting at a collective that never comes.
    """
    if not is_distributed():
        return produce()
    box: list[Any] = [None]
    if is_main():
        try:
            box[0] = ("ok", produce())
        except Exception as error:  # noqa: BLE001 - re-raised on every rank below
            box[0] = ("error", error)
    dist.broadcast_object_list(box, src=0)
    status, value = box[0]
    if status == "error":
        raise value
    return value


def rng_states(generators: Mapping[str, torch.Generator]) -> dict[str, Any]:
    """The states of a trainer's random generators, for its checkpoint.

    This rank's states under their own names (a single process reads only those); under DDP also
    every rank's under ``rngs_by_rank``, so each rank resumes its own batch stream. A collective:
    every rank must call it.
    """
    own = {name: generator.get_state() for name, generator in generators.items()}
    if not is_distributed():
        return own
    every: list[Any] = [None] * world_size()
    dist.all_gather_object(every, own)
    return {**own, "rngs_by_rank": every}


def restore_rng_states(
    generators: Mapping[str, torch.Generator], state: Mapping[str, Any], seed: int
) -> None:
    """Set each generator to this rank's saved state.

    A rank that the checkpoint has no state for (it was written by fewer processes) starts fresh
    streams of its own from ``seed`` rather than repeat rank 0's draws.
    """
    saved = state.get("rngs_by_rank") or [state]
    if rank() < len(saved):
        for name, generator in generators.items():
            generator.set_state(saved[rank()][name])
        return
    for offset, generator in enumerate(generators.values()):
        generator.manual_seed(rank_seed(seed) + offset)
