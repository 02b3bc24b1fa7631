"""A category of hundreds of levels: the frequent ones modelled, the rare ones drawn per class
(issue 16, item 5)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from augment.tabular.levels import RareLevels


@pytest.fixture
def shops() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 3000
    y = np.where(rng.random(n) < 0.3, "b", "a")
    # Zipf-like levels; class b draws its rare levels from another range than class a
    rank = rng.zipf(1.4, n) % 400
    rare_offset = np.where((rank >= 20) & (y == "b"), 400, 0)
    shop = [f"s{r + o}" for r, o in zip(rank, rare_offset, strict=True)]
    return pd.DataFrame(
        {"shop": pd.Series(shop, dtype="string"), "amount": rng.normal(size=n), "y": y}
    )


def test_the_frequent_levels_are_kept_and_the_rest_share_one(shops):
    levels = RareLevels.fit(shops, "y", ["shop"], max_levels=20)
    assert list(levels.columns) == ["shop"]
    column = levels.columns["shop"]
    counts = shops["shop"].value_counts()
    assert set(column.kept) == set(counts.index[:20]) and len(column.rare) == len(counts) - 20
    model = levels.to_model(shops)
    assert model["shop"].nunique() == 21 and (model["shop"] == column.other).any()
    assert model["amount"].equals(shops["amount"])  # other columns untouched
    # not enough levels: nothing to do; no limit: nothing to do
    assert not RareLevels.fit(shops, "y", ["shop"], max_levels=10_000)
    assert not RareLevels.fit(shops, "y", ["shop"], max_levels=None)


def test_stand_ins_become_rare_levels_of_their_own_class(shops):
    levels = RareLevels.fit(shops, "y", ["shop"], max_levels=20)
    column = levels.columns["shop"]
    rng = np.random.default_rng(1)
    for cls in ("a", "b"):
        generated = pd.DataFrame({"shop": [column.other] * 4000 + [column.kept[0]] * 10})
        rows = levels.restore(generated, cls, rng)
        assert str(rows["shop"].dtype) == "string"  # the input's dtype back
        drawn = rows["shop"].iloc[:4000]
        real = shops.loc[(shops["y"] == cls) & shops["shop"].isin(column.rare), "shop"]
        assert set(drawn) <= set(real)  # never a level the class did not have, never a new one
        # the shares of the class's rare levels: total variation distance well under 0.1
        shares = pd.concat(
            [drawn.value_counts(normalize=True), real.value_counts(normalize=True)], axis=1
        ).fillna(0.0)
        assert 0.5 * shares.diff(axis=1).iloc[:, 1].abs().sum() < 0.1
        assert (rows["shop"].iloc[4000:] == column.kept[0]).all()
    # the state is plain data and gives the same draws
    again = RareLevels.from_dict(levels.to_dict())
    same = [
        form.restore(pd.DataFrame({"shop": [column.other] * 50}), "b", np.random.default_rng(5))
        for form in (levels, again)
    ]
    pd.testing.assert_frame_equal(*same)


def test_the_sampler_models_a_2000_level_column_through_the_top_levels():
    from augment import GANOverSampler

    rng = np.random.default_rng(2)
    n = 1500
    y = pd.Series(np.where(rng.random(n) < 0.2, "yes", "no"), name="y")
    X = pd.DataFrame(
        {
            "merchant": [f"m{v:04d}" for v in rng.integers(0, 2000, n)],
            "amount": rng.normal(size=n),
        }
    )
    sampler = GANOverSampler(steps=2, random_state=0, max_levels=30)
    X_res, _ = sampler.fit_resample(X, y)
    spans = sampler.synthesizer_.units[0].encoder.spans
    assert sum(span.dim for span in spans) < 40  # 30 levels + the stand-in + amount, not 2000
    assert X_res["merchant"].isin(set(X["merchant"])).all()
    assert X_res.dtypes.to_dict() == X.dtypes.to_dict()
