"""The figures a job logs to MLflow, built apart from the logging (see :mod:`.tracker`).

Each function returns a matplotlib :class:`~matplotlib.figure.Figure` (or figures) built without
pyplot: no display is needed, the caller's backend is left alone, and there is no global figure
list to close from worker threads.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from augment.core.modality import FeatureComparison

REAL_COLOR = "#4c72b0"
SYNTHETIC_COLOR = "#dd8452"


def class_histograms(before: Mapping[Any, int], after: Mapping[Any, int]) -> Figure:
    """Rows per class before and after balancing, as grouped bars."""
    classes = list(before) + [c for c in after if c not in before]
    x = np.arange(len(classes))
    width = 0.4
    figure = Figure(figsize=(max(4.0, 0.9 * len(classes) + 2), 4), layout="constrained")
    axes = figure.add_subplot()
    for offset, (name, counts) in zip(
        (-width / 2, width / 2), (("before", before), ("after", after)), strict=True
    ):
        heights = [counts.get(c, 0) for c in classes]
        bars = axes.bar(x + offset, heights, width, label=name)
        axes.bar_label(bars, fontsize=8)
    axes.set_xticks(x, [str(c) for c in classes], rotation=45 if len(classes) > 6 else 0)
    axes.set_xlabel("class")
    axes.set_ylabel("rows")
    axes.set_title("Rows per class before and after balancing")
    axes.legend()
    return figure


def image_grid(images_by_class: Mapping[Any, np.ndarray], title: str = "") -> Figure | None:
    """A row of images per class, labelled with the class; None when there is no image.

    ``images_by_class``: class -> uint8 ``(n, H, W, C)`` images; rows shorter than the longest
    are padded with blank tiles.
    """
    rows = _image_rows(images_by_class)
    if not rows:
        return None
    _, height, width, _ = rows[0][1].shape
    columns = max(len(images) for _, images in rows)
    scale = 0.25 if height <= 16 else 0.5  # inches per tile row
    pad = _TILE_PAD
    figure = Figure(
        figsize=(
            max(3.0, columns * (width + pad) / (height + pad) * scale + 1.2),
            max(2.0, len(rows) * scale + 0.6),
        ),
        layout="constrained",
    )
    axes = figure.add_subplot()
    _draw_tiles(axes, rows, columns)
    axes.set_ylabel("class")
    if title:
        axes.set_title(title, fontsize=9)
    return figure


def real_vs_synthetic_grid(
    pairs: Mapping[Any, tuple[np.ndarray, np.ndarray]],
) -> Figure | None:
    """Real images (left) beside synthetic ones (right), a row per class; None without images.

    ``pairs``: class -> (real, synthetic), each uint8 ``(n, H, W, C)``.
    """
    real = _image_rows({c: real for c, (real, _) in pairs.items()})
    synthetic = _image_rows({c: fake for c, (_, fake) in pairs.items()})
    if not real or not synthetic:
        return None
    _, height, width, _ = real[0][1].shape
    columns = max(len(images) for _, images in real + synthetic)
    scale = 0.25 if height <= 16 else 0.4  # inches per tile row
    side = columns * (width + _TILE_PAD) / (height + _TILE_PAD) * scale
    figure = Figure(
        figsize=(2 * side + 1.6, max(2.0, max(len(real), len(synthetic)) * scale + 0.6)),
        layout="constrained",
    )
    for position, (rows, title) in enumerate(((real, "real"), (synthetic, "synthetic")), 1):
        axes = figure.add_subplot(1, 2, position)
        _draw_tiles(axes, rows, columns)
        axes.set_title(title, fontsize=10)
    return figure


_TILE_PAD = 1  # white pixels between tiles


def _image_rows(images_by_class: Mapping[Any, np.ndarray]) -> list[tuple[str, np.ndarray]]:
    rows = [(str(label), np.asarray(images)) for label, images in images_by_class.items()]
    return [(label, images) for label, images in rows if len(images)]


def _draw_tiles(axes: Axes, rows: list[tuple[str, np.ndarray]], columns: int) -> None:
    """Draw one row of tiles per ``(class name, (n, H, W, C) uint8)`` on ``axes``."""
    _, height, width, channels = rows[0][1].shape
    pad = _TILE_PAD
    canvas = np.full(
        (len(rows) * (height + pad), columns * (width + pad), channels), 255, dtype=np.uint8
    )
    for r, (_, images) in enumerate(rows):
        for c, image in enumerate(images[:columns]):
            top, left = r * (height + pad), c * (width + pad)
            canvas[top : top + height, left : left + width] = image
    shown = canvas[:, :, 0] if channels == 1 else canvas
    axes.imshow(shown, cmap="gray" if channels == 1 else None, vmin=0, vmax=255)
    axes.set_yticks(
        [r * (height + pad) + height / 2 for r in range(len(rows))], [n for n, _ in rows]
    )
    axes.set_xticks([])


def feature_distributions(features: Sequence[FeatureComparison], columns: int = 3) -> Figure:
    """Real vs synthetic values of each feature: histograms for numbers, bars for categories.

    Each panel's title gives the feature and its distance (KS statistic or total variation); the
    real values are weighted by ``real_weights`` when given.
    """
    columns = max(1, min(columns, len(features)))
    rows = max(1, -(-len(features) // columns))
    height = 2.4 * rows + 0.4
    # fixed margins: the constrained layout doubles the drawing time of a dozen panels
    figure = Figure(figsize=(3.4 * columns, height))
    figure.subplots_adjust(
        left=0.04, right=0.99, bottom=0.5 / height, top=1 - 0.35 / height, wspace=0.15, hspace=0.55
    )
    for index, feature in enumerate(features):
        axes = figure.add_subplot(rows, columns, index + 1)
        if feature.categorical:
            _category_bars(axes, feature)
            measure = "TV"
        else:
            _histograms(axes, feature)
            measure = "KS"
        axes.set_title(f"{feature.name}  ({measure} {feature.distance:.2f})", fontsize=9)
        axes.tick_params(labelsize=7)
        if index == 0:
            axes.legend(fontsize=7)
    return figure


def _histograms(axes: Axes, feature: FeatureComparison) -> None:
    real = np.asarray(feature.real, dtype=np.float64)
    synthetic = np.asarray(feature.synthetic, dtype=np.float64)
    both = np.concatenate([real, synthetic])
    both = both[np.isfinite(both)]
    edges = np.histogram_bin_edges(both, bins=30) if len(both) else 10
    axes.hist(
        real,
        bins=edges,
        weights=feature.real_weights,
        density=True,
        histtype="stepfilled",
        alpha=0.45,
        color=REAL_COLOR,
        label="real",
    )
    axes.hist(
        synthetic,
        bins=edges,
        density=True,
        histtype="step",
        linewidth=1.5,
        color=SYNTHETIC_COLOR,
        label="synthetic",
    )
    axes.set_yticks([])
    if feature.origin is not None:  # seconds since the origin, labelled as the dates they are
        origin = pd.Timestamp(feature.origin)
        axes.xaxis.set_major_locator(MaxNLocator(4))
        axes.xaxis.set_major_formatter(
            FuncFormatter(lambda seconds, _: f"{origin + pd.Timedelta(seconds=seconds):%Y-%m-%d}")
        )


def _category_bars(axes: Axes, feature: FeatureComparison, most: int = 10) -> None:
    real = _shares(feature.real, feature.real_weights)
    synthetic = _shares(feature.synthetic, None)
    categories = list(real.add(synthetic, fill_value=0).sort_values(ascending=False).index)
    if len(categories) > most:  # the rest as one bar
        shown = categories[: most - 1]
        real = _fold_other(real, shown)
        synthetic = _fold_other(synthetic, shown)
        categories = [*shown, "(other)"]
    x = np.arange(len(categories))
    width = 0.4
    for offset, shares, name, color in (
        (-width / 2, real, "real", REAL_COLOR),
        (width / 2, synthetic, "synthetic", SYNTHETIC_COLOR),
    ):
        heights = [float(shares.get(c, 0.0)) for c in categories]
        axes.bar(x + offset, heights, width, label=name, color=color)
    axes.set_xticks(x, categories, rotation=45 if len(categories) > 4 else 0, ha="right")
    axes.set_ylabel("share", fontsize=7)


#: the bar of the missing values of a category, whichever missing value they hold
MISSING_BAR = "(missing)"


def _shares(values: np.ndarray, weights: np.ndarray | None) -> pd.Series:
    """Category (as text) -> share of the (weighted) values; None, NaN, pd.NA and NaT are one
    category, :data:`MISSING_BAR` (real rows read from a CSV hold NaN where generated ones hold
    None: one missing category, not two bars)."""
    missing = pd.isna(pd.Series(values, dtype=object)).to_numpy()
    mass = pd.Series(
        np.ones(len(values)) if weights is None else np.asarray(weights, dtype=np.float64),
        index=[MISSING_BAR if gap else str(v) for v, gap in zip(values, missing, strict=True)],
    )
    totals = mass.groupby(level=0).sum()
    return totals / totals.sum() if totals.sum() > 0 else totals


def _fold_other(shares: pd.Series, shown: list[str]) -> pd.Series:
    kept = shares.reindex(shown, fill_value=0.0)
    kept["(other)"] = float(shares.drop(shown, errors="ignore").sum())
    return kept


def correlation_difference(columns: Sequence[str], difference: np.ndarray) -> Figure:
    """Heat map of a correlation difference (synthetic - real), from -1 (blue) to +1 (red).

    Cells beyond +-1 show at the end of the scale; NaN cells (a constant column) stay blank.
    """
    names = [str(c) for c in columns]
    side = max(4.0, 0.22 * len(names) + 2.5)
    figure = Figure(figsize=(side + 1.0, side), layout="constrained")
    axes = figure.add_subplot()
    image = axes.imshow(np.asarray(difference, dtype=np.float64), cmap="RdBu_r", vmin=-1, vmax=1)
    figure.colorbar(image, ax=axes, shrink=0.8, label="correlation: synthetic - real")
    font = 7 if len(names) > 12 else 8
    axes.set_xticks(range(len(names)), names, rotation=90, fontsize=font)
    axes.set_yticks(range(len(names)), names, fontsize=font)
    return figure


def confusion_matrices(
    confusion: Mapping[str, np.ndarray], classes: Sequence[Any]
) -> Iterator[tuple[str, Figure]]:
    """``(key, figure)``: each confusion matrix as an annotated heat map.

    Raises:
        ValueError: a matrix is not ``len(classes)`` x ``len(classes)``.
    """
    names = [str(c) for c in classes]
    for key, matrix in confusion.items():
        counts = _square(key, matrix, names)
        side = max(3.5, 0.6 * len(names) + 2.5)
        figure = Figure(figsize=(side, side), layout="constrained")
        axes = figure.add_subplot()
        image = _draw_confusion(axes, counts, names)
        figure.colorbar(image, ax=axes, shrink=0.8)
        axes.set_title(str(key))
        yield key, figure


def confusion_grid(
    confusion: Mapping[str, np.ndarray],
    classes: Sequence[Any],
    arm_titles: Mapping[str, str] | None = None,
) -> Figure:
    """Every ``"<arm>/<classifier>"`` confusion matrix in one figure: a column per arm (titled
    by ``arm_titles``), a row per classifier. Colours scale per matrix; the counts are written.

    Raises:
        ValueError: a matrix is not ``len(classes)`` x ``len(classes)``.
    """
    names = [str(c) for c in classes]
    cells = {tuple(key.partition("/")[::2]): _square(key, m, names) for key, m in confusion.items()}
    arms = list(dict.fromkeys(arm for arm, _ in cells))
    classifiers = list(dict.fromkeys(name for _, name in cells))
    side = max(2.6, 0.45 * len(names) + 1.6)
    figure = Figure(figsize=(side * len(arms), side * len(classifiers) + 0.3), layout="constrained")
    for (arm, name), counts in cells.items():
        axes = figure.add_subplot(
            len(classifiers), len(arms), classifiers.index(name) * len(arms) + arms.index(arm) + 1
        )
        _draw_confusion(axes, counts, names)
        # wrapped to the column's width (about ten characters an inch at 9 pt): a long arm
        # title ("real + synthetic images, albumentations on the fly") would run off the page
        title = (arm_titles or {}).get(arm, arm)
        axes.set_title(textwrap.fill(title, width=max(12, int(side * 10))), fontsize=9)
        axes.set_ylabel(f"true ({name})" if name else "true")
    return figure


def _square(key: str, matrix: np.ndarray, names: list[str]) -> np.ndarray:
    counts = np.asarray(matrix)
    if counts.shape != (len(names), len(names)):
        raise ValueError(
            f"Confusion matrix {key!r} has shape {counts.shape}, expected "
            f"{(len(names), len(names))} for classes {names}."
        )
    return counts


def _draw_confusion(axes: Axes, counts: np.ndarray, names: list[str]) -> Any:
    """An annotated heat map of ``counts`` (rows true, columns predicted); returns the image."""
    image = axes.imshow(counts, cmap="Blues")
    # Dark text on light cells, light text on dark ones.
    threshold = counts.max() / 2 if counts.size else 0
    for (row, col), value in np.ndenumerate(counts):
        axes.text(
            col,
            row,
            f"{value:g}",
            ha="center",
            va="center",
            color="white" if value > threshold else "black",
            fontsize=8,
        )
    axes.set_xticks(range(len(names)), names, rotation=45 if len(names) > 6 else 0)
    axes.set_yticks(range(len(names)), names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    return image
