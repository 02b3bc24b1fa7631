"""The job configuration's shared part: the sections and keys that every data kind has.

Each kind (``augment/tabular/config.py``, ``augment/image/config.py``) subclasses
:class:`JobConfig` and the sections it extends; :mod:`augment.pipeline.config` joins the kinds into
one pydantic discriminated union on ``data.kind`` and reads YAML files. Library functions below
that edge take plain typed arguments. Unknown keys are errors (``extra="forbid"``), and every error
names its dotted path.
"""

from __future__ import annotations

import hashlib
import json
import re
import string
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from augment.core.cache import default_cache_dir
from augment.core.errors import ConfigError
from augment.core.storage import default_work_dir, is_url, redact

PositiveInt = Annotated[int, Field(gt=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
STRATEGY_WORDS = ("auto", "not majority", "minority", "not minority", "all")


def _sampling_strategy(value: Any) -> Any:
    """One check, one message in the user's terms (not a line per branch of a union).

    A map's keys are the class labels as they appear in the data: strings, integers, booleans
    (YAML ``{0: 500, 1: 500}`` or ``{fraud: 500}``); its values target counts, real rows included.
    """
    if isinstance(value, str) and value in STRATEGY_WORDS:
        return value
    if isinstance(value, float | int) and not isinstance(value, bool) and 0 < value <= 1:
        return float(value)
    if isinstance(value, dict) and value:
        bad = {
            k: v for k, v in value.items() if isinstance(v, bool) or not isinstance(v, int) or v < 0
        }
        odd = [k for k in value if not isinstance(k, str | int | float | bool)]
        if not bad and not odd:
            return dict(value)
        if bad:
            raise ValueError(
                f"target counts must be whole numbers >= 0; got {bad} (a count is the class's "
                "size after balancing, real rows included)"
            )
    raise ValueError(
        f"use one of {', '.join(repr(w) for w in STRATEGY_WORDS)}, a ratio "
        "minority/majority in (0, 1] (two classes), or a map class -> target count such as "
        "{fraud: 5000} or {0: 500, 1: 500}"
    )


SamplingStrategy = Annotated[
    str | float | dict[str | int | float | bool, int], BeforeValidator(_sampling_strategy)
]
MAX_ROWS_HELP = (
    "At most this many rows (images) in any arm and in each set the fidelity metrics compare; "
    "larger ones use a stratified sample (real rows first, the synthetic ones scaled alike per "
    "class), reported in the summary and MLflow. null = all of them."
)
KIND_HELP = "The kind of data; it picks the keys, the defaults and the modality of the job."


# Share of each class's top-up that the stacked arm fills with synthetic images (the rest:
# copies of the class's real images, moved on the fly like everything else). With the whole
# top-up synthetic, each real image of a rare class is seen once an epoch instead of ~10 times,
# and the real images carry what the synthetic ones only approximate. Measured on the three image
# benchmark sets (benchmarks/NOTES.md, 2026-12-03; 18 paired runs): half synthetic stacked
# +0.32 pp better than all synthetic (standard error 0.20), with a smaller worst case.
STACK_SHARE = 0.5


# Placeholders of output.path and output.work_dir. {name} is the job's name; the others tell one
# run of a job from the next, so that a scheduled job can write every run to a folder of its own.
RUN_PLACEHOLDERS = ("run_date", "run_time", "run_id")
PLACEHOLDERS = ("name", *RUN_PLACEHOLDERS)
PLACEHOLDER_HELP = (
    "{name}: the job name; {run_date}: the run's start date in UTC (2026-12-07); {run_time}: its "
    "start time in UTC (20261207T030000Z); {run_id}: the Prefect flow run's id under the flows, "
    "else a new id per run"
)
# A source or URI that starts with a scheme (sklearn:wine, s3://..., sqlite:...) is no local path;
# one letter before the colon would be a Windows drive.
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")


@dataclass(frozen=True)
class RunInfo:
    """One run of a job: its id and start time fill ``output.path``'s run placeholders, and its
    ``tags`` go on the job's MLflow run. An orchestrator passes its own (the flows: the Prefect
    flow run's id and address); by default every run gets a new id and the current time."""

    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    tags: Mapping[str, str] = field(default_factory=dict)

    def placeholders(self) -> dict[str, str]:
        started = self.started.astimezone(UTC)
        return {
            "run_date": started.strftime("%Y-%m-%d"),
            "run_time": started.strftime("%Y%m%dT%H%M%SZ"),
            "run_id": self.id,
        }


def _known_placeholders(template: str | None) -> str | None:
    """``template`` when every ``{...}`` in it is one of :data:`PLACEHOLDERS`."""
    if template is None:
        return None
    try:
        used = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as error:
        raise ValueError(
            f"a brace without its pair ({error}); placeholders look like {{name}}"
        ) from None
    unknown = [name for name in used if name not in PLACEHOLDERS]
    if unknown:
        raise ValueError(
            f"unknown placeholder {{{unknown[0]}}}; use {PLACEHOLDER_HELP.replace(': ', ' = ')}"
        )
    return template


def per_run(template: str) -> bool:
    """Whether ``template`` names a new folder for every run (it holds a run placeholder)."""
    return any(f"{{{name}}}" in template for name in RUN_PLACEHOLDERS)


def absolute_path(value: str) -> str:
    """A local path made absolute against the working directory; URLs and other sources with a
    scheme (``s3://...``, ``sklearn:wine``) as they are."""
    if is_url(value) or _SCHEME.match(value):
        return value
    return str(Path(value).expanduser().absolute())


def absolute_tracking_uri(uri: str) -> str:
    """A sqlite store's URI (``sqlite:///mlflow.db``) with an absolute path; others as they are."""
    prefix = "sqlite:///"
    db, _, query = uri.removeprefix(prefix).partition("?")
    if not uri.startswith(prefix) or not db or db == ":memory:":
        return uri
    return prefix + absolute_path(db) + (f"?{query}" if query else "")


class Strict(BaseModel):
    """A config section: unknown keys are errors; assignments are validated too."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(Strict):
    """Where the rows (or images) come from: the keys of every kind."""

    source: str = Field(
        description="tabular: Parquet file or directory, CSV file, or sklearn:breast_cancer|wine. "
        "image: a folder root/<class>/<image>, Parquet with image bytes, a .npz of images and "
        "labels, or sklearn:digits."
    )
    kind: str = Field("tabular", description=KIND_HELP)
    label: str | None = Field(
        None,
        description="Class label column (required for tables; for image Parquet, default label).",
    )
    imbalance_ratio: Annotated[float, Field(ge=1.0)] | None = Field(
        None,
        description="Subsample the train split to this largest/smallest class ratio (demos, "
        "benchmarks). Class sizes fall geometrically from the largest class to the smallest.",
    )
    storage_options: dict[str, Any] = Field(
        default_factory=dict,
        description="Passed to fsspec when data.source is a URL (s3://, gs://, ...), e.g. "
        "endpoint_url; credentials are better left to the environment (AWS_ACCESS_KEY_ID ...).",
    )


class BalanceConfig(Strict):
    """How many rows to generate per class, with imbalanced-learn's sampling_strategy semantics."""

    sampling_strategy: SamplingStrategy = Field(
        "not majority",
        description='What to generate, as in imbalanced-learn: "not majority", "minority", '
        '"not minority", "all", a float ratio minority/majority (two classes), or a map '
        "class -> target count (real + generated).",
    )


class ModelConfig(Strict):
    """GAN architecture: the keys of every kind."""

    mode: Literal["conditional", "per_class"] = Field(
        "conditional",
        description="conditional: one GAN conditioned on the class; per_class: one GAN per class "
        "that needs rows.",
    )
    noise_dim: PositiveInt = Field(32, description="Size of the generator's noise input.")
    truncation: Annotated[float, Field(gt=0, le=1)] = Field(
        1.0, description="Sampling noise scale; below 1 trades variety for fidelity."
    )
    ema_decay: Annotated[float, Field(ge=0, lt=1)] = Field(
        0.95, description="EMA of the generator weights; the EMA generator samples (0: none)."
    )


class TrainConfig(Strict):
    """The optimisation loop. Training is counted in optimizer steps, never epochs."""

    steps: PositiveInt = Field(
        250, description="Generator optimizer steps; each comes with critic_steps critic steps."
    )
    batch_size: PositiveInt = Field(64, description="Rows (images) per optimizer step.")
    lr: PositiveFloat = Field(1e-3, description="Adam learning rate of both networks.")
    betas: tuple[float, float] = Field((0.5, 0.9), description="Adam betas.")
    critic_steps: PositiveInt = Field(3, description="Critic steps per generator step.")
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="auto: CUDA when a GPU is visible, else the CPU."
    )
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto",
        description="Training arithmetic. auto: bf16 autocast on CUDA, and for images on CPUs "
        "with AMX bf16 units (1.3-1.5x faster there); fp32: never; bf16: always.",
    )
    cpu_threads: PositiveInt | None = Field(
        1,
        description="torch intra-op threads on the CPU. Small tabular MLPs run fastest on one "
        "thread (more threads only add synchronisation); null = all cores.",
    )
    seed: int = Field(0, description="Seeds the split, the networks and the samples.")
    checkpoint_every: PositiveInt = Field(200, description="Checkpoint every N steps.")
    resume: bool = Field(True, description="Continue from a checkpoint of the same config.")
    class_sampling: Literal["uniform", "log", "empirical"] = Field(
        "uniform", description="Training-by-sampling: how classes are drawn for each batch."
    )
    progress: bool = Field(True, description="Show a progress bar per training unit.")


