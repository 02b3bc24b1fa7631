"""The imbalanced-learn compatible sampler: exact counts, dtypes, pipelines, save/load."""

import numpy as np
import pandas as pd
import pytest
import torch
from imblearn.pipeline import make_pipeline
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.preprocessing import StandardScaler

from augment import GANOverSampler, ModelFileError
from augment.tabular.synthesizer import SYNTHESIZER_FORMAT

FAST = {"steps": 20, "batch_size": 32, "generator_dims": (32,), "discriminator_dims": (32,)}


def test_dataframe_in_dataframe_out_with_exact_counts(mixed_frame):
    X, y = mixed_frame.drop(columns="label"), mixed_frame["label"]
    X_res, y_res = GANOverSampler(random_state=0, **FAST).fit_resample(X, y)
    assert isinstance(X_res, pd.DataFrame)
    assert X_res.dtypes.equals(X.dtypes)
    assert pd.Series(y_res).value_counts().to_dict() == {"common": 100, "rare": 100}
    # the real rows come first, unchanged
    pd.testing.assert_frame_equal(X_res.iloc[: len(X)], X.reset_index(drop=True))
    generated = X_res.iloc[len(X) :]
    assert set(generated["channel"]) <= set(X["channel"])
    assert generated["amount"].between(X["amount"].min(), X["amount"].max()).all()


def test_dict_strategy_and_arrays():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 4)).astype(np.float32)
    y = np.array([0] * 45 + [1] * 10 + [2] * 5)
    X_res, y_res = GANOverSampler(
        sampling_strategy={1: 20, 2: 12}, random_state=0, **FAST
    ).fit_resample(X, y)
    assert isinstance(X_res, np.ndarray) and X_res.dtype == np.float32
    assert np.bincount(y_res).tolist() == [45, 20, 12]


def test_per_class_mode_fits_one_model_per_needed_class(mixed_frame):
    X, y = mixed_frame.drop(columns="label"), mixed_frame["label"]
    sampler = GANOverSampler(mode="per_class", random_state=0, **FAST)
    _, y_res = sampler.fit_resample(X, y)
    assert len(sampler.synthesizer_.units) == 1  # only "rare" needs rows
    assert sampler.synthesizer_.units[0].classes == ["rare"]
    assert (np.asarray(y_res) == "rare").sum() == 100


def test_same_seed_same_rows(mixed_frame):
    X, y = mixed_frame.drop(columns="label"), mixed_frame["label"]
    first, _ = GANOverSampler(random_state=3, **FAST).fit_resample(X, y)
    second, _ = GANOverSampler(random_state=3, **FAST).fit_resample(X, y)
    other, _ = GANOverSampler(random_state=4, **FAST).fit_resample(X, y)
    pd.testing.assert_frame_equal(first, second)
    assert not first.equals(other)


def test_in_imblearn_pipeline_and_cross_val_score():
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True)
    keep = np.r_[np.flatnonzero(y == 1)[:150], np.flatnonzero(y == 0)[:30]]
    X, y = X[keep], y[keep]
    pipe = make_pipeline(
        StandardScaler(), GANOverSampler(random_state=0, **FAST), LogisticRegression(max_iter=3000)
    )
    scores = cross_val_score(pipe, X, y, cv=3, scoring="balanced_accuracy")
    assert scores.shape == (3,) and np.all(scores > 0.6)


def test_save_load_on_cpu_and_sample(tmp_path, mixed_frame, monkeypatch):
    X, y = mixed_frame.drop(columns="label"), mixed_frame["label"]
    sampler = GANOverSampler(random_state=0, **FAST)
    sampler.fit_resample(X, y)
    path = tmp_path / "sampler.pt"
    sampler.save(path)

    # the file is plain tensors + data: it loads with weights_only and maps to the CPU
    payload = torch.load(path, weights_only=True, map_location="cpu")
    tensors = [t for unit in payload["units"] for t in unit["generator"].values()]
    assert tensors and all(t.device.type == "cpu" for t in tensors)

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    loaded = GANOverSampler.load(path)
    X_new, y_new = loaded.sample({"rare": 7})
    X_ref, _ = sampler.sample({"rare": 7})
    assert len(X_new) == 7 and set(y_new) == {"rare"}
    pd.testing.assert_frame_equal(X_new, X_ref)
    assert X_new.dtypes.equals(X.dtypes)


