"""Column kinds of a table: which columns are continuous, which categorical, and how to restore them.

The schema is inferred once from the training rows (and may be overridden per column in the config).
It holds everything needed to give generated rows the same names, dtypes and value sets as the input,
and it serialises to plain JSON so that saved models never need pickle.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from augment.core.balance import to_python
from augment.core.config import setting
from augment.core.errors import DataError

ColumnKind = Literal["continuous", "categorical"]

# the kind the model gives each role it models (a datetime is seconds by then)
_KIND_OF_ROLE = {
    "continuous": "continuous",
    "integer": "continuous",
    "datetime": "continuous",
    "categorical": "categorical",
    "boolean": "categorical",
}


def category_value(value: Any) -> Any:
    """A level as the model keeps it: a plain Python value, and every kind of missing value
    (None, NaN, pd.NA, NaT) as None, a level of its own."""
    value = to_python(value)
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):  # not a scalar: keep it as it is
        pass
    return value


def category_codes(values: Any, categories: list[Any]) -> np.ndarray:
    """(N,) int64 index of each value in ``categories`` (-1 when not one of them); a missing
    value of any kind matches the missing level (None)."""
    lookup = {value: j for j, value in enumerate(categories)}
    return np.array(
        [lookup.get(category_value(v), -1) for v in pd.Series(values).tolist()], dtype=np.int64
    )


def float_block(frame: pd.DataFrame, names: list[str]) -> np.ndarray:
    """(N, len(names)) float64: the columns ``names`` of ``frame`` side by side (a new array)."""
    if not names:
        return np.zeros((len(frame), 0))
    if all(dtype == np.float64 for dtype in frame.dtypes):
        # one float64 block (what decoding builds), kept column by column by pandas: a view of
        # it, and a gather of whole columns (an (N, C) array in Fortran order). The places come
        # from a dict: Index.get_indexer on pandas 3's Arrow-backed string labels took ~0.3 ms
        # a call, holding the GIL that parts made side by side share.
        place = {name: i for i, name in enumerate(frame.columns.tolist())}
        return frame.to_numpy().T[[place[name] for name in names]].T
    return np.column_stack([frame[name].to_numpy(dtype=np.float64) for name in names])


def with_columns(frame: pd.DataFrame, columns: dict[str, Any]) -> pd.DataFrame:
    """A new frame: ``frame`` with the columns in ``columns`` (arrays or Series of its length)
    replaced, in its column order. One constructor call, where setting columns one by one on a
    frame costs ~0.25 ms each (generation restores 30 columns per batch of 4,096 rows)."""
    return pd.DataFrame(
        {name: columns[name] if name in columns else frame[name] for name in frame.columns},
        index=frame.index,
    )


@functools.cache
def _pandas_dtype(name: str) -> Any:
    return pd.api.types.pandas_dtype(name)  # ~50 us a call: once per name, not per batch


@dataclass
class ColumnSpec:
    """One feature column: its kind, original dtype, seen categories or seen range."""

    name: str
    kind: ColumnKind
    dtype: str
    categories: list[Any] | None = None
    minimum: float | None = None
    maximum: float | None = None
    integer: bool = False
    # a continuous column whose every value has at most this many decimals: generated values are
    # rounded to as many when they leave the synthesizer (TableSchema.round_to_input: amounts of
    # 2 decimals stay 2 decimals; None: full precision)
    decimals: int | None = None

    def restore(self, values: np.ndarray | pd.Series) -> pd.Series:
        """Give decoded values this column's original dtype."""
        return pd.Series(self.restore_array(values), name=self.name)

    def restore_array(self, values: np.ndarray | pd.Series) -> Any:
        """Decoded values as an array of this column's original dtype (a NumPy array, or a
        pandas array for a category or an extension dtype): what a DataFrame is built from
        without a per-column Series."""
        if self.dtype == "category":  # a missing level (None) becomes a missing value
            levels = [c for c in self.categories or [] if c is not None]
            return pd.Categorical(values, categories=levels)
        if self.integer:
            values = np.rint(np.asarray(values, dtype=np.float64))
        dtype = _pandas_dtype(self.dtype)
        if isinstance(dtype, np.dtype):
            # an object column stays objects: NumPy would turn a list of numbers and text
            # (kept levels and the rare levels' stand-in) into text alone
            values = np.asarray(values, dtype=object if dtype.kind == "O" else None)
            if values.dtype == object and dtype.kind in "fc":
                values = np.where(pd.isna(values), np.nan, values)  # the missing level: NaN
            return values.astype(dtype, copy=False)
        return pd.array(values, dtype=dtype)