class OutputConfig(Strict):
    """Where the shards go. Placeholders in ``path`` and ``work_dir``: {name}, {run_date},
    {run_time}, {run_id} (below)."""

    path: str = Field(
        "runs/{name}",
        description="Output folder or fsspec URL of the run. Placeholders: "
        + PLACEHOLDER_HELP
        + ". With a run placeholder every run gets its own folder (a rerun never finds a "
        "finished one), and trained generators are cached beside the part of the path "
        "before it.",
    )
    rows_per_shard: PositiveInt = Field(50_000, description="Rows per Parquet part.")
    overwrite: bool = Field(
        False, description="Replace an earlier augment run in the output folder."
    )
    storage_options: dict[str, Any] = Field(
        default_factory=dict,
        description="Passed to fsspec when output.path is a URL (s3://, gs://, memory://).",
    )
    work_dir: str | None = Field(
        None,
        description="Local folder for what stays on this machine when output.path is a URL (the "
        "training checkpoints and the model file before upload); default "
        "~/.cache/augment/work/<last part of the URL>-<hash of the URL>. Unused for a local output.path.",
    )

    @field_validator("path", "work_dir")
    @classmethod
    def _placeholders(cls, value: str | None) -> str | None:
        return _known_placeholders(value)

    @field_validator("work_dir")
    @classmethod
    def _local_work_dir(cls, value: str | None) -> str | None:
        if value is not None and is_url(value):
            raise ValueError(
                "must be a local folder (checkpoints are written with plain file I/O); "
                "drop the URL scheme"
            )
        return value


