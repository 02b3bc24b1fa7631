"""How close are generated images to real ones? FID, KID, k-NN precision / recall and the
Inception Score, in the features (and class probabilities) of a chosen network.

Two feature extractors:

- ``inception``: the standard FID InceptionV3 (torch-fidelity's port of the TensorFlow graph,
  2048 pooled features, and its 1008 ImageNet logits for the Inception Score). Comparable with
  published FIDs, but it needs its weights file on disk (nothing is ever downloaded) and is slow
  on a CPU: measured 0.17 s per image with two threads (0.25-0.3 s with one) on the 2-core
  machine, whatever the input size, since every image is resized to 299 x 299: a few minutes per
  thousand images.
- ``domain``: the 64 penultimate features of the small CNN trained on the real training images
  (:mod:`augment.image.classifier`), and its class probabilities. Cheap and meaningful for digits
  or X-rays, where ImageNet features say little, but only comparable within one job.

Every metric name carries the extractor, so numbers from the two are never mixed: an Inception
Score computed with the domain CNN is ``is/domain``, never ``is/inception``::

    extractor = resolve_extractor("auto", weights_path=None, classifier=classifier, device="cpu")
    report = fid_report(real, real_labels, fake, fake_labels, classes, extractor, seed=0)
    report["fid/domain"], report["fid/domain/class/3"], report["kid/domain"]
    report["precision/domain"], report["recall/domain"], report["is/domain"]
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from sklearn.metrics import balanced_accuracy_score

from augment.core.config import setting
from augment.core.errors import ConfigError, DataError
from augment.core.metrics import FEATURE_NETWORK_SCORE, unique_metric_keys
from augment.core.metrics import frechet_distance as _frechet_distance
from augment.core.precision_recall import DEFAULT_K, precision_recall_by_class
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


@runtime_checkable
class ClassifyingExtractor(Protocol):
    """An extractor whose network also classifies: features and class probabilities in one go."""

    name: str

    def features(self, images: np.ndarray) -> np.ndarray: ...

    def features_and_probabilities(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


class DomainExtractor:
    """Penultimate features of a :class:`ImageClassifier` trained on the real training images."""

    name = "domain"

    def __init__(self, classifier: ImageClassifier) -> None:
        self.classifier = classifier

    def features(self, images: np.ndarray) -> np.ndarray:
        """``(N, 64)`` float64 features."""
        return self.classifier.features(images)

    def features_and_probabilities(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(N, 64)`` features and ``(N, K)`` probabilities over the job's K classes."""
        return self.classifier.features(images), self.classifier.predict_proba(images)


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
                f"({_first_line(error)}); {_how_to_fix()}"
            ) from None
        if not isinstance(state, dict) or "Mixed_7c.branch_pool.conv.weight" not in state:
            raise DataError(
                f"the file {path} does not hold InceptionV3 FID weights; {_how_to_fix()}"
            )
        del state
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

        try:
            network = FeatureExtractorInceptionV3(
                name="inception-v3-compat",
                # the pool features for FID / KID / precision-recall, and the fc layer's
                # logits without its bias for the Inception Score (as the original IS code did)
                features_list=["2048", "logits_unbiased"],
                feature_extractor_weights_path=str(path),
            )
        except RuntimeError as error:
            raise DataError(
                f"the weights in {path} do not fit the FID InceptionV3 "
                f"({_first_line(error)}); {_how_to_fix()}"
            ) from None
        self.device = torch.device(device)
        self.network = network.to(self.device).eval()
        self.batch_size = batch_size
        self.weights_path = path

    def features(self, images: np.ndarray) -> np.ndarray:
        """``(N, 2048)`` float64 pool features."""
        return self.features_and_probabilities(images)[0]

    def features_and_probabilities(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(N, 2048)`` pool features and ``(N, 1008)`` ImageNet class probabilities (softmax of
        the bias-free logits), from one forward pass."""
        images = check_images(images)
        features, probabilities = [np.zeros((0, 2048))], [np.zeros((0, 1008))]
        with torch.inference_mode():
            for start in range(0, len(images), self.batch_size):
                batch = torch.from_numpy(images[start : start + self.batch_size])
                batch = batch.to(self.device).permute(0, 3, 1, 2)  # (B, C, H, W) uint8
                if batch.shape[1] == 1:
                    batch = batch.expand(-1, 3, -1, -1)
                pooled, logits = self.network(batch.contiguous())  # (B, 2048), (B, 1008)
                features.append(pooled.double().cpu().numpy())
                probabilities.append(torch.softmax(logits.double(), dim=1).cpu().numpy())
        return np.concatenate(features), np.concatenate(probabilities)


def _how_to_fix() -> str:
    """What to do without the Inception weights (the setting in the user's form, see
    :func:`augment.core.config.setting`)."""
    return (
        f"on a machine with internet, download {INCEPTION_WEIGHTS_URL} (pytorch-fid's "
        "pt_inception-2015-12-05-6726825d.pth is the same file) and put it there or in "
        f"<torch hub dir>/checkpoints/, or use {setting('validate.fid_extractor', 'domain')}"
    )


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else type(error).__name__


def _missing_weights_message(path: Path) -> str:
    return f"the Inception weights file {path} does not exist; {_how_to_fix()}"


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


def inception_score(probabilities: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Inception Score: ``exp(E_x KL(p(y|x) || p(y)))`` with ``p(y) = E_x p(y|x)``.

    High when each image is confidently one class (a sharp ``p(y|x)``) *and* the set uses many
    classes evenly (a broad ``p(y)``); it lies between 1 and K, the number of classes. It is a
    score of the whole set: within one class ``p(y)`` is as sharp as ``p(y|x)``, so a per-class
    IS measures nothing useful (see :func:`fid_report` for what is reported per class).

    Computed over all images at once (one split). Published figures take 50,000 images in ten
    splits with the ImageNet InceptionV3; with other counts, splits or networks the numbers are
    not comparable, so read the score against the same score of real images.

    Args:
        probabilities: ``(N, K)`` class probabilities, one row per image (rows sum to 1).
        weights: optional non-negative ``(N,)`` image weights (e.g. to give real images the
            generated class mix); they weigh both expectations.

    Returns:
        The score; NaN for no images.

    Raises:
        DataError: not an ``(N, K)`` array of probabilities, or unusable weights.

    Example:
        >>> inception_score(np.eye(4))  # four sure images of four classes
        4.0
        >>> inception_score(np.full((10, 4), 0.25))  # undecided
        1.0
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if (
        probabilities.ndim != 2
        or not np.isfinite(probabilities).all()
        or np.any(probabilities < 0)
        or not np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)
    ):
        raise DataError(
            "inception_score needs an (N, K) array of class probabilities whose rows sum to 1; "
            f"got shape {probabilities.shape}"
        )
    if len(probabilities) == 0:
        return float("nan")
    if weights is None:
        weights = np.ones(len(probabilities))
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != (len(probabilities),) or np.any(weights < 0) or not weights.sum() > 0:
        raise DataError(
            f"weights must be {len(probabilities)} non-negative numbers with a positive sum; "
            f"got shape {weights.shape}"
        )
    # images of weight 0 leave both expectations (and may use classes p(y) lacks)
    probabilities, weights = probabilities[weights > 0], weights[weights > 0]
    marginal = weights @ probabilities / weights.sum()  # (K,) p(y)
    # p log(p / p(y)), with 0 log 0 = 0; p(y) > 0 wherever a weighted image has p > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(
            probabilities > 0, probabilities * np.log(probabilities / marginal[None, :]), 0.0
        )
    divergence = terms.sum(axis=1)  # (N,) KL(p(y|x) || p(y))
    return float(np.exp(np.average(divergence, weights=weights)))


def fid_report(
    real_images: np.ndarray,
    real_labels: np.ndarray,
    fake_images: np.ndarray,
    fake_labels: np.ndarray,
    classes: list[Any],
    extractor: FeatureExtractor,
    *,
    kid: bool = True,
    precision_recall: bool = True,
    class_scores: bool = True,
    classifier: ImageClassifier | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """FID, KID, k-NN precision / recall and the Inception Score of generated images against
    real ones, overall and per class, from one feature pass over each set.

    Only the classes that were generated are compared, as in
    :func:`augment.tabular.fidelity.fidelity_report`: the generated images say nothing about the
    others, and comparing a minority-only set with all real images would measure the class mix.
    The overall numbers weight the real images to the generated class mix. Features are computed
    once per set, and only for real images of generated classes.

    The Inception Score comes from the extractor's own network when it classifies (InceptionV3:
    ``is/inception``; the domain CNN: ``is/domain``), else from ``classifier`` (``is/domain``).
    Per class an IS measures nothing (one class has no spread over classes); what a reader wants
    per class is whether the images look like the class they were asked for, so the domain CNN's
    mean probability of the conditioned class is reported instead, as ``confidence/domain``.

    Args:
        real_images: uint8 ``(N, H, W, C)`` real images (the job passes the holdout).
        real_labels: ``(N,)`` class indices into ``classes``.
        fake_images: uint8 ``(M, H, W, C)`` generated images.
        fake_labels: ``(M,)`` class indices into ``classes``.
        classes: the original class values, used to name the per-class metrics.
        extractor: a :class:`DomainExtractor`, :class:`InceptionExtractor` or the like.
        kid: also compute KID.
        precision_recall: also compute k-NN precision and recall
            (:mod:`augment.core.precision_recall`, k = 3, at most 5,000 images a set).
        class_scores: also compute the Inception Score and the conditioned-class confidence.
        classifier: the CNN trained on the real images, over ``classes``; a
            :class:`DomainExtractor` brings its own. Without one there is no confidence, and no
            IS unless the extractor classifies.
        seed: seeds the KID subsets and the precision / recall sample.

    Returns:
        ``{}`` when no image was generated; otherwise, with ``<e>`` the extractor's name, ``<s>``
        the IS network (``inception`` or ``domain``) and ``<c>`` a class's metric key:

        - ``fid/<e>``; ``fid/<e>/class/<c>`` for each generated class with at least 2 real and 2
          generated images; ``kid/<e>`` and ``kid/<e>/std`` when ``kid``;
        - ``precision/<e>`` (realism: share of generated images inside the real images'
          manifold) and ``recall/<e>`` (coverage: share of real images inside the generated
          manifold), and ``precision/<e>/class/<c>``, ``recall/<e>/class/<c>`` for each class
          with at least 4 images on both sides;
        - ``is/<s>`` of the generated images and ``is/<s>/real`` of the real images (weighted to
          the generated class mix: the score real images of that mix reach);
        - ``confidence/domain``: the domain CNN's mean probability that a generated image is of
          the class it was generated for; ``confidence/domain/real`` the same on the real
          images (weighted to the generated mix), ``confidence/domain/class/<c>`` per class;
        - ``domain_cnn/balanced_accuracy``: the domain CNN's balanced accuracy on every real
          image given (all classes), when there is a classifier: below
          :func:`augment.core.metrics.trusted_feature_accuracy` the numbers measured with it
          (its features, its IS, its confidence) say nothing.

        An overall number that cannot be computed (too few images on a side) is NaN.

    Raises:
        DataError: bad images or labels, or a classifier over another number of classes.

    Example:
        >>> report = fid_report(real, real_y, fake, fake_y, [0, 1], DomainExtractor(classifier))
        >>> sorted(report)  # doctest: +SKIP
        ['confidence/domain', 'confidence/domain/class/1', 'confidence/domain/real', 'fid/domain',
         'fid/domain/class/1', 'is/domain', 'is/domain/real', 'kid/domain', 'kid/domain/std',
         'precision/domain', 'precision/domain/class/1', 'recall/domain', 'recall/domain/class/1']
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
    if classifier is None and isinstance(extractor, DomainExtractor):
        classifier = extractor.classifier
    if classifier is not None and classifier.n_classes != len(classes):
        raise DataError(
            f"the classifier knows {classifier.n_classes} classes and the images {len(classes)}; "
            "pass the classifier trained on these images' classes"
        )
    name = extractor.name
    keys = unique_metric_keys(list(classes))
    report: dict[str, float] = {}
    if classifier is not None and len(real_images):
        # how far the domain CNN (the features, the IS, the confidence) can be trusted, on
        # every real image given, before they are cut to the generated classes
        report[FEATURE_NETWORK_SCORE] = float(
            balanced_accuracy_score(real_labels, classifier.predict(real_images))
        )
    fake_counts = np.bincount(fake_labels, minlength=len(classes))
    real_counts = np.bincount(real_labels, minlength=len(classes))
    comparable = np.flatnonzero(np.isin(real_labels, np.flatnonzero(fake_counts)))
    real_labels = real_labels[comparable]
    real_images = real_images[comparable]
    scored = class_scores and isinstance(extractor, ClassifyingExtractor)
    if scored:
        real_features, real_probabilities = extractor.features_and_probabilities(real_images)
        fake_features, fake_probabilities = extractor.features_and_probabilities(fake_images)
    else:
        real_features = extractor.features(real_images)  # (R, D)
        fake_features = extractor.features(fake_images)  # (M, D)

    # Each real image weighs (generated of its class) / (real of its class): the real set then
    # has the generated class mix.
    with np.errstate(divide="ignore", invalid="ignore"):
        per_class_weight = np.where(real_counts > 0, fake_counts / real_counts, 0.0)
    real_weights = per_class_weight[real_labels]

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
    if precision_recall:
        overall, per_class = precision_recall_by_class(
            real_features, real_labels, fake_features, fake_labels, DEFAULT_K, seed=seed
        )
        report[f"precision/{name}"] = overall.precision
        report[f"recall/{name}"] = overall.recall
        for index, result in per_class.items():
            report[f"precision/{name}/class/{keys[index]}"] = result.precision
            report[f"recall/{name}/class/{keys[index]}"] = result.recall
    if class_scores:
        domain = None  # the domain CNN's (real, generated) probabilities over ``classes``
        if scored and isinstance(extractor, DomainExtractor) and extractor.classifier is classifier:
            domain = (real_probabilities, fake_probabilities)
        elif classifier is not None:
            domain = (classifier.predict_proba(real_images), classifier.predict_proba(fake_images))
        source = name if scored else "domain"
        if not scored and domain is not None:
            real_probabilities, fake_probabilities = domain
        if scored or domain is not None:
            report[f"is/{source}"] = inception_score(fake_probabilities)
            report[f"is/{source}/real"] = (
                inception_score(real_probabilities, real_weights)
                if len(real_probabilities)
                else float("nan")
            )
        if domain is not None:
            report.update(
                _conditioned_confidence(*domain, real_labels, real_weights, fake_labels, keys)
            )
    return report


def _conditioned_confidence(
    real_probabilities: np.ndarray,
    fake_probabilities: np.ndarray,
    real_labels: np.ndarray,
    real_weights: np.ndarray,
    fake_labels: np.ndarray,
    keys: list[str],
) -> dict[str, float]:
    """The domain CNN's mean probability of each image's own class: generated, real, per class."""
    # (M,) p(the class it was generated for | image)
    fake_own = fake_probabilities[np.arange(len(fake_labels)), fake_labels]
    real_own = real_probabilities[np.arange(len(real_labels)), real_labels]
    report = {
        "confidence/domain": float(fake_own.mean()),
        "confidence/domain/real": (
            float(np.average(real_own, weights=real_weights)) if len(real_own) else float("nan")
        ),
    }
    for index in np.unique(fake_labels):
        report[f"confidence/domain/class/{keys[index]}"] = float(
            fake_own[fake_labels == index].mean()
        )
    return report
