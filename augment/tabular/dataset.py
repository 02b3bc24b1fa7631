"""The items of a table run for :class:`augment.ShardDataset` (``augment/pipeline/dataset.py``).

An item is one row's feature columns as a float32 tensor ``(F,)``, after the dataset's transform.
Numbers and booleans are taken as they are (no scaling); text and category columns are one-hot
encoded over the categories of the run's schema, the ones its model was trained on, so the
encoding is the same with and without the real rows. The rows are held in memory as one frame
(:attr:`TableItems.frame`) and one float32 matrix.
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
from augment.tabular.schema import TableSchema, category_codes
from augment.tabular.synthesizer import SYNTHESIZER_FORMAT

if TYPE_CHECKING:  # the modality imports this module when asked for items
    from augment.tabular.modality import TableData


class TableItems:
    """The real training rows of a run (optional), then its synthetic rows in shard order.

    Attributes:
        frame: every item's row, every column of the run (label included), real rows first.
        feature_names: the names of the item tensor's entries: a column, or ``column=value``
            for one category of a one-hot encoded column.
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
            parts.append(real.form.restore_real(real.train.copy(), originals))
        if len(synthetic):
            parts.append(synthetic)
        self.frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
        self.labels = np.array(
            [to_python(v) for v in (self.frame[label].tolist() if len(self.frame) else [])],
            dtype=object,
        )
        self.synthetic_mask = np.arange(len(self.frame)) >= (len(real.train) if real else 0)
        columns = self._feature_columns(label, features)
        blocks, self.feature_names = [], []
        schema = real.schema if real is not None else None
        for name in columns:
            series = self.frame[name]
            if _numeric(series):
                blocks.append(series.to_numpy(dtype=np.float32, na_value=np.nan)[:, None])
                self.feature_names.append(name)
                continue
            if schema is None:  # the run's schema is in its model file
                schema = _saved_schema(output, manifest)
            categories = _categories(schema, name)
            blocks.append(_one_hot(series, categories))
            self.feature_names += [f"{name}={category}" for category in categories]
        self.features = (
            np.concatenate(blocks, axis=1) if blocks else np.zeros((len(self.frame), 0), np.float32)
        )  # (N, F) float32

    def _feature_columns(self, label: str, features: list[str] | None) -> list[str]:
        available = [str(c) for c in self.frame.columns if c != label]
        if features is None:
            return available
        if label in features:
            raise DataError(f"features= lists the label column {label!r}; leave it out")
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


def _numeric(series: pd.Series) -> bool:
    """Numbers and booleans (used as they are), not text or category columns (one-hot)."""
    return pd.api.types.is_numeric_dtype(series.dtype) and not isinstance(
        series.dtype, pd.CategoricalDtype
    )


def _saved_schema(output: Location, manifest: dict[str, Any]) -> TableSchema:
    """The column kinds and categories the run's model was fitted with (its model file)."""
    path = output / manifest.get("model_file", "model/synthesizer.pt")
    if not storage.is_remote(path):
        return TableSchema.from_dict(load_payload(path, SYNTHESIZER_FORMAT)["schema"])
    with tempfile.TemporaryDirectory() as folder:  # torch reads a local file
        local = Path(folder) / "synthesizer.pt"
        local.write_bytes(path.read_bytes())
        return TableSchema.from_dict(load_payload(local, SYNTHESIZER_FORMAT)["schema"])


def _categories(schema: TableSchema, name: str) -> list[Any]:
    spec = next((column for column in schema.columns if column.name == name), None)
    if spec is None or spec.categories is None:
        raise DataError(
            f"column {name!r} holds text but the run's schema has no categories for it; "
            "leave it out with features= (the numeric columns)"
        )
    return list(spec.categories)


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