class ValidateConfig(Strict):
    """Downstream check on a real holdout: the keys of every kind."""

    enabled: bool = Field(True, description="Run the downstream validation and fidelity.")
    holdout: Annotated[float, Field(gt=0, lt=1)] = Field(
        0.3, description="Share of the data held out (stratified) and never seen by the GAN."
    )
    min_lift: float = Field(
        0.0, description="Do-no-harm gate: fail when lift in balanced accuracy is below this."
    )
    max_rows: PositiveInt | None = Field(50_000, description=MAX_ROWS_HELP)
    gate_fails_flow: bool = Field(
        True,
        description="Under Prefect, a job whose lift is below min_lift ends its flow run "
        "Failed (the output is still written); false: Completed. The CLI exits 10 either way.",
    )


class TrackingConfig(Strict):
    """MLflow. The default store is sqlite:///mlflow.db in the working directory."""

    enabled: bool = Field(True, description="Log the job to MLflow.")
    uri: str | None = Field(None, description="Overrides MLFLOW_TRACKING_URI and the default.")
    experiment: str | None = Field(None, description="Defaults to the job name.")
    register_model: bool = Field(
        True, description="Register the generator in the MLflow model registry."
    )
    model_name: str | None = Field(None, description="Defaults to augment-<job name>.")


