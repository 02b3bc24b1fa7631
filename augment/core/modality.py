"""The contract between the job pipeline and a kind of data (a *modality*).

The pipeline (:mod:`augment.pipeline.job`) runs the same steps for every kind: start, load, plan,
reuse or fit, assemble, generate, validate, finish. What a step does with the data is the
modality's: each wing (``augment/tabular``, ``augment/image``) implements :class:`Modality` once,
and :mod:`augment.pipeline.registry` maps ``data.kind`` to it. The pipeline never tests the kind.

Everything the pipeline does itself is shared: the output lock and folder, the holdout record,
MLflow runs and params, the training loop with its checkpoints, the cache, the shard commit
protocol, the gate, the manifest and ``_SUCCESS``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np

from augment.core.context import JobContext
from augment.core.errors import DataError
from augment.core.generate import GenerationResult, GenerationSetup, PartBatches
from augment.core.parts import Part
from augment.core.persist import load_payload
from augment.core.storage import Location
from augment.core.synthesizer import UnitSynthesizer
from augment.core.train import TrainingLoop, TrainingResult
from augment.core.validation import ValidationReport


class PreparedData(Protocol):
    """What :meth:`Modality.load` returns, as far as the pipeline reads it."""

    counts_before: dict[Any, int]  # class -> rows (images) in the train split, sorted classes
    plan: dict[Any, int]  # class -> rows to generate (0 where none)
    cleaning: dict[str, Any]  # what loading dropped or fixed, for the manifest and the summary
    split_ids: dict[str, list[Any]]  # which rows (files) went to train and holdout
    params: dict[str, Any]  # MLflow params that describe the data (row counts, column kinds)

    @property
    def classes(self) -> list[Any]: ...

    @property
    def label(self) -> str: ...


@dataclass
class FeatureComparison:
    """One feature's real and synthetic values, for the report's per-feature plots."""

    name: str
    categorical: bool
    real: np.ndarray  # (R,) values of the real training rows of the generated classes
    synthetic: np.ndarray  # (S,) values of the synthetic rows
    distance: float  # KS statistic (numbers) or total variation distance (categories), 0..1
    real_weights: np.ndarray | None = None  # (R,) the real rows weighted to the synthetic mix
    # a datetime's values are seconds since this wall-clock time (ISO 8601): plotted as dates
    origin: str | None = None


@dataclass
class ReportInputs:
    """What a kind adds to ``report.html``, as plain values and arrays (the report draws them).

    Every field is optional: the report shows the sections whose data is there.
    """

    items: str = "rows"  # what the kind generates, in a sentence ("rows", "images")
    classic_arm: str = ""  # how to name the classic baseline arm ("SMOTE", ...)
    fidelity_name: str = ""  # what ``per_class_fidelity`` measures, e.g. "FID (domain features)"
    per_class_fidelity: dict[Any, float] = field(default_factory=dict)  # generated classes only
    # (name, value, what it means in one line): detection AUC, DCR, FID, ...
    measures: list[tuple[str, float, str]] = field(default_factory=list)
    # measure name -> whether its value is fine, in a few words (core.metrics.fidelity_judgement)
    judgements: dict[str, str] = field(default_factory=dict)
    features: list[FeatureComparison] = field(default_factory=list)  # every feature column
    # the real and the synthetic correlation matrices over ``correlation_columns``
    correlation_columns: list[str] = field(default_factory=list)
    real_correlation: np.ndarray | None = None  # (F, F)
    synthetic_correlation: np.ndarray | None = None  # (F, F)
    # class -> (real images, synthetic images), uint8 (n, H, W, C) each
    image_pairs: dict[Any, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)


class Modality(ABC):
    """One kind of data: how to load it, fit a unit, generate, validate and describe the output."""

    #: the ``data.kind`` value that selects this modality
    kind: ClassVar[str]
    #: the pydantic model of this kind's job config (a subclass of core.config.JobConfig)
    config: ClassVar[type]
    #: the ``format`` string of this kind's saved synthesizer files
    synthesizer_format: ClassVar[str]
    #: whether the job's process may make several parts of a plan at once, in threads
    #: (``generate.part_threads``): the kind's part generators share no mutable state
    parts_in_threads: ClassVar[bool] = False

    @abstractmethod
    def load(self, ctx: JobContext) -> PreparedData:
        """Read and clean the data, split off the holdout (core.balance), and plan."""

    @abstractmethod
    def data_digest(self, data: Any) -> str:
        """A content digest of the training data as loaded (half of the cache key)."""

    @abstractmethod
    def fit_unit(
        self,
        ctx: JobContext,
        data: Any,
        classes: Sequence[Any],
        loop: TrainingLoop,
        run_name: str,
        run_id: str | None,
    ) -> tuple[Any, TrainingResult]:
        """Fit one unit of work (the GAN of ``classes``) on ``ctx.config.train.device``; ``loop``
        holds the training loop's checkpoint, resume, callback and progress settings.
        ``run_name`` / ``run_id`` name the unit's nested MLflow run (for extra artifacts)."""

    def needs_model(self, config: Any) -> bool:
        """False when the job's settings generate without a trained model (tables with
        ``generate.generator: anchored``): then no unit is fitted."""
        return True

    def fits_anything(self, config: Any) -> bool:
        """True when the job fits something worth caching for a rerun (:mod:`augment.core.cache`):
        the model's units, or a part :meth:`complete` fits (images: the shared autoencoder)."""
        return self.needs_model(config)

    def unit_metrics(self, ctx: JobContext, result: TrainingResult) -> dict[str, float]:
        """Extra metrics of a fitted unit for its MLflow run (e.g. images per second)."""
        return {}

    @abstractmethod
    def assemble(self, data: Any, models: Sequence[Any]) -> UnitSynthesizer:
        """The synthesizer that routes each class to its fitted unit."""

    def complete(self, ctx: JobContext, data: Any, synthesizer: UnitSynthesizer) -> UnitSynthesizer:
        """Fit what the kind builds on the trained units before the synthesizer is saved (e.g.
        the images' shared autoencoder and the validated recipe); the default adds nothing."""
        return synthesizer

    @abstractmethod
    def synthesizer_from_payload(self, payload: dict[str, Any], device: str) -> UnitSynthesizer:
        """Rebuild a synthesizer from its saved payload (see :mod:`augment.core.persist`)."""

    @abstractmethod
    def prepare_generation(self, ctx: JobContext, data: Any, synthesizer: Any) -> GenerationSetup:
        """Everything generation needs before the plan's parts are made (tables: the choice of
        generator, the real rows of the mix; images: the quality filter's classifier)."""

    @abstractmethod
    def part_batches(self, generator: Any, settings: dict[str, Any], part: Part) -> PartBatches:
        """The rows (images as PNG rows) of one part of the plan: exactly ``part.counts`` per
        class, seeded by ``part.seed``, fresh ids from ``part.first_row`` (images: sample ids
        from ``part.offsets``). Runs in the job's process or on a worker."""

    def generator_from_file(self, path: Path, device: str) -> Any:
        """The generator that :attr:`GenerationSetup.save` wrote, loaded on a worker."""
        payload = load_payload(path, self.synthesizer_format)
        return self.synthesizer_from_payload(payload, device)

    def finish_generation(
        self,
        ctx: JobContext,
        data: Any,
        synthesizer: Any,
        setup: GenerationSetup,
        result: GenerationResult,
    ) -> GenerationResult:
        """What the kind does once every part is written (images: the stacked arm's sample,
        grids in MLflow); ``result`` holds the merged parts."""
        return result

    @abstractmethod
    def validate(self, ctx: JobContext, data: Any) -> tuple[ValidationReport, dict[str, float]]:
        """Score the downstream arms on the holdout (reading the committed shards) and measure
        fidelity; returns the report and the fidelity metrics."""

    def manifest_fields(
        self, ctx: JobContext, data: Any, generation: GenerationResult
    ) -> dict[str, Any]:
        """What the manifest says about this kind's output beyond the shared fields."""
        return {}

    def report_inputs(self, ctx: JobContext, data: Any, fidelity: dict[str, float]) -> ReportInputs:
        """What ``report.html`` shows of this kind beyond the shared sections (verdict, classes,
        confusion matrices, timings, config): real vs synthetic data and fidelity. Called after
        validation, with the committed shards on disk and the fidelity metrics of
        :meth:`validate` (empty when validation is off). Keep it to a few seconds."""
        return ReportInputs()

    def shard_items(
        self,
        output: Location,
        manifest: dict[str, Any],
        real: Any | None,
        features: list[str] | None = None,
    ) -> Any:
        """The items of a finished run of this kind, for :class:`augment.ShardDataset`: an
        object with ``labels`` and ``synthetic_mask`` (one per item, real items first when
        ``real``, this kind's prepared data, is given) and ``item(index, transform)``.

        Raises:
            DataError: this kind's runs cannot be read as a dataset.
        """
        raise DataError(
            f"runs of kind {self.kind!r} cannot be read as a dataset; read the shards with "
            "augment.core.shards.read_shards"
        )
