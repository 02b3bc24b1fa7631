"""ImageGANOverSampler: imbalanced-learn's contract for images, in a pipeline, saved and loaded."""

from __future__ import annotations

import numpy as np
import pytest
from imblearn.pipeline import make_pipeline
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import FunctionTransformer

from augment import ImageGANOverSampler
from augment.core.errors import DataError, ModelFileError
from tests.conftest import IMAGE_FAST

FAST = IMAGE_FAST


def _digits(per_class=(30, 8, 5)):
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.rint(bunch.images * 255 / 16).astype(np.uint8)  # (N, 8, 8)
    picks = np.concatenate([np.flatnonzero(bunch.target == c)[:n] for c, n in enumerate(per_class)])
    return images[picks], bunch.target[picks]


def _flatten(X):
    return X.reshape(len(X), -1) / 255.0


def test_fit_resample_returns_real_plus_exactly_the_planned_images():
    X, y = _digits()
    sampler = ImageGANOverSampler(random_state=0, **FAST)
    X_res, y_res = sampler.fit_resample(X, y)
    assert X_res.shape == (90, 8, 8) and X_res.dtype == np.uint8  # (N, H, W) in, (N, H, W) out
    assert np.array_equal(X_res[: len(X)], X) and np.array_equal(y_res[: len(y)], y)
    assert np.bincount(y_res).tolist() == [30, 30, 30]
    assert sampler.n_generated_ == {0: 0, 1: 22, 2: 25}
    again = ImageGANOverSampler(random_state=0, **FAST).fit_resample(X, y)
    assert np.array_equal(again[0], X_res)  # same seed, same images


def test_rgb_channels_and_dict_strategy():
    X, y = _digits()
    rgb = np.repeat(X[..., None], 3, axis=3)
    sampler = ImageGANOverSampler(
        sampling_strategy={2: 12}, mode="per_class", random_state=1, **FAST
    )
    X_res, y_res = sampler.fit_resample(rgb, y)
    assert X_res.shape == (len(X) + 7, 8, 8, 3)
    assert np.bincount(y_res).tolist() == [30, 8, 12]


def test_works_as_a_pipeline_step():
    X, y = _digits()
    pipe = make_pipeline(
        ImageGANOverSampler(random_state=0, **FAST),
        FunctionTransformer(_flatten),
        LogisticRegression(max_iter=500),
    )
    pipe.fit(X, y)
    assert pipe.predict(X).shape == (len(X),)
    assert pipe.score(X, y) > 0.5


def test_sample_save_and_load(tmp_path):
    X, y = _digits()
    sampler = ImageGANOverSampler(random_state=0, **FAST)
    sampler.fit_resample(X, y)
    images, labels = sampler.sample({1: 3, 2: 4}, seed=5)
    assert images.shape == (7, 8, 8) and labels.tolist() == [1, 1, 1, 2, 2, 2, 2]
    sampler.save(tmp_path / "s.pt")
    loaded = ImageGANOverSampler.load(tmp_path / "s.pt")
    assert loaded.get_params() == sampler.get_params()
    assert np.array_equal(loaded.sample({1: 3, 2: 4}, seed=5)[0], images)
    (tmp_path / "bad.pt").write_bytes(b"not a model")
    with pytest.raises(ModelFileError):
        ImageGANOverSampler.load(tmp_path / "bad.pt")


@pytest.mark.parametrize(
    ("X", "message"),
    [
        (np.zeros((10, 8, 8), dtype=np.float32), "must be uint8"),
        (np.zeros((10, 8, 6), dtype=np.uint8), "must be square"),
        (np.zeros((10, 9, 9), dtype=np.uint8), "not supported"),
        (np.zeros((10, 8, 8, 2), dtype=np.uint8), "must be square images"),
    ],
)
def test_bad_images_are_refused_with_the_fix(X, message):
    y = np.array([0] * 8 + [1] * 2)
    with pytest.raises(DataError, match=message):
        ImageGANOverSampler(**FAST).fit_resample(X, y)


def test_unfitted_sampler_says_so():
    with pytest.raises(DataError, match="not fitted"):
        ImageGANOverSampler().sample({0: 1})
