"""Images as a modality of the job: what the pipeline's steps do with images.

- load: :func:`augment.image.sources.index_images` (folder, Parquet bytes, .npz, sklearn:digits)
  lists every image with its label; the holdout split and the plan count them all
  (:mod:`augment.core.balance`); only the images used are decoded: a seeded per-class sample of
  the train split for the models (``data.max_images``) and a stratified sample of the holdout
  for validation (``validate.max_rows``, kept at the size validation sees);
- fit: :class:`augment.image.cgan.ImageCGAN`, with sample grids logged every N steps;
- generate: PNG bytes in Parquet (optionally PNG files), with the optional quality filter;
- validate: a small CNN on real / real+synthetic / real+albumentations, and FID (+ KID), k-NN
  precision / recall and the Inception Score, with the extractor in every metric name.

A small CNN trained once on the real train split (``real_classifier``) serves three purposes:
the quality filter's judge, the ``domain`` FID feature extractor (and the IS and the class
confidence when not Inception's), and the validation baseline arm.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from augment.core.balance import class_counts, class_quotas, plan_samples, to_python
from augment.core.cache import images_digest
from augment.core.choice import choice_metrics
from augment.core.context import JobContext
from augment.core.device import cpu_threads, resolve_device
from augment.core.errors import DataError
from augment.core.generate import GenerationResult, GenerationSetup, PartBatches
from augment.core.metrics import (
    FEATURE_NETWORK_SCORE,
    feature_network_doubt,
    trusted_feature_accuracy,
    unique_metric_keys,
)
from augment.core.modality import Modality, ReportInputs
from augment.core.parts import Part
from augment.core.precision_recall import precision_recall_meanings
from augment.core.seeds import Stream, stream
from augment.core.shards import iter_shards, read_shards
from augment.core.synthesizer import training_units
from augment.core.train import TrainingLoop, TrainingResult, settings_from
from augment.core.validation import proportional_pick, scaled_to_sample, stratified_pick
from augment.image.cgan import ImageCGAN, ImageGANSettings, ImageTrainSettings
from augment.image.choice import DEFAULT_CANDIDATES, choose_recipe
from augment.image.config import ImageJobConfig, ImageModelConfig
from augment.image.generate import Judge, image_rows, shard_images
from augment.image.shards import ImageFileWriter, decode_png
from augment.image.sizes import work_size
from augment.image.sources import ImageIndex, index_images
from augment.image.synthesizer import (
    IMAGE_SYNTHESIZER_FORMAT,
    ImageSynthesizer,
    Recipe,
    fit_image_unit,
    image_synthesizer_from_payload,
)
from augment.image.transforms import downsample

log = logging.getLogger(__name__)
LABEL = "label"  # the label column of image shards
GRID_PER_CLASS = 10
DECODE_BLOCK = 512  # images decoded at full size at a time before they are shrunk for validation


@dataclass
class ImageData:
    classes: list[Any]
    train_images: np.ndarray  # uint8 (N, H, W, C): the images the models are fitted on
    train_labels: np.ndarray  # class values
    holdout_images: np.ndarray  # uint8, at the size validation sees (validate.max_size)
    holdout_labels: np.ndarray
    counts_before: dict[Any, int]
    plan: dict[Any, int]
    cleaning: dict[str, Any]
    split_ids: dict[str, list[str]]
    label: str = LABEL
    real_classifier: Any = None  # ImageClassifier on the real train split, trained on first need
    classifier_seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_images.shape[1:])  # type: ignore[return-value]

    @property
    def params(self) -> dict[str, Any]:
        return {
            "data.images_train": len(self.split_ids["train_sources"]),
            "data.images_holdout": len(self.split_ids["holdout_sources"]),
            "data.skipped_files": self.cleaning["skipped_files"],
            **({"data.images_fitted": len(self.train_images)} if "fitted" in self.cleaning else {}),
        }

    def index_of(self, labels: Sequence[Any]) -> np.ndarray:
        lookup = {c: i for i, c in enumerate(self.classes)}
        return np.array([lookup[to_python(v)] for v in labels], dtype=np.int64)


class ImageModality(Modality):
    kind = "image"
    config = ImageJobConfig
    synthesizer_format = IMAGE_SYNTHESIZER_FORMAT

    def load(self, ctx: JobContext) -> ImageData:
        """List every image, split the holdout, optionally imbalance the train split, and plan;
        then decode the images the job uses: the models' sample of the train split
        (``data.max_images``) and, for validation, a sample of the holdout (``validate.max_rows``)
        shrunk to the size validation sees (``validate.max_size``)."""
        cfg = ctx.config
        d, v = cfg.data, cfg.validate_
        index = index_images(
            d.source,
            label=d.label or LABEL,
            image_column=d.image_column,
            on_bad_file=d.on_bad_file,
            storage_options=d.storage_options,
        )
        labels = np.array([to_python(value) for value in index.labels], dtype=object)
        train, holdout, counts, plan = ctx.split_and_plan(pd.DataFrame({LABEL: labels}), LABEL)
        train_idx, holdout_idx = train.index.to_numpy(), holdout.index.to_numpy()
        notes: list[str] = []
        cleaning: dict[str, Any] = {}

        fitted_idx = train_idx
        limit = d.image_limit()
        if limit is not None and len(train_idx) > limit:
            # the rarest classes whole, the others share the rest; seeded, exact per class
            quotas = class_quotas(counts, limit)
            pick = stratified_pick(
                labels[train_idx], quotas, stream(cfg.train.seed, Stream.IMAGE_FIT_SAMPLE)
            )
            fitted_idx = train_idx[pick]
        options = {
            "size": d.size,
            "channels": d.channels,
            "fit": d.fit,
            "on_bad_file": d.on_bad_file,
        }
        fitted = index.decode(fitted_idx, **options)
        skipped = index.skipped + fitted.skipped
        if fitted.skipped:
            # the plan counts readable images: the bad ones found among the train images go
            bad = class_counts(labels[np.setdiff1d(fitted_idx, fitted.positions)])
            counts = {c: n - bad.get(c, 0) for c, n in counts.items()}
            empty = [c for c, n in counts.items() if n == 0]
            if empty:
                raise DataError(
                    f"class {empty[0]!r} has no readable training image (its files were "
                    "skipped as unreadable); add images of it or remove its folder"
                )
            plan = plan_samples(counts, cfg.balance.sampling_strategy)
        if len(fitted_idx) < len(train_idx):
            kept = class_counts(labels[fitted.positions])
            cleaning["fitted"] = {"max_images": limit, "train": counts, "fitted": kept}
            notes.append(_sample_note(d.max_images, limit, counts, kept, d.size, d.channels))

        held_idx = holdout_idx[:0]
        if v.enabled:
            rng = stream(cfg.train.seed, Stream.IMAGE_VALIDATION_SAMPLE)
            held_idx = holdout_idx[proportional_pick(labels[holdout_idx], v.max_rows, rng)]
            if len(held_idx) < len(holdout_idx):
                notes.append(
                    f"validation scores a stratified sample of {len(held_idx):,} of the "
                    f"{len(holdout_idx):,} holdout images (validate.max_rows={v.max_rows:,})"
                )
        holdout_images, held_positions, held_skipped = _decode_shrunk(
            index, held_idx, work_size(d.size, v.max_size), options
        )
        skipped += held_skipped
        if skipped:
            log.warning("skipped %d unreadable image(s) (data.on_bad_file: skip)", len(skipped))
        for note in notes:
            log.warning(note)
        cleaning.update(skipped_files=len(skipped), skipped=skipped[:100], notes=notes)
        data = ImageData(
            classes=list(counts),
            train_images=fitted.images,
            train_labels=labels[fitted.positions],
            holdout_images=holdout_images,
            holdout_labels=labels[held_positions],
            counts_before=counts,
            plan=plan,
            cleaning=cleaning,
            split_ids={
                "holdout_sources": [index.sources[i] for i in holdout_idx],
                "train_sources": [index.sources[i] for i in train_idx],
            },
        )
        if ctx.tracker:
            if skipped:
                ctx.tracker.log_text(json.dumps(skipped, indent=2), "data/skipped_files.json")
            real = {
                c: data.train_images[data.train_labels == c][:GRID_PER_CLASS] for c in data.classes
            }
            ctx.tracker.log_image_grid(real, "samples/real.png", title="real train images")
        return data

    def data_digest(self, data: ImageData) -> str:
        return images_digest(data.train_images, data.train_labels)

    def fit_unit(
        self,
        ctx: JobContext,
        data: ImageData,
        classes: Sequence[Any],
        loop: TrainingLoop,
        run_name: str,
        run_id: str | None,
    ) -> tuple[ImageCGAN, TrainingResult]:
        """Fit one image unit; adds per-class sample grids every ``tracking.grid_every`` steps."""
        cfg = ctx.config
        snapshot = None
        if ctx.tracker and run_id:
            every = cfg.tracking.grid_every

            def snapshot(step: int, model: ImageCGAN) -> None:
                if every and (step % every == 0 or step == cfg.train.steps):
                    grid = {
                        c: model.sample(c, GRID_PER_CLASS, seed=cfg.train.seed) for c in classes
                    }
                    ctx.tracker.log_image_grid(
                        grid,
                        f"samples/{run_name}/step_{step:06d}.png",
                        run_id,
                        title=f"step {step}",
                    )

        return _fit_gan(cfg, data.train_images, data.train_labels.tolist(), classes, loop, snapshot)

    def unit_metrics(self, ctx: JobContext, result: TrainingResult) -> dict[str, float]:
        seen = (result.steps - result.resumed_from) * ctx.config.train.batch_size * ctx.world_size
        return {"train/images_per_second": seen / max(result.seconds, 1e-9)}

    def assemble(self, data: ImageData, models: Sequence[ImageCGAN]) -> ImageSynthesizer:
        return ImageSynthesizer(models, data.classes, LABEL)

    def needs_model(self, config: ImageJobConfig) -> bool:
        """The pixel GAN is trained only when a recipe the job may use draws from it (the
        default candidates, ``code-mix+warp`` and ``code-mix``, draw from the code GAN over the
        autoencoder's codes, trained in :meth:`complete`)."""
        return any(recipe.needs_gan for recipe in _recipes(config.model))

    def fits_anything(self, config: ImageJobConfig) -> bool:
        return True  # every recipe fits the GAN, the shared autoencoder or both

    def complete(
        self, ctx: JobContext, data: ImageData, synthesizer: ImageSynthesizer
    ) -> ImageSynthesizer:
        """Fit the shared autoencoder on every training image and settle the recipe: the
        configured one, or (``model.recipe: auto``) the best on an inner split of the training
        images (:mod:`augment.image.choice`); logged as ``generate.recipe`` and
        ``choice/<recipe>``."""
        from augment.image.latent import LatentSettings, fit_autoencoder, latent_bank

        cfg = ctx.config
        m = cfg.model
        recipes = _recipes(m)
        began = time.perf_counter()
        device = resolve_device(cfg.train.device)
        with cpu_threads(cfg.train.cpu_threads):
            if any(r.needs_bank for r in recipes):
                settings = LatentSettings(
                    size=cfg.data.size,
                    channels=cfg.data.channels,
                    latent_dim=m.latent_dim,
                    steps=m.autoencoder_steps,
                    precision=cfg.train.precision,
                )
                loop, callbacks, run_id = ctx.training_loop("train/autoencoder", "autoencoder.pt")
                network, loss, result = fit_autoencoder(
                    data.train_images, settings, seed=cfg.train.seed, device=device, loop=loop
                )
                ctx.end_training_run(callbacks, run_id, result)
                ctx.training.append(result.unit_entry("autoencoder", data.classes))
                synthesizer.bank = latent_bank(
                    network,
                    data.train_images,
                    data.train_labels.tolist(),
                    data.classes,
                    settings,
                    device,
                    loss,
                )
                synthesizer.bank.codes.filter_generated = m.filter_generated
                synthesizer.bank.codes.match_moments = m.match_moments
                if any(r.needs_code_gan for r in recipes):
                    loop, callbacks, run_id = ctx.training_loop("train/code-gan", "code-gan.pt")
                    codes = synthesizer.bank.codes
                    result = codes.fit_gan(
                        m.code_gan_steps, cfg.train.seed, device, cfg.train.precision, loop
                    )
                    ctx.end_training_run(callbacks, run_id, result)
                    ctx.training.append(result.unit_entry("code GAN", codes.gan.classes))
            choice = None
            if m.recipe == "auto":
                choice = choose_recipe(
                    synthesizer,
                    data.train_images,
                    data.index_of(data.train_labels),
                    len(data.classes),
                    candidates=recipes,
                    share=m.choice_share,
                    epochs=m.choice_epochs,
                    seed=cfg.train.seed,
                    device=device,
                    fit_inner_gans=lambda x, y: [
                        _fit_gan(cfg, x, y, [c for c in unit if c in set(y)])[0]
                        for unit in training_units(
                            data.classes, dict.fromkeys(data.classes, 1), cfg.model.mode
                        )
                    ],
                )
                synthesizer.use(choice.recipe)
            else:
                synthesizer.use(recipes[0])
        synthesizer.keep_anchors([c for c, n in data.plan.items() if n > 0])
        ctx.timings["transfer"] = time.perf_counter() - began
        synthesizer.choice = choice.as_dict() if choice else None
        data.extra["recipe"] = _recipe_summary(synthesizer)
        if ctx.tracker:
            ctx.tracker.log_params({"generate.recipe": synthesizer.recipe.name})
            if choice is not None:
                ctx.tracker.log_metrics(choice_metrics(choice.scores, choice.spreads))
        return synthesizer

    def synthesizer_from_payload(self, payload: dict[str, Any], device: str) -> ImageSynthesizer:
        return image_synthesizer_from_payload(payload, device)

    def prepare_generation(
        self, ctx: JobContext, data: ImageData, synthesizer: ImageSynthesizer
    ) -> GenerationSetup:
        """The quality filter's classifier (``filter``) and the PNG files writer
        (``output.image_files``), when asked for: both stay in this process, so the parts are
        then made here; otherwise workers load the model file."""
        cfg = ctx.config
        # a cached synthesizer carries its recipe and how it was chosen (the scores were logged
        # to MLflow when it was fit; the summary says them again)
        data.extra.setdefault("recipe", _recipe_summary(synthesizer))
        judge = None
        if cfg.filter.enabled:
            classifier = real_classifier(ctx, data)
            column = {c: i for i, c in enumerate(data.classes)}

            def judge(images: np.ndarray, cls: Any) -> np.ndarray:
                return classifier.predict_proba(images)[:, column[cls]]

        files = ImageFileWriter(ctx.output) if cfg.output.image_files else None
        settings: dict[str, Any] = {
            "rows_per_shard": shard_images(synthesizer.image_shape, cfg.output.rows_per_shard),
            "filter": cfg.filter.model_dump() if cfg.filter.enabled else None,
        }
        if files is not None:  # the PNG files are staged for the whole job: no part is kept
            settings["image_files"] = uuid.uuid4().hex
        in_process = judge is not None or files is not None
        generator = _PartMaker(synthesizer, judge, files) if in_process else synthesizer
        return GenerationSetup(
            generator=generator,
            settings=settings,
            digest=synthesizer.digest(),
            save=None if in_process else synthesizer.save,
            state={"files": files},
        )

    def part_batches(self, generator: Any, settings: dict[str, Any], part: Part) -> PartBatches:
        maker = generator if isinstance(generator, _PartMaker) else _PartMaker(generator)
        synthesizer = maker.synthesizer
        report: dict[str, Any] = {}
        before: dict[str, dict[Any, int]] = {}
        filter_ = settings.get("filter") or {}

        def rows():
            before.update({k: dict(v) for k, v in synthesizer.origin.items()})
            yield from image_rows(
                synthesizer,
                part.counts,
                part.seed,
                report,
                offsets=part.offsets,
                files_writer=maker.files,
                judge=maker.judge,
                threshold=filter_.get("threshold", 0.9),
                max_factor=filter_.get("max_factor", 8.0),
                on_shortfall=filter_.get("on_shortfall", "fill"),
            )

        def stats() -> tuple[dict[str, dict[str, int]], dict[str, Any]]:
            # images made per source in this part (with the quality filter: every candidate)
            origin = {
                key: {
                    str(c): int(n - before.get(key, {}).get(c, 0))
                    for c, n in counts.items()
                    if n - before.get(key, {}).get(c, 0)
                }
                for key, counts in synthesizer.origin.items()
            }
            return origin, report

        return PartBatches(rows(), stats)

    def finish_generation(
        self,
        ctx: JobContext,
        data: ImageData,
        synthesizer: ImageSynthesizer,
        setup: GenerationSetup,
        result: GenerationResult,
    ) -> GenerationResult:
        cfg = ctx.config
        files = setup.state.get("files")
        if files is not None:
            files.commit()
        # where the images came from (with the quality filter on: every candidate it judged),
        # merged over the parts: result.origin
        if synthesizer.recipe.warp and cfg.validate_.enabled and cfg.validate_.stacking:
            # The stacked arm warps on the fly: it gets the recipe's images before their warp
            # (the same draws, so the parents of the shards' images), capped like validation.
            unwarped = ImageSynthesizer(
                synthesizer.units,
                synthesizer.all_classes,
                synthesizer.label,
                bank=synthesizer.bank,
                recipe=Recipe(synthesizer.recipe.source),
            )
            cap = cfg.validate_.max_rows
            plan = {
                c: n if cap is None else min(n, cap // max(1, len(data.plan)))
                for c, n in data.plan.items()
                if n > 0
            }
            # drawn batch by batch and shrunk to the size validation sees, so that a large image
            # size never holds the whole sample at full size
            size = work_size(cfg.data.size, cfg.validate_.max_size)
            parts = [np.zeros((0, size, size, cfg.data.channels), dtype=np.uint8)]
            labels: list[Any] = []
            for cls, batch in unwarped.iter_batches(plan, seed=cfg.train.seed):
                parts.append(downsample(batch, size))
                labels.extend([cls] * len(batch))
            data.extra["stacking"] = (np.concatenate(parts), np.asarray(labels))
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

    def validate(self, ctx: JobContext, data: ImageData):
        """Downstream CNN arms on the holdout, then FID/KID, k-NN precision / recall, the IS and
        the class confidence of the synthetic images vs the holdout (:func:`fid_report`).

        The synthetic images are read back from the committed shards: what is scored is what the
        user gets.
        """
        from augment.image.fid import fid_report, resolve_extractor
        from augment.image.validate import validate_images

        cfg = ctx.config
        v = cfg.validate_
        rng = stream(cfg.train.seed, Stream.IMAGE_FIDELITY_SAMPLE)
        real, per_class = np.arange(len(data.train_images)), None
        notes = []
        if "fitted" in data.cleaning:
            # the models' sample and the plan, scaled by one factor to the train split's mix
            real_counts, per_class = scaled_to_sample(
                data.counts_before, data.cleaning["fitted"]["fitted"], data.plan
            )
            real = stratified_pick(data.train_labels, real_counts, rng)
            notes.append(
                f"validation (data.max_images): {len(real):,} real and "
                f"{sum(per_class.values()):,} synthetic images, the train split and the plan "
                "scaled by one factor, so the arms keep the class mix of the real data"
            )
        # at most validate.max_rows of them (a stratified sample; the arms and the fidelity sets
        # never use more), at the size validation sees, as the holdout is
        images, synthetic_index = _read_synthetic(ctx, data, v.max_rows, v.max_size, per_class)
        real_index = data.index_of(data.train_labels[real])
        counts = np.bincount(real_index, minlength=len(data.classes))
        counts += np.bincount(synthetic_index, minlength=len(data.classes))
        targets = dict(enumerate(counts.tolist()))  # the classic arms reach the augmented arm's
        device = str(resolve_device(cfg.train.device))
        baseline = real_classifier(ctx, data)
        with cpu_threads(cfg.train.cpu_threads):
            report = validate_images(
                data.train_images if per_class is None else data.train_images[real],
                real_index,
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
                # trained on every image of the sample: the baseline arm only when it is the set
                baseline_model=baseline if per_class is None else None,
                max_rows=v.max_rows,
                stacking=v.stacking,
                stack_share=v.stack_share,
                max_size=v.max_size,
                **_stacking_inputs(data, per_class, rng),
            )
            report.notes[:0] = notes
            fidelity: dict[str, float] = {}
            if v.fid and len(images):
                extractor = resolve_extractor(
                    v.fid_extractor,
                    weights_path=v.inception_weights,
                    classifier=baseline,
                    device=device,
                )
                # features cost a forward pass per image: both sets are stratified samples of
                # at most validate.max_rows images already (load, _read_synthetic)
                fidelity = fid_report(
                    data.holdout_images,
                    data.index_of(data.holdout_labels),
                    images,
                    synthetic_index,
                    data.classes,
                    extractor,
                    kid=v.kid,
                    classifier=baseline,  # the IS (when not Inception's) and class confidence
                    seed=cfg.train.seed,
                )
                data.extra["fid_extractor"] = extractor.name
                doubt = feature_network_doubt(fidelity, len(data.classes))
                if doubt:
                    report.notes.append(doubt)
                if ctx.tracker:
                    ctx.tracker.set_tags(
                        {
                            "fid.extractor": extractor.name,
                            # whether the numbers measured with the domain CNN mean anything
                            "domain_cnn.trusted": "false" if doubt else "true",
                        }
                    )
        return report, fidelity

    def manifest_fields(
        self, ctx: JobContext, data: ImageData, generation: GenerationResult
    ) -> dict[str, Any]:
        return {
            "image_shape": list(data.image_shape),
            "columns": ["image", LABEL, "sample_id"],
            "image_files": "images/" if ctx.config.output.image_files else None,
            "filter": generation.filter or None,
            "skipped_files": data.cleaning.get("skipped_files", 0),
            # data.max_images cut the train split: the images per class of the split (what the
            # plan counts) and of the sample the models were fitted on
            "fitted_sample": _plain(data.cleaning.get("fitted")),
            "fid_extractor": data.extra.get("fid_extractor"),
            "recipe": data.extra.get("recipe"),
            "generator": {
                "recipe": (data.extra.get("recipe") or {}).get("recipe"),
                "rows": {
                    source: {str(c): n for c, n in counts.items()}
                    for source, counts in generation.origin.items()
                },
            },
        }

    def shard_items(self, output, manifest, real: ImageData | None, features=None):
        from augment.image.dataset import shard_items

        return shard_items(output, manifest, real, features)

    def report_inputs(
        self, ctx: JobContext, data: ImageData, fidelity: dict[str, float]
    ) -> ReportInputs:
        """Real and synthetic images side by side per class, per-class FID, and FID / KID,
        precision / recall, the IS and the class confidence with their meaning."""
        extractor = data.extra.get("fid_extractor")
        inputs = ReportInputs(items="images", classic_arm="albumentations oversampling")
        if extractor:
            inputs.fidelity_name = f"FID ({extractor} features)"
            keys = unique_metric_keys(list(data.classes))
            inputs.per_class_fidelity = {
                c: fidelity[f"fid/{extractor}/class/{key}"]
                for c, key in zip(data.classes, keys, strict=True)
                if f"fid/{extractor}/class/{key}" in fidelity
            }
            features = (
                "InceptionV3 features"
                if extractor == "inception"
                else "the features of a small CNN trained on the real images"
            )
            for name, key, meaning in (
                ("FID", f"fid/{extractor}", "Fréchet distance between synthetic and real images"),
                ("KID", f"kid/{extractor}", "kernel distance, less biased on few images"),
            ):
                if key in fidelity:
                    meaning += f" in {features}: 0 = same distribution, lower is better"
                    inputs.measures.append((f"{name} ({extractor})", fidelity[key], meaning))
            inputs.measures += _quality_measures(fidelity, extractor, features)
            _judge_domain_cnn(inputs, fidelity, extractor, len(data.classes))
        # the first GRID_PER_CLASS synthetic images of each class, read back from the shards
        if sum(data.plan.values()):
            labels = read_shards(ctx.output, require_success=False, columns=[LABEL])[LABEL]
            index = data.index_of(labels.tolist())
            take = np.sort(
                np.concatenate(
                    [np.flatnonzero(index == i)[:GRID_PER_CLASS] for i in range(len(data.classes))]
                )
            )
            frame = read_shards(ctx.output, require_success=False, take=take)
            images = np.stack([decode_png(png) for png in frame["image"]])
            picked = index[take]
            for i, cls in enumerate(data.classes):
                if (picked == i).any():
                    real = data.train_images[data.train_labels == cls][:GRID_PER_CLASS]
                    inputs.image_pairs[cls] = (real, images[picked == i])
        return inputs


def _plain(fitted: dict[str, Any] | None) -> dict[str, Any] | None:
    """The sample record with class keys as JSON keys (strings)."""
    if fitted is None:
        return None
    return {
        key: {str(c): n for c, n in value.items()} if isinstance(value, dict) else value
        for key, value in fitted.items()
    }


def _sample_note(
    setting: Any,
    limit: int,
    counts: dict[Any, int],
    kept: dict[Any, int],
    size: int,
    channels: int,
) -> str:
    """The summary's line for a train split larger than ``data.max_images`` (as tables say
    theirs for ``data.max_rows``)."""
    whole = [str(c) for c, n in counts.items() if kept.get(c, 0) == n]
    cut = {c: n for c, n in counts.items() if kept.get(c, 0) < n}
    parts = [f"all images of {', '.join(whole)}"] if whole else []
    parts += [f"{kept.get(c, 0):,} of {n:,} images of {c}" for c, n in cut.items()]
    value = (
        f"auto ({limit:,} images at {size} x {size} x {channels})"
        if setting == "auto"
        else f"{limit:,}"
    )
    return (
        f"data.max_images={value}: the train split has {sum(counts.values()):,} images; the "
        f"models are fitted on a sample of {sum(kept.values()):,} ({'; '.join(parts)}); the "
        "plan counts every image"
    )


def _decode_shrunk(
    index: ImageIndex, positions: np.ndarray, size: int, options: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """The images at ``positions`` decoded a block at a time and area-averaged down to
    ``size`` (validation's size), so the full-size images of a large holdout are never held
    together. Returns the images, their positions and the skipped files."""
    images = [np.zeros((0, size, size, options["channels"]), dtype=np.uint8)]
    kept, skipped = [np.zeros(0, dtype=np.int64)], []
    for start in range(0, len(positions), DECODE_BLOCK):
        block = index.decode(positions[start : start + DECODE_BLOCK], **options)
        images.append(downsample(block.images, size))
        kept.append(block.positions)
        skipped += block.skipped
    return np.concatenate(images), np.concatenate(kept), skipped


def _recipe_summary(synthesizer: ImageSynthesizer) -> dict[str, Any]:
    """The recipe line of the summary: the recipe, and every candidate's score if it was chosen."""
    choice = synthesizer.choice
    return {"recipe": synthesizer.recipe.name, "chosen": choice is not None, **(choice or {})}


def _quality_measures(
    fidelity: dict[str, float], extractor: str, features: str
) -> list[tuple[str, float, str]]:
    """The report's lines for k-NN precision / recall, the IS and the class confidence."""
    measures = []
    if f"precision/{extractor}" in fidelity:
        precision, recall = precision_recall_meanings("images", features)
        measures += [
            (f"precision (k-NN, {extractor})", fidelity[f"precision/{extractor}"], precision),
            (f"recall (k-NN, {extractor})", fidelity[f"recall/{extractor}"], recall),
        ]
    for source, name, network in (
        ("inception", "Inception Score", "InceptionV3's ImageNet classes"),
        ("domain", "IS formula on the domain CNN (not the Inception Score)", "the CNN's classes"),
    ):
        if f"is/{source}" in fidelity:
            measures.append(
                (
                    name,
                    fidelity[f"is/{source}"],
                    f"exp of the mean KL divergence between an image's class probabilities over "
                    f"{network} and their mean: high when each image is clearly one class and the "
                    f"classes are evenly used; real holdout images of the same class mix: "
                    f"{fidelity.get(f'is/{source}/real', float('nan')):.2f}",
                )
            )
    if "confidence/domain" in fidelity:
        real = fidelity.get("confidence/domain/real", float("nan"))
        measures.append(
            (
                "class confidence (domain CNN)",
                fidelity["confidence/domain"],
                "mean probability the CNN trained on the real images gives a synthetic image's own "
                f"class; real holdout images: {real:.2f}",
            )
        )
    return measures


def _judge_domain_cnn(
    inputs: ReportInputs, fidelity: dict[str, float], extractor: str, n_classes: int
) -> None:
    """The report's line for the domain CNN's holdout balanced accuracy and, when it is too
    weak (:func:`feature_network_doubt`), a warning beside every number measured with it."""
    score = fidelity.get(FEATURE_NETWORK_SCORE)
    if score is None:
        return
    needed = trusted_feature_accuracy(n_classes)
    name = "domain CNN balanced accuracy"
    inputs.measures.append(
        (
            name,
            score,
            f"the CNN trained on the real images, scored on the real holdout (chance "
            f"{1 / n_classes:.2f}); the numbers measured with it are trusted from {needed:.2f}, "
            "halfway from chance to 1",
        )
    )
    if not feature_network_doubt(fidelity, n_classes):
        inputs.judgements[name] = "fine: it tells the classes apart"
        return
    inputs.judgements[name] = "too weak: the numbers measured with it say nothing"
    # with domain features every image measure is the CNN's; with Inception's, its own ones
    measured_with_it = "domain" if extractor == "domain" else "domain CNN"
    for measure, *_ in inputs.measures:
        if measured_with_it in measure:
            inputs.judgements.setdefault(measure, "not meaningful: the domain CNN is too weak")


def real_classifier(ctx: JobContext, data: ImageData) -> Any:
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
                max_size=cfg.validate_.max_size,
            )
        data.classifier_seconds = time.perf_counter() - began
    return data.real_classifier


def _read_synthetic(
    ctx: JobContext,
    data: ImageData,
    max_rows: int | None,
    max_size: int | None,
    per_class: dict[Any, int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The committed synthetic images, area-averaged to the size validation sees, and their
    class indices: ``per_class[c]`` of class ``c`` when given (else all), at most ``max_rows``,
    each class in proportion. Read one part at a time and decoded a block at a time, so that
    neither the run's PNG bytes nor its full-size images are ever held together."""
    height, _, channels = data.image_shape
    size = work_size(height, max_size)
    images = [np.zeros((0, size, size, channels), dtype=np.uint8)]
    index = np.zeros(0, dtype=np.int64)
    if sum(data.plan.values()):
        labels = read_shards(ctx.output, require_success=False, columns=[LABEL])[LABEL]
        index = data.index_of(labels.tolist())
        rng = stream(ctx.config.train.seed, Stream.IMAGE_STACKED_SAMPLE)
        pick = np.arange(len(index))
        if per_class is not None:
            wanted = {data.classes.index(c): n for c, n in per_class.items()}
            pick = stratified_pick(index, wanted, rng)
        pick = pick[proportional_pick(index[pick], max_rows, rng)]
        take = pick if len(pick) < len(index) else None
        index = index[pick]
        for part in iter_shards(ctx.output, require_success=False, columns=["image"], take=take):
            pngs = part["image"].tolist()
            for start in range(0, len(pngs), DECODE_BLOCK):
                block = np.stack([decode_png(png) for png in pngs[start : start + DECODE_BLOCK]])
                images.append(downsample(block, size))
    return np.concatenate(images), index


def _recipes(model: ImageModelConfig) -> list[Recipe]:
    """The recipes a job may use: ``model.recipe``, or the candidates of ``auto``."""
    if model.recipe != "auto":
        return [Recipe.parse(model.recipe)]
    return [Recipe.parse(n) for n in model.recipe_candidates or DEFAULT_CANDIDATES]


def _fit_gan(
    cfg: ImageJobConfig,
    images: np.ndarray,
    labels: list[Any],
    classes: Sequence[Any],
    loop: TrainingLoop | None = None,
    snapshot: Any = None,
):
    """One GAN unit with the job's settings: the job's units, and the inner GANs that judge a GAN
    recipe in ``model.recipe: auto``."""
    return fit_image_unit(
        images,
        labels,
        classes,
        gan=settings_from(ImageGANSettings, cfg.model, cfg.data),
        train=settings_from(ImageTrainSettings, cfg.train),
        snapshot=snapshot,
        device=cfg.train.device,
        loop=loop or TrainingLoop(progress=False),
    )


def _stacking_inputs(
    data: ImageData, per_class: dict[Any, int] | None = None, rng: np.random.Generator | None = None
) -> dict[str, Any]:
    """The stacked arm's images when the recipe warps (see ``ImageModality.generate``);
    ``per_class[c]`` of class ``c`` when given."""
    if "stacking" not in data.extra:
        return {}
    images, labels = data.extra["stacking"]
    index = data.index_of(labels.tolist())
    if per_class is not None:
        wanted = {
            data.classes.index(c): min(n, int((index == data.classes.index(c)).sum()))
            for c, n in per_class.items()
        }
        keep = stratified_pick(index, wanted, rng)
        images, index = images[keep], index[keep]
    return {"stacked_images": images, "stacked_labels": index}


@dataclass
class _PartMaker:
    """An image job's generator in its own process: the synthesizer with the quality filter's
    judge and the PNG files writer, when the job has them."""

    synthesizer: ImageSynthesizer
    judge: Judge | None = None
    files: ImageFileWriter | None = None
