"""Fidelity metrics on real data (breast cancer, wine) made imbalanced, and on tiny sets."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from scipy import linalg, stats
from sklearn.datasets import load_breast_cancer, load_wine

from augment.core.errors import DataError
from augment.core.metrics import frechet_distance, metric_key, unique_metric_keys
from augment.tabular.fidelity import embed_rows, fidelity_report, weighted_ks_statistic
from augment.tabular.schema import infer_schema

REPORT_KEYS_FIXED = {
    "fidelity/frechet",
    "fidelity/marginal_mean",
    "fidelity/detection_auc",
    "fidelity/dcr/synthetic_median",
    "fidelity/dcr/holdout_median",
    "fidelity/dcr/ratio",
    "fidelity/dcr/exact_copy_share",
    "fidelity/precision",
    "fidelity/recall",
}


@pytest.fixture(scope="module")
def cancer() -> pd.DataFrame:
    """Breast cancer, malignant cut to 60 rows: 357 benign vs 60 malignant, rows shuffled."""
    frame = load_breast_cancer(as_frame=True).frame
    frame["target"] = frame["target"].map({0: "malignant", 1: "benign"})
    malignant = frame[frame["target"] == "malignant"].sample(60, random_state=0)
    benign = frame[frame["target"] == "benign"]
    return pd.concat([benign, malignant]).sample(frac=1, random_state=0).reset_index(drop=True)


@pytest.fixture(scope="module")
def wine() -> pd.DataFrame:
    """Wine (3 classes) with a categorical string column derived from alcohol."""
    frame = load_wine(as_frame=True).frame
    frame["strength"] = pd.cut(frame["alcohol"], [0, 12.5, 13.5, 99], labels=["low", "mid", "high"])
    frame["strength"] = frame["strength"].astype(str)
    return frame.sample(frac=1, random_state=0).reset_index(drop=True)


def shifted(frame: pd.DataFrame, columns: list[str], by_std: float) -> pd.DataFrame:
    moved = frame.copy()
    moved[columns] = moved[columns] + by_std * frame[columns].std()
    return moved


def test_metric_key_keeps_safe_characters_and_replaces_the_rest() -> None:
    assert metric_key("mean radius") == "mean radius"
    assert metric_key("a/b:c-d.e_f") == "a/b:c-d.e_f"
    assert metric_key("père|mère") == "p_re_m_re"
    assert metric_key(3) == "3"
    assert unique_metric_keys(["a|b", "a&b", "a_b"]) == ["a_b", "a_b_2", "a_b_3"]


def test_embed_rows_standardizes_with_reference_and_one_hots_categories(wine) -> None:
    schema = infer_schema(wine, "target")
    embedded = embed_rows(wine, schema, wine)
    width = len(schema.continuous) + sum(len(spec.categories) for spec in schema.categorical)
    assert embedded.shape == (len(wine), width)
    assert embedded.dtype == np.float64
    # Wine's 13 measurements come first, then the three "strength" categories.
    assert [spec.name for spec in schema.categorical] == ["strength"]
    assert np.allclose(embedded[:, :13].mean(axis=0), 0.0)
    assert np.allclose(embedded[:, :13].std(axis=0), 1.0)
    # The one-hot block of "strength" sums to one per row ...
    assert np.allclose(embedded[:, -3:].sum(axis=1), 1.0)
    # ... and a value the schema never saw is all zeros.
    unseen = wine.head(2).assign(strength="extreme")
    assert np.all(embed_rows(unseen, schema, wine)[:, -3:] == 0.0)


def test_embed_rows_keeps_constant_columns_finite() -> None:
    frame = pd.DataFrame({"flat": [2.0, 2.0, 2.0], "x": [1.0, 2.0, 3.0], "y": [0, 1, 1]})
    schema = infer_schema(frame, "y")
    embedded = embed_rows(frame, schema, frame)
    assert np.all(np.isfinite(embedded))
    assert np.all(embedded[:, 0] == 0.0)


def test_embed_rows_names_missing_columns(wine) -> None:
    schema = infer_schema(wine, "target")
    with pytest.raises(DataError, match="strength"):
        embed_rows(wine.drop(columns="strength"), schema, wine)


def test_frechet_is_zero_for_a_set_against_itself_and_grows_with_a_shift(cancer) -> None:
    schema = infer_schema(cancer, "target")
    rows = embed_rows(cancer, schema, cancer)
    assert frechet_distance(rows, rows) == pytest.approx(0.0, abs=1e-6)
    # A pure translation keeps the covariance, so the distance is exactly the squared shift.
    shift = np.full(rows.shape[1], 0.5)
    assert frechet_distance(rows, rows + shift) == pytest.approx(np.sum(shift**2), rel=1e-6)
    half = len(rows) // 2
    between_halves = frechet_distance(rows[:half], rows[half:])
    assert 0.0 < between_halves < frechet_distance(rows[:half], rows[half:] + shift)


def test_frechet_matches_the_textbook_formula_with_scipy_sqrtm(wine) -> None:
    schema = infer_schema(wine, "target")
    rows = embed_rows(wine, schema, wine)
    a, b = rows[:90], rows[90:]
    eps = 1e-6
    cov_a = np.cov(a, rowvar=False) + eps * np.eye(a.shape[1])
    cov_b = np.cov(b, rowvar=False) + eps * np.eye(a.shape[1])
    expected = np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(
        cov_a + cov_b - 2 * linalg.sqrtm(cov_a @ cov_b).real
    )
    assert frechet_distance(a, b, eps=eps) == pytest.approx(expected, rel=1e-5)


def test_frechet_weights_of_zero_drop_rows(wine) -> None:
    schema = infer_schema(wine, "target")
    rows = embed_rows(wine, schema, wine)
    a, b = rows[:100], rows[100:]
    weights = np.ones(len(a))
    weights[:30] = 0.0
    assert frechet_distance(a, b, weights) == pytest.approx(frechet_distance(a[30:], b), rel=1e-9)
    with pytest.raises(DataError):
        frechet_distance(a, b, np.zeros(len(a)))


def test_frechet_is_finite_for_very_few_rows() -> None:
    rng = np.random.default_rng(0)
    one, two = rng.normal(size=(1, 5)), rng.normal(size=(2, 5))
    assert np.isfinite(frechet_distance(one, two))
    assert frechet_distance(one, one) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(DataError):
        frechet_distance(one[:0], two)


def test_weighted_ks_equals_scipy_with_equal_weights() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=150), rng.normal(0.3, 1.0, size=200)
    assert weighted_ks_statistic(a, b) == pytest.approx(stats.ks_2samp(a, b).statistic)
    # Ties across the samples (integer-valued columns) must not break the equality.
    a, b = rng.integers(0, 5, 100).astype(float), rng.integers(0, 6, 80).astype(float)
    assert weighted_ks_statistic(a, b) == pytest.approx(stats.ks_2samp(a, b).statistic)


def test_report_is_empty_without_synthetic_rows(cancer) -> None:
    schema = infer_schema(cancer, "target")
    assert fidelity_report(cancer, cancer.iloc[:0], cancer, schema) == {}


def test_report_keys_cover_generated_classes_and_columns_only(wine) -> None:
    schema = infer_schema(wine, "target")
    train, holdout = wine.iloc[:120], wine.iloc[120:]
    synthetic = train[train["target"] != 0]
    report = fidelity_report(train, synthetic, holdout, schema)
    expected = REPORT_KEYS_FIXED | {
        f"fidelity/{metric}/class/{c}"
        for metric in ("frechet", "precision", "recall")
        for c in (1, 2)
    }
    expected |= {f"fidelity/marginal/{metric_key(name)}" for name in schema.names}
    assert set(report) == expected
    assert all(isinstance(value, float) for value in report.values())


def test_copies_of_train_rows_are_caught(cancer) -> None:
    schema = infer_schema(cancer, "target")
    train, holdout = cancer.iloc[:300], cancer.iloc[300:]
    copies = train[train["target"] == "malignant"].sample(80, replace=True, random_state=0)
    report = fidelity_report(train, copies, holdout, schema)
    assert report["fidelity/dcr/exact_copy_share"] == 1.0
    assert report["fidelity/dcr/synthetic_median"] == 0.0
    assert report["fidelity/dcr/holdout_median"] > 0.0
    assert report["fidelity/dcr/ratio"] == 0.0


def test_new_real_rows_look_like_the_holdout_and_are_hard_to_detect(cancer) -> None:
    schema = infer_schema(cancer, "target")
    train, other = cancer.iloc[:200], cancer.iloc[200:]
    synthetic, holdout = other.iloc[:150], other.iloc[150:]
    report = fidelity_report(train, synthetic, holdout, schema, seed=0)
    assert report["fidelity/detection_auc"] == pytest.approx(0.5, abs=0.12)
    assert report["fidelity/dcr/exact_copy_share"] == 0.0
    assert report["fidelity/dcr/ratio"] == pytest.approx(1.0, abs=0.25)
    assert report["fidelity/marginal_mean"] < 0.15
    assert report["fidelity/precision"] > 0.75 and report["fidelity/recall"] > 0.75
    for label in ("benign", "malignant"):
        assert 0.75 < report[f"fidelity/precision/class/{label}"] <= 1.0
        assert 0.75 < report[f"fidelity/recall/class/{label}"] <= 1.0


def test_shifted_rows_are_detected_and_far(cancer) -> None:
    schema = infer_schema(cancer, "target")
    train, other = cancer.iloc[:200], cancer.iloc[200:]
    synthetic, holdout = other.iloc[:150], other.iloc[150:]
    honest = fidelity_report(train, synthetic, holdout, schema, seed=0)
    moved = shifted(synthetic, schema.names, by_std=1.0)
    report = fidelity_report(train, moved, holdout, schema, seed=0)
    assert report["fidelity/detection_auc"] > 0.95
    assert report["fidelity/frechet"] > 5 * honest["fidelity/frechet"]
    assert report["fidelity/marginal_mean"] > 2 * honest["fidelity/marginal_mean"]
    assert report["fidelity/dcr/ratio"] > 1.2
    assert report["fidelity/recall"] < honest["fidelity/recall"] / 3


def test_rows_piled_on_one_real_row_are_realistic_but_cover_nothing(cancer) -> None:
    schema = infer_schema(cancer, "target")
    train, holdout = cancer.iloc[:300], cancer.iloc[300:]
    one_row = train[train["target"] == "malignant"].iloc[[0] * 100]
    report = fidelity_report(train, one_row, holdout, schema, seed=0)
    assert report["fidelity/precision"] == 1.0
    assert report["fidelity/precision/class/malignant"] == 1.0
    assert report["fidelity/recall/class/malignant"] < 0.1
    assert "fidelity/precision/class/benign" not in report


def test_a_different_class_mix_is_not_mistaken_for_poor_rows(wine) -> None:
    # Synthetic rows are real rows of classes 0 and 1, but 9:1 instead of the real ~1:1.3 mix.
    schema = infer_schema(wine, "target")
    of_class = {label: wine[wine["target"] == label] for label in (0, 1)}
    synthetic = pd.concat(
        [
            of_class[0].sample(180, replace=True, random_state=0),
            of_class[1].sample(20, replace=True, random_state=0),
        ]
    )
    report = fidelity_report(wine, synthetic, wine.iloc[:0], schema, seed=0)
    rows = embed_rows(wine, schema, wine)
    real_both = rows[wine["target"].isin([0, 1]).to_numpy()]
    unweighted = frechet_distance(real_both, embed_rows(synthetic, schema, wine))
    assert report["fidelity/frechet"] < 0.25 * unweighted
    assert report["fidelity/marginal_mean"] < 0.1
    assert report["fidelity/detection_auc"] < 0.65


def test_missing_holdout_classes_give_nan_not_an_error(wine) -> None:
    schema = infer_schema(wine, "target")
    train = wine.iloc[:120]
    synthetic = train[train["target"] == 2]
    holdout = wine.iloc[120:][lambda frame: frame["target"] != 2]
    report = fidelity_report(train, synthetic, holdout, schema)
    assert np.isnan(report["fidelity/dcr/holdout_median"])
    assert np.isnan(report["fidelity/dcr/ratio"])
    assert np.isfinite(report["fidelity/dcr/synthetic_median"])


def test_report_is_deterministic_for_a_seed(wine) -> None:
    schema = infer_schema(wine, "target")
    train, holdout = wine.iloc[:120], wine.iloc[120:]
    synthetic = shifted(train, ["alcohol"], 0.3)
    first = fidelity_report(train, synthetic, holdout, schema, seed=3)
    again = fidelity_report(train, synthetic, holdout, schema, seed=3)
    assert first == again


def test_report_is_fast_enough_for_500_rows_and_30_columns(cancer) -> None:
    # The budget is < 2 s on an idle machine; the bound is loose because CI shares its cores.
    schema = infer_schema(cancer, "target")
    train, other = cancer.iloc[:250], cancer.iloc[250:]
    start = time.perf_counter()
    fidelity_report(train, other.iloc[:250], other.iloc[250:], schema)
    assert time.perf_counter() - start < 6.0
