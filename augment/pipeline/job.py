"""The balancing job as a sequence of library calls, each a step that a Prefect task can wrap.

    ctx   = start_job(config, force)                output folder ready, MLflow parent run open
    data  = load_data(ctx)                          load, clean, split holdout, plan
    synth = reuse_synthesizer(ctx, data)            a cached generator for the same data + settings
    if synth is None:                               (cache miss, or force)
        units = units_for(ctx, data); fit_unit_step(ctx, data, classes) per unit
        synth = assemble(ctx, data, fitted)         saved to <output>/model/, then to the cache
    gen   = generate_step(ctx, data, synth)         exact per-class counts into shards
    check = validate_step(ctx, data)                lift vs real and vs the classic baseline
    res   = finish_job(ctx, data, gen, check)       model logged, manifest, _SUCCESS, summary

Every step is the same for every kind of data: what differs is the *modality* of the job's
``data.kind`` (:mod:`augment.core.modality`), looked up in :mod:`augment.pipeline.registry`.
``run_job(config)`` runs the steps in order in-process; ``flows/`` runs the same steps as Prefect
tasks. This is the edge where the validated config is turned into plain arguments for the library.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from augment.core import __version__, storage
from augment.core.cache import SynthesizerCache, cache_key, default_cache_dir
from augment.core.choice import choice_metrics
from augment.core.config import JobConfig, RunInfo
from augment.core.context import JobContext
from augment.core.device import available_cores, cpu_threads, resolve_device
from augment.core.errors import ModelFileError, ValidationFailed
from augment.core.generate import GenerationResult, GenerationSetup
from augment.core.modality import Modality, PreparedData
from augment.core.parts import Part, cut_plan, finished_record, merge_records, remove_other_parts
from augment.core.shards import (
    JOB_YAML,
    MANIFEST,
    REPORT,
    OutputLock,
    finalize,
    prepare_output,
    write_json_atomic,
)
from augment.core.storage import Location
from augment.core.synthesizer import training_units
from augment.core.train import TrainingResult
from augment.core.validation import ValidationReport
from augment.pipeline.parts import PartsJob, make_parts
from augment.pipeline.registry import load_synthesizer, modality
from augment.pipeline.report_data import write_report
from augment.pipeline.summary import gate_message

log = logging.getLogger(__name__)
MODEL_FILE = "model/synthesizer.pt"
SPLIT_FILE = "holdout_ids.json"

__all__ = [
    "JobContext",
    "JobResult",
    "assemble",
    "fail_job",
    "finish_job",
    "fit_unit_step",
    "generate_step",
    "make_generation_parts",
    "merge_generation",
    "plan_generation",
    "load_data",
    "reuse_synthesizer",
    "run_job",
    "start_job",
    "units_for",
    "validate_step",
]


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
    # what the generated items are made of, when the kind reports it (images: the recipe and,
    # when chosen on an inner split, every candidate's score)
    recipe: dict[str, Any] | None = None
    cache_hit: bool = False
    training: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase
    # where the generated rows came from: source -> class -> rows (tables: gan, anchored, and
    # dropped: drawn GAN rows the neighbour filter left out); empty for one source
    origin: dict[str, dict[str, int]] = field(default_factory=dict)
    # an automatic choice of how to generate: chosen, scores per candidate (tables: auto)
    choice: dict[str, Any] = field(default_factory=dict)
    kind: str = "tabular"  # data.kind
    name: str = ""  # the job's name
    min_lift: float = 0.0  # the do-no-harm gate this run was held to (validate.min_lift)
    cache_key: str | None = None  # of the generator used, reused from the cache or trained
    # where to find the MLflow run: an address in the server's UI, or store, experiment and run
    mlflow_run_link: str | None = None

    def summary(self) -> dict[str, Any]:
        """Plain, JSON-able data: what the CLI prints and what the Prefect flow returns."""
        return {
            "name": self.name,
            "output": str(self.output),
            "counts_before": _plain_keys(self.counts_before),
            "plan": _plain_keys(self.plan),
            "counts_after": _plain_keys(self.counts_after),
            "metrics": self.metrics,
            "passed": self.passed,
            "min_lift": self.min_lift,
            "mlflow_run_id": self.mlflow_run_id,
            "mlflow_run_link": self.mlflow_run_link,
            "tracking_uri": self.tracking_uri,
            "model_uri": self.model_uri,
            "seconds": self.seconds,
            "notes": self.notes,
            "recipe": self.recipe,
            "cache_hit": self.cache_hit,
            "cache_key": self.cache_key,
            "training": self.training,
            "timings": self.timings,
            "origin": self.origin,
            "choice": self.choice,
            "kind": self.kind,
            "report": str(self.output / REPORT) if (self.output / REPORT).exists() else None,
        }


def _modality(ctx: JobContext) -> Modality:
    return modality(ctx.config.data.kind)


def start_job(config: JobConfig, force: bool = False, run: RunInfo | None = None) -> JobContext:
    """Check the device, make the output folder ready and open the MLflow parent run.

    ``force`` trains even when the cache holds a generator for the same data and settings.
    ``run`` fills the run placeholders of ``output.path`` and tags the MLflow run (by default a
    new id and the current time); the context's config has them filled in.
    """
    run = run or RunInfo()
    config = config.for_run(run)
    resolve_device(config.train.device)  # fail early on device: cuda without a GPU
    output = storage.location(config.output_path, config.output.storage_options)
    work = config.work_dir  # None for a local output: everything lives in the output folder
    lock = OutputLock(output).acquire()  # a second job on this location is refused
    try:
        output = prepare_output(output, config.output.overwrite, work=work)
        if work is not None:
            work.mkdir(parents=True, exist_ok=True)
        tracker = _open_tracker(config, output, run)
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


def _open_tracker(config: JobConfig, output: Location, run: RunInfo) -> Any | None:
    tracker = None
    if config.tracking.enabled:
        from augment.tracking import JobTracker  # mlflow is imported only when tracking is on

        tracker = JobTracker(
            experiment=config.tracking.experiment or config.name,
            tracking_uri=config.tracking.uri,
            run_name=config.name,
            tags={
                "augment.version": __version__,
                "augment.output": storage.describe(output),
                "augment.run_id": run.id,
                **run.tags,
            },
        )
        tracker.log_params(config.to_dict())
        tracker.log_text(config.to_yaml(), "config/resolved.yaml")
    return tracker


def load_data(ctx: JobContext) -> Any:
    """Load and clean the data, split off the holdout, optionally imbalance, and plan.

    Returns the modality's prepared data (see :class:`augment.core.modality.PreparedData`); the
    split is recorded in ``holdout_ids.json`` and, with tracking, in MLflow.
    """
    began = time.perf_counter()
    data = _modality(ctx).load(ctx)
    write_json_atomic(ctx.output / SPLIT_FILE, data.split_ids)
    ctx.timings["load"] = time.perf_counter() - began
    if ctx.tracker:
        ctx.log_output_file(SPLIT_FILE, f"data/{SPLIT_FILE}")
        ctx.tracker.log_params(data.params)
        ctx.tracker.log_text(json.dumps(_plain_keys(data.plan), indent=2), "plan.json")
    return data


def data_digest(ctx: JobContext, data: Any) -> str:
    """Content digest of the training data as loaded (see :mod:`augment.core.cache`)."""
    return _modality(ctx).data_digest(data)


def _cache(ctx: JobContext) -> SynthesizerCache | None:
    cfg = ctx.config.cache
    if not cfg.enabled:
        return None
    # beside the local folder: the output itself, or for a URL output the work dir on this machine
    return SynthesizerCache(cfg.dir or default_cache_dir(ctx.local))


def _cache_key(ctx: JobContext, data: Any) -> str:
    if ctx.cache_key is None:
        ctx.cache_key = cache_key(
            data_digest(ctx, data), ctx.config.training_settings(), units_for(ctx, data)
        )
    return ctx.cache_key


def reuse_synthesizer(ctx: JobContext, data: Any) -> Any | None:
    """The cached generator for this data and these training settings, or None (train it).

    On a hit the cached file is copied to ``<output>/model/synthesizer.pt`` (what the manifest
    and MLflow point at; for a URL output via the local work dir) and loaded; nothing is trained
    and no train run is logged. A rerun that misses still resumes from its checkpoints as before.
    ``ctx.force`` skips the lookup.
    """
    cache = _cache(ctx)
    if cache is None or not _modality(ctx).fits_anything(ctx.config):
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


def units_for(ctx: JobContext, data: Any) -> list[list[Any]]:
    """The units of work to fit: one (conditional) or one per class that needs rows; none when
    the modality generates without a model for these settings."""
    if not _modality(ctx).needs_model(ctx.config):
        return []
    return training_units(data.classes, data.plan, ctx.config.model.mode)


def fit_unit_step(ctx: JobContext, data: Any, classes: Sequence[Any]) -> tuple[Any, TrainingResult]:
    """Fit one unit, logging its losses per step to a nested MLflow run."""
    cfg = ctx.config
    name = "train" if len(classes) > 1 or cfg.model.mode == "conditional" else f"train/{classes[0]}"
    index = data.classes.index(classes[0]) if len(classes) == 1 else "all"
    loop, callbacks, run_id = ctx.training_loop(name, f"unit-{index}.pt")
    kind = _modality(ctx)
    with cpu_threads(cfg.train.cpu_threads):
        model, result = kind.fit_unit(ctx, data, classes, loop, name, run_id)
    ctx.end_training_run(callbacks, run_id, result, kind.unit_metrics(ctx, result))
    return model, result


def assemble(ctx: JobContext, data: Any, fitted: Sequence[tuple[Any, TrainingResult]]) -> Any:
    """Put the units together and save the synthesizer (a safe, CPU-loadable file).

    It is saved in the local folder and, for a URL output, uploaded to ``<output>/model/``.
    """
    ctx.timings["fit"] = sum(result.seconds for _, result in fitted)
    # the kind may list more in complete (images: the autoencoder, the code GAN)
    ctx.training = [
        result.unit_entry("GAN", classes)
        for classes, (_, result) in zip(units_for(ctx, data), fitted, strict=True)
    ]
    synthesizer = _modality(ctx).assemble(data, [model for model, _ in fitted])
    synthesizer = _modality(ctx).complete(ctx, data, synthesizer)
    synthesizer.save(ctx.local / MODEL_FILE)
    if storage.is_remote(ctx.output):
        storage.write_bytes(ctx.output / MODEL_FILE, (ctx.local / MODEL_FILE).read_bytes())
    cache = _cache(ctx)
    if cache is not None and _modality(ctx).fits_anything(ctx.config):
        # saved before generation and tracking: a retried later step, or a rerun, reuses it
        key = _cache_key(ctx, data)
        cache.put(key, ctx.local / MODEL_FILE, {"job": ctx.config.name, "output": str(ctx.output)})
        if ctx.tracker:
            ctx.tracker.set_tags({"augment.cache_hit": "false", "augment.cache_key": key})
    return synthesizer


GENERATOR_FILE = "model/generation.pt"  # workers load the generator from here (see GenerationWork)


@dataclass
class GenerationWork:
    """A job's generation plan cut into parts (:mod:`augment.core.parts`), ready to be made:
    ``todo`` are the parts to make, ``kept`` the records of parts a crashed earlier run of the
    same job finished. ``job`` goes to the workers; ``setup`` stays in the job's process."""

    setup: GenerationSetup
    job: PartsJob
    parts: list[Part]
    todo: list[Part]
    kept: list[dict[str, Any]]
    began: float = field(default_factory=time.perf_counter)
    threads: int = 1  # parts made at once in the job's process (generate.part_threads)

    @property
    def in_process(self) -> bool:
        """The parts must be made in the job's process (the kind wrote no generator file)."""
        return self.job.generator_file is None


