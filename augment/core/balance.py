"""The sampling plan: how many rows to generate per class, and the holdout split.

The plan follows imbalanced-learn's ``sampling_strategy`` semantics exactly (we call its own
``check_sampling_strategy``): ``"not majority"``, ``"minority"``, ``"not minority"``, ``"all"``,
``"auto"``, a float ratio (binary problems only) or a dict of target counts per class::

    plan_samples({"a": 90, "b": 10}, "not majority")   # {"a": 0, "b": 80}
    plan_samples({"a": 90, "b": 10}, 0.5)              # {"a": 0, "b": 35}
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from imblearn.utils import check_sampling_strategy
from sklearn.model_selection import train_test_split

from augment.core.errors import ConfigError, DataError


def class_counts(labels: pd.Series | np.ndarray) -> dict[Any, int]:
    """Class -> row count, classes in sorted order."""
    values, counts = np.unique(np.asarray(labels, dtype=object), return_counts=True)
    return {to_python(v): int(c) for v, c in zip(values, counts, strict=True)}


def to_python(value: Any) -> Any:
    """numpy / pandas scalars -> plain Python values (JSON-able, comparable across dtypes)."""
    if isinstance(value, np.generic):
        return value.item()
    return value


def _match_dict_keys(strategy: Mapping[Any, int], classes: list[Any]) -> dict[Any, int]:
    # YAML keys are strings; classes may be ints or bools. Match by exact value, then by str().
    by_text = {str(c): c for c in classes}
    matched: dict[Any, int] = {}
    for key, value in strategy.items():
        if key in classes:
            matched[key] = value
        elif str(key) in by_text:
            matched[by_text[str(key)]] = value
        else:
            raise ConfigError(
                f"balance.sampling_strategy names class {key!r}, which is not in the training "
                f"data; classes are {classes}"
            )
    return matched


def plan_samples(counts: Mapping[Any, int], sampling_strategy: Any) -> dict[Any, int]:
    """Rows to generate per class (every class present, 0 where nothing is needed).

    Raises:
        ConfigError: the strategy is malformed, names an unknown class, or would shrink a class.
    """
    classes = list(counts)
    # imbalanced-learn breaks ties between equal-sized classes in sorted label order (it counts
    # with np.unique); sort likewise so the plan never depends on the mapping's order. Labels of
    # mixed types cannot be sorted and keep the given order.
    with contextlib.suppress(TypeError):
        classes.sort()
    if len(classes) < 2:
        raise DataError(
            f"the training data has a single class ({classes[0]!r}); balancing needs at least two"
        )
    strategy = sampling_strategy
    if isinstance(strategy, Mapping):
        strategy = _match_dict_keys(strategy, classes)
        for cls, target in strategy.items():
            if target < counts[cls]:
                raise ConfigError(
                    f"balance.sampling_strategy asks for {target} rows of class {cls!r}, which "
                    f"already has {counts[cls]}; oversampling never removes rows, ask for at "
                    f"least {counts[cls]}"
                )
    # imbalanced-learn computes the plan from a label vector; build one with the same counts.
    y = np.repeat(np.arange(len(classes)), [counts[c] for c in classes])
    if isinstance(strategy, Mapping):
        strategy = {classes.index(c): n for c, n in strategy.items()}
    try:
        planned = check_sampling_strategy(strategy, y, "over-sampling")
    except ValueError as error:
        raise ConfigError(f"balance.sampling_strategy={sampling_strategy!r}: {error}") from None
    plan = {cls: 0 for cls in classes}
    for index, n_rows in planned.items():
        plan[classes[int(index)]] = int(n_rows)
    return plan


def class_quotas(counts: Mapping[Any, int], max_rows: int) -> dict[Any, int]:
    """Rows to keep per class so that at most ``max_rows`` are kept: the smallest classes whole,
    the remaining budget shared evenly by the larger ones (water filling). The rare classes are
    what the model must learn, so they are the last to be cut."""
    quotas, budget = {}, max_rows
    ordered = sorted(counts.items(), key=lambda item: item[1])
    for position, (cls, n) in enumerate(ordered):
        share = budget // (len(ordered) - position)
        quotas[cls] = min(n, share)
        budget -= quotas[cls]
    return {cls: quotas[cls] for cls in counts}


def split_holdout(
    frame: pd.DataFrame, label: str, fraction: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stratified train / holdout split, done before anything is fitted. Keeps the row ids.

    Raises:
        DataError: a class has too few rows to appear on both sides.
    """
    counts = class_counts(frame[label])
    if len(counts) < 2:
        only = next(iter(counts))
        raise DataError(
            f"label column {label!r} has a single class ({only!r}); balancing needs at least two: "
            "check that data.label names the class column and that the source holds every class"
        )
    too_small = {c: n for c, n in counts.items() if n < 2}
    if too_small:
        raise DataError(
            f"class(es) {too_small} in column {label!r} have a single row; a stratified holdout "
            "needs at least 2 rows per class: add rows or remove the class"
        )
    n_holdout = math.ceil(fraction * len(frame))
    if n_holdout < len(counts) or len(frame) - n_holdout < len(counts):
        raise DataError(
            f"validate.holdout={fraction} leaves too few rows on one side for {len(counts)} "
            "classes; choose a fraction between 0.1 and 0.5"
        )
    train, holdout = train_test_split(
        frame, test_size=fraction, stratify=frame[label].astype(str), random_state=seed
    )
    return train.sort_index(), holdout.sort_index()


