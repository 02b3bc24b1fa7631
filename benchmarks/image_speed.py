"""Where an image resample's time goes: a digits-sized set, 1,925 -> 3,500 images at 28 px.

Run from the repository root, on an otherwise idle machine (the seconds are the point)::

    python -m benchmarks.image_speed                       # the default sampler
    python -m benchmarks.image_speed --recipes auto latent+warp code-mix+warp
    python -m benchmarks.image_speed --candidates code-mix+warp code-mix latent

The set: 1,925 seeded distortions of scikit-learn's digits (``benchmarks.images.distorted_digits``)
at 28 px, ten classes whose sizes fall linearly from 350 to 35 (the 10:1 set of issue 31), topped
up to 350 each (3,500 images). For each sampler setting ``ImageGANOverSampler(random_state=0)
.fit_resample`` is timed end to end as a user runs it, then run again under cProfile, which
splits the time into the autoencoder's training, the code GAN's training (the job's and the
inner split's), the recipe choice (its judges), and the generation (decoding and warps). The
profiler adds time of its own (a profiled first run took 32.1 s where a plain one took 29.5 s),
so the phases are read as shares and the plain run's time is the resample's. Both runs must
give the same images.
Albumentations oversampling of the same plan is timed beside it, in the same process, for the
ratio.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import time

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from augment.image.sampler import ImageGANOverSampler  # noqa: E402
from augment.image.validate import classic_oversample  # noqa: E402
from benchmarks.images import distorted_digits  # noqa: E402

LARGEST, SMALLEST, CLASSES = 350, 35, 10

# profile entries -> the phase they stand for, in cumulative seconds. They overlap: the choice
# includes its inner code GAN (also under "code GAN") and its candidates' images (also under
# decoding and warps). Its judges (a CNN and a logistic regression per candidate) run on a pool's
# threads, which cProfile does not follow: their time is in the choice's, seen from its thread.
PHASES = {
    "autoencoder": ("latent.py", "fit_autoencoder"),
    "code GAN": ("latent.py", "fit_gan"),
    "choice": ("choice.py", "choose_recipe"),
    "decoding": ("latent.py", "_decode"),
    "warps": ("classic.py", "warp_images"),
}


def speed_set(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """1,925 uint8 (N, 28, 28, 1) images, class sizes 350, 315, ..., 35."""
    images, labels = distorted_digits(n_images=4500, seed=1234 + seed)
    sizes = np.linspace(LARGEST, SMALLEST, CLASSES).round().astype(int)
    rng = np.random.default_rng(seed)
    keep = np.concatenate(
        [
            rng.choice(np.flatnonzero(labels == c), size=n, replace=False)
            for c, n in enumerate(sizes)
        ]
    )
    return images[keep], labels[keep]


def phase_seconds(profile: cProfile.Profile) -> dict[str, float]:
    stats = pstats.Stats(profile).stats
    out = {}
    for phase, (file, function) in PHASES.items():
        out[phase] = sum(
            entry[3]
            for (path, _, name), entry in stats.items()
            if path.endswith(file) and name == function
        )
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", default=["auto"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--candidates", nargs="+", default=None, help="auto's candidates (default: the sampler's)"
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: all cores, as a user)"
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    x, y = speed_set(args.seed)
    targets = {c: LARGEST for c in range(CLASSES)}
    print(f"{len(x)} images -> {CLASSES * LARGEST}, 28 px, {torch.get_num_threads()} torch threads")
    began = time.perf_counter()
    classic_oversample(x, y, targets, args.seed)
    classic = time.perf_counter() - began
    print(f"albumentations oversampling: {classic:.1f} s\n")
    print(
        "| recipe | chosen | total s | x albumentations | profiled s | " + " | ".join(PHASES) + " |"
    )
    print("|---" * (5 + len(PHASES)) + "|")
    options = {
        "random_state": args.seed,
        "cpu_threads": args.threads,
        "recipe_candidates": args.candidates,
    }
    for recipe in args.recipes:
        plain = ImageGANOverSampler(recipe=recipe, **options)
        began = time.perf_counter()
        rx, _ = plain.fit_resample(x, y)
        total = time.perf_counter() - began
        assert len(rx) == CLASSES * LARGEST, len(rx)
        profiled, profile = ImageGANOverSampler(recipe=recipe, **options), cProfile.Profile()
        began = time.perf_counter()
        profile.enable()
        again, _ = profiled.fit_resample(x, y)
        profile.disable()
        profiled_total = time.perf_counter() - began
        if not np.array_equal(rx, again):
            raise AssertionError(f"{recipe}: the profiled run made other images than the plain one")
        phases = phase_seconds(profile)
        print(
            f"| {recipe} | {plain.recipe_} | {total:.1f} | {total / classic:.0f} | "
            f"{profiled_total:.1f} | " + " | ".join(f"{phases[p]:.1f}" for p in PHASES) + " |",
            flush=True,
        )


if __name__ == "__main__":
    main()
