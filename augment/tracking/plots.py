"""The figures a job logs to MLflow, built apart from the logging (see :mod:`.tracker`).

Each function returns a matplotlib :class:`~matplotlib.figure.Figure` (or figures) built without
pyplot: no display is needed, the caller's backend is left alone, and there is no global figure
list to close from worker threads.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure


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
    rows = [(str(label), np.asarray(images)) for label, images in images_by_class.items()]
    rows = [(label, images) for label, images in rows if len(images)]
    if not rows:
        return None
    _, height, width, channels = rows[0][1].shape
    columns = max(len(images) for _, images in rows)
    pad = 1
    canvas = np.full(
        (len(rows) * (height + pad), columns * (width + pad), channels), 255, dtype=np.uint8
    )
    for r, (_, images) in enumerate(rows):
        for c, image in enumerate(images):
            top, left = r * (height + pad), c * (width + pad)
            canvas[top : top + height, left : left + width] = image
    scale = 0.25 if height <= 16 else 0.5  # inches per tile row
    figure = Figure(
        figsize=(
            max(3.0, columns * (width + pad) / (height + pad) * scale + 1.2),
            max(2.0, len(rows) * scale + 0.6),
        ),
        layout="constrained",
    )
    axes = figure.add_subplot()
    shown = canvas[:, :, 0] if channels == 1 else canvas
    axes.imshow(shown, cmap="gray" if channels == 1 else None, vmin=0, vmax=255)
    axes.set_yticks(
        [r * (height + pad) + height / 2 for r in range(len(rows))], [n for n, _ in rows]
    )
    axes.set_xticks([])
    axes.set_ylabel("class")
    if title:
        axes.set_title(title, fontsize=9)
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
        counts = np.asarray(matrix)
        if counts.shape != (len(names), len(names)):
            raise ValueError(
                f"Confusion matrix {key!r} has shape {counts.shape}, expected "
                f"{(len(names), len(names))} for classes {names}."
            )
        side = max(3.5, 0.6 * len(names) + 2.5)
        figure = Figure(figsize=(side, side), layout="constrained")
        axes = figure.add_subplot()
        image = axes.imshow(counts, cmap="Blues")
        figure.colorbar(image, ax=axes, shrink=0.8)
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
        axes.set_title(str(key))
        yield key, figure