def plan_generation(
    ctx: JobContext, data: Any, synthesizer: Any, workers: bool = False
) -> GenerationWork:
    """Prepare generation: the kind's setup (tables: the choice, the real rows of the mix), the
    plan cut into ``generate.part_rows`` parts, what an earlier crashed run left removed except
    its finished parts of this plan, model and settings. With ``workers`` the generator is
    written to a file that other processes load (the model file itself when it holds it)."""
    cfg = ctx.config
    kind = _modality(ctx)
    began = time.perf_counter()
    setup = kind.prepare_generation(ctx, data, synthesizer)
    if setup.model_updated:  # the model file gets what generation uses (never the cache)
        _save_model(ctx, synthesizer)
    generator_file = None
    if workers and setup.save is not None:
        if setup.generator is synthesizer:  # the model file is the generator
            generator_file = ctx.output / MODEL_FILE
            if not setup.model_updated:
                _save_model(ctx, synthesizer)
        else:
            local = ctx.local / GENERATOR_FILE
            setup.save(local)
            if storage.is_remote(ctx.output):
                storage.write_bytes(ctx.output / GENERATOR_FILE, local.read_bytes())
            generator_file = ctx.output / GENERATOR_FILE
    job_ = PartsJob(
        kind=cfg.data.kind,
        output=str(ctx.output),
        settings=setup.settings,
        digest=setup.digest,
        generator_file=None if generator_file is None else str(generator_file),
        storage_options=dict(cfg.output.storage_options),
        device=cfg.train.device,
        cpu_threads=cfg.train.cpu_threads,
    )
    parts = cut_plan(data.plan, cfg.generate.part_rows, cfg.train.seed)
    remove_other_parts(ctx.output, parts)
    kept, todo = [], []
    for part in parts:
        record = finished_record(ctx.output, part, job_.key(part))
        if record is None:
            todo.append(part)
        else:
            kept.append({**record, "reused": True})
    if kept:
        log.info(
            "keeping %d of %d parts that an earlier run of this job finished", len(kept), len(parts)
        )
    threads = 1
    if kind.parts_in_threads:
        threads = part_threads(cfg.generate.part_threads, cfg.train.cpu_threads, len(todo))
    return GenerationWork(setup, job_, parts, todo, kept, began, threads)


