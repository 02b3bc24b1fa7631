"""Rows around real anchors, and a neighbour check on generated rows.

A minority class of 6-60 rows is too few for a GAN to learn its shape alone. Two helpers put the
real rows back in charge, both in one distance space (continuous columns standardised on the whole
training table, categorical columns one-hot scaled so that a mismatch costs as much as one
standard deviation):

- ``RowSpace.interpolate``: a new row lies on the segment between a real row of the class (the
  anchor) and either one of its nearest neighbours in the same class (a categorical value is the
  one of the nearer end) or, for half of the rows, the class's centre (when it lies inside the
  class). This is our own generator path (``generator="anchored"`` or the share of a
  ``"mix"``), chosen explicitly and reported; no third-party oversampler is called.
- ``RowSpace.neighbour_share``: for generated rows of a class, the share of their nearest real
  training rows that belong to that class; a row at 0 lies deep among the other classes. This
  search runs in the whitened space of the training rows (their covariance, shrunk, mapped to
  the identity), where a row that breaks the real rows' correlations is far from all of them. The
  sampler draws three times the GAN rows it needs and keeps the third with the highest share, so
  the counts stay exact.
- ``RowSpace.moment_map``: an affine map of the continuous columns that gives GAN rows of a class
  the mean and covariance of the class's real rows. A linear model learns its direction from
  these two moments; GAN rows that carry others (a mean pulled toward the majority, a cloud
  stretched along the wrong axis) turn it, and its ranking suffers (benchmarks/NOTES.md, KEEL).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from augment.core.balance import to_python
from augment.core.vectors import Moments, VectorSpace, moment_match
from augment.tabular.schema import (
    ColumnSpec,
    TableSchema,
    category_codes,
    category_value,
    float_block,
    with_columns,
)


@dataclass
class MomentMap:
    """``x -> real_mean + linear (x - made_mean)`` in standardised units over ``columns``, clipped
    to the range of the real rows (all classes): fitted once per class on its first batch of GAN
    rows, then applied to every batch, so a class's rows get one map however many batches."""

    columns: list[ColumnSpec]
    center: np.ndarray
    scale: np.ndarray
    moments: Moments  # in standardised units
    low: np.ndarray
    high: np.ndarray

    def apply(self, rows: pd.DataFrame) -> pd.DataFrame:
        names = [column.name for column in self.columns]
        made = (float_block(rows, names) - self.center) / self.scale
        moved = self.moments.apply(made)
        values = np.clip(moved * self.scale + self.center, self.low, self.high)
        restored = {c.name: c.restore_array(values[:, i]) for i, c in enumerate(self.columns)}
        return with_columns(rows, restored)


