import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from augment.core.errors import DataError
from augment.tabular.schema import infer_schema
from augment.tabular.sources import class_quotas, handle_missing, load_table, read_table


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


def _large_folder(tmp_path, label_type="str"):
    rng = np.random.default_rng(0)
    labels = np.repeat(["a", "b", "c"], [25_000, 4_500, 500])
    rng.shuffle(labels)
    frame = pd.DataFrame({"x": rng.normal(size=len(labels)), "y": labels})
    if label_type == "category":
        frame["y"] = frame["y"].astype("category")
    folder = tmp_path / "big"
    folder.mkdir()
    for i, part in enumerate(np.array_split(np.arange(len(frame)), 3)):
        frame.iloc[part].to_parquet(folder / f"part-{i}.parquet", row_group_size=4_000)
    return folder


@pytest.mark.parametrize("label_type", ["str", "category"])
def test_large_parquet_is_sampled_per_class_with_every_row_counted(tmp_path, label_type):
    folder = _large_folder(tmp_path, label_type)
    frame, sample = read_table(str(folder), "y", max_rows=5_000, seed=1)
    assert sample is not None
    assert sample.rows == 30_000
    assert sample.counts == {"a": 25_000, "b": 4_500, "c": 500}
    # the rare class is kept whole; the others share the rest of the budget evenly
    assert class_quotas(sample.counts, 5_000) == {"a": 2_250, "b": 2_250, "c": 500}
    kept = frame["y"].astype(str).value_counts().to_dict()
    assert kept["c"] == 500
    assert abs(kept["a"] - 2_250) < 200 and abs(kept["b"] - 2_250) < 200
    assert sample.kept == {k: kept[k] for k in sample.kept}
    assert list(frame.columns) == ["x", "y"]
    assert "30,000 rows" in sample.note(5_000) and "all rows of c" in sample.note(5_000)
    # seeded: the same rows again
    again, _ = read_table(str(folder), "y", max_rows=5_000, seed=1)
    pd.testing.assert_frame_equal(frame, again)
    # small enough: every row, no sample
    whole, none = read_table(str(folder), "y", max_rows=30_000)
    assert none is None and len(whole) == 30_000


def test_job_on_a_sampled_source_plans_for_every_row(tmp_path):
    from augment.pipeline.config import parse_config
    from augment.pipeline.job import run_job

    folder = _large_folder(tmp_path)
    config = parse_config(
        {
            "name": "sampled",
            "data": {"source": str(folder), "label": "y", "max_rows": 3_000},
            "train": {"steps": 2, "batch_size": 64, "device": "cpu"},
            "balance": {"sampling_strategy": {"c": 2_000}},
            "output": {"path": str(tmp_path / "run")},
            "validate": {"enabled": False},
            "tracking": {"enabled": False},
        }
    )
    result = run_job(config)
    # the holdout (30%) comes out of the sample; the counts are every row's less the holdout
    holdout_c = 500 - result.counts_before["c"]
    assert 100 <= holdout_c <= 200
    assert result.counts_before["a"] > 20_000
    assert result.plan == {"a": 0, "b": 0, "c": 2_000 - result.counts_before["c"]}
    assert any("data.max_rows=3,000" in note for note in result.notes)


def test_generation_fans_out_over_workers_as_docs_operations_shows(tmp_path):
    """docs/operations.md, "1 billion rows": each worker loads the job's generator and writes
    its share of the counts, with its own seed, into its own folder; every folder holds exact
    counts and the shares differ."""
    from augment import load_synthesizer
    from augment.core.generate import write_shards
    from augment.core.shards import read_shards
    from augment.core.storage import location
    from augment.pipeline.config import parse_config
    from augment.pipeline.job import run_job

    config = {
        "name": "fanout",
        "data": {"source": "sklearn:wine", "label": "target"},
        "train": {"steps": 2, "batch_size": 32, "device": "cpu"},
        "output": {"path": str(tmp_path / "run")},
        "validate": {"enabled": False},
        "tracking": {"enabled": False},
    }
    run_job(parse_config(config))
    counts = {"class_0": 300, "class_2": 200}
    parts = []
    for k in range(2):  # what each worker runs
        synth = load_synthesizer(tmp_path / "run" / "model" / "synthesizer.pt")
        out = location(tmp_path / f"part-{k:03d}")
        result = write_shards(out, counts, synth.class_batches(counts, seed=1000 + k), 250)
        assert result.counts == counts
        parts.append(read_shards(out, require_success=False))
    for frame in parts:
        assert frame["target"].value_counts().to_dict() == counts
    assert not parts[0].equals(parts[1])
