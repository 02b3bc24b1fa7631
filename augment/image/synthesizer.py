"""A fitted image synthesizer: one conditional image GAN, or one per class, behind one interface.

The image counterpart of :mod:`augment.tabular.synthesizer` over the same core
(:mod:`augment.core.synthesizer`: units of work, the training loop, exact seeded batches).
Saved files hold only tensors and plain data::

    synth.save("model.pt")
    synth = load_synthesizer("model.pt", device="cpu")     # any kind: augment.load_synthesizer
    images, labels = synth.sample({7: 100}, seed=0)        # exactly 100 uint8 images of class 7

What a class's images are made of is the synthesizer's :class:`Recipe`: images decoded from
codes of the shared autoencoder (:mod:`augment.image.latent`), either between real codes
(``latent``) or drawn by the conditional GAN over codes and filtered (``code-gan``), or half of
each (``code-mix``, the table wing's mix); or the pixel-space GAN's samples (``gan``, ``mix`` with
half latent: a recipe for GPUs and large sets). Each is optionally moved once by the classic warp
(:func:`augment.image.classic.warp_images`). The samplers and the job pick the recipe on an inner
split of the training images (:mod:`augment.image.choice`) or take it as configured.
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
SOURCES = ("gan", "latent", "mix", "code-gan", "code-mix")
# each source's shares of a class's images: (between real codes, code GAN, pixel GAN)
SHARES = {
    "gan": (0.0, 0.0, 1.0),
    "latent": (1.0, 0.0, 0.0),
    "mix": (0.5, 0.0, 0.5),
    "code-gan": (0.0, 1.0, 0.0),
    "code-mix": (0.5, 0.5, 0.0),
}


@dataclass(frozen=True)
class Recipe:
    """What a generated image is made of.

    Attributes:
        source: ``latent`` (decoded codes between a real image and a same-class neighbour,
            :class:`augment.image.latent.LatentBank`), ``code-gan`` (decoded codes of the
            conditional GAN over codes, filtered and moment-matched), ``code-mix`` (half of
            each), ``gan`` (the pixel-space GAN's samples) or ``mix`` (half latent, half
            pixel GAN); a class's images in that order.
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
        """Needs the pixel-space GAN."""
        return SHARES[self.source][2] > 0.0

    @property
    def needs_code_gan(self) -> bool:
        return SHARES[self.source][1] > 0.0

    @property
    def needs_bank(self) -> bool:
        """Needs the shared autoencoder (every code recipe)."""
        return SHARES[self.source][0] + SHARES[self.source][1] > 0.0

    def split(self, n_images: int) -> tuple[int, int, int]:
        """(between real codes, code GAN, pixel GAN) images of a class's ``n_images``."""
        latent, code, _ = SHARES[self.source]
        n_latent = round(n_images * latent)
        n_code = n_images - n_latent if code else 0
        return n_latent, n_code, n_images - n_latent - n_code


ORIGINS = ("anchored", "gan", "dropped", "moved")


class TransferUnit:
    """One class's route to its images under a recipe: a GAN unit, the shared bank, or both."""

    def __init__(
        self,
        gan: ImageCGAN | None,
        bank: LatentBank | None,
        recipe: Recipe,
        origin: dict[str, dict[Any, int]] | None = None,
    ) -> None:
        if recipe.needs_gan and gan is None:
            raise ValueError(f"the recipe {recipe.name!r} needs a trained GAN")
        if recipe.needs_bank and bank is None:
            raise ValueError(f"the recipe {recipe.name!r} needs the shared autoencoder")
        if recipe.needs_code_gan and not bank.has_gan:
            raise ValueError(f"the recipe {recipe.name!r} needs the code GAN (gan_steps > 0)")
        self.gan, self.bank, self.recipe = gan, bank, recipe
        # per source, per class: how many images came from where (shared with the synthesizer)
        self.origin = origin if origin is not None else {key: {} for key in ORIGINS}

    def _count(self, key: str, cls: Any, n: int) -> None:
        self.origin[key][cls] = self.origin[key].get(cls, 0) + n

    def sample(self, cls: Any, n_images: int, seed: int) -> np.ndarray:
        n_latent, n_code, n_pixel = self.recipe.split(n_images)
        parts = []
        if n_latent:
            parts.append(self.bank.sample(cls, n_latent, seed))
            self._count("anchored", cls, n_latent)
        if n_code:
            images, stats = self.bank.sample_gan(cls, n_code, seed)
            parts.append(images)
            self._count("gan", cls, n_code)
            self._count("dropped", cls, stats["dropped"])
            self._count("moved", cls, stats["moved"])
        if n_pixel:
            parts.append(self.gan.sample(cls, n_pixel, seed))
            self._count("gan", cls, n_pixel)
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
        choice: dict[str, Any] | None = None,
    ):
        super().__init__(units)  # the GAN units: what is saved
        self.all_classes = list(classes)  # every class of the data, modelled or not
        self.label = label
        self.bank = bank
        self.recipe = recipe or Recipe("gan")
        # how the recipe was chosen (RecipeChoice.as_dict: every candidate's score), kept in the
        # file so that a cached rerun tells the same story; None when it was not chosen
        self.choice = choice
        # images made per source and class since the last reset_origin (see ORIGINS)
        self.origin: dict[str, dict[Any, int]] = {key: {} for key in ORIGINS}
        self.use(self.recipe)

    def reset_origin(self) -> None:
        """Count the images' sources from zero (a job resets before it generates its plan)."""
        for counts in self.origin.values():
            counts.clear()

    def origin_totals(self) -> dict[str, int]:
        """Images from each source over classes (``gan``, ``anchored``, ``dropped``, ``moved``)."""
        return {key: int(sum(counts.values())) for key, counts in self.origin.items()}

    def use(self, recipe: Recipe) -> None:
        """Generate with ``recipe`` from now on (both parts it needs must be fitted)."""
        gan_of = {c: unit for unit in self.units for c in unit.classes}
        modelled = list(gan_of) if recipe.needs_gan else []
        if recipe.needs_bank:
            bank_classes = self.bank.classes if self.bank is not None else []
            modelled = bank_classes if not modelled else [c for c in modelled if c in bank_classes]
        self.unit_of = {
            c: TransferUnit(gan_of.get(c), self.bank, recipe, self.origin) for c in modelled
        }
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
            "choice": self.choice,
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
        choice=payload.get("choice"),
    )
