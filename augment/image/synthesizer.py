"""A fitted image synthesizer: one conditional image GAN, or one per class, behind one interface.

The image counterpart of :mod:`augment.tabular.synthesizer`; the units of work and the training loop are
the same (``training_units``, ``run_training``). Saved files hold only tensors and plain data::

    synth.save("model.pt")
    synth = load_synthesizer("model.pt", device="cpu")     # dispatches on the file's format
    images, labels = synth.sample({7: 100}, seed=0)        # exactly 100 uint8 images of class 7
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from augment import __version__
from augment.core.device import resolve_device
from augment.core.persist import save_payload
from augment.core.train import LossCallback, TrainingResult, run_training
from augment.image.cgan import (
    SAMPLE_BATCH,
    ImageCGAN,
    ImageGANSettings,
    ImageTrainSettings,
)

IMAGE_SYNTHESIZER_FORMAT = "augment.image_synthesizer/1"


def fit_image_unit(
    images: np.ndarray,
    labels: Sequence[Any],
    classes: Sequence[Any],
    *,
    gan: ImageGANSettings,
    train: ImageTrainSettings,
    device: str = "auto",
    checkpoint_path: str | Path | None = None,
    checkpoint_every: int = 250,
    fingerprint: str = "",
    resume: bool = True,
    callbacks: Sequence[LossCallback] = (),
    progress: bool = False,
    snapshot: Callable[[int, ImageCGAN], None] | None = None,
) -> tuple[ImageCGAN, TrainingResult]:
    """Fit a conditional image GAN on the images of ``classes``.

    Args:
        images: uint8 ``(N, size, size, channels)``, all classes (this unit's are picked out).
        labels: ``(N,)`` class values.
        classes: the classes this unit models; the GAN is conditioned on them.
        snapshot: called as ``snapshot(step, model)`` after every step (e.g. to log sample grids
            from the EMA generator); it must not touch the training state.
    """
    labels = np.asarray(labels)
    keep = np.isin(labels, np.asarray(list(classes), dtype=labels.dtype))
    model = ImageCGAN(classes, gan)
    trainer = model.make_trainer(images[keep], labels[keep].tolist(), train, resolve_device(device))
    label = "all classes" if len(classes) > 1 else f"class {classes[0]}"
    if snapshot is not None:
        callbacks = [*callbacks, lambda step, _losses: snapshot(step, model)]
    result = run_training(
        trainer,
        train.steps,
        checkpoint_path=checkpoint_path,
        checkpoint_every=checkpoint_every,
        fingerprint=f"{fingerprint}:{'|'.join(map(str, classes))}",
        resume=resume,
        callbacks=callbacks,
        progress=progress,
        description=f"image GAN ({label})",
    )
    model.generator.eval()
    return model, result


class ImageSynthesizer:
    """Routes each class to the unit that models it and samples exact per-class counts."""

    kind = "image"

    def __init__(self, units: Sequence[ImageCGAN], classes: Sequence[Any], label: str = "label"):
        self.units = list(units)
        self.all_classes = list(classes)  # every class of the data, modelled or not
        self.label = label
        self.unit_of = {c: unit for unit in self.units for c in unit.classes}

    @property
    def classes(self) -> list[Any]:
        """The classes that can be sampled."""
        return list(self.unit_of)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        s = self.units[0].settings
        return (s.size, s.size, s.channels)

    def iter_batches(
        self, counts: Mapping[Any, int], seed: int = 0, batch_size: int = SAMPLE_BATCH
    ) -> Iterator[tuple[Any, np.ndarray]]:
        """Yield ``(class, uint8 images)`` batches; exactly ``counts[c]`` images of class c.

        Batch ``i`` of a class is seeded by ``(seed, i)``, so the images do not depend on what
        else is generated, nor on the batch size of an earlier call with the same batch size.
        """
        for cls, n_images in counts.items():
            if n_images <= 0:
                continue
            if cls not in self.unit_of:
                raise KeyError(f"class {cls!r} is not modelled; modelled classes: {self.classes}")
            unit = self.unit_of[cls]
            for start in range(0, n_images, batch_size):
                size = min(batch_size, n_images - start)
                yield cls, unit.sample(cls, size, seed=seed * 7919 + start // batch_size)

    def sample(self, counts: Mapping[Any, int], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """All requested images ``(n, H, W, C)`` and their labels ``(n,)``."""
        images = [np.zeros((0, *self.image_shape), dtype=np.uint8)]
        labels: list[Any] = []
        for cls, batch in self.iter_batches(counts, seed):
            images.append(batch)
            labels.extend([cls] * len(batch))
        return np.concatenate(images), np.asarray(labels)

    def save(self, path: str | Path, extra: Mapping[str, Any] | None = None) -> None:
        save_payload(
            path,
            {
                "format": IMAGE_SYNTHESIZER_FORMAT,
                "version": __version__,
                "classes": list(self.all_classes),
                "label": self.label,
                "units": [unit.state_dict() for unit in self.units],
                "extra": dict(extra or {}),
            },
        )


def image_synthesizer_from_payload(
    payload: dict[str, Any], device: str = "cpu"
) -> ImageSynthesizer:
    target = resolve_device(device) if device != "cpu" else torch.device("cpu")
    units = [ImageCGAN.from_state_dict(state, target) for state in payload["units"]]
    return ImageSynthesizer(units, payload["classes"], payload.get("label", "label"))
