"""The choice both wings make: one inner split, one rule for the winner."""

from __future__ import annotations

import numpy as np

from augment.core.choice import balanced_accuracy, inner_split, pick_best, tie_spread


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


def test_balanced_accuracy_of_answers_is_scikit_learns_and_the_mean_of_judges():
    from sklearn.metrics import balanced_accuracy_score

    rng = np.random.default_rng(0)
    truth = rng.integers(0, 4, size=60)
    first, second = rng.integers(0, 4, size=(2, 60))
    both = ((first == truth).astype(float) + (second == truth)) / 2
    assert np.isclose(
        balanced_accuracy(truth, first == truth), balanced_accuracy_score(truth, first)
    )
    expected = (balanced_accuracy_score(truth, first) + balanced_accuracy_score(truth, second)) / 2
    assert np.isclose(balanced_accuracy(truth, both), expected)


def test_tie_spread_by_hand():
    truth = np.array([0, 0, 0, 0, 1])
    first, second = np.array([1, 1, 0, 1, 1]), np.array([1, 1, 1, 1, 0])
    # class 0: mean d^2 = 1/4 over 4 items; class 1: 1 over 1 item; K = 2
    assert np.isclose(tie_spread(truth, first, second), np.sqrt(1 / 16 + 1) / 2)
    assert tie_spread(truth, first, first) == 0.0


def test_one_rare_image_answered_differently_is_not_enough_to_switch():
    """Ten classes, the rarest holding out one image: a candidate right on that one image only
    scores 1/K higher, by exactly the spread of a tie, and the preferred one stays. The same
    lead spread over many images of five classes is far outside a tie's spread and wins."""
    truth = np.repeat(np.arange(10), [20] * 9 + [1])
    first = np.ones(len(truth))
    first[-1] = 0
    second = np.ones(len(truth))
    scores = {"a": balanced_accuracy(truth, first), "b": balanced_accuracy(truth, second)}
    assert np.isclose(scores["b"] - scores["a"], 0.1)
    answers = {"a": first, "b": second}

    def spread(x, y):
        return tie_spread(truth, answers[x], answers[y])

    assert pick_best(["a", "b"], scores, margin=0.01) == "b"  # a margin alone would switch
    assert pick_best(["a", "b"], scores, margin=0.01, lead_needed=spread) == "a"
    broad = np.ones(len(truth))
    for c in range(5):  # four more images right in each of five classes of 20
        broad[np.flatnonzero(truth == c)[:4]] = 0
    answers = {"a": broad, "b": np.ones(len(truth))}
    scores = {k: balanced_accuracy(truth, v) for k, v in answers.items()}
    assert np.isclose(scores["b"] - scores["a"], 0.1) and spread("a", "b") < 0.03
    assert pick_best(["a", "b"], scores, margin=0.01, lead_needed=spread) == "b"
