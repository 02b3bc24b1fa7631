"""Image oversampling, side by side: none, random, albumentations, augment, and stacking.

Run from the repository root::

    python -m benchmarks.images                 # 4 sets x seeds 0 1 2 (over an hour on 2 cores)
    python -m benchmarks.images --sets digits   # one set
    python -m benchmarks.images --quick         # smoke test: 1 seed, few steps and epochs, digits
    python -m benchmarks.images --sets textures --quick   # the same on another set

Sets, all built from what ships offline (scikit-learn's digits, upscaled to 28x28, and the
photographs of scikit-image and scikit-learn):

- ``digits``: split 70/30 (stratified, seeded), the training split subsampled so class sizes fall
  geometrically from the largest to the smallest at a 10:1 ratio
  (``augment.core.balance.subsample_to_ratio``, as ``configs/digits.yaml`` does);
- ``digits-ir50``: the same at 50:1 (the rarest class keeps 2-3 training images);
- ``distorted``: 3,000 digits, each a seeded affine + elastic distortion of a digit, with pixel
  noise; more varied strokes and poses than the originals, at 10:1;
- ``textures``: 32x32 grey patches of ten photographs and textures (brick, grass, gravel, tissue,
  galaxies, coins, fur, ...; ``benchmarks.texture_data``), 300 training patches per class cut from
  the left 70 % of each image and 150 test patches from the right, past a gap one patch wide (no
  test pixel is ever in training), the training patches subsampled to 10:1 as above. A warp
  moves a texture but makes no new one; a generator may.

Arms (every fixed set oversamples the training split to equal class counts):

- ``none``, ``random_oversampling``, ``albumentations`` (copies moved by the albumentations
  pipeline), ``augment`` (``ImageGANOverSampler()`` with its defaults: the recipe chosen on an
  inner split of the training images);
- ``classic``: random oversampling's set (real images and copies) with the albumentations
  pipeline on the fly (a fresh move of every image in every epoch): classic augmentation at its
  best, with the same class counts as the stacked arm; ``augment+classic``: augment's images
  made with the chosen recipe minus its warp (the pipeline moves the images anyway), half of
  each class's top-up, copies of real images the other half (``augment.image.validate.
  stacked_set``, the job's default), with the same pipeline on the fly; ``augment+classic, all
  synthetic``: the same with the whole top-up synthetic (CNN only: a linear model has no
  training loop to put them in).

Downstream: the small CNN of ``augment.image.classifier`` (same epochs and seed) and a logistic
regression on pixels, both scored by balanced accuracy on the untouched holdout. The domain FID
compares each method's added images with the holdout (overall and per class), in the features of
a CNN trained on the real training split.

Throughput is measured apart from quality, on the idle process: GAN training at 28x28, batch 128
(real images consumed per second, after warm-up), and generation into Parquet shards of PNG bytes
(images per second, model forward + PNG encoding + Parquet write).

Prints markdown tables and the targets, and writes ``benchmarks/results/images.json``.
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
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.metrics import balanced_accuracy_score  # noqa: E402

from augment.core.balance import class_counts, plan_samples, split_holdout, subsample_to_ratio  # noqa: E402
from augment.core.device import autocast_dtype  # noqa: E402
from augment.image.cgan import ImageCGAN, ImageGANSettings, ImageTrainSettings  # noqa: E402
from augment.image.classic import warp_images  # noqa: E402
from augment.image.classifier import train_classifier  # noqa: E402
from augment.image.fid import DomainExtractor, frechet_distance  # noqa: E402
from augment.image.generate import generate_image_shards  # noqa: E402
from augment.image.latent import LatentSettings, fit_latent_bank  # noqa: E402
from augment.image.sampler import ImageGANOverSampler  # noqa: E402
from augment.image.sources import load_images  # noqa: E402
from augment.image.synthesizer import ImageSynthesizer, Recipe  # noqa: E402
from augment.image.validate import (  # noqa: E402
    classic_oversample,
    random_oversample,
    stacked_set,
)
from benchmarks.texture_data import PATCH, texture_patches  # noqa: E402

SIZE = 28
HOLDOUT = 0.3
RESULTS_DIR = Path(__file__).parent / "results"
SETS = {"digits": 10, "digits-ir50": 50, "distorted": 10, "textures": 10}  # imbalance ratios
SIZES = {"digits": SIZE, "digits-ir50": SIZE, "distorted": SIZE, "textures": PATCH}
FIXED = ("none", "random_oversampling", "albumentations", "augment")
ON_THE_FLY = ("classic", "augment+classic", "augment+classic, all synthetic")


def distorted_digits(n_images: int = 3000, seed: int = 1234) -> tuple[np.ndarray, np.ndarray]:
    """``n_images`` digits at 28x28, each a seeded affine + elastic move of an original, plus noise."""
    data = load_images("sklearn:digits", size=SIZE)
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(data.images), size=n_images, replace=True)
    images = warp_images(data.images[picks], seed=seed)
    noise = rng.normal(0, 12, size=images.shape)
    images = np.clip(images.astype(np.float64) + noise, 0, 255).astype(np.uint8)
    return images, data.labels[picks].astype(np.int64)


def split(seed: int, name: str = "digits") -> dict[str, np.ndarray]:
    """The seed's imbalanced training split of set ``name`` and its untouched holdout."""
    if name == "textures":
        # the holdout is fixed: the patches of each image's test region
        patches = texture_patches()
        images, labels = patches.train_images, patches.train_labels
        train = pd.DataFrame({"label": labels})
        holdout_x, holdout_y = patches.test_images, patches.test_labels
    else:
        if name == "distorted":
            images, labels = distorted_digits()
        else:
            data = load_images("sklearn:digits", size=SIZE)
            images, labels = data.images, data.labels.astype(np.int64)
        train, holdout = split_holdout(pd.DataFrame({"label": labels}), "label", HOLDOUT, seed)
        h = holdout.index.to_numpy()
        holdout_x, holdout_y = images[h], labels[h]
    train = subsample_to_ratio(train, "label", SETS[name], seed)
    t = train.index.to_numpy()
    return {
        "train_x": images[t],
        "train_y": labels[t],
        "holdout_x": holdout_x,
        "holdout_y": holdout_y,
    }


