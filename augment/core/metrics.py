"""Small metric helpers that every kind uses: safe MLflow metric keys and the Fréchet distance
between Gaussians fitted to two sets of feature rows (tables: encoded rows; images: FID features).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from augment.core.config import setting
from augment.core.errors import DataError

# Characters MLflow accepts in a metric key; everything else becomes "_".
_UNSAFE_KEY_CHARS = re.compile(r"[^A-Za-z0-9_.\- /:]")


def metric_key(text: object) -> str:
    """Make a class label or column name safe to use inside an MLflow metric key.

    Letters, digits and ``_ . - / : `` and space are kept; any other character becomes ``_``.

    Example:
        >>> metric_key("père|mère")
        'p_re_m_re'
    """
    return _UNSAFE_KEY_CHARS.sub("_", str(text))


def unique_metric_keys(values: list[Any]) -> list[str]:
    """``metric_key`` of each value, with ``_2``, ``_3`` ... appended where two values collide.

    Two labels such as ``"a|b"`` and ``"a&b"`` would otherwise write to the same metric.
    """
    keys: list[str] = []
    seen: set[str] = set()
    for value in values:
        key = base = metric_key(value)
        suffix = 2
        while key in seen:
            key = f"{base}_{suffix}"
            suffix += 1
        seen.add(key)
        keys.append(key)
    return keys


def frechet_distance(
    a: np.ndarray, b: np.ndarray, weights_a: np.ndarray | None = None, eps: float = 1e-6
) -> float:
    """Fréchet distance between Gaussians fitted to two sets of rows.

    ``||mu_a - mu_b||^2 + Tr(C_a + C_b - 2 (C_a C_b)^(1/2))``. A ridge ``eps * I`` is added to both
    covariances so that a handful of rows (rank-deficient covariances) still gives a finite,
    stable value; a set of one row has covariance 0.

    Args:
        a: (N, D) rows.
        b: (M, D) rows.
        weights_a: optional non-negative (N,) row weights for ``a`` (e.g. to match a class mix).
        eps: ridge added to the diagonal of both covariances.

    Returns:
        The distance, >= 0; identical sets give ~0.

    Raises:
        DataError: a set is empty, the widths differ, or the weights are unusable.

    Example:
        >>> rows = np.random.default_rng(0).normal(size=(100, 3))
        >>> frechet_distance(rows, rows) < 1e-9
        True
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise DataError(
            f"frechet_distance needs two (N, D) arrays of equal D; got {a.shape} and {b.shape}"
        )
    if len(a) == 0 or len(b) == 0:
        raise DataError(f"frechet_distance needs rows in both sets; got {len(a)} and {len(b)}")
    if weights_a is not None:
        weights_a = np.asarray(weights_a, dtype=np.float64)
        if weights_a.shape != (len(a),) or np.any(weights_a < 0) or weights_a.sum() <= 0:
            raise DataError(
                f"weights_a must be {len(a)} non-negative numbers with a positive sum; "
                f"got shape {weights_a.shape}"
            )
    # A column that is one and the same constant in both sets adds exactly 0 (its covariance is
    # eps on the diagonal in both, with no cross terms), so drop it: one-hot blocks of unused
    # categories would otherwise make the matrices needlessly large.
    keep = ~((a.min(axis=0) == a.max(axis=0)) & (b.min(axis=0) == b.max(axis=0)) & (a[0] == b[0]))
    a, b = a[:, keep], b[:, keep]
    if a.shape[1] == 0:
        return 0.0
    mean_a, cov_a = _mean_and_covariance(a, weights_a)
    mean_b, cov_b = _mean_and_covariance(b, None)
    ridge = eps * np.eye(a.shape[1])
    cov_a += ridge
    cov_b += ridge
    # Tr((C_a C_b)^(1/2)) = Tr((S C_b S)^(1/2)) with S = C_a^(1/2): the right side is symmetric
    # positive semi-definite, so eigvalsh is exact and never returns complex parts.
    values_a, vectors_a = np.linalg.eigh(cov_a)
    sqrt_a = (vectors_a * np.sqrt(np.clip(values_a, 0.0, None))) @ vectors_a.T
    middle = sqrt_a @ cov_b @ sqrt_a
    trace_sqrt = float(
        np.sum(np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)))
    )
    distance = float(
        np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2.0 * trace_sqrt
    )
    return max(distance, 0.0)


