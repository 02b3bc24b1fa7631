import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from augment.core.errors import DataError
from augment.tabular.schema import infer_schema
from augment.tabular.sources import handle_missing, load_table


@pytest.mark.parametrize(("name", "classes"), [("breast_cancer", 2), ("wine", 3)])
def test_builtin_sources(name, classes):
    frame = load_table(f"sklearn:{name}", "target")
    assert frame["target"].nunique() == classes
    assert frame["target"].dtype.kind in "OT" or str(frame["target"].dtype) == "str"


def test_parquet_file_and_directory(tmp_path, mixed_frame):
    file = tmp_path / "one.parquet"
    mixed_frame.to_parquet(file)
    from_file = load_table(str(file), "label")
    assert len(from_file) == len(mixed_frame)
    assert list(from_file.columns) == list(mixed_frame.columns)

    folder = tmp_path / "parts"
    folder.mkdir()
    pq.write_table(pa.Table.from_pandas(mixed_frame.iloc[:60]), folder / "a.parquet")
    pq.write_table(pa.Table.from_pandas(mixed_frame.iloc[60:]), folder / "b.parquet")
    from_dir = load_table(str(folder), "label")
    assert len(from_dir) == len(mixed_frame)


def test_csv(tmp_path, mixed_frame):
    path = tmp_path / "t.csv"
    mixed_frame.to_csv(path, index=False)
    frame = load_table(str(path), "label")
    assert frame.shape == mixed_frame.shape


def test_ragged_csv_names_the_file(tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text("a,b,label\n1,2,x\n1,2,3,4\n")
    with pytest.raises(DataError, match="ragged.csv"):
        load_table(str(path), "label")


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_table(str(tmp_path / "nope.parquet"), "label")
    corrupt = tmp_path / "corrupt.parquet"
    corrupt.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(DataError, match="corrupt.parquet"):
        load_table(str(corrupt), "label")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match="empty"):
        load_table(str(empty), "label")


def test_missing_label_suggests_close_names(mixed_frame, tmp_path):
    path = tmp_path / "t.parquet"
    mixed_frame.to_parquet(path)
    with pytest.raises(DataError, match="did you mean 'label'"):
        load_table(str(path), "labels")


def test_missing_values_policies(mixed_frame):
    frame = mixed_frame.copy()
    frame.loc[[1, 2], "amount"] = np.nan
    frame.loc[3, "visits"] = np.nan
    frame.loc[4, "amount"] = np.inf
    with pytest.raises(DataError, match=r"amount \(3 rows\), visits \(1 rows\)"):
        handle_missing(frame, "label", "error")
    dropped, report = handle_missing(frame, "label", "drop")
    assert report["dropped_rows"] == 4 and len(dropped) == len(frame) - 4
    imputed, _ = handle_missing(frame, "label", "impute")
    assert imputed["amount"].notna().all() and len(imputed) == len(frame)


def test_schema_inference(mixed_frame):
    schema = infer_schema(mixed_frame, "label")
    kinds = {c.name: c.kind for c in schema.columns}
    assert kinds == {
        "amount": "continuous",
        "visits": "continuous",
        "channel": "categorical",
        "member": "categorical",
        "tier": "categorical",
        "small_int": "categorical",
    }
    assert schema.classes == ["common", "rare"]
    overridden = infer_schema(mixed_frame, "label", overrides={"small_int": "continuous"})
    assert {c.name: c.kind for c in overridden.columns}["small_int"] == "continuous"
    with pytest.raises(DataError, match="data.columns"):
        infer_schema(mixed_frame, "label", overrides={"channel": "continuous"})


def test_high_cardinality_categorical_is_refused():
    frame = pd.DataFrame({"id": [f"user{i}" for i in range(50)], "label": [0, 1] * 25})
    with pytest.raises(DataError, match="'id' has 50 distinct values"):
        infer_schema(frame, "label", max_categories=20)
