"""A fitted synthesizer of any kind: one conditional GAN, or one GAN per class, behind one interface.

``training_units`` says which units of work a plan needs; :func:`fit_unit` runs the training loop
for one unit; :class:`UnitSynthesizer` routes each class to the unit that models it and samples
exact per-class counts in seeded batches. A kind subclasses it to turn a unit's samples into its
own batches (rows of a table, uint8 images). Saved files hold only tensors and plain data (see
:mod:`augment.core.persist`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd
import torch

from augment.core import __version__
from augment.core.device import resolve_device
from augment.core.persist import payload_digest, save_payload
from augment.core.seeds import batch_seed
from augment.core.train import TrainingLoop, TrainingResult, TrainSettings, run_training


def training_units(classes: Sequence[Any], plan: Mapping[Any, int], mode: str) -> list[list[Any]]:
    """The units of work: ``[all classes]`` (conditional) or ``[[c] for c that needs rows]``."""
    if mode == "conditional":
        return [list(classes)] if any(plan.get(c, 0) > 0 for c in classes) else []
    return [[c] for c in classes if plan.get(c, 0) > 0]


def unit_name(classes: Sequence[Any]) -> str:
    """How progress bars and logs name a unit: ``all classes`` or ``class <c>``."""
    return "all classes" if len(classes) > 1 else f"class {classes[0]}"


def fit_unit(
    model: Any,
    rows: Any,
    labels: Sequence[Any],
    train: TrainSettings,
    *,
    device: str,
    what: str,
    model_format: str,
    loop: TrainingLoop | None = None,
) -> TrainingResult:
    """Train ``model`` (a unit: its ``classes``, ``make_trainer``, an ``ema`` that samples) on
    ``rows`` of its classes for ``train.steps`` steps.

    The unit's checkpoint belongs to the model's file format (the networks' layout), the loop's
    fingerprint (the config) and the unit's classes, so a checkpoint of another layout, config or
    unit is never resumed. ``what`` names the model in the progress bar.
    """
    loop = loop or TrainingLoop()
    trainer = model.make_trainer(rows, labels, train, resolve_device(device))
    classes_key = "|".join(map(str, model.classes))
    result = run_training(
        trainer,
        train.steps,
        loop=replace(loop, fingerprint=f"{model_format}:{loop.fingerprint}:{classes_key}"),
        description=f"{what} ({unit_name(model.classes)})",
    )
    model.ema.eval()
    return result


def load_device(device: str) -> torch.device:
    """Where a loaded synthesizer goes: ``cpu`` loads GPU-trained files; ``auto`` / ``cuda`` check."""
    return resolve_device(device) if device != "cpu" else torch.device("cpu")


class UnitSynthesizer:
    """Routes each class to the unit that models it and samples exact per-class counts.

    A unit has ``classes`` and ``sample(cls, n, seed)``; batch ``i`` of a class is seeded by
    ``(seed, i)``, so what a class gets does not depend on what else is generated.
    """

    kind: ClassVar[str]
    format: ClassVar[str]  # the saved file's format (persist.load_payload checks it)
    batch_size: ClassVar[int] = 4096

    def __init__(self, units: Sequence[Any]) -> None:
        self.units = list(units)
        self.unit_of = {c: unit for unit in self.units for c in unit.classes}

    @property
    def classes(self) -> list[Any]:
        """The classes that can be sampled."""
        return list(self.unit_of)

    def unit_batches(
        self, counts: Mapping[Any, int], seed: int = 0, batch_size: int | None = None
    ) -> Iterator[tuple[Any, Any]]:
        """Yield ``(class, what its unit sampled)`` batches; exactly ``counts[c]`` of class c."""
        batch_size = batch_size or self.batch_size
        for cls, n_items in counts.items():
            if n_items <= 0:
                continue
            if cls not in self.unit_of:
                raise KeyError(f"class {cls!r} is not modelled; modelled classes: {self.classes}")
            unit = self.unit_of[cls]
            for start in range(0, n_items, batch_size):
                size = min(batch_size, n_items - start)
                # A distinct seed per batch keeps batches independent yet reproducible.
                yield cls, unit.sample(cls, size, seed=batch_seed(seed, start // batch_size))

    def sample_frame(self, counts: Mapping[Any, int], seed: int = 0) -> pd.DataFrame:
        """The requested samples as one table, as the served MLflow model returns them."""
        raise NotImplementedError

    def _payload(self) -> dict[str, Any]:
        """What the kind saves besides the units (schema and columns, or classes and label)."""
        return {}

    def digest(self) -> str:
        """sha256 of what this synthesizer saves (units and the kind's payload): equal for
        synthesizers that generate the same, whichever file or device they came from."""
        return payload_digest(
            {**self._payload(), "units": [unit.state_dict() for unit in self.units]}
        )

    def save(self, path: str | Path, extra: Mapping[str, Any] | None = None) -> None:
        """Save as a safe file (tensors and plain data); ``extra`` is stored alongside."""
        save_payload(
            path,
            {
                "format": self.format,
                "version": __version__,
                **self._payload(),
                "units": [unit.state_dict() for unit in self.units],
                "extra": dict(extra or {}),
            },
        )
