"""Image validation arms (baseline / augmented / albumentations), the gate, and the oversamplers."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits

from augment.core.device import cpu_threads
from augment.core.errors import DataError
from augment.image.classifier import train_classifier
from augment.image.validate import classic_oversample, random_oversample, validate_images

CLASSES = ["zero", "one", "two", "three", "four"]
KEYS = ["accuracy", "balanced_accuracy", "macro_f1", *(f"recall/{c}" for c in CLASSES)]
EPOCHS = 6
RARE = 3


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: with two, training slowed ten-fold whenever another process held a core."""
    with cpu_threads(1):
        yield


@pytest.fixture(scope="module")
def split() -> dict[str, np.ndarray]:
    """Digits 0-4 at 8 px: train with class 3 cut to 8 images, a holdout, and a pool of spare 3s.

    The spare 3s stand in for a perfect generator.
    """
    data = load_digits()
    keep = data.target < 5
    images = np.round(data.images[keep] * 255 / 16).astype(np.uint8)[..., None]
    labels = data.target[keep].astype(np.int64)
    order = np.random.default_rng(0).permutation(len(images))
    images, labels = images[order], labels[order]
    holdout = np.concatenate([np.flatnonzero(labels == c)[:30] for c in range(5)])
    rest = np.setdiff1d(np.arange(len(images)), holdout)
    train = np.concatenate([rest[labels[rest] == c][: 8 if c == RARE else 60] for c in range(5)])
    spare = rest[labels[rest] == RARE][8:60]
    return {
        "train": images[train],
        "train_y": labels[train],
        "holdout": images[holdout],
        "holdout_y": labels[holdout],
        "synthetic": images[spare],
        "synthetic_y": labels[spare],
    }


ARMS = ("baseline", "augmented", "albumentations", "classic", "stacked")


def run(split, synthetic=None, synthetic_y=None, **options):
    defaults = {"classes": CLASSES, "target_counts": {RARE: 60}, "epochs": EPOCHS, "seed": 0}
    return validate_images(
        split["train"],
        split["train_y"],
        split["holdout"],
        split["holdout_y"],
        split["synthetic"] if synthetic is None else synthetic,
        split["synthetic_y"] if synthetic_y is None else synthetic_y,
        **{**defaults, **options},
    )


@pytest.fixture(scope="module")
def report(split):
    return run(split)


def test_metric_names(report):
    metrics = report.metrics
    for key in KEYS:
        for arm in ARMS:
            assert f"{arm}/cnn/{key}" in metrics
            assert metrics[f"{arm}/{key}"] == metrics[f"{arm}/cnn/{key}"]
        for prefix in ("lift", "lift/cnn", "lift_vs_albumentations"):
            assert f"{prefix}/{key}" in metrics
    for key in ("accuracy", "balanced_accuracy", "macro_f1"):
        assert metrics[f"lift_stacked_vs_classic/{key}"] == pytest.approx(
            metrics[f"stacked/{key}"] - metrics[f"classic/{key}"]
        )
    assert metrics["validation/passed"] in (0.0, 1.0)
    assert set(report.confusion) == {f"{arm}/cnn" for arm in ARMS}
    assert report.confusion["baseline/cnn"].sum() == 150
    assert set(report.per_class["arm"]) == set(ARMS)
    assert report.classes == CLASSES and report.notes == []


def test_lift_is_augmented_minus_baseline(report):
    metrics = report.metrics
    for key in KEYS:
        assert metrics[f"lift/{key}"] == pytest.approx(
            metrics[f"augmented/{key}"] - metrics[f"baseline/{key}"]
        )
        assert metrics[f"lift_vs_albumentations/{key}"] == pytest.approx(
            metrics[f"augmented/{key}"] - metrics[f"albumentations/{key}"]
        )
    # More images of the rare class, all of them real: its recall must not drop.
    assert metrics["lift/recall/three"] > 0
    assert metrics["lift/balanced_accuracy"] > 0


def test_gate_and_determinism(split, report):
    lift = report.metrics["lift/balanced_accuracy"]
    passing = run(split, min_lift=lift - 0.01)
    failing = run(split, min_lift=lift + 0.01)
    assert passing.passed and passing.metrics["validation/passed"] == 1.0
    assert not failing.passed and failing.metrics["validation/passed"] == 0.0
    # Same inputs and seed: the very same numbers, whatever the threshold.
    for key, value in report.metrics.items():
        if key != "validation/passed":
            assert passing.metrics[key] == value and failing.metrics[key] == value


def test_empty_synthetic_set_is_the_baseline(split):
    empty = run(
        split,
        synthetic=split["synthetic"][:0],
        synthetic_y=split["synthetic_y"][:0],
        classic=False,
    )
    assert "no synthetic images" in empty.notes[0]
    assert all(empty.metrics[f"lift/{key}"] == 0 for key in KEYS)
    assert not any(key.startswith("albumentations/") for key in empty.metrics)
    assert not any(key.startswith("lift_vs_") for key in empty.metrics)
    assert empty.passed  # a lift of 0 meets min_lift 0