def imbalance_profile(counts: Mapping[Any, int], ratio: float) -> dict[Any, int]:
    """Target class sizes that fall geometrically from the largest class to largest / ratio.

    Classes keep their size order; no class grows, and none is cut below 2 rows. With two
    classes this is simply
    ``{majority: n, minority: ceil(n / ratio)}``.
    """
    ordered = sorted(counts, key=lambda c: (-counts[c], str(c)))
    largest = counts[ordered[0]]
    targets = {}
    for rank, cls in enumerate(ordered):
        share = rank / (len(ordered) - 1) if len(ordered) > 1 else 0.0
        target = math.ceil(largest / ratio**share)
        targets[cls] = min(counts[cls], max(2, target))  # at least 2 rows, never more than it has
    return targets


def subsample_to_ratio(frame: pd.DataFrame, label: str, ratio: float, seed: int) -> pd.DataFrame:
    """Make a table imbalanced on purpose (demos and benchmarks), seeded, keeping row ids."""
    targets = imbalance_profile(class_counts(frame[label]), ratio)
    rng = np.random.default_rng(seed)
    keep = []
    for cls, target in targets.items():
        index = frame.index[frame[label].to_numpy() == cls]
        keep.append(rng.choice(index, size=target, replace=False))
    return frame.loc[np.sort(np.concatenate(keep))]


def refuse_single_rows(
    counts: Mapping[Any, int], plan: Mapping[Any, int], *, where: str, strategy: str
) -> None:
    """A class of one row to oversample is refused, as imbalanced-learn's SMOTE refuses it:
    every new item made from one item (between it and its class's others, at its class's
    centre) would be a copy of it. ``where`` says where the rows were counted ("in y"),
    ``strategy`` names the setting that can leave the class out."""
    asked = [c for c, n in plan.items() if n and counts.get(c) == 1]
    if asked:
        others = {c: counts[c] + n for c, n in plan.items() if n and c not in asked}
        example = f" ({strategy}={others} targets the others)" if others else ""
        raise DataError(
            f"class(es) {asked} have a single row {where}; new rows made from one row would be "
            "copies of it (imbalanced-learn's SMOTE refuses it too): give each such class more "
            f"rows, or leave it out of {strategy}, a dict of target counts{example}"
        )


def split_and_plan(
    frame: pd.DataFrame,
    label: str,
    *,
    holdout: float,
    seed: int,
    imbalance_ratio: float | None,
    sampling_strategy: Any,
    population: Mapping[Any, int] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[Any, int], dict[Any, int]]:
    """What every kind does before fitting: the stratified holdout split, the optional
    subsampling to an imbalance ratio (demos, benchmarks), the class counts and the plan.

    ``frame`` holds the label column (tables: every column; images: the labels alone, one row per
    image); the returned train and holdout frames keep its row ids.

    ``population`` is for a ``frame`` that is a sample of a larger table: the class counts of
    every row of that table. The counts the plan is made from are then the population's less
    the holdout, as if the split had been made on the whole table.

    Returns:
        ``(train, holdout, counts, plan)``: counts per class of the train split (sorted classes)
        and the rows to generate per class (imbalanced-learn semantics, see :func:`plan_samples`).
    """
    train, held_out = split_holdout(frame, label, holdout, seed)
    if imbalance_ratio:
        train = subsample_to_ratio(train, label, imbalance_ratio, seed)
    counts = class_counts(train[label])
    if population is not None and not imbalance_ratio:
        held = class_counts(held_out[label]) if len(held_out) else {}
        counts = {cls: int(population.get(cls, n)) - held.get(cls, 0) for cls, n in counts.items()}
    plan = plan_samples(counts, sampling_strategy)
    # a two-row class keeps one row after the split (or imbalance_ratio cuts it to one)
    refuse_single_rows(
        class_counts(train[label]),
        plan,
        where=f"in the train split of column {label!r} (the holdout took its others)",
        strategy="balance.sampling_strategy",
    )
    return train, held_out, counts, plan
