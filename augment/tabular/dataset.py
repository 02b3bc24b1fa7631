"""The items of a table run for :class:`augment.ShardDataset` (``augment/pipeline/dataset.py``).

An item is one row's features as a float32 tensor ``(F,)``, after the dataset's transform, in
the encoding the run's own classifiers scored: the run's form of the row (its model file, or the
real data's) with every column's kind from the run's schema, so the encoding is the same with
and without the real rows:

- a number is its value (no scaling); a number with gaps in the run is its value, gaps filled
  with the training median, and a 0/1 flag ``<column>__missing``, never NaN;
- a datetime (or a column of date strings) is the seconds since its earliest training value;
- a boolean is 0/1; text, categories and a boolean with gaps are one-hot over the run's
  categories (``channel=web``; a gap is a category of its own, ``vip=None``);
- id and ignored columns (the manifest's ``columns``) are not features: the model never learned
  them.

The rows are held in memory as one frame (:attr:`TableItems.frame`, as the user has them) and
one float32 matrix.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from augment.core import storage
from augment.core.balance import to_python
from augment.core.errors import DataError
from augment.core.persist import load_payload
from augment.core.shards import read_shards
from augment.core.storage import Location
from augment.tabular.form import TableForm
from augment.tabular.schema import ColumnSpec, TableSchema, category_codes
from augment.tabular.synthesizer import SYNTHESIZER_FORMAT

if TYPE_CHECKING:  # the modality imports this module when asked for items
    from augment.tabular.modality import TableData


class TableItems:
    """The real training rows of a run (optional), then its synthetic rows in shard order.

    Attributes:
        frame: every item's row, every column of the run (label, ids included), real rows
            first, as the user has them.
        feature_names: the names of the item tensor's entries: a column, its missing flag
            (``amount__missing``), or ``column=value`` for one category of a one-hot column.
        labels: ``(N,)`` class value of each item (plain Python values).
        synthetic_mask: ``(N,)`` bool, True for synthetic items.
    """

    def __init__(
        self,
        output: Location,
        manifest: dict[str, Any],
        real: TableData | None,
        features: list[str] | None = None,
    ) -> None:
        label = manifest["label"]
        synthetic = read_shards(output)  # sha256 checked per part
        # the real rows as the user has them (times, gaps, ids; no flag columns)
        parts = []
        if real is not None:
            originals = real.originals if real.originals is not None else real.train.iloc[:, :0]
            rows = real.form.restore_real(real.train.copy(), originals)
            parts.append(rows[[name for name in real.columns if name in rows.columns]])
        if len(synthetic):
            parts.append(synthetic)
        self.frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
        self.labels = np.array(
            [to_python(v) for v in (self.frame[label].tolist() if len(self.frame) else [])],
            dtype=object,
        )
        self.synthetic_mask = np.arange(len(self.frame)) >= (len(real.train) if real else 0)
        schema, form = (
            (real.schema, real.form) if real is not None else _saved_model(output, manifest)
        )
        columns = self._feature_columns(label, features, form)
        # the run's form: datetimes as seconds, gaps as value + flag, rare levels as one
        rows = form.to_model(self.frame[columns]) if len(self.frame) else self.frame
        specs = {spec.name: spec for spec in schema.columns}
        blocks, self.feature_names = [], []
        for name in columns:
            for column in (name, form.missing.flags.get(name)):
                if column is None:
                    continue
                block, names = _encode(rows[column], specs.get(column), column)
                blocks.append(block)
                self.feature_names += names
        self.features = (
            np.concatenate(blocks, axis=1) if blocks else np.zeros((len(self.frame), 0), np.float32)
        )  # (N, F) float32

    def _feature_columns(
        self, label: str, features: list[str] | None, form: TableForm
    ) -> list[str]:
        left_out = {*form.ids.columns, *form.ignored}  # never learned: not features
        available = [str(c) for c in self.frame.columns if c != label and c not in left_out]
        if features is None:
            return available
        if label in features:
            raise DataError(f"features= lists the label column {label!r}; leave it out")
        unlearned = [name for name in features if name in left_out]
        if unlearned:
            raise DataError(
                f"features= names id or ignored columns of the run, which its model never "
                f"learned (generated rows get fresh ids or gaps there): {unlearned}; leave "
                "them out (they stay in data.frame)"
            )
        unknown = [name for name in features if name not in available]
        if unknown:
            raise DataError(
                f"features= names columns that the run does not have: {unknown}; "
                f"choose from {available[:20]}"
            )
        return list(features)

    def __len__(self) -> int:
        return len(self.frame)

    def item(self, index: int, transform: Callable[..., Any] | None) -> torch.Tensor:
        x = torch.from_numpy(self.features[index].copy())  # (F,), a copy a transform may change
        return transform(x) if transform is not None else x


def _encode(series: pd.Series, spec: ColumnSpec | None, name: str) -> tuple[np.ndarray, list[str]]:
    """``(N, K)`` float32 entries of one model column and their names: a number or a boolean
    without gaps as it is (one entry), anything else one-hot over the run's categories."""
    categories = spec.categories if spec is not None else None
    boolean = pd.api.types.is_bool_dtype(series.dtype)
    if boolean and None not in (categories or []):
        return series.to_numpy(dtype=np.float32)[:, None], [name]
    if not boolean and _numeric(series):
        return series.to_numpy(dtype=np.float32, na_value=np.nan)[:, None], [name]
    if categories is None:
        raise DataError(
            f"column {name!r} holds text but the run's schema has no categories for it; "
            "leave it out with features= (the numeric columns)"
        )
    return _one_hot(series, categories), [f"{name}={category}" for category in categories]


def _numeric(series: pd.Series) -> bool:
    """Numbers (used as they are), not text or category columns (one-hot)."""
    return pd.api.types.is_numeric_dtype(series.dtype) and not isinstance(
        series.dtype, pd.CategoricalDtype
    )


def _saved_model(output: Location, manifest: dict[str, Any]) -> tuple[TableSchema, TableForm]:
    """The column kinds and categories the run's model was fitted with, and the run's form of
    the rows (its model file)."""
    path = output / manifest.get("model_file", "model/synthesizer.pt")
    if storage.is_remote(path):
        with tempfile.TemporaryDirectory() as folder:  # torch reads a local file
            local = Path(folder) / "synthesizer.pt"
            local.write_bytes(path.read_bytes())
            payload = load_payload(local, SYNTHESIZER_FORMAT)
    else:
        payload = load_payload(path, SYNTHESIZER_FORMAT)
    return TableSchema.from_dict(payload["schema"]), TableForm.from_dict(payload.get("form"))


def _one_hot(series: pd.Series, categories: list[Any]) -> np.ndarray:
    """``(N, K)`` float32 one-hot of ``series`` over ``categories``; other values are all 0."""
    codes = category_codes(series, categories)  # (N,), -1 when not a category
    block = np.zeros((len(codes), len(categories)), dtype=np.float32)
    known = codes >= 0
    block[np.flatnonzero(known), codes[known]] = 1.0
    return block


def shard_items(
    output: Location,
    manifest: dict[str, Any],
    real: TableData | None,
    features: list[str] | None = None,
) -> TableItems:
    """The items of the table run at ``output`` (see :class:`TableItems`)."""
    return TableItems(output, manifest, real, features)
