"""Classic augmentation: the albumentations pipeline of the validation's classic arms, and the
warp a recipe may put on generated images (:mod:`augment.image.synthesizer`).

Used on arrays of uint8 ``(N, H, W, C)`` images::

    moved = warp_images(images, seed=0)                 # each image moved once, reproducibly
    pipeline = classic_augmentation(size=28, seed=0)    # an albumentations Compose
"""

from __future__ import annotations

import albumentations as A
import cv2
import numpy as np


def classic_augmentation(size: int, seed: int) -> A.Compose:
    """The albumentations pipeline of the classic arm, scaled to ``size`` pixels.

    A small affine move on every image (rotation up to 12 degrees, shift up to 8 %, zoom 0.9-1.1),
    then, each with probability 0.5, an elastic distortion and a brightness/contrast change of up
    to 20 %. The elastic strength is Simard et al.'s for 28 px digits (alpha 34, sigma 4) scaled
    with the image so that pixels move ~5 % of the side at any size; unscaled, it tore 8 px digits
    apart. Borders are filled with black, the background of most small-image sets.
    """
    scale = size / 28
    return A.Compose(
        [
            A.Affine(
                rotate=(-12, 12),
                translate_percent=(-0.08, 0.08),
                scale=(0.9, 1.1),
                border_mode=cv2.BORDER_CONSTANT,
                fill=0,
                p=1.0,
            ),
            A.ElasticTransform(
                alpha=34 * scale**2, sigma=4 * scale, border_mode=cv2.BORDER_CONSTANT, p=0.5
            ),
            A.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2, p=0.5),
        ],
        seed=seed,
    )


def warp_images(images: np.ndarray, seed: int) -> np.ndarray:
    """Each uint8 ``(N, H, W, C)`` image moved once by :func:`classic_augmentation`, seeded."""
    if len(images) == 0:
        return images
    pipeline = classic_augmentation(images.shape[1], seed)
    out = np.empty_like(images)
    for position, image in enumerate(images):
        # albumentations keeps (H, W, 1) as it is, so greyscale needs no special case.
        out[position] = pipeline(image=image)["image"]
    return out