def targets_for(labels: np.ndarray) -> dict[int, int]:
    counts = class_counts(labels)
    plan = plan_samples(counts, "not majority")
    return {int(c): counts[c] + plan[c] for c in counts}


def linear_score(rx: np.ndarray, ry: np.ndarray, data: dict[str, np.ndarray]) -> float:
    """Balanced accuracy of a logistic regression on pixels (scaled to 0..1)."""
    model = LogisticRegression(max_iter=300, C=0.1)
    model.fit(rx.reshape(len(rx), -1) / 255.0, ry)
    predicted = model.predict(data["holdout_x"].reshape(len(data["holdout_x"]), -1) / 255.0)
    return float(balanced_accuracy_score(data["holdout_y"], predicted))


def fid_scores(added, added_y, data, extractor, holdout_features) -> dict[str, float]:
    """Domain FID of the added images vs the holdout, overall and per class (>= 2 images)."""
    out = {"fid_domain": float("nan")}
    if len(added) < 2:
        return out
    features = extractor.features(added)
    out["fid_domain"] = float(frechet_distance(holdout_features, features))
    for cls in np.unique(added_y):
        mine, real = features[added_y == cls], holdout_features[data["holdout_y"] == cls]
        if len(mine) >= 2 and len(real) >= 2:
            out[f"fid_domain/class/{int(cls)}"] = float(frechet_distance(real, mine))
    return out


