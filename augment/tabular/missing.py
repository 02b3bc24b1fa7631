"""Missing numbers modelled, not refused: a value and a flag per column (as CTGAN and SDV do).

A numeric column with missing cells becomes two columns for the model: the column itself, its
gaps filled with the training median, and ``<column>__missing``, True where the cell was
missing. The GAN learns the flag with everything else, conditioned on the class, so generated
rows are missing where and as often as the real ones are (per class). On the way out the value
is blanked where the flag is set and the flag is dropped: a float column gets NaN back, a
pandas nullable column (``Int64``, ``Float64``) gets ``pd.NA`` and keeps its dtype::

    missing = MissingValues.fit(train, label="churned")
    model_rows = missing.to_model(train)      # + amount__missing, age__missing; no NaN left
    rows = missing.restore(generated)         # NaN where the flags say so; flags gone

Missing categories need none of this: a missing string or category is a level of its own.
The medians come from the rows ``fit`` saw (the training split), never from a holdout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

SUFFIX = "__missing"


@dataclass
class MissingValues:
    """The numeric columns with missing cells: the value that fills them for the model and the
    name of each one's flag column."""

    fills: dict[str, float] = field(default_factory=dict)
    flags: dict[str, str] = field(default_factory=dict)

    @classmethod
    def fit(
        cls,
        frame: pd.DataFrame,
        label: str,
        skip: set[str] | None = None,
        also: pd.DataFrame | None = None,
    ) -> MissingValues:
        """Find the numeric (not boolean) columns of ``frame`` with missing cells; ``skip``
        names columns the user declared categorical (their gaps are a level). A column with
        gaps only in ``also`` (the holdout) gets a flag too; the fill values come from
        ``frame`` alone."""
        skip = skip or set()
        taken = set(map(str, frame.columns))
        fills, flags = {}, {}
        for name in frame.columns:
            series = frame[name]
            if name == label or name in skip or not _is_number(series):
                continue
            gaps_elsewhere = also is not None and name in also and also[name].isna().any()
            if not series.isna().any() and not gaps_elsewhere:
                continue
            observed = series.dropna().to_numpy(dtype=np.float64)
            fill = float(np.median(observed)) if len(observed) else 0.0
            if pd.api.types.is_integer_dtype(series.dtype):
                fill = float(round(fill))
            flag = f"{name}{SUFFIX}"
            while flag in taken:  # never overwrite a column of the user's
                flag += "_"
            taken.add(flag)
            fills[str(name)], flags[str(name)] = fill, flag
        return cls(fills, flags)

    def __bool__(self) -> bool:
        return bool(self.flags)

    def to_model(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` with each column's gaps filled and its flag column added (a copy)."""
        if not self:
            return frame
        out = frame.copy()
        for name, flag in self.flags.items():
            if name not in out.columns:
                continue
            gaps = out[name].isna()
            out[flag] = gaps.to_numpy(dtype=bool)
            out[name] = out[name].fillna(self.fills[name])
        return out

    def restore(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Blank the cells whose flag is set, then drop the flags (in place when possible)."""
        if not self:
            return frame
        for name, flag in self.flags.items():
            if flag not in frame.columns:
                continue
            gaps = frame[flag].to_numpy(dtype=bool)
            if gaps.any():
                column = frame[name]
                if not isinstance(column.dtype, pd.api.extensions.ExtensionDtype) and (
                    column.dtype.kind in "iu"
                ):
                    column = column.astype(np.float64)  # NaN needs a float column
                frame[name] = column.mask(gaps)
        return frame.drop(columns=list(self.flags.values()), errors="ignore")

    def to_dict(self) -> dict[str, Any]:
        return {"fills": dict(self.fills), "flags": dict(self.flags)}

    @classmethod
    def from_dict(cls, state: dict[str, Any] | None) -> MissingValues:
        state = state or {}
        return cls(dict(state.get("fills", {})), dict(state.get("flags", {})))


def _is_number(series: pd.Series) -> bool:
    dtype = series.dtype
    return pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
