"""The small image CNN, FID / KID, IS, k-NN precision / recall, the feature extractors and the
offline Inception loading path."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch
import torch_fidelity.feature_extractor_inceptionv3 as fidelity_inception
from sklearn.datasets import load_digits
from torch_fidelity.metric_isc import isc_features_to_metric
from torch_fidelity.metric_kid import kid_features_to_metric

from augment.core.device import cpu_threads
from augment.core.errors import ConfigError, DataError, ModelFileError
from augment.core.precision_recall import precision_recall_by_class
from augment.image.classifier import ImageClassifier, SmallCNN, train_classifier
from augment.image.fid import (
    INCEPTION_WEIGHTS_FILES,
    DomainExtractor,
    InceptionExtractor,
    fid_report,
    find_inception_weights,
    frechet_distance,
    inception_score,
    kernel_inception_distance,
    resolve_extractor,
)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: with two, training slowed ten-fold whenever another process held a core."""
    with cpu_threads(1):
        yield


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    """sklearn's 1797 digits as uint8 (N, 8, 8, 1) and int64 labels, shuffled."""
    data = load_digits()
    images = np.round(data.images * 255 / 16).astype(np.uint8)[..., None]
    order = np.random.default_rng(0).permutation(len(images))
    return images[order], data.target[order].astype(np.int64)


@pytest.fixture(scope="module")
def classifier(digits) -> ImageClassifier:
    images, labels = digits
    return train_classifier(images[:1000], labels[:1000], 10, epochs=8, seed=0)


def brighter(images: np.ndarray, amount: int = 60) -> np.ndarray:
    return np.clip(images.astype(np.int16) + amount, 0, 255).astype(np.uint8)


# -- classifier -------------------------------------------------------------------------------
def test_classifier_learns_digits(digits, classifier):
    images, labels = digits
    accuracy = np.mean(classifier.predict(images[1000:]) == labels[1000:])
    assert accuracy > 0.9
    probabilities = classifier.predict_proba(images[1000:1010])
    assert probabilities.shape == (10, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-9)
    assert classifier.features(images[:5]).shape == (5, 64)


def test_classifier_state_dict_round_trip(digits, classifier, tmp_path):
    images, _ = digits
    path = tmp_path / "classifier.pt"
    torch.save(classifier.state_dict(), path)
    restored = ImageClassifier.from_state_dict(torch.load(path, weights_only=True))
    np.testing.assert_array_equal(
        restored.predict_proba(images[:200]), classifier.predict_proba(images[:200])
    )
    np.testing.assert_array_equal(restored.features(images[:50]), classifier.features(images[:50]))
    with pytest.raises(ModelFileError, match="expected 'small_cnn/1'"):
        ImageClassifier.from_state_dict({"architecture": "resnet"})
    with pytest.raises(ModelFileError, match="do not fit"):
        ImageClassifier.from_state_dict({**classifier.state_dict(), "n_classes": 3})


def test_training_is_seeded_and_leaves_the_global_rng_alone(digits):
    images, labels = digits[0][:300], digits[1][:300]
    torch.manual_seed(123)
    before = torch.get_rng_state()
    first = train_classifier(images, labels, 10, epochs=2, seed=7)
    assert torch.equal(torch.get_rng_state(), before)
    again = train_classifier(images, labels, 10, epochs=2, seed=7)
    other = train_classifier(images, labels, 10, epochs=2, seed=8)
    probe = digits[0][1000:1100]
    np.testing.assert_array_equal(first.predict_proba(probe), again.predict_proba(probe))
    assert not np.allclose(first.predict_proba(probe), other.predict_proba(probe))


def test_class_weighting_changes_the_model(digits):
    images, labels = digits
    # Keep 6 images of class 0 among ~270 of classes 1 and 2.
    rows = np.concatenate(
        [np.flatnonzero(labels == 0)[:6], np.flatnonzero((labels == 1) | (labels == 2))[:270]]
    )
    plain = train_classifier(images[rows], labels[rows], 3, epochs=3, seed=0)
    weighted = train_classifier(
        images[rows], labels[rows], 3, epochs=3, seed=0, class_weighted=True
    )
    probe = images[np.flatnonzero(labels == 0)[6:60]]
    # The rare class weighs ~15 times more, so the model leans towards it.
    assert weighted.predict_proba(probe)[:, 0].mean() > plain.predict_proba(probe)[:, 0].mean()


