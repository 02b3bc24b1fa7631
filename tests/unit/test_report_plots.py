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
