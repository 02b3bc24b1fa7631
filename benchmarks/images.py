"""Image oversampling, side by side on digits: none, random, albumentations and augment.

Run from the repository root::

    python -m benchmarks.images                 # seeds 0 1 2 (about 15 minutes on 2 cores)
    python -m benchmarks.images --quick         # smoke test: 1 seed, few steps and epochs

For every seed: scikit-learn's digits are upscaled to 28x28, split 70/30 (stratified, seeded), and
the training split is subsampled so class sizes fall geometrically from the largest to the smallest
at a 10:1 ratio (``augment.core.balance.subsample_to_ratio``, as ``configs/digits.yaml`` does). Each
method oversamples the training split to equal class counts; the same small CNN
(``augment.image.classifier``, same epochs and seed) is trained on each method's images and
scored on the untouched holdout. The domain FID compares each method's added images with the
holdout, in the feature space of a CNN trained on the real (imbalanced) training split.

Throughput is measured apart from quality, on the idle process: GAN training at 28x28, batch 128
(real images consumed per second, after warm-up), and generation into Parquet shards of PNG bytes
(images per second, model forward + PNG encoding + Parquet write).

Prints a markdown table and the targets, and writes ``benchmarks/results/images.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from sklearn.metrics import balanced_accuracy_score, recall_score  # noqa: E402

from augment.core.balance import class_counts, plan_samples, split_holdout, subsample_to_ratio  # noqa: E402
from augment.core.device import autocast_dtype  # noqa: E402
from augment.image.cgan import ImageCGAN, ImageGANSettings, ImageTrainSettings  # noqa: E402
from augment.image.classifier import train_classifier  # noqa: E402
from augment.image.fid import DomainExtractor, frechet_distance  # noqa: E402
from augment.image.generate import generate_image_shards  # noqa: E402
from augment.image.sources import load_images  # noqa: E402
from augment.image.synthesizer import ImageSynthesizer  # noqa: E402
from augment.image.validate import classic_oversample, random_oversample  # noqa: E402

SIZE = 28
RATIO = 10
HOLDOUT = 0.3
RESULTS_DIR = Path(__file__).parent / "results"
METHODS = ("none", "random_oversampling", "albumentations", "augment")


def split(seed: int) -> dict[str, np.ndarray]:
    data = load_images("sklearn:digits", size=SIZE)
    frame = pd.DataFrame({"label": data.labels})
    train, holdout = split_holdout(frame, "label", HOLDOUT, seed)
    train = subsample_to_ratio(train, "label", RATIO, seed)
    t, h = train.index.to_numpy(), holdout.index.to_numpy()
    return {
        "train_x": data.images[t],
        "train_y": data.labels[t].astype(np.int64),
        "holdout_x": data.images[h],
        "holdout_y": data.labels[h].astype(np.int64),
    }


def targets_for(labels: np.ndarray) -> dict[int, int]:
    counts = class_counts(labels)
    plan = plan_samples(counts, "not majority")
    return {int(c): counts[c] + plan[c] for c in counts}


def fit_gan(x, y, seed, steps) -> tuple[ImageCGAN, dict[int, int]]:
    """The default conditional GAN trained on ``(x, y)``, and the plan (images to add per class)."""
    counts = class_counts(y)
    plan = {int(c): int(n) for c, n in plan_samples(counts, "not majority").items()}
    model = ImageCGAN(sorted(int(c) for c in counts), ImageGANSettings(size=SIZE))
    trainer = model.make_trainer(x, y.tolist(), ImageTrainSettings(steps=steps, seed=seed), _cpu())
    for step in range(steps):
        trainer.train_step(step)
    return model, plan


def resample_augment(x, y, seed, steps):
    model, plan = fit_gan(x, y, seed, steps)
    new_x, new_y = ImageSynthesizer([model], model.classes).sample(plan, seed=seed)
    return np.concatenate([x, new_x]), np.concatenate([y, new_y.astype(np.int64)])


def score(rx, ry, n_real, data, extractor, holdout_features, epochs, seed) -> dict[str, float]:
    """Train the downstream CNN on ``(rx, ry)`` (real images first, then ``rx[n_real:]`` added)
    and score it on the holdout; the domain FID is the added images' against the holdout's."""
    real_counts = class_counts(ry[:n_real])
    minority = min(real_counts, key=real_counts.get)
    model = train_classifier(rx, ry, 10, epochs=epochs, seed=seed)
    predicted = model.predict(data["holdout_x"])
    added = rx[n_real:]
    return {
        "balanced_accuracy": float(balanced_accuracy_score(data["holdout_y"], predicted)),
        "minority_recall": float(
            recall_score(data["holdout_y"], predicted, labels=[minority], average="macro")
        ),
        "fid_domain": float(frechet_distance(holdout_features, extractor.features(added)))
        if len(added) > 1
        else float("nan"),
    }


def run_seed(seed: int, steps: int, epochs: int) -> dict[str, dict[str, float]]:
    data = split(seed)
    x, y = data["train_x"], data["train_y"]
    targets = targets_for(y)
    judge = train_classifier(x, y, 10, epochs=epochs, seed=seed)
    extractor = DomainExtractor(judge)
    holdout_features = extractor.features(data["holdout_x"])
    results = {}
    for method in METHODS:
        began = time.perf_counter()
        if method == "none":
            rx, ry = x, y
        elif method == "random_oversampling":
            rx, ry = random_oversample(x, y, targets, seed)
        elif method == "albumentations":
            rx, ry = classic_oversample(x, y, targets, seed)
        else:
            rx, ry = resample_augment(x, y, seed, steps)
        seconds = time.perf_counter() - began
        results[method] = score(rx, ry, len(x), data, extractor, holdout_features, epochs, seed)
        results[method]["seconds"] = seconds
        print(f"  seed {seed} {method:20s} " + json.dumps(results[method]), flush=True)
    return results


def _cpu() -> torch.device:
    return torch.device("cpu")


def training_throughput(
    steps: int = 30, warmup: int = 5, width: int = 32, precision: str = "auto"
) -> float:
    """Real images per second through GAN training at 28x28, batch 128 (defaults otherwise)."""
    data = load_images("sklearn:digits", size=SIZE)
    model = ImageCGAN(list(range(10)), ImageGANSettings(size=SIZE, width=width))
    settings = ImageTrainSettings(batch_size=128, precision=precision)
    trainer = model.make_trainer(data.images, data.labels.tolist(), settings, _cpu())
    for step in range(warmup):
        trainer.train_step(step)
    began = time.perf_counter()
    for step in range(warmup, warmup + steps):
        trainer.train_step(step)
    return steps * 128 / (time.perf_counter() - began)


def generation_throughput(n_images: int = 50_000) -> float:
    """Images per second from the EMA generator into Parquet shards of PNG bytes."""
    model = ImageCGAN(list(range(10)), ImageGANSettings(size=SIZE))
    model.build(_cpu())
    synth = ImageSynthesizer([model], list(range(10)))
    plan = {c: n_images // 10 for c in range(10)}
    synth.sample({0: 64})  # warm-up
    with tempfile.TemporaryDirectory() as folder:
        result = generate_image_shards(synth, plan, Path(folder), 10_000, seed=0)
    return sum(result.counts.values()) / result.seconds


QUALITY = ("balanced_accuracy", "minority_recall", "fid_domain")


def summarize(
    per_seed: list[dict[str, dict[str, float]]],
    names: tuple[str, ...] = METHODS,
    metrics: tuple[str, ...] = (*QUALITY, "seconds"),
) -> dict[str, dict[str, Any]]:
    """Mean and std over seeds of each metric, per method (or variant) name."""
    out = {}
    for name in names:
        out[name] = {}
        for metric in metrics:
            values = [run[name][metric] for run in per_seed]
            out[name][metric] = {"mean": float(np.mean(values)), "std": float(np.std(values))}
    return out


def cell(row: dict[str, Any], metric: str, digits: int = 3) -> str:
    """``mean ± std`` of one summarised metric, ``-`` when undefined."""
    m = row[metric]
    return "-" if np.isnan(m["mean"]) else f"{m['mean']:.{digits}f} ± {m['std']:.{digits}f}"


def markdown(summary: dict[str, dict[str, Any]]) -> str:
    lines = [
        "| method | balanced acc | minority recall | domain FID (added vs holdout) | resample s |",
        "|---|---|---|---|---|",
    ]
    for method, row in summary.items():
        lines.append(
            f"| {method} | {cell(row, 'balanced_accuracy')} | {cell(row, 'minority_recall')} | "
            f"{cell(row, 'fid_domain', 1)} | {row['seconds']['mean']:.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=1000, help="GAN generator steps")
    parser.add_argument("--epochs", type=int, default=15, help="downstream CNN epochs")
    parser.add_argument("--quick", action="store_true", help="1 seed, 30 steps, 2 epochs")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.steps, args.epochs = [0], 30, 2
    torch.set_num_threads(os.cpu_count() or 1)

    per_seed = []
    for seed in args.seeds:
        torch.manual_seed(seed)
        per_seed.append(run_seed(seed, args.steps, args.epochs))
    summary = summarize(per_seed)
    widths = (16, 24, 32)  # 32 is the default; the width trades speed for capacity
    rates = {w: training_throughput(steps=5 if args.quick else 30, width=w) for w in widths}
    train_rate = rates[32]
    # what "auto" chose here (bf16 on an AMX CPU), and float32 beside it for comparison
    precision = "bf16" if autocast_dtype(_cpu(), "auto", cpu_bf16_pays=True) else "fp32"
    fp32_rate = training_throughput(steps=5 if args.quick else 30, precision="fp32")
    gen_rate = generation_throughput(2_000 if args.quick else 50_000)

    print("\n## digits 28x28, imbalance 10:1, " + f"{len(args.seeds)} seed(s)\n")
    print(markdown(summary))
    for w, rate in rates.items():
        print(
            f"\nGAN training, width {w}: {rate:,.0f} img/s at 28x28, batch 128, {precision} "
            "(target >= 1,500)"
        )
    print(f"GAN training, width 32, fp32: {fp32_rate:,.0f} img/s")
    print(f"generation into shards: {gen_rate:,.0f} img/s (target >= 10,000)")
    ours, classic = summary["augment"], summary["albumentations"]
    beat = ours["balanced_accuracy"]["mean"] >= classic["balanced_accuracy"]["mean"]
    print("\n## Targets\n")
    print(
        f"- balanced accuracy >= albumentations: {'met' if beat else 'missed'} "
        f"({ours['balanced_accuracy']['mean']:.3f} vs {classic['balanced_accuracy']['mean']:.3f})"
    )
    print(
        f"- training >= 1,500 img/s: {'met' if train_rate >= 1500 else 'missed'} at the default "
        f"width 32; width 16: {'met' if rates[16] >= 1500 else 'missed'}"
    )
    print(f"- generation >= 10,000 img/s: {'met' if gen_rate >= 10_000 else 'missed'}")
    if args.quick:
        print("\n(QUICK smoke test: too few steps and epochs for the numbers to mean anything)")

    results = {
        "config": {
            "seeds": args.seeds,
            "steps": args.steps,
            "epochs": args.epochs,
            "quick": args.quick,
            "size": SIZE,
            "ratio": RATIO,
        },
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
        },
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "summary": summary,
        "per_seed": per_seed,
        "training_precision": precision,  # of the GAN resamples and the throughputs by width
        "training_images_per_second": {str(w): r for w, r in rates.items()},
        "training_images_per_second_fp32_width_32": fp32_rate,
        "generation_images_per_second": gen_rate,
    }
    output = args.output or RESULTS_DIR / ("images_quick.json" if args.quick else "images.json")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2))
    print(f"\nwrote {output}")


if __name__ == "__main__":
    main()
