"""The model's form of a user's rows, and back: datetimes as seconds, missing numbers as a value
and a flag (:mod:`augment.tabular.missing`).

The GAN models numbers and categories. A datetime column (any resolution, with or without a time
zone) becomes the seconds since its earliest training value, a continuous column the GAN learns
like any other; generated seconds are clipped to the seen range, rounded to the column's
resolution (whole days when every training value is a midnight: dates stay dates, else whole
seconds or the dtype's unit) and turned back into the column's dtype and time zone::

    form = TableForm.fit(train, label="churned")
    model_rows = form.to_model(train)    # signup -> float seconds; amount -> amount + flag
    rows = form.restore(generated)       # signup back in Europe/Paris, gaps where flagged

A missing datetime (NaT) is a missing number to the model: it gets a flag like any other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from augment.tabular.missing import MissingValues

_DAY = 86_400.0


@dataclass
class DatetimeColumn:
    dtype: str  # e.g. "datetime64[us, Europe/Paris]"
    origin: str  # the earliest training value as wall-clock time in the column's zone, ISO 8601
    span: float  # seconds from the origin to the latest training value
    step: float  # seconds the generated values are rounded to (86400 for dates)


@dataclass
class DatetimeColumns:
    """The datetime columns of a table and how to turn their seconds back into times.

    Seconds are counted in wall-clock time of the column's zone, so a date stays a midnight
    across daylight-saving changes.
    """

    columns: dict[str, DatetimeColumn] = field(default_factory=dict)

    @classmethod
    def fit(cls, frame: pd.DataFrame, label: str) -> DatetimeColumns:
        columns = {}
        for name in frame.columns:
            series = frame[name]
            if name == label or not pd.api.types.is_datetime64_any_dtype(series.dtype):
                continue
            local = _wall_clock(series).dropna()
            if local.empty:
                continue
            origin = local.min()
            seconds = (local - origin).dt.total_seconds().to_numpy()
            dates = bool((local == local.dt.normalize()).all())
            unit = np.datetime_data(local.dtype)[0]
            step = _DAY if dates else max(1.0, _unit_seconds(unit))
            columns[str(name)] = DatetimeColumn(
                dtype=str(series.dtype),
                origin=origin.isoformat(),
                span=float(seconds.max()),
                step=step,
            )
        return cls(columns)

    def __bool__(self) -> bool:
        return bool(self.columns)

    def to_model(self, frame: pd.DataFrame) -> pd.DataFrame:
        if not self:
            return frame
        out = frame.copy()
        for name, column in self.columns.items():
            if name in out.columns:
                local = _wall_clock(pd.to_datetime(out[name]), column.dtype)
                origin = pd.Timestamp(column.origin)
                out[name] = (local - origin).dt.total_seconds().astype(np.float64)
        return out

    def restore(self, frame: pd.DataFrame) -> pd.DataFrame:
        if not self:
            return frame
        for name, column in self.columns.items():
            if name not in frame.columns:
                continue
            seconds = frame[name].to_numpy(dtype=np.float64)
            seconds = np.round(np.clip(seconds, 0.0, column.span) / column.step) * column.step
            local = pd.Timestamp(column.origin) + pd.to_timedelta(seconds, unit="s")  # NaN: NaT
            dtype = pd.api.types.pandas_dtype(column.dtype)
            zone = getattr(dtype, "tz", None)
            if zone is not None:
                # a wall-clock time that a DST change skips moves forward; one it repeats is
                # read as standard time
                local = local.tz_localize(
                    zone, ambiguous=np.zeros(len(local), dtype=bool), nonexistent="shift_forward"
                )
            frame[name] = pd.Series(local, index=frame.index).astype(dtype)
        return frame

    def to_dict(self) -> dict[str, Any]:
        return {name: vars(column) for name, column in self.columns.items()}

    @classmethod
    def from_dict(cls, state: dict[str, Any] | None) -> DatetimeColumns:
        return cls({name: DatetimeColumn(**values) for name, values in (state or {}).items()})


def _wall_clock(series: pd.Series, dtype: str | None = None) -> pd.Series:
    """Naive wall-clock times of ``series`` in its zone (or in ``dtype``'s zone)."""
    zone = getattr(pd.api.types.pandas_dtype(dtype), "tz", None) if dtype else series.dt.tz
    if series.dt.tz is not None:
        return series.dt.tz_convert(zone or series.dt.tz).dt.tz_localize(None)
    return series


def _unit_seconds(unit: str) -> float:
    return {"D": _DAY, "h": 3600.0, "m": 60.0, "s": 1.0}.get(unit, 1.0)


@dataclass
class TableForm:
    """Every step between the user's rows and the model's, fitted on the training rows."""

    datetimes: DatetimeColumns = field(default_factory=DatetimeColumns)
    missing: MissingValues = field(default_factory=MissingValues)

    @classmethod
    def fit(
        cls,
        frame: pd.DataFrame,
        label: str,
        skip: set[str] | None = None,
        also: pd.DataFrame | None = None,
        missing: bool = True,
    ) -> TableForm:
        """``skip``: columns declared categorical (modelled as they are); ``also``: the holdout,
        whose gaps need flags too; ``missing=False`` leaves gaps alone (other policies)."""
        skip = skip or set()
        datetimes = DatetimeColumns.fit(frame.drop(columns=list(skip & set(frame.columns))), label)
        seconds = datetimes.to_model(frame)
        also_seconds = datetimes.to_model(also) if also is not None else None
        gaps = MissingValues.fit(seconds, label, skip, also_seconds) if missing else None
        return cls(datetimes, gaps or MissingValues())

    def __bool__(self) -> bool:
        return bool(self.datetimes) or bool(self.missing)

    def to_model(self, frame: pd.DataFrame) -> pd.DataFrame:
        return self.missing.to_model(self.datetimes.to_model(frame))

    def restore(self, frame: pd.DataFrame) -> pd.DataFrame:
        return self.datetimes.restore(self.missing.restore(frame))

    def to_dict(self) -> dict[str, Any]:
        return {"datetimes": self.datetimes.to_dict(), "missing": self.missing.to_dict()}

    @classmethod
    def from_dict(cls, state: dict[str, Any] | None) -> TableForm:
        state = state or {}
        return cls(
            DatetimeColumns.from_dict(state.get("datetimes")),
            MissingValues.from_dict(state.get("missing")),
        )
