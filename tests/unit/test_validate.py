"""Downstream validation: baseline vs augmented vs SMOTE arms, metric names, and the gate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_wine

from augment.core.errors import ConfigError
from augment.core.validation import MIN_REAL_PER_CLASS, ArmRows, arm_rows
from augment.tabular.schema import infer_schema
from augment.tabular.validate import (
    CLASSIFIERS,
    ValidationReport,
    smote_resample,
    validate_downstream,
)

METRICS = ["accuracy", "balanced_accuracy", "macro_f1"]


@pytest.fixture(scope="module")
def cancer() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Breast cancer cut to 357 benign vs 45 malignant; (train, holdout), stratified 70/30."""
    frame = load_breast_cancer(as_frame=True).frame
    frame["target"] = frame["target"].map({0: "malignant", 1: "benign"})
    frame = pd.concat(
        [
            frame[frame["target"] == "benign"],
            frame[frame["target"] == "malignant"].sample(45, random_state=0),
        ]
    )
    holdout = frame.groupby("target").sample(frac=0.3, random_state=0)
    train = frame.drop(index=holdout.index)
    return train.reset_index(drop=True), holdout.reset_index(drop=True)


@pytest.fixture(scope="module")
def mixed() -> pd.DataFrame:
    """Wine (3 classes, class 2 cut to 12 rows) with a string column and a small int column."""
    frame = load_wine(as_frame=True).frame
    frame = pd.concat([frame[frame["target"] != 2], frame[frame["target"] == 2].head(12)])
    frame["strength"] = np.where(frame["alcohol"] > 13.0, "strong", "light")
    frame["hue_band"] = pd.cut(frame["hue"], 3, labels=False).astype("int64")
    frame["target"] = frame["target"].map({0: "barolo", 1: "grignolino", 2: "barbera"})
    return frame.sample(frac=1, random_state=0).reset_index(drop=True)


@pytest.fixture(scope="module")
def categorical() -> pd.DataFrame:
    """Only categorical features: a rule on two string columns, with a rare class."""
    rng = np.random.default_rng(0)
    rows = 300
    frame = pd.DataFrame(
        {
            "colour": rng.choice(["red", "green", "blue"], rows),
            "size": rng.choice(["s", "m", "l", "xl"], rows),
            "flag": rng.choice(["yes", "no"], rows),
        }
    )
    frame["label"] = np.where(
        (frame["colour"] == "red") & (frame["size"] == "xl"), "rare", "common"
    )
    return frame


