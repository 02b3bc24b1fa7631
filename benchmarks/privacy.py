"""How close new rows sit to the real rows they were made from: augment with and without its
privacy floor, and SMOTE, measured against real rows no method saw (issue 35).

Run from the repository root (penguins needs the ``palmerpenguins`` package, which ships the
table; without it that table is skipped)::

    python -m benchmarks.privacy                          # 3 tables, seeds 0 1 2, floor 0.1
    python -m benchmarks.privacy --seeds 0 --datasets wine --floor 0.05

Protocol. Each table's rows are split 50/50 per class (the seed drives the split and every
method's ``random_state``); each method oversamples the train half to equal class counts ("not
majority"). For each generated class, its train and holdout rows are cut to the same size, and
the **DCR share** is the share of the class's new rows nearer to a train row of the class than to
a holdout row of it (numeric columns, standardised with the train half's mean and std,
Euclidean): 0.5 is what rows as new as unseen real ones give. The **memorised share** is the
share whose nearest train row is less than a third as far as the second nearest. Also checked:
each class got exactly its planned rows, and no new row equals a real one (every column). The
balanced accuracy of a scaled logistic regression and a random forest (mean) trained on each
method's rows and scored on the holdout half shows what the floor costs there.

Prints a markdown table of means over seeds (± std for the DCR share) and writes
``benchmarks/results/privacy.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from imblearn.over_sampling import SMOTE, SMOTENC
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from augment import GANOverSampler
from augment.core.privacy import dcr_share, memorised_share
from augment.tabular.sources import load_table

LABEL = "target"
DATASETS = ("breast_cancer", "wine", "penguins")
RESULTS = Path(__file__).parent / "results" / "privacy.json"


def load(name: str) -> pd.DataFrame | None:
    """The table with its label in ``target``; None when penguins' package is missing."""
    if name != "penguins":
        return load_table(f"sklearn:{name}", LABEL)
    try:
        from palmerpenguins import load_penguins
    except ImportError:
        return None
    frame = load_penguins().dropna().reset_index(drop=True)  # SMOTE takes no gaps
    frame = frame.rename(columns={"species": LABEL})
    for column in ("island", "sex"):
        frame[column] = frame[column].astype("category")
    return frame


def numeric_columns(frame: pd.DataFrame) -> list[str]:
    """The measured columns: the numbers (penguins' ``year``, three values, is a category)."""
    features = frame.drop(columns=[LABEL])
    return [c for c in features.columns if features[c].dtype.kind == "f"]


def method_rows(method: str, train: pd.DataFrame, seed: int, floor: float) -> pd.DataFrame:
    """``train`` plus the method's new rows (same columns, new rows last)."""
    X, y = train.drop(columns=[LABEL]), train[LABEL]
    if method == "smote":
        nominal = [i for i, c in enumerate(X.columns) if X[c].dtype.kind not in "fi"]
        sampler = (
            SMOTENC(categorical_features=nominal, random_state=seed)
            if nominal
            else SMOTE(random_state=seed)
        )
    else:
        sampler = GANOverSampler(
            random_state=seed, privacy_floor=floor if method == "augment+floor" else None
        )
    X_res, y_res = sampler.fit_resample(X, y)
    frame = pd.DataFrame(X_res, columns=X.columns)
    frame[LABEL] = np.asarray(y_res)
    return frame


