"""What each column of a real table is: the role it plays, inferred from its values.

Roles: ``continuous`` (a measurement), ``integer`` (a count or an integer measurement),
``categorical`` (a few levels), ``boolean``, ``datetime``, ``id`` (a key unique per row),
``text`` (free text), ``ignore`` (left out). ``augment profile`` prints them with each column's
missing share and distinct count, so a user sees what a job will do before running it::

    for column in infer_roles(frame, label="churned"):
        print(column.name, column.role, column.missing, column.distinct, column.why)

The GAN models ``continuous``, ``integer``, ``categorical`` and ``boolean`` columns today
(:func:`augment.tabular.schema.infer_schema`); the other roles are recognised here so they are
reported, and a job refuses them with a message that says what to do.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

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
        ValueError: an override names a column that is not there or a role that does not exist.
    """
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
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "could not infer format": we only ask whether it parses
        parsed = pd.to_datetime(sample, errors="coerce", format="mixed")
    return bool(parsed.notna().mean() > 0.95)


def refuse_copied_columns(
    frame: pd.DataFrame, label: str, declared: set[str], python_api: bool = False
) -> None:
    """Refuse columns whose values the generator would copy into the synthetic rows: keys
    (``id``) and free text (``text``), unless the user declared the column's kind.

    A key or a text modelled as a category comes back as the real rows' values: useless in a
    synthetic row and a leak of the real ones. Until ids are generated fresh (issue 16), the
    column is refused with the way out, worded for the interface in use.

    Raises:
        DataError: such a column, named with its evidence and the fix.
    """
    from augment.core.errors import DataError

    kept = {name: "categorical" for name in declared if name in frame.columns and name != label}
    suspects = [p for p in infer_roles(frame, label, kept) if p.role in ("id", "text")]
    if not suspects:
        return
    first = suspects[0]
    names = [p.name for p in suspects]
    what = "an id" if first.role == "id" else "free text"
    if python_api:
        fix = (
            f"drop it from X (X.drop(columns={names})), or, to model it as a category anyway, "
            f"pass categorical_columns={names}"
        )
    else:
        fix = (
            f"drop it (data.drop_columns: {names}), or, to model it as a category anyway, set "
            f"data.columns.{first.name}: categorical"
        )
    others = f" (also: {', '.join(names[1:])})" if len(names) > 1 else ""
    raise DataError(
        f"column {first.name!r} looks like {what} ({first.why}){others}: the synthetic rows "
        f"would copy real values; {fix}"
    )
