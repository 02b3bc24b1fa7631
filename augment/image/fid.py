"""How close are generated images to real ones? FID and KID in the features of a chosen network.

Two feature extractors:

- ``inception``: the standard FID InceptionV3 (torch-fidelity's port of the TensorFlow graph,
  2048 pooled features). Comparable with published FIDs, but it needs its weights file on disk
  (nothing is ever downloaded) and is slow on a CPU: measured 0.17 s per image with two threads
  (0.25-0.3 s with one) on the 2-core machine, whatever the input size, since every image is
  resized to 299 x 299: a few minutes per thousand images.
- ``domain``: the 64 penultimate features of the small CNN trained on the real training images
  (:mod:`augment.image.classifier`). Cheap and meaningful for digits or X-rays, where
  ImageNet features say little, but only comparable within one job.

Every metric name carries the extractor, so numbers from the two are never mixed::

    extractor = resolve_extractor("auto", weights_path=None, classifier=classifier, device="cpu")
    report = fid_report(real, real_labels, fake, fake_labels, classes, extractor, seed=0)
    report["fid/domain"], report["fid/domain/class/3"], report["kid/domain"]
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from augment.core.errors import ConfigError, DataError
from augment.core.metrics import frechet_distance as _frechet_distance
from augment.core.metrics import unique_metric_keys
from augment.image.classifier import ImageClassifier, check_images, check_labels

EXTRACTORS = ("auto", "inception", "domain")

# torch-fidelity's file name (torch.hub caches downloads under it) and pytorch-fid's: the same
# converted TensorFlow weights, byte for byte (both end in the same sha256 prefix).
INCEPTION_WEIGHTS_FILES = (
    "weights-inception-2015-12-05-6726825d.pth",
    "pt_inception-2015-12-05-6726825d.pth",
)
INCEPTION_WEIGHTS_URL = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
    "weights-inception-2015-12-05-6726825d.pth"
)


class FeatureExtractor(Protocol):
    """Anything with a ``name`` and ``features(uint8 (N, H, W, C)) -> float (N, D)``."""

    name: str

    def features(self, images: np.ndarray) -> np.ndarray: ...


class DomainExtractor:
    """Penultimate features of a :class:`ImageClassifier` trained on the real training images."""

    name = "domain"

    def __init__(self, classifier: ImageClassifier) -> None:
        self.classifier = classifier

    def features(self, images: np.ndarray) -> np.ndarray:
        """``(N, 64)`` float64 features."""
        return self.classifier.features(images)


class InceptionExtractor:
    """The FID InceptionV3 of torch-fidelity, loaded from a local weights file.

    Images go in as uint8 with 3 channels (greyscale is repeated); the network resizes them to
    299 x 299 itself, exactly as torch-fidelity and torchmetrics do.

    Args:
        weights_path: the ``weights-inception-2015-12-05-6726825d.pth`` file (or pytorch-fid's
            ``pt_inception-2015-12-05-6726825d.pth``, the same weights).
        device: torch device.
        batch_size: images per forward pass.

    Raises:
        DataError: the file is missing, is not a plain state dict, or does not fit the network.
    """

    name = "inception"

    def __init__(
        self, weights_path: str | Path, device: torch.device | str = "cpu", batch_size: int = 32
    ) -> None:
        path = Path(weights_path).expanduser()
        if not path.is_file():
            raise DataError(_missing_weights_message(path))
        # torch-fidelity reads the file with weights_only=False; reading it here first with
        # weights_only=True refuses a file that would run code when unpickled.
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile) as error:
            raise DataError(
                f"the Inception weights file {path} is corrupt or not a plain state dict "
                f"({_first_line(error)}); {_HOW_TO_FIX}"
            ) from None
        if not isinstance(state, dict) or "Mixed_7c.branch_pool.conv.weight" not in state:
            raise DataError(f"the file {path} does not hold InceptionV3 FID weights; {_HOW_TO_FIX}")
        del state
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

        try:
            network = FeatureExtractorInceptionV3(
                name="inception-v3-compat",
                features_list=["2048"],
                feature_extractor_weights_path=str(path),
            )
        except RuntimeError as error:
            raise DataError(
                f"the weights in {path} do not fit the FID InceptionV3 "
                f"({_first_line(error)}); {_HOW_TO_FIX}"
            ) from None
        self.device = torch.device(device)
        self.network = network.to(self.device).eval()
        self.batch_size = batch_size
        self.weights_path = path

    def features(self, images: np.ndarray) -> np.ndarray:
        """``(N, 2048)`` float64 pool features."""
        images = check_images(images)
        outputs = [np.zeros((0, 2048))]
        with torch.inference_mode():
            for start in range(0, len(images), self.batch_size):
                batch = torch.from_numpy(images[start : start + self.batch_size])
                batch = batch.to(self.device).permute(0, 3, 1, 2)  # (B, C, H, W) uint8
                if batch.shape[1] == 1:
                    batch = batch.expand(-1, 3, -1, -1)
                (pooled,) = self.network(batch.contiguous())  # (B, 2048)
                outputs.append(pooled.double().cpu().numpy())
        return np.concatenate(outputs)


_HOW_TO_FIX = (
    "on a machine with internet, download "
    f"{INCEPTION_WEIGHTS_URL} (pytorch-fid's pt_inception-2015-12-05-6726825d.pth is the same "
    "file) and put it there or in <torch hub dir>/checkpoints/, or use validate.fid_extractor: "
    "domain"
)


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else type(error).__name__


def _missing_weights_message(path: Path) -> str:
    return f"the Inception weights file {path} does not exist; {_HOW_TO_FIX}"


def find_inception_weights(configured: str | Path | None) -> Path | None:
    """Where the FID Inception weights are, without downloading anything.

    Args:
        configured: a path from the config; when given it must exist.

    Returns:
        ``configured``; else the first of :data:`INCEPTION_WEIGHTS_FILES` found in
        ``torch.hub.get_dir()/checkpoints`` (where torch-fidelity, torchmetrics and pytorch-fid
        cache their download); else ``None``.

    Raises:
        DataError: ``configured`` is given but is not a file.
    """
    if configured is not None and str(configured) != "":
        path = Path(configured).expanduser()
        if not path.is_file():
            raise DataError(_missing_weights_message(path))
        return path
    checkpoints = Path(torch.hub.get_dir()) / "checkpoints"
    for name in INCEPTION_WEIGHTS_FILES:
        if (checkpoints / name).is_file():
            return checkpoints / name
    return None


def resolve_extractor(
    kind: str,
    *,
    weights_path: str | Path | None = None,
    classifier: ImageClassifier | None = None,
    device: torch.device | str = "cpu",
) -> FeatureExtractor:
    """Build the feature extractor a job asked for.

    Args:
        kind: ``inception``, ``domain``, or ``auto`` (inception when its weights are found,
            else domain).
        weights_path: the configured Inception weights file, if any.
        classifier: the classifier trained on the real training images (for ``domain``).
        device: torch device of the Inception network.

    Raises:
        ConfigError: an unknown kind, or ``domain`` without a classifier.
        DataError: ``inception`` and no weights file found, or a configured file is missing.
    """
    if kind not in EXTRACTORS:
        raise ConfigError(
            f"validate.fid_extractor is {kind!r}; choose from {', '.join(EXTRACTORS)}"
        )
    if kind in ("auto", "inception"):
        found = find_inception_weights(weights_path)
        if found is not None:
            return InceptionExtractor(found, device=device)
        if kind == "inception":
            expected = Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_WEIGHTS_FILES[0]
            raise DataError(_missing_weights_message(expected))
    if classifier is None:
        raise ConfigError(
            "the domain FID extractor needs the classifier trained on the real training images; "
            "pass classifier=, or give Inception weights"
        )
    return DomainExtractor(classifier)


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (the FID formula).

    ``||mu_a - mu_b||^2 + Tr(C_a + C_b - 2 (C_a C_b)^(1/2))``, computed as in
    :func:`augment.core.metrics.frechet_distance`: a ridge of 1e-6 on both diagonals keeps
    rank-deficient covariances (fewer images than features) finite, and the square root comes
    from symmetric eigendecompositions, so there is never an imaginary part to drop. A set against
    itself gives 0; the result matches scipy's ``sqrtm`` formula to 1e-5 relative (tested).

    Args:
        features_a: ``(N, D)`` features; N >= 1.
        features_b: ``(M, D)`` features; M >= 1.

    Returns:
        The distance, >= 0.

    Raises:
        DataError: an empty set or different widths.

    Example:
        >>> features = np.random.default_rng(0).normal(size=(50, 8))
        >>> frechet_distance(features, features) < 1e-9
        True
    """
    return _frechet_distance(features_a, features_b)


