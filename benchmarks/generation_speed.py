"""Generation speed per process: where a table job's generation time goes, phase by phase.

Run from the repository root::

    python -m benchmarks.generation_speed                      # 500,000 minority rows, 1 and 2
                                                               # torch threads
    python -m benchmarks.generation_speed --against /tmp/base  # the same, alternating with the
                                                               # code of another checkout
    python -m benchmarks.generation_speed --rows 100000 --repeat 1 --threads 1   # quick

The model is the breast_cancer job's (30 numeric columns, default settings: ``mix`` with half
the rows anchored, the neighbour filter, the moment map, 250 training steps: the filter's share
statistics are those of a trained GAN); its file keeps the real rows, so the :class:`RowGenerator` is the
one the job builds (``augment/tabular/modality.py``, ``generate``). The file is made once and
every measurement loads the same one.

Each measurement runs in a fresh process with ``PYTHONPATH`` set to the checkout it measures
(``--against`` alternates the two, so a busy machine slows both alike) and reports:

- per phase, seconds spent in it while ``RowGenerator.class_batches`` streamed the rows into a
  :class:`augment.core.shards.ShardWriter` (timed by wrapping the methods the generator calls):
  GAN sampling (the generator network and hard sampling), GAN decoding (the encoder's
  ``inverse_transform``), the neighbour search of the filter, the rest of the filter (ranking and
  picking the kept third), the moment map (fitting and applying), anchored interpolation, finish
  (rounding, ``TableForm.restore``, the label column) and Parquet (Arrow conversion, compression,
  writes), and ``other`` (what no wrapper saw);
- rows/s over the whole stream, the sha256 of the written parts (same seed, same code: same
  bytes; old vs new code: bytes identical or not);
- the filter's kept share statistics and per-column means, stds and quantiles of the rows
  (``--stats``), to compare the distribution of the rows between two checkouts.

Prints a markdown table per thread count.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

PHASES = [
    "gan sampling",
    "gan decoding",
    "neighbour search",
    "filter pick",
    "moment map",
    "anchored",
    "finish",
    "parquet",
    "other",
]


def make_model(folder: Path, seed: int = 0) -> Path:
    """The breast_cancer job's model file (real rows kept), default settings."""
    from augment.pipeline.config import parse_config
    from augment.pipeline.job import run_job

    config = parse_config(
        {
            "name": "generation_speed",
            "data": {"source": "sklearn:breast_cancer", "label": "target"},
            "balance": {"sampling_strategy": {"benign": 1000, "malignant": 1000}},
            "train": {"device": "cpu", "seed": seed},
            "validate": {"enabled": False},
            "output": {"path": str(folder / "run")},
            "tracking": {"enabled": False},
        }
    )
    run_job(config)
    return folder / "run" / "model" / "synthesizer.pt"