def split(frame: pd.DataFrame, label: str, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    holdout = frame.groupby(label).sample(frac=0.3, random_state=seed)
    return frame.drop(index=holdout.index), holdout


def balance_targets(train: pd.DataFrame, label: str) -> dict:
    counts = train[label].value_counts()
    return {cls: int(counts.max()) for cls in counts.index}


def jittered_minority(train: pd.DataFrame, label: str, targets: dict, seed: int) -> pd.DataFrame:
    """Stand-in for generated rows: resampled real rows of each short class with 3 % noise."""
    rng = np.random.default_rng(seed)
    parts = []
    for cls, target in targets.items():
        rows = train[train[label] == cls]
        if target > len(rows):
            parts.append(rows.sample(target - len(rows), replace=True, random_state=seed))
    synthetic = pd.concat(parts, ignore_index=True)
    numeric = [c for c in synthetic.columns if c != label and synthetic[c].dtype == np.float64]
    synthetic[numeric] *= 1 + 0.03 * rng.normal(size=(len(synthetic), len(numeric)))
    return synthetic


def test_smote_reaches_the_target_counts_on_continuous_data(cancer) -> None:
    train, _ = cancer
    schema = infer_schema(train, "target")
    targets = balance_targets(train, "target")
    oversampled = smote_resample(train, schema, targets, seed=0)
    assert oversampled["target"].value_counts().to_dict() == targets
    # The real rows come first, unchanged.
    pd.testing.assert_frame_equal(
        oversampled.iloc[: len(train)][schema.names], train[schema.names], check_dtype=False
    )


def test_smotenc_on_mixed_columns_keeps_categories_and_dtypes(mixed) -> None:
    schema = infer_schema(mixed, "target")
    assert {spec.name for spec in schema.categorical} == {"strength", "hue_band"}
    targets = {"barbera": 40, "grignolino": 80}
    oversampled = smote_resample(mixed, schema, targets, seed=0)
    counts = oversampled["target"].value_counts().to_dict()
    assert counts == {"barolo": 59, "barbera": 40, "grignolino": 80}
    assert set(oversampled["strength"]) == {"strong", "light"}
    assert set(oversampled["hue_band"]) <= set(mixed["hue_band"])
    assert oversampled.dtypes.to_dict() == mixed.dtypes.to_dict()
    # Same seed, same rows.
    pd.testing.assert_frame_equal(oversampled, smote_resample(mixed, schema, targets, seed=0))


def test_smoten_on_categorical_columns(categorical) -> None:
    schema = infer_schema(categorical, "label")
    counts = categorical["label"].value_counts()
    oversampled = smote_resample(categorical, schema, {"rare": int(counts["common"])}, seed=0)
    assert oversampled["label"].value_counts()["rare"] == counts["common"]
    new_rows = oversampled.iloc[len(categorical) :]
    assert set(new_rows["colour"]) <= {"red", "green", "blue"}


def test_report_has_every_metric_name_and_lifts_are_differences(cancer) -> None:
    train, holdout = cancer
    schema = infer_schema(train, "target")
    targets = balance_targets(train, "target")
    synthetic = jittered_minority(train, "target", targets, seed=1)
    report = validate_downstream(train, holdout, synthetic, schema, targets, seed=0)
    assert isinstance(report, ValidationReport)
    assert report.classes == ["benign", "malignant"]
    names = METRICS + ["recall/benign", "recall/malignant"]
    classifiers = ["logistic", "random_forest"]
    expected = {"validation/passed", "validation/capped"}
    expected |= {f"validation/rows/{arm}" for arm in ("baseline", "augmented", "smote")}
    for metric in names:
        expected |= {f"{arm}/{metric}" for arm in ("baseline", "augmented", "smote")}
        expected |= {f"lift/{metric}", f"lift_vs_smote/{metric}"}
        for name in classifiers:
            expected |= {f"{arm}/{name}/{metric}" for arm in ("baseline", "augmented", "smote")}
            expected.add(f"lift/{name}/{metric}")
    assert set(report.metrics) == expected
    metrics = report.metrics
    for metric in names:
        mean = np.mean([metrics[f"augmented/{name}/{metric}"] for name in classifiers])
        assert metrics[f"augmented/{metric}"] == pytest.approx(mean)
        lift = metrics[f"augmented/{metric}"] - metrics[f"baseline/{metric}"]
        assert metrics[f"lift/{metric}"] == pytest.approx(lift)
        versus = metrics[f"augmented/{metric}"] - metrics[f"smote/{metric}"]
        assert metrics[f"lift_vs_smote/{metric}"] == pytest.approx(versus)
    # Confusion matrices and the per-class table describe the same predictions.
    assert set(report.confusion) == {
        f"{arm}/{name}" for arm in ("baseline", "augmented", "smote") for name in classifiers
    }
    for key, matrix in report.confusion.items():
        assert matrix.shape == (2, 2)
        assert matrix.sum() == len(holdout)
        accuracy = np.trace(matrix) / matrix.sum()
        assert metrics[f"{key}/accuracy"] == pytest.approx(accuracy)
    assert list(report.per_class.columns) == [
        "arm",
        "classifier",
        "class",
        "precision",
        "recall",
        "f1",
        "support",
    ]
    assert len(report.per_class) == 3 * 2 * 2
    row = report.per_class.query(
        "arm == 'smote' and classifier == 'logistic' and `class` == 'malignant'"
    )
    assert row["recall"].item() == pytest.approx(metrics["smote/logistic/recall/malignant"])
    assert row["support"].item() == (holdout["target"] == "malignant").sum()
    assert report.notes == []


def test_the_gate_follows_min_lift(cancer) -> None:
    train, holdout = cancer
    schema = infer_schema(train, "target")
    targets = balance_targets(train, "target")
    synthetic = jittered_minority(train, "target", targets, seed=1)
    loose = validate_downstream(
        train, holdout, synthetic, schema, targets, ["logistic"], smote=False, min_lift=-1.0
    )
    strict = validate_downstream(
        train, holdout, synthetic, schema, targets, ["logistic"], smote=False, min_lift=1.0
    )
    assert loose.passed and loose.metrics["validation/passed"] == 1.0
    assert not strict.passed and strict.metrics["validation/passed"] == 0.0
    assert strict.min_lift == 1.0
    assert not any(key.startswith(("smote/", "lift_vs_smote/")) for key in strict.metrics)


def test_mislabelled_synthetic_rows_fail_the_gate(cancer) -> None:
    # Benign rows sold as malignant: a generator that ignores its condition does harm.
    train, holdout = cancer
    schema = infer_schema(train, "target")
    targets = balance_targets(train, "target")
    benign = train[train["target"] == "benign"]
    wrong = benign.sample(400, replace=True, random_state=0).assign(target="malignant")
    report = validate_downstream(
        train, holdout, wrong, schema, targets, ["logistic"], smote=False, min_lift=0.0
    )
    assert report.metrics["lift/balanced_accuracy"] < -0.1
    assert not report.passed


def test_no_synthetic_rows_means_no_lift(cancer) -> None:
    train, holdout = cancer
    schema = infer_schema(train, "target")
    report = validate_downstream(
        train, holdout, train.iloc[:0], schema, {}, ["logistic"], smote=False
    )
    lifts = [value for key, value in report.metrics.items() if key.startswith("lift/")]
    assert lifts and all(value == 0.0 for value in lifts)
    assert report.passed
    assert any("no synthetic rows" in note for note in report.notes)
    np.testing.assert_array_equal(
        report.confusion["augmented/logistic"], report.confusion["baseline/logistic"]
    )


def test_smote_arm_is_skipped_with_a_note_when_a_class_has_one_row(mixed) -> None:
    train, holdout = split(mixed, "target")
    lonely = train[train["target"] == "barbera"].head(1)
    train = pd.concat([train[train["target"] != "barbera"], lonely], ignore_index=True)
    schema = infer_schema(train, "target")
    targets = {"barbera": 40}
    report = validate_downstream(train, holdout, train.iloc[:0], schema, targets, ["logistic"])
    assert any("smote arm skipped" in note and "barbera" in note for note in report.notes)
    assert not any(key.startswith(("smote/", "lift_vs_smote/")) for key in report.metrics)


def test_all_classifiers_run_on_mixed_data_with_unseen_values(mixed) -> None:
    train, holdout = split(mixed, "target")
    holdout = holdout.copy()
    holdout.loc[holdout.index[:4], "strength"] = "unheard-of"
    schema = infer_schema(train, "target")
    targets = balance_targets(train, "target")
    synthetic = jittered_minority(train, "target", targets, seed=2)
    report = validate_downstream(
        train, holdout, synthetic, schema, targets, list(CLASSIFIERS), seed=0
    )
    for name in CLASSIFIERS:
        for arm in ("baseline", "augmented", "smote"):
            assert 0.5 < report.metrics[f"{arm}/{name}/balanced_accuracy"] <= 1.0
    first = report.metrics
    again = validate_downstream(
        train, holdout, synthetic, schema, targets, list(CLASSIFIERS), seed=0
    ).metrics
    assert first == again


def test_a_holdout_label_unseen_in_training_is_scored(categorical) -> None:
    train, holdout = split(categorical, "label")
    holdout = holdout.copy()
    holdout.loc[holdout.index[:5], "label"] = "novel"
    schema = infer_schema(train, "label")
    report = validate_downstream(
        train, holdout, train.iloc[:0], schema, {}, ["logistic"], smote=False
    )
    assert report.classes == ["common", "rare", "novel"]
    matrix = report.confusion["baseline/logistic"]
    assert matrix.shape == (3, 3)
    assert matrix[2].sum() == 5 and matrix[2, 2] == 0
    assert report.metrics["baseline/logistic/recall/novel"] == 0.0
    # Balanced accuracy counts the unseen class as a class with recall 0.
    recalls = [report.metrics[f"baseline/logistic/recall/{c}"] for c in report.classes]
    assert report.metrics["baseline/logistic/balanced_accuracy"] == pytest.approx(np.mean(recalls))


def test_unknown_classifier_is_a_config_error(cancer) -> None:
    train, holdout = cancer
    schema = infer_schema(train, "target")
    with pytest.raises(ConfigError, match="validate.classifiers"):
        validate_downstream(train, holdout, train.iloc[:0], schema, {}, ["svm"])


def test_arm_rows_keep_the_real_rows_and_scale_the_synthetic_ones_alike():
    real, synthetic = {"a": 300, "b": 30}, {"a": 10_000, "b": 10_270}
    assert arm_rows(real, synthetic, None) == ArmRows(real, synthetic, capped=False)
    assert not arm_rows(real, synthetic, 30_000).capped
    rows = arm_rows(real, synthetic, 2_330)
    assert rows.capped and rows.real == real  # 330 real rows fit in half the cap
    assert sum(rows.real.values()) + sum(rows.synthetic.values()) <= 2_330
    assert rows.synthetic["a"] / 10_000 == pytest.approx(rows.synthetic["b"] / 10_270, abs=1e-3)
    # a huge real set is sampled too, in proportion, but a rare class keeps a few rows
    big = arm_rows({"a": 1_000_000, "b": 40}, {"b": 999_960}, 10_000)
    assert big.real["b"] == MIN_REAL_PER_CLASS and big.real["a"] <= 5_000
    assert sum(big.real.values()) + sum(big.synthetic.values()) <= 10_000 + MIN_REAL_PER_CLASS


def test_a_large_arm_is_validated_on_a_stratified_sample(cancer) -> None:
    train, holdout = cancer
    schema = infer_schema(train, "target")
    targets = {"benign": 3_000, "malignant": 3_000}
    synthetic = jittered_minority(train, "target", targets, seed=1)
    report = validate_downstream(
        train, holdout, synthetic, schema, targets, classifiers=["logistic"], seed=0, max_rows=900
    )
    metrics = report.metrics
    assert metrics["validation/capped"] == 1.0
    assert metrics["validation/rows/baseline"] == len(train)  # 277 real rows: all of them
    assert metrics["validation/rows/augmented"] <= 900
    assert metrics["validation/rows/smote"] == metrics["validation/rows/augmented"]
    assert any("stratified sample (validate.max_rows=900)" in note for note in report.notes)
    assert np.isfinite(metrics["lift/balanced_accuracy"])
    everything = validate_downstream(
        train, holdout, synthetic, schema, targets, classifiers=["logistic"], seed=0
    )
    assert everything.metrics["validation/capped"] == 0.0
    assert everything.metrics["validation/rows/augmented"] == len(train) + len(synthetic)
