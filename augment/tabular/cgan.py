"""The table's conditional GAN: the shared vector GAN of :mod:`augment.core.cgan` over the
table's encoder (:class:`augment.tabular.transform.TabularEncoder`).

Everything about the networks, the hand-written critic gradients and the trainer lives in the
core module, which the image wing uses over autoencoder codes as well; this module binds the
codec, so a saved table unit loads its encoder.
"""

from __future__ import annotations

from augment.core.cgan import GANSettings, VectorCGAN, VectorGANTrainer
from augment.core.train import TrainSettings
from augment.tabular.transform import TabularEncoder

__all__ = ["GANSettings", "TabularCGAN", "TabularGANTrainer", "TrainSettings"]

TabularGANTrainer = VectorGANTrainer


class TabularCGAN(VectorCGAN):
    """A fitted table encoder + generator; ``sample`` returns feature rows (a DataFrame)."""

    codec_type = TabularEncoder
