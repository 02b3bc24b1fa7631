"""Images as codes: the shared autoencoder's codes are a continuous table the core engine serves.

An image becomes a vector through the shared autoencoder (:mod:`augment.image.latent`); this
module is the codec that hands those vectors to the one conditional GAN of
:mod:`augment.core.cgan`, standardised column by column (every span linear)::

    codec = CodeCodec.fit(codes)                    # codes: (N, latent_dim) float32
    gan = CodeGAN(codec, classes, GANSettings(...))
    fit_unit(gan, codes, labels, train, ...)        # the shared training loop
    new_codes = gan.sample(cls, 100, seed=0)        # (100, latent_dim), decoded by the bank

The image wing has no GAN of its own over codes: the generator, its critic, the EMA, the
checkpoints and the loss curves are the table GAN's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from augment.core.cgan import GANSettings, Span, VectorCGAN
from augment.core.train import TrainSettings

CODE_GAN_FORMAT = "augment.image_code_gan/1"


class CodeCodec:
    """Codes <-> the GAN's vectors: each code column standardised over every training image."""

    def __init__(self, center: np.ndarray, scale: np.ndarray) -> None:
        self.center = np.asarray(center, dtype=np.float32)
        self.scale = np.asarray(scale, dtype=np.float32)
        self.output_dim = len(self.center)
        self.spans = [Span(self.output_dim, "linear")]

    @classmethod
    def fit(cls, codes: np.ndarray) -> CodeCodec:
        scale = codes.std(axis=0)
        return cls(codes.mean(axis=0), np.where(scale > 1e-6, scale, 1.0))

    def transform(self, codes: np.ndarray) -> np.ndarray:
        """(N, D) codes -> (N, D) float32 standardised."""
        return ((np.asarray(codes, dtype=np.float32) - self.center) / self.scale).astype(np.float32)

    def inverse_transform(self, encoded: np.ndarray, codes: np.ndarray | None = None) -> np.ndarray:
        """(N, D) standardised -> (N, D) codes (``codes``: no softmax spans here, unused)."""
        return (np.asarray(encoded, dtype=np.float32) * self.scale + self.center).astype(np.float32)

    def state_dict(self) -> dict[str, Any]:
        return {"center": self.center.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> CodeCodec:
        return cls(np.asarray(state["center"]), np.asarray(state["scale"]))


class CodeGAN(VectorCGAN):
    """The core conditional GAN over standardised autoencoder codes; ``sample`` gives codes."""

    codec_type = CodeCodec


# A code is a short dense vector (32 numbers by default): the table GAN's widths (128, 128) (256
# cost 3x the time per step: 32 ms against 10 ms on one loaded core, 2026-12-07), a batch of 128
# and a slower EMA than the table default, since an image job trains more steps.
def code_gan_settings(noise_dim: int = 32, dims: tuple[int, ...] = (128, 128)) -> GANSettings:
    """The code GAN's architecture (the table GAN's networks, sized for codes)."""
    return GANSettings(
        noise_dim=noise_dim, generator_dims=dims, discriminator_dims=dims, pac=4, ema_decay=0.99
    )


def code_train_settings(steps: int, seed: int, precision: str = "auto") -> TrainSettings:
    """Optimisation of the code GAN: ``steps`` generator steps over batches of 128 codes."""
    return TrainSettings(
        steps=steps, batch_size=128, lr=1e-3, critic_steps=3, seed=seed, precision=precision
    )
