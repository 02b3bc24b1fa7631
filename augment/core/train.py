"""The training loop shared by every GAN: steps, checkpoints, resume, progress, callbacks; and
what every GAN trainer shares: its settings, the EMA generator, its checkpointed state.

The loop knows nothing about the model: a *trainer* object does one optimizer step and hands out its
state. Logging lives in callbacks (``callback(step, losses)``), so the loop has no I/O backend but
the checkpoint file. Sections: resume -> loop (step, callbacks, checkpoint) -> final checkpoint.
Training is counted in optimizer steps, never epochs.

Under torchrun (:mod:`augment.core.ddp`) every rank runs this loop in step; rank 0 alone reads the
checkpoint (and hands it to the others), writes checkpoints and shows progress.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
import torch
from rich import get_console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from torch import nn

from augment.core import ddp
from augment.core.balance import to_python
from augment.core.config import setting
from augment.core.errors import ModelFileError
from augment.core.persist import load_payload, save_payload

CHECKPOINT_FORMAT = "augment.checkpoint/1"
LossCallback = Callable[[int, dict[str, float]], None]
T = TypeVar("T")
log = logging.getLogger(__name__)


def class_probabilities(counts: np.ndarray, how: str) -> np.ndarray:
    """Training-by-sampling: the probability of drawing each class for a batch.

    ``uniform`` (every present class equally: rare classes are seen as often as common ones),
    ``log`` (proportional to log(1 + count)) or ``empirical`` (proportional to the count).
    """
    present = counts > 0
    if how == "uniform":
        weights = present.astype(np.float64)
    elif how == "log":
        weights = np.where(present, np.log1p(counts), 0.0)
    else:
        weights = counts.astype(np.float64)
    return weights / weights.sum()


class Trainer(Protocol):
    def train_step(self, step: int) -> dict[str, float]: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@dataclass
class TrainingResult:
    steps: int
    resumed_from: int = 0
    seconds: float = 0.0
    history: list[dict[str, float]] = field(default_factory=list)
    # the arithmetic of the training passes: "bf16" (autocast) or "fp32"
    precision: str = "fp32"
    # where the loop ran: a task runner may train units in other processes or on other hosts
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)

    def unit_entry(self, model: str, classes: Sequence[Any]) -> dict[str, Any]:
        """What the manifest's ``training.units`` says of this training (plain data)."""
        return {
            "model": model,
            "classes": [to_python(c) for c in classes],
            "steps": self.steps,
            "resumed_from": self.resumed_from,
            "seconds": round(self.seconds, 3),
            "precision": self.precision,
            # where the model trained: a Dask task runner fits units in worker processes
            "host": self.host,
            "pid": self.pid,
        }


@dataclass
class TrainingLoop:
    """How the loop runs, apart from what it trains: checkpoints, resume, callbacks, progress.

    ``fingerprint`` names what a checkpoint belongs to (the config hash); a checkpoint with
    another fingerprint is never resumed.
    """

    checkpoint_path: str | Path | None = None
    checkpoint_every: int = 200
    fingerprint: str = ""
    resume: bool = True
    callbacks: Sequence[LossCallback] = ()
    progress: bool = False


