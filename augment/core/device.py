"""Device choice and the few GPU-only switches, kept in one small place.

``auto`` picks CUDA when present and falls back to the CPU; ``cuda`` without a GPU is an error.

Precision (``train.precision``): ``auto`` trains under bf16 autocast on CUDA, and on a CPU only
where it pays: the image GAN on CPUs with AMX bf16 units (Intel Xeon since Sapphire Rapids),
where its convolutions ran 1.3-1.5x faster at the same balanced accuracy and FID (README,
"Benchmarks"). The tabular GAN's matrices are too small to gain from it on a CPU. ``fp32`` never
uses autocast; ``bf16`` always does. Sampling runs in float32 on every CPU, so a saved model
generates the same images on any of them.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator
from pathlib import Path

import torch

from augment.core.errors import DeviceError


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
    """bf16 autocast on CUDA; a no-op elsewhere. For sampling; training uses :func:`autocast_to`."""
    return autocast_to(device, torch.bfloat16 if device.type == "cuda" else None)


def autocast_to(
    device: torch.device, dtype: torch.dtype | None
) -> contextlib.AbstractContextManager:
    """Autocast to ``dtype`` on ``device``'s type; ``None`` is a no-op (float32)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


@functools.cache
def cpu_has_amx_bf16() -> bool:
    """True when the CPU has AMX bf16 tiles (read from Linux's /proc/cpuinfo; False elsewhere)."""
    try:
        return cpuinfo_has_flag(Path("/proc/cpuinfo").read_text(), "amx_bf16")
    except OSError:
        return False


def cpuinfo_has_flag(cpuinfo: str, flag: str) -> bool:
    return any(line.startswith("flags") and flag in line.split() for line in cpuinfo.splitlines())


def cpu_supports_bf16() -> bool:
    """Whether oneDNN runs bf16 on this CPU at all (AVX-512 bf16 or AMX)."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def autocast_dtype(
    device: torch.device, precision: str = "auto", cpu_bf16_pays: bool = False
) -> torch.dtype | None:
    """The training autocast dtype for ``train.precision`` on ``device`` (None: float32).

    Args:
        cpu_bf16_pays: the model gains from bf16 on an AMX CPU (the image GAN does, the tabular
            GAN does not); only consulted for ``auto`` on a CPU.
    """
    if precision == "fp32":
        return None
    if precision == "bf16":
        if device.type == "cpu" and not cpu_supports_bf16():
            raise DeviceError(
                "train.precision is bf16 but this CPU has no bf16 support; "
                "use precision: auto or fp32"
            )
        return torch.bfloat16
    if precision != "auto":
        raise ValueError(f"precision must be auto, fp32 or bf16, not {precision!r}")
    if device.type == "cuda" or (device.type == "cpu" and cpu_bf16_pays and cpu_has_amx_bf16()):
        return torch.bfloat16
    return None


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity; every core where that is unknown)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def cpu_threads(threads: int | None = 1) -> Iterator[None]:
    """Use ``threads`` torch intra-op threads inside the block (``None`` = all cores), then restore.

    OMP_NUM_THREADS, when set, wins. Measured on 2 cores: a step of the tabular GAN ran several
    times slower on two threads than on one whenever anything else used the other core, because
    its matrices are too small to split. Restoring keeps a library call from changing its caller's
    torch settings.
    """
    previous = torch.get_num_threads()
    # OMP_NUM_THREADS is applied, not only left alone: torch reads it once, at start, and a
    # process may set it later (distributed's LocalCluster sets it to 1 in the process that
    # starts the workers), after which "leaving torch alone" would run on the start's count.
    # The thread count changes the last bits of a network's sums, so the same job on one thread
    # in a Dask worker and here must really run on one thread here.
    env = os.environ.get("OMP_NUM_THREADS", "")
    wanted = int(env) if env.isdigit() and int(env) > 0 else None
    torch.set_num_threads(wanted or threads or max(1, os.cpu_count() or 1))
    try:
        yield
    finally:
        torch.set_num_threads(previous)
