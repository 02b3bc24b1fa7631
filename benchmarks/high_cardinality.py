"""High-cardinality categories: top-k levels + a per-class draw of the rare ones vs the plain
one-hot of every level (issue 16, item 5).

Run from the repository root::

    python -m benchmarks.high_cardinality            # seeds 0 1 2 (a few minutes on 2 cores)
    python -m benchmarks.high_cardinality --quick    # smoke test: one seed, 20 steps

The table: 8,000 rows, two classes at 9:1, a ``merchant`` column drawn from 2,000 levels
(Zipf-like shares, exponent 0.7: about 1,700 of them occur) whose frequencies depend on the
class (a quarter of the minority's rows are at merchants from the far end of the tail),
and three numeric columns shifted by class. A stratified 30% holdout is set aside; the sampler
oversamples the training split's minority to the majority's count.

Methods: ``GANOverSampler(max_levels=k)`` for k in 20, 50, 100 and ``max_levels=None`` (the
plain one-hot of all 2,000 levels), each with the default generator (half anchored, half GAN)
and GAN-only (``generator="gan"``, where the category comes from the model alone).

Measures, per method (mean ± std over seeds):

- ``seconds``: fit + resample (``time.perf_counter``);
- ``width``: the encoded row the GAN generates (one-hot levels included);
- ``TV``: total variation distance between the merchant level frequencies of the generated
  minority rows and of the real minority training rows (0 = same shares, 1 = disjoint);
  ``TV floor`` is the same distance for as many rows drawn with replacement from the real
  minority rows: what sampling noise alone gives at this size;
- ``new levels``: generated merchant values not seen in the training rows (must be 0);
- ``bal. acc.``: balanced accuracy on the holdout of a logistic regression (one-hot merchant +
  standardised numbers) trained on the resampled rows.

Prints a markdown table and writes ``benchmarks/results/high_cardinality.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

LEVELS = 2000
RESULTS = Path(__file__).parent / "results" / "high_cardinality.json"


def make_table(seed: int, n_rows: int = 8000) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    y = np.where(rng.random(n_rows) < 0.1, "minority", "majority")
    minority = y == "minority"
    shares = 1.0 / np.arange(1, LEVELS + 1) ** 0.7  # Zipf-like: a long tail of rare levels
    rank = rng.choice(LEVELS, size=n_rows, p=shares / shares.sum())
    # the minority's merchants: the same popular ones, but a quarter of its rows at merchants
    # of its own (the far end of the tail, which the majority rarely sees)
    own = minority & (rng.random(n_rows) < 0.25)
    tail = shares[:300] / shares[:300].sum()
    rank = np.where(own, LEVELS - 1 - rng.choice(300, size=n_rows, p=tail), rank)
    shift = np.where(minority, 0.8, 0.0)
    X = pd.DataFrame(
        {
            "merchant": pd.Series([f"m{r:04d}" for r in rank], dtype="string"),
            "amount": rng.gamma(2.0, 30.0, n_rows) * np.exp(shift / 2),
            "hour": rng.normal(14 + 3 * shift, 4, n_rows),
            "score": rng.normal(shift, 1, n_rows),
        }
    )
    return X, pd.Series(y, name="label")


def split(X: pd.DataFrame, y: pd.Series, seed: int):
    from sklearn.model_selection import train_test_split

    return train_test_split(X, y, test_size=0.3, stratify=y, random_state=seed)


def total_variation(a: pd.Series, b: pd.Series) -> float:
    shares = pd.concat(
        [a.value_counts(normalize=True), b.value_counts(normalize=True)], axis=1
    ).fillna(0.0)
    return float(0.5 * (shares.iloc[:, 0] - shares.iloc[:, 1]).abs().sum())


def balanced_accuracy(X_train, y_train, X_test, y_test) -> float:
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    model = make_pipeline(
        make_column_transformer(
            (OneHotEncoder(handle_unknown="ignore"), ["merchant"]),
            (StandardScaler(), ["amount", "hour", "score"]),
        ),
        LogisticRegression(max_iter=2000),
    )
    model.fit(X_train.astype({"merchant": object}), y_train)
    predicted = model.predict(X_test.astype({"merchant": object}))
    return float(balanced_accuracy_score(y_test, predicted))


def run_case(max_levels: int | None, generator: str, seed: int, steps: int) -> dict[str, Any]:
    from augment import GANOverSampler

    X, y = make_table(seed)
    X_train, X_test, y_train, y_test = split(X, y, seed)
    X_train, y_train = X_train.reset_index(drop=True), y_train.reset_index(drop=True)
    sampler = GANOverSampler(
        random_state=seed, max_levels=max_levels, generator=generator, steps=steps
    )
    began = time.perf_counter()
    X_res, y_res = sampler.fit_resample(X_train, y_train)
    seconds = time.perf_counter() - began
    new = X_res.iloc[len(X_train) :]
    new_labels = np.asarray(y_res[len(X_train) :])
    generated = new.loc[new_labels == "minority", "merchant"]
    real = X_train.loc[y_train == "minority", "merchant"]
    rng = np.random.default_rng(seed)
    floor = real.iloc[rng.integers(len(real), size=len(generated))]
    return {
        "max_levels": max_levels,
        "generator": generator,
        "seed": seed,
        "seconds": seconds,
        "width": sum(span.dim for span in sampler.synthesizer_.units[0].encoder.spans),
        "generated": len(generated),
        "tv": total_variation(generated, real),
        "tv_floor": total_variation(floor, real),
        "new_levels": int((~generated.isin(set(X_train["merchant"]))).sum()),
        "balanced_accuracy": balanced_accuracy(X_res, y_res, X_test, y_test),
        "balanced_accuracy_real": balanced_accuracy(X_train, y_train, X_test, y_test),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=250, help="GAN steps (the default)")
    parser.add_argument("--quick", action="store_true", help="one seed, 20 steps")
    parser.add_argument(
        "--output", type=Path, help=f"results JSON (default {RESULTS}; none in quick mode)"
    )
    args = parser.parse_args()
    seeds, steps = ([0], 20) if args.quick else (args.seeds, args.steps)
    output = args.output or (None if args.quick else RESULTS)
    if args.quick:
        print("QUICK smoke test: one seed, 20 steps; not a benchmark")
    cases = [(k, g) for g in ("mix", "gan") for k in (20, 50, 100, None)]
    run_case(20, "gan", 0, 2)  # torch's one-off lazy imports, before any timing
    rows = []
    for max_levels, generator in cases:
        for seed in seeds:
            rows.append(run_case(max_levels, generator, seed, steps))
            print(json.dumps(rows[-1]), flush=True)
    frame = pd.DataFrame(rows)
    table = (
        frame.fillna({"max_levels": LEVELS})
        .groupby(["generator", "max_levels"], sort=False)
        .agg(
            seconds=("seconds", "mean"),
            width=("width", "mean"),
            tv=("tv", "mean"),
            tv_std=("tv", "std"),
            tv_floor=("tv_floor", "mean"),
            new_levels=("new_levels", "sum"),
            balanced_accuracy=("balanced_accuracy", "mean"),
            balanced_accuracy_std=("balanced_accuracy", "std"),
            real_only=("balanced_accuracy_real", "mean"),
        )
        .reset_index()
    )
    print(f"\nseeds {seeds}, {steps} steps; max_levels {LEVELS} = the plain one-hot (None)\n")
    print(
        "| generator | max_levels | fit+resample s | width | TV | TV floor | new levels "
        "| bal. acc. | real only |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in table.itertuples():
        print(
            f"| {row.generator} | {int(row.max_levels)} | {row.seconds:.1f} | {row.width:.0f} | "
            f"{row.tv:.3f} ± {row.tv_std:.3f} | {row.tv_floor:.3f} | {row.new_levels} | "
            f"{row.balanced_accuracy:.3f} ± {row.balanced_accuracy_std:.3f} | {row.real_only:.3f} |"
        )
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps({"seeds": seeds, "steps": steps, "runs": rows}, indent=1))


if __name__ == "__main__":
    main()