@pytest.mark.parametrize("size", [8, 12, 28, 64])
def test_small_cnn_takes_every_size(size):
    network = SmallCNN(channels=3, size=size, n_classes=4).eval()
    x = torch.zeros(2, 3, size, size)
    assert network(x).shape == (2, 4)
    assert network.features(x).shape == (2, 64)


def test_classifier_refuses_bad_images(digits, classifier):
    images, labels = digits
    with pytest.raises(DataError, match="uint8"):
        train_classifier(images.astype(np.float32), labels, 10)
    with pytest.raises(DataError, match="channel axis"):
        classifier.predict(images[..., 0])
    with pytest.raises(DataError, match="class indices"):
        train_classifier(images[:10], labels[:10] + 10, 10)
    with pytest.raises(DataError, match="trained on 8 x 8"):
        classifier.predict(np.zeros((2, 16, 16, 1), dtype=np.uint8))


# -- Fréchet distance and KID -----------------------------------------------------------------
def test_frechet_distance_of_known_gaussians():
    # Whitened rows: the sample mean is exactly 0 and the sample covariance exactly I, so the
    # distance to (rows * s + mu) is exactly |mu|^2 + sum (1 - s)^2.
    rows = np.random.default_rng(0).normal(size=(500, 3))
    rows -= rows.mean(axis=0)
    rows = rows @ np.linalg.inv(np.linalg.cholesky(np.cov(rows, rowvar=False))).T
    scale, shift = np.array([1.0, 2.0, 0.5]), np.array([1.0, -2.0, 0.0])
    expected = float(np.sum(shift**2) + np.sum((1 - scale) ** 2))  # 5 + 1 + 0.25
    assert frechet_distance(rows, rows * scale + shift) == pytest.approx(expected, abs=1e-5)


def test_frechet_distance_matches_the_sqrtm_formula():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(300, 6)) @ rng.normal(size=(6, 6))
    b = rng.normal(size=(200, 6)) @ rng.normal(size=(6, 6)) + 0.5
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(cov_a @ cov_b).real
    expected = np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(cov_a + cov_b - 2 * root)
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-5)


def test_frechet_distance_in_domain_features(digits, classifier):
    images = digits[0][1000:1600]
    extractor = DomainExtractor(classifier)
    first, second = extractor.features(images[:300]), extractor.features(images[300:])
    shifted = extractor.features(brighter(images[300:]))
    assert frechet_distance(first, first) < 1e-6
    real_vs_real = frechet_distance(first, second)
    assert frechet_distance(first, shifted) > 3 * real_vs_real


def test_kid_near_zero_for_one_distribution_and_larger_when_shifted(digits, classifier):
    images = digits[0][1000:1600]
    extractor = DomainExtractor(classifier)
    first, second = extractor.features(images[:300]), extractor.features(images[300:])
    shifted = extractor.features(brighter(images[300:]))
    same, same_std = kernel_inception_distance(first, second, subset_size=100, seed=0)
    different, _ = kernel_inception_distance(first, shifted, subset_size=100, seed=0)
    assert abs(same) < 0.01
    assert different > 10 * max(abs(same), same_std)
    assert kernel_inception_distance(first, second, subset_size=100, seed=0) == (same, same_std)


def test_kid_matches_torch_fidelity():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(60, 16)), rng.normal(0.3, 1.2, size=(60, 16))
    # With the subsets as large as the sets, every subset is the whole set in another order.
    ours, _ = kernel_inception_distance(a, b, subsets=2, subset_size=60)
    theirs = kid_features_to_metric(
        torch.from_numpy(a), torch.from_numpy(b), kid_subsets=2, kid_subset_size=60, verbose=False
    )
    assert ours == pytest.approx(theirs["kernel_inception_distance_mean"], rel=1e-9)
    weighted, _ = kernel_inception_distance(a, b, subsets=2, subset_size=60, weights_a=np.ones(60))
    assert weighted == pytest.approx(ours, rel=1e-12)


def test_kid_with_too_few_rows_is_nan_and_rejects_a_large_subset():
    rows = np.ones((1, 4))
    assert all(np.isnan(kernel_inception_distance(rows, np.ones((5, 4)))))
    with pytest.raises(DataError, match="subset size"):
        kernel_inception_distance(np.ones((5, 4)), np.ones((5, 4)), subset_size=6)


