"""Fresh ids for generated rows, never a real one (issue 16, item 4)."""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd
import pytest

from augment.tabular.keys import IdColumn, IdColumns


def _fresh(series: pd.Series, n: int = 3, first: int = 0) -> pd.Series:
    return pd.Series(IdColumn.fit(series).fresh(first, n, np.random.default_rng(0)))


def test_codes_keep_their_prefix_and_width_and_widen_only_on_overflow():
    assert _fresh(pd.Series(["C000123", "C000007", "C000042"])).tolist() == [
        "C000124",
        "C000125",
        "C000126",
    ]
    assert _fresh(pd.Series(["INV-0998", "INV-0999"]), first=1).tolist() == [
        "INV-1001",
        "INV-1002",
        "INV-1003",
    ]
    # unpadded codes of several widths stay unpadded
    assert _fresh(pd.Series(["A7", "A12"]), n=2).tolist() == ["A13", "A14"]


def test_integers_count_on_above_the_largest_and_keep_the_dtype():
    fresh = _fresh(pd.Series([5, 3, 9], dtype="int64"))
    assert fresh.tolist() == [10, 11, 12] and fresh.dtype == np.int64
    nullable = _fresh(pd.Series(pd.array([1, None, 4], dtype="Int64")))
    assert nullable.tolist() == [5, 6, 7] and str(nullable.dtype) == "Int64"
    assert _fresh(pd.Series([1.0, 2.0, np.nan])).tolist() == [3.0, 4.0, 5.0]


def test_uuids_keep_their_style_and_strings_a_prefix_no_real_value_has():
    real = pd.Series([str(uuid.uuid4()).upper().replace("-", "") for _ in range(5)])
    fresh = _fresh(real, n=50)
    assert fresh.str.fullmatch(r"[0-9A-F]{32}").all() and fresh.is_unique
    assert all(uuid.UUID(value).version == 4 for value in fresh)
    assert not set(fresh) & set(real)
    # strings of no common form: a prefix that no real value starts with
    names = pd.Series(["alice", "new-3", "bob"], dtype="string")
    fresh = _fresh(names)
    assert str(fresh.dtype) == "string" and fresh.tolist() == ["newnew-0", "newnew-1", "newnew-2"]


def test_fill_numbers_from_the_callers_counter_and_round_trips():
    ids = IdColumns.fit(pd.DataFrame({"customer_id": [f"C{i:06d}" for i in range(10)]}))
    rng = np.random.default_rng(0)
    first = ids.fill(pd.DataFrame(index=range(4)), 0, rng)["customer_id"].tolist()
    second = ids.fill(pd.DataFrame(index=range(2)), 4, rng)["customer_id"].tolist()
    assert first + second == [f"C{i:06d}" for i in range(10, 16)]
    again = IdColumns.from_dict(ids.to_dict())  # what a saved model keeps: the form only
    assert again == ids and "C000003" not in str(ids.to_dict())


@pytest.fixture
def orders() -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(3)
    n = 240
    y = pd.Series(np.where(rng.random(n) < 0.25, "fraud", "ok"), name="label")
    X = pd.DataFrame(
        {
            "order_id": [f"ORD-{i:05d}" for i in rng.permutation(n) + 500],
            "row": pd.array(np.arange(n) + 1, dtype="Int64"),  # consecutive: an id
            "token": [str(uuid.UUID(int=int(v))) for v in rng.integers(0, 2**62, n)],
            "amount": rng.gamma(2, 40, n) + np.where(y == "fraud", 60, 0),
            "channel": pd.Series(rng.choice(["web", "shop", "app"], n), dtype="string"),
        }
    )
    return X, y


def test_the_sampler_gives_generated_rows_fresh_ids_and_real_rows_theirs(orders):
    from augment import GANOverSampler

    X, y = orders
    counts = y.value_counts()
    strategy = {"fraud": int(counts["fraud"]) + 80, "ok": int(counts["ok"]) + 40}
    sampler = GANOverSampler(steps=3, random_state=0, sampling_strategy=strategy)
    X_res, y_res = sampler.fit_resample(X, y)
    assert X_res.dtypes.to_dict() == X.dtypes.to_dict()
    pd.testing.assert_frame_equal(X_res.iloc[: len(X)], X)  # the real rows keep their ids
    new = X_res.iloc[len(X) :]
    assert len(new) > 0 and set(y_res[len(X) :]) == {"fraud", "ok"}  # both classes generated
    for column in ("order_id", "row", "token"):
        assert X_res[column].is_unique, column  # across classes, and never a real one
    assert new["order_id"].str.fullmatch(r"ORD-\d{5}").all()
    assert new["row"].min() == X["row"].max() + 1
    # ids are not learned: the model's schema does not have them
    assert sampler.synthesizer_.schema.names == ["amount", "channel"]
    # declared: a column that is not unique is an id if the user says so
    X_res, _ = GANOverSampler(steps=2, random_state=0, columns={"channel": "id"}).fit_resample(X, y)
    assert not set(X_res["channel"].iloc[len(X) :]) & set(X["channel"])


