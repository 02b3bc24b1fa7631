"""Classic augmentation: the albumentations pipeline of the validation's classic arms, and the
warp a recipe may put on generated images (:mod:`augment.image.synthesizer`).

Used on arrays of uint8 ``(N, H, W, C)`` images::

    moved = warp_images(images, seed=0)                 # each image moved once, reproducibly
    pipeline = classic_augmentation(size=28, seed=0)    # an albumentations Compose

What a move uncovers at the images' edges is filled the way their frames say
(``border="auto"``): black when most frames of the batch are black (digits, astronomy: the world
outside the picture is the background), the picture mirrored at its edge otherwise (photos,
textures: content runs to the edge, and black corners would be a feature no real image has;
measured on the texture patches of ``benchmarks/images.py``, black corners cost the
albumentations arm 0-1.4 CNN and 4-5.5 linear points per seed, ``benchmarks/NOTES.md``). One fill per batch
(a set, a class's generated images, a training batch), not per image: a digit whose background
was brightened is still a digit on a background, and mirroring it would copy its strokes.
"""

from __future__ import annotations

from typing import Literal

import albumentations as A
import cv2
import numpy as np

Border = Literal["auto", "constant", "reflect"]
# a frame is black when at least half of its outer ring of pixels is at most DARK (of 255): the
# ring of a digit upscaled from 8 px is 63-75 % black (its strokes touch the edge), of a texture
# or photo patch rarely half, unless the picture is black there (space, a dark ground); 89 % of
# the benchmark's distorted digits (noise, brightened backgrounds)
DARK = 32
DARK_SHARE = 0.5
# a batch is filled with black when at least this share of its frames are black
BLACK_BATCH = 0.5


def classic_augmentation(
    size: int, seed: int, border: Literal["constant", "reflect"] = "constant"
) -> A.Compose:
    """The albumentations pipeline of the classic arm, scaled to ``size`` pixels.

    A small affine move on every image (rotation up to 12 degrees, shift up to 8 %, zoom 0.9-1.1),
    then, each with probability 0.5, an elastic distortion and a brightness/contrast change of up
    to 20 %. The elastic strength is Simard et al.'s for 28 px digits (alpha 34, sigma 4) scaled
    with the image so that pixels move ~5 % of the side at any size; unscaled, it tore 8 px digits
    apart. ``border``: what the move uncovers is filled with black (``constant``) or with the
    image mirrored at its edge (``reflect``); :func:`edge_fill` picks one per batch.
    """
    scale = size / 28
    if border == "constant":
        edges: dict = {"border_mode": cv2.BORDER_CONSTANT, "fill": 0}
    elif border == "reflect":
        edges = {"border_mode": cv2.BORDER_REFLECT_101}
    else:
        raise ValueError(f"border must be 'constant' or 'reflect', not {border!r}")
    return A.Compose(
        [
            A.Affine(
                rotate=(-12, 12), translate_percent=(-0.08, 0.08), scale=(0.9, 1.1), p=1.0, **edges
            ),
            A.ElasticTransform(
                alpha=34 * scale**2,
                sigma=4 * scale,
                border_mode=edges["border_mode"],
                p=0.5,
            ),
            A.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2, p=0.5),
        ],
        seed=seed,
    )


def dark_frames(images: np.ndarray) -> np.ndarray:
    """``(N,)`` bool: whether each uint8 ``(N, H, W, C)`` image's outer ring of pixels is black
    (at least :data:`DARK_SHARE` of its values at most :data:`DARK`)."""
    if len(images) == 0:
        return np.zeros(0, dtype=bool)
    ring = np.concatenate(
        [
            images[:, 0].reshape(len(images), -1),
            images[:, -1].reshape(len(images), -1),
            images[:, 1:-1, 0].reshape(len(images), -1),
            images[:, 1:-1, -1].reshape(len(images), -1),
        ],
        axis=1,
    )
    return (ring <= DARK).mean(axis=1) >= DARK_SHARE


def edge_fill(images: np.ndarray, border: Border = "auto") -> Literal["constant", "reflect"]:
    """How a batch of uint8 ``(N, H, W, C)`` images is filled at its edges when moved:
    ``border`` itself, or for ``auto`` black (``constant``) when at least half of the images'
    frames are black (:func:`dark_frames`), mirrored (``reflect``) otherwise."""
    if border == "auto":
        black = len(images) and dark_frames(images).mean() >= BLACK_BATCH
        return "constant" if black else "reflect"
    if border not in ("constant", "reflect"):
        raise ValueError(f"border must be 'auto', 'constant' or 'reflect', not {border!r}")
    return border


def warp_images(images: np.ndarray, seed: int, border: Border = "auto") -> np.ndarray:
    """Each uint8 ``(N, H, W, C)`` image moved once by :func:`classic_augmentation`, seeded;
    its edges filled as :func:`edge_fill` says."""
    if len(images) == 0:
        return images
    pipeline = classic_augmentation(images.shape[1], seed, edge_fill(images, border))
    out = np.empty_like(images)
    for position, image in enumerate(images):
        # albumentations keeps (H, W, 1) as it is, so greyscale needs no special case.
        out[position] = pipeline(image=image)["image"]
    return out