def test_baseline_model_is_reused(split, report):
    # A deliberately weak model: one epoch on a quarter of the images.
    weak = train_classifier(split["train"][::4], split["train_y"][::4], 5, epochs=1, seed=3)
    reused = run(split, baseline_model=weak, classic=False)
    accuracy = float(np.mean(weak.predict(split["holdout"]) == split["holdout_y"]))
    assert reused.metrics["baseline/accuracy"] == accuracy
    assert reused.metrics["baseline/accuracy"] != report.metrics["baseline/accuracy"]
    assert reused.metrics["augmented/accuracy"] == report.metrics["augmented/accuracy"]


def test_bad_inputs_are_refused(split):
    with pytest.raises(DataError, match="holdout is empty"):
        validate_images(
            split["train"],
            split["train_y"],
            split["holdout"][:0],
            split["holdout_y"][:0],
            split["synthetic"],
            split["synthetic_y"],
            classes=CLASSES,
            target_counts={},
        )
    with pytest.raises(DataError, match="class indices"):
        run(split, synthetic_y=split["synthetic_y"] + 10)
    three_classes = train_classifier(split["train"][:20], split["train_y"][:20] % 3, 3, epochs=1)
    with pytest.raises(DataError, match="baseline_model was trained for 3 classes"):
        run(split, baseline_model=three_classes)
    with pytest.raises(DataError, match="same size"):
        run(split, synthetic=np.zeros((3, 16, 16, 1), np.uint8), synthetic_y=np.zeros(3, int))


def test_class_without_images_skips_the_albumentations_arm(split):
    train = split["train_y"] != 4
    skipped = validate_images(
        split["train"][train],
        split["train_y"][train],
        split["holdout"],
        split["holdout_y"],
        split["synthetic"][:0],
        split["synthetic_y"][:0],
        classes=CLASSES,
        target_counts={4: 10},
        epochs=1,
    )
    assert any(note.startswith("albumentations arm skipped") for note in skipped.notes)
    assert "albumentations/accuracy" not in skipped.metrics


# -- oversamplers -------------------------------------------------------------------------------
@pytest.mark.parametrize("oversample", [classic_oversample, random_oversample])
def test_oversamplers_reach_the_targets(split, oversample):
    images, labels = split["train"], split["train_y"]
    targets = {RARE: 45, 0: 70, 1: 10}  # class 1 already has 60: left as it is
    more, more_labels = oversample(images, labels, targets, seed=0)
    counts = np.bincount(more_labels, minlength=5)
    assert counts.tolist() == [70, 60, 60, 45, 60]
    assert more.dtype == np.uint8 and more.shape[1:] == images.shape[1:]
    assert more_labels.dtype == np.int64
    np.testing.assert_array_equal(more[: len(images)], images)  # the real images come first
    again, _ = oversample(images, labels, dict(reversed(targets.items())), seed=0)
    np.testing.assert_array_equal(again, more)


def test_classic_copies_are_transformed_and_random_copies_are_not(split):
    images, labels = split["train"], split["train_y"]
    n = len(images)
    classic, classic_labels = classic_oversample(images, labels, {RARE: 60}, seed=0)
    plain, _ = random_oversample(images, labels, {RARE: 60}, seed=0)
    originals = {image.tobytes() for image in images[labels == RARE]}
    assert not any(image.tobytes() in originals for image in classic[n:])
    assert all(image.tobytes() in originals for image in plain[n:])
    assert (classic_labels[n:] == RARE).all()
    other_seed, _ = classic_oversample(images, labels, {RARE: 60}, seed=1)
    assert not np.array_equal(other_seed[n:], classic[n:])


def test_classic_oversample_handles_colour_and_refuses_empty_classes():
    rgb = np.random.default_rng(0).integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    labels = np.array([0, 0, 0, 0, 1, 1])
    more, more_labels = classic_oversample(rgb, labels, {1: 5}, seed=0)
    assert more.shape == (9, 32, 32, 3) and np.bincount(more_labels).tolist() == [4, 5]
    with pytest.raises(DataError, match="class index 2 has no image"):
        classic_oversample(rgb, labels, {2: 3}, seed=0)


def test_a_large_arm_is_validated_on_a_stratified_sample(split, report):
    """248 real training images + 52 synthetic 3s, capped at 280: the synthetic ones (under half
    the cap) all stay, the real ones are sampled per class to make room (the rare class keeps
    7 of 8), and the albumentations arm tops up to the same per-class counts."""
    assert report.metrics["validation/capped"] == 0.0
    assert report.metrics["validation/rows/augmented"] == 248 + 52
    capped = run(split, max_rows=280)
    metrics = capped.metrics
    assert metrics["validation/capped"] == 1.0
    assert metrics["validation/rows/baseline"] == 4 * 55 + 7
    assert metrics["validation/rows/augmented"] == 4 * 55 + 7 + 52
    assert metrics["validation/rows/albumentations"] == metrics["validation/rows/augmented"]
    assert "stratified sample (validate.max_rows=280)" in capped.notes[0]