def kernel_inception_distance(
    features_a: np.ndarray,
    features_b: np.ndarray,
    subsets: int = 10,
    subset_size: int | None = None,
    seed: int = 0,
    weights_a: np.ndarray | None = None,
) -> tuple[float, float]:
    """KID: unbiased squared MMD with the cubic polynomial kernel, averaged over random subsets.

    The estimator of torch-fidelity and torchmetrics: ``k(x, y) = (x.y / D + 1)^3``; the
    within-set sums leave out their diagonals, the cross sum keeps it. Unlike FID it has no bias
    from the number of images, so small sets compare fairly; values near or just below 0 mean the
    sets are alike.

    Args:
        features_a: ``(N, D)`` features.
        features_b: ``(M, D)`` features.
        subsets: number of random subsets.
        subset_size: rows per subset, drawn without replacement from each set; defaults to
            ``min(N, M, 1000)``.
        seed: seeds the subsets.
        weights_a: optional non-negative ``(N,)`` row weights for ``a`` (e.g. to give it ``b``'s
            class mix). Every kernel sum over ``a`` is then weighted (within-set pairs by
            ``w_i w_j``, still without the diagonal); all ones gives the plain estimator. Rows of
            weight 0 are never drawn.

    Returns:
        ``(mean, std)`` over the subsets; ``(nan, nan)`` when a set has fewer than 2 rows.

    Raises:
        DataError: different widths, unusable weights, or ``subset_size`` larger than a set.

    Example:
        >>> rows = np.random.default_rng(0).normal(size=(200, 16))
        >>> abs(kernel_inception_distance(rows[:100], rows[100:])[0]) < 0.05
        True
    """
    features_a = np.asarray(features_a, dtype=np.float64)
    features_b = np.asarray(features_b, dtype=np.float64)
    if features_a.ndim != 2 or features_b.ndim != 2 or features_a.shape[1] != features_b.shape[1]:
        raise DataError(
            "kernel_inception_distance needs two (N, D) arrays of equal D; "
            f"got {features_a.shape} and {features_b.shape}"
        )
    if weights_a is None:
        weights_a = np.ones(len(features_a))
    weights_a = np.asarray(weights_a, dtype=np.float64)
    if weights_a.shape != (len(features_a),) or np.any(weights_a < 0):
        raise DataError(
            f"weights_a must be {len(features_a)} non-negative numbers; got shape {weights_a.shape}"
        )
    drawable = np.flatnonzero(weights_a > 0)
    n_a, n_b = len(drawable), len(features_b)
    size = min(n_a, n_b, 1000) if subset_size is None else int(subset_size)
    if size > min(n_a, n_b):
        raise DataError(
            f"KID subset size {size} is larger than a set ({n_a} and {n_b} rows); lower it"
        )
    if size < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    gamma = 1.0 / features_a.shape[1]
    values = np.empty(subsets)
    for index in range(subsets):
        rows_a = rng.choice(drawable, size, replace=False)
        x, w = features_a[rows_a], weights_a[rows_a]  # (m, D), (m,)
        y = features_b[rng.choice(n_b, size, replace=False)]
        k_xx = (x @ x.T * gamma + 1.0) ** 3  # (m, m)
        k_yy = (y @ y.T * gamma + 1.0) ** 3
        k_xy = (x @ y.T * gamma + 1.0) ** 3
        within_a = (w @ k_xx @ w - np.sum(w * w * np.diag(k_xx))) / (w.sum() ** 2 - np.sum(w * w))
        within_b = (k_yy.sum() - np.trace(k_yy)) / (size * (size - 1))
        values[index] = within_a + within_b - 2.0 * (w @ k_xy).sum() / (w.sum() * size)
    return float(np.mean(values)), float(np.std(values))


