"""Do the generated images help a downstream CNN? Real, synthetic and classic augmentation, alone
and stacked.

Each arm trains the same small CNN (:mod:`augment.image.classifier`, same seed, same
epochs) on its images and is scored on the same real holdout:

- ``baseline``: the real training images;
- ``augmented``: the real training images plus the synthetic ones (the fixed set a sampler
  returns);
- ``albumentations``: the real training images with each class below its target topped up by
  randomly chosen real images, each copy moved by albumentations (:func:`classic_oversample`):
  the fixed set a GAN has to beat;
- ``classic``: the real training images topped up to the targets with copies (random
  oversampling), with the albumentations pipeline applied on the fly (a fresh move of every image
  in every epoch), as a user's training loop runs it: classic augmentation at its best, with the
  same class counts as the stacked arm;
- ``stacked``: the real and synthetic images with the same pipeline on the fly: what a user who
  already augments gets by adding the synthetic images. ``lift_stacked_vs_classic/<m>`` is the
  number that tells them whether to. By default half of each class's top-up is synthetic and
  half copies of its real images (:func:`stacked_set`, ``stack_share``).

    report = validate_images(train, train_y, holdout, holdout_y, synthetic, synthetic_y,
                             classes=classes, target_counts={3: 180}, seed=0)
    report.metrics["lift/balanced_accuracy"], report.metrics["lift_vs_albumentations/macro_f1"]

Metric names and the do-no-harm gate are those of :mod:`augment.core.validation`,
with one classifier, ``cnn``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from augment.core.balance import class_counts
from augment.core.config import STACK_SHARE
from augment.core.errors import DataError
from augment.core.validation import ValidationReport, arm_rows, build_report, stratified_pick
from augment.image.classic import classic_augmentation, edge_fill, warp_images
from augment.image.classifier import (
    ImageClassifier,
    check_images,
    check_labels,
    train_classifier,
)
from augment.image.sizes import WORK_SIZE, work_size
from augment.image.transforms import downsample

CLASSIFIER = "cnn"


def classic_oversample(
    images: np.ndarray, labels: np.ndarray, target_counts: dict[int, int], seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Top up each class to its target with augmented copies of its real images.

    Copies are drawn with replacement from the class's images, and every copy goes through
    :func:`classic_augmentation`, its edges filled as :func:`augment.image.classic.edge_fill`
    says for the whole set. Measured: ~0.4 ms per copy at 8 or 28 px on one core.

    Args:
        images: uint8 ``(N, H, W, C)``.
        labels: ``(N,)`` int class indices.
        target_counts: class index -> final count; a target at or below the class's count leaves
            it as it is.
        seed: fixes which images are copied and how each copy is moved.

    Returns:
        ``(images, labels)``: the real images first, then the copies in ascending class order.

    Raises:
        DataError: bad images or labels, or a class to top up has no image.

    Example:
        >>> more, more_y = classic_oversample(images, labels, {3: 180}, seed=0)
        >>> int((more_y == 3).sum())  # doctest: +SKIP
        180
    """
    images, labels, picks = _pick_copies(images, labels, target_counts, seed)
    augment = classic_augmentation(images.shape[1], seed, edge_fill(images))
    copies = np.empty((len(picks), *images.shape[1:]), dtype=np.uint8)
    for position, index in enumerate(picks):
        # albumentations keeps (H, W, 1) as it is, so greyscale needs no special case.
        copies[position] = augment(image=images[index])["image"]
    return np.concatenate([images, copies]), np.concatenate([labels, labels[picks]])