def test_tampered_and_truncated_files_are_refused(tmp_path, mixed_frame):
    X, y = mixed_frame.drop(columns="label"), mixed_frame["label"]
    sampler = GANOverSampler(random_state=0, **FAST)
    sampler.fit_resample(X, y)
    good = tmp_path / "good.pt"
    sampler.save(good)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:2000])
    with pytest.raises(ModelFileError, match="truncated.pt"):
        GANOverSampler.load(truncated)

    class Evil:
        def __reduce__(self):
            return (print, ("this must never run",))

    evil = tmp_path / "evil.pt"
    torch.save({"format": SYNTHESIZER_FORMAT, "x": Evil()}, evil)
    with pytest.raises(ModelFileError, match="evil.pt"):
        GANOverSampler.load(evil)
    other = tmp_path / "other.pt"
    torch.save({"format": "something-else"}, other)
    with pytest.raises(ModelFileError, match=f"not a {SYNTHESIZER_FORMAT} file"):
        GANOverSampler.load(other)
    # a model saved by an earlier augment, whose networks no longer match: refused, with the fix
    older = tmp_path / "older.pt"
    torch.save({"format": "augment.tabular_synthesizer/1"}, older)
    with pytest.raises(ModelFileError, match="earlier version of augment.*retrain"):
        GANOverSampler.load(older)


def test_unfitted_sampler_says_so():
    with pytest.raises(Exception, match="not fitted"):
        GANOverSampler().sample({"a": 1})


def test_fitting_leaves_the_callers_torch_state_alone(mixed_frame):
    X, y = mixed_frame.drop(columns="label"), mixed_frame["label"]
    torch.manual_seed(123)
    rng_before, threads_before = torch.get_rng_state(), torch.get_num_threads()
    GANOverSampler(random_state=0, **FAST).fit_resample(X, y)
    assert torch.equal(torch.get_rng_state(), rng_before)
    assert torch.get_num_threads() == threads_before


def test_generated_numbers_keep_the_inputs_decimals(tmp_path):
    """Amounts given in cents come out in cents (in every generator's rows, after save/load);
    a measurement at full precision is not rounded; the rows are the unrounded rows, rounded."""
    from augment.tabular.schema import decimals_of

    rng = np.random.default_rng(0)
    n = 120
    X = pd.DataFrame(
        {
            "amount": np.round(rng.gamma(2.0, 40.0, n), 2),
            "rate": np.round(rng.uniform(0, 1, n), 1).astype(np.float32),
            "measured": rng.normal(size=n),
        }
    )
    X.loc[::10, "amount"] = np.nan  # gaps do not hide the decimals
    y = np.r_[np.zeros(100, int), np.ones(20, int)]
    assert decimals_of(X["amount"].to_numpy()) == 2 and decimals_of(X["measured"]) is None
    # the first values only bound it: a later value with more decimals counts
    assert decimals_of(np.r_[np.round(rng.uniform(0, 9, 20_000), 1), 0.125]) == 3
    for generator in ("mix", "gan", "anchored"):
        sampler = GANOverSampler(random_state=0, steps=10, batch_size=32, generator=generator)
        new = sampler.fit_resample(X, y)[0].iloc[n:]
        amounts = new["amount"].dropna().to_numpy()
        assert len(amounts) and np.array_equal(amounts, np.round(amounts, 2)), generator
        assert not np.array_equal(amounts, np.round(amounts, 1)), generator
        rates = new["rate"].to_numpy()
        assert new["rate"].dtype == np.float32 and np.allclose(rates, np.round(rates, 1))
        assert not np.array_equal(new["measured"], np.round(new["measured"], 8)), generator
    sampler.save(tmp_path / "m.pt")
    again = GANOverSampler.load(tmp_path / "m.pt").sample({1: 30})[0]
    assert np.array_equal(again["amount"].dropna(), np.round(again["amount"].dropna(), 2))
