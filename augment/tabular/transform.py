"""The tabular encoder: rows <-> the vector a GAN generates, kept apart from the model.

Continuous columns have two transforms:

- ``gmm`` (the default), mode-specific normalisation: a Gaussian mixture per column, fitted for all
  columns at once by a vectorised EM (one array op per iteration for the whole table, where CTGAN
  fits one scikit-learn BayesianGaussianMixture per column). A value becomes
  ``[alpha, one-hot(mode)]`` with ``alpha = (x - mu_mode) / (4 sigma_mode)`` in [-1, 1].
- ``quantile``: scikit-learn's QuantileTransformer to a standard normal, one number per column.
  The vector is 7x narrower, so a step costs half as much, but on the benchmark tables the
  downstream scores were lower and less stable across seeds than with ``gmm`` (README,
  "Benchmarks"); it stays as an option for wide tables where speed matters most.

Categorical columns become one-hot. The model talks to the encoder only through ``spans``:
``(dim, "tanh" | "linear" | "softmax")`` per block.

The encoder is deterministic (quantile initialisation, arg-max modes): no seed needed, and the
same input always gives the same encoding. Its state is plain arrays and lists, so saving never
needs pickle.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.preprocessing import QuantileTransformer

from augment.core.cgan import Span
from augment.tabular.schema import TableSchema, category_codes

_VAR_FLOOR = 1e-4  # in standardised units: keeps a constant column or a spike mode finite
_MIN_WEIGHT = 5e-3  # mixture components lighter than this are pruned after EM


def fit_mixtures(
    values: np.ndarray, max_modes: int, iterations: int = 60
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit one 1-D Gaussian mixture per column, all columns at once.

    Args:
        values: (N, C) standardised values.
        max_modes: K, components per column before pruning.

    Returns:
        means (C, K), stds (C, K), weights (C, K); pruned components have weight 0.
    """
    n_rows, n_cols = values.shape
    k = max(1, min(max_modes, n_rows))
    # Deterministic start: component means at evenly spaced quantiles of each column.
    quantiles = (np.arange(k) + 0.5) / k
    means = np.quantile(values, quantiles, axis=0).T  # (C, K)
    variances = np.full((n_cols, k), max(1.0 / k**2, _VAR_FLOOR))
    weights = np.full((n_cols, k), 1.0 / k)
    x = values.T[:, :, None]  # (C, N, 1)
    for _ in range(iterations):
        # E step: log responsibilities, (C, N, K)
        log_prob = (
            -0.5 * (x - means[:, None, :]) ** 2 / variances[:, None, :]
            - 0.5 * np.log(2 * np.pi * variances[:, None, :])
            + np.log(np.maximum(weights[:, None, :], 1e-300))
        )
        log_prob -= log_prob.max(axis=2, keepdims=True)
        resp = np.exp(log_prob)
        resp /= resp.sum(axis=2, keepdims=True)
        # M step
        mass = resp.sum(axis=1) + 1e-12  # (C, K)
        weights = mass / n_rows
        means = (resp * x).sum(axis=1) / mass
        variances = (resp * (x - means[:, None, :]) ** 2).sum(axis=1) / mass
        variances = np.maximum(variances, _VAR_FLOOR)
    weights = np.where(weights >= _MIN_WEIGHT, weights, 0.0)
    weights /= weights.sum(axis=1, keepdims=True)
    return means, np.sqrt(variances), weights


