"""What the privacy floor costs on KEEL: augment and augment_floor, each ranked among the eight
peers of ``keel.py`` (issue 35).

A run of ``keel.py --methods augment,augment_floor --seed N`` holds the two; the peers come from
a stored full run of the same fold seed (their scores depend on the seed alone), or from the same
file when it ran every method::

    python -m benchmarks.keel --methods augment,augment_floor --seed 1 --out /tmp/floor1
    python -m benchmarks.keel_floor 1:/tmp/floor1.json:benchmarks/results/keel_seed1.json
    python -m benchmarks.keel_floor 0:benchmarks/results/keel_floor_seed0.json

Prints, per seed, the mean ranks of each of the two among nine methods (the peers plus that one),
their mean scores and median resample seconds, and the floor's per-table differences.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.keel import METHODS, mean_ranks, mean_scores, median_seconds

VARIANTS = ("augment", "augment_floor")
# every other method of the benchmark: the peers each variant is ranked among
PEERS = [name for name in METHODS if name not in VARIANTS]


def _nan(value: Any) -> Any:
    """JSON's null (a failed method) back to NaN, all the way down."""
    if isinstance(value, dict):
        return {key: _nan(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_nan(item) for item in value]
    return float("nan") if value is None else value


def datasets(path: str) -> dict[str, Any]:
    return _nan(json.loads(Path(path).read_text())["datasets"])


def merged(run: str, peers: str | None) -> dict[str, Any]:
    """Per dataset, the peers' results with the run's augment and augment_floor."""
    new = datasets(run)
    stored = datasets(peers) if peers else new
    return {
        name: {
            "methods": {
                **{m: stored[name]["methods"][m] for m in PEERS},
                **{m: result["methods"][m] for m in VARIANTS},
            }
        }
        for name, result in new.items()
    }


def main(argv: list[str] | None = None) -> None:
    rows, differences = [], []
    for spec in argv if argv is not None else sys.argv[1:]:
        seed, run, *peers = spec.split(":")
        tables = merged(run, peers[0] if peers else None)
        for variant in VARIANTS:
            methods = [*PEERS, variant]
            ranks = mean_ranks(tables, methods)
            scores = mean_scores(tables, methods)
            place = sorted(methods, key=lambda m: ranks["balanced_accuracy"][m]).index(variant)
            rows.append(
                f"| {seed} | {variant} | {ranks['balanced_accuracy'][variant]:.2f} ({place + 1}) "
                f"| {ranks['roc_auc'][variant]:.2f} | {ranks['g_mean'][variant]:.2f} "
                f"| {ranks['f1'][variant]:.2f} | {scores['balanced_accuracy'][variant]:.4f} "
                f"| {scores['roc_auc'][variant]:.4f} "
                f"| {median_seconds(tables, methods)[variant]:.2f} |"
            )
        for metric in ("balanced_accuracy", "roc_auc"):
            gap = np.array(
                [
                    t["methods"]["augment_floor"]["means"][metric]
                    - t["methods"]["augment"]["means"][metric]
                    for t in tables.values()
                ]
            )
            worst = list(tables)[int(np.argmin(gap))]
            differences.append(
                f"seed {seed}, {metric}: floor minus augment {gap.mean():+.4f} on average; "
                f"lower by more than 0.005 on {(gap < -0.005).sum()} of {len(gap)} tables, higher "
                f"on {(gap > 0.005).sum()}; the largest drop {gap.min():+.4f} ({worst})"
            )
    print(
        "| seed | method | rank bal acc (place of 9) | rank AUC | rank G-mean | rank F1 "
        "| mean bal acc | mean AUC | median s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print()
    print("\n".join(differences))


if __name__ == "__main__":
    main()
