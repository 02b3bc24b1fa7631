"""What limits the GAN's balanced accuracy on digits? Variants of its images, side by side.

Run from the repository root::

    python -m benchmarks.image_ablations            # seeds 0 1 2 (10-15 minutes on 2 cores)
    python -m benchmarks.image_ablations --quick    # smoke test: 1 seed, few steps and epochs

Same data, split, downstream CNN and domain FID as ``benchmarks.images``. For each seed the default
conditional GAN is trained once, and each variant tops the classes up to equal counts:

- ``albumentations``: the classic baseline (warped copies of real images), for reference;
- ``gan``: the GAN's images as augment writes them;
- ``gan + classic warps``: the same images, each then put through the albumentations pipeline of
  the baseline. Does the baseline win because its warps teach the CNN invariances the GAN's
  images lack?
- ``gan, latent-anchored``: images from latents between two of the class's real images. Each
  real image of the class is inverted into the generator's noise space (Adam on z, pixel MSE,
  best of two starts); a new image comes from a random point on the segment between two inverted
  images (SMOTE in latent space). Do the GAN's images lose because they are less realistic?

Not a product feature: an experiment that backs the README's account of the image target.
Prints a markdown table and writes ``benchmarks/results/image_ablations.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from augment.image.cgan import ImageCGAN  # noqa: E402
from augment.image.classifier import train_classifier  # noqa: E402
from augment.image.fid import DomainExtractor  # noqa: E402
from augment.image.synthesizer import ImageSynthesizer  # noqa: E402
from augment.image.transforms import from_unit, to_unit  # noqa: E402
from augment.image.validate import classic_augmentation, classic_oversample  # noqa: E402
from benchmarks.images import (  # noqa: E402
    QUALITY,
    RESULTS_DIR,
    SIZE,
    cell,
    fit_gan,
    score,
    split,
    summarize,
    targets_for,
)

VARIANTS = ("albumentations", "gan", "gan + classic warps", "gan, latent-anchored")


def invert(
    model: ImageCGAN, images: np.ndarray, cls: int, seed: int, steps: int, starts: int = 2
) -> tuple[torch.Tensor, float]:
    """Latents z with G_ema(z, cls) close to ``images`` (uint8), and their mean pixel MSE.

    Adam on z, pixel MSE in [-1, 1] plus a small pull towards the prior; each image keeps the
    best of ``starts`` random starts.
    """
    generator = model.ema
    target = to_unit(images)
    labels = torch.full((len(images),), model.classes.index(cls), dtype=torch.long)
    rng = torch.Generator().manual_seed(seed * 1_009 + cls)
    best_z, best_err = None, None
    for _ in range(starts):
        z = torch.randn(len(images), model.settings.noise_dim, generator=rng).requires_grad_(True)
        optimizer = torch.optim.Adam([z], lr=0.05)
        for _ in range(steps):
            optimizer.zero_grad()
            loss = ((generator(z, labels) - target) ** 2).mean((1, 2, 3))
            (loss + 1e-3 * z.square().mean(1)).sum().backward()
            optimizer.step()
        with torch.no_grad():
            err = ((generator(z, labels) - target) ** 2).mean((1, 2, 3))
            if best_z is None:
                best_z, best_err = z.detach().clone(), err
            else:
                better = err < best_err
                best_z[better], best_err = z.detach()[better], torch.minimum(err, best_err)
    return best_z, float(best_err.mean())


@torch.no_grad()
def anchored_sample(
    model: ImageCGAN, latents: torch.Tensor, cls: int, n: int, seed: int
) -> np.ndarray:
    """``n`` uint8 images from random points between pairs of ``latents`` (one class's)."""
    rng = torch.Generator().manual_seed(seed * 100_003 + cls)
    first = torch.randint(len(latents), (n,), generator=rng)
    second = torch.randint(len(latents), (n,), generator=rng)
    t = torch.rand(n, 1, generator=rng)
    z = torch.lerp(latents[first], latents[second], t)
    labels = torch.full((n,), model.classes.index(cls), dtype=torch.long)
    return from_unit(model.ema.eval()(z, labels))


def run_seed(seed: int, steps: int, epochs: int, inversion_steps: int) -> dict[str, Any]:
    data = split(seed)
    x, y = data["train_x"], data["train_y"]
    extractor = DomainExtractor(train_classifier(x, y, 10, epochs=epochs, seed=seed))
    holdout_features = extractor.features(data["holdout_x"])
    model, plan = fit_gan(x, y, seed, steps)
    plan = {c: n for c, n in plan.items() if n > 0}
    gan_x, gan_y = ImageSynthesizer([model], model.classes).sample(plan, seed=seed)
    gan_y = gan_y.astype(np.int64)
    warp = classic_augmentation(SIZE, seed)
    inversion_mse = {}
    anchored = []
    for cls, n in plan.items():
        latents, inversion_mse[cls] = invert(model, x[y == cls], cls, seed, inversion_steps)
        anchored.append(anchored_sample(model, latents, cls, n, seed))
    anchored_y = np.repeat(np.array(list(plan), dtype=np.int64), list(plan.values()))
    added = {  # variant -> (images, labels)
        "gan": (gan_x, gan_y),
        "gan + classic warps": (np.stack([warp(image=im)["image"] for im in gan_x]), gan_y),
        "gan, latent-anchored": (np.concatenate(anchored), anchored_y),
    }
    results: dict[str, Any] = {}
    for variant in VARIANTS:
        if variant == "albumentations":
            rx, ry = classic_oversample(x, y, targets_for(y), seed)
        else:
            rx = np.concatenate([x, added[variant][0]])
            ry = np.concatenate([y, added[variant][1]])
        results[variant] = score(rx, ry, len(x), data, extractor, holdout_features, epochs, seed)
        print(f"  seed {seed} {variant:22s} " + json.dumps(results[variant]), flush=True)
    results["inversion_mse"] = {str(c): v for c, v in inversion_mse.items()}
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=1000, help="GAN generator steps")
    parser.add_argument("--epochs", type=int, default=15, help="downstream CNN epochs")
    parser.add_argument("--inversion-steps", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="1 seed, 30 steps, 2 epochs")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.steps, args.epochs, args.inversion_steps = [0], 30, 2, 10
    torch.set_num_threads(os.cpu_count() or 1)

    per_seed = [run_seed(s, args.steps, args.epochs, args.inversion_steps) for s in args.seeds]
    summary = summarize(per_seed, VARIANTS, QUALITY)
    print(f"\n## digits 28x28, imbalance 10:1, {len(args.seeds)} seed(s)\n")
    print("| variant | balanced acc | minority recall | domain FID (added vs holdout) |")
    print("|---|---|---|---|")
    for variant, row in summary.items():
        print(
            f"| {variant} | {cell(row, 'balanced_accuracy')} | {cell(row, 'minority_recall')} | "
            f"{cell(row, 'fid_domain', 1)} |"
        )
    if args.quick:
        print("\n(QUICK smoke test: too few steps and epochs for the numbers to mean anything)")

    output = args.output or RESULTS_DIR / (
        "image_ablations_quick.json" if args.quick else "image_ablations.json"
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "config": {**vars(args), "output": str(output)},
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "summary": summary,
        "per_seed": per_seed,
    }
    output.write_text(json.dumps(record, indent=2, default=str))
    print(f"\nresults written to {output}")


if __name__ == "__main__":
    main()
