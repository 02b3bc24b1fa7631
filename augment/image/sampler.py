"""``ImageGANOverSampler``: the conditional image GAN as an imbalanced-learn sampler.

``X`` is a uint8 array of images, ``(N, H, W)`` (grey) or ``(N, H, W, C)`` with C = 1 or 3, all of
one square size from 8 to 64 pixels that fits the generator (see
:func:`augment.image.cgan.base_grid`). ``fit_resample`` returns the real images followed by
exactly the generated ones, in the input's layout::

    from augment import ImageGANOverSampler

    X_res, y_res = ImageGANOverSampler(steps=1000, random_state=0).fit_resample(X, y)

In an ``imblearn.pipeline.Pipeline`` the next step receives the image array; flatten it there
(e.g. ``FunctionTransformer(lambda X: X.reshape(len(X), -1))``) for a scikit-learn classifier.
"""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Integral, Real
from typing import Any

import numpy as np
from imblearn.over_sampling.base import BaseOverSampler
from sklearn.utils import check_random_state, column_or_1d
from sklearn.utils._param_validation import Interval, StrOptions

from augment.core.device import cpu_threads
from augment.core.errors import DataError
from augment.image.cgan import ImageGANSettings, ImageTrainSettings, base_grid
from augment.image.synthesizer import (
    IMAGE_SYNTHESIZER_FORMAT,
    ImageSynthesizer,
    fit_image_unit,
    image_synthesizer_from_payload,
)
from augment.tabular.sampler import SavedSamplerMixin, _plain
from augment.tabular.synthesizer import training_units


class ImageGANOverSampler(SavedSamplerMixin, BaseOverSampler):
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

    Fitted attributes: ``sampling_strategy_``, ``synthesizer_``, ``n_generated_``, ``seed_``.
    """

    _parameter_constraints: dict = {
        **BaseOverSampler._parameter_constraints,
        "mode": [StrOptions({"conditional", "per_class"})],
        "steps": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "critic_steps": [Interval(Integral, 1, None, closed="left")],
        "width": [Interval(Integral, 1, None, closed="left")],
        "noise_dim": [Interval(Integral, 1, None, closed="left")],
        "ema_decay": [Interval(Real, 0, 1, closed="left")],
        "diff_augment": [str],
        "device": [StrOptions({"auto", "cpu", "cuda"})],
        "precision": [StrOptions({"auto", "fp32", "bf16"})],
        "random_state": ["random_state"],
        "progress": ["boolean"],
        "cpu_threads": [Interval(Integral, 1, None, closed="left"), None],
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
    ) -> None:
        super().__init__(sampling_strategy=sampling_strategy)
        self.mode = mode
        self.steps = steps
        self.batch_size = batch_size
        self.lr = lr
        self.critic_steps = critic_steps
        self.width = width
        self.noise_dim = noise_dim
        self.ema_decay = ema_decay
        self.diff_augment = diff_augment
        self.device = device
        self.precision = precision
        self.random_state = random_state
        self.progress = progress
        self.cpu_threads = cpu_threads

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
        if X.ndim == 3:
            X = X[..., None]
        if X.ndim != 4 or X.shape[3] not in (1, 3) or X.shape[1] != X.shape[2]:
            raise DataError(
                f"X must be square images shaped (N, H, W) or (N, H, W, 1|3), got {X.shape}"
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

    def _fit_resample(self, X, y):
        with cpu_threads(self.cpu_threads):
            return self._fit_and_generate(X, y)

    def _fit_and_generate(self, X, y):
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        labels = column_or_1d(y)
        classes = sorted({_plain(v) for v in labels}, key=lambda v: (str(type(v)), v))
        plan = {c: 0 for c in classes}
        plan.update({_plain(c): int(n) for c, n in self.sampling_strategy_.items()})
        gan = ImageGANSettings(
            size=X.shape[1],
            channels=X.shape[3],
            noise_dim=self.noise_dim,
            width=self.width,
            ema_decay=self.ema_decay,
            diff_augment=self.diff_augment,
        )
        train = ImageTrainSettings(
            steps=self.steps,
            batch_size=self.batch_size,
            lr=self.lr,
            critic_steps=self.critic_steps,
            seed=seed,
            precision=self.precision,
        )
        plain_labels = [_plain(v) for v in labels]
        models = [
            fit_image_unit(
                X,
                plain_labels,
                unit,
                gan=gan,
                train=train,
                device=self.device,
                progress=self.progress,
            )[0]
            for unit in training_units(classes, plan, self.mode)
        ]
        self.synthesizer_ = ImageSynthesizer(models, classes)
        self.seed_ = seed
        new_x, new_y = self.synthesizer_.sample({c: n for c, n in plan.items() if n}, seed=seed)
        self.n_generated_ = {c: int(np.sum(new_y == c)) if len(new_y) else 0 for c in plan}
        return self._combine(X, y, new_x, new_y)

    def _combine(self, X, y, new_x: np.ndarray, new_y: np.ndarray):
        y = np.asarray(y)
        X_res = np.concatenate([X, new_x])
        y_res = np.concatenate([y, new_y.astype(y.dtype)]) if len(new_y) else y.copy()
        if getattr(self, "input_ndim_", 4) == 3:
            X_res = X_res[..., 0]
        return X_res, y_res

    # -- reuse after fitting -------------------------------------------------------------------
    def sample(
        self, n_per_class: Mapping[Any, int], seed: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Generate exactly ``n_per_class[c]`` new images per class (no real ones)."""
        self._require_fitted()
        images, labels = self.synthesizer_.sample(
            {_plain(c): int(n) for c, n in n_per_class.items()},
            seed=self.seed_ if seed is None else seed,
        )
        if getattr(self, "input_ndim_", 4) == 3:
            images = images[..., 0]
        return images, labels
