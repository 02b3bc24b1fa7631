"""The image-specific bodies of the job steps; :mod:`augment.pipeline.job` dispatches here on data.kind.

Everything around them is shared with tables: the output lock and folder, the plan
(imbalanced-learn semantics), the holdout split, the units of work, the training loop with its
checkpoints, the shard commit protocol, the gate, the manifest and the MLflow run. What differs:

- load: :func:`augment.image.sources.load_images` (folder, Parquet bytes, .npz, sklearn:digits);
- fit: :class:`augment.image.cgan.ImageCGAN`, with sample grids logged every N steps;
- generate: PNG bytes in Parquet (optionally PNG files), with the optional quality filter;
- validate: a small CNN on real / real+synthetic / real+albumentations, and FID (+ KID) with
  the extractor in every metric name.

A small CNN trained once on the real train split (``real_classifier``) serves three purposes:
the quality filter's judge, the ``domain`` FID feature extractor, and the validation baseline arm.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from augment.core.balance import class_counts, plan_samples, split_holdout, subsample_to_ratio
from augment.core.device import cpu_threads, resolve_device
from augment.core.generate import GenerationResult, generate_image_shards
from augment.core.shards import write_json_atomic
from augment.core.train import TrainingResult
from augment.image.cgan import ImageCGAN, ImageGANSettings, ImageTrainSettings
from augment.image.shards import read_image_shards
from augment.image.sources import load_images
from augment.image.synthesizer import ImageSynthesizer, fit_image_unit
from augment.pipeline.job import train_settings
from augment.tabular.schema import to_python

log = logging.getLogger(__name__)
LABEL = "label"  # the label column of image shards
GRID_PER_CLASS = 10


@dataclass
class ImageJobData:
    classes: list[Any]
    train_images: np.ndarray  # uint8 (N, H, W, C)
    train_labels: np.ndarray  # class values
    holdout_images: np.ndarray
    holdout_labels: np.ndarray
    counts_before: dict[Any, int]
    plan: dict[Any, int]
    cleaning: dict[str, Any]
    label: str = LABEL
    real_classifier: Any = None  # ImageClassifier on the real train split, trained on first need
    classifier_seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_images.shape[1:])  # type: ignore[return-value]

    def index_of(self, labels: Sequence[Any]) -> np.ndarray:
        lookup = {c: i for i, c in enumerate(self.classes)}
        return np.array([lookup[to_python(v)] for v in labels], dtype=np.int64)


def load_image_data(ctx: Any) -> ImageJobData:
    """Decode every image, split the holdout, optionally imbalance the train split, and plan."""
    cfg = ctx.config
    d = cfg.data
    dataset = load_images(
        d.source,
        size=d.size,
        channels=d.channels,
        label=d.label or LABEL,
        image_column=d.image_column,
        on_bad_file=d.on_bad_file,
        storage_options=d.storage_options,
    )
    labels = np.array([to_python(v) for v in dataset.labels], dtype=object)
    frame = pd.DataFrame({LABEL: labels})
    train, holdout = split_holdout(frame, LABEL, cfg.validate_.holdout, cfg.train.seed)
    if d.imbalance_ratio:
        train = subsample_to_ratio(train, LABEL, d.imbalance_ratio, cfg.train.seed)
    train_idx, holdout_idx = train.index.to_numpy(), holdout.index.to_numpy()
    counts = class_counts(labels[train_idx])
    plan = plan_samples(counts, cfg.balance.sampling_strategy)
    write_json_atomic(
        ctx.output / "holdout_ids.json",
        {
            "holdout_sources": [dataset.sources[i] for i in holdout_idx],
            "train_sources": [dataset.sources[i] for i in train_idx],
        },
    )
    cleaning = {"skipped_files": len(dataset.skipped), "skipped": dataset.skipped[:100]}
    if dataset.skipped:
        log.warning("skipped %d unreadable image(s) (data.on_bad_file: skip)", len(dataset.skipped))
    data = ImageJobData(
        classes=list(counts),
        train_images=dataset.images[train_idx],
        train_labels=labels[train_idx],
        holdout_images=dataset.images[holdout_idx],
        holdout_labels=labels[holdout_idx],
        counts_before=counts,
        plan=plan,
        cleaning=cleaning,
    )
    if ctx.tracker:
        from augment.pipeline.job import log_output_file

        log_output_file(ctx, "holdout_ids.json", "data/holdout_ids.json")
        ctx.tracker.log_params(
            {
                "data.images_train": len(train_idx),
                "data.images_holdout": len(holdout_idx),
                "data.skipped_files": len(dataset.skipped),
            }
        )
        ctx.tracker.log_text(
            json.dumps({str(k): v for k, v in plan.items()}, indent=2), "plan.json"
        )
        if dataset.skipped:
            ctx.tracker.log_text(json.dumps(dataset.skipped, indent=2), "data/skipped_files.json")
        real = {c: data.train_images[data.train_labels == c][:GRID_PER_CLASS] for c in data.classes}
        ctx.tracker.log_image_grid(real, "samples/real.png", title="real train images")
    return data


def gan_settings(cfg: Any) -> ImageGANSettings:
    m = cfg.model
    return ImageGANSettings(
        size=cfg.data.size,
        channels=cfg.data.channels,
        noise_dim=m.noise_dim,
        width=m.width,
        max_width=m.max_width,
        embed_dim=m.embed_dim,
        ema_decay=m.ema_decay,
        aux_weight=m.aux_weight,
        mode_seeking=m.mode_seeking,
        diff_augment=m.diff_augment,
        truncation=m.truncation,
        channels_last=m.channels_last,
    )


def fit_images(
    ctx: Any,
    data: ImageJobData,
    classes: Sequence[Any],
    name: str,
    run_id: str | None,
    loop: dict[str, Any],
) -> tuple[ImageCGAN, TrainingResult]:
    """Fit one image unit; ``augment.pipeline.job.fit_unit_step`` owns the MLflow run and the loop
    settings (``loop``). Adds per-class sample grids every ``tracking.grid_every`` steps."""
    cfg = ctx.config
    snapshot = None
    if ctx.tracker and run_id:
        every = cfg.tracking.grid_every

        def snapshot(step: int, model: ImageCGAN) -> None:
            if every and (step % every == 0 or step == cfg.train.steps):
                grid = {c: model.sample(c, GRID_PER_CLASS, seed=cfg.train.seed) for c in classes}
                ctx.tracker.log_image_grid(
                    grid, f"samples/{name}/step_{step:06d}.png", run_id, title=f"step {step}"
                )

    return fit_image_unit(
        data.train_images,
        data.train_labels.tolist(),
        classes,
        gan=gan_settings(cfg),
        train=train_settings(cfg, ImageTrainSettings),
        snapshot=snapshot,
        **loop,
    )


def assemble_images(fitted: Sequence[tuple[ImageCGAN, TrainingResult]], data: ImageJobData):
    return ImageSynthesizer([model for model, _ in fitted], data.classes, LABEL)


def real_classifier(ctx: Any, data: ImageJobData) -> Any:
    """The small CNN trained on the real train split (once per job; see the module docstring)."""
    if data.real_classifier is None:
        from augment.image.classifier import train_classifier

        cfg = ctx.config
        began = time.perf_counter()
        with cpu_threads(cfg.train.cpu_threads):
            data.real_classifier = train_classifier(
                data.train_images,
                data.index_of(data.train_labels),
                len(data.classes),
                epochs=cfg.validate_.epochs,
                seed=cfg.train.seed,
                device=str(resolve_device(cfg.train.device)),
            )
        data.classifier_seconds = time.perf_counter() - began
    return data.real_classifier


def generate_images_step(
    ctx: Any, data: ImageJobData, synthesizer: ImageSynthesizer
) -> GenerationResult:
    cfg = ctx.config
    judge = None
    if cfg.filter.enabled:
        classifier = real_classifier(ctx, data)
        column = {c: i for i, c in enumerate(data.classes)}

        def judge(images: np.ndarray, cls: Any) -> np.ndarray:
            return classifier.predict_proba(images)[:, column[cls]]

    with cpu_threads(cfg.train.cpu_threads):
        result = generate_image_shards(
            synthesizer,
            data.plan,
            ctx.output,
            rows_per_shard=cfg.output.rows_per_shard,
            seed=cfg.train.seed,
            image_files=cfg.output.image_files,
            judge=judge,
            threshold=cfg.filter.threshold,
            max_factor=cfg.filter.max_factor,
            on_shortfall=cfg.filter.on_shortfall,
        )
    if ctx.tracker:
        grid = {
            c: synthesizer.unit_of[c].sample(c, GRID_PER_CLASS, seed=cfg.train.seed)
            for c in synthesizer.classes
        }
        ctx.tracker.log_image_grid(grid, "samples/final.png", title="generated (EMA generator)")
        total = sum(result.counts.values())
        metrics = {"generate/images_per_second": total / max(result.seconds, 1e-9)}
        for cls, row in result.filter.items():
            metrics[f"filter/acceptance_rate/{cls}"] = row["acceptance_rate"]
            metrics[f"filter/filled_below_threshold/{cls}"] = row["filled_below_threshold"]
        ctx.tracker.log_metrics(metrics)
    return result


def validate_images_step(ctx: Any, data: ImageJobData) -> tuple[Any, dict[str, float]]:
    """Downstream CNN arms on the holdout, then FID/KID of the synthetic images vs the holdout.

    The synthetic images are read back from the committed shards: what is scored is what the
    user gets.
    """
    from augment.image.fid import fid_report, resolve_extractor
    from augment.image.validate import validate_images

    cfg = ctx.config
    v = cfg.validate_
    images, labels, _ = read_image_shards(ctx.output, require_success=False)
    if len(images) == 0:
        images = np.zeros((0, *data.image_shape), dtype=np.uint8)
    synthetic_index = data.index_of(labels)
    targets = {i: data.counts_before[c] + data.plan[c] for i, c in enumerate(data.classes)}
    device = str(resolve_device(cfg.train.device))
    baseline = real_classifier(ctx, data)
    with cpu_threads(cfg.train.cpu_threads):
        report = validate_images(
            data.train_images,
            data.index_of(data.train_labels),
            data.holdout_images,
            data.index_of(data.holdout_labels),
            images,
            synthetic_index,
            classes=data.classes,
            target_counts=targets,
            epochs=v.epochs,
            seed=cfg.train.seed,
            device=device,
            classic=v.albumentations,
            min_lift=v.min_lift,
            baseline_model=baseline,
        )
        fidelity: dict[str, float] = {}
        if v.fid and len(images):
            extractor = resolve_extractor(
                v.fid_extractor,
                weights_path=v.inception_weights,
                classifier=baseline,
                device=device,
            )
            fidelity = fid_report(
                data.holdout_images,
                data.index_of(data.holdout_labels),
                images,
                synthetic_index,
                data.classes,
                extractor,
                kid=v.kid,
                seed=cfg.train.seed,
            )
            data.extra["fid_extractor"] = extractor.name
            if ctx.tracker:
                ctx.tracker.set_tags({"fid.extractor": extractor.name})
    return report, fidelity
