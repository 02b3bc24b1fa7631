"""Texture patches for ``benchmarks/images.py``: training and test patches cut from disjoint
regions of the photographs and textures that ship offline in the scikit-image wheel and in
scikit-learn (scikit-image is a benchmark extra: ``make`` target ``$(VENV)/.bench``)::

    patches = texture_patches()          # seeded; the same patches on every call
    patches.train_images.shape           # (3000, 32, 32, 1) uint8: 300 per class
    patches.test_images.shape            # (1500, 32, 32, 1) uint8: 150 per class

One class per source image, in the order of :data:`SOURCES`. Each image is split by columns: the
left 70 % is the training region, then a gap one patch wide, then the test region (the rest, about
a quarter of the width). Patches lie wholly inside their region at seeded random positions, so no
test pixel, and no pixel next to one, is ever in a training patch. Patches of one region overlap
each other (a 512 x 122 test region holds ~60 patches side by side), as the crops of a photo do.

Grey-scale: brick, grass and gravel are grey, and with colour beside them a class would be told
by whether it has colour at all; in grey every class must be told by its texture. Colour sources
go through Pillow's ``convert("L")``, as ``augment.image.sources`` greys images.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from PIL import Image
from sklearn.datasets import load_sample_image

PATCH = 32  # a size the image wing supports (4-7 times a power of two, 8..64)
TRAIN_SHARE = 0.7
TRAIN_PER_CLASS = 300
TEST_PER_CLASS = 150

# Class order is size order once the benchmark subsamples the training split (the first class
# keeps every patch, the last the fewest): the three textures the issue names are the rarest,
# the classes where a generator could make new texture and a warp cannot.
# Every skimage image here is a file inside the wheel (skimage/data/*.png, *.jpg); functions
# such as skimage.data.eagle() or lily() would download through pooch and are not used.
SOURCES = (
    "sklearn:china.jpg",  # a temple among trees (427 x 640)
    "sklearn:flower.jpg",  # a dahlia on a blurred dark ground (427 x 640)
    "coffee",  # a cup on a wooden table (400 x 600)
    "chelsea",  # a cat's face, fur (300 x 451)
    "coins",  # Greek coins on a grainy ground (303 x 384)
    "hubble_deep_field",  # galaxies and stars on black (872 x 1000)
    "immunohistochemistry",  # stained tissue (512 x 512)
    "gravel",  # (512 x 512) the textures
    "grass",
    "brick",
)


@dataclass(frozen=True)
class TexturePatches:
    """Patches and int64 class indices (positions in :attr:`classes`); ``*_corners`` are the
    ``(row, column)`` of each patch's top-left pixel in its source image."""

    train_images: np.ndarray  # (N, PATCH, PATCH, 1) uint8
    train_labels: np.ndarray  # (N,) int64
    train_corners: np.ndarray  # (N, 2) int64
    test_images: np.ndarray
    test_labels: np.ndarray
    test_corners: np.ndarray
    classes: tuple[str, ...]
    test_start: tuple[int, ...]  # per class: the first column of the test region


@functools.cache
def load_source(name: str) -> np.ndarray:
    """One source image as grey uint8 ``(H, W)``, read from the installed wheels only (once per
    process; the array is read-only)."""
    if name.startswith("sklearn:"):
        pixels = load_sample_image(name.removeprefix("sklearn:"))
    else:
        import skimage.data  # a benchmark extra, needed by this set only

        pixels = getattr(skimage.data, name)()
    if pixels.ndim == 3:
        pixels = np.asarray(Image.fromarray(pixels).convert("L"))
    pixels.flags.writeable = False
    return pixels


def _cut(
    image: np.ndarray, columns: tuple[int, int], n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` patches at random positions wholly inside ``columns`` (start, stop) of ``image``."""
    rows = rng.integers(0, image.shape[0] - PATCH + 1, size=n)
    cols = rng.integers(columns[0], columns[1] - PATCH + 1, size=n)
    patches = np.stack(
        [image[r : r + PATCH, c : c + PATCH] for r, c in zip(rows, cols, strict=True)]
    )
    return patches[..., None], np.stack([rows, cols], axis=1).astype(np.int64)  # (n, P, P, 1)


def texture_patches(
    train_per_class: int = TRAIN_PER_CLASS,
    test_per_class: int = TEST_PER_CLASS,
    seed: int = 1234,
) -> TexturePatches:
    """Cut ``train_per_class`` training and ``test_per_class`` test patches from each source.

    The positions are drawn from ``seed`` (one child seed per source), so the set is the same on
    every call; the benchmark's run seed then picks which training patches each class keeps.
    """
    children = np.random.SeedSequence(seed).spawn(len(SOURCES))
    train, test, train_at, test_at, starts = [], [], [], [], []
    for name, child in zip(SOURCES, children, strict=True):
        image = load_source(name)
        rng = np.random.default_rng(child)
        cut = round(TRAIN_SHARE * image.shape[1])
        start = cut + PATCH  # one patch of gap between the regions
        patches, corners = _cut(image, (0, cut), train_per_class, rng)
        train.append(patches)
        train_at.append(corners)
        patches, corners = _cut(image, (start, image.shape[1]), test_per_class, rng)
        test.append(patches)
        test_at.append(corners)
        starts.append(start)
    classes = np.arange(len(SOURCES), dtype=np.int64)
    return TexturePatches(
        train_images=np.concatenate(train),
        train_labels=np.repeat(classes, train_per_class),
        train_corners=np.concatenate(train_at),
        test_images=np.concatenate(test),
        test_labels=np.repeat(classes, test_per_class),
        test_corners=np.concatenate(test_at),
        classes=SOURCES,
        test_start=tuple(starts),
    )