def measure(
    real: pd.DataFrame, holdout: pd.DataFrame, rows: pd.DataFrame, seed: int
) -> dict[str, Any]:
    """The DCR and memorised shares of the new rows (pooled over generated classes), whether
    the counts are exact and how many new rows equal a real one."""
    columns = numeric_columns(real)
    mean = real[columns].to_numpy(np.float64).mean(axis=0)
    std = real[columns].to_numpy(np.float64).std(axis=0)
    std = np.where(std > 0, std, 1.0)

    def points(frame: pd.DataFrame) -> np.ndarray:
        return (frame[columns].to_numpy(np.float64) - mean) / std

    new = rows.iloc[len(real) :]
    counts = real[LABEL].value_counts()
    target = counts.max()
    rng = np.random.default_rng(seed)
    closer, flagged = [], []
    exact = all(int((new[LABEL] == c).sum()) == target - n for c, n in counts.items() if n < target)
    for cls in new[LABEL].unique():
        made = points(new[new[LABEL] == cls])
        train_rows = points(real[real[LABEL] == cls])
        holdout_rows = points(holdout[holdout[LABEL] == cls])
        share = dcr_share(train_rows, holdout_rows, made, rng)
        closer.append((share, len(made)))
        flagged.append((memorised_share(train_rows, made), len(made)))
    everything = pd.concat([real, holdout]).drop(columns=[LABEL]).astype(object)
    copies = new.drop(columns=[LABEL]).astype(object).merge(everything.drop_duplicates())

    def pooled(pairs: list[tuple[float, int]]) -> float:
        return float(sum(s * n for s, n in pairs) / max(1, sum(n for _, n in pairs)))

    return {
        "dcr_share": pooled(closer),
        "memorised_share": pooled(flagged),
        "counts_exact": bool(exact),
        "copies": len(copies),
    }


def balanced_accuracy(rows: pd.DataFrame, holdout: pd.DataFrame, seed: int) -> float:
    """Mean over a scaled logistic regression and a random forest, one-hot nominal columns."""
    features = rows.drop(columns=[LABEL])
    nominal = [c for c in features.columns if features[c].dtype.kind not in "fi"]
    encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False).fit(features[nominal])

    def matrix(frame: pd.DataFrame) -> np.ndarray:
        numbers = frame.drop(columns=[LABEL, *nominal]).to_numpy(np.float64)
        return np.hstack([numbers, encoder.transform(frame[nominal])]) if nominal else numbers

    scores = []
    for model in (
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
        RandomForestClassifier(n_estimators=200, random_state=seed, n_jobs=1),
    ):
        model.fit(matrix(rows), rows[LABEL].astype(str))
        predicted = model.predict(matrix(holdout))
        scores.append(balanced_accuracy_score(holdout[LABEL].astype(str), predicted))
    return float(np.mean(scores))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--floor", type=float, default=0.1, help="augment's privacy_floor")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    methods = ("augment", "augment+floor", "smote")
    results: dict[str, Any] = {"floor": args.floor, "seeds": args.seeds, "tables": {}}
    for name in args.datasets.split(","):
        frame = load(name)
        if frame is None:
            print(f"{name}: skipped (pip install palmerpenguins)")
            continue
        runs: dict[str, list[dict[str, Any]]] = {m: [] for m in methods}
        for seed in args.seeds:
            train, holdout = train_test_split(
                frame, test_size=0.5, stratify=frame[LABEL], random_state=seed
            )
            train, holdout = train.reset_index(drop=True), holdout.reset_index(drop=True)
            for method in methods:
                began = time.perf_counter()
                rows = method_rows(method, train, seed, args.floor)
                seconds = time.perf_counter() - began
                run = measure(train, holdout, rows, seed)
                run["balanced_accuracy"] = balanced_accuracy(rows, holdout, seed)
                run["seconds"] = seconds
                runs[method].append(run)
        results["tables"][name] = runs

    print(
        f"\nDCR share vs an equal-size unseen half (0.5 = as new as unseen rows); privacy_floor="
        f"{args.floor}; seeds {args.seeds}\n"
    )
    print("| table | method | DCR share | memorised | copies | counts exact | bal acc | s |")
    print("|---|---|---|---|---|---|---|---|")
    for name, runs in results["tables"].items():
        for method, items in runs.items():
            shares = [r["dcr_share"] for r in items]
            print(
                f"| {name} | {method} | {np.mean(shares):.2f} ± {np.std(shares):.2f} | "
                f"{np.mean([r['memorised_share'] for r in items]):.3f} | "
                f"{sum(r['copies'] for r in items)} | "
                f"{all(r['counts_exact'] for r in items)} | "
                f"{np.mean([r['balanced_accuracy'] for r in items]):.4f} | "
                f"{np.mean([r['seconds'] for r in items]):.1f} |"
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
