"""The choice both wings make: one inner split, one rule for the winner."""

from __future__ import annotations

import numpy as np

from augment.core.choice import inner_split, pick_best


def test_a_later_candidate_wins_only_by_more_than_the_margin():
    scores = {"a": 0.90, "b": 0.905, "c": 0.92}
    assert pick_best(["a", "b", "c"], scores, margin=0.01) == "c"
    assert pick_best(["a", "b"], scores, margin=0.01) == "a"  # +0.005 is within the margin
    assert pick_best(["a", "b"], scores) == "b"
    assert pick_best(["b", "a"], {"a": 0.9, "b": 0.9}) == "b"  # a tie keeps the earlier one


def test_inner_split_is_stratified_seeded_and_follows_the_class_order():
    labels = np.array([0] * 12 + [1] * 4 + [2])
    fit, held = inner_split(labels, 0.25, np.random.default_rng(0))
    assert np.bincount(labels[held], minlength=3).tolist() == [3, 1, 0]
    assert sorted([*fit, *held]) == list(range(len(labels)))
    again = inner_split(labels, 0.25, np.random.default_rng(0))
    assert all(np.array_equal(x, y) for x, y in zip((fit, held), again, strict=True))
    # the order classes draw in is part of the seed: a wing may fix it
    other = inner_split(labels, 0.25, np.random.default_rng(0), classes=[2, 1, 0])
    assert not np.array_equal(other[1], held)
