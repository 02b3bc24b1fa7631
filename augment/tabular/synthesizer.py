"""A fitted tabular synthesizer: one conditional GAN, or one GAN per class, behind one interface.

``fit_unit`` trains one unit of work (all classes in ``conditional`` mode, one class in
``per_class`` mode); ``Synthesizer`` routes each class to its unit and samples exact counts.
Saved files hold only tensors and plain data (see :mod:`augment.core.persist`)::

    synth.save("model.pt")
    synth = load_synthesizer("model.pt", device="cpu")
    rows = synth.sample({"malignant": 100}, seed=0)   # exactly 100 rows, label column included
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from augment import __version__
from augment.core.device import resolve_device
from augment.core.persist import load_payload, save_payload
from augment.core.train import LossCallback, TrainingResult, run_training
from augment.tabular.cgan import GANSettings, TabularCGAN, TrainSettings
from augment.tabular.schema import TableSchema
from augment.tabular.transform import TabularEncoder

SYNTHESIZER_FORMAT = "augment.tabular_synthesizer/2"


def training_units(classes: Sequence[Any], plan: Mapping[Any, int], mode: str) -> list[list[Any]]:
    """The units of work: ``[all classes]`` (conditional) or ``[[c] for c that needs rows]``."""
    if mode == "conditional":
        return [list(classes)] if any(plan.get(c, 0) > 0 for c in classes) else []
    return [[c] for c in classes if plan.get(c, 0) > 0]


def fit_unit(
    frame: pd.DataFrame,
    schema: TableSchema,
    classes: Sequence[Any],
    *,
    gan: GANSettings,
    train: TrainSettings,
    max_modes: int = 6,
    continuous: str = "gmm",
    clip_to_range: bool = True,
    device: str = "auto",
    checkpoint_path: str | Path | None = None,
    checkpoint_every: int = 200,
    fingerprint: str = "",
    resume: bool = True,
    callbacks: Sequence[LossCallback] = (),
    progress: bool = False,
) -> tuple[TabularCGAN, TrainingResult]:
    """Fit the encoder and a conditional GAN on the rows of ``classes`` in ``frame``.

    Args:
        frame: training rows, label column included.
        schema: inferred on the whole training table (shared by all units).
        classes: the classes this unit models; the GAN is conditioned on them.
    """
    rows = frame[frame[schema.label].isin(classes)]
    features = rows[schema.names]
    encoder = TabularEncoder(max_modes, clip_to_range, continuous).fit(features, schema)
    model = TabularCGAN(encoder, classes, gan)
    trainer = model.make_trainer(
        features, rows[schema.label].tolist(), train, resolve_device(device)
    )
    label = "all classes" if len(classes) > 1 else f"class {classes[0]}"
    result = run_training(
        trainer,
        train.steps,
        checkpoint_path=checkpoint_path,
        checkpoint_every=checkpoint_every,
        # the format names the networks' layout: a checkpoint of an earlier one is not resumed
        fingerprint=f"{SYNTHESIZER_FORMAT}:{fingerprint}:{'|'.join(map(str, classes))}",
        resume=resume,
        callbacks=callbacks,
        progress=progress,
        description=f"GAN ({label})",
    )
    model.ema.eval()
    return model, result


class Synthesizer:
    """Routes each class to the unit that models it and samples exact per-class counts."""

    kind = "tabular"

    def __init__(self, units: Sequence[TabularCGAN], schema: TableSchema, columns: Sequence[str]):
        self.units = list(units)
        self.schema = schema
        self.columns = list(columns)  # the input's column order, label included
        self.unit_of = {c: unit for unit in self.units for c in unit.classes}

    @property
    def classes(self) -> list[Any]:
        return list(self.unit_of)

    def iter_batches(
        self, counts: Mapping[Any, int], seed: int = 0, batch_size: int = 4096
    ) -> Iterator[pd.DataFrame]:
        """Yield generated rows class by class in batches; exactly ``counts[c]`` rows of class c."""
        for cls, n_rows in counts.items():
            if n_rows <= 0:
                continue
            if cls not in self.unit_of:
                raise KeyError(f"class {cls!r} is not modelled; modelled classes: {self.classes}")
            unit = self.unit_of[cls]
            for start in range(0, n_rows, batch_size):
                size = min(batch_size, n_rows - start)
                # A distinct seed per batch keeps batches independent yet reproducible.
                rows = unit.sample(cls, size, seed=seed * 7919 + start // batch_size)
                rows[self.schema.label] = self.schema.restore_labels([cls] * size).to_numpy()
                yield rows[self.columns]

    def sample(self, counts: Mapping[Any, int], seed: int = 0) -> pd.DataFrame:
        """All requested rows in one DataFrame with the input's columns and dtypes."""
        parts = list(self.iter_batches(counts, seed))
        if not parts:
            empty = pd.DataFrame({c: pd.Series(dtype="float64") for c in self.columns})
            return empty
        return pd.concat(parts, ignore_index=True)

    def save(self, path: str | Path, extra: Mapping[str, Any] | None = None) -> None:
        """Save as a safe file (tensors and plain data); ``extra`` is stored alongside."""
        save_payload(
            path,
            {
                "format": SYNTHESIZER_FORMAT,
                "version": __version__,
                "schema": self.schema.to_dict(),
                "columns": self.columns,
                "units": [unit.state_dict() for unit in self.units],
                "extra": dict(extra or {}),
            },
        )


def load_synthesizer(path: str | Path, device: str = "cpu") -> Any:
    """Load a saved tabular or image synthesizer onto ``device`` (``cpu`` loads GPU-trained ones).

    Returns a :class:`Synthesizer` or an :class:`~augment.image.synthesizer.ImageSynthesizer`,
    as the file says.
    """
    from augment.image.synthesizer import (
        IMAGE_SYNTHESIZER_FORMAT,
        image_synthesizer_from_payload,
    )

    payload = load_payload(path, (SYNTHESIZER_FORMAT, IMAGE_SYNTHESIZER_FORMAT))
    if payload["format"] == IMAGE_SYNTHESIZER_FORMAT:
        return image_synthesizer_from_payload(payload, device)
    return synthesizer_from_payload(payload, device)


def synthesizer_from_payload(payload: dict[str, Any], device: str = "cpu") -> Synthesizer:
    target = resolve_device(device) if device != "cpu" else torch.device("cpu")
    units = [TabularCGAN.from_state_dict(state, target) for state in payload["units"]]
    return Synthesizer(units, TableSchema.from_dict(payload["schema"]), payload["columns"])