def fid_report(
    real_images: np.ndarray,
    real_labels: np.ndarray,
    fake_images: np.ndarray,
    fake_labels: np.ndarray,
    classes: list[Any],
    extractor: FeatureExtractor,
    *,
    kid: bool = True,
    seed: int = 0,
) -> dict[str, float]:
    """FID (and KID) of generated images against real ones, overall and per class.

    Only the classes that were generated are compared, as in
    :func:`augment.tabular.fidelity.fidelity_report`: the generated images say nothing about the
    others, and comparing a minority-only set with all real images would measure the class mix.
    The overall numbers weight the real images to the generated class mix. Features are computed
    once per set, and only for real images of generated classes.

    Args:
        real_images: uint8 ``(N, H, W, C)`` real images (usually the training split).
        real_labels: ``(N,)`` class indices into ``classes``.
        fake_images: uint8 ``(M, H, W, C)`` generated images.
        fake_labels: ``(M,)`` class indices into ``classes``.
        classes: the original class values, used to name the per-class metrics.
        extractor: a :class:`DomainExtractor`, :class:`InceptionExtractor` or the like.
        kid: also compute KID.
        seed: seeds the KID subsets.

    Returns:
        ``{}`` when no image was generated; otherwise, with ``<e>`` the extractor's name and
        ``<c>`` a class's metric key: ``fid/<e>``; ``fid/<e>/class/<c>`` for each generated
        class with at least 2 real and 2 generated images; ``kid/<e>`` and ``kid/<e>/std`` when
        ``kid``. An overall number that cannot be computed (fewer than 2 images on a side) is NaN.

    Raises:
        DataError: bad images or labels.

    Example:
        >>> report = fid_report(real, real_y, fake, fake_y, [0, 1], DomainExtractor(classifier))
        >>> sorted(report)  # doctest: +SKIP
        ['fid/domain', 'fid/domain/class/1', 'kid/domain', 'kid/domain/std']
    """
    real_images = check_images(real_images, "real images")
    fake_images = check_images(fake_images, "generated images")
    real_labels = check_labels(real_labels, len(real_images), len(classes), "real labels")
    fake_labels = check_labels(fake_labels, len(fake_images), len(classes), "generated labels")
    if len(fake_images) == 0:
        return {}
    if real_images.shape[1:] != fake_images.shape[1:]:
        raise DataError(
            f"real images are {real_images.shape[1:]} and generated ones {fake_images.shape[1:]}; "
            "they must have the same size and channels"
        )
    name = extractor.name
    keys = unique_metric_keys(list(classes))
    fake_counts = np.bincount(fake_labels, minlength=len(classes))
    real_counts = np.bincount(real_labels, minlength=len(classes))
    comparable = np.flatnonzero(np.isin(real_labels, np.flatnonzero(fake_counts)))
    real_labels = real_labels[comparable]
    real_features = extractor.features(real_images[comparable])  # (R, D)
    fake_features = extractor.features(fake_images)  # (M, D)

    # Each real image weighs (generated of its class) / (real of its class): the real set then
    # has the generated class mix.
    with np.errstate(divide="ignore", invalid="ignore"):
        per_class_weight = np.where(real_counts > 0, fake_counts / real_counts, 0.0)
    real_weights = per_class_weight[real_labels]

    report: dict[str, float] = {}
    enough = len(real_features) >= 2 and len(fake_features) >= 2
    report[f"fid/{name}"] = (
        _frechet_distance(real_features, fake_features, real_weights) if enough else float("nan")
    )
    for index in np.flatnonzero((fake_counts >= 2) & (real_counts >= 2)):
        report[f"fid/{name}/class/{keys[index]}"] = frechet_distance(
            real_features[real_labels == index], fake_features[fake_labels == index]
        )
    if kid:
        mean, std = (
            kernel_inception_distance(
                real_features, fake_features, seed=seed, weights_a=real_weights
            )
            if enough
            else (float("nan"), float("nan"))
        )
        report[f"kid/{name}"] = mean
        report[f"kid/{name}/std"] = std
    return report
