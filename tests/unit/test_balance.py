import pandas as pd
import pytest

from augment.core.balance import (
    class_counts,
    imbalance_profile,
    plan_samples,
    split_and_plan,
    split_holdout,
    subsample_to_ratio,
)
from augment.core.errors import ConfigError, DataError

COUNTS = {"a": 90, "b": 10, "c": 30}


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        ("not majority", {"a": 0, "b": 80, "c": 60}),
        ("auto", {"a": 0, "b": 80, "c": 60}),
        ("minority", {"a": 0, "b": 80, "c": 0}),
        ("not minority", {"a": 0, "b": 0, "c": 60}),
        ("all", {"a": 0, "b": 80, "c": 60}),
        ({"b": 50}, {"a": 0, "b": 40, "c": 0}),
        ({"b": 10, "c": 31}, {"a": 0, "b": 0, "c": 1}),
    ],
)
def test_plan_matches_imblearn_semantics(strategy, expected):
    assert plan_samples(COUNTS, strategy) == expected


def test_float_ratio_on_binary():
    assert plan_samples({"x": 100, "y": 10}, 0.5) == {"x": 0, "y": 40}
    with pytest.raises(ConfigError, match="sampling_strategy"):
        plan_samples(COUNTS, 0.5)  # a float only makes sense for two classes


def test_dict_keys_from_yaml_match_integer_classes():
    assert plan_samples({0: 20, 1: 5}, {"1": 20}) == {0: 0, 1: 15}


def test_shrinking_or_unknown_class_is_refused():
    with pytest.raises(ConfigError, match="already has 90"):
        plan_samples(COUNTS, {"a": 50})
    with pytest.raises(ConfigError, match="class 'z'"):
        plan_samples(COUNTS, {"z": 50})
    with pytest.raises(ConfigError):
        plan_samples(COUNTS, "most")


def test_single_class_is_a_data_error():
    with pytest.raises(DataError, match="single class"):
        plan_samples({"a": 10}, "auto")


def test_split_is_stratified_and_keeps_row_ids():
    frame = pd.DataFrame({"x": range(100), "y": ["a"] * 80 + ["b"] * 20})
    train, holdout = split_holdout(frame, "y", 0.3, seed=0)
    assert len(holdout) == 30 and class_counts(holdout["y"]) == {"a": 24, "b": 6}
    assert set(train.index) | set(holdout.index) == set(range(100))
    assert not set(train.index) & set(holdout.index)
    again, _ = split_holdout(frame, "y", 0.3, seed=0)
    assert list(again.index) == list(train.index)


def test_split_refuses_a_class_with_one_row():
    frame = pd.DataFrame({"x": range(10), "y": ["a"] * 9 + ["b"]})
    with pytest.raises(DataError, match="'b': 1"):
        split_holdout(frame, "y", 0.3, seed=0)


def test_imbalance_profile_is_geometric():
    assert imbalance_profile({"a": 100, "b": 100}, 10) == {"a": 100, "b": 10}
    assert imbalance_profile({"a": 50, "b": 41, "c": 34}, 10) == {"a": 50, "b": 16, "c": 5}
    frame = pd.DataFrame({"x": range(200), "y": ["a", "b"] * 100})
    small = subsample_to_ratio(frame, "y", 4, seed=1)
    assert class_counts(small["y"]) == {"a": 100, "b": 25}


def test_an_unknown_class_key_names_the_classes_that_exist():
    with pytest.raises(
        ConfigError, match=r"names class 7, which is not in the training data; classes are \[0, 1\]"
    ):
        plan_samples({0: 40, 1: 4}, {7: 50})


def test_a_class_left_with_one_training_row_is_refused_with_a_strategy_that_skips_it():
    """Two rows of 'c': the stratified holdout takes one; imbalance_ratio never cuts below it."""
    frame = pd.DataFrame({"y": ["a"] * 40 + ["b"] * 10 + ["c"] * 2, "x": range(52)})
    with pytest.raises(DataError) as caught:
        split_and_plan(
            frame, "y", holdout=0.3, seed=0, imbalance_ratio=10, sampling_strategy="not majority"
        )
    message = str(caught.value)
    assert "['c'] have a single row in the train split of column 'y'" in message
    assert "balance.sampling_strategy={'b': 28} targets the others" in message
    assert imbalance_profile({"a": 40, "c": 1}, 10) == {"a": 40, "c": 1}