class CacheConfig(Strict):
    """Reuse a trained generator when the same data meets the same training settings.

    The key is a digest of the training data as loaded (table rows and schema, or pixels and
    labels) plus the settings that shape the fitted model (``model``, ``train`` except progress,
    resume, checkpoint_every and cpu_threads, the kind's own extras, the units of work); see
    :mod:`augment.core.cache`. ``augment run --force`` (flow parameter ``force``) trains anyway.
    """

    enabled: bool = Field(True, description="Reuse a cached generator; train and cache on a miss.")
    dir: str | None = Field(
        None,
        description="Cache folder; default: .augment-cache beside the output folder (for "
        "runs/{name} that is runs/.augment-cache, shared by every job under runs/).",
    )


class OrchestrationConfig(Strict):
    """How the Prefect flow runs the job: task runner for the fit tasks, retries with backoff.

    Ignored by ``augment run --engine local`` (one process, no retries).
    """

    task_runner: Literal["sequential", "threads", "dask"] = Field(
        "threads",
        description="sequential: one task at a time; threads: a thread pool in the flow "
        "process; dask: prefect-dask's DaskTaskRunner (worker processes, or a cluster).",
    )
    threads: PositiveInt | None = Field(
        None, description="threads: pool size (default: Prefect's, the number of CPUs)."
    )
    dask_address: str | None = Field(
        None,
        description="dask: scheduler address (tcp://host:8786) of a running cluster; null "
        "starts a distributed.LocalCluster on this machine for the flow run.",
    )
    dask_workers: PositiveInt = Field(
        2, description="dask without an address: worker processes of the local cluster."
    )
    retries: Annotated[int, Field(ge=0)] = Field(
        3,
        description="Retries of the tasks that touch storage or the tracking server (start, "
        "load, assemble, generate, validate, finish). Fit tasks are not retried.",
    )
    retry_delay_seconds: Annotated[float, Field(ge=0)] = Field(
        2.0, description="First retry delay; it doubles with every further retry."
    )
    retry_jitter_factor: Annotated[float, Field(ge=0)] | None = Field(
        0.2, description="Random extra delay, as a fraction of the delay (null = none)."
    )

    @model_validator(mode="after")
    def _address_needs_dask(self) -> OrchestrationConfig:
        if self.dask_address and self.task_runner != "dask":
            raise ValueError(
                "dask_address applies only to task_runner: dask; remove it or set "
                f"{setting('orchestration.task_runner', 'dask')}"
            )
        if self.threads and self.task_runner != "threads":
            raise ValueError("threads applies only to task_runner: threads; remove it")
        return self


class GenerateConfig(Strict):
    """How generation is cut into parts (every kind); a kind adds where its rows come from."""

    part_rows: PositiveInt = Field(
        1_000_000,
        description="Generation is cut into parts of at most this many rows (images), each with "
        "its own seed and range of fresh ids, written and recorded on its own: the unit that "
        "a Dask worker makes (orchestration.task_runner: dask) and that a rerun after a crash "
        "keeps. The parts depend on the plan and this number only, so the same job gives the "
        "same files on one process or many. A plan within one part generates as before parts "
        "existed.",
    )
    part_threads: PositiveInt | None = Field(
        None,
        description="Parts made side by side in the job's own process (kinds whose parts are "
        "independent: tables), each on train.cpu_threads torch threads. null: one per core the "
        "process may use, divided by train.cpu_threads, at most the number of parts. The files "
        "do not depend on it: each part has its own seed, rows and files.",
    )