@dataclass
class TableSchema:
    """The label column and the feature columns, in input order."""

    label: str
    label_dtype: str
    classes: list[Any]
    columns: list[ColumnSpec] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [column.name for column in self.columns]

    @property
    def continuous(self) -> list[ColumnSpec]:
        return [column for column in self.columns if column.kind == "continuous"]

    @property
    def categorical(self) -> list[ColumnSpec]:
        return [column for column in self.columns if column.kind == "categorical"]

    def round_to_input(self, rows: pd.DataFrame) -> pd.DataFrame:
        """``rows`` (the model's form) with each continuous column rounded to the decimals its
        training values have (see :func:`decimals_of`), as a new frame. Done last, on what leaves
        the synthesizer: the filter, the moment map and the anchors work at full precision, so
        the rows are the unrounded rows, rounded."""
        rounded: dict[str, Any] = {}
        plain: dict[int, list[str]] = {}  # float64 columns by their decimals: one round each
        # the dtypes at once: a Series per column (rows[name]) cost ~30 us each, per batch
        dtypes = dict(zip(rows.columns.tolist(), rows.dtypes.tolist(), strict=True))
        for column in self.columns:
            if column.decimals is None or column.name not in dtypes:
                continue
            if dtypes[column.name] == np.float64:
                plain.setdefault(column.decimals, []).append(column.name)
            else:
                rounded[column.name] = rows[column.name].round(column.decimals)
        if plain:
            names = [name for group in plain.values() for name in group]
            block = float_block(rows, names)
            start = 0
            for decimals, group in plain.items():
                # np.round, as Series.round calls it per column: the same values
                part = block[:, start : start + len(group)]
                np.round(part, decimals, out=part)
                start += len(group)
            rounded.update(zip(names, block.T, strict=True))
        return with_columns(rows, rounded) if rounded else rows

    def restore_labels(self, labels: np.ndarray | list[Any]) -> pd.Series:
        if self.label_dtype == "category":
            return pd.Series(pd.Categorical(labels, categories=self.classes), name=self.label)
        return pd.Series(list(labels), name=self.label).astype(self.label_dtype)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TableSchema:
        columns = [ColumnSpec(**column) for column in data["columns"]]
        return cls(
            label=data["label"],
            label_dtype=data["label_dtype"],
            classes=list(data["classes"]),
            columns=columns,
        )


def _is_categorical_dtype(series: pd.Series) -> bool:
    dtype = series.dtype
    return (
        isinstance(dtype, pd.CategoricalDtype)
        or pd.api.types.is_bool_dtype(dtype)
        or pd.api.types.is_object_dtype(dtype)
        or pd.api.types.is_string_dtype(dtype)
    )