def without_transfer(
    x: np.ndarray, y: np.ndarray, seed: int, warp: bool, steps: int
) -> tuple[np.ndarray, ...]:
    """The ablation of transfer: one autoencoder per class, trained on that class's images only
    (same settings and steps as the sampler's shared one), then the same interpolation."""
    plan = {int(c): int(n) for c, n in plan_samples(class_counts(y), "not majority").items()}
    new, new_y = [x], [y]
    for cls, n in plan.items():
        if n <= 0:
            continue
        members = x[y == cls]
        bank = fit_latent_bank(
            members,
            [cls] * len(members),
            [cls],
            LatentSettings(size=x.shape[1], channels=x.shape[3], steps=steps),
            seed=seed,
            device=_cpu(),
        )
        images = bank.sample(cls, n, seed)
        new.append(warp_images(images, seed) if warp else images)
        new_y.append(np.full(n, cls, dtype=np.int64))
    return np.concatenate(new), np.concatenate(new_y)


def run_seed(
    seed: int,
    name: str,
    epochs: int,
    options: dict[str, Any] | None = None,
    recipes: tuple[str, ...] = (),
    ablation_only: bool = False,
) -> dict[str, Any]:
    """Every arm on one seed of one set; ``recipes`` adds ``augment[<recipe>]`` arms that fix
    the sampler's recipe instead of choosing it (the ablation), and ``no-transfer[<recipe>]``
    arms for each latent recipe among them (:func:`without_transfer`)."""
    data = split(seed, name)
    x, y = data["train_x"], data["train_y"]
    n_classes = int(max(y.max(), data["holdout_y"].max())) + 1
    targets = targets_for(y)
    judge = train_classifier(x, y, n_classes, epochs=epochs, seed=seed)
    extractor = DomainExtractor(judge)
    holdout_features = extractor.features(data["holdout_x"])
    results: dict[str, Any] = {"counts": {int(k): int(v) for k, v in class_counts(y).items()}}
    sets: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    ablation = [f"augment[{r}]" for r in recipes]
    ablation += [f"no-transfer[{r}]" for r in recipes if r.startswith("latent")]
    fixed = ("none",) if ablation_only else FIXED
    for method in (*fixed, *ablation):
        began = time.perf_counter()
        extra: dict[str, Any] = {}
        if method == "none":
            rx, ry = x, y
        elif method == "random_oversampling":
            rx, ry = random_oversample(x, y, targets, seed)
        elif method == "albumentations":
            rx, ry = classic_oversample(x, y, targets, seed)
        elif method.startswith("no-transfer["):
            ae_steps = (options or {}).get("autoencoder_steps", LatentSettings.steps)
            rx, ry = without_transfer(x, y, seed, method.endswith("+warp]"), ae_steps)
        else:
            recipe = method[len("augment[") : -1] if method.startswith("augment[") else "auto"
            sampler = ImageGANOverSampler(random_state=seed, recipe=recipe, **(options or {}))
            rx, ry = sampler.fit_resample(x, y)
            ry = ry.astype(np.int64)
            extra = {"recipe": sampler.recipe_, "choice": sampler.choice_}
            if method == "augment":
                # stacking warps on the fly: it gets the recipe's images before their warp
                source = Recipe(sampler.synthesizer_.recipe.source)
                sampler.synthesizer_.use(source)
                plan = {int(c): int(n) for c, n in sampler.n_generated_.items() if n}
                new_x, new_y = sampler.sample(plan)
                sets["augment, unwarped"] = (
                    np.concatenate([x, new_x[..., None] if new_x.ndim == 3 else new_x]),
                    np.concatenate([y, new_y.astype(np.int64)]),
                )
        seconds = time.perf_counter() - began
        sets[method] = (rx, ry)
        cnn = train_classifier(rx, ry, n_classes, epochs=epochs, seed=seed)
        row = {
            "cnn": float(
                balanced_accuracy_score(data["holdout_y"], cnn.predict(data["holdout_x"]))
            ),
            "linear": linear_score(rx, ry, data),
            "seconds": seconds,
            **fid_scores(rx[len(x) :], ry[len(x) :], data, extractor, holdout_features),
            **extra,
        }
        results[method] = row
        print(f"  {name} seed {seed} {method:20s} " + json.dumps(row), flush=True)
    if not ablation_only:
        unwarped_x, unwarped_y = sets["augment, unwarped"]
        mixed = stacked_set(x, y, unwarped_x[len(x) :], unwarped_y[len(x) :], seed=seed)
        sets["augment, unwarped, mixed"] = mixed[:2]
    for method, base in (
        ()
        if ablation_only
        else (
            ("classic", "random_oversampling"),
            ("augment+classic", "augment, unwarped, mixed"),
            ("augment+classic, all synthetic", "augment, unwarped"),
        )
    ):
        rx, ry = sets[base]
        cnn = train_classifier(rx, ry, n_classes, epochs=epochs, seed=seed, augment=warp_images)
        results[method] = {
            "cnn": float(balanced_accuracy_score(data["holdout_y"], cnn.predict(data["holdout_x"])))
        }
        print(f"  {name} seed {seed} {method:20s} " + json.dumps(results[method]), flush=True)
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
    model.build(_cpu(), torch.Generator().manual_seed(0))
    synth = ImageSynthesizer([model], list(range(10)))
    plan = {c: n_images // 10 for c in range(10)}
    synth.sample({0: 64})  # warm-up
    with tempfile.TemporaryDirectory() as folder:
        result = generate_image_shards(synth, plan, Path(folder), 10_000, seed=0)
    return sum(result.counts.values()) / result.seconds


def summarize(per_seed: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Mean and std over seeds of each arm's numbers (classes' FID included)."""
    out: dict[str, dict[str, Any]] = {}
    for arm in [a for a in per_seed[0] if a != "counts"]:
        keys = [k for k, v in per_seed[0][arm].items() if isinstance(v, float)]
        out[arm] = {}
        for key in keys:
            values = [run[arm].get(key, float("nan")) for run in per_seed]
            out[arm][key] = {"mean": float(np.mean(values)), "std": float(np.std(values))}
        if arm == "augment":
            out[arm]["recipes"] = [run[arm].get("recipe") for run in per_seed]
    return out


def cell(row: dict[str, Any], metric: str, digits: int = 3) -> str:
    """``mean ± std`` of one summarised metric, ``-`` when undefined."""
    m = row.get(metric)
    if m is None or np.isnan(m["mean"]):
        return "-"
    return f"{m['mean']:.{digits}f} ± {m['std']:.{digits}f}"


def markdown(summary: dict[str, dict[str, Any]]) -> str:
    lines = [
        "| arm | CNN balanced acc | linear balanced acc | domain FID | worst class FID | s |",
        "|---|---|---|---|---|---|",
    ]
    for arm, row in summary.items():
        per_class = [v["mean"] for k, v in row.items() if k.startswith("fid_domain/class/")]
        worst = f"{max(per_class):.1f}" if per_class else "-"
        seconds = f"{row['seconds']['mean']:.1f}" if "seconds" in row else "-"
        lines.append(
            f"| {arm} | {cell(row, 'cnn')} | {cell(row, 'linear')} | "
            f"{cell(row, 'fid_domain', 1)} | {worst} | {seconds} |"
        )
    return "\n".join(lines)


def targets(summaries: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    """The issue's targets, per set: met or missed, with the figures."""
    lines = []
    for name, summary in summaries.items():
        ours, classic, none = summary["augment"], summary["albumentations"], summary["none"]
        for model in ("cnn", "linear"):
            a, c, n = (row[model]["mean"] for row in (ours, classic, none))
            ok = a >= c and a >= n
            lines.append(
                f"- {name}, {model}: augment {a:.3f} >= albumentations {c:.3f} and none {n:.3f}: "
                f"{'met' if ok else 'missed'}"
            )
        lift = summary["augment+classic"]["cnn"]["mean"] - summary["classic"]["cnn"]["mean"]
        lines.append(
            f"- {name}, CNN: stacked - classic = {lift * 100:+.2f} pp (target >= +0.5): "
            f"{'met' if lift >= 0.005 else 'missed'}"
        )
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--sets", nargs="+", default=None, choices=list(SETS), help="default: all (quick: digits)"
    )
    parser.add_argument("--steps", type=int, default=None, help="GAN steps (default: sampler's)")
    parser.add_argument("--epochs", type=int, default=15, help="downstream CNN epochs")
    parser.add_argument(
        "--quick", action="store_true", help="1 seed, 30 steps, 2 epochs, digits unless --sets"
    )
    parser.add_argument("--no-throughput", action="store_true", help="skip the speed section")
    parser.add_argument(
        "--recipes", nargs="*", default=[], help="ablation: also run augment with these recipes"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads (default: all cores; 1 on a busy machine)",
    )
    parser.add_argument(
        "--ablation-only", action="store_true", help="only none and the --recipes arms"
    )
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    options: dict[str, Any] = {"steps": args.steps} if args.steps else {}
    if args.sets is None:
        args.sets = ["digits"] if args.quick else list(SETS)
    if args.quick:
        args.seeds, args.epochs = [0], 2
        options = {"steps": 30, "autoencoder_steps": 30, "choice_epochs": 1}
    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    if args.threads:
        options["cpu_threads"] = args.threads

    per_set: dict[str, list[dict[str, Any]]] = {}
    summaries: dict[str, dict[str, dict[str, Any]]] = {}
    for name in args.sets:
        per_set[name] = []
        for seed in args.seeds:
            torch.manual_seed(seed)
            per_set[name].append(
                run_seed(seed, name, args.epochs, options, tuple(args.recipes), args.ablation_only)
            )
            # every finished seed is kept, so a long run that stops early loses nothing
            partial = (args.output or RESULTS_DIR / "images.json").with_suffix(".partial.json")
            partial.parent.mkdir(parents=True, exist_ok=True)
            partial.write_text(json.dumps(per_set, indent=2, default=str))
        summaries[name] = summarize(per_set[name])
        size = SIZES[name]
        print(f"\n## {name} ({size}x{size}, imbalance {SETS[name]}:1, {len(args.seeds)} seed(s))\n")
        print(markdown(summaries[name]), flush=True)
        if "augment" in summaries[name]:
            chosen = summaries[name]["augment"]["recipes"]
            print("\nrecipes chosen: " + ", ".join(map(str, chosen)))

    speed: dict[str, Any] = {}
    if not args.no_throughput:
        widths = (16, 24, 32)  # 32 is the default; the width trades speed for capacity
        rates = {w: training_throughput(steps=5 if args.quick else 30, width=w) for w in widths}
        # what "auto" chose here (bf16 on an AMX CPU), and float32 beside it for comparison
        precision = "bf16" if autocast_dtype(_cpu(), "auto", cpu_bf16_pays=True) else "fp32"
        fp32_rate = training_throughput(steps=5 if args.quick else 30, precision="fp32")
        gen_rate = generation_throughput(2_000 if args.quick else 50_000)
        for w, rate in rates.items():
            print(f"\nGAN training, width {w}: {rate:,.0f} img/s at 28x28, batch 128, {precision}")
        print(f"GAN training, width 32, fp32: {fp32_rate:,.0f} img/s")
        print(f"generation into shards: {gen_rate:,.0f} img/s (target >= 10,000)")
        speed = {
            "training_precision": precision,
            "training_images_per_second": {str(w): r for w, r in rates.items()},
            "training_images_per_second_fp32_width_32": fp32_rate,
            "generation_images_per_second": gen_rate,
        }
    print("\n## Targets\n")
    if not args.ablation_only:
        print("\n".join(targets(summaries)))
    if args.quick:
        print("\n(QUICK smoke test: too few steps and epochs for the numbers to mean anything)")

    results = {
        "config": {
            "seeds": args.seeds,
            "sets": args.sets,
            "sampler_options": options,
            "recipes": args.recipes,
            "epochs": args.epochs,
            "quick": args.quick,
            "size": SIZE,  # of the digit sets and the throughput section
            "set_sizes": {name: SIZES[name] for name in args.sets},
        },
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
        },
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "summary": summaries,
        "per_seed": per_set,
        **speed,
    }
    output = args.output or RESULTS_DIR / ("images_quick.json" if args.quick else "images.json")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2, default=str))
    print(f"\nwrote {output}")


if __name__ == "__main__":
    main()
