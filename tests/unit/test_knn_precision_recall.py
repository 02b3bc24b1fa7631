"""core.precision_recall: k-NN precision (realism) and recall (coverage) with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors

import augment.core.precision_recall as module
from augment.core.errors import DataError
from augment.core.precision_recall import (
    PrecisionRecall,
    knn_precision_recall,
    manifold_radii,
    precision_recall_by_class,
)


@pytest.fixture(scope="module")
def real():
    return np.random.default_rng(0).normal(size=(400, 6))


def test_radii_are_the_distance_to_the_kth_other_row(real):
    distances, _ = NearestNeighbors(n_neighbors=4).fit(real).kneighbors(real)
    np.testing.assert_allclose(manifold_radii(real, k=3), distances[:, 3], rtol=1e-9)
    np.testing.assert_allclose(manifold_radii(real, k=1), distances[:, 1], rtol=1e-9)
    # three copies of a row: its 2nd other row is a copy, at distance 0
    copies = np.vstack([real[:1], real[:1], real[:1], real[1:5]])
    assert manifold_radii(copies, k=2)[0] == 0.0
    assert manifold_radii(copies, k=3)[0] > 0.0


def test_identical_sets_give_one_and_one(real):
    assert knn_precision_recall(real, real) == PrecisionRecall(1.0, 1.0)
    # also with duplicates (radius 0) and with discrete one-hot-like rows
    one_hot = np.eye(4)[np.random.default_rng(1).integers(0, 4, 50)]
    assert knn_precision_recall(one_hot, one_hot.copy()) == PrecisionRecall(1.0, 1.0)


def test_a_collapsed_set_is_realistic_but_covers_little(real):
    rng = np.random.default_rng(2)
    collapsed = real[7] + rng.normal(scale=1e-3, size=(300, real.shape[1]))
    result = knn_precision_recall(real, collapsed)
    assert result.precision == 1.0
    assert result.recall < 0.02  # a handful of real rows near real[7]


def test_a_blurry_set_covers_everything_but_is_rarely_realistic(real):
    blurry = np.random.default_rng(3).normal(scale=4.0, size=(400, real.shape[1]))
    result = knn_precision_recall(real, blurry)
    assert result.recall > 0.95
    assert result.precision < 0.2


def test_a_far_away_set_scores_zero(real):
    assert knn_precision_recall(real, real + 100.0) == PrecisionRecall(0.0, 0.0)


def test_a_fresh_sample_of_the_same_distribution_scores_high(real):
    fresh = np.random.default_rng(4).normal(size=real.shape)
    result = knn_precision_recall(real, fresh)
    assert 0.8 < result.precision <= 1.0 and 0.8 < result.recall <= 1.0


def test_blocks_give_the_same_answer_as_one_pass(real, monkeypatch):
    fresh = np.random.default_rng(5).normal(size=(300, real.shape[1])) * 1.3
    whole = knn_precision_recall(real, fresh)
    radii = manifold_radii(real)
    monkeypatch.setattr(module, "_BLOCK_ENTRIES", 1000)  # blocks of 2-3 rows
    assert knn_precision_recall(real, fresh) == whole
    np.testing.assert_array_equal(manifold_radii(real), radii)


def test_weights_count_in_the_recall_only(real):
    # the generated set covers the first half of the real rows only
    generated = real[:200]
    plain = knn_precision_recall(real, generated)
    weights = np.r_[np.ones(200), np.zeros(200)]
    weighted = knn_precision_recall(real, generated, real_weights=weights)
    assert weighted.precision == plain.precision
    assert weighted.recall == 1.0 > plain.recall


def test_too_few_rows_give_nan_and_bad_input_is_refused(real):
    result = knn_precision_recall(real, real[:3], k=3)
    assert np.isnan(result.precision) and np.isnan(result.recall)
    with pytest.raises(DataError, match="width"):
        knn_precision_recall(real, real[:, :3])
    with pytest.raises(DataError, match="NaN"):
        knn_precision_recall(real, np.full((10, real.shape[1]), np.nan))
    with pytest.raises(DataError, match=r"\(N, D\)"):
        knn_precision_recall(real, real[0])
    with pytest.raises(DataError, match="k must be"):
        knn_precision_recall(real, real, k=0)
    with pytest.raises(DataError, match="real_weights"):
        knn_precision_recall(real, real, real_weights=np.ones(3))
    with pytest.raises(DataError, match="needs 4"):
        manifold_radii(real[:3], k=3)


def _two_classes(rng, n_a=300, n_b=300):
    """Class "a" around 0, class "b" around 10, in 4 dimensions."""
    rows = np.vstack([rng.normal(size=(n_a, 4)), rng.normal(size=(n_b, 4)) + 10.0])
    return rows, np.array(["a"] * n_a + ["b"] * n_b, dtype=object)


def test_by_class_tells_a_collapsed_class_from_a_good_one():
    rng = np.random.default_rng(6)
    real, real_labels = _two_classes(rng)
    good = rng.normal(size=(200, 4))  # class "a": a fresh sample
    collapsed = real[real_labels == "b"][0] + rng.normal(scale=1e-3, size=(200, 4))  # class "b"
    generated = np.vstack([good, collapsed])
    labels = np.array(["a"] * 200 + ["b"] * 200, dtype=object)
    overall, per_class = precision_recall_by_class(real, real_labels, generated, labels)
    assert list(per_class) == ["a", "b"]
    assert per_class["a"].precision > 0.8 and per_class["a"].recall > 0.8
    assert per_class["b"].precision == 1.0 and per_class["b"].recall < 0.05
    assert overall.precision > 0.9
    assert 0.3 < overall.recall < 0.6  # half the real mass is covered


def test_by_class_leaves_out_classes_not_generated_and_weights_to_the_generated_mix():
    rng = np.random.default_rng(7)
    real, real_labels = _two_classes(rng, n_a=300, n_b=30)
    other = rng.normal(size=(100, 4)) - 10.0  # class "c": real only, never generated
    real = np.vstack([real, other])
    real_labels = np.r_[real_labels, np.array(["c"] * 100, dtype=object)]
    # class "a" is generated 10 times, class "b" 290 times; only "b" is covered
    generated = np.vstack(
        [real[real_labels == "a"][0] + rng.normal(scale=1e-3, size=(10, 4)), real[300:330]]
    )
    near_b = real[300:330][rng.integers(0, 30, 260)] + rng.normal(scale=0.01, size=(260, 4))
    generated = np.vstack([generated, near_b])
    labels = np.array(["a"] * 10 + ["b"] * 290, dtype=object)
    overall, per_class = precision_recall_by_class(real, real_labels, generated, labels)
    assert set(per_class) == {"a", "b"}
    assert per_class["b"].recall == 1.0 and per_class["a"].recall < 0.05
    # unweighted, the 300 poorly covered "a" rows would pull the recall below 0.2; the generated
    # mix gives "b" 29/30 of the weight, and class "c" does not count at all
    assert overall.recall > 0.9


def test_by_class_samples_are_seeded_and_capped(monkeypatch):
    rng = np.random.default_rng(8)
    real, real_labels = _two_classes(rng, n_a=900, n_b=12)
    generated, generated_labels = _two_classes(rng, n_a=900, n_b=12)
    sizes = []
    original = module.knn_precision_recall

    def spy(real_rows, generated_rows, *args, **kwargs):
        sizes.append((len(real_rows), len(generated_rows)))
        return original(real_rows, generated_rows, *args, **kwargs)

    monkeypatch.setattr(module, "knn_precision_recall", spy)
    first = precision_recall_by_class(
        real, real_labels, generated, generated_labels, max_rows=100, seed=1
    )
    again = precision_recall_by_class(
        real, real_labels, generated, generated_labels, max_rows=100, seed=1
    )
    other = precision_recall_by_class(
        real, real_labels, generated, generated_labels, max_rows=100, seed=2
    )
    assert first == again
    assert first != other
    # 98 of "a" and the floor of k + 1 = 4 of "b" on each side, overall then per class
    assert sizes[:3] == [(102, 102), (98, 98), (4, 4)]
    uncapped = precision_recall_by_class(
        real, real_labels, generated, generated_labels, max_rows=None
    )
    assert set(uncapped[1]) == {"a", "b"}
    assert sizes[-3:] == [(912, 912), (900, 900), (12, 12)]


def test_by_class_skips_small_classes_and_refuses_mismatched_labels():
    rng = np.random.default_rng(9)
    real, real_labels = _two_classes(rng, n_a=50, n_b=3)  # 3 real rows of "b": no 3rd neighbour
    generated, generated_labels = _two_classes(rng, n_a=50, n_b=20)
    overall, per_class = precision_recall_by_class(real, real_labels, generated, generated_labels)
    assert list(per_class) == ["a"]
    assert 0.0 <= overall.precision <= 1.0 and 0.0 <= overall.recall <= 1.0
    with pytest.raises(DataError, match="one per row"):
        precision_recall_by_class(real, real_labels[:5], generated, generated_labels)
