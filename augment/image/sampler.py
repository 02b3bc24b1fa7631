"""``ImageGANOverSampler``: the conditional image GAN as an imbalanced-learn sampler.

``X`` is a uint8 array of images, ``(N, H, W)`` (grey) or ``(N, H, W, C)`` with C = 1 or 3, all of
one square size from 8 to 256 pixels that fits the generator (see
:func:`augment.image.sizes.base_grid`; above 64 px the autoencoder works on them area-averaged to
64 px and gives the detail back, :mod:`augment.image.sizes`). ``fit_resample`` returns the real images followed by
exactly the generated ones, in the input's layout::

    from augment import ImageGANOverSampler

    X_res, y_res = ImageGANOverSampler(steps=1000, random_state=0).fit_resample(X, y)

In an ``imblearn.pipeline.Pipeline`` the next step receives the image array; flatten it there
(e.g. ``FunctionTransformer(lambda X: X.reshape(len(X), -1))``) for a scikit-learn classifier.

What the new images are made of is a recipe (:class:`augment.image.synthesizer.Recipe`): the
GAN's samples, images between real codes of an autoencoder trained on every class (transfer from
the frequent classes to the rare ones, :mod:`augment.image.latent`), half of each, each with or
without a classic warp. By default (``recipe="auto"``) an inner split of the training images picks
it (:mod:`augment.image.choice`); ``choice_`` tells what was picked and every candidate's score.
"""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Integral
from typing import Any

import numpy as np
from sklearn.utils import column_or_1d
from sklearn.utils._param_validation import Interval, StrOptions

from augment.core.balance import to_python
from augment.core.device import cpu_threads, resolve_device
from augment.core.errors import DataError
from augment.core.sampler import COMMON_CONSTRAINTS, GANSampler
from augment.core.synthesizer import training_units
from augment.core.train import TrainingLoop, settings_from
from augment.image.cgan import ImageGANSettings, ImageTrainSettings, base_grid
from augment.image.choice import ALL_RECIPES, DEFAULT_CANDIDATES, choose_recipe
from augment.image.latent import LatentSettings, fit_latent_bank
from augment.image.synthesizer import (
    IMAGE_SYNTHESIZER_FORMAT,
    ImageSynthesizer,
    Recipe,
    fit_image_unit,
    image_synthesizer_from_payload,
)


