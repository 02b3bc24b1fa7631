"""One contract, run over every sampler (scikit-learn's estimator-checks idea): what a user of
``fit_resample`` may rely on whatever the kind of data."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone

from augment import GANOverSampler, ImageGANOverSampler
from augment.core.errors import DataError
from tests.conftest import IMAGE_FAST


def _table():
    rng = np.random.default_rng(0)
    y = np.array([0] * 40 + [1] * 8 + [2] * 5)
    X = rng.normal(size=(len(y), 3)) + y[:, None]
    return X, y


def _images():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    picks = np.concatenate(
        [np.flatnonzero(bunch.target == c)[:n] for c, n in enumerate((40, 8, 5))]
    )
    images = np.rint(bunch.images[picks] * 255 / 16).astype(np.uint8)  # (N, 8, 8)
    return images, bunch.target[picks]


CASES = {
    "tabular": (
        GANOverSampler,
        {"steps": 6, "batch_size": 16, "generator_dims": (16,), "discriminator_dims": (16,)},
        _table,
    ),
    "image": (
        ImageGANOverSampler,
        IMAGE_FAST,
        _images,
    ),
}


@pytest.fixture(params=list(CASES), ids=list(CASES))
def case(request):
    sampler_class, fast, data = CASES[request.param]
    return sampler_class, fast, *data()


def test_real_rows_first_then_exactly_the_plan(case):
    sampler_class, fast, X, y = case
    sampler = sampler_class(sampling_strategy={1: 20, 2: 11}, random_state=0, **fast)
    X_res, y_res = sampler.fit_resample(X, y)
    assert np.bincount(y_res).tolist() == [40, 20, 11]
    assert np.array_equal(X_res[: len(X)], X) and np.array_equal(y_res[: len(y)], y)
    assert X_res.shape[1:] == X.shape[1:] and X_res.dtype == X.dtype
    assert sampler.n_generated_ == {0: 0, 1: 12, 2: 6}


def test_same_seed_same_output_other_seed_other_output(case):
    sampler_class, fast, X, y = case
    first = sampler_class(random_state=1, **fast).fit_resample(X, y)[0]
    again = sampler_class(random_state=1, **fast).fit_resample(X, y)[0]
    other = sampler_class(random_state=2, **fast).fit_resample(X, y)[0]
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_clone_save_load_and_sample(case, tmp_path):
    sampler_class, fast, X, y = case
    sampler = sampler_class(random_state=0, **fast)
    assert clone(sampler).get_params() == sampler.get_params()  # scikit-learn's rules hold
    sampler.fit_resample(X, y)
    new_x, new_y = sampler.sample({2: 3}, seed=4)
    assert new_y.tolist() == [2, 2, 2] and new_x.shape[1:] == X.shape[1:]
    sampler.save(tmp_path / "sampler.pt")
    loaded = sampler_class.load(tmp_path / "sampler.pt")
    assert loaded.get_params() == sampler.get_params()
    assert np.array_equal(loaded.sample({2: 3}, seed=4)[0], new_x)


def test_unfitted_sampler_and_bad_parameters_say_so(case):
    sampler_class, fast, X, y = case
    with pytest.raises(DataError, match="not fitted"):
        sampler_class().sample({0: 1})
    with pytest.raises(ValueError, match="steps"):
        sampler_class(**{**fast, "steps": 0}).fit_resample(X, y)


def test_sample_names_the_classes_and_refuses_negative_counts(case):
    sampler_class, fast, X, y = case
    sampler = sampler_class(random_state=0, **fast)
    sampler.fit_resample(X, y)
    with pytest.raises(DataError, match=r"5 is not a class .* its classes are \[.*2\]"):
        sampler.sample({5: 3})
    with pytest.raises(DataError, match="'2' is not a class"):  # text where labels are numbers
        sampler.sample({"2": 3})
    with pytest.raises(DataError, match="count for class 2 is -1"):
        sampler.sample({2: -1})
    with pytest.raises(DataError, match="count for class 2 is 1.5"):
        sampler.sample({2: 1.5})
    new_x, new_y = sampler.sample({2: 0, np.int64(1): 2})
    assert new_y.tolist() == [1, 1]


def test_a_fitted_sampler_pickles_and_samples_the_same(case):
    """cross_validate(n_jobs=2, return_estimator=True) pickles fitted estimators."""
    import pickle

    sampler_class, fast, X, y = case
    sampler = sampler_class(random_state=0, **fast)
    sampler.fit_resample(X, y)
    thawed = pickle.loads(pickle.dumps(sampler))
    assert np.array_equal(thawed.sample({2: 4}, seed=1)[0], sampler.sample({2: 4}, seed=1)[0])


def test_an_image_shape_error_names_the_shape_passed_in():
    images = np.zeros((12, 16, 12), dtype=np.uint8)
    with pytest.raises(DataError, match=r"got \(12, 16, 12\)$"):
        ImageGANOverSampler().fit_resample(images, np.arange(12) % 2)


def test_a_loaded_sampler_keeps_its_fitted_attributes(case, tmp_path):
    sampler_class, fast, X, y = case
    if sampler_class is GANOverSampler:
        import pandas as pd

        X = pd.DataFrame(X, columns=["x0", "x1", "x2"])
    sampler = sampler_class(random_state=0, **fast)
    sampler.fit_resample(X, y)
    sampler.save(tmp_path / "sampler.pt")
    loaded = sampler_class.load(tmp_path / "sampler.pt")
    for name in ("n_features_in_", "sampling_strategy_", "n_generated_"):
        if hasattr(sampler, name):
            assert getattr(loaded, name) == getattr(sampler, name), name
    assert loaded.n_generated_ == sampler.n_generated_ == {0: 0, 1: 32, 2: 35}
    assert sampler.classes_.tolist() == loaded.classes_.tolist() == np.unique(y).tolist()
    if hasattr(sampler, "feature_names_in_"):
        assert loaded.get_feature_names_out().tolist() == ["x0", "x1", "x2"]
        assert loaded.feature_names_in_.tolist() == sampler.feature_names_in_.tolist()


def test_sample_returns_the_containers_fit_resample_returns(case, tmp_path):
    """Issue 32 item 5: sample() gives y back as fit_resample does for the same input: a Series
    of y's name and dtype for a Series (a categorical's categories kept), a list for a list,
    an array for an array; also from a loaded sampler."""
    import pandas as pd

    sampler_class, fast, X, y = case
    labels = pd.Series(pd.Categorical(y, categories=[0, 1, 2, 3]), name="target")
    sampler = sampler_class(random_state=0, **fast)
    _, y_res = sampler.fit_resample(X, labels)
    sampler.save(tmp_path / "sampler.pt")
    for fitted in (sampler, sampler_class.load(tmp_path / "sampler.pt")):
        _, new_y = fitted.sample({2: 3})
        assert isinstance(y_res, pd.Series) and isinstance(new_y, pd.Series)
        assert new_y.name == y_res.name == "target" and new_y.dtype == y_res.dtype
        assert new_y.tolist() == [2, 2, 2]
    _, y_res = sampler.fit_resample(X, y.tolist())
    _, new_y = sampler.sample({2: 3})
    assert isinstance(y_res, list) and new_y == [2, 2, 2]
    _, y_res = sampler.fit_resample(X, y)
    assert isinstance(sampler.sample({2: 3})[1], np.ndarray) and isinstance(y_res, np.ndarray)


def test_a_table_sampler_gives_frames_and_series_back():
    import pandas as pd

    X, y = _table()
    frame, labels = pd.DataFrame(X, columns=["a", "b", "c"]), pd.Series(y, name="target")
    sampler = GANOverSampler(random_state=0, **CASES["tabular"][1])
    X_res, y_res = sampler.fit_resample(frame, labels)
    new_x, new_y = sampler.sample({1: 4})
    assert isinstance(X_res, pd.DataFrame) and isinstance(new_x, pd.DataFrame)
    assert list(new_x.columns) == ["a", "b", "c"] and new_x.dtypes.equals(frame.dtypes)
    assert isinstance(new_y, pd.Series) and new_y.name == "target" and new_y.dtype == y_res.dtype
    pd.testing.assert_index_equal(new_x.index, new_y.index)


#: a value other than the default for every constructor parameter, of the types users give
#: (lists, tuples, dicts with integer keys): what save/load must give back as it was
EVERY_PARAMETER = {
    GANOverSampler: {
        "sampling_strategy": {1: 20, 2: 12},
        "mode": "per_class",
        "steps": 4,
        "batch_size": 16,
        "lr": 2e-3,
        "critic_steps": 2,
        "noise_dim": 8,
        "generator_dims": [16],
        "discriminator_dims": (16, 8),
        "pac": 2,
        "ema_decay": 0.5,
        "max_modes": 3,
        "continuous": "gmm",
        "device": "cpu",
        "precision": "fp32",
        "random_state": 3,
        "categorical_columns": [1],
        "columns": {0: "continuous", 2: "ignore"},
        "max_levels": 10,
        "progress": True,
        "cpu_threads": 2,
        "generator": "gan",
        "anchored_share": 0.25,
        "filter_generated": False,
        "match_moments": False,
        "privacy_floor": 0.25,
    },
    ImageGANOverSampler: {
        "sampling_strategy": {1: 20, 2: 12},
        "mode": "per_class",
        "steps": 2,
        "batch_size": 16,
        "lr": 1e-3,
        "critic_steps": 2,
        "width": 4,
        "noise_dim": 8,
        "ema_decay": 0.5,
        "diff_augment": "translation",
        "device": "cpu",
        "precision": "fp32",
        "random_state": 3,
        "progress": True,
        "cpu_threads": 1,
        "recipe": "code-gan",
        "recipe_candidates": ["latent", "code-gan"],
        "autoencoder_steps": 3,
        "latent_dim": 4,
        "code_gan_steps": 3,
        "filter_generated": False,
        "match_moments": False,
        "choice_epochs": 2,
    },
}


def _same_typed(loaded, given) -> bool:
    """Equal, of the same type, containers and dict keys included."""
    if type(loaded) is not type(given):
        return False
    if isinstance(given, dict):
        return list(loaded) == list(given) and all(
            _same_typed(a, b) and _same_typed(loaded[a], given[b])
            for a, b in zip(loaded, given, strict=True)
        )
    if isinstance(given, list | tuple):
        return len(loaded) == len(given) and all(map(_same_typed, loaded, given))
    return loaded == given


def test_save_load_keeps_every_parameter_as_given(case, tmp_path):
    """Issue 32 item 10: int keys stay ints, a list stays a list, a tuple a tuple, for every
    constructor parameter; the loaded sampler samples the same rows and refits."""
    import inspect

    sampler_class, _, X, y = case
    given = EVERY_PARAMETER[sampler_class]
    defaults = {
        name: p.default for name, p in inspect.signature(sampler_class.__init__).parameters.items()
    }
    assert set(given) == set(sampler_class._get_param_names())  # a new parameter: add it here
    assert all(given[name] != defaults[name] for name in given)  # each one shows its round trip
    sampler = sampler_class(**given)
    sampler.fit_resample(X, y)
    sampler.save(tmp_path / "sampler.pt")
    loaded = sampler_class.load(tmp_path / "sampler.pt")
    kept = loaded.get_params()
    changed = [name for name in given if not _same_typed(kept[name], given[name])]
    assert not changed, {name: (kept[name], given[name]) for name in changed}
    np.testing.assert_array_equal(loaded.sample({2: 3})[0], sampler.sample({2: 3})[0])
    X_res, _ = loaded.fit_resample(X, y)  # columns={0: ...} still names column 0
    assert len(X_res) == len(X) + 12 + 7
    sampler.set_params(random_state=np.random.RandomState(0))  # no plain data: said so
    with pytest.raises(DataError, match="random_state= is a RandomState"):
        sampler.save(tmp_path / "other.pt")


def test_save_load_gives_the_same_rows_with_a_wide_declared_category(tmp_path):
    """Issue 32 item 10: a number column declared categorical, with more levels than
    max_levels (a stand-in for the rare ones), came back from the file as text, and every
    column of sample() differed after load (pickling kept it)."""
    rng = np.random.default_rng(1)
    y = np.where(rng.random(300) < 0.15, 1, 0)
    X = rng.normal(size=(300, 6)) + y[:, None]  # column 5: 300 levels
    sampler = GANOverSampler(
        random_state=0, steps=50, generator_dims=[64, 64], categorical_columns=[5]
    )
    sampler.fit_resample(X, y)
    sampler.save(tmp_path / "sampler.pt")
    loaded = GANOverSampler.load(tmp_path / "sampler.pt")
    np.testing.assert_array_equal(loaded.sample({1: 5})[0], sampler.sample({1: 5})[0])


def test_a_class_of_one_row_is_refused_by_name(case):
    """Issue 32 item 10: new rows made from one row are copies of it, so a class of one row
    to oversample is refused, as SMOTE refuses it; left out of sampling_strategy it is fine."""
    sampler_class, fast, X, y = case
    keep = np.concatenate([np.flatnonzero(y != 2), np.flatnonzero(y == 2)[:1]])
    X, y = X[keep], y[keep]
    with pytest.raises(DataError, match=r"class\(es\) \[2\] have a single row in y.*\{1: 40\}"):
        sampler_class(random_state=0, **fast).fit_resample(X, y)
    X_res, y_res = sampler_class(sampling_strategy={1: 40}, random_state=0, **fast).fit_resample(
        X, y
    )
    assert np.bincount(y_res).tolist() == [40, 40, 1]
