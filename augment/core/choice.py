"""The validated choice both wings make: candidates scored on an inner split of the training data.

A table chooses where its new rows come from (``generate.generator: auto``,
:mod:`augment.tabular.choice`); an image job chooses its recipe (``model.recipe: auto``,
:mod:`augment.image.choice`). Each wing keeps its candidates and its judges (classifiers that fit
its data); the split and the rule that picks the winner are the same and live here:

- :func:`inner_split`: a share of each class with two items or more (at least one) is held out,
  seeded; a class of one item stays whole in the fit part. The job's holdout is never part of it.
- :func:`pick_best`: candidates in order of preference; a later one wins only when it scores
  more than ``margin`` above the best so far, so on a tie the earlier one stays (with margin 0:
  the first of the best).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd


def inner_split(
    labels: np.ndarray,
    share: float,
    rng: np.random.Generator,
    classes: Iterable[Any] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(fit positions, held-out positions), each sorted: ``share`` of each class's positions
    (at least one, when the class has two or more) are held out. ``classes`` gives the order in
    which classes draw from ``rng`` (default: their order of appearance)."""
    fit, held = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)]
    for value in pd.unique(labels) if classes is None else classes:
        members = rng.permutation(np.flatnonzero(labels == value))
        n_held = 0 if len(members) < 2 else max(1, int(round(len(members) * share)))
        held.append(members[:n_held])
        fit.append(members[n_held:])
    return np.sort(np.concatenate(fit)), np.sort(np.concatenate(held))


def pick_best(candidates: Sequence[str], scores: Mapping[str, float], margin: float = 0.0) -> str:
    """The winner among ``candidates`` (in order of preference): a later candidate replaces the
    best so far only if it scores more than ``margin`` higher."""
    best = candidates[0]
    for candidate in candidates[1:]:
        if scores[candidate] > scores[best] + margin:
            best = candidate
    return best
