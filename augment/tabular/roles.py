"""What each column of a real table is: the role it plays, inferred from its values.

Roles: ``continuous`` (a measurement), ``integer`` (a count or an integer measurement),
``categorical`` (a few levels), ``boolean``, ``datetime``, ``id`` (a key unique per row),
``text`` (free text), ``ignore`` (left out). ``augment profile`` prints them with each column's
missing share and distinct count, so a user sees what a job will do before running it::

    for column in infer_roles(frame, label="churned"):
        print(column.name, column.role, column.missing, column.distinct, column.why)

A job and ``GANOverSampler`` take these roles as overrides (``data.columns`` /
``columns=``); :func:`resolve_roles` checks the declared ones against the values and infers the
rest. The GAN models ``continuous``, ``integer``, ``categorical``, ``boolean`` and ``datetime``
columns (date strings too, :mod:`augment.tabular.form`); an ``id`` is never learned, generated
rows get fresh ones (:mod:`augment.tabular.keys`); an ``ignore`` column is left out and comes
back missing; free ``text`` is refused unless declared ``ignore`` or ``categorical``.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from augment.core.config import setting
from augment.core.errors import DataError

Role = Literal[
    "continuous", "integer", "categorical", "boolean", "datetime", "id", "text", "ignore"
]
ROLES: tuple[str, ...] = Role.__args__  # type: ignore[attr-defined]

# a name that reads as a key: "id", "customer_id", "CustomerID", "order-key", "uuid"
_KEY_NAME = re.compile(r"(^|[^a-z])(id|key|uuid|guid)$|^(id|key|uuid|guid)([^a-z]|$)|[a-z]Id$|ID$")
_UUID = re.compile(
    r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"
)
_CODE = re.compile(r"^[A-Za-z_-]*\d+$")  # a prefix and digits: C000123, INV-0042
_DATE_LIKE = re.compile(r"\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}|\d{4}-\d{2}")

SAMPLE = 2_000  # values looked at when parsing strings (dates, lengths)


@dataclass
class ColumnProfile:
    """One column as ``augment profile`` shows it."""

    name: str
    role: str
    dtype: str
    missing: float  # share of rows without a value
    distinct: int  # distinct non-missing values
    why: str  # the evidence, in a few words


def infer_roles(
    frame: pd.DataFrame,
    label: str | None = None,
    overrides: dict[str, str] | None = None,
    categorical_max_unique: int = 10,
) -> list[ColumnProfile]:
    """The role of every column but ``label``; ``overrides`` (name -> role) win.

    Raises:
        DataError: two columns share a name.
        ValueError: an override names a column that is not there or a role that does not exist.
    """
    names = pd.Index([str(name) for name in frame.columns])
    repeated = names[names.duplicated()].unique().tolist()
    if repeated:
        raise DataError(
            f"column {repeated[0]!r} appears {int((names == repeated[0]).sum())} times; every "
            "column needs its own name: rename or drop the copies (e.g. "
            "frame.loc[:, ~frame.columns.duplicated()])"
        )
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(map(str, frame.columns)))
    if unknown:
        raise ValueError(f"roles given for columns not in the table: {unknown}")
    bad = {name: role for name, role in overrides.items() if role not in ROLES}
    if bad:
        raise ValueError(f"unknown roles {bad}; a role is one of: {', '.join(ROLES)}")
    profiles = []
    for name in frame.columns:
        if name == label:
            continue
        series = frame[name]
        present = series.dropna()
        distinct = int(present.nunique())
        missing = float(series.isna().mean()) if len(series) else 0.0
        if str(name) in overrides:
            role, why = overrides[str(name)], "set by you"
        else:
            role, why = _infer(str(name), series, present, distinct, categorical_max_unique)
        profiles.append(ColumnProfile(str(name), role, str(series.dtype), missing, distinct, why))
    return profiles


def _infer(
    name: str, series: pd.Series, present: pd.Series, distinct: int, categorical_max_unique: int
) -> tuple[str, str]:
    dtype = series.dtype
    n = len(present)
    unique_per_row = n >= 20 and distinct == n
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean", "true/false values"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime", "a datetime dtype"
    if isinstance(dtype, pd.CategoricalDtype):
        return "categorical", f"a category dtype, {distinct} levels"
    if pd.api.types.is_float_dtype(dtype):
        values = present.to_numpy(dtype=np.float64)
        if len(values) and np.all(values == np.round(values)) and distinct > categorical_max_unique:
            if unique_per_row and _is_key_name(name) and _consecutive(values):
                return "id", "unique per row, consecutive, named like a key"
            return "integer", "whole numbers (float because of missing values)"
        if distinct <= categorical_max_unique and np.all(values == np.round(values)):
            return "categorical", f"{distinct} whole-number levels"
        return "continuous", "numbers"
    if pd.api.types.is_integer_dtype(dtype):
        if unique_per_row and (_is_key_name(name) or _consecutive(present.to_numpy())):
            return "id", "unique per row, " + (
                "named like a key" if _is_key_name(name) else "consecutive integers"
            )
        if distinct <= categorical_max_unique:
            return "categorical", f"{distinct} integer levels"
        return "integer", "integers"
    # a CSV's True/False column with gaps: Python bools in an object column, not strings
    if len(present) and present.map(lambda value: isinstance(value, bool | np.bool_)).all():
        return "boolean", "true/false values"
    # strings and mixed objects
    sample = present.iloc[:SAMPLE].astype(str)
    if len(sample) and _parses_as_dates(sample):
        return "datetime", "strings that parse as dates"
    if unique_per_row:
        if sample.str.fullmatch(_UUID).all():
            return "id", "unique per row, UUIDs"
        widths = sample.str.len()
        if _is_key_name(name) or (widths.nunique() == 1 and sample.str.fullmatch(_CODE).all()):
            return "id", "unique per row, " + (
                "named like a key" if _is_key_name(name) else "fixed-width codes"
            )
    if (
        distinct > max(50, n // 2)
        and sample.str.len().mean() > 20
        and (sample.str.count(" ").mean() >= 2)
    ):
        return "text", "many distinct long strings with words"
    return "categorical", f"{distinct} distinct strings"


def _is_key_name(name: str) -> bool:
    return bool(_KEY_NAME.search(name)) or bool(_KEY_NAME.search(name.lower()))


def _consecutive(values: np.ndarray) -> bool:
    """Integers that count up by one (after sorting): what a row number or a key looks like."""
    ordered = np.sort(np.asarray(values, dtype=np.float64))
    return len(ordered) > 1 and bool(np.all(np.diff(ordered) == 1))


def _parses_as_dates(sample: pd.Series) -> bool:
    if not sample.str.contains(_DATE_LIKE).mean() > 0.95:
        return False
    return date_format(sample, share=0.95) is not None


def date_format(values: pd.Series, share: float = 1.0) -> str | None:
    """The one ``strftime`` format at least ``share`` of the strings of ``values`` parse with
    (all of them by default), or None.

    Month-first is tried before day-first (as pandas guesses); "05/03/2024" alone is read as
    May 3rd unless another value (a day above 12) settles it."""
    from pandas.tseries.api import guess_datetime_format

    values = values.astype(str)
    if values.empty:
        return None
    tried = []
    for value in values.iloc[:20]:
        for dayfirst in (False, True):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "dayfirst ignored for ISO dates": we try both
                found = guess_datetime_format(value, dayfirst=dayfirst)
            if found and found not in tried:
                tried.append(found)
    for candidate in tried:
        if parse_dates(values, candidate, errors="coerce").notna().mean() >= share:
            return candidate
    return None


def parse_dates(values: pd.Series, fmt: str, errors: str = "raise") -> pd.Series:
    """Strings in format ``fmt`` as datetimes; a format with a UTC offset (``%z``) gives UTC."""
    return pd.to_datetime(values, format=fmt, errors=errors, utc="%z" in fmt)


# -- the roles a job or a sampler uses: declared ones checked, the rest inferred --------------

#: roles the GAN models (a datetime as seconds); ``id`` and ``ignore`` are kept out of it
MODELLED = ("continuous", "integer", "categorical", "boolean", "datetime")


@dataclass(frozen=True)
class Wording:
    """How a fix is written for the interface in use: the Python API's arguments
    (``columns={'signup': 'datetime'}``) or the job's YAML keys (``data.columns.signup:
    datetime``). ``keys`` maps a column's name to the user's key when they differ (the
    position of a column of an array)."""

    python_api: bool
    keys: dict[str, Any] = field(default_factory=dict)

    @property
    def setting(self) -> str:
        return "columns=" if self.python_api else "data.columns"

    def declare(self, name: str, role: str) -> str:
        if self.python_api:
            return f"columns={{{self.keys.get(name, name)!r}: {role!r}}}"
        return setting(f"data.columns.{name}", role)

    def drop(self, names: list[str]) -> str:
        if self.python_api:
            return f"X.drop(columns={names})"
        return setting("data.drop_columns", names)


@dataclass
class ColumnRoles:
    """The role of every feature column, and which of them the user declared."""

    roles: dict[str, str]
    declared: dict[str, str] = field(default_factory=dict)

    def named(self, *roles: str) -> list[str]:
        return [name for name, role in self.roles.items() if role in roles]

    @property
    def declared_categorical(self) -> set[str]:
        """Columns declared categorical or boolean: modelled as levels as they are (gaps too)."""
        return {n for n, r in self.declared.items() if r in ("categorical", "boolean")}

    def schema_overrides(self) -> dict[str, str]:
        """The declared roles the schema must follow (the others it infers as it always has)."""
        return {n: r for n, r in self.declared.items() if r in MODELLED}


def resolve_roles(
    frame: pd.DataFrame,
    label: str,
    declared: dict[str, str] | None,
    wording: Wording,
    categorical_max_unique: int = 10,
) -> ColumnRoles:
    """Every feature column's role: the declared ones after checking they fit the values, the
    others inferred (:func:`infer_roles`).

    Raises:
        DataError: a declared column that is not there (or is the label), an unknown role, a
            role the values cannot have (text declared continuous, numbers declared datetime,
            three values declared boolean), a column mixing numbers and text, an undeclared
            column of free text. Each message names the column and the fix in ``wording``.
    """
    declared = {str(name): role for name, role in (declared or {}).items()}
    if label in declared:
        raise DataError(
            f"{wording.setting} lists the label column {label!r}; the label is always a class, "
            "remove it"
        )
    unknown = sorted(set(declared) - set(map(str, frame.columns)))
    if unknown:
        shown = [wording.keys.get(name, name) for name in unknown]
        where = "X" if wording.python_api else "the data"
        raise DataError(
            f"{wording.setting} names columns that are not in {where}: {shown}; available "
            f"columns: {[wording.keys.get(c, c) for c in map(str, frame.columns) if c != label]}"
        )
    bad = {name: role for name, role in declared.items() if role not in ROLES}
    if bad:
        name, role = next(iter(bad.items()))
        raise DataError(
            f"{wording.declare(name, role)}: {role!r} is not a role; a role is one of: "
            f"{', '.join(ROLES)}"
        )
    for name, role in declared.items():
        _check_declared(frame[name], name, role, wording)
    profiles = infer_roles(frame, label, declared, categorical_max_unique)
    for profile in profiles:
        if profile.name in declared:
            continue
        series = frame[profile.name]
        mixed = _mixed_example(series, categorical_max_unique)
        if mixed is not None:
            raise DataError(_mixed_message(profile.name, *mixed, wording))
        if profile.role == "text":
            raise DataError(
                f"column {profile.name!r} looks like free text ({profile.why}): the GAN does "
                f"not write text, and as a category the synthetic rows would copy real values; "
                f"leave it out ({wording.declare(profile.name, 'ignore')}; generated rows get "
                f"a missing value there), model it as a category anyway "
                f"({wording.declare(profile.name, 'categorical')}), or drop it "
                f"({wording.drop([profile.name])})"
            )
        if profile.role == "datetime" and not pd.api.types.is_datetime64_any_dtype(series.dtype):
            _check_date_strings(series, profile.name, wording, "categorical")
    return ColumnRoles({p.name: p.role for p in profiles}, declared)


def _check_declared(series: pd.Series, name: str, role: str, wording: Wording) -> None:

    dtype = series.dtype
    numeric = pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
    if role in ("continuous", "integer") and not numeric:
        mixed = _mixed_example(series, 0)
        if mixed is not None:
            raise DataError(_mixed_message(name, *mixed, wording))
        row, value = _first_row(series, series.notna())
        raise DataError(
            f"column {name!r} ({dtype}, row {row}: {value!r}) cannot be {role}: it does not hold "
            f"numbers; convert it to numbers or declare {wording.declare(name, 'categorical')}"
        )
    if role == "datetime" and not pd.api.types.is_datetime64_any_dtype(dtype):
        if numeric or pd.api.types.is_bool_dtype(dtype):
            raise DataError(
                f"column {name!r} holds numbers ({dtype}), not times; convert it to a datetime "
                f"(e.g. pd.to_datetime(values, unit='s')) or declare "
                f"{wording.declare(name, 'continuous')}"
            )
        _check_date_strings(series, name, wording, "categorical")
    if role == "boolean":
        distinct = series.dropna().unique()
        if len(distinct) > 2:
            raise DataError(
                f"column {name!r} has {len(distinct)} distinct values (e.g. "
                f"{[to_plain(v) for v in distinct[:3]]}); a boolean has at most two: declare "
                f"{wording.declare(name, 'categorical')}"
            )
    if role == "id":
        if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(dtype):
            raise DataError(
                f"column {name!r} has dtype {dtype}, which cannot take new values; convert it "
                f"to strings or integers before declaring {wording.declare(name, 'id')}"
            )
        if pd.api.types.is_float_dtype(dtype):
            values = series.dropna().to_numpy(dtype=np.float64)
            whole = values == np.round(values)
            if not whole.all():
                row, value = _first_row(series, series.notna() & (series != np.round(series)))
                raise DataError(
                    f"column {name!r} declared an id holds fractions (row {row}: {value!r}); "
                    "an id is a whole number or a string"
                )
    if role == "text":
        raise DataError(
            f"{wording.declare(name, 'text')}: the GAN does not write text; declare "
            f"{wording.declare(name, 'ignore')} (generated rows get a missing value) or "
            f"{wording.declare(name, 'categorical')} (the synthetic rows reuse real values)"
        )


def _check_date_strings(series: pd.Series, name: str, wording: Wording, other: str) -> None:
    """Every value of a column of date strings parses with one format, or a DataError names a
    value that does not."""
    from augment.core.errors import DataError

    present = series.dropna()
    if not len(present) or not all(isinstance(v, str) for v in present.iloc[:SAMPLE]):
        raise DataError(
            f"column {name!r} ({series.dtype}) holds neither datetimes nor date strings; "
            f"convert it with pd.to_datetime or declare {wording.declare(name, other)}"
        )
    fmt = date_format(present.iloc[:SAMPLE], share=0.95)
    parsed = parse_dates(present, fmt, errors="coerce") if fmt else None
    if parsed is None or parsed.isna().any():
        failed = present.index[parsed.isna().to_numpy()] if parsed is not None else present.index
        row = int(series.index.get_loc(failed[0]))
        hint = f"as {fmt}" if fmt else "with one format"
        raise DataError(
            f"column {name!r} holds date strings, but row {row} ({present[failed[0]]!r}) does "
            f"not parse {hint}; fix it, or declare {wording.declare(name, other)}"
        )


def _mixed_example(series: pd.Series, categorical_max_unique: int) -> tuple[int, Any] | None:
    """(row, value) of the first value of the minority kind when ``series`` mixes numbers and
    text: Python numbers among strings in an object column, or strings of which most parse as
    numbers (more distinct ones than a category would have) and some do not. None otherwise."""
    dtype = series.dtype
    if not (pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype)):
        return None
    if isinstance(dtype, pd.CategoricalDtype):
        return None
    present = series.dropna()
    if present.empty:
        return None
    kinds = pd.api.types.infer_dtype(present, skipna=True)  # one pass in C
    if kinds not in ("string", "empty"):
        # Python objects of several types: find the minority kind row by row (rare, slow path)
        is_text = present.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool)
        is_number = present.map(
            lambda v: isinstance(v, (int, float, np.number)) and not isinstance(v, (bool, np.bool_))
        ).to_numpy(dtype=bool)
        if not (is_text.any() and is_number.any()):
            return None
        odd = is_text if is_text.sum() <= is_number.sum() else is_number
        position = int(np.flatnonzero(odd)[0])
        return int(series.index.get_loc(present.index[position])), present.iloc[position]
    if pd.to_numeric(present.iloc[:SAMPLE], errors="coerce").notna().mean() < 0.5:
        return None  # mostly words: text or levels, not numbers
    numbers = pd.to_numeric(present, errors="coerce")
    parsed = numbers.notna().to_numpy()
    if parsed.all() or parsed.mean() < 0.5 or numbers.nunique() <= categorical_max_unique:
        return None
    position = int(np.flatnonzero(~parsed)[0])
    return int(series.index.get_loc(present.index[position])), present.iloc[position]


def _mixed_message(name: str, row: int, value: Any, wording: Wording) -> str:
    return (
        f"column {name!r} mixes numbers and text (row {row}: {to_plain(value)!r}); clean it or "
        f"declare {wording.declare(name, 'categorical')}"
    )


def _first_row(series: pd.Series, mask: pd.Series) -> tuple[int, Any]:
    """The position and value of the first row where ``mask`` holds."""
    positions = np.flatnonzero(mask.to_numpy(dtype=bool))
    position = int(positions[0]) if len(positions) else 0
    return position, to_plain(series.iloc[position]) if len(series) else None


def to_plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
