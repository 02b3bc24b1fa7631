"""The training loop shared by every GAN: steps, checkpoints, resume, progress, callbacks.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from augment.core import ddp
from augment.core.errors import ModelFileError
from augment.core.persist import load_payload, save_payload

CHECKPOINT_FORMAT = "augment.checkpoint/1"
LossCallback = Callable[[int, dict[str, float]], None]
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


def run_training(
    trainer: Trainer,
    steps: int,
    *,
    checkpoint_path: str | Path | None = None,
    checkpoint_every: int = 200,
    fingerprint: str = "",
    resume: bool = True,
    callbacks: Sequence[LossCallback] = (),
    progress: bool = False,
    description: str = "training",
) -> TrainingResult:
    """Run ``steps`` optimizer steps, checkpointing every ``checkpoint_every`` steps.

    A checkpoint with the same ``fingerprint`` (the config hash) is resumed from; one with another
    fingerprint is ignored and overwritten, so a changed config never continues a stale model.
    On Ctrl-C the current state is checkpointed before the interrupt propagates (in a single
    process; under DDP the last periodic checkpoint stands, as the other ranks may be gone).

    Under DDP all ranks resume from the checkpoint rank 0 reads, so they need no shared disk.
    """
    checkpoint_path = Path(checkpoint_path) if checkpoint_path else None
    start, history = 0, []
    writes = ddp.is_main()

    # -- resume ------------------------------------------------------------------------------
    def read_checkpoint() -> dict[str, Any] | None:
        if not (resume and checkpoint_path is not None and checkpoint_path.is_file()):
            return None
        try:
            return load_payload(checkpoint_path, CHECKPOINT_FORMAT)
        except ModelFileError:  # checkpoints are written atomically, so this is outside damage
            raise ModelFileError(
                f"checkpoint {checkpoint_path} is truncated, corrupt or not a checkpoint; delete "
                "it to train from scratch, or rerun with --overwrite (output.overwrite: true)"
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
        disable=not (progress and writes),
        transient=True,
    )
    try:
        with bar:
            task = bar.add_task(description, total=steps, completed=start, losses="")
            while step < steps:
                losses = trainer.train_step(step)
                step += 1
                history.append(losses)
                for callback in callbacks:
                    callback(step, losses)
                if progress and (step % 10 == 0 or step == steps):
                    shown = " ".join(f"{k}={v:+.3f}" for k, v in losses.items())
                    bar.update(task, completed=step, losses=shown)
                if step % checkpoint_every == 0 and step < steps:
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