# -- fid_report --------------------------------------------------------------------------------
def test_fid_report_names_and_skips_small_classes(digits, classifier):
    images, labels = digits
    classes = ["zero", "one", "two", "three|3", *range(4, 10)]
    real_rows = np.concatenate(
        [np.flatnonzero(labels[:1000] == c)[:20] for c in (0, 1, 2)]
        + [np.flatnonzero(labels[:1000] == 3)[:1]]  # one real image of class 3
    )
    fake_rows = (
        1000
        + np.concatenate(
            [
                np.flatnonzero(labels[1000:] == 1)[:8],
                np.flatnonzero(labels[1000:] == 2)[:1],  # one generated image of class 2
                np.flatnonzero(labels[1000:] == 3)[:4],
            ]
        )
    )
    extractor = DomainExtractor(classifier)
    report = fid_report(
        images[real_rows],
        labels[real_rows],
        images[fake_rows],
        labels[fake_rows],
        classes,
        extractor,
        seed=0,
    )
    assert sorted(report) == [
        "confidence/domain",
        "confidence/domain/class/one",
        "confidence/domain/class/three_3",
        "confidence/domain/class/two",
        "confidence/domain/real",
        "domain_cnn/balanced_accuracy",  # whether the features can be trusted (issue 32 item 7)
        "fid/domain",
        "fid/domain/class/one",
        "is/domain",
        "is/domain/real",
        "kid/domain",
        "kid/domain/std",
        "precision/domain",
        "precision/domain/class/one",  # 20 real and 8 generated; the others have under 4
        "recall/domain",
        "recall/domain/class/one",
    ]
    assert all(np.isfinite(value) for value in report.values())
    one_real = images[real_rows][labels[real_rows] == 1]
    one_fake = images[fake_rows][labels[fake_rows] == 1]
    assert report["fid/domain/class/one"] == pytest.approx(
        frechet_distance(extractor.features(one_real), extractor.features(one_fake))
    )
    assert (
        fid_report(images[:10], labels[:10], images[:0], labels[:0], list(range(10)), extractor)
        == {}
    )
    only_fid = fid_report(
        images[:40],
        labels[:40],
        images[40:80],
        labels[40:80],
        list(range(10)),
        extractor,
        kid=False,
        precision_recall=False,
        class_scores=False,
    )
    # the FID, and the domain CNN's own score that says whether its features mean anything
    assert "fid/domain" in only_fid and "domain_cnn/balanced_accuracy" in only_fid
    assert all(key.startswith(("fid/", "domain_cnn/")) for key in only_fid)
    with pytest.raises(DataError, match="classifier knows 10 classes"):
        fid_report(
            images[:40], labels[:40] % 4, images[40:80], labels[40:80] % 4, classes[:4], extractor
        )


def test_fid_report_compares_the_generated_class_mix(digits, classifier):
    images, labels = digits
    extractor = DomainExtractor(classifier)
    # "Generated": real holdout images, 40 of class 1 and 5 of class 2. The training images hold
    # every class, with about as many 1s as 2s.
    fake_rows = 1000 + np.concatenate(
        [np.flatnonzero(labels[1000:] == 1)[:40], np.flatnonzero(labels[1000:] == 2)[:5]]
    )
    fake = extractor.features(images[fake_rows])
    report = fid_report(
        images[:1000],
        labels[:1000],
        images[fake_rows],
        labels[fake_rows],
        list(range(10)),
        extractor,
    )
    everything = frechet_distance(extractor.features(images[:1000]), fake)
    ones_and_twos = extractor.features(images[:1000][np.isin(labels[:1000], [1, 2])])
    assert report["fid/domain"] < everything / 5  # other classes are left out
    # ... and the 1s and 2s are weighted 40 : 5, not taken half and half.
    assert report["fid/domain"] < frechet_distance(ones_and_twos, fake) / 5
    assert report["kid/domain"] < kernel_inception_distance(ones_and_twos, fake)[0] / 5


# -- Inception Score, k-NN precision / recall, conditioned-class confidence ---------------------
def test_inception_score_known_values():
    assert inception_score(np.eye(4)) == pytest.approx(4.0)
    assert inception_score(np.full((10, 4), 0.25)) == pytest.approx(1.0)
    # sure of every image, but three of class 0 for one of class 1: exp of the entropy of p(y)
    sure = np.eye(2)[[0, 0, 0, 1]]
    assert inception_score(sure) == pytest.approx(
        np.exp(-(0.75 * np.log(0.75) + 0.25 * np.log(0.25)))
    )
    # weights: a weight of 3 is three copies; weight 0 drops an image, even of a class no other
    # image has (its p(y) would be 0)
    assert inception_score(np.eye(2), weights=[3, 1]) == pytest.approx(inception_score(sure))
    assert inception_score(np.eye(3), weights=[1, 1, 0]) == pytest.approx(2.0)
    assert np.isnan(inception_score(np.zeros((0, 3))))
    with pytest.raises(DataError, match="sum to 1"):
        inception_score(np.ones((2, 3)))
    with pytest.raises(DataError, match="weights"):
        inception_score(np.eye(3), weights=[1, 1])


