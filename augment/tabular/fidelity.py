"""Fidelity of synthetic table rows: how close are they to the real rows, and are they copies?

Everything is measured in one metric space (``embed_rows``): continuous columns standardised with
the real training rows' mean and std, categorical columns one-hot over the schema's categories.

    report = fidelity_report(train, synthetic, holdout, schema, seed=0)
    mlflow.log_metrics(report)

Only the classes that were generated are compared: the synthetic rows say nothing about the
others. Where a metric pools several classes, the real rows are re-weighted (or subsampled) to the
synthetic class mix, so that a different mix of classes is never mistaken for poor rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.neighbors import NearestNeighbors

from augment.core.balance import to_python
from augment.core.errors import DataError
from augment.core.metrics import frechet_distance, unique_metric_keys
from augment.core.precision_recall import precision_recall_by_class
from augment.core.privacy import COPY_DISTANCE, dcr_closer, equal_sizes, nearest_distances
from augment.core.privacy import memorised as memorised_rows
from augment.tabular.schema import TableSchema, category_codes


def label_values(frame: pd.DataFrame, schema: TableSchema) -> np.ndarray:
    """The label column as an object array of plain Python values (comparable to schema.classes).

    Raises:
        DataError: the frame has no label column.
    """
    if schema.label not in frame.columns:
        raise DataError(
            f"the rows have no label column {schema.label!r}; columns: {list(frame.columns)}"
        )
    return np.array([to_python(value) for value in frame[schema.label].tolist()], dtype=object)


def embed_rows(frame: pd.DataFrame, schema: TableSchema, reference: pd.DataFrame) -> np.ndarray:
    """Map rows into the metric space shared by every fidelity metric.

    Continuous columns are standardised with ``reference``'s mean and std (a std of 0 counts as 1,
    so constant columns stay finite); categorical columns are one-hot over the schema's categories,
    and a value the schema has never seen is all zeros. The label column is not embedded.

    Args:
        frame: rows to embed; must hold every feature column of ``schema``.
        schema: column kinds and categories.
        reference: rows whose statistics fix the scale (usually the real training rows).

    Returns:
        float64 array of shape (len(frame), D), D = #continuous + sum of #categories.

    Raises:
        DataError: a feature column is missing from ``frame`` or ``reference``.
    """
    _require_columns(frame, schema, "rows to embed")
    _require_columns(reference, schema, "reference rows")
    blocks: list[np.ndarray] = []
    for spec in schema.columns:
        if spec.kind == "continuous":
            reference_values = reference[spec.name].to_numpy(dtype=np.float64)
            mean = float(np.mean(reference_values)) if len(reference_values) else 0.0
            std = float(np.std(reference_values)) if len(reference_values) else 0.0
            if not np.isfinite(std) or std == 0.0:
                std = 1.0
            values = frame[spec.name].to_numpy(dtype=np.float64)
            blocks.append(((values - mean) / std)[:, None])  # (N, 1)
        else:
            categories = list(spec.categories or [])
            codes = category_codes(frame[spec.name], categories)  # -1 = unseen
            one_hot = np.zeros((len(frame), len(categories)), dtype=np.float64)  # (N, K)
            seen = codes >= 0
            one_hot[np.flatnonzero(seen), codes[seen]] = 1.0
            blocks.append(one_hot)
    if not blocks:
        return np.zeros((len(frame), 0), dtype=np.float64)
    return np.hstack(blocks)


def fidelity_report(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    holdout: pd.DataFrame,
    schema: TableSchema,
    seed: int = 0,
) -> dict[str, float]:
    """Fidelity and memorisation metrics of synthetic rows, as a flat dict for MLflow.

    Args:
        real: the real training rows (features and label).
        synthetic: generated rows, same columns; they may cover only some classes.
        holdout: real rows never used for training (the yardstick of "new but real" for DCR).
        schema: column kinds, label and classes.
        seed: seeds the detection classifier, its folds and its subsample, and the sample of at
            most 5,000 rows a set that precision and recall compare.

    Returns:
        ``{}`` when ``synthetic`` is empty; otherwise these keys (``<c>`` = ``metric_key`` of a
        generated class, ``<col>`` of a feature column):

        - ``fidelity/frechet``: synthetic vs real rows of the generated classes, the real rows
          weighted to the synthetic class mix; ``fidelity/frechet/class/<c>`` per class.
        - ``fidelity/marginal/<col>``: KS statistic (continuous) or total variation distance
          (categorical) between synthetic and real values, the real rows weighted to the
          synthetic class mix; ``fidelity/marginal_mean`` over columns.
        - ``fidelity/detection_auc``: cross-validated ROC AUC of a random forest telling real from
          synthetic rows, given the class; 0.5 means indistinguishable.
        - ``fidelity/precision`` (realism: share of synthetic rows inside the real rows'
          manifold) and ``fidelity/recall`` (coverage: share of real rows inside the synthetic
          rows' manifold), k-NN with k = 3 (:mod:`augment.core.precision_recall`), the real
          rows of the generated classes weighted to the synthetic class mix;
          ``fidelity/precision/class/<c>``, ``fidelity/recall/class/<c>`` per class with at
          least 4 rows on both sides.
        - ``fidelity/dcr/synthetic_median``, ``fidelity/dcr/holdout_median``: median distance of
          synthetic / holdout rows to the closest real training row of the same class;
          ``fidelity/dcr/ratio`` = synthetic / holdout (well below 1 hints at memorisation);
          ``fidelity/dcr/exact_copy_share``: share of synthetic rows that copy a training row.

        A metric that cannot be computed (e.g. no holdout rows of the generated classes) is NaN.

    Raises:
        DataError: a frame lacks the label or a feature column.

    Example:
        >>> report = fidelity_report(train, synthetic, holdout, schema, seed=0)
        >>> report["fidelity/detection_auc"]  # doctest: +SKIP
        0.54
    """
    if len(synthetic) == 0:
        return {}
    synthetic_labels = label_values(synthetic, schema)
    real_labels = label_values(real, schema)
    holdout_labels = label_values(holdout, schema)
    generated = _classes_in_order(synthetic_labels, schema)
    class_keys = dict(zip(generated, unique_metric_keys(generated), strict=True))

    synthetic_rows = embed_rows(synthetic, schema, real)  # (S, D)
    real_rows = embed_rows(real, schema, real)  # (R, D)
    holdout_rows = embed_rows(holdout, schema, real)  # (H, D)

    # Real rows of the generated classes, weighted so that their class mix is the synthetic one;
    # rows of other classes weigh 0.
    real_weights = weights_to_mix(real_labels, synthetic_labels)
    comparable = real_weights > 0

    report: dict[str, float] = {}
    report["fidelity/frechet"] = (
        frechet_distance(real_rows[comparable], synthetic_rows, real_weights[comparable])
        if comparable.any()
        else float("nan")
    )
    for label in generated:
        real_of_class = real_rows[real_labels == label]
        report[f"fidelity/frechet/class/{class_keys[label]}"] = (
            frechet_distance(synthetic_rows[synthetic_labels == label], real_of_class)
            if len(real_of_class)
            else float("nan")
        )

    marginals = marginal_distances(
        real.iloc[np.flatnonzero(comparable)], real_weights[comparable], synthetic, schema
    )
    for key, distance in zip(unique_metric_keys(schema.names), marginals, strict=True):
        report[f"fidelity/marginal/{key}"] = distance
    report["fidelity/marginal_mean"] = float(np.mean(marginals)) if marginals else float("nan")

    report["fidelity/detection_auc"] = _detection_auc(
        real_rows, real_labels, synthetic_rows, synthetic_labels, generated, seed
    )
    overall, per_class = precision_recall_by_class(
        real_rows, real_labels, synthetic_rows, synthetic_labels, seed=seed
    )
    report["fidelity/precision"] = overall.precision
    report["fidelity/recall"] = overall.recall
    for label, result in per_class.items():
        report[f"fidelity/precision/class/{class_keys[label]}"] = result.precision
        report[f"fidelity/recall/class/{class_keys[label]}"] = result.recall
    report.update(
        _distance_to_closest_record(
            real_rows,
            real_labels,
            synthetic_rows,
            synthetic_labels,
            holdout_rows,
            holdout_labels,
            generated,
        )
    )
    return report


def _require_columns(frame: pd.DataFrame, schema: TableSchema, what: str) -> None:
    missing = [name for name in schema.names if name not in frame.columns]
    if missing:
        raise DataError(
            f"the {what} lack the feature columns {missing}; they must have the schema's columns "
            f"{schema.names}"
        )


def _classes_in_order(labels: np.ndarray, schema: TableSchema) -> list[Any]:
    # Schema order first, so that keys and tables come out in the same order on every run.
    present = list(dict.fromkeys(labels.tolist()))
    ordered = [label for label in schema.classes if label in present]
    return ordered + [label for label in present if label not in ordered]


def weights_to_mix(real_labels: np.ndarray, synthetic_labels: np.ndarray) -> np.ndarray:
    """Row weights for the real rows so that each class carries its share of the synthetic rows.

    Rows of classes absent from the synthetic rows get weight 0. Weights sum to the number of
    synthetic rows whose class has real rows.
    """
    real_counts = pd.Series(real_labels).value_counts()
    synthetic_counts = pd.Series(synthetic_labels).value_counts()
    per_row_weight = (synthetic_counts / real_counts).dropna()
    return pd.Series(real_labels).map(per_row_weight).fillna(0.0).to_numpy(dtype=np.float64)


def marginal_distances(
    real: pd.DataFrame, real_weights: np.ndarray, synthetic: pd.DataFrame, schema: TableSchema
) -> list[float]:
    if len(real) == 0:
        return [float("nan")] * len(schema.columns)
    synthetic_weights = np.ones(len(synthetic))
    distances: list[float] = []
    for spec in schema.columns:
        if spec.kind == "continuous":
            distance = weighted_ks_statistic(
                synthetic[spec.name].to_numpy(dtype=np.float64),
                real[spec.name].to_numpy(dtype=np.float64),
                synthetic_weights,
                real_weights,
            )
        else:
            distance = _total_variation(
                synthetic[spec.name].astype(object).to_numpy(),
                real[spec.name].astype(object).to_numpy(),
                synthetic_weights,
                real_weights,
            )
        distances.append(distance)
    return distances


def weighted_ks_statistic(
    a: np.ndarray,
    b: np.ndarray,
    weights_a: np.ndarray | None = None,
    weights_b: np.ndarray | None = None,
) -> float:
    """Two-sample Kolmogorov-Smirnov statistic with optional row weights.

    The largest gap between the two weighted empirical CDFs. With equal weights it is exactly
    ``scipy.stats.ks_2samp(a, b).statistic``; weights let the real rows take the synthetic class
    mix, which ``ks_2samp`` cannot do.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    weights_a = np.ones(len(a)) if weights_a is None else np.asarray(weights_a, dtype=np.float64)
    weights_b = np.ones(len(b)) if weights_b is None else np.asarray(weights_b, dtype=np.float64)
    points = np.union1d(a, b)
    return float(
        np.max(np.abs(_weighted_cdf(a, weights_a, points) - _weighted_cdf(b, weights_b, points)))
    )


def _weighted_cdf(values: np.ndarray, weights: np.ndarray, points: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="stable")
    cumulative = np.concatenate([[0.0], np.cumsum(weights[order])]) / weights.sum()
    # Number of values <= each point indexes the cumulative weight at that point.
    return cumulative[np.searchsorted(values[order], points, side="right")]


def _total_variation(
    a: np.ndarray, b: np.ndarray, weights_a: np.ndarray, weights_b: np.ndarray
) -> float:
    # Compare actual values (not schema categories), so unseen values count as a difference.
    codes, uniques = pd.factorize(np.concatenate([a, b]), use_na_sentinel=False)
    mass_a = np.bincount(codes[: len(a)], weights=weights_a, minlength=len(uniques))
    mass_b = np.bincount(codes[len(a) :], weights=weights_b, minlength=len(uniques))
    return float(0.5 * np.abs(mass_a / mass_a.sum() - mass_b / mass_b.sum()).sum())


def _detection_auc(
    real_rows: np.ndarray,
    real_labels: np.ndarray,
    synthetic_rows: np.ndarray,
    synthetic_labels: np.ndarray,
    generated: list[Any],
    seed: int,
) -> float:
    rng = np.random.default_rng(seed)
    features: list[np.ndarray] = []
    is_synthetic: list[np.ndarray] = []
    for index, label in enumerate(generated):
        real_of_class = real_rows[real_labels == label]
        synthetic_of_class = synthetic_rows[synthetic_labels == label]
        # Balance within each class: both sides then share one class mix, so the class one-hot
        # alone tells nothing and the classifier must judge the rows given their class.
        size = min(len(real_of_class), len(synthetic_of_class))
        if size == 0:
            continue
        for rows, flag in ((real_of_class, 0), (synthetic_of_class, 1)):
            chosen = rows[np.sort(rng.choice(len(rows), size=size, replace=False))]
            class_one_hot = np.zeros((size, len(generated)))
            class_one_hot[:, index] = 1.0
            features.append(np.hstack([chosen, class_one_hot]))
            is_synthetic.append(np.full(size, flag))
    if not features:
        return float("nan")
    x = np.vstack(features)  # (2 * sum of per-class sizes, D + #classes)
    y = np.concatenate(is_synthetic)
    folds = min(5, len(y) // 2)
    if folds < 2:
        return float("nan")
    # A small, shallow forest on half-size bootstraps: five fits must stay well under a second
    # for ~1000 rows (sklearn's per-tree overhead dominates here), and on a few hundred rows it
    # caught a small shift as well as 100 full-depth trees did.
    detector = RandomForestClassifier(
        n_estimators=50, max_depth=8, max_samples=0.5, random_state=seed, n_jobs=1
    )
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return float(np.mean(cross_val_score(detector, x, y, cv=splitter, scoring="roc_auc")))


def _distance_to_closest_record(
    real_rows: np.ndarray,
    real_labels: np.ndarray,
    synthetic_rows: np.ndarray,
    synthetic_labels: np.ndarray,
    holdout_rows: np.ndarray,
    holdout_labels: np.ndarray,
    generated: list[Any],
) -> dict[str, float]:
    synthetic_distances: list[np.ndarray] = []
    holdout_distances: list[np.ndarray] = []
    for label in generated:
        real_of_class = real_rows[real_labels == label]
        if len(real_of_class) == 0:
            continue
        # Same class only: a row that copies a row of its own class is what memorisation means.
        index = NearestNeighbors().fit(real_of_class)
        for rows, labels, sink in (
            (synthetic_rows, synthetic_labels, synthetic_distances),
            (holdout_rows, holdout_labels, holdout_distances),
        ):
            of_class = rows[labels == label]
            if len(of_class):
                sink.append(nearest_distances(real_of_class, of_class, index=index)[:, 0])
    synthetic_all = np.concatenate(synthetic_distances) if synthetic_distances else np.array([])
    holdout_all = np.concatenate(holdout_distances) if holdout_distances else np.array([])
    synthetic_median = float(np.median(synthetic_all)) if len(synthetic_all) else float("nan")
    holdout_median = float(np.median(holdout_all)) if len(holdout_all) else float("nan")
    # A holdout median of 0 means the holdout repeats training rows; the ratio is then undefined.
    ratio = synthetic_median / holdout_median if holdout_median > 0 else float("nan")
    copy_share = (
        float(np.mean(synthetic_all < COPY_DISTANCE)) if len(synthetic_all) else float("nan")
    )
    return {
        "fidelity/dcr/synthetic_median": synthetic_median,
        "fidelity/dcr/holdout_median": holdout_median,
        "fidelity/dcr/ratio": ratio,
        "fidelity/dcr/exact_copy_share": copy_share,
    }


def privacy_report(
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    generated: dict[str, pd.DataFrame],
    schema: TableSchema,
    counts: dict[str, dict[Any, int]] | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """How close generated rows sit to the real training rows, measured against real rows the
    generator never saw (:mod:`augment.core.privacy`), per class and per row source.

    Args:
        train: the real training rows the generator was fitted on and anchored to.
        holdout: real rows it never saw (a job's validation holdout): the yardstick of "new".
        generated: a sample of generated rows per source (``"gan"``, ``"anchored"``), label
            column included, in the same columns as ``train``.
        schema: column kinds, label and classes (the distances are :func:`embed_rows`').
        counts: per source and class, how many rows the generator made (its ``origin``): a
            class's and the overall numbers weigh each source's share by them; without, by the
            sample's rows.
        seed: seeds the equal-size sample of the training rows.

    Returns:
        ``{}`` without generated rows; else, for ``<scope>`` = the overall number (no suffix),
        ``/class/<c>`` and ``/source/<s>``:

        - ``privacy/dcr_share<scope>``: the share of generated rows nearer to a training row of
          their class than to a holdout row of it, the larger of the class's two real sets cut to
          the size of the other (0.5 = as new as unseen real rows; NaN without holdout rows);
        - ``privacy/memorised_share<scope>``: the share whose nearest training row of their
          class is less than a third as far as the second nearest;
        - ``privacy/exact_copy_share<scope>``: the share that repeats a training row;

        and ``privacy/dcr_overfitting_protection`` = min(1, 2 (1 - DCR share)), SDMetrics'
        score of the same idea (1 = no closer to the training rows than to unseen ones).
    """
    rng = np.random.default_rng(seed)
    train_labels, holdout_labels = label_values(train, schema), label_values(holdout, schema)
    train_rows = embed_rows(train, schema, train)  # (R, D)
    holdout_rows = embed_rows(holdout, schema, train)  # (H, D)
    # per source and class: (DCR closer flags, memorised flags, copy flags) of each sampled row
    flags: dict[tuple[str, Any], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for source, rows in generated.items():
        if len(rows) == 0:
            continue
        labels = label_values(rows, schema)
        points = embed_rows(rows, schema, train)  # (S, D)
        for label in _classes_in_order(labels, schema):
            made = points[labels == label]
            real = train_rows[train_labels == label]
            cut_train, cut_holdout = equal_sizes(real, holdout_rows[holdout_labels == label], rng)
            copies = nearest_distances(real, made)[:, 0] < COPY_DISTANCE
            flags[source, label] = (
                dcr_closer(cut_train, cut_holdout, made),
                memorised_rows(real, made),
                copies,
            )
    if not flags:
        return {}
    classes = _classes_in_order(np.array([label for _, label in flags], dtype=object), schema)
    class_keys = dict(zip(classes, unique_metric_keys(classes), strict=True))

    def weight(source: str, label: Any, sampled: int) -> float:
        """Rows that one sampled row stands for (its source's made rows of its class)."""
        made = (counts or {}).get(source, {}).get(label)
        return (made / sampled) if made and sampled else 1.0

    def pooled(cells: list[tuple[str, Any]], which: int) -> float:
        values = [flags[cell][which] for cell in cells if len(flags[cell][which])]
        weights = [
            np.full(len(flags[cell][which]), weight(*cell, len(flags[cell][which])))
            for cell in cells
            if len(flags[cell][which])
        ]
        if not values:
            return float("nan")
        return float(np.average(np.concatenate(values), weights=np.concatenate(weights)))

    scopes: dict[str, list[tuple[str, Any]]] = {"": list(flags)}
    scopes.update({f"/class/{class_keys[c]}": [k for k in flags if k[1] == c] for c in classes})
    sources = list(dict.fromkeys(source for source, _ in flags))
    scopes.update({f"/source/{s}": [k for k in flags if k[0] == s] for s in sources})
    report: dict[str, float] = {}
    for name, which in (("dcr_share", 0), ("memorised_share", 1), ("exact_copy_share", 2)):
        for scope, cells in scopes.items():
            report[f"privacy/{name}{scope}"] = pooled(cells, which)
    share = report["privacy/dcr_share"]
    report["privacy/dcr_overfitting_protection"] = (
        min(1.0, 2 * (1 - share)) if np.isfinite(share) else float("nan")
    )
    return report