def infer_schema(
    frame: pd.DataFrame,
    label: str,
    overrides: dict[str, str] | None = None,
    categorical_max_unique: int = 10,
    max_categories: int = 1000,
    constant_columns: Literal["error", "keep"] = "keep",
) -> TableSchema:
    """Infer column kinds: strings, bools, categoricals and integers with few values are categorical.

    Args:
        frame: the rows, label column included.
        label: name of the label column.
        overrides: column name -> kind or role (``integer`` is continuous and rounded;
            ``boolean`` categorical; ``datetime`` continuous seconds), taking precedence over
            inference.
        categorical_max_unique: integer columns with at most this many distinct values are
            categorical.
        max_categories: a categorical column with more distinct values is refused.
        constant_columns: ``error`` refuses columns that hold a single value; ``keep`` models
            them like any other column (the generator then reproduces that value).

    Raises:
        DataError: an override names a missing column, a text column is declared continuous, or a
            categorical column has more than ``max_categories`` values, or a column is constant and
            ``constant_columns`` is ``error``.
    """
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(frame.columns))
    if unknown:
        raise DataError(
            f"data.columns names columns that are not in the data: {unknown}; "
            f"available columns: {list(frame.columns)}"
        )
    if label in overrides:
        raise DataError(
            f"data.columns lists the label column {label!r}; the label is always a class, remove it"
        )
    if constant_columns == "error":
        constant = [
            str(name) for name in frame.columns if name != label and frame[name].nunique() <= 1
        ]
        if constant:
            raise DataError(
                f"column(s) {constant} hold a single value in the train split, so there is nothing "
                f"to learn from them; drop them ({setting('data.drop_columns', constant)}) or "
                f"keep them as constants ({setting('data.constant_columns', 'keep')})"
            )
    classes = sorted({to_python(v) for v in frame[label].unique()}, key=_sort_key)
    label_dtype = str(frame[label].dtype)
    columns: list[ColumnSpec] = []
    for name in frame.columns:
        if name == label:
            continue
        series = frame[name]
        dtype = str(series.dtype)
        is_integer = pd.api.types.is_integer_dtype(series.dtype) and not pd.api.types.is_bool_dtype(
            series.dtype
        )
        if name in overrides:
            kind = _KIND_OF_ROLE[overrides[name]]
            is_integer = is_integer or overrides[name] == "integer"
        elif (
            _is_categorical_dtype(series)
            or is_integer
            and series.nunique() <= categorical_max_unique
        ):
            kind = "categorical"
        else:
            kind = "continuous"
        if kind == "continuous":
            if not pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(
                series.dtype
            ):
                raise DataError(
                    f"column {name!r} has dtype {dtype} and cannot be continuous; "
                    f"declare it categorical ({setting(f'data.columns.{name}', 'categorical')}) "
                    "or convert it to numbers"
                )
            values = series.to_numpy(dtype=np.float64)
            columns.append(
                ColumnSpec(
                    name=str(name),
                    kind="continuous",
                    dtype=dtype,
                    minimum=float(np.min(values)),
                    maximum=float(np.max(values)),
                    integer=bool(is_integer),
                    decimals=None if is_integer else decimals_of(values, series.dtype),
                )
            )
        else:
            categories = sorted({category_value(v) for v in series.unique()}, key=_sort_key)
            if len(categories) > max_categories:
                raise DataError(
                    f"column {name!r} has {len(categories)} distinct values, more than "
                    f"data.max_categories={max_categories}; drop it (data.drop_columns), declare it "
                    f"continuous ({setting(f'data.columns.{name}', 'continuous')}), lower "
                    "data.max_levels (the "
                    "levels a category keeps; the rest share one) or raise data.max_categories"
                )
            columns.append(
                ColumnSpec(name=str(name), kind="categorical", dtype=dtype, categories=categories)
            )
    if not columns:
        raise DataError(f"the data has no feature columns besides the label {label!r}")
    return TableSchema(label=label, label_dtype=label_dtype, classes=classes, columns=columns)


MAX_DECIMALS = 8  # above, values are measurements at full precision: never rounded
DECIMALS_HEAD = 10_000


def decimals_of(values: np.ndarray, dtype: Any = np.float64) -> int | None:
    """The fewest decimals (0..MAX_DECIMALS) that every finite value has, up to the float's own
    precision (``0.1 + 0.2`` has one; a float32 ``0.1`` too); None when some value has more (or
    there is no finite value). As SDV's learned rounding, so generated amounts keep the
    input's cents."""
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if len(finite) == 0:
        return None
    try:
        kind = np.dtype(dtype)
    except TypeError:  # a pandas extension dtype (Float64, ...): its values are float64
        kind = np.dtype(np.float64)
    eps = np.finfo(kind if kind.kind == "f" else np.float64).eps

    def fits(part: np.ndarray, decimals: int) -> bool:
        tolerance = 16 * eps * np.maximum(np.abs(part), 1.0)
        return bool(np.all(np.abs(np.round(part, decimals) - part) <= tolerance))

    # the first values bound it from below (a measurement at full precision is rejected there,
    # without rounding millions of values nine times); every value then confirms it
    head = finite[:DECIMALS_HEAD]
    start = next((d for d in range(MAX_DECIMALS + 1) if fits(head, d)), None)
    if start is None:
        return None
    return next((d for d in range(start, MAX_DECIMALS + 1) if fits(finite, d)), None)


def _sort_key(value: Any) -> tuple[str, Any]:
    # Sort mixed types deterministically: by type name first, then by value.
    return (type(value).__name__, value)
