"""A fitted image synthesizer: one conditional image GAN, or one per class, behind one interface.

The image counterpart of :mod:`augment.tabular.synthesizer` over the same core
(:mod:`augment.core.synthesizer`: units of work, the training loop, exact seeded batches).
Saved files hold only tensors and plain data::

    synth.save("model.pt")
    synth = load_synthesizer("model.pt", device="cpu")     # any kind: augment.load_synthesizer
    images, labels = synth.sample({7: 100}, seed=0)        # exactly 100 uint8 images of class 7
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from augment.core.synthesizer import UnitSynthesizer, fit_unit, load_device
from augment.core.train import TrainingLoop, TrainingResult
from augment.image.cgan import SAMPLE_BATCH, ImageCGAN, ImageGANSettings, ImageTrainSettings
from augment.image.shards import encode_png

IMAGE_SYNTHESIZER_FORMAT = "augment.image_synthesizer/1"


def fit_image_unit(
    images: np.ndarray,
    labels: Sequence[Any],
    classes: Sequence[Any],
    *,
    gan: ImageGANSettings,
    train: ImageTrainSettings,
    device: str = "auto",
    loop: TrainingLoop | None = None,
    snapshot: Callable[[int, ImageCGAN], None] | None = None,
) -> tuple[ImageCGAN, TrainingResult]:
    """Fit a conditional image GAN on the images of ``classes``.

    Args:
        images: uint8 ``(N, size, size, channels)``, all classes (this unit's are picked out).
        labels: ``(N,)`` class values.
        classes: the classes this unit models; the GAN is conditioned on them.
        loop: checkpoints, resume, callbacks and progress of the training loop.
        snapshot: called as ``snapshot(step, model)`` after every step (e.g. to log sample grids
            from the EMA generator); it must not touch the training state.
    """
    labels = np.asarray(labels)
    keep = np.isin(labels, np.asarray(list(classes), dtype=labels.dtype))
    model = ImageCGAN(classes, gan)
    loop = loop or TrainingLoop(checkpoint_every=250)
    if snapshot is not None:
        callbacks = [*loop.callbacks, lambda step, _losses: snapshot(step, model)]
        loop = replace(loop, callbacks=callbacks)
    result = fit_unit(
        model,
        images[keep],
        labels[keep].tolist(),
        train,
        device=device,
        what="image GAN",
        model_format=IMAGE_SYNTHESIZER_FORMAT,
        loop=loop,
    )
    return model, result


class ImageSynthesizer(UnitSynthesizer):
    """Routes each class to the unit that models it and samples exact per-class counts."""

    kind = "image"
    format = IMAGE_SYNTHESIZER_FORMAT
    batch_size = SAMPLE_BATCH

    def __init__(self, units: Sequence[ImageCGAN], classes: Sequence[Any], label: str = "label"):
        super().__init__(units)
        self.all_classes = list(classes)  # every class of the data, modelled or not
        self.label = label

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
        return self.unit_batches(counts, seed, batch_size)

    def sample(self, counts: Mapping[Any, int], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """All requested images ``(n, H, W, C)`` and their labels ``(n,)``."""
        images = [np.zeros((0, *self.image_shape), dtype=np.uint8)]
        labels: list[Any] = []
        for cls, batch in self.iter_batches(counts, seed):
            images.append(batch)
            labels.extend([cls] * len(batch))
        return np.concatenate(images), np.asarray(labels)

    def sample_frame(self, counts: Mapping[Any, int], seed: int = 0) -> pd.DataFrame:
        """The images as PNG bytes with their label, as in the job's image shards."""
        images, labels = self.sample(counts, seed=seed)
        return pd.DataFrame({"label": labels, "image": encode_png(images)})

    def _payload(self) -> dict[str, Any]:
        return {"classes": list(self.all_classes), "label": self.label}


def image_synthesizer_from_payload(
    payload: dict[str, Any], device: str = "cpu"
) -> ImageSynthesizer:
    target = load_device(device)
    units = [ImageCGAN.from_state_dict(state, target) for state in payload["units"]]
    return ImageSynthesizer(units, payload["classes"], payload.get("label", "label"))