def run_training(
    trainer: Trainer,
    steps: int,
    loop: TrainingLoop | None = None,
    *,
    description: str = "training",
) -> TrainingResult:
    """Run ``steps`` optimizer steps, checkpointing every ``checkpoint_every`` steps.

    A checkpoint with the same ``fingerprint`` (the config hash) is resumed from; one with another
    fingerprint is ignored and overwritten, so a changed config never continues a stale model.
    On Ctrl-C the current state is checkpointed before the interrupt propagates (in a single
    process; under DDP the last periodic checkpoint stands, as the other ranks may be gone).

    Under DDP all ranks resume from the checkpoint rank 0 reads, so they need no shared disk.
    """
    loop = loop or TrainingLoop()
    checkpoint_path, fingerprint = loop.checkpoint_path, loop.fingerprint
    checkpoint_path = Path(checkpoint_path) if checkpoint_path else None
    start, history = 0, []
    writes = ddp.is_main()

    # -- resume ------------------------------------------------------------------------------
    def read_checkpoint() -> dict[str, Any] | None:
        if not (loop.resume and checkpoint_path is not None and checkpoint_path.is_file()):
            return None
        try:
            return load_payload(checkpoint_path, CHECKPOINT_FORMAT)
        except ModelFileError:  # checkpoints are written atomically, so this is outside damage
            raise ModelFileError(
                f"checkpoint {checkpoint_path} is truncated, corrupt or not a checkpoint; delete "
                "it to train from scratch, or rerun with --overwrite "
                f"({setting('output.overwrite', True)})"
            ) from None

    state = ddp.from_main(read_checkpoint)
    if state is not None:
        if state["fingerprint"] == fingerprint and state["step"] <= steps:
            trainer.load_state_dict(state["trainer"])
            start, history = int(state["step"]), list(state["history"])
            log.info("resuming %s from step %d (%s)", description, start, checkpoint_path)
        else:
            log.info("ignoring checkpoint %s: it belongs to another config", checkpoint_path)

    def save(step: int) -> None:
        if checkpoint_path is not None:
            trainer_state = trainer.state_dict()  # under DDP a collective: every rank calls it
            if writes:
                save_payload(
                    checkpoint_path,
                    {
                        "format": CHECKPOINT_FORMAT,
                        "fingerprint": fingerprint,
                        "step": step,
                        "trainer": trainer_state,
                        "history": history,
                    },
                )

    # -- loop --------------------------------------------------------------------------------
    began = time.perf_counter()
    step = start
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} steps {task.fields[losses]}"),
        TimeRemainingColumn(),
        # off where it cannot redraw (a log file, CI): there it would only leave blank lines
        disable=not (loop.progress and writes and get_console().is_terminal),
        transient=True,
    )
    try:
        with bar:
            task = bar.add_task(description, total=steps, completed=start, losses="")
            while step < steps:
                losses = trainer.train_step(step)
                step += 1
                history.append(losses)
                for callback in loop.callbacks:
                    callback(step, losses)
                if loop.progress and (step % 10 == 0 or step == steps):
                    shown = " ".join(f"{k}={v:+.3f}" for k, v in losses.items())
                    bar.update(task, completed=step, losses=shown)
                if step % loop.checkpoint_every == 0 and step < steps:
                    save(step)
    except KeyboardInterrupt:
        if ddp.is_distributed():
            raise
        save(step)
        log.warning("interrupted at step %d; checkpoint saved to %s", step, checkpoint_path)
        raise
    save(step)
    return TrainingResult(
        steps=step,
        resumed_from=start,
        seconds=time.perf_counter() - began,
        history=history,
        precision="bf16" if getattr(trainer, "amp_dtype", None) is not None else "fp32",
    )


@dataclass
class TrainSettings:
    """Optimisation knobs (the config's ``train`` section, minus I/O); a kind's subclass sets
    its own defaults."""

    steps: int = 250
    batch_size: int = 64
    lr: float = 1e-3
    betas: tuple[float, float] = (0.5, 0.9)
    critic_steps: int = 3
    seed: int = 0
    class_sampling: str = "uniform"
    precision: str = "auto"  # auto | fp32 | bf16 (augment.core.device.autocast_dtype)


def settings_from(settings: type[T], *sources: Any, **given: Any) -> T:
    """A settings dataclass filled from attributes of the same names on ``sources`` (a config
    section, a sampler), then from ``given``; lists become tuples. The one place where config
    keys and sampler parameters turn into model settings."""
    values: dict[str, Any] = {}
    for item in fields(settings):  # type: ignore[arg-type]
        for source in sources:
            if hasattr(source, item.name):
                value = getattr(source, item.name)
                values[item.name] = tuple(value) if isinstance(value, list) else value
                break
    values.update(given)
    return settings(**values)


class EMA:
    """An exponential moving average of a generator's weights (the one that samples).

    Warm-up: early on the average follows the weights closely (decay ``(1+t)/(10+t)``), so a short
    run is not dragged back towards its random start. Buffers (norm statistics) are copied.
    """

    def __init__(self, average: nn.Module, live: nn.Module, decay: float) -> None:
        self.decay = decay
        # the same tensors every step (loading a checkpoint copies into them)
        self._params = (list(average.parameters()), list(live.parameters()))
        self._buffers = (list(average.buffers()), list(live.buffers()))

    @torch.no_grad()
    def update(self, step: int) -> None:
        decay = min(self.decay, (1 + step) / (10 + step))
        torch._foreach_lerp_(self._params[0], self._params[1], 1 - decay)
        if self._buffers[0]:
            torch._foreach_copy_(self._buffers[0], self._buffers[1])


class GANTrainerState:
    """``state_dict`` / ``load_state_dict`` of a GAN trainer: the networks and optimisers that
    :meth:`_stateful` names, then the random generators (see :func:`augment.core.ddp.rng_states`)."""

    rng: torch.Generator
    sample_rng: torch.Generator
    train: TrainSettings

    def _stateful(self) -> dict[str, Any]:
        raise NotImplementedError

    def _generators(self) -> dict[str, torch.Generator]:
        return {"rng": self.rng, "sample_rng": self.sample_rng}

    def state_dict(self) -> dict[str, Any]:
        state = {name: part.state_dict() for name, part in self._stateful().items()}
        return {**state, **ddp.rng_states(self._generators())}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, part in self._stateful().items():
            part.load_state_dict(state[name])
        ddp.restore_rng_states(self._generators(), state, self.train.seed)
