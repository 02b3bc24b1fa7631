"""The model's form of a user's rows, and back: datetimes (and date strings) as seconds, missing
numbers as a value and a flag (:mod:`augment.tabular.missing`), ids and ignored columns left out
(fresh ids and missing values on the way back, :mod:`augment.tabular.keys`), the rare levels of a
wide category as one (:mod:`augment.tabular.levels`).

The GAN models numbers and categories. A datetime column (any resolution, with or without a time
zone) becomes the seconds since its earliest training value, a continuous column the GAN learns
like any other; generated seconds are clipped to the seen range, rounded to the column's
resolution (whole days when every training value is a midnight: dates stay dates, else whole
seconds or the dtype's unit) and turned back into the column's dtype and time zone::

    roles = resolve_roles(frame, "churned", {"note": "ignore"}, Wording(python_api=True))
    form = TableForm.fit(train, "churned", roles, max_levels=50)
    model_rows = form.to_model(train)    # signup -> float seconds; amount -> amount + flag
    rows = form.restore(generated, cls="yes", rng=rng, first_id=0)
    # signup back in Europe/Paris, gaps where flagged, fresh customer ids, note missing

A missing datetime (NaT) is a missing number to the model: it gets a flag like any other. A
string column of dates (:class:`DateStrings`) is parsed first and written back in its format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from augment.tabular.keys import IdColumns
from augment.tabular.levels import RareLevels
from augment.tabular.missing import MissingValues
from augment.tabular.roles import ColumnRoles, date_format, parse_dates
from augment.tabular.steps import ColumnSteps

_DAY = 86_400.0


@dataclass
class DatetimeColumn:
    dtype: str  # e.g. "datetime64[us, Europe/Paris]"
    origin: str  # the earliest training value as wall-clock time in the column's zone, ISO 8601
    span: float  # seconds from the origin to the latest training value
    step: float  # seconds the generated values are rounded to (86400 for dates)


class DatetimeColumns(ColumnSteps[DatetimeColumn]):
    """The datetime columns of a table and how to turn their seconds back into times.

    Seconds are counted in wall-clock time of the column's zone, so a date stays a midnight
    across daylight-saving changes.
    """

    record = DatetimeColumn

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


def _wall_clock(series: pd.Series, dtype: str | None = None) -> pd.Series:
    """Naive wall-clock times of ``series`` in its zone (or in ``dtype``'s zone)."""
    zone = getattr(pd.api.types.pandas_dtype(dtype), "tz", None) if dtype else series.dt.tz
    if series.dt.tz is not None:
        return series.dt.tz_convert(zone or series.dt.tz).dt.tz_localize(None)
    return series


def _unit_seconds(unit: str) -> float:
    return {"D": _DAY, "h": 3600.0, "m": 60.0, "s": 1.0}.get(unit, 1.0)


@dataclass
class DateString:
    dtype: str  # the input's dtype (object or a string dtype)
    format: str  # the strftime format every training value parsed with


class DateStrings(ColumnSteps[DateString]):
    """String columns of dates (``"2024-03-05"``, ISO timestamps) and their format.

    The model sees them as datetimes (then seconds, :class:`DatetimeColumns`); generated
    values are written back as strings in the same format. Values with a UTC offset
    (``+01:00``, ``Z``) are read as UTC and written in UTC (``+0000``)."""

    record = DateString

    @classmethod
    def fit(cls, frame: pd.DataFrame, names: list[str]) -> DateStrings:
        columns = {}
        for name in names:
            present = frame[name].dropna()
            fmt = date_format(present) if len(present) else None
            if fmt is None:  # resolve_roles checked the values: only an empty column is left
                continue
            columns[name] = DateString(str(frame[name].dtype), fmt)
        return cls(columns)

    def to_model(self, frame: pd.DataFrame) -> pd.DataFrame:
        if not self:
            return frame
        out = frame.copy()
        for name, column in self.columns.items():
            if name in out.columns:
                values = out[name].astype(object).where(out[name].notna(), None)
                out[name] = parse_dates(values, column.format)
        return out

    def restore(self, frame: pd.DataFrame) -> pd.DataFrame:
        for name, column in self.columns.items():
            if name not in frame.columns:
                continue
            times = frame[name]
            text = times.dt.strftime(column.format).astype(object)
            text = text.where(times.notna().to_numpy(), None)
            frame[name] = pd.Series(text.to_numpy(), index=frame.index, dtype=column.dtype)
        return frame


def missing_dtype(dtype: str) -> Any:
    """The dtype a column of ``dtype`` takes to hold missing values: the nullable pandas
    dtype of a NumPy integer or bool (``int64`` -> ``Int64``, ``bool`` -> ``boolean``), else
    the dtype itself."""
    target = pd.api.types.pandas_dtype(dtype)
    if isinstance(target, np.dtype) and target.kind in "iu":
        return pd.api.types.pandas_dtype(target.name.replace("uint", "UInt").replace("int", "Int"))
    if isinstance(target, np.dtype) and target.kind == "b":
        return pd.BooleanDtype()
    return target


def _missing_column(dtype: str, n: int, index: pd.Index) -> pd.Series:
    target = missing_dtype(dtype)
    if isinstance(target, pd.CategoricalDtype):
        return pd.Series(pd.Categorical([None] * n, dtype=target), index=index)
    return pd.Series([None] * n, index=index, dtype=object).astype(target)


@dataclass
class TableForm:
    """Every step between the user's rows and the model's, fitted on the training rows.

    Towards the model: id and ignored columns out; date strings to datetimes; datetimes to
    seconds; gaps in numbers to a value and a flag; rare levels of a wide category to one
    stand-in. Back: the same steps undone, fresh ids and missing values (ignored columns)
    put in."""

    datetimes: DatetimeColumns = field(default_factory=DatetimeColumns)
    missing: MissingValues = field(default_factory=MissingValues)
    ids: IdColumns = field(default_factory=IdColumns)
    ignored: dict[str, str] = field(default_factory=dict)  # name -> the input's dtype
    date_strings: DateStrings = field(default_factory=DateStrings)
    levels: RareLevels = field(default_factory=RareLevels)

    @classmethod
    def fit(
        cls,
        frame: pd.DataFrame,
        label: str,
        roles: ColumnRoles | None = None,
        also: pd.DataFrame | None = None,
        missing: bool = True,
        max_levels: int | None = None,
    ) -> TableForm:
        """``roles``: every column's role (:func:`augment.tabular.roles.resolve_roles`; None:
        numbers, categories and datetime dtypes only); ``also``: the holdout, whose gaps need
        flags too; ``missing=False`` leaves gaps alone (other policies); ``max_levels``: the
        levels a category keeps for the model (None: all)."""
        roles = roles or ColumnRoles({})
        skip = roles.declared_categorical
        ids = IdColumns.fit(frame[roles.named("id")])
        ignored = {name: str(frame[name].dtype) for name in roles.named("ignore")}
        out = [*ids.columns, *ignored]
        kept = frame.drop(columns=out)
        strings = [
            name
            for name in roles.named("datetime")
            if not pd.api.types.is_datetime64_any_dtype(frame[name].dtype)
        ]
        date_strings = DateStrings.fit(kept, strings)
        parsed = date_strings.to_model(kept)
        datetimes = DatetimeColumns.fit(parsed.drop(columns=list(skip & set(parsed))), label)
        seconds = datetimes.to_model(parsed)
        also_seconds = None
        if also is not None:
            also_seconds = datetimes.to_model(date_strings.to_model(also.drop(columns=out)))
        gaps = MissingValues.fit(seconds, label, skip, also_seconds) if missing else None
        categorical = [
            name
            for name in seconds.columns
            if name != label
            and (name in skip or (name not in roles.declared and _holds_levels(seconds[name])))
        ]
        levels = RareLevels.fit(seconds, label, categorical, max_levels)
        return cls(datetimes, gaps or MissingValues(), ids, ignored, date_strings, levels)

    def __bool__(self) -> bool:
        return any(
            map(bool, (self.datetimes, self.missing, self.ids, self.ignored, self.date_strings))
        ) or bool(self.levels)

    def to_model(self, frame: pd.DataFrame) -> pd.DataFrame:
        out = [name for name in (*self.ids.columns, *self.ignored) if name in frame.columns]
        frame = frame.drop(columns=out) if out else frame
        rows = self.datetimes.to_model(self.date_strings.to_model(frame))
        return self.levels.to_model(self.missing.to_model(rows))

    def restore(
        self,
        frame: pd.DataFrame,
        cls: Any = None,
        rng: np.random.Generator | None = None,
        first_id: int = 0,
    ) -> pd.DataFrame:
        """The model's rows of class ``cls`` in the user's form. ``rng`` draws rare levels and
        UUIDs; ``first_id``: how many fresh ids the caller has handed out before these rows."""
        if rng is None and (self.levels or self.ids):
            raise ValueError("restoring rare levels or ids needs the class and a seeded rng")
        if self.levels:
            frame = self.levels.restore(frame, cls, rng)
        frame = self.datetimes.restore(self.missing.restore(frame))
        frame = self.date_strings.restore(frame)
        if self.ids:
            frame = self.ids.fill(frame, first_id, rng)
        for name, dtype in self.ignored.items():
            frame[name] = _missing_column(dtype, len(frame), frame.index)
        return frame

    @property
    def replaced(self) -> list[str]:
        """Columns whose real values the model's form does not keep (ids, ignored columns, wide
        categories): restoring real rows needs them from elsewhere (:meth:`restore_real`)."""
        return [*self.ids.columns, *self.ignored, *self.levels.columns]

    def restore_real(self, frame: pd.DataFrame, originals: pd.DataFrame) -> pd.DataFrame:
        """Real rows in the model's form back in the user's: times and gaps undone, and the
        :attr:`replaced` columns taken from ``originals`` (the same rows, same index)."""
        frame = self.date_strings.restore(self.datetimes.restore(self.missing.restore(frame)))
        for name in self.replaced:
            frame[name] = originals[name]
        return frame

    def to_dict(self) -> dict[str, Any]:
        return {
            "datetimes": self.datetimes.to_dict(),
            "missing": self.missing.to_dict(),
            "ids": self.ids.to_dict(),
            "ignored": dict(self.ignored),
            "date_strings": self.date_strings.to_dict(),
            "levels": self.levels.to_dict(),
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any] | None) -> TableForm:
        state = state or {}
        return cls(
            DatetimeColumns.from_dict(state.get("datetimes")),
            MissingValues.from_dict(state.get("missing")),
            IdColumns.from_dict(state.get("ids")),
            dict(state.get("ignored", {})),
            DateStrings.from_dict(state.get("date_strings")),
            RareLevels.from_dict(state.get("levels")),
        )


def _holds_levels(series: pd.Series) -> bool:
    """A column the schema infers as categorical from its dtype (strings, categories, bools)."""
    dtype = series.dtype
    return (
        isinstance(dtype, pd.CategoricalDtype)
        or pd.api.types.is_bool_dtype(dtype)
        or pd.api.types.is_object_dtype(dtype)
        or pd.api.types.is_string_dtype(dtype)
    )
