"""Tabular oversampling, side by side: none, random oversampling, SMOTE, CTGAN and augment.

Run from the repository root with the ``bench`` extra installed (it brings the ``ctgan`` package)::

    python -m benchmarks.tabular                          # seeds 0 1 2, breast_cancer and wine
    python -m benchmarks.tabular --seeds 0 --datasets wine
    python -m benchmarks.tabular --quick                  # CI smoke test: 1 seed, CTGAN 10 epochs

For every dataset and seed the seed drives the stratified 30% holdout, the subsampling of the
training split to a 10:1 imbalance, and each method's ``random_state``. Every method oversamples
the training split to equal class counts ("not majority"), and only its own fit + sample is timed.
The same two classifiers (scaled logistic regression, a 200-tree random forest) are trained on
each method's rows and scored on the untouched holdout; scores are averaged over the two
classifiers, then reported as mean ± std over seeds.

Prints one markdown table per dataset, then whether the targets hold, and writes everything to
``benchmarks/results/tabular.json`` (``tabular_quick.json`` in quick mode, so a smoke test never
overwrites a full run).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import imblearn
import numpy as np
import pandas as pd
import sklearn
import torch
from ctgan import CTGAN
from ctgan import __version__ as ctgan_version
from imblearn.over_sampling import SMOTE, RandomOverSampler
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, f1_score, recall_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from augment import GANOverSampler
from augment.core.balance import class_counts, plan_samples, split_holdout, subsample_to_ratio
from augment.tabular.sources import load_table

LABEL = "target"
DATASETS = ("breast_cancer", "wine")
IMBALANCE_RATIO = 10
HOLDOUT_FRACTION = 0.3
STRATEGY = "not majority"
QUICK_CTGAN_EPOCHS = 10
METRICS = ("balanced_accuracy", "macro_f1", "minority_recall")
RESULTS_DIR = Path(__file__).parent / "results"

Resampled = tuple[pd.DataFrame, pd.Series, dict[str, Any]]


# -- methods: (features, labels, seed, ctgan_epochs) -> (features, labels, notes) ----------------
def resample_none(features: pd.DataFrame, labels: pd.Series, seed: int, _: int | None) -> Resampled:
    return features, labels, {}


def resample_random(
    features: pd.DataFrame, labels: pd.Series, seed: int, _: int | None
) -> Resampled:
    sampler = RandomOverSampler(sampling_strategy=STRATEGY, random_state=seed)
    features_res, labels_res = sampler.fit_resample(features, labels)
    return features_res, pd.Series(labels_res, name=LABEL), {}


def resample_smote(
    features: pd.DataFrame, labels: pd.Series, seed: int, _: int | None
) -> Resampled:
    # SMOTE needs k_neighbors < rows of the smallest class.
    k_neighbors = min(5, min(class_counts(labels).values()) - 1)
    sampler = SMOTE(sampling_strategy=STRATEGY, k_neighbors=k_neighbors, random_state=seed)
    features_res, labels_res = sampler.fit_resample(features, labels)
    return features_res, pd.Series(labels_res, name=LABEL), {"k_neighbors": k_neighbors}


def resample_ctgan(
    features: pd.DataFrame, labels: pd.Series, seed: int, epochs: int | None
) -> Resampled:
    """One CTGAN (default settings) with the label as a discrete column, sampled per class.

    CTGAN's conditional sampling only makes the asked-for class more likely, so a request for n
    rows of class c returns some rows of other classes. We keep the rows of class c it returned
    (asking again until it fills up would be a different method) and record the shortfall.
    """
    model = CTGAN() if epochs is None else CTGAN(epochs=epochs)
    model.set_random_state(seed)
    table = features.assign(**{LABEL: labels.to_numpy()})
    model.fit(table, discrete_columns=[LABEL])
    parts = [table]
    rows_per_class = {}
    for cls, n_missing in plan_samples(class_counts(labels), STRATEGY).items():
        if n_missing == 0:
            continue
        generated = model.sample(n_missing, condition_column=LABEL, condition_value=cls)
        of_class = generated[generated[LABEL] == cls]
        parts.append(of_class)
        rows_per_class[str(cls)] = {
            "requested": int(n_missing),
            "returned_of_class": len(of_class),
            "returned_of_other_classes": len(generated) - len(of_class),
            "shortfall": int(n_missing) - len(of_class),
        }
    combined = pd.concat(parts, ignore_index=True)
    notes = {"conditional_sampling": rows_per_class}
    return combined.drop(columns=[LABEL]), combined[LABEL], notes


def resample_augment(
    features: pd.DataFrame, labels: pd.Series, seed: int, _: int | None
) -> Resampled:
    sampler = GANOverSampler(random_state=seed)  # defaults; "auto" is "not majority"
    features_res, labels_res = sampler.fit_resample(features, labels)
    return features_res, pd.Series(labels_res, name=LABEL), {"steps": sampler.steps}


def resample_augment_quantile(
    features: pd.DataFrame, labels: pd.Series, seed: int, _: int | None
) -> Resampled:
    """augment with the quantile transform instead of mode-specific normalisation (the default)."""
    sampler = GANOverSampler(random_state=seed, continuous="quantile")
    features_res, labels_res = sampler.fit_resample(features, labels)
    return features_res, pd.Series(labels_res, name=LABEL), {"steps": sampler.steps}


# augment runs last; GANOverSampler restores torch's thread count after fitting, so the order
# does not change what the other methods get.
METHODS: dict[str, Callable[..., Resampled]] = {
    "none": resample_none,
    "random_oversampling": resample_random,
    "smote": resample_smote,
    "ctgan": resample_ctgan,
    "augment": resample_augment,
    "augment_quantile": resample_augment_quantile,
}


# -- downstream scoring ------------------------------------------------------------------------
def build_classifiers(seed: int) -> dict[str, Any]:
    return {
        "logistic": make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)),
        "random_forest": RandomForestClassifier(n_estimators=200, random_state=seed),
    }


def score_downstream(
    train_features: pd.DataFrame,
    train_labels: pd.Series,
    holdout: pd.DataFrame,
    minority_classes: list[Any],
    seed: int,
) -> dict[str, dict[str, float]]:
    """Per classifier: balanced accuracy, macro-F1 and mean recall over the minority classes."""
    holdout_features, holdout_labels = holdout.drop(columns=[LABEL]), holdout[LABEL].to_numpy()
    scores = {}
    for name, classifier in build_classifiers(seed).items():
        classifier.fit(train_features, np.asarray(train_labels))
        predicted = classifier.predict(holdout_features)
        minority_recalls = recall_score(
            holdout_labels, predicted, labels=minority_classes, average=None, zero_division=0
        )
        scores[name] = {
            "balanced_accuracy": float(balanced_accuracy_score(holdout_labels, predicted)),
            "macro_f1": float(f1_score(holdout_labels, predicted, average="macro")),
            "minority_recall": float(np.mean(minority_recalls)),
        }
    return scores


# -- one run per (method, dataset, seed) -------------------------------------------------------
def imbalanced_split(frame: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    train, holdout = split_holdout(frame, LABEL, HOLDOUT_FRACTION, seed)
    return subsample_to_ratio(train, LABEL, IMBALANCE_RATIO, seed), holdout


def run_method(
    method: str, train: pd.DataFrame, holdout: pd.DataFrame, seed: int, ctgan_epochs: int | None
) -> dict[str, Any]:
    features, labels = train.drop(columns=[LABEL]), train[LABEL]
    train_counts = class_counts(labels)
    majority = max(train_counts, key=train_counts.get)
    # Binary: the smallest class. Multiclass: every class but the majority.
    minority_classes = [cls for cls in train_counts if cls != majority]

    torch_threads_before = torch.get_num_threads()
    start = time.perf_counter()
    features_res, labels_res, notes = METHODS[method](features, labels, seed, ctgan_epochs)
    seconds = time.perf_counter() - start

    per_classifier = score_downstream(features_res, labels_res, holdout, minority_classes, seed)
    return {
        "seed": seed,
        "seconds": seconds,
        "torch_threads": [torch_threads_before, torch.get_num_threads()],
        "train_class_counts": train_counts,
        "resampled_class_counts": class_counts(labels_res),
        "per_classifier": per_classifier,
        "metrics": {
            metric: float(np.mean([scores[metric] for scores in per_classifier.values()]))
            for metric in METRICS
        },
        "notes": notes,
    }


def mean_std(values: list[float]) -> dict[str, float]:
    # Sample std over seeds (ddof=1); 0 for a single seed.
    std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return {"mean": float(np.mean(values)), "std": std}


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    summary = {metric: mean_std([run["metrics"][metric] for run in runs]) for metric in METRICS}
    summary["seconds"] = mean_std([run["seconds"] for run in runs])
    return summary


def add_speed_vs_ctgan(methods: dict[str, dict[str, Any]]) -> None:
    ctgan_seconds = methods["ctgan"]["summary"]["seconds"]["mean"]
    for name, result in methods.items():
        seconds = result["summary"]["seconds"]["mean"]
        # "none" fits nothing; a ratio against ~0 s says nothing.
        result["speed_vs_ctgan"] = None if name == "none" else ctgan_seconds / seconds


# -- report ------------------------------------------------------------------------------------
def format_seconds(seconds: dict[str, float]) -> str:
    # One precision for mean and std, chosen by the mean: 0.1 s above a second, 1 ms below.
    decimals = 1 if seconds["mean"] >= 1 else 3
    return f"{seconds['mean']:.{decimals}f} ± {seconds['std']:.{decimals}f}"


def markdown_table(methods: dict[str, dict[str, Any]]) -> str:
    lines = [
        "| method | balanced acc | macro-F1 | minority recall | fit+sample s | speed vs CTGAN |",
        "|---|---|---|---|---|---|",
    ]
    for name, result in methods.items():
        summary = result["summary"]
        cells = [name]
        cells += [f"{summary[m]['mean']:.3f} ± {summary[m]['std']:.3f}" for m in METRICS]
        cells.append(format_seconds(summary["seconds"]))
        speed = result["speed_vs_ctgan"]
        cells.append("n/a" if speed is None else f"{speed:,.1f}x")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def check_targets(datasets: dict[str, Any], quick: bool) -> list[dict[str, Any]]:
    targets = []
    for dataset, result in datasets.items():
        methods = result["methods"]
        augment_acc = methods["augment"]["summary"]["balanced_accuracy"]["mean"]
        smote_acc = methods["smote"]["summary"]["balanced_accuracy"]["mean"]
        targets.append(
            {
                "dataset": dataset,
                "target": "augment balanced accuracy >= SMOTE's",
                "value": f"{augment_acc:.3f} vs {smote_acc:.3f}",
                "holds": augment_acc >= smote_acc,
            }
        )
        speed = methods["augment"]["speed_vs_ctgan"]
        targets.append(
            {
                "dataset": dataset,
                "target": "augment fit+sample >= 10x faster than CTGAN",
                "value": f"{speed:.1f}x",
                "holds": speed >= 10,
                "comparable": not quick,
            }
        )
    return targets


def print_report(results: dict[str, Any]) -> None:
    config = results["config"]
    mode = (
        f"QUICK smoke test: {len(config['seeds'])} seed, CTGAN epochs={QUICK_CTGAN_EPOCHS} "
        "(not its default 300); numbers are not a benchmark"
        if config["quick"]
        else "full run, CTGAN default settings"
    )
    print(f"# Tabular oversampling benchmark ({mode})\n")
    print(
        f"seeds {config['seeds']}; train split subsampled to {IMBALANCE_RATIO}:1, "
        f"{HOLDOUT_FRACTION:.0%} stratified holdout; scores are the mean of logistic regression "
        "and random forest, mean ± std over seeds; minority recall is the mean recall over the "
        "non-majority classes of the train split\n"
    )
    for dataset, result in results["datasets"].items():
        print(f"## {dataset}\n")
        print(markdown_table(result["methods"]))
        shortfalls = [
            f"seed {run['seed']} {cls}: {rows['returned_of_class']}/{rows['requested']}"
            for run in result["methods"]["ctgan"]["runs"]
            for cls, rows in run["notes"]["conditional_sampling"].items()
            if rows["shortfall"] > 0
        ]
        if shortfalls:
            print(
                "\nCTGAN returned fewer rows of the asked-for class than requested "
                f"(kept/requested): {'; '.join(shortfalls)}"
            )
        print()
    print("## Targets\n")
    for target in results["targets"]:
        verdict = "HOLDS" if target["holds"] else "MISSED"
        if not target.get("comparable", True):
            verdict += " (quick mode: CTGAN ran 10 epochs, so this ratio is not meaningful)"
        print(f"- {target['dataset']}: {target['target']}: {target['value']} -> {verdict}")
    load = results["environment"]["load_average"]
    print(f"\nload average (1/5/15 min) at start {load['start']}, at end {load['end']}")


# -- entry point -------------------------------------------------------------------------------
def augment_source_digest() -> str:
    """sha256 of augment's Python sources: which code the numbers measured, while it changes."""
    package = Path(sys.modules[GANOverSampler.__module__].__file__).parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def run_benchmark(seeds: list[int], datasets: list[str], quick: bool) -> dict[str, Any]:
    """Run every method on every (dataset, seed); returns the JSON-ready results."""
    ctgan_epochs = QUICK_CTGAN_EPOCHS if quick else None
    # Read before anything runs: the modules in memory are the ones loaded at start.
    source_digest = augment_source_digest()
    load_start = [round(value, 2) for value in os.getloadavg()]
    splits = {}
    for dataset in datasets:
        frame = load_table(f"sklearn:{dataset}", label=LABEL)
        splits[dataset] = {seed: imbalanced_split(frame, seed) for seed in seeds}

    # torch imports its compiler stack the first time an optimizer is built (about 3 s here);
    # pay that once up front so that no method's fit+sample time includes it.
    import torch._dynamo  # noqa: F401

    runs: dict[str, dict[str, list]] = {dataset: {} for dataset in datasets}
    # Method by method (see METHODS for why augment comes last).
    for method in METHODS:
        for dataset in datasets:
            for seed in seeds:
                train, holdout = splits[dataset][seed]
                run = run_method(method, train, holdout, seed, ctgan_epochs)
                runs[dataset].setdefault(method, []).append(run)
                print(
                    f"[{dataset} seed {seed}] {method}: fit+sample {run['seconds']:.2f} s, "
                    f"balanced acc {run['metrics']['balanced_accuracy']:.3f}",
                    file=sys.stderr,
                    flush=True,
                )

    results_by_dataset = {}
    for dataset in datasets:
        methods = {
            method: {"summary": summarize(method_runs), "runs": method_runs}
            for method, method_runs in runs[dataset].items()
        }
        add_speed_vs_ctgan(methods)
        results_by_dataset[dataset] = {"methods": methods}

    return {
        "config": {
            "seeds": seeds,
            "datasets": datasets,
            "quick": quick,
            "imbalance_ratio": IMBALANCE_RATIO,
            "holdout_fraction": HOLDOUT_FRACTION,
            "sampling_strategy": STRATEGY,
            "ctgan_epochs": ctgan_epochs or "default",
            "classifiers": ["logistic (StandardScaler)", "random_forest (200 trees)"],
        },
        "environment": {
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "ctgan": ctgan_version,
            "augment_source_sha256": source_digest,
            "imblearn": imblearn.__version__,
            "sklearn": sklearn.__version__,
            "cpu_count": os.cpu_count(),
            "load_average": {
                "start": load_start,
                "end": [round(value, 2) for value in os.getloadavg()],
            },
        },
        "datasets": results_by_dataset,
        "targets": check_targets(results_by_dataset, quick),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS))
    parser.add_argument(
        "--quick", action="store_true", help="smoke test: first seed only, CTGAN epochs=10"
    )
    parser.add_argument("--output", type=Path, help="JSON path (default: benchmarks/results/)")
    args = parser.parse_args(argv)

    seeds = args.seeds[:1] if args.quick else args.seeds
    results = run_benchmark(seeds, args.datasets, args.quick)
    print_report(results)
    output = args.output or RESULTS_DIR / ("tabular_quick.json" if args.quick else "tabular.json")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nresults written to {output}")


if __name__ == "__main__":
    main()
