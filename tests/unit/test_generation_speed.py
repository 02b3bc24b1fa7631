"""The per-batch shortcuts of generation give the numbers the column-by-column code gave."""

from __future__ import annotations

import numpy as np
import pandas as pd

from augment.tabular.schema import ColumnSpec, TableSchema, float_block, with_columns


def _frame(n: int = 500) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "a": rng.normal(0, 100, n),
            "b": rng.uniform(-1, 1, n).astype(np.float32),
            "c": rng.normal(0, 1e6, n),
            "d": pd.array(rng.integers(0, 9, n), dtype="Int64"),
            "e": rng.normal(size=n),
        }
    )


def test_round_to_input_rounds_as_series_round_column_by_column():
    frame = _frame()
    decimals = {"a": 2, "b": 1, "c": -2, "d": 0, "e": None}
    schema = TableSchema(
        label="y",
        label_dtype="int64",
        classes=[0, 1],
        columns=[
            ColumnSpec(name, "continuous", str(frame[name].dtype), decimals=d)
            for name, d in decimals.items()
        ],
    )
    expected = frame.copy()
    for name, d in decimals.items():
        if d is not None:
            expected[name] = expected[name].round(d)
    rounded = schema.round_to_input(frame.copy())
    pd.testing.assert_frame_equal(rounded, expected, check_exact=True)
    # all float64 (one block, as decoding builds it): the same numbers
    floats = frame[["a", "c", "e"]].copy()
    block = schema.round_to_input(floats.copy())
    pd.testing.assert_frame_equal(block, expected[["a", "c", "e"]], check_exact=True)


def test_float_block_and_with_columns_keep_order_and_dtypes():
    frame = _frame()
    block = float_block(frame, ["e", "a", "d"])
    assert np.array_equal(block, frame[["e", "a", "d"]].to_numpy(np.float64))
    floats = frame[["a", "c", "e"]]
    assert np.array_equal(float_block(floats, ["e", "a"]), floats[["e", "a"]].to_numpy())
    assert float_block(frame, []).shape == (len(frame), 0)
    replaced = with_columns(frame, {"c": np.zeros(len(frame))})
    assert list(replaced.columns) == list(frame.columns)
    assert (replaced["c"] == 0).all() and replaced["d"].dtype == "Int64"
    pd.testing.assert_series_equal(replaced["a"], frame["a"])
