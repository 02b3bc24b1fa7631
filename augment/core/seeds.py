"""How every seeded draw of augment derives from the user's one seed, in one place.

Two kinds of derived seed, because the two random number libraries take different seeds:

- numpy draws (partners, inner splits, samples of rows and images) come from
  :func:`stream`: ``np.random.default_rng([seed, key, ...])``, a SeedSequence over the user's seed
  and the stream's keys. Each use has its own key in :class:`Stream`, so no two uses share
  numbers; a key is never reused for something else (that would change what a seed makes);
- torch draws (a GAN's noise) take one integer: :func:`class_seed` per class of a unit,
  :func:`batch_seed` per batch of a synthesizer's plan, :func:`round_seed` per round of the
  confidence filter's redraws. Integer arithmetic with primes, kept as it was when the
  benchmarks' numbers were made: the same seed makes the same rows and images as before.
"""

from __future__ import annotations

import numpy as np


class Stream:
    """The keys of numpy streams. Two shapes of key list, which never give the same numbers:
    ``(seed, key)`` for a draw made once per job or fit, and ``(seed, class position, key, ...)``
    for a class's generated rows."""

    # (seed, key)
    TABLE_SAMPLE = 2  # the rows a large table's neighbour searches use
    TABLE_CHOICE_SPLIT = 3  # the table choice's inner split
    TABLE_CHOICE_ROWS = 4  # the rows a large table's choice is made on
    IMAGE_PARTNERS = 7  # a class's partners between real codes
    IMAGE_CHOICE_SPLIT = 11  # the image choice's inner split
    IMAGE_FIT_SAMPLE = 19  # the images a job fits its models on (data.max_images)
    IMAGE_VALIDATION_SAMPLE = 23  # the holdout images validation scores
    IMAGE_FIDELITY_SAMPLE = 29  # the real images fidelity compares with
    IMAGE_STACKED_SAMPLE = 31  # the generated images of the stacked arm
    # (seed, class position, key, ...): a class's generated table rows
    ROWS_ANCHORED = 1  # anchors and mixing weights
    ROWS_GAN_RESTORE = 2  # rare levels and UUIDs of GAN rows (and of a synthesizer's rows)
    ROWS_ANCHORED_RESTORE = 3  # rare levels and UUIDs of anchored rows
    ROWS_FLOOR = 4  # the privacy floor's redraws of GAN rows (torch seeds: child_seed)


def stream(seed: int, *keys: int) -> np.random.Generator:
    """The numpy generator of ``(seed, *keys)``; ``keys`` start with a :class:`Stream`."""
    return np.random.default_rng([seed, *(int(k) for k in keys)])


def child_seed(seed: int, *keys: int) -> int:
    """One integer seed (for torch draws) of ``(seed, *keys)``, spawned by a SeedSequence like
    :func:`stream`'s; ``keys`` start as :func:`stream`'s do."""
    return int(np.random.SeedSequence([seed, *(int(k) for k in keys)]).generate_state(1)[0])


def batch_seed(seed: int, batch: int) -> int:
    """The torch seed of batch ``batch`` of a class's planned samples."""
    return seed * 7919 + batch


def class_seed(seed: int, class_position: int) -> int:
    """The torch seed of a unit's class (its position among the unit's classes)."""
    return seed * 100_003 + class_position


def round_seed(seed: int, round_index: int) -> int:
    """The torch seed of a round of redraws (the image confidence filter's)."""
    return (seed * 7919 + 104_729) * 1_000 + round_index