def _mean_and_covariance(
    rows: np.ndarray, weights: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    mean = np.average(rows, axis=0, weights=weights)  # (D,)
    if len(rows) < 2:
        return mean, np.zeros((rows.shape[1], rows.shape[1]))
    if weights is not None and np.count_nonzero(weights) < 2:
        return mean, np.zeros((rows.shape[1], rows.shape[1]))
    covariance = np.cov(rows, rowvar=False, aweights=weights)  # (D, D)
    return mean, np.atleast_2d(covariance)


def fidelity_judgement(key: str, metrics: dict[str, float]) -> str:
    """Whether a fidelity measure of a table job is fine, in a few words ("" when there is no
    rule for ``key``): the summary and the report say it next to the number.

    - ``fidelity/detection_auc`` (a forest telling synthetic rows from real ones of their class):
      up to 0.6 fine, up to 0.8 told apart at times, above that easily told apart.
    - ``fidelity/dcr/ratio`` (distance to the nearest training row, over the same for unseen
      holdout rows): from 0.9 as new as real rows; lower with no exact copy is what rows anchored
      between real ones give (the default mixes them in); with copies, a privacy warning.
    - ``fidelity/dcr/exact_copy_share``: none is fine; any share names the problem.
    - ``privacy/dcr_share`` (the share of generated rows nearer to a training row than to an
      unseen one, 0.5 = as new as unseen rows): up to 0.6 fine, up to 0.8 nearer the training
      rows (the floor pushes them away), above that close to them.
    """
    value = metrics.get(key)
    if value is None or not np.isfinite(value):
        return ""
    if key == "fidelity/detection_auc":
        if value <= 0.6:
            return "fine: hard to tell from real rows"
        if value <= 0.8:
            return "told apart at times: see the per-feature plots"
        return "easily told apart from real rows: see the per-feature plots"
    if key == "privacy/dcr_share":
        if value <= 0.6:
            return "fine: about as new as unseen real rows"
        if value <= 0.8:
            return "nearer the training rows than unseen rows: generate.privacy_floor moves them"
        return (
            "close to the training rows: keep them private like the training data, or set "
            "generate.privacy_floor"
        )
    copies = metrics.get("fidelity/dcr/exact_copy_share", 0.0)
    if key == "fidelity/dcr/ratio":
        if value >= 0.9:
            return "fine: as new as unseen real rows"
        if copies == 0:
            return "fine, no exact copy: anchored rows sit nearer the training rows than new ones"
        return "near copies of training rows: keep the rows private like the training data"
    if key == "fidelity/dcr/exact_copy_share":
        return "fine: none" if value == 0 else "some rows repeat a training row exactly"
    return ""


# The domain CNN's balanced accuracy on the real holdout images (every class): how far its
# features, class probabilities and the numbers computed in them (FID, KID, k-NN precision /
# recall, the IS formula, class confidence) can be trusted.
FEATURE_NETWORK_SCORE = "domain_cnn/balanced_accuracy"


def trusted_feature_accuracy(n_classes: int) -> float:
    """The balanced accuracy a feature network must reach on real holdout images before the
    numbers computed in its features are worth reading: halfway from chance (``1 / K``) to
    perfect.

    A network near chance has learned next to nothing about the classes: its features are close
    to those of its random initial weights, often small and alike for every image, so FID and
    KID come out near 0 and the IS near 1 whatever the images look like. Halfway is the point
    where the network gets most of the class structure right (K = 2: 0.75; K = 10: 0.55).

    Example:
        >>> trusted_feature_accuracy(2), trusted_feature_accuracy(10)
        (0.75, 0.55)
    """
    return (1.0 + 1.0 / n_classes) / 2


def feature_network_doubt(metrics: dict[str, float], n_classes: int) -> str:
    """Why the numbers in the domain CNN's features say nothing, in a sentence; ``""`` when its
    holdout balanced accuracy (``FEATURE_NETWORK_SCORE``) reaches
    :func:`trusted_feature_accuracy` or was not measured."""
    score = metrics.get(FEATURE_NETWORK_SCORE)
    needed = trusted_feature_accuracy(n_classes)
    if score is None or not np.isfinite(score) or score >= needed:
        return ""
    in_features = "fid/domain" in metrics  # the FID features are the CNN's too
    measured = (
        "FID, KID, k-NN precision / recall, the IS formula and the class confidence"
        if in_features
        else "the class confidence"
    )
    fix = "train it longer (validate.epochs)" + (
        f" or use the InceptionV3 features ({setting('validate.fid_extractor', 'inception')})"
        if in_features
        else ""
    )
    return (
        f"the domain CNN scored {score:.2f} balanced accuracy on the real holdout images "
        f"(chance {1 / n_classes:.2f}; trusted from {needed:.2f}, halfway to 1): its features "
        f"do not tell the classes apart, so {measured} measured with it say nothing about the "
        f"images; {fix}"
    )
