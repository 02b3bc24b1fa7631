"""High-cardinality categories: the most frequent levels for the model, the rest one "other" level.

A category with 2,000 levels one-hot encoded is 2,000 inputs and 2,000 outputs of the GAN, most
of them seen a handful of times: slow to train and too sparse to learn. So a column with more
than ``max_levels`` distinct values keeps its ``max_levels`` most frequent levels for the model,
and the rest share one stand-in level. A generated row whose value is the stand-in gets one of
the rare levels drawn from the frequencies of *its class* in the training rows: the rare levels
keep their per-class shares, and no level is ever made up. (A class that never had a rare level
but gets the stand-in from the GAN draws from all classes' rare levels.)::

    levels = RareLevels.fit(train, "churned", ["city"], max_levels=50)
    model_rows = levels.to_model(train)                  # city: 50 levels + the stand-in
    rows = levels.restore(generated, cls="yes", rng=rng) # stand-ins -> rare cities of "yes"

A missing value counts as a level like any other (frequent or rare).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from augment.core.balance import to_python
from augment.tabular.schema import category_value
from augment.tabular.steps import ColumnSteps

OTHER = "__other__"


@dataclass
class RareColumn:
    dtype: str  # the input's dtype, given back on the way out
    other: str  # the stand-in level (a string no real level equals)
    kept: list[Any]  # the levels the model sees, most frequent first
    rare: list[Any]  # the levels that share the stand-in
    counts: list[list[Any]]  # [class, counts of each rare level in that class's rows]

    def draw(self, cls: Any, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` rare levels drawn with the shares they have in ``cls`` (all classes when
        ``cls`` had none)."""
        by_class = {to_python(c): counts for c, counts in self.counts}
        counts = np.asarray(by_class.get(to_python(cls), [0] * len(self.rare)), dtype=np.float64)
        if counts.sum() == 0:
            counts = np.asarray([c for _, c in self.counts], dtype=np.float64).sum(axis=0)
        picks = rng.choice(len(self.rare), size=n, p=counts / counts.sum())
        lookup = np.empty(len(self.rare), dtype=object)
        lookup[:] = self.rare
        return lookup[picks]


class RareLevels(ColumnSteps[RareColumn]):
    """The categorical columns with more than ``max_levels`` levels, and their rare levels."""

    record = RareColumn

    @classmethod
    def fit(
        cls, frame: pd.DataFrame, label: str, names: list[str], max_levels: int | None
    ) -> RareLevels:
        if max_levels is None:
            return cls()
        columns = {}
        classes = frame[label].map(to_python).to_numpy(dtype=object)
        for name in names:
            if frame[name].nunique(dropna=False) <= max_levels:
                continue  # most columns: one vectorised count decides
            values = [category_value(v) for v in frame[name].tolist()]
            counts = pd.Series(values, dtype=object).value_counts(dropna=False)
            if len(counts) <= max_levels:
                continue
            # most frequent first; ties in a fixed order (by type and value)
            order = sorted(counts.items(), key=lambda item: (-item[1], _sort_key(item[0])))
            kept = [level for level, _ in order[:max_levels]]
            rare = [level for level, _ in order[max_levels:]]
            other = OTHER
            while other in counts.index:
                other += "_"
            position = {level: i for i, (level, _) in enumerate(order)}
            codes = np.fromiter((position[v] for v in values), dtype=np.int64, count=len(values))
            per_class = []
            for c in sorted(set(classes.tolist()), key=_sort_key):
                in_class = codes[classes == c]
                per_class.append([c, np.bincount(in_class, minlength=len(order))[max_levels:]])
            columns[str(name)] = RareColumn(
                dtype=str(frame[name].dtype),
                other=other,
                kept=kept,
                rare=rare,
                counts=[[c, [int(n) for n in row]] for c, row in per_class],
            )
        return cls(columns)

    def to_model(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Rare levels replaced by the stand-in (the column as Python objects)."""
        if not self:
            return frame
        out = frame.copy()
        for name, column in self.columns.items():
            if name not in out.columns:
                continue
            values = out[name].astype(object)
            missing = values.isna()
            kept = values.isin([level for level in column.kept if level is not None])
            kept |= missing & (None in column.kept)
            out[name] = values.where(kept, column.other)
        return out

    def restore(self, frame: pd.DataFrame, cls: Any, rng: np.random.Generator) -> pd.DataFrame:
        """Each stand-in replaced by a rare level drawn for ``cls``; the input's dtype back."""
        for name, column in self.columns.items():
            if name not in frame.columns:
                continue
            values = frame[name].astype(object).to_numpy(copy=True)
            stand_in = np.flatnonzero(values == column.other)
            if len(stand_in):
                values[stand_in] = column.draw(cls, len(stand_in), rng)
            levels = _as_dtype(values, column.dtype, column.kept + column.rare)
            frame[name] = pd.Series(levels, index=frame.index, dtype=levels.dtype)
        return frame


def _sort_key(value: Any) -> tuple[str, Any]:
    return (type(value).__name__, "" if value is None else value)


def _as_dtype(values: np.ndarray, dtype: str, levels: list[Any]) -> Any:
    if dtype == "category":
        return pd.Categorical(
            values, categories=sorted((v for v in levels if v is not None), key=_sort_key)
        )
    target = pd.api.types.pandas_dtype(dtype)
    if isinstance(target, np.dtype) and target.kind in "fc":
        values = np.where(pd.isna(values), np.nan, values)
    return (
        pd.array(values, dtype=target)
        if not isinstance(target, np.dtype)
        else values.astype(target)
    )
