"""k-NN precision and recall of a generated set against a real one (Kynkäänniemi et al., 2019).

FID and the Fréchet distance fold two failures into one number: generated samples that look
wrong, and generated samples that look right but cover only part of the real data. These two
numbers keep them apart, in any feature space (image features, encoded table rows):

- **precision** (realism): the share of generated samples that fall inside the *real manifold*;
- **recall** (coverage): the share of real samples that fall inside the *generated manifold*.

A set's manifold is the union of balls, one around each of its samples, whose radius is the
distance from that sample to its k-th nearest neighbour in the same set (k = 3, as in the paper).
A generator that collapsed onto a few good samples has high precision and low recall; one that
spreads blurry samples everywhere has high recall and low precision.

    result = knn_precision_recall(real_features, generated_features)  # both (N, D)
    result.precision, result.recall

    overall, per_class = precision_recall_by_class(real, real_y, generated, generated_y, seed=0)

Distances are Euclidean, computed in blocks of rows so memory stays bounded; the per-class
report draws a seeded stratified sample of at most ``max_rows`` per set first, since the cost
grows with the square of the rows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np

from augment.core.errors import DataError
from augment.core.validation import stratified_pick

#: neighbours that set a sample's radius (the paper's default)
DEFAULT_K = 3
#: at most this many samples per set in :func:`precision_recall_by_class`: 5,000 rows of 2,048
#: Inception features cost three 5,000 x 5,000 distance blocks, a few seconds on two cores
MAX_ROWS = 5000
# entries of one block of distances (float64): 32 MB
_BLOCK_ENTRIES = 1 << 22


@dataclass(frozen=True)
class PrecisionRecall:
    """k-NN precision (realism) and recall (coverage), each in [0, 1]; NaN when undefined."""

    precision: float
    recall: float


def precision_recall_meanings(items: str, space: str) -> tuple[str, str]:
    """What precision and recall mean, one line each, for a report (``items``: "rows",
    "images"; ``space``: where the distances are taken)."""
    return (
        f"realism: share of synthetic {items} inside the real {items}' manifold in {space} "
        f"(each real one's ball reaches its {_ordinal(DEFAULT_K)} nearest real neighbour); 1 = "
        f"every synthetic one is close to some real one",
        f"coverage: share of real {items} inside the synthetic {items}' manifold; high precision "
        f"with low recall = a collapsed generator (few distinct {items}), low precision with "
        "high recall = synthetic ones spread where no real ones are (blurry, off)",
    )


def _ordinal(number: int) -> str:
    return {1: "1st", 2: "2nd", 3: "3rd"}.get(number, f"{number}th")


def manifold_radii(features: np.ndarray, k: int = DEFAULT_K) -> np.ndarray:
    """Distance from each row to its k-th nearest other row of the same set.

    Args:
        features: ``(N, D)`` rows, N > k.
        k: which neighbour sets the radius (1 = the nearest other row).

    Returns:
        ``(N,)`` radii, >= 0 (0 where k or more other rows coincide with the row).

    Raises:
        DataError: a bad shape, non-finite values, k < 1, or N <= k.
    """
    features = _check_features(features, "features")
    _check_k(k, len(features), "features")
    norms = _squared_norms(features)
    radii = np.empty(len(features))
    for start, stop in _blocks(len(features), len(features)):
        squared = _squared_distances(features[start:stop], norms[start:stop], features, norms)
        # the row itself is one of the zeros of its line, so index k is the k-th *other* row
        radii[start:stop] = np.partition(squared, k, axis=1)[:, k]
    return np.sqrt(radii)


def knn_precision_recall(
    real: np.ndarray,
    generated: np.ndarray,
    k: int = DEFAULT_K,
    real_weights: np.ndarray | None = None,
) -> PrecisionRecall:
    """k-NN precision and recall of ``generated`` against ``real``, on every row given.

    A generated row counts as realistic when it lies within the radius of at least one real row
    (its distance to its own k-th real neighbour, see :func:`manifold_radii`); a real row counts
    as covered when it lies within the radius of at least one generated row. Boundaries count as
    inside, so identical sets give 1 and 1.

    Args:
        real: ``(N, D)`` real features.
        generated: ``(M, D)`` generated features, same D.
        k: the neighbour that sets the radii (3 in the paper).
        real_weights: optional non-negative ``(N,)`` weights of the real rows in the recall (e.g.
            to give the real rows the generated class mix); the manifolds are unweighted.

    Returns:
        :class:`PrecisionRecall`; both NaN when a set has k rows or fewer (no k-th neighbour).

    Raises:
        DataError: bad shapes, different widths, non-finite values, or unusable weights.

    Example:
        >>> rows = np.random.default_rng(0).normal(size=(200, 4))
        >>> knn_precision_recall(rows, rows)
        PrecisionRecall(precision=1.0, recall=1.0)
    """
    real = _check_features(real, "real features")
    generated = _check_features(generated, "generated features")
    if real.shape[1] != generated.shape[1]:
        raise DataError(
            f"real and generated features differ in width: {real.shape[1]} and "
            f"{generated.shape[1]}; compute both with the same extractor or encoding"
        )
    weights = _check_weights(real_weights, len(real))
    if k < 1:
        raise DataError(f"k must be at least 1; got {k}")
    if min(len(real), len(generated)) <= k:
        return PrecisionRecall(float("nan"), float("nan"))
    real_radii = manifold_radii(real, k) ** 2  # squared, as the distances below
    generated_radii = manifold_radii(generated, k) ** 2
    real_norms, generated_norms = _squared_norms(real), _squared_norms(generated)
    realistic = np.zeros(len(generated), dtype=bool)
    covered = np.zeros(len(real), dtype=bool)
    for start, stop in _blocks(len(generated), len(real)):
        squared = _squared_distances(
            generated[start:stop], generated_norms[start:stop], real, real_norms
        )  # (block, N)
        realistic[start:stop] = (squared <= real_radii[None, :]).any(axis=1)
        covered |= (squared <= generated_radii[start:stop, None]).any(axis=0)
    recall = float(np.average(covered, weights=weights)) if weights is not None else covered.mean()
    return PrecisionRecall(float(realistic.mean()), float(recall))


def precision_recall_by_class(
    real: np.ndarray,
    real_labels: np.ndarray,
    generated: np.ndarray,
    generated_labels: np.ndarray,
    k: int = DEFAULT_K,
    max_rows: int | None = MAX_ROWS,
    seed: int = 0,
) -> tuple[PrecisionRecall, dict[Hashable, PrecisionRecall]]:
    """k-NN precision and recall overall and per class, on the classes that were generated.

    Only the real rows of generated classes are compared (the generated rows say nothing about
    the other classes), and in the overall recall they are weighted so that each class counts
    with its share of the generated rows: a different class mix is not mistaken for poor
    coverage. Per class, the real and generated rows of that class are compared alone.

    Args:
        real: ``(N, D)`` real features; ``real_labels`` their ``(N,)`` classes.
        generated: ``(M, D)`` generated features; ``generated_labels`` their ``(M,)`` classes.
        k: the neighbour that sets the radii.
        max_rows: at most this many rows of each set are used, a seeded sample with every class
            in proportion (each keeping at least k + 1 rows, or all it has); ``None`` = all.
        seed: seeds that sample.

    Returns:
        ``(overall, per_class)``: ``per_class`` maps each generated class with more than k rows
        on both sides to its result, in order of first appearance in ``generated_labels``.
        ``overall`` is NaN when either set has k rows or fewer.

    Raises:
        DataError: bad shapes or labels that do not match the rows.
    """
    real = _check_features(real, "real features")
    generated = _check_features(generated, "generated features")
    real_labels = _check_labels(real_labels, len(real), "real")
    generated_labels = _check_labels(generated_labels, len(generated), "generated")
    generated_classes = list(dict.fromkeys(generated_labels.tolist()))
    wanted = set(generated_classes)
    comparable = np.flatnonzero([label in wanted for label in real_labels.tolist()])
    real, real_labels = real[comparable], real_labels[comparable]
    rng = np.random.default_rng(seed)
    real_pick = _stratified_sample(real_labels, max_rows, k, rng)
    generated_pick = _stratified_sample(generated_labels, max_rows, k, rng)
    real, real_labels = real[real_pick], real_labels[real_pick]
    generated, generated_labels = generated[generated_pick], generated_labels[generated_pick]

    # each real row weighs (generated of its class) / (real of its class)
    real_count, generated_count = Counter(real_labels.tolist()), Counter(generated_labels.tolist())
    weights = np.array(
        [generated_count[c] / real_count[c] for c in real_labels.tolist()], dtype=np.float64
    )
    overall = knn_precision_recall(
        real, generated, k, real_weights=weights if len(weights) else None
    )
    per_class: dict[Hashable, PrecisionRecall] = {}
    for cls in generated_classes:
        real_of_class = real[real_labels == cls]
        generated_of_class = generated[generated_labels == cls]
        if min(len(real_of_class), len(generated_of_class)) > k:
            per_class[cls] = knn_precision_recall(real_of_class, generated_of_class, k)
    return overall, per_class


def _stratified_sample(
    labels: np.ndarray, max_rows: int | None, k: int, rng: np.random.Generator
) -> np.ndarray:
    if not max_rows or len(labels) <= max_rows:
        return np.arange(len(labels))
    factor = max_rows / len(labels)
    per_class = {
        cls: min(n, max(k + 1, int(n * factor))) for cls, n in Counter(labels.tolist()).items()
    }
    return stratified_pick(labels, per_class, rng)


def _check_features(features: Any, what: str) -> np.ndarray:
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2:
        raise DataError(f"the {what} must be an (N, D) array; got shape {features.shape}")
    if not np.isfinite(features).all():
        raise DataError(
            f"the {what} hold NaN or infinite values; fill or drop them before measuring"
        )
    return features


def _check_labels(labels: Any, rows: int, what: str) -> np.ndarray:
    labels = np.asarray(labels, dtype=object)
    if labels.shape != (rows,):
        raise DataError(f"the {what} labels must be one per row ({rows}); got shape {labels.shape}")
    return labels


def _check_k(k: int, rows: int, what: str) -> None:
    if k < 1:
        raise DataError(f"k must be at least 1; got {k}")
    if rows <= k:
        raise DataError(f"the {what} have {rows} rows; a k-th neighbour (k = {k}) needs {k + 1}")


def _check_weights(weights: Any, rows: int) -> np.ndarray | None:
    if weights is None:
        return None
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != (rows,) or np.any(weights < 0) or not weights.sum() > 0:
        raise DataError(
            f"real_weights must be {rows} non-negative numbers with a positive sum; "
            f"got shape {weights.shape}"
        )
    return weights


def _squared_norms(rows: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", rows, rows)


def _squared_distances(
    a: np.ndarray, a_norms: np.ndarray, b: np.ndarray, b_norms: np.ndarray
) -> np.ndarray:
    """``(len(a), len(b))`` squared Euclidean distances, |a|^2 + |b|^2 - 2 a.b.

    The expansion leaves rounding noise of about 1e-16 |a|^2 where two rows are equal; anything
    within 1e-10 of the norms is taken as exactly 0, so a duplicate is always inside a radius
    of 0 and a row is always its own nearest neighbour.
    """
    scale = a_norms[:, None] + b_norms[None, :]
    squared = scale - 2.0 * (a @ b.T)
    squared[squared <= 1e-10 * scale] = 0.0
    return squared


def _blocks(rows: int, width: int):
    """``(start, stop)`` of row blocks whose distances to ``width`` rows fit one block."""
    step = max(1, _BLOCK_ENTRIES // max(width, 1))
    for start in range(0, rows, step):
        yield start, min(start + step, rows)