def random_oversample(
    images: np.ndarray, labels: np.ndarray, target_counts: dict[int, int], seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Like :func:`classic_oversample`, with plain copies (imbalanced-learn's random oversampling).

    For benchmarks: the weakest way of reaching the same class counts.
    """
    images, labels, picks = _pick_copies(images, labels, target_counts, seed)
    return np.concatenate([images, images[picks]]), np.concatenate([labels, labels[picks]])


def stacked_set(
    images: np.ndarray,
    labels: np.ndarray,
    synthetic_images: np.ndarray,
    synthetic_labels: np.ndarray,
    share: float = STACK_SHARE,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, int]:
    """The set to train on with augmentation on the fly: real images, plus for each class
    ``share`` of its synthetic images and copies of its real images in place of the rest.

    The class counts are those of real + synthetic; only what fills the top-up changes. Which
    synthetic images are kept and which real images are copied is drawn from ``seed``. A class
    with synthetic images but no real one keeps all its synthetic images (nothing to copy).

    Args:
        images, labels: the real images, uint8 ``(N, H, W, C)``, and their class indices.
        synthetic_images, synthetic_labels: the generated images and their class indices.
        share: in ``(0, 1]``; 1 keeps every synthetic image (no copies).
        seed: fixes the draws.

    Returns:
        ``(images, labels, n_copies)``: the real images first, then per class in ascending order
        its kept synthetic images and its copies; ``n_copies`` counts the copies.

    Raises:
        DataError: ``share`` outside ``(0, 1]``.

    Example:
        >>> x, y, copies = stacked_set(images, labels, fake, fake_labels, share=0.5, seed=0)
        >>> len(x) == len(images) + len(fake)
        True
    """
    if not 0 < share <= 1:
        raise DataError(f"the stacked arm's synthetic share must be in (0, 1]; got {share}")
    labels = np.asarray(labels)
    synthetic_labels = np.asarray(synthetic_labels)
    rng = np.random.default_rng(seed)
    parts, part_labels, n_copies = [images], [labels], 0
    for cls in np.unique(synthetic_labels):
        fake = np.flatnonzero(synthetic_labels == cls)
        real = np.flatnonzero(labels == cls)
        keep = len(fake) if len(real) == 0 else int(round(share * len(fake)))
        copies = rng.choice(real, len(fake) - keep, replace=True)  # none when nothing to copy
        parts += [synthetic_images[rng.permutation(fake)[:keep]], images[copies]]
        part_labels.append(np.full(len(fake), cls, dtype=labels.dtype))
        n_copies += len(copies)
    return np.concatenate(parts), np.concatenate(part_labels), n_copies


def _at_size(images: np.ndarray, side: int, size: int) -> np.ndarray:
    """Images of the training images' ``side`` area-averaged down to ``size``; any others as they
    are (already at ``size``, or a mismatch the shape checks name)."""
    return downsample(images, size) if images.shape[1] == side else images


def _pick_copies(
    images: np.ndarray, labels: np.ndarray, target_counts: dict[int, int], seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of the images to copy: ``target - count`` draws per class below its target."""
    images = check_images(images)
    labels = np.asarray(labels)
    if len(labels) and not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"the labels must be integer class indices; got {labels.dtype}")
    largest = max([int(labels.max()) if len(labels) else 0, *(int(c) for c in target_counts)])
    labels = check_labels(labels, len(images), largest + 1)
    rng = np.random.default_rng(seed)
    picks: list[np.ndarray] = []
    # Ascending class order: the output does not depend on the dict's order.
    for cls in sorted(int(c) for c in target_counts):
        members = np.flatnonzero(labels == cls)
        missing = int(target_counts[cls]) - len(members)
        if missing <= 0:
            continue
        if len(members) == 0:
            raise DataError(
                f"class index {cls} has no image to copy but a target of {target_counts[cls]}; "
                "give it real images or drop it from the targets"
            )
        picks.append(rng.choice(members, missing, replace=True))
    picks_array = np.concatenate(picks) if picks else np.zeros(0, dtype=np.int64)
    return images, labels, picks_array


def validate_images(
    train_images: np.ndarray,
    train_labels: np.ndarray,
    holdout_images: np.ndarray,
    holdout_labels: np.ndarray,
    synthetic_images: np.ndarray,
    synthetic_labels: np.ndarray,
    *,
    classes: list[Any],
    target_counts: dict[int, int],
    epochs: int = 15,
    seed: int = 0,
    device: torch.device | str = "cpu",
    classic: bool = True,
    min_lift: float = 0.0,
    baseline_model: ImageClassifier | None = None,
    max_rows: int | None = None,
    stacking: bool = True,
    stacked_images: np.ndarray | None = None,
    stacked_labels: np.ndarray | None = None,
    stack_share: float = STACK_SHARE,
    max_size: int | None = WORK_SIZE,
) -> ValidationReport:
    """Train the CNN on real, real+synthetic and real+albumentations images; score on the holdout.

    Every arm's CNN starts from the same initial weights (same seed), so the lift measures the
    images, not the luck of the draw. An arm with more images also takes more steps per epoch.

    Args:
        train_images, train_labels: real training images, uint8 ``(N, H, W, C)``, and their
            class indices into ``classes``.
        holdout_images, holdout_labels: real images never trained on; every arm is scored on them.
        synthetic_images, synthetic_labels: generated images and class indices; may be empty.
        classes: the original class values, in index order (they name the per-class metrics).
        target_counts: class index -> final count (real + generated); the albumentations arm
            tops up to these counts.
        epochs: CNN epochs per arm.
        seed: seeds every CNN and the albumentations copies.
        device: torch device.
        classic: whether to run the albumentations arm.
        min_lift: the gate passes when ``lift/balanced_accuracy >= min_lift``.
        baseline_model: a CNN the caller already trained on ``train_images`` (e.g. for the FID
            features); used as the baseline arm instead of training another.
        max_rows: at most this many images in any arm; larger arms use a stratified sample
            (:func:`augment.core.validation.arm_rows`), reported in the notes and metrics.
        stacking: run the ``classic`` and ``stacked`` arms (albumentations on the fly).
        stacked_images, stacked_labels: the synthetic images the stacked arm uses instead of
            ``synthetic_images`` (e.g. a warped recipe's images before their warp: the on-the-fly
            pipeline moves them anyway, and moving them twice made worse images).
        stack_share: the share of each class's top-up that the stacked arm fills with
            synthetic images; copies of the class's real images fill the rest
            (:func:`stacked_set`). The realised share is ``stacked/synthetic_share``.
        max_size: every set is area-averaged down to this side (halved until at most
            ``max_size``, :func:`augment.image.sizes.work_size`) before anything else, so the
            arms, their copies and the on-the-fly moves run at that size; ``None``: full size.

    Returns:
        A :class:`augment.core.validation.ValidationReport`. Metric names, with ``<m>`` one of
        ``accuracy``, ``balanced_accuracy``, ``macro_f1``, ``recall/<class key>``:
        ``<arm>/cnn/<m>`` and ``<arm>/<m>`` for arms ``baseline``, ``augmented`` and
        ``albumentations``; ``lift/<m>`` and ``lift/cnn/<m>`` (augmented - baseline);
        ``lift_vs_albumentations/<m>`` (augmented - albumentations, when that arm ran);
        ``lift_stacked_vs_classic/<m>`` (stacked - classic, when those arms ran) and
        ``stacked/synthetic_share``;
        ``validation/passed`` (1.0 or 0.0). Averaging rules as in ``validate_downstream``.

    Raises:
        DataError: bad images or labels, different image shapes, an empty holdout, or fewer
            than two classes in the training images. (A class to top up without any image skips
            the albumentations arm, with a note.)

    Example:
        >>> report = validate_images(x, y, hx, hy, sx, sy, classes=[0, 1], target_counts={1: 90})
        >>> report.passed, report.metrics["lift/balanced_accuracy"]  # doctest: +SKIP
        (True, 0.04)
    """
    classes = list(classes)
    n_classes = len(classes)
    train_images = check_images(train_images, "training images")
    holdout_images = check_images(holdout_images, "holdout images")
    synthetic_images = check_images(synthetic_images, "synthetic images")
    train_labels = check_labels(train_labels, len(train_images), n_classes, "training labels")
    holdout_labels = check_labels(holdout_labels, len(holdout_images), n_classes, "holdout labels")
    synthetic_labels = check_labels(
        synthetic_labels, len(synthetic_images), n_classes, "synthetic labels"
    )
    # every set at the working size (a set given already at that size is taken as it is)
    side = train_images.shape[1]
    size = work_size(side, max_size)
    train_images, holdout_images, synthetic_images = (
        _at_size(images, side, size) for images in (train_images, holdout_images, synthetic_images)
    )
    shape = train_images.shape[1:]
    for what, images in (("holdout", holdout_images), ("synthetic", synthetic_images)):
        if len(images) and images.shape[1:] != shape:
            raise DataError(
                f"the {what} images are {images.shape[1:]} but the training images {shape}; "
                "every set must have the same size and channels"
            )
    if len(holdout_images) == 0:
        raise DataError("the holdout is empty; raise validate.holdout or provide more images")
    if len(np.unique(train_labels)) < 2:
        raise DataError(
            "the training images hold fewer than two classes; a classifier cannot be trained"
        )
    if baseline_model is not None and (
        baseline_model.n_classes != n_classes or baseline_model.size != shape[0]
    ):
        raise DataError(
            f"baseline_model was trained for {baseline_model.n_classes} classes of "
            f"{baseline_model.size} px images; these are {n_classes} classes of {shape[0]} px"
        )

    def fit(images: np.ndarray, labels: np.ndarray, on_the_fly: bool = False) -> ImageClassifier:
        return train_classifier(
            images,
            labels,
            n_classes,
            epochs=epochs,
            seed=seed,
            device=device,
            augment=warp_images if on_the_fly else None,
        )

    notes: list[str] = []
    if stacked_images is None:
        stacked_images, stacked_labels = synthetic_images, synthetic_labels
    stacked_images = _at_size(check_images(stacked_images, "stacked images"), side, size)
    stacked_labels = check_labels(
        stacked_labels, len(stacked_images), n_classes, "stacked image labels"
    )
    rows = arm_rows(class_counts(train_labels), class_counts(synthetic_labels), max_rows)
    if rows.capped:
        rng = np.random.default_rng(seed)
        if sum(rows.real.values()) < len(train_images):
            baseline_model = None  # it saw every real image; the arms see a sample
        keep = stratified_pick(train_labels, rows.real, rng)
        train_images, train_labels = train_images[keep], train_labels[keep]
        keep = stratified_pick(synthetic_labels, rows.synthetic, rng)
        synthetic_images, synthetic_labels = synthetic_images[keep], synthetic_labels[keep]
        keep = stratified_pick(stacked_labels, rows.synthetic, rng)
        stacked_images, stacked_labels = stacked_images[keep], stacked_labels[keep]
        target_counts = rows.targets
        notes.append(
            f"validation used a stratified sample (validate.max_rows={max_rows}): "
            f"{len(train_images)} real and {len(synthetic_images)} synthetic images"
        )
    baseline = fit(train_images, train_labels) if baseline_model is None else baseline_model
    models: dict[str, ImageClassifier] = {"baseline": baseline}
    sizes = {"baseline": len(train_images), "augmented": len(train_images) + len(synthetic_images)}
    if len(synthetic_images):
        models["augmented"] = fit(
            np.concatenate([train_images, synthetic_images]),
            np.concatenate([train_labels, synthetic_labels]),
        )
    else:
        # Retraining on the very same images would give the same model.
        notes.append("no synthetic images: the augmented arm is the baseline (lift 0)")
        models["augmented"] = models["baseline"]
    if classic:
        try:
            classic_images, classic_labels = classic_oversample(
                train_images, train_labels, target_counts, seed
            )
        except DataError as error:
            notes.append(f"albumentations arm skipped: {error}")
        else:
            if len(classic_images) == len(train_images):
                notes.append(
                    "albumentations arm: no class is below its target count; it is the baseline"
                )
                models["albumentations"] = models["baseline"]
            else:
                models["albumentations"] = fit(classic_images, classic_labels)
            sizes["albumentations"] = len(classic_images)
            del classic_images, classic_labels  # each arm's set goes once its CNN is trained

    if stacking:
        # the strongest classic arm: the same class counts as the stacked arm, reached with
        # copies of real images, every image moved on the fly
        classic_x, classic_y = train_images, train_labels
        try:
            classic_x, classic_y = random_oversample(
                train_images, train_labels, target_counts, seed
            )
        except DataError as error:
            notes.append(f"classic arm without oversampling: {error}")
        models["classic"] = fit(classic_x, classic_y, on_the_fly=True)
        sizes["classic"] = len(classic_x)
        del classic_x, classic_y
        if len(stacked_images):
            stack_x, stack_y, n_copies = stacked_set(
                train_images, train_labels, stacked_images, stacked_labels, stack_share, seed
            )
            models["stacked"] = fit(stack_x, stack_y, on_the_fly=True)
            stack_synthetic = len(stacked_images) - n_copies
            del stack_x, stack_y
        else:
            notes.append("no synthetic images: the stacked arm is the classic arm")
            models["stacked"] = models["classic"]
            stack_synthetic = 0
        sizes["stacked"] = len(train_images) + len(stacked_images)

    predictions: dict[tuple[str, str], np.ndarray] = {}
    by_model: dict[int, np.ndarray] = {}  # arms that are the baseline share its predictions
    for arm, model in models.items():
        if id(model) not in by_model:
            by_model[id(model)] = model.predict(holdout_images)
        predictions[arm, CLASSIFIER] = by_model[id(model)]
    report = build_report(
        holdout_labels,
        predictions,
        classes,
        reference_arm="albumentations" if "albumentations" in models else None,
        min_lift=min_lift,
        notes=notes,
        arm_sizes=sizes,
        capped=rows.capped,
    )
    if stacking:
        for metric in ("accuracy", "balanced_accuracy", "macro_f1"):
            report.metrics[f"lift_stacked_vs_classic/{metric}"] = (
                report.metrics[f"stacked/{metric}"] - report.metrics[f"classic/{metric}"]
            )
        report.metrics["stacked/synthetic_share"] = stack_synthetic / max(len(stacked_images), 1)
    return report
