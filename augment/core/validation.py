"""Scoring shared by every kind's downstream validation: the report, the per-arm scores and the
do-no-harm gate.

A kind's validation (``augment/tabular/validate.py``, ``augment/image/validate.py``) trains its
classifiers on each *arm* (``baseline``: real rows; ``augmented``: real + synthetic; a classic
baseline such as SMOTE or albumentations oversampling) and hands the holdout predictions to
:func:`build_report`, which scores them, averages over classifiers, computes the lifts and the gate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from augment.core.metrics import unique_metric_keys


@dataclass
class ValidationReport:
    """Outcome of a downstream validation.

    Attributes:
        metrics: flat metric dict (``<arm>/<classifier>/<m>``, ``<arm>/<m>``, ``lift/<m>``, ...).
        per_class: long table with columns arm, classifier, class, precision, recall, f1, support.
        confusion: ``"<arm>/<classifier>"`` -> confusion matrix (rows true, columns predicted,
            both in ``classes`` order).
        classes: the class order used in every table and matrix.
        passed: whether the do-no-harm gate passed.
        min_lift: the gate's threshold on ``lift/balanced_accuracy``.
        notes: plain-language remarks, e.g. why an arm was skipped.
    """

    metrics: dict[str, float]
    per_class: pd.DataFrame
    confusion: dict[str, np.ndarray]
    classes: list[Any]
    passed: bool
    min_lift: float
    notes: list[str] = field(default_factory=list)


def build_report(
    holdout_labels: np.ndarray,
    predictions: Mapping[tuple[str, str], np.ndarray],
    classes: list[Any],
    *,
    reference_arm: str | None,
    min_lift: float,
    notes: Sequence[str] = (),
) -> ValidationReport:
    """Score every ``(arm, classifier) -> predicted class indices`` on the holdout.

    ``predictions`` must hold the arms ``baseline`` and ``augmented`` for every classifier, in
    the order the metrics should be written. ``reference_arm`` (a classic baseline that ran)
    adds ``lift_vs_<reference_arm>/<m>``. See :func:`summarise_arms` for the gate.
    """
    class_keys = unique_metric_keys(classes)
    metrics: dict[str, float] = {}
    per_class_tables: list[pd.DataFrame] = []
    confusion: dict[str, np.ndarray] = {}
    for (arm, name), predicted in predictions.items():
        scores, table, matrix = score(holdout_labels, predicted, classes, class_keys)
        metrics.update({f"{arm}/{name}/{metric}": value for metric, value in scores.items()})
        per_class_tables.append(table.assign(arm=arm, classifier=name))
        confusion[f"{arm}/{name}"] = matrix.copy()
    arms = list(dict.fromkeys(arm for arm, _ in predictions))
    names = list(dict.fromkeys(name for _, name in predictions))
    passed = summarise_arms(metrics, arms, names, class_keys, reference_arm, min_lift)
    per_class = pd.concat(per_class_tables, ignore_index=True)[
        ["arm", "classifier", "class", "precision", "recall", "f1", "support"]
    ]
    return ValidationReport(
        metrics=metrics,
        per_class=per_class,
        confusion=confusion,
        classes=list(classes),
        passed=passed,
        min_lift=min_lift,
        notes=list(notes),
    )


def summarise_arms(
    metrics: dict[str, float],
    arms: Sequence[str],
    classifier_names: Sequence[str],
    class_keys: Sequence[str],
    reference_arm: str | None,
    min_lift: float,
) -> bool:
    """Add arm means, lifts and the gate to ``metrics``; return whether the gate passed.

    ``metrics`` must hold ``<arm>/<classifier>/<m>`` for every arm (among them ``baseline`` and
    ``augmented``) and classifier, with ``<m>`` one of ``accuracy``, ``balanced_accuracy``,
    ``macro_f1``, ``recall/<class key>``. Added: ``<arm>/<m>`` (mean over classifiers),
    ``lift/<m>`` and ``lift/<classifier>/<m>`` (augmented - baseline),
    ``lift_vs_<reference_arm>/<m>`` (augmented - reference, when given) and
    ``validation/passed``. The gate passes when ``lift/balanced_accuracy >= min_lift``; a NaN lift
    fails.
    """
    metric_names = ["accuracy", "balanced_accuracy", "macro_f1"]
    metric_names += [f"recall/{key}" for key in class_keys]
    for arm in arms:
        for metric in metric_names:
            metrics[f"{arm}/{metric}"] = float(
                np.mean([metrics[f"{arm}/{name}/{metric}"] for name in classifier_names])
            )
    for metric in metric_names:
        metrics[f"lift/{metric}"] = metrics[f"augmented/{metric}"] - metrics[f"baseline/{metric}"]
        for name in classifier_names:
            metrics[f"lift/{name}/{metric}"] = (
                metrics[f"augmented/{name}/{metric}"] - metrics[f"baseline/{name}/{metric}"]
            )
        if reference_arm is not None:
            metrics[f"lift_vs_{reference_arm}/{metric}"] = (
                metrics[f"augmented/{metric}"] - metrics[f"{reference_arm}/{metric}"]
            )
    # NaN >= x is False: a lift that cannot be measured does not pass.
    passed = bool(metrics["lift/balanced_accuracy"] >= min_lift)
    metrics["validation/passed"] = 1.0 if passed else 0.0
    return passed


def score(
    true: np.ndarray, predicted: np.ndarray, classes: list[Any], class_keys: list[str]
) -> tuple[dict[str, float], pd.DataFrame, np.ndarray]:
    """Metrics, per-class table and confusion matrix of one classifier on the holdout.

    ``true`` and ``predicted`` are class indices into ``classes``.
    """
    indices = list(range(len(classes)))
    precision, recall, f1, support = precision_recall_fscore_support(
        true, predicted, labels=indices, zero_division=0
    )
    matrix = confusion_matrix(true, predicted, labels=indices)  # (K, K), rows true
    in_holdout = support > 0
    in_holdout_or_predicted = in_holdout | (matrix.sum(axis=0) > 0)
    scores = {
        "accuracy": float(np.mean(true == predicted)),
        "balanced_accuracy": float(np.mean(recall[in_holdout])),
        "macro_f1": float(np.mean(f1[in_holdout_or_predicted])),
    }
    for index, key in enumerate(class_keys):
        scores[f"recall/{key}"] = float(recall[index]) if in_holdout[index] else float("nan")
    table = pd.DataFrame(
        {
            "class": classes,
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "support": support.astype(np.int64),
        }
    )
    return scores, table, matrix
