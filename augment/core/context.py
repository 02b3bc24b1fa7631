"""What every step of a job shares: the config, the output location, the MLflow tracker.

The pipeline (:mod:`augment.pipeline.job`) makes one :class:`JobContext` per job and hands it to
the modality of the job's data kind; the wings read it but never import the pipeline.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from augment.core.balance import split_and_plan
from augment.core.shards import OutputLock
from augment.core.storage import Location
from augment.core.train import TrainingLoop, TrainingResult


@dataclass
class JobContext:
    config: Any  # the job's validated config: a subclass of augment.core.config.JobConfig
    output: Location  # a local folder (Path) or an fsspec URL (UPath): see augment.core.storage
    fingerprint: str  # of everything that changes the output rows (the manifest's config_hash)
    tracker: Any | None  # augment.tracking.JobTracker, or None when tracking is disabled
    lock: OutputLock | None = None
    world_size: int = (
        1  # processes training each model (torchrun DDP; augment.pipeline.distributed)
    )
    force: bool = False  # train even when the cache holds a generator for this data + settings
    started: float = field(default_factory=time.perf_counter)
    timings: dict[str, float] = field(default_factory=dict)
    training: list[dict[str, Any]] = field(default_factory=list)  # per unit, for the manifest
    cache_key: str | None = None
    cache_hit: bool = False
    # Local folder for the training checkpoints and the model file (torch writes them with plain
    # file I/O, checkpoints every few steps). The output folder itself when it is local; for a URL
    # output a folder on this machine keyed by the URL (output.work_dir), from which the model
    # file is uploaded. A rerun on the same machine resumes from its checkpoints.
    work: Path | None = None

    @property
    def local(self) -> Path:
        return self.work if self.work is not None else self.output

    def split_and_plan(
        self, frame: pd.DataFrame, label: str, population: Mapping[Any, int] | None = None
    ) -> tuple[pd.DataFrame, pd.DataFrame, dict[Any, int], dict[Any, int]]:
        """:func:`augment.core.balance.split_and_plan` with this job's holdout fraction, seed,
        imbalance ratio and sampling strategy: ``(train, holdout, counts, plan)``."""
        cfg = self.config
        return split_and_plan(
            frame,
            label,
            holdout=cfg.validate_.holdout,
            seed=cfg.train.seed,
            imbalance_ratio=cfg.data.imbalance_ratio,
            sampling_strategy=cfg.balance.sampling_strategy,
            population=population,
        )

    def training_loop(
        self, run_name: str, checkpoint: str
    ) -> tuple[TrainingLoop, list[Any], str | None]:
        """The shared loop for one model of this job: losses per step in a nested MLflow run
        ``run_name`` (its id, or None without tracking, and the loss callbacks to flush), a
        checkpoint ``checkpoints/<checkpoint>`` in the local folder, resume by the config's
        fingerprint."""
        cfg = self.config
        callbacks: list[Any] = []
        run_id = None
        if self.tracker:
            run_id = self.tracker.child(run_name)
            callbacks.append(self.tracker.loss_callback(run_id, every=10))
        loop = TrainingLoop(
            checkpoint_path=self.local / "checkpoints" / checkpoint,
            checkpoint_every=cfg.train.checkpoint_every,
            fingerprint=cfg.fingerprint(for_checkpoint=True),
            resume=cfg.train.resume,
            callbacks=callbacks,
            progress=cfg.train.progress,
        )
        return loop, callbacks, run_id

    def end_training_run(
        self,
        callbacks: list[Any],
        run_id: str | None,
        result: TrainingResult,
        metrics: Mapping[str, float] | None = None,
    ) -> None:
        """Close a :meth:`training_loop` run: flush its losses, log its time (and ``metrics``)."""
        if self.tracker:
            callbacks[0].flush()
            self.tracker.log_metrics(
                {
                    "train/seconds": result.seconds,
                    "train/resumed_from": result.resumed_from,
                    **(metrics or {}),
                },
                run_id=run_id,
            )
            self.tracker.end(run_id)

    def log_output_file(self, name: str, artifact_file: str) -> None:
        """Copy a small text file of the output (local or on a store) into the MLflow run."""
        if self.tracker:
            self.tracker.log_text((self.output / name).read_text(), artifact_file)
