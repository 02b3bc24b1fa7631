"""A fitted image synthesizer: one conditional image GAN, or one per class, behind one interface.

The image counterpart of :mod:`augment.tabular.synthesizer` over the same core
(:mod:`augment.core.synthesizer`: units of work, the training loop, exact seeded batches).
Saved files hold only tensors and plain data::

    synth.save("model.pt")
    synth = load_synthesizer("model.pt", device="cpu")     # any kind: augment.load_synthesizer
    images, labels = synth.sample({7: 100}, seed=0)        # exactly 100 uint8 images of class 7

What a class's images are made of is the synthesizer's :class:`Recipe`: the GAN's samples, images
between real codes of the shared autoencoder (:mod:`augment.image.latent`), or half of each, each
optionally moved once by the classic warp (:func:`augment.image.classic.warp_images`). The
samplers and the job pick the recipe on an inner split of the training images
(:mod:`augment.image.choice`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from augment.core.synthesizer import UnitSynthesizer, fit_unit, load_device
from augment.core.train import TrainingLoop, TrainingResult
from augment.image.cgan import SAMPLE_BATCH, ImageCGAN, ImageGANSettings, ImageTrainSettings
from augment.image.classic import warp_images
from augment.image.latent import LatentBank
from augment.image.shards import encode_png

IMAGE_SYNTHESIZER_FORMAT = "augment.image_synthesizer/1"
SOURCES = ("gan", "latent", "mix")
LATENT_SHARE = {"gan": 0.0, "latent": 1.0, "mix": 0.5}


@dataclass(frozen=True)
class Recipe:
    """What a generated image is made of.

    Attributes:
        source: ``gan`` (the conditional GAN's samples), ``latent`` (decoded codes between a real
            image and a same-class neighbour, :class:`augment.image.latent.LatentBank`) or
            ``mix`` (half of each, in every batch).
        warp: move each generated image once with the classic warp (affine, elastic, contrast).
    """

    source: str = "gan"
    warp: bool = False

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"unknown image source {self.source!r}; choose from {SOURCES}")

    @property
    def name(self) -> str:
        """``latent``, ``mix+warp``, ...: how reports and MLflow name it."""
        return self.source + ("+warp" if self.warp else "")

    @classmethod
    def parse(cls, name: str) -> Recipe:
        source, _, warp = name.partition("+")
        if warp not in ("", "warp"):
            raise ValueError(f"unknown recipe {name!r}; e.g. 'latent', 'mix+warp'")
        return cls(source, warp == "warp")

    @property
    def needs_gan(self) -> bool:
        return LATENT_SHARE[self.source] < 1.0

    @property
    def needs_bank(self) -> bool:
        return LATENT_SHARE[self.source] > 0.0


class TransferUnit:
    """One class's route to its images under a recipe: a GAN unit, the shared bank, or both."""

    def __init__(self, gan: ImageCGAN | None, bank: LatentBank | None, recipe: Recipe) -> None:
        if recipe.needs_gan and gan is None:
            raise ValueError(f"the recipe {recipe.name!r} needs a trained GAN")
        if recipe.needs_bank and bank is None:
            raise ValueError(f"the recipe {recipe.name!r} needs the shared autoencoder")
        self.gan, self.bank, self.recipe = gan, bank, recipe

    def sample(self, cls: Any, n_images: int, seed: int) -> np.ndarray:
        n_latent = round(n_images * LATENT_SHARE[self.recipe.source])
        parts = []
        if n_latent:
            parts.append(self.bank.sample(cls, n_latent, seed))
        if n_images - n_latent:
            parts.append(self.gan.sample(cls, n_images - n_latent, seed))
        images = np.concatenate(parts)
        return warp_images(images, seed) if self.recipe.warp else images


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

    def __init__(
        self,
        units: Sequence[ImageCGAN],
        classes: Sequence[Any],
        label: str = "label",
        bank: LatentBank | None = None,
        recipe: Recipe | None = None,
    ):
        super().__init__(units)  # the GAN units: what is saved
        self.all_classes = list(classes)  # every class of the data, modelled or not
        self.label = label
        self.bank = bank
        self.recipe = recipe or Recipe("gan")
        self.use(self.recipe)

    def use(self, recipe: Recipe) -> None:
        """Generate with ``recipe`` from now on (both parts it needs must be fitted)."""
        gan_of = {c: unit for unit in self.units for c in unit.classes}
        modelled = list(gan_of) if recipe.needs_gan else []
        if recipe.needs_bank:
            bank_classes = self.bank.classes if self.bank is not None else []
            modelled = bank_classes if not modelled else [c for c in modelled if c in bank_classes]
        self.unit_of = {c: TransferUnit(gan_of.get(c), self.bank, recipe) for c in modelled}
        self.recipe = recipe

    def keep_anchors(self, classes: Sequence[Any]) -> None:
        """Keep in the bank only the real images of ``classes`` (those that get new images), so
        a saved model holds no more training images than it generates from."""
        if self.bank is not None:
            keep = {
                c: np.arange(len(self.bank.anchors[c])) for c in classes if c in self.bank.anchors
            }
            self.bank = self.bank.restricted(keep)
            self.use(self.recipe)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        s = self.units[0].settings if self.units else self.bank.settings
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
        return {
            "classes": list(self.all_classes),
            "label": self.label,
            "recipe": self.recipe.name,
            "bank": self.bank.state_dict() if self.bank is not None else None,
        }


def image_synthesizer_from_payload(
    payload: dict[str, Any], device: str = "cpu"
) -> ImageSynthesizer:
    target = load_device(device)
    units = [ImageCGAN.from_state_dict(state, target) for state in payload["units"]]
    bank = payload.get("bank")
    return ImageSynthesizer(
        units,
        payload["classes"],
        payload.get("label", "label"),
        bank=LatentBank.from_state_dict(bank, target) if bank else None,
        recipe=Recipe.parse(payload.get("recipe", "gan")),  # files from before recipes: the GAN
    )
