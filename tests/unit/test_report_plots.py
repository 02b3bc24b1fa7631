"""The report's per-feature plots and distances say what the data says (issue 32 items 6, 8)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from augment.core.modality import FeatureComparison
from augment.tabular.fidelity import marginal_distances
from augment.tabular.schema import ColumnSpec, TableSchema
from augment.tracking.plots import feature_distributions


def test_missing_values_of_a_category_are_one_bar_and_no_distance():
    """Real rows read from a CSV hold NaN where generated rows hold None (and a nullable column
    pd.NA): one missing category, the same share on both sides, total variation 0."""
    real = np.array([True, False, np.nan, np.nan], dtype=object)
    synthetic = np.array([True, None, False, pd.NA], dtype=object)
    schema = TableSchema(
        "y", "int64", [0, 1], [ColumnSpec("vip", "categorical", "object", [False, True, None])]
    )
    distance = marginal_distances(
        pd.DataFrame({"vip": real}), np.ones(4), pd.DataFrame({"vip": synthetic}), schema
    )
    assert distance == [0.0]
    figure = feature_distributions([FeatureComparison("vip", True, real, synthetic, 0.0)])
    labels = [tick.get_text() for tick in figure.axes[0].get_xticklabels()]
    assert sorted(labels) == ["(missing)", "False", "True"]


def test_every_confusion_title_fits_in_the_figure():
    """Issue 32 item 8: the last column's long arm title ran off the figure."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from augment.tracking.plots import confusion_grid

    arms = {
        "baseline": "real images only",
        "augmented": "real + synthetic images",
        "classic": "real images, albumentations on the fly",
        "stacked": "real + synthetic images, albumentations on the fly",
    }
    matrix = np.array([[5, 1], [2, 4]])
    figure = confusion_grid({f"{arm}/cnn": matrix for arm in arms}, ["0", "1"], arms)
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    page = figure.bbox
    for axes in figure.axes:
        box = axes.title.get_window_extent(canvas.get_renderer())
        assert page.x0 <= box.x0 and box.x1 <= page.x1, axes.title.get_text()
    assert "albumentations" in " ".join(axes.title.get_text() for axes in figure.axes)


def test_a_date_histogram_is_labelled_with_dates():
    """Issue 32 item 8: a datetime feature (seconds since its earliest value for the model)
    showed raw seconds on its axis."""
    import re

    from matplotlib.backends.backend_agg import FigureCanvasAgg

    seconds = np.arange(0, 400 * 86_400, 86_400, dtype=np.float64)
    feature = FeatureComparison("signup", False, seconds, seconds[::2], 0.1, origin="2022-01-01")
    figure = feature_distributions([feature])
    FigureCanvasAgg(figure).draw()
    labels = [tick.get_text() for tick in figure.axes[0].get_xticklabels() if tick.get_text()]
    assert labels and all(re.fullmatch(r"20\d\d-\d\d-\d\d", label) for label in labels), labels