class JobConfig(Strict):
    """One balancing job: the sections every kind has. A kind subclasses it and narrows
    ``data``, ``model``, ``train``, ``output``, ``validate`` and ``tracking`` to its own models
    (with its own defaults) and may add sections (images: ``filter``) or settings (tables:
    ``generate``)."""

    name: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="The job's name: the MLflow experiment, the default output folder.",
    )
    data: DataConfig
    balance: BalanceConfig = Field(default_factory=BalanceConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    validate_: ValidateConfig = Field(default_factory=ValidateConfig, alias="validate")
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    cache: CacheConfig = Field(default_factory=CacheConfig)
    orchestration: OrchestrationConfig = Field(default_factory=OrchestrationConfig)
    generate: GenerateConfig = Field(default_factory=GenerateConfig)

    model_config = ConfigDict(extra="forbid", populate_by_name=True, validate_assignment=True)

    def _fill(self, template: str, run: RunInfo | None = None) -> str:
        values = {"name": self.name, **(run.placeholders() if run else {})}
        for key, value in values.items():
            template = template.replace(f"{{{key}}}", value)
        return template

    @property
    def output_path(self) -> str:
        """``output.path`` with ``{name}`` filled in (the run placeholders: :meth:`for_run`)."""
        return self._fill(self.output.path)

    @property
    def work_dir(self) -> Path | None:
        """Local folder for checkpoints and the model file when the output is a URL, else None."""
        if not is_url(self.output_path):
            return None
        if self.output.work_dir:
            return Path(self._fill(self.output.work_dir)).expanduser()
        return default_work_dir(self.output_path)

    def for_run(self, run: RunInfo) -> JobConfig:
        """This config for one run: every placeholder of ``output.path`` and ``output.work_dir``
        filled in. When a local ``output.path`` makes a folder per run, ``cache.dir`` (if unset)
        goes beside the fixed part of the path, so that the runs share their trained generators:
        ``runs/{name}/{run_date}`` caches in ``runs/<name>/.augment-cache``."""
        output = {"path": self._fill(self.output.path, run)}
        if self.output.work_dir:
            output["work_dir"] = self._fill(self.output.work_dir, run)
        updates: dict[str, Any] = {"output": self.output.model_copy(update=output)}
        if self.cache.dir is None and per_run(self.output.path) and not is_url(self.output_path):
            parts = Path(self.output_path).parts
            first = next(i for i, part in enumerate(parts) if per_run(part))
            cache_dir = default_cache_dir(Path(*parts[: first + 1]))
            updates["cache"] = self.cache.model_copy(update={"dir": str(cache_dir)})
        return self.model_copy(update=updates)

    def portable(self, tracking_uri: str | None = None) -> JobConfig:
        """A copy that runs the same from any working directory: the local paths of
        ``data.source``, ``output.path``, ``output.work_dir``, ``cache.dir`` and a local
        ``tracking.uri`` made absolute against this one. ``tracking_uri``: the store the run
        logged to, written out when ``tracking.uri`` was unset and it is a local sqlite store
        (the default ``mlflow.db`` of the working directory). What a run saves as its job.yaml.
        """
        data = {"source": absolute_path(self.data.source)}
        output = {"path": absolute_path(self.output.path)}
        if self.output.work_dir:
            output["work_dir"] = absolute_path(self.output.work_dir)
        uri = self.tracking.uri
        if not uri and tracking_uri and tracking_uri.startswith("sqlite:///"):
            uri = tracking_uri
        cache_dir = self.cache.dir and absolute_path(self.cache.dir)
        return self.model_copy(
            update={
                "data": self.data.model_copy(update=data),
                "output": self.output.model_copy(update=output),
                "tracking": self.tracking.model_copy(
                    update={"uri": uri and absolute_tracking_uri(uri)}
                ),
                "cache": self.cache.model_copy(update={"dir": cache_dir}),
            }
        )

    def to_dict(self) -> dict[str, Any]:
        """The resolved configuration as plain JSON-able data (keys as written in YAML)."""
        resolved = self.model_dump(mode="json", by_alias=True)
        # printed, logged as MLflow params and stored as an artifact: no secrets in there
        for section in ("data", "output"):
            resolved[section]["storage_options"] = redact(resolved[section]["storage_options"])
        return resolved

    def fitted_settings(self) -> dict[str, Any]:
        """Settings outside ``model`` and ``train`` that a fitted generator holds (a kind's
        override; tables: ``output.clip_to_range``, kept by the fitted encoder)."""
        return {}

    def training_settings(self) -> dict[str, Any]:
        """The settings that shape a fitted generator, apart from the data it is fitted on.

        Half of the cache key of :mod:`augment.core.cache` (the other half digests the training
        data as loaded, so the data section, the holdout fraction and the seed's effect on the
        split are covered by content). Left out: what only changes speed or bookkeeping (progress
        bars, resume, checkpoint interval, CPU threads).
        """
        resolved = self.to_dict()
        train = {
            k: v
            for k, v in resolved["train"].items()
            if k not in ("progress", "resume", "checkpoint_every", "cpu_threads")
        }
        settings = {"kind": self.data.kind, "model": resolved["model"], "train": train}
        return {**settings, **self.fitted_settings()}

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def fingerprint(self, for_checkpoint: bool = False) -> str:
        """A hash of everything that changes the generated rows (not tracking, caching, how the
        flow is orchestrated, or progress bars).

        ``for_checkpoint`` also leaves out the step budget, so a rerun with more steps continues
        from a checkpoint of the same model instead of starting over.
        """
        relevant = self.to_dict()
        for section in ("tracking", "cache", "orchestration"):
            relevant.pop(section, None)
        # where files live and how to reach them never changes a generated row
        relevant["data"].pop("storage_options", None)
        for key in ("storage_options", "work_dir"):
            relevant["output"].pop(key, None)
        for key in ("progress", "resume"):
            relevant["train"].pop(key, None)
        if for_checkpoint:
            for key in ("steps", "checkpoint_every"):
                relevant["train"].pop(key, None)
            relevant.pop("output", None)
            # how the fitted generator's rows are picked or mixed never changes its training
            relevant.pop("filter", None)
            relevant.pop("generate", None)
            relevant["balance"].pop("sampling_strategy", None)
        else:
            relevant["output"].pop("overwrite", None)
            relevant["output"].pop("path", None)
        # only the holdout fraction of the validation settings changes the training rows
        relevant["validate"] = {"holdout": relevant["validate"]["holdout"]}
        blob = json.dumps(relevant, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


# How a message writes a setting the user can change: as the YAML key they edit in their config
# (the default), or as the --set entry they type when they run a data file without one (the CLI
# chooses, with settings_as_command_line).
_SETTING_FORM: ContextVar[str] = ContextVar("augment_setting_form", default="yaml")


def setting(key: str, value: Any) -> str:
    """A config setting in the form the user needs: ``data.missing: drop`` (YAML) or
    ``--set data.missing=drop`` (command line, inside :func:`settings_as_command_line`).

    Example:
        >>> setting("data.columns.comments", "ignore")
        'data.columns.comments: ignore'
        >>> with settings_as_command_line():
        ...     setting("data.drop_columns", ["id", "note"])
        '--set data.drop_columns=[id,note]'
    """
    if isinstance(value, bool):
        value = str(value).lower()  # YAML's and the command line's spelling
    if _SETTING_FORM.get() == "yaml":
        return f"{key}: {value}"
    if isinstance(value, list | tuple):
        value = "[" + ",".join(str(item) for item in value) + "]"
    return f"--set {key}={value}"


@contextmanager
def settings_as_command_line() -> Iterator[None]:
    """Messages raised inside write settings as ``--set KEY=VALUE`` (see :func:`setting`)."""
    token = _SETTING_FORM.set("command line")
    try:
        yield
    finally:
        _SETTING_FORM.reset(token)


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b=c`` overrides to a raw config dict; values are parsed as YAML scalars."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, for example train.steps=200")
        dotted, _, text = item.partition("=")
        keys = [k for k in dotted.strip().split(".") if k]
        if not keys:
            raise ConfigError(f"--set {item!r}: the key is empty; write it like train.steps=200")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError as error:
            problem = str(getattr(error, "problem", None) or "not a YAML value")
            raise ConfigError(
                f"--set {item!r}: the value {text!r} cannot be read as YAML ({problem}); "
                "check its quotes and brackets, or quote the whole value as text"
            ) from None
        node = raw
        for key in keys[:-1]:
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                raise ConfigError(
                    f"--set {item!r}: {'.'.join(keys[:-1])} is a value, not a section"
                )
            node = child
        node[keys[-1]] = value
    return raw


def has_key(model: type[BaseModel], path: tuple[str, ...]) -> bool:
    """Whether the dotted ``path`` (as in a YAML file) is a key of the config model ``model``."""
    for depth, part in enumerate(path):
        fields = {(info.alias or name): info for name, info in model.model_fields.items()}
        if part not in fields:
            return False
        annotation = fields[part].annotation
        if depth == len(path) - 1:
            return True
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return False
        model = annotation
    return False


def format_validation_error(
    problems: list[dict[str, Any]],
    origin: str,
    kinds_with_key: Any = None,
    overrides: list[str] | None = None,
) -> str:
    """One line per problem, each starting with its dotted path: ``train.lr: Input should be ...``.

    ``problems`` are pydantic's ``ValidationError.errors()``. ``kinds_with_key(path)`` names the
    data kinds whose config has an unknown key, so that a key of another kind says which
    (``model.pac: applies only to data.kind: tabular``). A problem in a key that one of the
    ``overrides`` (``--set KEY=VALUE``) set names that entry instead of the key, and when every
    problem comes from them the message does not blame ``origin``:
    ``invalid --set train.steps=abc: Input should be a valid integer``.
    """
    by_key = {
        tuple(k for k in item.partition("=")[0].strip().split(".") if k): item
        for item in overrides or []
    }
    lines, from_overrides = [], 0
    for problem in problems:
        loc = tuple(str(part) for part in problem["loc"])
        path = ".".join(loc) or "<root>"
        # the last --set of a key (or of a section holding it) is the one that counts
        item = next((by_key[loc[:n]] for n in range(len(loc), 0, -1) if loc[:n] in by_key), None)
        if item is not None:
            path = f"--set {item}"
            from_overrides += 1
        message = problem["msg"]
        if problem["type"] == "value_error":
            message = message.removeprefix("Value error, ")
            if not loc:
                lines.append(message)  # a whole-config check: the message names its key
                continue
        if problem["type"] == "extra_forbidden":
            kinds = kinds_with_key(loc) if kinds_with_key else []
            if kinds:
                message = f"applies only to data.kind: {' or '.join(kinds)}; remove it"
            else:
                message = "unknown key; remove it or check its spelling"
        elif problem["type"] == "missing":
            message = "required key is missing"
        elif "input" in problem and not isinstance(problem["input"], dict | list):
            message = f"{message} (got {problem['input']!r})"  # the value the user wrote
        lines.append(f"{path}: {message}")
    if lines and from_overrides == len(lines):
        return "invalid " + "; ".join(lines)
    return f"invalid config {origin}: " + "; ".join(lines)


def read_yaml(path: str | Path) -> dict[str, Any]:
    """The raw mapping of a YAML job config, or a ConfigError that says what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist; pass the path of a YAML job config")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        message = str(error).replace("\n", " ")
        raise ConfigError(f"config file {path} is not valid YAML: {message}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path}: the top level must be a mapping of sections")
    return raw
