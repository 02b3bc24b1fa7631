"""The balancing job as a sequence of library calls, each a step that a Prefect task can wrap.

    ctx   = start_job(config, force)                output folder ready, MLflow parent run open
    data  = load_data(ctx)                          load, clean, split holdout, plan
    synth = reuse_synthesizer(ctx, data)            a cached generator for the same data + settings
    if synth is None:                               (cache miss, or force)
        units = units_for(ctx, data); fit_unit_step(ctx, data, classes) per unit
        synth = assemble(ctx, data, fitted)         saved to <output>/model/, then to the cache
    gen   = generate_step(ctx, data, synth)         exact per-class counts into Parquet shards
    check = validate_step(ctx, data)                lift vs real and vs SMOTE, fidelity, gate
    res   = finish_job(ctx, data, synth, gen, check)  model logged, manifest, _SUCCESS, summary

``run_job(config)`` runs them in order in-process; ``flows/`` runs the same steps as Prefect tasks.
This is the edge where the validated config is turned into plain arguments for the library.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from augment import __version__
from augment.core import storage
from augment.core.balance import class_counts, plan_samples, split_holdout, subsample_to_ratio
from augment.core.cache import (
    SynthesizerCache,
    cache_key,
    default_cache_dir,
    frame_digest,
    images_digest,
)
from augment.core.config import JobConfig
from augment.core.device import cpu_threads, resolve_device
from augment.core.errors import ModelFileError, ValidationFailed
from augment.core.generate import GenerationResult, generate_shards
from augment.core.shards import (
    MANIFEST,
    OutputLock,
    finalize,
    prepare_output,
    read_shards,
    write_json_atomic,
)
from augment.core.storage import Location
from augment.core.train import TrainingResult
from augment.tabular.cgan import GANSettings, TrainSettings
from augment.tabular.schema import TableSchema, infer_schema, to_python
from augment.tabular.sources import handle_missing, load_table
from augment.tabular.synthesizer import Synthesizer, fit_unit, load_synthesizer, training_units
from augment.tabular.validate import ValidationReport, validate_downstream

log = logging.getLogger(__name__)
MODEL_FILE = "model/synthesizer.pt"


@dataclass
class JobContext:
    config: JobConfig
    output: Location  # a local folder (Path) or an fsspec URL (UPath): see augment.core.storage
    fingerprint: str  # of everything that changes the output rows (the manifest's config_hash)
    tracker: Any | None  # augment.tracking.JobTracker, or None when tracking is disabled
    lock: OutputLock | None = None
    world_size: int = (
        1  # processes training each model (torchrun DDP; augment.pipeline.distributed)
    )
    force: bool = False  # train even when the cache holds a generator for this data + settings
    started: float = field(default_factory=time.perf_counter)
    timings: dict[str, float] = field(default_factory=dict)
    training: list[dict[str, Any]] = field(default_factory=list)  # per unit, for the manifest
    cache_key: str | None = None
    cache_hit: bool = False
    # Local folder for the training checkpoints and the model file (torch writes them with plain
    # file I/O, checkpoints every few steps). The output folder itself when it is local; for a URL
    # output a folder on this machine keyed by the URL (output.work_dir), from which the model
    # file is uploaded. A rerun on the same machine resumes from its checkpoints.
    work: Path | None = None

    @property
    def local(self) -> Path:
        return self.work if self.work is not None else self.output


@dataclass
class JobData:
    schema: TableSchema
    columns: list[str]
    train: pd.DataFrame
    holdout: pd.DataFrame
    counts_before: dict[Any, int]
    plan: dict[Any, int]
    cleaning: dict[str, Any]

    @property
    def classes(self) -> list[Any]:
        return self.schema.classes

    @property
    def label(self) -> str:
        return self.schema.label


def _is_image(ctx: JobContext) -> bool:
    return ctx.config.data.kind == "image"


@dataclass
class JobResult:
    output: Location
    counts_before: dict[Any, int]
    plan: dict[Any, int]
    counts_after: dict[Any, int]
    metrics: dict[str, float]
    passed: bool
    mlflow_run_id: str | None
    tracking_uri: str | None
    model_uri: str | None
    seconds: float
    notes: list[str] = field(default_factory=list)
    cache_hit: bool = False
    training: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """Plain, JSON-able data: what the CLI prints and what the Prefect flow returns."""
        return {
            "output": str(self.output),
            "counts_before": _plain_keys(self.counts_before),
            "plan": _plain_keys(self.plan),
            "counts_after": _plain_keys(self.counts_after),
            "metrics": self.metrics,
            "passed": self.passed,
            "mlflow_run_id": self.mlflow_run_id,
            "tracking_uri": self.tracking_uri,
            "model_uri": self.model_uri,
            "seconds": self.seconds,
            "notes": self.notes,
            "cache_hit": self.cache_hit,
            "training": self.training,
        }


def start_job(config: JobConfig, force: bool = False) -> JobContext:
    """Check the device, make the output folder ready and open the MLflow parent run.

    ``force`` trains even when the cache holds a generator for the same data and settings.
    """
    resolve_device(config.train.device)  # fail early on device: cuda without a GPU
    output = storage.location(config.output_path, config.output.storage_options)
    work = config.work_dir  # None for a local output: everything lives in the output folder
    lock = OutputLock(output).acquire()  # a second job on this location is refused
    try:
        output = prepare_output(output, config.output.overwrite, work=work)
        if work is not None:
            work.mkdir(parents=True, exist_ok=True)
        tracker = _open_tracker(config, output)
    except BaseException:
        lock.release()
        raise
    return JobContext(
        config=config,
        output=output,
        fingerprint=config.fingerprint(),
        tracker=tracker,
        lock=lock,
        work=work,
        force=force,
    )


def _open_tracker(config: JobConfig, output: Location) -> Any | None:
    tracker = None
    if config.tracking.enabled:
        from augment.tracking import JobTracker  # mlflow is imported only when tracking is on

        tracker = JobTracker(
            experiment=config.tracking.experiment or config.name,
            tracking_uri=config.tracking.uri,
            run_name=config.name,
            tags={"augment.version": __version__, "augment.output": storage.describe(output)},
        )
        tracker.log_params(config.to_dict())
        tracker.log_text(config.to_yaml(), "config/resolved.yaml")
    return tracker


def load_data(ctx: JobContext) -> Any:
    """Load and clean the data, split off the holdout, optionally imbalance, and plan.

    Returns a :class:`JobData` (tables) or an :class:`augment.image.job.ImageJobData`.
    """
    began = time.perf_counter()
    if _is_image(ctx):
        from augment.image.job import load_image_data

        data = load_image_data(ctx)
        ctx.timings["load"] = time.perf_counter() - began
        return data
    cfg = ctx.config
    frame = load_table(
        cfg.data.source,
        cfg.data.label,
        cfg.data.format,
        cfg.data.drop_columns,
        storage_options=cfg.data.storage_options,
    )
    frame, cleaning = handle_missing(frame, cfg.data.label, cfg.data.missing)
    train, holdout = split_holdout(frame, cfg.data.label, cfg.validate_.holdout, cfg.train.seed)
    if cfg.data.imbalance_ratio:
        train = subsample_to_ratio(train, cfg.data.label, cfg.data.imbalance_ratio, cfg.train.seed)
    schema = infer_schema(
        train,
        cfg.data.label,
        overrides=cfg.data.columns,
        categorical_max_unique=cfg.data.categorical_max_unique,
        max_categories=cfg.data.max_categories,
        constant_columns=cfg.data.constant_columns,
    )
    counts = class_counts(train[cfg.data.label])
    plan = plan_samples(counts, cfg.balance.sampling_strategy)
    write_json_atomic(
        ctx.output / "holdout_ids.json",
        {
            "row_ids": [int(i) for i in holdout.index],
            "train_row_ids": [int(i) for i in train.index],
        },
    )
    data = JobData(schema, list(frame.columns), train, holdout, counts, plan, cleaning)
    ctx.timings["load"] = time.perf_counter() - began
    if ctx.tracker:
        log_output_file(ctx, "holdout_ids.json", "data/holdout_ids.json")
        ctx.tracker.log_params(
            {
                "data.rows_train": len(train),
                "data.rows_holdout": len(holdout),
                "data.columns_continuous": len(schema.continuous),
                "data.columns_categorical": len(schema.categorical),
            }
        )
        ctx.tracker.log_text(json.dumps(_plain_keys(plan), indent=2), "plan.json")
    return data


def data_digest(data: Any) -> str:
    """Content digest of the training data as loaded (see :mod:`augment.core.cache`)."""
    if isinstance(data, JobData):
        schema = json.dumps(data.schema.to_dict(), sort_keys=True, default=str)
        return frame_digest(data.train) + ":" + hashlib.sha256(schema.encode()).hexdigest()
    return images_digest(data.train_images, data.train_labels)


def _cache(ctx: JobContext) -> SynthesizerCache | None:
    cfg = ctx.config.cache
    if not cfg.enabled:
        return None
    # beside the local folder: the output itself, or for a URL output the work dir on this machine
    return SynthesizerCache(cfg.dir or default_cache_dir(ctx.local))


def _cache_key(ctx: JobContext, data: Any) -> str:
    if ctx.cache_key is None:
        ctx.cache_key = cache_key(
            data_digest(data), ctx.config.training_settings(), units_for(ctx, data)
        )
    return ctx.cache_key


def reuse_synthesizer(ctx: JobContext, data: Any) -> Any | None:
    """The cached generator for this data and these training settings, or None (train it).

    On a hit the cached file is copied to ``<output>/model/synthesizer.pt`` (what the manifest
    and MLflow point at; for a URL output via the local work dir) and loaded; nothing is trained and no train run is logged. A rerun that
    misses still resumes from its checkpoints as before. ``ctx.force`` skips the lookup.
    """
    cache = _cache(ctx)
    if cache is None or not units_for(ctx, data):
        return None
    key = _cache_key(ctx, data)
    cached = None if ctx.force else cache.get(key)
    if cached is None:
        return None
    target = ctx.local / MODEL_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(cached, target)
    try:
        synthesizer = load_synthesizer(target, device=ctx.config.train.device)
    except ModelFileError as error:
        log.warning("ignoring a corrupt cache entry %s: %s", cached, error)
        cache.drop(key)
        target.unlink(missing_ok=True)
        return None
    if storage.is_remote(ctx.output):
        storage.write_bytes(ctx.output / MODEL_FILE, target.read_bytes())
    log.info("cache hit %s: reusing the generator in %s, no training", key, cached)
    ctx.cache_hit = True
    ctx.timings["fit"] = 0.0
    if ctx.tracker:
        ctx.tracker.set_tags({"augment.cache_hit": "true", "augment.cache_key": key})
    return synthesizer


def units_for(ctx: JobContext, data: JobData) -> list[list[Any]]:
    """The units of work to fit: one (conditional) or one per class that needs rows."""
    return training_units(data.classes, data.plan, ctx.config.model.mode)


def fit_unit_step(ctx: JobContext, data: Any, classes: Sequence[Any]) -> tuple[Any, TrainingResult]:
    """Fit one unit, logging its losses per step to a nested MLflow run."""
    cfg = ctx.config
    callbacks, run_id = [], None
    name = "train" if len(classes) > 1 or cfg.model.mode == "conditional" else f"train/{classes[0]}"
    if ctx.tracker:
        run_id = ctx.tracker.child(name)
        callbacks.append(ctx.tracker.loss_callback(run_id, every=10))
    index = data.classes.index(classes[0]) if len(classes) == 1 else "all"
    # What every kind's fit takes: the loop's checkpoint, resume and progress settings.
    loop = {
        "device": cfg.train.device,
        "checkpoint_path": ctx.local / "checkpoints" / f"unit-{index}.pt",
        "checkpoint_every": cfg.train.checkpoint_every,
        "fingerprint": cfg.fingerprint(for_checkpoint=True),
        "resume": cfg.train.resume,
        "callbacks": callbacks,
        "progress": cfg.train.progress,
    }
    extra: dict[str, float] = {}
    with cpu_threads(cfg.train.cpu_threads):
        if _is_image(ctx):
            from augment.image.job import fit_images

            model, result = fit_images(ctx, data, classes, name, run_id, loop)
            seen = (result.steps - result.resumed_from) * cfg.train.batch_size * ctx.world_size
            extra["train/images_per_second"] = seen / max(result.seconds, 1e-9)
        else:
            model, result = fit_unit(
                data.train,
                data.schema,
                classes,
                gan=gan_settings(cfg),
                train=train_settings(cfg),
                max_modes=cfg.model.max_modes,
                continuous=cfg.model.continuous,
                clip_to_range=cfg.output.clip_to_range,
                **loop,
            )
    if ctx.tracker:
        callbacks[0].flush()
        ctx.tracker.log_metrics(
            {"train/seconds": result.seconds, "train/resumed_from": result.resumed_from, **extra},
            run_id=run_id,
        )
        ctx.tracker.end(run_id)
    return model, result


def assemble(ctx: JobContext, data: Any, fitted: Sequence[tuple[Any, TrainingResult]]) -> Any:
    """Put the units together and save the synthesizer (a safe, CPU-loadable file).

    It is saved in the local folder and, for a URL output, uploaded to ``<output>/model/``.
    """
    ctx.timings["fit"] = sum(result.seconds for _, result in fitted)
    ctx.training = [
        {
            "classes": [to_python(c) for c in classes],
            "steps": result.steps,
            "resumed_from": result.resumed_from,
            "seconds": round(result.seconds, 3),
            "precision": result.precision,
            # where the unit trained: a Dask task runner fits units in worker processes
            "host": result.host,
            "pid": result.pid,
        }
        for classes, (_, result) in zip(units_for(ctx, data), fitted, strict=True)
    ]
    if _is_image(ctx):
        from augment.image.job import assemble_images

        synthesizer = assemble_images(fitted, data)
    else:
        synthesizer = Synthesizer([model for model, _ in fitted], data.schema, data.columns)
    synthesizer.save(ctx.local / MODEL_FILE)
    if storage.is_remote(ctx.output):
        storage.write_bytes(ctx.output / MODEL_FILE, (ctx.local / MODEL_FILE).read_bytes())
    cache = _cache(ctx)
    if cache is not None and fitted:
        # saved before generation and tracking: a retried later step, or a rerun, reuses it
        key = _cache_key(ctx, data)
        cache.put(key, ctx.local / MODEL_FILE, {"job": ctx.config.name, "output": str(ctx.output)})
        if ctx.tracker:
            ctx.tracker.set_tags({"augment.cache_hit": "false", "augment.cache_key": key})
    return synthesizer


def generate_step(ctx: JobContext, data: Any, synthesizer: Any) -> GenerationResult:
    began = time.perf_counter()
    if _is_image(ctx):
        from augment.image.job import generate_images_step

        result = generate_images_step(ctx, data, synthesizer)
        ctx.timings["generate"] = time.perf_counter() - began
        return result
    result = generate_shards(
        synthesizer,
        data.plan,
        ctx.output,
        rows_per_shard=ctx.config.output.rows_per_shard,
        seed=ctx.config.train.seed,
    )
    ctx.timings["generate"] = time.perf_counter() - began
    return result


def validate_step(ctx: JobContext, data: Any) -> tuple[ValidationReport, dict[str, float]]:
    """Score real vs real+synthetic vs real+SMOTE (images: + albumentations) on the holdout;
    measure fidelity (images: FID and KID).

    The synthetic rows are read back from the shards just written, so what is validated is what
    the user gets.
    """
    from augment.tabular.fidelity import fidelity_report

    began = time.perf_counter()
    if _is_image(ctx):
        from augment.image.job import validate_images_step

        outcome = validate_images_step(ctx, data)
        ctx.timings["validate"] = time.perf_counter() - began
        return outcome
    cfg = ctx.config
    synthetic = read_shards(ctx.output, require_success=False)
    targets = {c: data.counts_before[c] + data.plan[c] for c in data.counts_before}
    report = validate_downstream(
        data.train,
        data.holdout,
        synthetic,
        data.schema,
        target_counts=targets,
        classifiers=list(cfg.validate_.classifiers),
        smote=cfg.validate_.smote,
        min_lift=cfg.validate_.min_lift,
        seed=cfg.train.seed,
    )
    fidelity = {}
    if cfg.validate_.fidelity and len(synthetic):
        fidelity = fidelity_report(data.train, synthetic, data.holdout, data.schema, cfg.train.seed)
    ctx.timings["validate"] = time.perf_counter() - began
    return report, fidelity


def finish_job(
    ctx: JobContext,
    data: Any,
    generation: GenerationResult,
    report: ValidationReport | None,
    fidelity: dict[str, float],
) -> JobResult:
    """Log metrics, artifacts and the model; write the manifest, then ``_SUCCESS``."""
    cfg = ctx.config
    counts_after = {
        c: data.counts_before[c] + generation.counts.get(c, 0) for c in data.counts_before
    }
    metrics = dict(report.metrics if report else {})
    metrics.update(fidelity)
    passed = report.passed if report else True
    model_uri = run_id = tracking_uri = None
    if ctx.tracker:
        tracker = ctx.tracker
        run_id, tracking_uri = tracker.run_id, tracker.tracking_uri
        metrics_run = tracker.child("validate")
        tracker.log_metrics(metrics, run_id=metrics_run)
        tracker.log_metrics(metrics)
        tracker.log_metrics({f"time/{k}_seconds": v for k, v in ctx.timings.items()})
        tracker.log_class_histograms(_plain_keys(data.counts_before), _plain_keys(counts_after))
        if report:
            tracker.log_table(report.per_class, "validation/per_class.csv", run_id=metrics_run)
            tracker.log_table(report.per_class, "validation/per_class.csv")
            tracker.log_confusion_matrices(report.confusion, report.classes)
        tracker.end(metrics_run)
        gen_run = tracker.child("generate")
        tracker.log_metrics(
            {f"generated/{k}": v for k, v in _plain_keys(generation.counts).items()}, run_id=gen_run
        )
        tracker.end(gen_run)
        model_name = cfg.tracking.model_name or f"augment-{cfg.name}"
        model_uri = tracker.log_synthesizer(
            ctx.local / MODEL_FILE, model_name if cfg.tracking.register_model else None
        )
        tracker.set_tags({"validation": "passed" if passed else "failed"})
    manifest = {
        "job": cfg.name,
        "augment_version": __version__,
        "config_hash": ctx.fingerprint,
        "seed": cfg.train.seed,
        "kind": cfg.data.kind,
        "mode": cfg.model.mode,
        "label": data.label,
        "counts_before": _plain_keys(data.counts_before),
        "counts_generated": _plain_keys(generation.counts),
        "counts_after": _plain_keys(counts_after),
        "files": generation.files,
        "training": {"units": ctx.training},
        "validation": {
            "passed": passed,
            "min_lift": cfg.validate_.min_lift,
            "notes": report.notes if report else [],
        },
        "mlflow": {"tracking_uri": tracking_uri, "run_id": run_id, "model_uri": model_uri},
        "model_file": MODEL_FILE,
        "cache": {
            "enabled": cfg.cache.enabled,
            "hit": ctx.cache_hit,
            "key": ctx.cache_key,
            "forced": ctx.force,
        },
    }
    if ctx.world_size > 1:
        manifest["training"].update(
            world_size=ctx.world_size, effective_batch_size=cfg.train.batch_size * ctx.world_size
        )
    if _is_image(ctx):
        manifest["image_shape"] = list(data.image_shape)
        manifest["columns"] = ["image", "label", "sample_id"]
        manifest["image_files"] = "images/" if cfg.output.image_files else None
        manifest["filter"] = generation.filter or None
        manifest["skipped_files"] = data.cleaning.get("skipped_files", 0)
        manifest["fid_extractor"] = data.extra.get("fid_extractor")
    finalize(ctx.output, manifest)
    if ctx.tracker:
        log_output_file(ctx, MANIFEST, MANIFEST)
        ctx.tracker.end(status="FINISHED" if passed else "FAILED")
    if ctx.lock:
        ctx.lock.release()
    return JobResult(
        output=ctx.output,
        counts_before=data.counts_before,
        plan=data.plan,
        counts_after=counts_after,
        metrics=metrics,
        passed=passed,
        mlflow_run_id=run_id,
        tracking_uri=tracking_uri,
        model_uri=model_uri,
        seconds=time.perf_counter() - ctx.started,
        notes=list(report.notes) if report else [],
        cache_hit=ctx.cache_hit,
        training=ctx.training,
    )


def log_output_file(ctx: JobContext, name: str, artifact_file: str) -> None:
    """Copy a small text file of the output (local or on a store) into the MLflow run."""
    ctx.tracker.log_text((ctx.output / name).read_text(), artifact_file)


def fail_job(ctx: JobContext) -> None:
    """Mark the MLflow run as failed after an error (the output has no _SUCCESS); unlock."""
    try:
        if ctx.tracker:
            ctx.tracker.end(status="FAILED")
    finally:
        if ctx.lock:
            ctx.lock.release()


def run_job(config: JobConfig, raise_on_gate: bool = False, force: bool = False) -> JobResult:
    """Run the whole job in this process. See ``flows/`` for the same steps under Prefect.

    ``force`` trains even when the cache holds a generator for the same data and settings.

    Raises:
        ValidationFailed: only when ``raise_on_gate`` and the do-no-harm gate failed.
    """
    ctx = start_job(config, force=force)
    try:
        data = load_data(ctx)
        synthesizer = reuse_synthesizer(ctx, data)
        if synthesizer is None:
            fitted = [fit_unit_step(ctx, data, classes) for classes in units_for(ctx, data)]
            synthesizer = assemble(ctx, data, fitted)
        generation = generate_step(ctx, data, synthesizer)
        report, fidelity = validate_step(ctx, data) if config.validate_.enabled else (None, {})
        result = finish_job(ctx, data, generation, report, fidelity)
    except BaseException:
        fail_job(ctx)
        raise
    if raise_on_gate and not result.passed:
        raise ValidationFailed(gate_message(result, config.validate_.min_lift))
    return result


def gate_message(result: JobResult, min_lift: float) -> str:
    lift = result.metrics.get("lift/balanced_accuracy", float("nan"))
    return (
        f"validation failed: lift in balanced accuracy {lift:+.4f} is below validate.min_lift="
        f"{min_lift}; the shards are kept in {result.output}"
    )


def gan_settings(cfg: JobConfig) -> GANSettings:
    m = cfg.model
    return GANSettings(
        noise_dim=m.noise_dim,
        generator_dims=tuple(m.generator_dims),
        discriminator_dims=tuple(m.discriminator_dims),
        pac=m.pac,
        gumbel_tau=m.gumbel_tau,
        gp_weight=m.gp_weight,
        gp_every=m.gp_every,
        truncation=m.truncation,
        ema_decay=m.ema_decay,
    )


def train_settings(cfg: JobConfig, settings: type = TrainSettings) -> Any:
    """The config's optimisation knobs as ``settings`` (TrainSettings, or ImageTrainSettings)."""
    t = cfg.train
    return settings(
        steps=t.steps,
        batch_size=t.batch_size,
        lr=t.lr,
        betas=tuple(t.betas),
        critic_steps=t.critic_steps,
        seed=t.seed,
        class_sampling=t.class_sampling,
        precision=t.precision,
    )


def _plain_keys(mapping: dict[Any, Any]) -> dict[str, Any]:
    return {str(k): v for k, v in mapping.items()}