class ImageGANOverSampler(GANSampler):
    """Oversample image classes with a conditional GAN: exactly the planned images per class.

    Args:
        sampling_strategy: as in imbalanced-learn (``"auto"`` = ``"not majority"``, a float, a
            dict of target counts, ...).
        mode: ``conditional`` (one GAN conditioned on the class) or ``per_class``.
        steps, batch_size, lr, critic_steps: optimisation, counted in generator steps.
        width: generator/discriminator channels at half resolution (speed vs capacity).
        noise_dim, ema_decay, diff_augment: see ``augment.image.cgan.ImageGANSettings``.
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
        precision: ``auto`` (bf16 autocast on CUDA and on CPUs with AMX bf16 units, where training
            ran 1.3-1.5x faster), ``fp32`` or ``bf16``. Sampling is float32 on a CPU either way.
        random_state: seed; the same seed and data give the same images (on the same device).
        cpu_threads: torch threads during fit (``None`` = all cores); restored afterwards.
        recipe: ``auto`` (chosen on an inner split of the training images among
            ``recipe_candidates``), or one of :data:`augment.image.choice.ALL_RECIPES`
            (``latent``, ``code-mix``, ``code-gan``, ``mix``, ``gan``, each also ``+warp``). A
            recipe without the pixel GAN (``gan``, ``mix``) does not train it; one without a
            code recipe does not train the autoencoder.
        recipe_candidates: the recipes ``auto`` tries, in order of preference (default:
            ``code-mix+warp`` against ``code-mix``, then, if the warp lost, ``latent``
            against ``code-mix``; any of :data:`augment.image.choice.ALL_RECIPES`; a recipe
            that draws from a GAN trains it, and a second one on the inner training images to
            judge it).
        autoencoder_steps, latent_dim: the shared autoencoder (see
            :class:`augment.image.latent.LatentSettings`).
        code_gan_steps: steps of the conditional GAN over the autoencoder's codes (the core
            GAN the tables use), trained when a recipe draws from it (``code-gan``,
            ``code-mix``).
        filter_generated: draw three codes from the code GAN per image and keep the third whose
            nearest real codes (every class) are most often of the image's class.
        match_moments: move each batch of a class's kept GAN codes to the mean and covariance
            of the class's real codes.
        choice_epochs: epochs of the CNN that judges each candidate recipe.

    Fitted attributes: ``classes_``, ``sampling_strategy_``, ``synthesizer_``, ``n_generated_``, ``seed_``,
    ``recipe_`` (the recipe used) and ``choice_`` (``None`` for a fixed recipe, else the chosen
    recipe, each candidate's inner balanced accuracy and the inner split's sizes).
    """

    _parameter_constraints: dict = {
        **COMMON_CONSTRAINTS,
        "width": [Interval(Integral, 1, None, closed="left")],
        "diff_augment": [str],
        "recipe": [StrOptions({"auto", *ALL_RECIPES})],
        "recipe_candidates": [list, tuple, None],
        "autoencoder_steps": [Interval(Integral, 1, None, closed="left")],
        "latent_dim": [Interval(Integral, 1, None, closed="left")],
        "code_gan_steps": [Interval(Integral, 1, None, closed="left")],
        "filter_generated": ["boolean"],
        "match_moments": ["boolean"],
        "choice_epochs": [Interval(Integral, 1, None, closed="left")],
    }

    _FORMAT = IMAGE_SYNTHESIZER_FORMAT
    _SAVED = {"input_ndim": 4}
    _synthesizer_from_payload = staticmethod(image_synthesizer_from_payload)

    def __init__(
        self,
        *,
        sampling_strategy: Any = "auto",
        mode: str = "conditional",
        steps: int = 1000,
        batch_size: int = 128,
        lr: float = 5e-4,
        critic_steps: int = 1,
        width: int = 32,
        noise_dim: int = 64,
        ema_decay: float = 0.99,
        diff_augment: str = "color,translation,cutout",
        device: str = "auto",
        precision: str = "auto",
        random_state: Any = None,
        progress: bool = False,
        cpu_threads: int | None = None,
        recipe: str = "auto",
        recipe_candidates: Any = None,
        autoencoder_steps: int = 600,
        latent_dim: int = 32,
        code_gan_steps: int = 500,
        filter_generated: bool = True,
        match_moments: bool = True,
        choice_epochs: int = 5,
    ) -> None:
        super().__init__(sampling_strategy=sampling_strategy)
        self._store_params(locals())

    # imbalanced-learn would flatten X into a 2-D float array; images keep their shape and dtype.
    def _check_X_y(self, X, y, accept_sparse=None):  # noqa: N802 - imblearn's name
        from imblearn.utils import check_target_type

        y, binarize_y = check_target_type(y, indicate_one_vs_all=True)
        X = np.asarray(X)
        if X.dtype != np.uint8:
            raise DataError(
                f"X must be uint8 images (0..255), got dtype {X.dtype}; convert with "
                "np.clip(X, 0, 255).astype(np.uint8) (scale [0, 1] floats by 255 first)"
            )
        given = X.shape  # as passed in: the message names that, not the channel axis added here
        if X.ndim == 3:
            X = X[..., None]
        if X.ndim != 4 or X.shape[3] not in (1, 3) or X.shape[1] != X.shape[2]:
            raise DataError(
                f"X must be square images shaped (N, H, W) or (N, H, W, 1|3), got {given}"
            )
        try:
            base_grid(X.shape[1])
        except ValueError as error:
            raise DataError(f"X: {error}; resize the images first") from None
        if len(X) != len(y):
            raise DataError(f"X has {len(X)} images but y has {len(y)}; they must match")
        return X, y, binarize_y

    def fit_resample(self, X, y, **params):
        self.input_ndim_ = np.asarray(X).ndim
        return super().fit_resample(X, y, **params)

    # -- the hooks of core.sampler.GANSampler ------------------------------------------------
    def _prepare(self, X, y) -> tuple[tuple[np.ndarray, list[Any]], list[Any]]:
        labels = [to_python(v) for v in column_or_1d(y)]
        classes = sorted(set(labels), key=lambda v: (str(type(v)), v))
        return (X, labels), classes

    def _fit_unit(self, prepared, classes: list[Any], seed: int):
        images, labels = prepared
        return fit_image_unit(
            images,
            labels,
            classes,
            gan=settings_from(
                ImageGANSettings, self, size=images.shape[1], channels=images.shape[3]
            ),
            train=settings_from(ImageTrainSettings, self, seed=seed),
            device=self.device,
            loop=TrainingLoop(progress=self.progress),
        )[0]

    def _recipes(self) -> list[Recipe]:
        """The recipes this sampler may use: the fixed one, or the candidates of ``auto``."""
        if self.recipe != "auto":
            return [Recipe.parse(self.recipe)]
        names = list(self.recipe_candidates or DEFAULT_CANDIDATES)
        unknown = [n for n in names if n not in ALL_RECIPES]
        if unknown or not names:
            raise DataError(
                f"recipe_candidates {names!r}: use some of {list(ALL_RECIPES)}; got {unknown}"
            )
        return [Recipe.parse(n) for n in names]

    def _needs_model(self) -> bool:
        return any(r.needs_gan for r in self._recipes())

    def _assemble(self, models, prepared, classes: list[Any]) -> ImageSynthesizer:
        images, labels = prepared
        recipes = self._recipes()
        device = resolve_device(self.device)
        bank = None
        if any(r.needs_bank for r in recipes):
            settings = LatentSettings(
                size=images.shape[1],
                channels=images.shape[3],
                latent_dim=self.latent_dim,
                steps=self.autoencoder_steps,
                precision=self.precision,
            )
            bank = fit_latent_bank(
                # the bank's anchors may be views of the images it gets: never of the caller's X,
                # which the caller may change after fit_resample
                images.copy(),
                labels,
                classes,
                settings,
                seed=self.seed_,
                device=device,
                gan_steps=self.code_gan_steps if any(r.needs_code_gan for r in recipes) else 0,
                loop=TrainingLoop(progress=self.progress),
            )
            bank.codes.filter_generated = self.filter_generated
            bank.codes.match_moments = self.match_moments
        synthesizer = ImageSynthesizer(models, classes, bank=bank, recipe=recipes[0])
        self.choice_ = None
        if self.recipe == "auto":
            lookup = {c: i for i, c in enumerate(classes)}
            index = np.array([lookup[v] for v in labels], dtype=np.int64)

            def fit_inner_gans(inner_images: np.ndarray, inner_labels: list[Any]) -> list[Any]:
                plan = {c: 1 for c in classes}  # every unit the mode makes for a full plan
                units = training_units(classes, plan, self.mode)
                return [self._fit_unit((inner_images, inner_labels), u, self.seed_) for u in units]

            choice = choose_recipe(
                synthesizer,
                images,
                index,
                len(classes),
                candidates=recipes,
                epochs=self.choice_epochs,
                seed=self.seed_,
                device=device,
                fit_inner_gans=fit_inner_gans,
            )
            synthesizer.use(choice.recipe)
            self.choice_ = choice.as_dict()
        synthesizer.keep_anchors([to_python(c) for c, n in self.sampling_strategy_.items() if n])
        self.recipe_ = synthesizer.recipe.name
        return synthesizer

    def _saved_state(self) -> dict[str, Any]:
        return {"recipe_": self.recipe_, "choice_": self.choice_}

    def _restore_state(self, extra: dict[str, Any]) -> None:
        self.recipe_ = extra.get("recipe_", self.synthesizer_.recipe.name)
        self.choice_ = extra.get("choice_")

    def _sample(self, plan: Mapping[Any, int], seed: int) -> tuple[np.ndarray, np.ndarray]:
        # on one torch thread, as a job's generation parts run: decoding batches of 512 small
        # images ran faster on one thread than on two (2.9 s against 4.2-5.3 s for the three
        # draws of a digits-sized resample), and the images do not depend on the cores
        with cpu_threads(1):
            images, labels = self.synthesizer_.sample(plan, seed=seed)
        if getattr(self, "input_ndim_", 4) == 3:
            images = images[..., 0]
        return images, labels

    def _combine(self, X, y, new_x: np.ndarray, new_y: np.ndarray):
        y = np.asarray(y)
        if getattr(self, "input_ndim_", 4) == 3:
            X = X[..., 0]  # _check_X_y added the channel axis
        X_res = np.concatenate([X, new_x])
        y_res = np.concatenate([y, new_y.astype(y.dtype)]) if len(new_y) else y.copy()
        return X_res, y_res