def part_threads(wanted: int | None, torch_threads: int | None, parts: int) -> int:
    """How many parts the job's process makes at once: ``wanted`` (``generate.part_threads``),
    or one per core the process may use divided by each part's torch threads; never more than
    the ``parts`` to make."""
    if wanted is None:
        cores = available_cores()
        wanted = max(1, cores // (torch_threads or cores))
    return max(1, min(wanted, parts))


def make_generation_parts(work: GenerationWork, parts: Sequence[Part]) -> list[dict[str, Any]]:
    """Make ``parts`` in this process with the job's generator (the local engine, and the
    flow's engine unless Dask runs them); their records."""
    return make_parts(work.job, list(parts), work.setup.generator, threads=work.threads)


def merge_generation(
    ctx: JobContext,
    data: Any,
    synthesizer: Any,
    work: GenerationWork,
    records: Sequence[dict[str, Any]],
    engine: str = "local",
    workers: int | None = None,
) -> GenerationResult:
    """The parts' records merged into the job's generation result (exact counts checked), then
    what the kind does after generation. ``engine``: ``local`` (this process) or ``dask``;
    ``workers``: the worker processes of a local Dask cluster (None: a cluster elsewhere)."""
    merged = merge_records(data.plan, [*work.kept, *records])
    seconds = time.perf_counter() - work.began
    rows = sum(merged.counts.values())
    made = [r for r in records if not r.get("reused")]
    result = GenerationResult(
        counts=merged.counts,
        files=merged.files,
        seconds=seconds,
        filter=merged.filter,
        origin=merged.origin,
        choice=dict(work.setup.choice),
        model_updated=work.setup.model_updated,
    )
    made_rows = sum(sum(r["counts"].values()) for r in made)
    result.stats = {
        "rows": rows,
        "seconds": round(seconds, 3),
        "rows_per_second": round(made_rows / seconds, 1) if made_rows and seconds > 0 else None,
        "parts": len(work.parts),
        "parts_kept": merged.reused,
        "part_rows": ctx.config.generate.part_rows,
        "processes": merged.workers,
        "threads": work.threads if engine == "local" else 1,
        "workers": 1 if engine == "local" else workers,
        "engine": engine,
    }
    if work.job.generator_file and work.job.generator_file.endswith(GENERATOR_FILE):
        storage.remove(ctx.output / GENERATOR_FILE)
        storage.remove(ctx.local / GENERATOR_FILE)
    result = _modality(ctx).finish_generation(ctx, data, synthesizer, work.setup, result)
    ctx.timings["generate"] = time.perf_counter() - work.began
    return result


def _save_model(ctx: JobContext, synthesizer: Any) -> None:
    synthesizer.save(ctx.local / MODEL_FILE)
    if storage.is_remote(ctx.output):
        storage.write_bytes(ctx.output / MODEL_FILE, (ctx.local / MODEL_FILE).read_bytes())


def generate_step(ctx: JobContext, data: Any, synthesizer: Any) -> GenerationResult:
    """Exactly ``data.plan`` rows (images) per class into the output's shards, part by part in
    this process (:func:`plan_generation`, :func:`make_generation_parts`,
    :func:`merge_generation`; the Prefect flow hands the parts to Dask workers instead)."""
    work = plan_generation(ctx, data, synthesizer)
    records = make_generation_parts(work, work.todo)
    return merge_generation(ctx, data, synthesizer, work, records)


def validate_step(ctx: JobContext, data: Any) -> tuple[ValidationReport, dict[str, float]]:
    """Score real vs real+synthetic vs the classic baseline (SMOTE, albumentations) on the
    holdout; measure fidelity (tables: distances and detection; images: FID and KID).

    The synthetic rows are read back from the shards just written, so what is validated is what
    the user gets.
    """
    began = time.perf_counter()
    outcome = _modality(ctx).validate(ctx, data)
    ctx.timings["validate"] = time.perf_counter() - began
    return outcome


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
    fidelity = {**fidelity, **generation.measures}  # tables: privacy per row source
    metrics = dict(report.metrics if report else {})
    metrics.update(fidelity)
    passed = report.passed if report else True
    min_lift = cfg.validate_.min_lift
    # report.html, before _SUCCESS
    write_report(ctx, data, report, fidelity, counts_after, generation.origin)
    model_uri = run_id = tracking_uri = run_link = None
    if ctx.tracker:
        tracker = ctx.tracker
        run_id, tracking_uri, run_link = tracker.run_id, tracker.tracking_uri, tracker.run_url()
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
        speed = {
            f"generation/{key}": float(value)
            for key, value in generation.stats.items()
            if key in ("rows_per_second", "parts", "parts_kept", "processes", "threads")
            and value is not None
        }
        if speed:
            tracker.log_metrics(speed, run_id=gen_run)
        if generation.origin:
            origin_metrics = _origin_metrics(generation.origin)
            tracker.log_metrics(origin_metrics, run_id=gen_run)
            tracker.log_metrics({k: v for k, v in origin_metrics.items() if k.count("/") == 1})
        if generation.choice:
            tracker.log_params({"generate.chosen": generation.choice["chosen"]})
            choice = generation.choice
            tracker.log_metrics(choice_metrics(choice["scores"], choice.get("spreads", {})))
        tracker.end(gen_run)
        model_name = cfg.tracking.model_name or f"augment-{cfg.name}"
        model_uri = tracker.log_synthesizer(
            ctx.local / MODEL_FILE, model_name if cfg.tracking.register_model else None
        )
        verdict = {"validation": "passed" if passed else "failed", "validation.min_lift": min_lift}
        tracker.set_tags(verdict)
        # a version that failed the gate says so, so that nothing promotes it by accident
        tracker.tag_model_version(model_uri, verdict)
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
        "generation": generation.stats,
        "training": {"units": ctx.training},
        "validation": {
            "passed": passed,
            "min_lift": min_lift,
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
    manifest.update(_modality(ctx).manifest_fields(ctx, data, generation))
    # the resolved config (credentials masked) with absolute paths: `augment run <output>/job.yaml`
    # repeats the job from any working directory
    portable = cfg.portable(tracking_uri)
    storage.write_bytes(ctx.output / JOB_YAML, portable.to_yaml().encode())
    finalize(ctx.output, manifest)
    if ctx.tracker:
        ctx.log_output_file(MANIFEST, MANIFEST)
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
        notes=[*data.cleaning.get("notes", []), *(report.notes if report else [])],
        cache_hit=ctx.cache_hit,
        training=ctx.training,
        timings=dict(ctx.timings),
        recipe=manifest.get("recipe"),
        origin={source: _plain_keys(counts) for source, counts in generation.origin.items()},
        choice=dict(generation.choice),
        kind=cfg.data.kind,
        name=cfg.name,
        min_lift=min_lift,
        cache_key=ctx.cache_key,
        mlflow_run_link=run_link,
    )


def _origin_metrics(origin: dict[str, dict[Any, int]]) -> dict[str, float]:
    """``origin/<source>`` totals (tables: gan, anchored, dropped) and ``origin/<source>/<class>``."""
    metrics: dict[str, float] = {}
    for source, counts in origin.items():
        metrics[f"origin/{source}"] = float(sum(counts.values()))
        metrics.update({f"origin/{source}/{c}": float(n) for c, n in _plain_keys(counts).items()})
    return metrics


def fail_job(ctx: JobContext) -> None:
    """Mark the MLflow run as failed after an error (the output has no _SUCCESS); unlock."""
    try:
        if ctx.tracker:
            ctx.tracker.end(status="FAILED")
    finally:
        if ctx.lock:
            ctx.lock.release()


class JobObserver:
    """What :func:`run_job` tells its caller as it goes; the CLI shows it. Does nothing here.

    ``phase`` wraps each step: ``load``, ``train`` (``units``: how many GANs; the training loop
    shows its own progress bar, so nothing else may draw while it runs), ``assemble`` (what a
    kind fits on top of the units, e.g. the images' autoencoder and recipe choice), ``generate``
    (``count``: how many rows or images), ``validate`` and ``finish`` (report, MLflow,
    manifest). ``loaded`` comes once the data is split and the plan is made.
    """

    def loaded(self, ctx: JobContext, data: PreparedData) -> None:
        """The data is loaded and the plan made (``data.counts_before``, ``data.plan``)."""

    def phase(self, name: str, **detail: Any) -> AbstractContextManager[None]:
        return nullcontext()


def run_job(
    config: JobConfig,
    raise_on_gate: bool = False,
    force: bool = False,
    observer: JobObserver | None = None,
    run: RunInfo | None = None,
) -> JobResult:
    """Run the whole job in this process. See ``flows/`` for the same steps under Prefect.

    ``force`` trains even when the cache holds a generator for the same data and settings.
    ``observer`` hears of each phase as it starts and ends (the CLI's progress lines).
    ``run`` identifies this run (see :func:`start_job`).

    Raises:
        ValidationFailed: only when ``raise_on_gate`` and the do-no-harm gate failed.
    """
    watch = observer or JobObserver()
    ctx = start_job(config, force=force, run=run)
    try:
        with watch.phase("load"):
            data = load_data(ctx)
        watch.loaded(ctx, data)
        synthesizer = reuse_synthesizer(ctx, data)
        if synthesizer is None:
            units = units_for(ctx, data)
            fitted = []
            if units:  # none when the settings generate without a GAN
                with watch.phase("train", units=len(units)):
                    fitted = [fit_unit_step(ctx, data, classes) for classes in units]
            with watch.phase("assemble"):
                synthesizer = assemble(ctx, data, fitted)
        with watch.phase("generate", count=sum(data.plan.values())):
            generation = generate_step(ctx, data, synthesizer)
        report, fidelity = None, {}
        if config.validate_.enabled:
            with watch.phase("validate"):
                report, fidelity = validate_step(ctx, data)
        with watch.phase("finish"):
            result = finish_job(ctx, data, generation, report, fidelity)
    except BaseException:
        fail_job(ctx)
        raise
    if raise_on_gate and not result.passed:
        summary = result.summary()
        raise ValidationFailed(gate_message(summary), [summary])
    return result


def _plain_keys(mapping: dict[Any, Any]) -> dict[str, Any]:
    return {str(k): v for k, v in mapping.items()}
