"""Read a labelled table from Parquet (file or directory), CSV, or a built-in scikit-learn dataset.

Every failure is a :class:`~augment.core.errors.DataError` that names the file or column at fault::

    frame = load_table("sklearn:wine", label="target")
    frame = load_table("data/events/", label="churned")          # a directory of Parquet files
    frame = load_table("s3://bucket/events/", label="churned")   # the same on object storage

A URL goes through fsspec (:mod:`augment.core.storage`); credentials come from the environment or from
``storage_options``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads

from augment.core import storage
from augment.core.balance import class_quotas
from augment.core.config import setting
from augment.core.errors import DataError
from augment.core.storage import Location

BUILTIN_PREFIX = "sklearn:"


def _load_builtin(name: str) -> pd.DataFrame:
    from sklearn import datasets

    loaders = {
        "breast_cancer": datasets.load_breast_cancer,
        "wine": datasets.load_wine,
    }
    if name not in loaders:
        raise DataError(
            f"unknown built-in dataset {BUILTIN_PREFIX}{name}; choose one of "
            + ", ".join(BUILTIN_PREFIX + key for key in loaders)
        )
    bunch = loaders[name](as_frame=True)
    frame = bunch.frame.copy()
    # Readable class names make per-class metrics and plots self-explanatory.
    names = np.asarray(bunch.target_names)
    frame["target"] = pd.Series(names[frame["target"].to_numpy()], dtype="str")
    return frame


def _parquet_dataset(files: list[Location]) -> pads.Dataset:
    paths = [storage.arrow_path(f)[0] for f in files]
    return pads.dataset(paths, format="parquet", filesystem=storage.arrow_path(files[0])[1])


def _read_parquet(
    path: Location, label: str, max_rows: int | None, seed: int
) -> tuple[pd.DataFrame, TableSample | None]:
    if path.is_dir():
        files = sorted((p for p in path.rglob("*.parquet") if p.is_file()), key=lambda p: p.parts)
        if not files:
            raise DataError(f"directory {path} holds no *.parquet files; point data.source at them")
    else:
        files = [path]
    for file in files:
        if file.stat().st_size == 0:
            raise DataError(f"Parquet file {file} is empty (0 bytes); remove or regenerate it")
    try:
        dataset = _parquet_dataset(files)
        sampled = _sample_parquet(dataset, label, max_rows, seed) if max_rows else None
        return sampled if sampled else (dataset.to_table().to_pandas(), None)
    except (pa.ArrowInvalid, pa.ArrowException, OSError) as error:
        # Find the culprit so the message names one file, not the whole directory.
        for file in files:
            try:
                _parquet_dataset([file]).to_table()
            except (pa.ArrowInvalid, pa.ArrowException, OSError) as inner:
                raise DataError(
                    f"cannot read Parquet file {file}: {str(inner).splitlines()[0]}; "
                    "re-export it or remove it from the source"
                ) from None
        raise DataError(
            f"cannot read Parquet source {path}: {str(error).splitlines()[0]}; "
            "check that all files share one schema"
        ) from None


@dataclass
class TableSample:
    """What a sampled read of a large Parquet source found: its class counts over every row
    (the plan is made from these) and how many rows of each class the sample kept."""

    rows: int
    counts: dict[Any, int]
    kept: dict[Any, int]
    dataset: pads.Dataset | None = field(default=None, repr=False)  # the whole source

    def column_batches(self, columns: list[str]) -> Iterator[pd.DataFrame]:
        """Every row of the source, ``columns`` alone, a batch at a time (one more streaming
        pass, over those columns only): for what must hold for the rows the sample skipped
        too, such as fresh ids above every real one."""
        if self.dataset is None or not columns:
            return
        for batch in self.dataset.to_batches(columns=columns):
            yield pd.DataFrame({name: _plain(batch.column(name)).to_pandas() for name in columns})

    def note(self, max_rows: int) -> str:
        whole = [str(c) for c, n in self.counts.items() if self.kept.get(c, 0) == n]
        cut = {c: n for c, n in self.counts.items() if self.kept.get(c, 0) < n}
        parts = [f"all rows of {', '.join(whole)}"] if whole else []
        parts += [f"{self.kept.get(c, 0):,} of {n:,} rows of {c}" for c, n in cut.items()]
        return (
            f"data.max_rows={max_rows:,}: the source has {self.rows:,} rows; the model is fitted "
            f"on a sample of {sum(self.kept.values()):,} ({'; '.join(parts)}); the plan counts "
            "every row"
        )


def _sample_parquet(
    dataset: pads.Dataset, label: str, max_rows: int, seed: int
) -> tuple[pd.DataFrame, TableSample] | None:
    """Two streaming passes over a large Parquet source: the label column alone for the class
    counts, then every column batch by batch, keeping each row of class c with probability
    quota(c) / count(c). Memory holds one batch and the sample, never the whole table.
    Returns None when the source is small enough to read whole."""
    rows = dataset.count_rows()
    if rows <= max_rows:
        return None
    if label not in dataset.schema.names:
        return None  # load_table names the missing label with its usual message
    totals: dict[Any, int] = {}
    for batch in dataset.to_batches(columns=[label]):
        for item in pc.value_counts(_plain(batch.column(0))).to_pylist():
            totals[item["values"]] = totals.get(item["values"], 0) + item["counts"]
    counts = {c: totals[c] for c in sorted(totals, key=lambda c: (c is None, str(c)))}
    quotas = class_quotas(counts, max_rows)
    rates = pd.Series({c: quotas[c] / n for c, n in counts.items()})
    rng = np.random.default_rng(seed)
    kept_tables = []
    for batch in dataset.to_batches():
        labels = pd.Series(_plain(batch.column(label)).to_pandas())
        rate = labels.map(rates).fillna(1.0).to_numpy(dtype=np.float64)  # a missing label: kept
        keep = np.flatnonzero(rng.random(len(labels)) < rate)
        if len(keep):
            kept_tables.append(pa.Table.from_batches([batch.take(pa.array(keep))]))
    table = pa.concat_tables(kept_tables) if kept_tables else dataset.schema.empty_table()
    frame = table.to_pandas()
    kept = {c: int(n) for c, n in frame[label].value_counts(dropna=False).items()}
    return frame, TableSample(rows=rows, counts=counts, kept=kept, dataset=dataset)


def _plain(column: pa.Array) -> pa.Array:
    return column.dictionary_decode() if pa.types.is_dictionary(column.type) else column


def _read_csv(path: Location) -> pd.DataFrame:
    if path.stat().st_size == 0:
        raise DataError(
            f"CSV file {path} is empty (0 bytes); point data.source at a CSV with a header row"
        )
    try:
        with path.open("rb") as stream:
            return pd.read_csv(stream)
    except pd.errors.ParserError as error:
        raise DataError(
            f"cannot parse CSV file {path}: {str(error).strip()}; fix the ragged rows "
            "(every row needs as many fields as the header)"
        ) from None
    except (UnicodeDecodeError, pd.errors.EmptyDataError) as error:
        raise DataError(f"cannot read CSV file {path}: {error}") from None


def load_table(
    source: str,
    label: str,
    fmt: str = "auto",
    drop_columns: list[str] | None = None,
    storage_options: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Load a labelled table with a fresh RangeIndex (the row ids used for the holdout record).

    See :func:`read_table` for the arguments and errors; this reads every row.
    """
    return read_table(source, label, fmt, drop_columns, storage_options)[0]