class RowSpace:
    """The real training rows of every class, and a distance space over them.

    Example:
        >>> space = RowSpace(frame, schema)                 # frame: features + label column
        >>> rows = space.interpolate("minority", 100, np.random.default_rng(0))
        >>> share = space.neighbour_share(rows, "minority")  # (100,) in [0, 1]
    """

    def __init__(
        self,
        frame: pd.DataFrame,
        schema: TableSchema,
        k_neighbors: int = 5,
        unmeasured: Sequence[str] = (),
    ) -> None:
        self.schema = schema
        self.k_neighbors = k_neighbors
        # columns left out of the distances: a column with gaps (filled with its median) and its
        # flag. They would pile the rows with a gap onto one point, and the neighbour check would
        # then favour generated rows with gaps in a class where gaps are common.
        self.unmeasured = set(unmeasured)
        if set(schema.names) <= self.unmeasured:  # nothing left to measure by: measure it all
            self.unmeasured = set()
        self.features = frame[schema.names].reset_index(drop=True)
        self.labels = frame[schema.label].to_numpy()
        # the scale of the columns the distances measure (embed leaves the others out)
        self.measured = [c for c in schema.continuous if c.name not in self.unmeasured]
        raw = self.features[[c.name for c in self.measured]].to_numpy(dtype=np.float64)
        self.center = raw.mean(axis=0) if len(raw) else np.zeros(len(self.measured))
        scale = raw.std(axis=0) if len(raw) else np.ones(len(self.measured))
        self.scale = np.where(scale > 0, scale, 1.0)
        # the real range of each measured column (all classes): moved GAN rows stay inside it
        self.low = raw.min(axis=0) if len(raw) else np.zeros(len(self.measured))
        self.high = raw.max(axis=0) if len(raw) else np.zeros(len(self.measured))
        self.points = self.embed(self.features)  # (N, D)
        # Partners, the neighbour check (in the whitened space of the training rows: a GAN row
        # that breaks the correlations of the real rows lies far from them there, however near
        # it looks column by column; benchmarks/NOTES.md, KEEL) and the centre check: the engine
        # that image codes share.
        self.vectors = VectorSpace(self.points, self.labels, k_neighbors)
        self._centres: dict[tuple[Any, str], float] = {}
        self._continuous: np.ndarray | None = None  # (N, C) the continuous columns, as float64

    def embed(self, features: pd.DataFrame) -> np.ndarray:
        """(N, D): standardised continuous columns, then one-hot categorical ones x 1/sqrt(2)
        (two one-hot rows that differ are then at distance 1)."""
        blocks = []
        if self.measured:
            raw = float_block(features, [c.name for c in self.measured])
            blocks.append((raw - self.center) / self.scale)
        for column in self.schema.categorical:
            if column.name in self.unmeasured:
                continue
            codes = category_codes(features[column.name], list(column.categories or []))
            onehot = np.zeros((len(features), len(column.categories or [])))
            seen = codes >= 0
            onehot[np.flatnonzero(seen), codes[seen]] = np.sqrt(0.5)
            blocks.append(onehot)
        return np.hstack(blocks) if blocks else np.zeros((len(features), 0))

    def interpolate(self, label: Any, n_rows: int, rng: np.random.Generator) -> pd.DataFrame:
        """Exactly ``n_rows`` feature rows of class ``label`` with the input's dtypes, each drawn
        from a real row of the class (the anchor, uniform; in a class of more than
        :data:`augment.core.vectors.ANCHOR_POOL_ROWS` rows, among a fixed sample of that many) toward a partner at a
        uniform place on the segment between them:

        - for a share :data:`augment.core.vectors.TOWARD_CENTRE` of the rows the partner is the class's centre (the
          mean of each continuous column; categorical values and the columns of a gap stay the
          anchor's), so these rows lie inside the class, never across its border; a class whose
          centre lies among other classes (split in clumps around them) gets none of these;
        - for the others it is one of the anchor's ``k_neighbors`` nearest same-class rows (a
          categorical value is the one of the nearer end), so the rows follow the class's shape.

        Weighting anchors toward the class border, or skipping rows whose neighbours are all of
        other classes, lost balanced accuracy on the KEEL benchmark; the rows toward the centre
        gained it, and logistic regression's AUC (benchmarks/NOTES.md)."""
        if n_rows == 0 or len(self.vectors.members(label)) == 0:
            return self.features.iloc[:0].copy()
        pick = self.vectors.partners(label, n_rows, rng)
        central, t = pick.central, pick.t
        # the continuous columns at once, (n, C), each as the column alone would give it
        continuous = self.schema.continuous
        if self._continuous is None:
            self._continuous = float_block(self.features, [c.name for c in continuous])
        a, b = self._continuous[pick.anchor], self._continuous[pick.partner]
        # a central row ends at the class's centre; a filled gap and its flag stay the anchor's
        centre = np.array(
            [
                np.nan if c.name in self.unmeasured else self._centre(label, c.name)
                for c in continuous
            ]
        )
        measured = np.array([c.name not in self.unmeasured for c in continuous], dtype=bool)
        b = np.where(central[:, None], np.where(measured, centre, a), b)
        values = a + t[:, None] * (b - a)
        columns: dict[str, Any] = {
            c.name: c.restore_array(values[:, i]) for i, c in enumerate(continuous)
        }
        for column in self.schema.categorical:
            # the value of the nearer end; a central row keeps the anchor's
            values = self.features[column.name].to_numpy()
            a, b = values[pick.anchor], values[pick.partner]
            columns[column.name] = column.restore_array(np.where(central | (t < 0.5), a, b))
        columns = {name: columns[name] for name in self.schema.names}
        return pd.DataFrame(columns, index=pd.RangeIndex(n_rows))

    def _centre(self, label: Any, name: str) -> float:
        """The mean of continuous column ``name`` over the real rows of class ``label``."""
        key = (label, name)
        if key not in self._centres:
            members = self.vectors.members(label)
            values = self.features[name].to_numpy(dtype=np.float64)[members]
            self._centres[key] = float(values.mean())
        return self._centres[key]

    def neighbour_share(self, rows: pd.DataFrame, label: Any) -> np.ndarray:
        """(N,) the share of each row's ``k_neighbors`` nearest real training rows that are of
        class ``label``; 0 means the row sits among other classes only."""
        return self.vectors.neighbour_share(self.embed(rows), label)

    def floor_margin(self, rows: pd.DataFrame, label: Any, quantile: float) -> np.ndarray:
        """(N,) how far each row lies beyond the privacy floor of class ``label``: its distance
        to the nearest real training row of the class minus the ``quantile`` of the real rows'
        distances to their nearest other row of the class. Negative: too close (an exact copy
        always is); see :meth:`augment.core.vectors.VectorSpace.floor_margin`."""
        return self.vectors.floor_margin(self.embed(rows), label, quantile)

    def moment_map(self, rows: pd.DataFrame, label: Any) -> MomentMap | None:
        """The map that moves ``rows`` (GAN rows of class ``label``, model's form) to the mean and
        covariance of the class's real rows over the measured continuous columns, in standardised
        units, both covariances shrunk (Ledoit-Wolf) so that a class of a few rows or a collapsed
        GAN still gives a finite map. None when there is nothing to match: no such column, or
        fewer than two real or generated rows."""
        columns = self.measured
        # the measured continuous columns come first in ``points``, standardised
        real = self.points[self.vectors.members(label), : len(columns)]
        made = (float_block(rows, [c.name for c in columns]) - self.center) / self.scale
        moments = moment_match(real, made)
        if moments is None:
            return None
        return MomentMap(columns, self.center, self.scale, moments, self.low, self.high)

    # -- persistence (plain lists, no pickle) ---------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "k_neighbors": self.k_neighbors,
            "unmeasured": sorted(self.unmeasured),
            # numbers as one float64 tensor per column (a job keeps up to generate.reference_rows
            # rows); categories as plain values, a missing one (None, NaN, pd.NA) as None
            "features": {
                column.name: (
                    torch.from_numpy(self.features[column.name].to_numpy(np.float64, copy=True))
                    if column.kind == "continuous"
                    else [category_value(v) for v in self.features[column.name].tolist()]
                )
                for column in self.schema.columns
            },
            "labels": [to_python(v) for v in self.labels.tolist()],
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, Any], schema: TableSchema) -> RowSpace:
        columns = {}
        for column in schema.columns:
            values = state["features"][column.name]
            if isinstance(values, torch.Tensor):
                values = values.numpy()
            columns[column.name] = column.restore_array(values)
        frame = pd.DataFrame(columns, index=pd.RangeIndex(len(state["labels"])))
        frame[schema.label] = state["labels"]
        return cls(frame, schema, state["k_neighbors"], state.get("unmeasured", ()))