def test_inception_score_matches_torch_fidelity():
    logits = np.random.default_rng(0).normal(scale=3.0, size=(64, 12))
    theirs = isc_features_to_metric(torch.from_numpy(logits), splits=1, shuffle=False)
    probabilities = torch.softmax(torch.from_numpy(logits), dim=1).numpy()
    assert inception_score(probabilities) == pytest.approx(theirs["inception_score_mean"], rel=1e-9)


def test_fid_report_tells_a_collapsed_class_and_far_images(digits, classifier):
    images, labels = digits
    extractor = DomainExtractor(classifier)
    real_rows = np.flatnonzero(np.isin(labels[1000:1400], [1, 2])) + 1000
    fresh_rows = np.flatnonzero(np.isin(labels[1400:], [1, 2])) + 1400
    ones, twos = fresh_rows[labels[fresh_rows] == 1], fresh_rows[labels[fresh_rows] == 2]
    # class 1: one image 30 times (collapsed); class 2: fresh real images (good)
    fake_rows = np.r_[np.repeat(ones[:1], 30), twos]
    report = fid_report(
        images[real_rows],
        labels[real_rows],
        images[fake_rows],
        labels[fake_rows],
        list(range(10)),
        extractor,
        seed=0,
    )
    assert report["precision/domain/class/1"] > 0.9 and report["recall/domain/class/1"] < 0.2
    assert report["precision/domain/class/2"] > 0.6 and report["recall/domain/class/2"] > 0.6
    assert report["recall/domain"] < report["recall/domain/class/2"]
    # the same numbers as core.precision_recall on the same features
    overall, per_class = precision_recall_by_class(
        extractor.features(images[real_rows]),
        labels[real_rows],
        extractor.features(images[fake_rows]),
        labels[fake_rows],
    )
    assert (report["precision/domain"], report["recall/domain"]) == (
        overall.precision,
        overall.recall,
    )
    assert report["recall/domain/class/2"] == per_class[2].recall
    # fresh real images of both classes: an IS near the real one, confident in their class
    real_like = fid_report(
        images[real_rows],
        labels[real_rows],
        images[fresh_rows],
        labels[fresh_rows],
        list(range(10)),
        extractor,
        seed=0,
    )
    assert 1.0 < real_like["is/domain"] <= 2.0 + 1e-9  # two classes
    assert real_like["is/domain"] == pytest.approx(real_like["is/domain/real"], abs=0.2)
    # the small CNN's softmax is soft (97% right on the holdout, ~0.6 sure): compare, not absolute
    assert real_like["confidence/domain"] == pytest.approx(
        real_like["confidence/domain/real"], abs=0.1
    )
    # inverted digits: far from the real ones and not recognised as the class asked for
    inverted = fid_report(
        images[real_rows],
        labels[real_rows],
        255 - images[fresh_rows],
        labels[fresh_rows],
        list(range(10)),
        extractor,
        seed=0,
    )
    assert inverted["precision/domain"] < 0.1
    assert inverted["confidence/domain"] < real_like["confidence/domain"] / 2
    assert inverted["is/domain"] < real_like["is/domain"]
    assert inverted["is/domain/real"] == real_like["is/domain/real"]  # the same real images
    for key, value in report.items():
        if key.split("/")[0] in ("precision", "recall", "confidence"):
            assert 0.0 <= value <= 1.0, key


