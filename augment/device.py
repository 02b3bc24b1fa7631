"""Device choice and the few GPU-only switches, kept in one small place.

``auto`` picks CUDA when present and falls back to the CPU; ``cuda`` without a GPU is an error.
On CUDA, forward passes run under bf16 autocast; on the CPU they run in float32.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch

from augment.errors import DeviceError


def resolve_device(name: str = "auto") -> torch.device:
    """Map ``auto|cpu|cuda`` (or ``cuda:N``) to a torch device, refusing a missing GPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError(
                f"train.device is {name!r} but no CUDA GPU is visible on this machine; "
                "use device: auto (falls back to the CPU) or device: cpu"
            )
        return torch.device(name)
    if name == "cpu":
        return torch.device("cpu")
    raise DeviceError(f"unknown device {name!r}; use auto, cpu or cuda")


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA; a no-op elsewhere (CPU bf16 is slower than fp32 on most CPUs)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@contextlib.contextmanager
def cpu_threads(threads: int | None = 1) -> Iterator[None]:
    """Use ``threads`` torch intra-op threads inside the block (``None`` = all cores), then restore.

    OMP_NUM_THREADS, when set, wins. Measured on 2 cores: a step of the tabular GAN ran several
    times slower on two threads than on one whenever anything else used the other core, because
    its matrices are too small to split. Restoring keeps a library call from changing its caller's
    torch settings.
    """
    previous = torch.get_num_threads()
    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(threads or max(1, os.cpu_count() or 1))
    try:
        yield
    finally:
        torch.set_num_threads(previous)
