"""How close generated vectors sit to the real ones a model was fitted on, measured against real
vectors it never saw; and the floor that keeps them away.

Both wings measure in a continuous space (a table's standardised rows, an image's codes). Three
measures, each a share of generated vectors (0 is best for the last two):

- **DCR share** (:func:`dcr_share`; SDMetrics' DCROverfittingProtection is ``2 (1 - share)``,
  at most 1): the share of generated vectors nearer to a training vector than to an unseen
  (holdout) vector, the two real sets of equal size. 0.5 means "as new as unseen real vectors";
  1.0 means every generated vector hugs a training vector.
- **memorised share** (:func:`memorised_share`): the share whose nearest training vector is less
  than a third as far as the second nearest: a vector that sits on one real vector rather than
  among several.
- **exact-copy share** (:func:`copy_share`): the share at distance 0 (below :data:`COPY_DISTANCE`)
  from a training vector.

The **floor** (:func:`floor_distance`) is the ``q``-quantile of the distance from each real vector
to its nearest *other* real vector of the set (leave-one-out): how far an unseen real vector
typically sits from the training vectors, read from the training vectors alone, so no holdout row
takes part in generation. A generated vector nearer than that to its nearest training vector is
redrawn (:meth:`augment.core.vectors.VectorSpace.too_close`).

One nearest-neighbour search (scikit-learn's); the distances are recomputed directly, because the
brute-force search expands ``||x - y||^2`` and leaves ~1e-7 for an exact copy.
"""

from __future__ import annotations

import numpy as np
from sklearn.neighbors import NearestNeighbors

#: below this distance a generated vector counts as a copy of a real one
COPY_DISTANCE = 1e-8
#: a generated vector whose nearest training vector is less than this share of the distance to
#: the second nearest is memorised (Meehan et al. 2020, "a non-parametric test to detect
#: data-copying"; the one-third rule of the synthetic-data literature)
MEMORISED_RATIO = 1 / 3
#: the floor's leave-one-out distances come from at most this many real vectors (a fixed sample)
FLOOR_SAMPLE = 5000


def nearest_distances(
    reference: np.ndarray,
    points: np.ndarray,
    k: int = 1,
    index: NearestNeighbors | None = None,
) -> np.ndarray:
    """(N, k) the distances of each of ``points`` (N, D) to its ``k`` nearest ``reference``
    vectors (M, D), nearest first; inf where ``reference`` has fewer than ``k`` vectors.
    ``index``: a search already fitted on ``reference`` (a caller that asks often keeps one)."""
    out = np.full((len(points), k), np.inf)
    if len(points) == 0 or len(reference) == 0:
        return out
    found = min(k, len(reference))
    index = index or NearestNeighbors().fit(reference)
    nearest = index.kneighbors(points, found, return_distance=False)  # (N, found)
    out[:, :found] = np.linalg.norm(points[:, None, :] - reference[nearest], axis=2)
    out.sort(axis=1)
    return out


def equal_sizes(
    train: np.ndarray, holdout: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """The two real sets cut to the size of the smaller one (a sample without replacement): a
    larger set is nearer to any vector by chance alone, which would bias the DCR share."""
    size = min(len(train), len(holdout))

    def cut(points: np.ndarray) -> np.ndarray:
        if len(points) == size:
            return points
        return points[np.sort(rng.choice(len(points), size, replace=False))]

    return cut(train), cut(holdout)


def dcr_closer(train: np.ndarray, holdout: np.ndarray, synthetic: np.ndarray) -> np.ndarray:
    """(S,) 1 where a generated vector is nearer to a ``train`` vector than to a ``holdout``
    one, 0 where farther, 0.5 on a tie; give the two real sets equal sizes
    (:func:`equal_sizes`). Empty when a set is empty."""
    if len(train) == 0 or len(holdout) == 0:
        return np.zeros(0)
    to_train = nearest_distances(train, synthetic)[:, 0]
    to_holdout = nearest_distances(holdout, synthetic)[:, 0]
    return np.where(to_train < to_holdout, 1.0, np.where(to_train > to_holdout, 0.0, 0.5))


def dcr_share(
    train: np.ndarray,
    holdout: np.ndarray,
    synthetic: np.ndarray,
    rng: np.random.Generator | None = None,
) -> float:
    """The share of ``synthetic`` vectors nearer to a ``train`` vector than to a ``holdout``
    one, the two real sets first cut to equal sizes; 0.5 = as new as unseen real vectors. NaN
    when a set is empty.

    Example:
        >>> dcr_share(train, holdout, train + 1e-3)  # near copies: close to 1.0
    """
    train, holdout = equal_sizes(train, holdout, rng or np.random.default_rng(0))
    closer = dcr_closer(train, holdout, synthetic)
    return float(closer.mean()) if len(closer) else float("nan")


def memorised(train: np.ndarray, synthetic: np.ndarray) -> np.ndarray:
    """(S,) bool: the nearest ``train`` vector is less than :data:`MEMORISED_RATIO` as far as
    the second nearest (an exact copy counts; with one training vector, only a copy does)."""
    nearest = nearest_distances(train, synthetic, k=2)
    if len(nearest) == 0:
        return np.zeros(0, dtype=bool)
    return (nearest[:, 0] < COPY_DISTANCE) | (nearest[:, 0] < MEMORISED_RATIO * nearest[:, 1])


def memorised_share(train: np.ndarray, synthetic: np.ndarray) -> float:
    """The share of ``synthetic`` vectors that :func:`memorised` flags; NaN when none."""
    flags = memorised(train, synthetic)
    return float(flags.mean()) if len(flags) else float("nan")


def copy_share(train: np.ndarray, synthetic: np.ndarray) -> float:
    """The share of ``synthetic`` vectors at distance 0 from a ``train`` vector; NaN when none."""
    if len(synthetic) == 0 or len(train) == 0:
        return float("nan")
    return float(np.mean(nearest_distances(train, synthetic)[:, 0] < COPY_DISTANCE))


def floor_distance(points: np.ndarray, quantile: float) -> float:
    """The ``quantile`` of each vector's distance to its nearest *other* vector of ``points``
    (at most :data:`FLOOR_SAMPLE` of them ask, a fixed sample; all are searched): the distance
    below which a real vector, held out, would be among the closest ``quantile`` to the rest.
    0 for fewer than two vectors (no floor)."""
    if len(points) < 2 or quantile <= 0:
        return 0.0
    asking = points
    if len(points) > FLOOR_SAMPLE:
        pick = np.random.default_rng(0).choice(len(points), FLOOR_SAMPLE, replace=False)
        asking = points[np.sort(pick)]
    # column 0 is the vector itself (or a duplicate of it, at distance 0 as well)
    own = nearest_distances(points, asking, k=2)[:, 1]
    return float(np.quantile(own, quantile))