def test_later_samples_count_on_also_after_a_save(orders, tmp_path):
    from augment import GANOverSampler

    X, y = orders
    sampler = GANOverSampler(steps=2, random_state=0)
    X_res, _ = sampler.fit_resample(X, y)
    first, _ = sampler.sample({"fraud": 30})
    sampler.save(tmp_path / "s.pt")
    second, _ = GANOverSampler.load(tmp_path / "s.pt").sample({"fraud": 30})
    seen = pd.concat([X_res, first, second], ignore_index=True)
    for column in ("order_id", "row", "token"):
        assert seen[column].is_unique, column
    assert sampler.n_ids_issued_ == len(X_res) - len(X) + 30


def test_synthesizer_batches_given_disjoint_id_ranges_never_repeat_an_id(orders):
    """Workers sharing out a big job from one model file (docs/operations.md) with the same seed:
    codes, integers and UUIDs all differ between their parts."""
    from augment import GANOverSampler

    X, y = orders
    sampler = GANOverSampler(steps=2, random_state=0)
    sampler.fit_resample(X, y)
    synth = sampler.synthesizer_
    parts = [
        pd.concat(rows for _, rows in synth.class_batches({"fraud": 40}, seed=0, first_id=first))
        for first in (0, 40)
    ]
    both = pd.concat(parts, ignore_index=True)
    for column in ("order_id", "row", "token"):
        assert both[column].is_unique, column


def test_cover_raises_the_form_over_ids_it_was_not_fitted_on():
    """Issue 32: the holdout and left-out rows hold real ids too; the form is fitted on the
    training rows, then raised over the rest of the source, and keeps its shape."""
    rng = np.random.default_rng(0)
    ids = IdColumns.fit(
        pd.DataFrame(
            {
                "code": ["C000007", "C000123"],
                "number": pd.array([5, None], dtype="Int64"),
                "name": ["alice", "bob"],
            }
        )
    )
    ids.cover(
        pd.DataFrame(
            {
                "code": ["C003099", "X999999", "C12", None],  # another prefix cannot collide
                "number": pd.array([None, 41, 2, None], dtype="Int64"),
                "name": ["new-7", "new-x", "carol", None],  # a value of the fresh shape
            }
        )
    )
    fresh = ids.fill(pd.DataFrame(index=range(2)), 0, rng)
    assert fresh["code"].tolist() == ["C003100", "C003101"]
    assert fresh["number"].tolist() == [42, 43]
    assert fresh["name"].tolist() == ["new-8", "new-9"]
    assert ids.columns["code"].describe() == "from C003100"
    # a batch of a large source with no value of a column: nothing moves
    ids.cover(pd.DataFrame({"code": [None], "number": pd.Series([np.nan], dtype=object)}))
    assert ids.fill(pd.DataFrame(index=range(1)), 0, rng)["number"].tolist() == [42]


def test_integer_ids_beyond_float_precision_are_not_reused():
    """2**53 + 1 read through float64 is 2**53: the next id would have been the real one."""
    real = pd.Series([2**53 + 1, 3], dtype="int64")
    assert 2**53 + 1 not in _fresh(real).tolist()
    column = IdColumn.fit(pd.Series([1], dtype="int64"))
    column.cover(real)
    assert column.next == 2**53 + 2


def test_uuids_differ_when_the_source_holds_the_ones_generated_before():
    """A source augmented with an earlier run's rows (same seed) does not get those UUIDs back."""
    real = pd.Series([str(uuid.UUID(int=k)) for k in range(1, 6)])
    before = _fresh(real, n=20)
    grown = pd.concat([real, before], ignore_index=True)
    again = _fresh(grown, n=20)
    assert not set(again) & set(grown)
    assert all(uuid.UUID(value).version == 4 for value in again)
    # the same: fitted on the training rows, then raised over the rest
    column = IdColumn.fit(real)
    column.cover(before)
    covered = column.fresh(0, 20, np.random.default_rng(0))
    assert not set(covered) & set(grown) and covered.is_unique