def read_table(
    source: str,
    label: str,
    fmt: str = "auto",
    drop_columns: list[str] | None = None,
    storage_options: dict[str, Any] | None = None,
    max_rows: int | None = None,
    seed: int = 0,
) -> tuple[pd.DataFrame, TableSample | None]:
    """Load a labelled table with a fresh RangeIndex (the row ids used for the holdout record),
    as a sample when it is a Parquet source of more than ``max_rows`` rows.

    Args:
        source: a Parquet file or directory, a CSV file (each a local path or an fsspec URL
            such as ``s3://bucket/key``), or ``sklearn:breast_cancer`` / ``sklearn:wine`` (label
            column ``target``).
        label: the class label column; it must exist.
        fmt: ``auto`` (by suffix; directories are Parquet), ``parquet`` or ``csv``.
        drop_columns: columns to remove before anything else.
        storage_options: passed to fsspec when ``source`` is a URL (endpoint, credentials).
        max_rows: a Parquet source with more rows is read in two streaming passes and sampled
            per class (:func:`augment.core.balance.class_quotas`, seeded by ``seed``); the
            :class:`TableSample` then gives the class counts of every row. CSV files and
            built-in datasets are read whole.

    Returns:
        ``(frame, sample)``; ``sample`` is None when every row was read.

    Raises:
        DataError: missing or unreadable file, empty table, missing label column.
    """
    sample = None
    if source.startswith(BUILTIN_PREFIX):
        frame = _load_builtin(source[len(BUILTIN_PREFIX) :])
        origin = source
    else:
        path = storage.location(source, storage_options)
        if not path.exists():
            raise DataError(f"data source {path} does not exist; check data.source")
        if fmt == "auto":
            fmt = "csv" if path.suffix.lower() in {".csv", ".txt"} else "parquet"
        if fmt == "csv":
            frame = _read_csv(path)
        else:
            frame, sample = _read_parquet(path, label, max_rows, seed)
        origin = str(path)

    if frame.empty or len(frame.columns) == 0:
        raise DataError(f"data source {origin} has no rows; point data.source at a non-empty table")
    frame.columns = [str(column) for column in frame.columns]
    if label not in frame.columns:
        close = difflib.get_close_matches(label, list(frame.columns), n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
        raise DataError(
            f"label column {label!r} is not in {origin}; {hint}"
            f"set data.label to one of: {', '.join(list(frame.columns)[:20])}"
        )
    if drop_columns:
        missing = [c for c in drop_columns if c not in frame.columns]
        if missing:
            raise DataError(f"data.drop_columns names columns not in {origin}: {missing}")
        if label in drop_columns:
            raise DataError(f"data.drop_columns lists the label column {label!r}; remove it")
        frame = frame.drop(columns=drop_columns)
    return frame.reset_index(drop=True), sample


def handle_missing(frame: pd.DataFrame, label: str, policy: str) -> tuple[pd.DataFrame, dict]:
    """Deal with NaN (and infinite) feature values by policy ``model``, ``error``, ``drop`` or
    ``impute``; infinite values count as missing.

    ``model`` keeps the features' gaps for :mod:`augment.tabular.missing` to model. Rows with a
    missing label are dropped under every policy but ``error``, which refuses them.
    Returns the cleaned frame and a report ``{"missing": {column: count}, "dropped_rows": n}``.
    """
    numeric = frame.select_dtypes(include="number")
    infinite = numeric.columns[np.isinf(numeric.to_numpy(dtype=np.float64)).any(axis=0)]
    if len(infinite):
        frame = frame.copy()
        frame[list(infinite)] = frame[list(infinite)].replace([np.inf, -np.inf], np.nan)
    counts = frame.isna().sum()
    missing = {str(column): int(n) for column, n in counts.items() if n > 0}
    report = {"missing": missing, "dropped_rows": 0}
    if not missing:
        return frame, report
    if policy == "model":  # the features keep their gaps (augment.tabular.missing)
        before = len(frame)
        frame = frame.dropna(subset=[label])
        report["dropped_rows"] = before - len(frame)
        if frame.empty:
            raise DataError(f"no rows are left: every row lacks its label {label!r}")
        if report["dropped_rows"]:
            report["notes"] = [
                f"{report['dropped_rows']} row(s) without a label ({label}) were left out"
            ]
        return frame, report
    if policy == "error":
        listed = ", ".join(f"{column} ({n} rows)" for column, n in missing.items())
        raise DataError(
            f"missing or infinite values in columns: {listed}; drop those rows "
            f"({setting('data.missing', 'drop')}) or fill them with the median / most frequent "
            f"value ({setting('data.missing', 'impute')})"
        )
    before = len(frame)
    frame = frame.dropna(subset=[label])
    if policy == "drop":
        frame = frame.dropna()
    else:
        frame = frame.copy()
        for column in missing:
            if column == label:
                continue
            series = frame[column]
            if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(
                series.dtype
            ):
                fill = series.median()
                if pd.api.types.is_integer_dtype(series.dtype):
                    fill = round(fill)
            else:
                fill = series.mode(dropna=True).iloc[0]
            frame[column] = series.fillna(fill)
    report["dropped_rows"] = before - len(frame)
    if frame.empty:
        raise DataError("no rows are left after dropping rows with missing values")
    # Keep the source row ids (the index) so that the holdout record points at input rows.
    return frame, report
