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
    arm_sizes: Mapping[str, int] | None = None,
    capped: bool = False,
) -> ValidationReport:
    """Score every ``(arm, classifier) -> predicted class indices`` on the holdout.

    ``predictions`` must hold the arms ``baseline`` and ``augmented`` for every classifier, in
    the order the metrics should be written. ``reference_arm`` (a classic baseline that ran)
    adds ``lift_vs_<reference_arm>/<m>``. See :func:`summarise_arms` for the gate.
    ``arm_sizes`` (rows each arm trained on) and ``capped`` (whether they are a sample, see
    :func:`arm_rows`) become ``validation/rows/<arm>`` and ``validation/capped``.
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
    metrics["validation/capped"] = float(capped)
    for arm, size in (arm_sizes or {}).items():
        metrics[f"validation/rows/{arm}"] = float(size)
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


@dataclass
class ArmRows:
    """Rows per class that every validation arm draws on: the real rows (the baseline arm, and the
    real part of the others) and the synthetic rows of the augmented arm, whose counts the classic
    baseline (SMOTE, albumentations) also makes. ``capped`` when they are a sample."""

    real: dict[Any, int]
    synthetic: dict[Any, int]
    capped: bool

    @property
    def targets(self) -> dict[Any, int]:
        """Class -> rows of the augmented (and classic) arm: real plus synthetic."""
        return {
            c: self.real.get(c, 0) + self.synthetic.get(c, 0)
            for c in {**self.real, **self.synthetic}
        }


def arm_rows(
    real: Mapping[Any, int], synthetic: Mapping[Any, int], max_rows: int | None
) -> ArmRows:
    """How many rows of each class the arms use so that no arm holds more than ``max_rows``.

    Real rows are the scarce, informative ones: they are kept whole when they fill at most half
    of the cap, and the synthetic rows share what is left, every class scaled by the same factor
    (so the augmented arm keeps its class balance). A very large real set is sampled too, each
    class in proportion but keeping at least :data:`MIN_REAL_PER_CLASS` rows (or all it has), so
    a rare class stays trainable and SMOTE still finds neighbours.
    """
    real, synthetic = dict(real), {c: n for c, n in synthetic.items() if n}
    n_real, n_synthetic = sum(real.values()), sum(synthetic.values())
    if not max_rows or n_real + n_synthetic <= max_rows:
        return ArmRows(real, synthetic, capped=False)
    synthetic_budget = min(n_synthetic, max(max_rows - n_real, max_rows // 2))
    real_budget = max_rows - synthetic_budget
    if n_real > real_budget:
        real = _scaled(real, real_budget / n_real, floor=MIN_REAL_PER_CLASS)
    synthetic = _scaled(synthetic, synthetic_budget / n_synthetic, floor=1)
    return ArmRows(real, synthetic, capped=True)


#: the fewest real rows a class keeps in a capped validation (SMOTE needs neighbours)
MIN_REAL_PER_CLASS = 6


def _scaled(counts: Mapping[Any, int], factor: float, floor: int) -> dict[Any, int]:
    return {c: min(n, max(floor, int(n * factor))) for c, n in counts.items()}


def stratified_pick(
    labels: np.ndarray, per_class: Mapping[Any, int], rng: np.random.Generator
) -> np.ndarray:
    """Sorted row indices: ``per_class[c]`` rows of each class ``c`` drawn without replacement."""
    picks = [
        rng.choice(np.flatnonzero(labels == cls), size=n, replace=False)
        for cls, n in per_class.items()
        if n
    ]
    return np.sort(np.concatenate(picks)) if picks else np.zeros(0, dtype=np.int64)


def scaled_to_sample(
    counts: Mapping[Any, int], fitted: Mapping[Any, int], plan: Mapping[Any, int]
) -> tuple[dict[Any, int], dict[Any, int]]:
    """Real and synthetic rows per class for validating a job whose model was fitted on a
    sample (``fitted`` of the train split's ``counts``): the job's real set and its plan scaled
    by one factor, the largest the sample holds, so the arms keep the class mix of the real data.
    A sample that keeps the rare classes whole and cuts the large ones, plus the rows planned
    for the whole split, would otherwise turn the majority into a minority."""
    factor = min(fitted.get(c, 0) / n for c, n in counts.items() if n)
    real = {c: min(fitted.get(c, 0), max(1, round(n * factor))) for c, n in counts.items()}
    return real, {c: round(plan.get(c, 0) * factor) for c in counts}


def proportional_pick(
    labels: np.ndarray, max_rows: int | None, rng: np.random.Generator
) -> np.ndarray:
    """At most ``max_rows`` row indices, every class in proportion (at least one row each)."""
    values, counts = np.unique(labels, return_counts=True)
    if not max_rows or len(labels) <= max_rows:
        return np.arange(len(labels))
    factor = max_rows / len(labels)
    per_class = {
        v: min(int(n), max(1, int(n * factor))) for v, n in zip(values, counts, strict=True)
    }
    return stratified_pick(labels, per_class, rng)
