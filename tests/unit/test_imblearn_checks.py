"""imbalanced-learn's own sampler checks against GANOverSampler (issue 16, item 8)."""

from __future__ import annotations

import warnings

import pytest
from imblearn.utils import estimator_checks

from augment import GANOverSampler

CHECKS = [
    "check_target_type",
    "check_param_validation",
    "check_dataframe_column_names_consistency",
    "check_sampler_get_feature_names_out",
    "check_sampler_get_feature_names_out_pandas",
    *sorted(name for name in dir(estimator_checks) if name.startswith("check_samplers_")),
]


@pytest.mark.parametrize("name", CHECKS)
def test_imbalanced_learn_sampler_check(name):
    check = getattr(estimator_checks, name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check("GANOverSampler", GANOverSampler(steps=3, random_state=0))


def test_every_sampler_check_is_run():
    assert len(CHECKS) == 19


def test_missing_numbers_come_back_missing_at_the_real_rate_per_class():
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    n = 800
    y = np.array(["a"] * 600 + ["b"] * 200)
    amount = rng.gamma(2, 50, n)
    amount[rng.random(n) < np.where(y == "a", 0.1, 0.4)] = np.nan
    age = pd.array(np.where(rng.random(n) < 0.25, None, rng.integers(18, 90, n)), dtype="Int64")
    X = pd.DataFrame({"amount": amount, "age": age, "f": rng.normal(size=n)})
    X_res, y_res = GANOverSampler(random_state=0).fit_resample(X, y)
    assert X_res.dtypes.to_dict() == X.dtypes.to_dict()  # Int64 stays nullable
    new, new_y = X_res.iloc[n:], y_res[n:]
    assert (new_y == "b").sum() == 400
    real_b, fake_b = X[y == "b"], new[new_y == "b"]
    # rounded: 114 of 400 new rows against 77 of 200 real ones is a gap of exactly 0.1, which
    # float division puts at 0.10000000000000003
    assert round(abs(fake_b["amount"].isna().mean() - real_b["amount"].isna().mean()), 9) <= 0.1
    assert round(abs(fake_b["age"].isna().mean() - real_b["age"].isna().mean()), 9) <= 0.1
    observed = fake_b["amount"].dropna()
    assert len(observed) and observed.between(0, X["amount"].max()).all()