# -- extractors and the Inception weights ---------------------------------------------------------
@pytest.fixture(scope="module")
def inception_weights(tmp_path_factory):
    """A weights file with the keys and shapes of the FID InceptionV3, made offline.

    torch-fidelity's constructor would download the real weights; with its download and its
    load_state_dict stubbed out, it yields a freshly initialised network whose state_dict is saved.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fidelity_inception, "load_state_dict_from_url", lambda *a, **k: {})
        patch.setattr(
            fidelity_inception.FeatureExtractorInceptionV3, "load_state_dict", lambda *a, **k: None
        )
        network = fidelity_inception.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    path = tmp_path_factory.mktemp("weights") / INCEPTION_WEIGHTS_FILES[0]
    torch.save(network.state_dict(), path)
    return path


class NotATensor:
    """A class of ours: ``torch.load(weights_only=True)`` must refuse to rebuild it."""


def _no_download(*args, **kwargs):
    raise AssertionError("the Inception weights must never be downloaded")


def test_inception_extractor_loads_a_local_file(inception_weights, monkeypatch):
    monkeypatch.setattr(fidelity_inception, "load_state_dict_from_url", _no_download)
    extractor = InceptionExtractor(inception_weights, batch_size=2)
    grey = np.random.default_rng(0).integers(0, 256, (3, 8, 8, 1), dtype=np.uint8)
    features = extractor.features(grey)
    assert extractor.name == "inception"
    assert features.shape == (3, 2048)
    assert np.isfinite(features).all()
    same, probabilities = extractor.features_and_probabilities(grey)
    np.testing.assert_array_equal(same, features)
    assert probabilities.shape == (3, 1008)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)


def test_the_inception_score_is_named_by_its_network(
    inception_weights, monkeypatch, digits, classifier
):
    monkeypatch.setattr(fidelity_inception, "load_state_dict_from_url", _no_download)
    images, labels = digits
    extractor = InceptionExtractor(inception_weights, batch_size=8)
    rows = np.flatnonzero(labels[:60] == 1)[:5]
    fake_rows = 1000 + np.flatnonzero(labels[1000:1060] == 1)[:5]
    args = (images[rows], labels[rows], images[fake_rows], labels[fake_rows], list(range(10)))
    report = fid_report(*args, extractor, kid=False, classifier=classifier)
    # the IS from the Inception network's ImageNet classes; the confidence from the domain CNN
    assert {"is/inception", "is/inception/real", "precision/inception", "recall/inception"} <= set(
        report
    )
    assert "confidence/domain/class/1" in report
    assert not any(key.startswith("is/domain") for key in report)
    assert 1.0 <= report["is/inception"] <= 1008
    # without a classifier: no confidence, and still no domain IS
    bare = fid_report(*args, extractor, kid=False)
    assert "is/inception" in bare and not any(
        k.startswith(("confidence/", "is/domain")) for k in bare
    )


def test_inception_refuses_missing_or_foreign_files(tmp_path):
    missing = tmp_path / "nowhere.pth"
    with pytest.raises(DataError, match="nowhere.pth.*does not exist.*domain"):
        InceptionExtractor(missing)
    with pytest.raises(DataError, match="nowhere.pth"):
        find_inception_weights(missing)
    foreign = tmp_path / "foreign.pth"
    torch.save({"weight": torch.zeros(2)}, foreign)
    with pytest.raises(DataError, match="does not hold InceptionV3"):
        InceptionExtractor(foreign)
    pickled = tmp_path / "pickled.pth"
    torch.save({"weight": NotATensor()}, pickled)  # loading it would run pickled code
    with pytest.raises(DataError, match="not a plain state dict"):
        InceptionExtractor(pickled)


def test_auto_falls_back_to_domain_without_weights(tmp_path, monkeypatch, classifier):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    assert find_inception_weights(None) is None
    extractor = resolve_extractor("auto", weights_path=None, classifier=classifier)
    assert isinstance(extractor, DomainExtractor) and extractor.name == "domain"
    with pytest.raises(DataError, match="checkpoints"):
        resolve_extractor("inception", weights_path=None, classifier=classifier)
    with pytest.raises(ConfigError, match="fid_extractor"):
        resolve_extractor("clip", weights_path=None, classifier=classifier)
    with pytest.raises(ConfigError, match="classifier"):
        resolve_extractor("domain", weights_path=None, classifier=None)


def test_auto_finds_weights_in_the_hub_cache(tmp_path, monkeypatch, inception_weights):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(fidelity_inception, "load_state_dict_from_url", _no_download)
    cached = tmp_path / "hub" / "checkpoints" / INCEPTION_WEIGHTS_FILES[1]  # pytorch-fid's name
    cached.parent.mkdir(parents=True)
    cached.symlink_to(inception_weights)
    assert find_inception_weights(None) == cached
    assert find_inception_weights(str(inception_weights)) == inception_weights
    extractor = resolve_extractor("auto", weights_path=None, classifier=None)
    assert isinstance(extractor, InceptionExtractor) and extractor.weights_path == cached