class TabularEncoder:
    """Fit on a frame of feature columns; transform rows to float32 vectors and back.

    Example:
        >>> encoder = TabularEncoder(max_modes=6).fit(frame, schema)
        >>> encoded = encoder.transform(frame)          # (N, encoder.output_dim)
        >>> restored = encoder.inverse_transform(encoded)
    """

    def __init__(
        self, max_modes: int = 6, clip_to_range: bool = True, continuous: str = "gmm"
    ) -> None:
        if continuous not in ("gmm", "quantile"):
            raise ValueError(f"continuous transform must be gmm or quantile, not {continuous!r}")
        self.max_modes = max_modes
        self.clip_to_range = clip_to_range
        self.continuous = continuous

    # -- fitting ------------------------------------------------------------------------------
    def fit(self, frame: pd.DataFrame, schema: TableSchema) -> TabularEncoder:
        self.schema = schema
        continuous = [c.name for c in schema.continuous]
        self.categories = {c.name: list(c.categories or []) for c in schema.categorical}
        if continuous:
            raw = frame[continuous].to_numpy(dtype=np.float64)
            self.center = raw.mean(axis=0)
            scale = raw.std(axis=0)
            self.scale = np.where(scale > 0, scale, 1.0)
            if self.continuous == "gmm":
                means, stds, weights = fit_mixtures(
                    (raw - self.center) / self.scale, self.max_modes
                )
            else:
                means = stds = weights = np.zeros((len(continuous), 1))
                self.quantiles = QuantileTransformer(
                    n_quantiles=min(1000, len(raw)), output_distribution="normal", subsample=None
                ).fit(raw)
        else:
            self.center = self.scale = np.zeros(0)
            means = stds = weights = np.zeros((0, 1))
        self.mode_means, self.mode_stds, self.mode_weights = means, stds, weights
        self._build_layout()
        return self

    def _build_layout(self) -> None:
        # Column order of the encoded vector follows the schema's column order.
        self.active_modes = [np.flatnonzero(w > 0) for w in self.mode_weights]
        spans: list[Span] = []
        continuous_index = 0
        for column in self.schema.columns:
            if column.kind == "continuous" and self.continuous == "quantile":
                spans.append(Span(1, "linear"))
            elif column.kind == "continuous":
                spans.append(Span(1, "tanh"))
                spans.append(Span(len(self.active_modes[continuous_index]), "softmax"))
                continuous_index += 1
            else:
                spans.append(Span(len(self.categories[column.name]), "softmax"))
        self.spans = spans
        self.output_dim = sum(span.dim for span in spans)
        # each continuous column's seen range (None: unbounded), for clip_to_range
        bounds = [(c.minimum, c.maximum) for c in self.schema.continuous]
        self._low = np.array([-np.inf if low is None else low for low, _ in bounds], dtype=float)
        self._high = np.array([np.inf if high is None else high for _, high in bounds], dtype=float)
        self._build_gmm_decoder()
        self._build_span_index()

    def _build_span_index(self) -> None:
        # ``_span_of[i]``: the softmax span of schema column i, counted among softmax spans only
        # (a continuous column's modes, a categorical column's levels; -1 for a quantile
        # column), to read a column's code from the winners that hard sampling gives.
        span_of, next_span = [], 0
        for column in self.schema.columns:
            has_span = column.kind != "continuous" or self.continuous == "gmm"
            span_of.append(next_span if has_span else -1)
            next_span += has_span
        self._span_of = np.asarray(span_of, dtype=np.intp)
        continuous = [column.kind == "continuous" for column in self.schema.columns]
        self._mode_span = self._span_of[np.asarray(continuous, dtype=bool)]

    def _build_gmm_decoder(self) -> None:
        # Decoding all mode-normalized columns at once: for column c, the encoded positions of
        # its alpha and of its modes (padded to the widest; padding points at the alpha and is
        # masked), and its modes' means and stds. One gather and one argmax then replace a
        # dozen NumPy calls per column.
        offsets = [
            start
            for column, start in zip(self.schema.columns, self._column_offsets(), strict=True)
            if column.kind == "continuous"
        ]
        if self.continuous != "gmm" or not offsets:
            self._gmm = None
            return
        width = max(len(active) for active in self.active_modes)
        n_columns = len(offsets)
        alpha = np.asarray(offsets, dtype=np.intp)
        modes = np.repeat(alpha[:, None], width, axis=1)
        padding = np.ones((n_columns, width), dtype=bool)
        means = np.zeros((n_columns, width))
        stds = np.zeros((n_columns, width))
        for i, active in enumerate(self.active_modes):
            k = len(active)
            modes[i, :k] = alpha[i] + 1 + np.arange(k)
            padding[i, :k] = False
            means[i, :k] = self.mode_means[i, active]
            stds[i, :k] = self.mode_stds[i, active]
        self._gmm = {
            "alpha": alpha,
            "modes": modes,
            "padding": padding,
            "means": means,
            "stds": stds,
            # for np.take on the flattened tables; 4 * std is exact in binary floating point
            "row_start": np.arange(n_columns)[None, :] * width,
            "stds4": 4 * stds,
        }

    def _decode_gmm(self, encoded: np.ndarray, mode: np.ndarray | None = None) -> np.ndarray:
        """(N, output_dim) -> (N, C) values of the mode-normalized columns, in schema order.
        ``mode`` (N, C): each column's mode when already known (one-hot input)."""
        gmm = self._gmm
        if mode is None:
            scores = encoded[:, gmm["modes"]].astype(np.float64)  # (N, C, K)
            scores[:, gmm["padding"]] = -np.inf
            mode = scores.argmax(axis=2)  # the first maximum, as the per-column argmax gave
        # each column's mode as a place in the flattened (C, K) tables: np.take is ~4x faster
        # than indexing with two arrays, and reads the same numbers
        place = mode + gmm["row_start"]  # (N, C)
        # float32 to float64 is exact: clipping either way gives the same numbers
        alpha = np.clip(encoded[:, gmm["alpha"]].astype(np.float64), -1.0, 1.0)
        x = np.take(gmm["means"], place) + np.take(gmm["stds4"], place) * alpha
        x *= self.scale
        x += self.center
        return x

    # -- encoding -----------------------------------------------------------------------------
    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Rows -> (N, output_dim) float32. Unseen categories encode as all zeros."""
        n_rows = len(frame)
        blocks: list[np.ndarray] = []
        continuous_index = 0
        # With no continuous column there is no fitted QuantileTransformer to call.
        quantile = self.continuous == "quantile" and bool(self.schema.continuous)
        gaussian = self._to_gaussian(frame) if quantile else None
        for column in self.schema.columns:
            if column.kind == "continuous" and gaussian is not None:
                blocks.append(gaussian[:, [continuous_index]])
                continuous_index += 1
            elif column.kind == "continuous":
                i = continuous_index
                continuous_index += 1
                active = self.active_modes[i]
                x = (frame[column.name].to_numpy(dtype=np.float64) - self.center[i]) / self.scale[i]
                mu, sd = self.mode_means[i, active], self.mode_stds[i, active]
                log_w = np.log(self.mode_weights[i, active])
                # (N, K_active) posterior log-density; arg-max picks the mode deterministically.
                score = -0.5 * ((x[:, None] - mu) / sd) ** 2 - np.log(sd) + log_w
                mode = score.argmax(axis=1)
                alpha = np.clip((x - mu[mode]) / (4 * sd[mode]), -1.0, 1.0)
                onehot = np.zeros((n_rows, len(active)))
                onehot[np.arange(n_rows), mode] = 1.0
                blocks += [alpha[:, None], onehot]
            else:
                categories = self.categories[column.name]
                codes = category_codes(frame[column.name], categories)
                onehot = np.zeros((n_rows, len(categories)))
                seen = codes >= 0
                onehot[np.flatnonzero(seen), codes[seen]] = 1.0
                blocks.append(onehot)
        return np.concatenate(blocks, axis=1).astype(np.float32)

    def inverse_transform(
        self, encoded: np.ndarray, codes: np.ndarray | None = None
    ) -> pd.DataFrame:
        """(N, output_dim) -> rows with the input's column names, dtypes and category sets.

        ``codes`` (N, softmax spans): the winner of every softmax span, in span order, when the
        caller already knows them (hard sampling draws them); they replace an argmax per span
        and give the same rows.
        """
        # float32 as sampled: every column read below is made float64 first (exactly), so
        # the whole (N, output_dim) matrix is never copied
        encoded = np.asarray(encoded)
        # Arrays, not Series: one DataFrame at the end costs far less than a Series and an
        # astype per column (generation decodes millions of rows through here).
        columns: dict[str, Any] = {}
        offset = 0
        continuous_index = 0
        decoded = None  # (N, C): every continuous column, decoded in one pass
        if self.schema.continuous:
            quantile = self.continuous == "quantile"
            if quantile:
                decoded = self._from_gaussian(encoded)
            else:
                mode = None if codes is None else codes[:, self._mode_span]
                decoded = self._decode_gmm(encoded, mode)
            if self.clip_to_range:  # all columns at once: the same numbers as one by one
                decoded = np.clip(decoded, self._low, self._high)
        for position, column in enumerate(self.schema.columns):
            if column.kind == "continuous":
                values = decoded[:, continuous_index]
                offset += (
                    1
                    if self.continuous == "quantile"
                    else 1 + len(self.active_modes[continuous_index])
                )
                continuous_index += 1
            else:
                categories = self.categories[column.name]
                if codes is None:
                    level = encoded[:, offset : offset + len(categories)].argmax(axis=1)
                else:
                    level = codes[:, self._span_of[position]]
                offset += len(categories)
                lookup = np.empty(len(categories), dtype=object)
                lookup[:] = categories
                columns[column.name] = column.restore_array(lookup[level])
                continue
            columns[column.name] = column.restore_array(values)
        return pd.DataFrame(columns, index=pd.RangeIndex(len(encoded)))

    def _continuous_offsets(self) -> list[int]:
        starts = zip(self.schema.columns, self._column_offsets(), strict=True)
        return [start for column, start in starts if column.kind == "continuous"]

    def _column_offsets(self) -> list[int]:
        # Offset of each schema column's first span in the encoded vector.
        offsets, offset, spans = [], 0, iter(self.spans)
        for column in self.schema.columns:
            offsets.append(offset)
            n_spans = 2 if column.kind == "continuous" and self.continuous == "gmm" else 1
            for _ in range(n_spans):
                offset += next(spans).dim
        return offsets

    def _to_gaussian(self, frame: pd.DataFrame) -> np.ndarray:
        raw = frame[[c.name for c in self.schema.continuous]].to_numpy(dtype=np.float64)
        return self.quantiles.transform(raw)  # (N, C), standard normal marginals

    def _from_gaussian(self, encoded: np.ndarray) -> np.ndarray:
        z = encoded[:, self._continuous_offsets()].astype(np.float64)
        return self.quantiles.inverse_transform(z)  # (N, C), within the seen range

    # -- persistence (plain data, no pickle) --------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        quantiles = getattr(self, "quantiles", None)
        return {
            "max_modes": self.max_modes,
            "clip_to_range": self.clip_to_range,
            "continuous": self.continuous,
            "quantiles": None if quantiles is None else quantiles.quantiles_.tolist(),
            "references": None if quantiles is None else quantiles.references_.tolist(),
            "schema": self.schema.to_dict(),
            "center": self.center.tolist(),
            "scale": self.scale.tolist(),
            "mode_means": self.mode_means.tolist(),
            "mode_stds": self.mode_stds.tolist(),
            "mode_weights": self.mode_weights.tolist(),
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> TabularEncoder:
        encoder = cls(
            max_modes=state["max_modes"],
            clip_to_range=state["clip_to_range"],
            continuous=state["continuous"],
        )
        if state["quantiles"] is not None:
            encoder.quantiles = _rebuild_quantile_transformer(
                np.asarray(state["quantiles"]), np.asarray(state["references"])
            )
        encoder.schema = TableSchema.from_dict(state["schema"])
        encoder.categories = {c.name: list(c.categories or []) for c in encoder.schema.categorical}
        encoder.center = np.asarray(state["center"], dtype=np.float64)
        encoder.scale = np.asarray(state["scale"], dtype=np.float64)
        n_cont = len(encoder.schema.continuous)
        encoder.mode_means = np.asarray(state["mode_means"], dtype=np.float64).reshape(n_cont, -1)
        encoder.mode_stds = np.asarray(state["mode_stds"], dtype=np.float64).reshape(n_cont, -1)
        encoder.mode_weights = np.asarray(state["mode_weights"], dtype=np.float64).reshape(
            n_cont, -1
        )
        encoder._build_layout()
        return encoder


def _rebuild_quantile_transformer(
    quantiles: np.ndarray, references: np.ndarray
) -> QuantileTransformer:
    """A fitted QuantileTransformer from its learned arrays (saved as plain lists, not pickle)."""
    transformer = QuantileTransformer(
        n_quantiles=len(references), output_distribution="normal", subsample=None
    )
    transformer.quantiles_ = quantiles
    transformer.references_ = references
    transformer.n_quantiles_ = len(references)
    transformer.n_features_in_ = quantiles.shape[1]
    return transformer