class Clock:
    """Seconds per phase, from wrappers around the methods the generator calls."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    def wrap(self, phase: str, function: Any) -> Any:
        def timed(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[phase] += time.perf_counter() - began

        return timed

    def wrap_iterator(self, phase: str, function: Any) -> Any:
        """A generator function whose ``next`` calls are timed (not the caller's work between)."""

        def timed(*args: Any, **kwargs: Any) -> Any:
            items = iter(function(*args, **kwargs))
            while True:
                began = time.perf_counter()
                try:
                    item = next(items)
                except StopIteration:
                    self.seconds[phase] += time.perf_counter() - began
                    return
                self.seconds[phase] += time.perf_counter() - began
                yield item

        return timed


def measure(model: Path, rows: int, classes: str, threads: int, seed: int, stats: bool) -> dict:
    """One measurement in this process: the stream of ``rows`` rows into Parquet parts."""
    import numpy as np
    import pandas as pd
    from threadpoolctl import threadpool_limits

    from augment.core.device import cpu_threads
    from augment.core.shards import ShardWriter
    from augment.pipeline.registry import load_synthesizer
    from augment.tabular import anchored, generation
    from augment.tabular.generation import RowGenerator

    synthesizer = load_synthesizer(model)
    space = synthesizer.space
    source = RowGenerator(synthesizer, space, **synthesizer.generation)
    label_counts = pd.Series(space.labels).value_counts()
    minority = label_counts.index[-1]
    if classes == "minority":
        plan = {minority: rows}
    else:
        plan = {c: rows // len(label_counts) for c in synthesizer.schema.classes}

    clock = Clock()
    # wrappers on the instances (and on the classes of what they return), nested phases
    # subtracted below: gan sampling = unit_batches - decoding; filter pick = the filter's
    # batches - sampling - search
    for unit in synthesizer.units:
        unit.encoder.inverse_transform = clock.wrap("gan decoding", unit.encoder.inverse_transform)
    synthesizer.unit_batches = clock.wrap_iterator("_unit_batches", synthesizer.unit_batches)
    space.neighbour_share = clock.wrap("neighbour search", space.neighbour_share)
    source._gan_batches = clock.wrap_iterator("_gan_batches", source._gan_batches)
    space.moment_map = clock.wrap("moment map", space.moment_map)
    apply = anchored.MomentMap.apply
    anchored.MomentMap.apply = clock.wrap("moment map", apply)
    space.interpolate = clock.wrap("anchored", space.interpolate)
    synthesizer.finish = clock.wrap("finish", synthesizer.finish)
    kept_share: list[np.ndarray] = []
    if stats:  # the filter's kept share: what the kept rows' neighbours say
        best = generation.best_share

        def best_share(share: np.ndarray, keep: int) -> np.ndarray:
            kept = best(share, keep)
            kept_share.append(share[kept])
            return kept

        generation.best_share = best_share

    # torch's threads and the BLAS / OpenMP pools (scikit-learn's neighbour search) alike, as a
    # Dask worker runs (its nanny sets OMP_NUM_THREADS and friends to 1)
    with (
        tempfile.TemporaryDirectory(prefix="augment-speed-") as tmp,
        cpu_threads(threads),
        threadpool_limits(threads),
    ):
        writer = ShardWriter(Path(tmp), 50_000)
        write = clock.wrap("parquet", writer.write)
        samples: list[pd.DataFrame] = []
        began = time.perf_counter()
        with writer:
            for _, batch in source.class_batches(plan, seed=seed):
                write(batch)
                if stats and len(samples) < 2000:
                    samples.append(batch)
            files = clock.wrap("parquet", writer.commit)()
        seconds = time.perf_counter() - began
        digest = hashlib.sha256()
        for entry in files:
            digest.update(entry["sha256"].encode())
    anchored.MomentMap.apply = apply

    raw = dict(clock.seconds)
    phases = {
        "gan sampling": raw.get("_unit_batches", 0.0) - raw.get("gan decoding", 0.0),
        "gan decoding": raw.get("gan decoding", 0.0),
        "neighbour search": raw.get("neighbour search", 0.0),
        "filter pick": raw.get("_gan_batches", 0.0)
        - raw.get("_unit_batches", 0.0)
        - raw.get("neighbour search", 0.0),
        "moment map": raw.get("moment map", 0.0),
        "anchored": raw.get("anchored", 0.0),
        "finish": raw.get("finish", 0.0),
        "parquet": raw.get("parquet", 0.0),
    }
    phases["other"] = seconds - sum(phases.values())
    total = sum(plan.values())
    result: dict[str, Any] = {
        "rows": total,
        "threads": threads,
        "seconds": seconds,
        "rows_per_second": total / seconds,
        "phases": phases,
        "sha256": digest.hexdigest(),
        "origin": source.totals(),
    }
    if stats:
        frame = pd.concat(samples, ignore_index=True)
        numeric = frame.select_dtypes("number")
        share = np.concatenate(kept_share) if kept_share else np.zeros(0)
        result["stats"] = {
            "kept_share_mean": float(share.mean()) if len(share) else None,
            "kept_share_at_1": float((share == 1).mean()) if len(share) else None,
            "mean": numeric.mean().to_dict(),
            "std": numeric.std().to_dict(),
            "q10": numeric.quantile(0.1).to_dict(),
            "q50": numeric.quantile(0.5).to_dict(),
            "q90": numeric.quantile(0.9).to_dict(),
        }
    return result


def _spawn(checkout: Path, model: Path, args: argparse.Namespace, threads: int) -> dict:
    """One measurement in a fresh process on the code of ``checkout``."""
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        str(model),
        "--rows",
        str(args.rows),
        "--classes",
        args.classes,
        "--threads",
        str(threads),
        "--seed",
        str(args.seed),
    ] + (["--stats"] if args.stats else [])
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=checkout)
    if done.returncode:
        raise SystemExit(f"measurement on {checkout} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def _table(results: dict[str, list[dict]], threads: int) -> str:
    names = list(results)
    header = "| phase | " + " | ".join(f"{name} s" for name in names)
    header += " | ratio |" if len(names) == 2 else " |"
    lines = [header, "|---" * (len(names) + 1 + (len(names) == 2)) + "|"]
    medians = {
        name: {p: _median([r["phases"][p] for r in runs]) for p in PHASES}
        for name, runs in results.items()
    }
    for phase in PHASES + ["total"]:
        cells = []
        for name, runs in results.items():
            value = (
                _median([r["seconds"] for r in runs]) if phase == "total" else medians[name][phase]
            )
            cells.append(f"{value:.2f}")
        line = f"| {phase} | " + " | ".join(cells)
        if len(names) == 2:
            a, b = (float(c) for c in cells)
            line += f" | {a / b:.2f}x |" if b > 0 else " | |"
        else:
            line += " |"
        lines.append(line)
    rates = [f"{_median([r['rows_per_second'] for r in runs]):,.0f}" for runs in results.values()]
    line = "| rows/s | " + " | ".join(rates)
    if len(names) == 2:
        per_run = [
            n["rows_per_second"] / o["rows_per_second"]
            for o, n in zip(results[names[0]], results[names[1]], strict=True)
        ]
        line += f" | {_median(per_run):.2f}x |"
    else:
        line += " |"
    lines.append(line)
    return f"**{threads} thread(s)**\n\n" + "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=500_000, help="rows to generate")
    parser.add_argument(
        "--classes",
        choices=("minority", "both"),
        default="minority",
        help="all rows of the minority class, or split evenly over both",
    )
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=3, help="measurements per checkout")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--against", type=Path, help="another checkout to compare with")
    parser.add_argument("--model", type=Path, help="a model file (default: fitted once)")
    parser.add_argument("--stats", action="store_true", help="distribution of the rows")
    parser.add_argument("--output", type=Path, help="write every measurement as JSON here")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        result = measure(
            args.child, args.rows, args.classes, args.threads[0], args.seed, args.stats
        )
        print(json.dumps(result))
        return

    here = Path(__file__).resolve().parent.parent
    checkouts = {"this": here}
    if args.against:
        checkouts = {"against": args.against.resolve(), "this": here}
    with tempfile.TemporaryDirectory(prefix="augment-speed-model-") as tmp:
        model = args.model or make_model(Path(tmp))
        everything: dict[int, dict[str, list[dict]]] = {}
        for threads in args.threads:
            results: dict[str, list[dict]] = {name: [] for name in checkouts}
            for _ in range(args.repeat):  # alternate the checkouts: drift hits both
                for name, checkout in checkouts.items():
                    results[name].append(_spawn(checkout, model, args, threads))
            everything[threads] = results
            print(_table(results, threads), flush=True)
            for name, runs in results.items():
                print(f"\n{name}: sha256 {sorted({r['sha256'][:16] for r in runs})}")
            print()
    if args.output:
        args.output.write_text(json.dumps(everything, indent=1))


if __name__ == "__main__":
    main()
