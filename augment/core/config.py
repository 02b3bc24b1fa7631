"""The job configuration: YAML on disk, validated once at the edge into pydantic models.

Library functions below the edge take plain typed arguments; only ``augment.pipeline.job`` and the CLI read
these models. Unknown keys are errors (``extra="forbid"``), and every error names its dotted path::

    cfg = load_config("configs/breast_cancer.yaml", overrides=["train.steps=200"])
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from augment.core.errors import ConfigError
from augment.core.storage import default_work_dir, is_url, redact

PositiveInt = Annotated[int, Field(gt=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
ColumnKind = Literal["continuous", "categorical"]
SamplingStrategy = str | float | dict[str, Annotated[int, Field(ge=0)]]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(_Strict):
    """Where the rows (or images) come from and how to read them."""

    source: str = Field(
        description="tabular: Parquet file or directory, CSV file, or sklearn:breast_cancer|wine. "
        "image: a folder root/<class>/<image>, Parquet with image bytes, a .npz of images and "
        "labels, or sklearn:digits."
    )
    kind: Literal["tabular", "image"] = "tabular"
    label: str | None = Field(
        None,
        description="Class label column (required for tables; for image Parquet, default label).",
    )
    format: Literal["auto", "parquet", "csv"] = "auto"
    columns: dict[str, ColumnKind] = Field(
        default_factory=dict, description="Override the inferred kind of some columns."
    )
    drop_columns: list[str] = Field(default_factory=list)
    categorical_max_unique: PositiveInt = Field(
        10, description="Integer columns with at most this many distinct values are categorical."
    )
    max_categories: PositiveInt = Field(
        1000, description="Refuse a categorical column with more distinct values than this."
    )
    missing: Literal["error", "drop", "impute"] = "error"
    constant_columns: Literal["error", "keep"] = Field(
        "error",
        description="A column with one value in the train split: refuse it (error) or keep it; a "
        "kept column is generated as that same value.",
    )
    imbalance_ratio: Annotated[float, Field(ge=1.0)] | None = Field(
        None,
        description="Subsample the train split to this largest/smallest class ratio (demos, "
        "benchmarks). Class sizes fall geometrically from the largest class to the smallest.",
    )
    # -- images only
    size: Annotated[int, Field(ge=8, le=64)] = Field(
        28, description="Images are resized to size x size (8..64, 4-7 times a power of two)."
    )
    channels: Literal[1, 3] = Field(1, description="1 = grayscale, 3 = RGB; inputs are converted.")
    on_bad_file: Literal["error", "skip"] = Field(
        "error", description="A corrupt, empty or non-image file stops the job, or is skipped."
    )
    image_column: str = Field("image", description="Image bytes column of a Parquet source.")
    # -- both kinds
    storage_options: dict[str, Any] = Field(
        default_factory=dict,
        description="Passed to fsspec when data.source is a URL (s3://, gs://, ...), e.g. "
        "endpoint_url; credentials are better left to the environment (AWS_ACCESS_KEY_ID ...).",
    )


class BalanceConfig(_Strict):
    """How many rows to generate per class, with imbalanced-learn's sampling_strategy semantics."""

    sampling_strategy: SamplingStrategy = "not majority"


class ModelConfig(_Strict):
    """GAN architecture: shared keys, then tabular-only and image-only ones."""

    mode: Literal["conditional", "per_class"] = "conditional"
    noise_dim: PositiveInt = Field(32, description="Default 32 for tables, 64 for images.")
    generator_dims: list[PositiveInt] = Field(default_factory=lambda: [128, 128])
    discriminator_dims: list[PositiveInt] = Field(default_factory=lambda: [128, 128])
    pac: PositiveInt = Field(
        4, description="PacGAN group size: the critic judges pac rows at once."
    )
    continuous: Literal["gmm", "quantile"] = Field(
        "gmm",
        description="Numeric column transform: gmm (mode-specific normalisation, the default: "
        "better downstream scores on the benchmarks) or quantile (to a normal; twice as fast).",
    )
    max_modes: PositiveInt = Field(6, description="Gaussian mixture components (gmm only).")
    gumbel_tau: PositiveFloat = 0.2
    gp_weight: Annotated[float, Field(ge=0)] = 10.0
    gp_every: PositiveInt = Field(
        2, description="Lazy gradient penalty: applied every k-th critic step, scaled by k."
    )
    truncation: Annotated[float, Field(gt=0, le=1)] = Field(
        1.0, description="Sampling noise scale; below 1 trades variety for fidelity."
    )
    ema_decay: Annotated[float, Field(ge=0, lt=1)] = Field(
        0.95,
        description="EMA of the generator weights; the EMA generator samples (0: none). "
        "Default 0.95 for tables (250 steps), 0.99 for images (1000 steps).",
    )
    # -- images only
    width: PositiveInt = Field(
        32, description="Channels at half resolution, doubled per halving: speed vs capacity."
    )
    max_width: PositiveInt = 256
    embed_dim: PositiveInt = Field(32, description="Class embedding size (conditional norms).")
    mode_seeking: Annotated[float, Field(ge=0)] = Field(
        0.3,
        description="Mode-seeking loss weight (MSGAN): rewards same-class images that differ as "
        "much as their noise; counters a generator that ignores its noise. 0 turns it off.",
    )
    aux_weight: Annotated[float, Field(ge=0)] = Field(
        1.0, description="Auxiliary class loss weight (AC-GAN style); 0 turns it off."
    )
    diff_augment: str = Field(
        "color,translation,cutout",
        description="DiffAugment policies applied to everything the discriminator sees; "
        "'none' turns it off.",
    )
    channels_last: bool = Field(True, description="NHWC memory format (faster on CPU and GPU).")


class TrainConfig(_Strict):
    """The optimisation loop. Training is counted in optimizer steps, never epochs."""

    steps: PositiveInt = Field(
        250, description="Generator optimizer steps; each comes with critic_steps critic steps."
    )
    batch_size: PositiveInt = 64
    lr: PositiveFloat = 1e-3
    betas: tuple[float, float] = (0.5, 0.9)
    critic_steps: PositiveInt = 3
    device: Literal["auto", "cpu", "cuda"] = "auto"
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
    seed: int = 0
    checkpoint_every: PositiveInt = 200
    resume: bool = True
    class_sampling: Literal["uniform", "log", "empirical"] = Field(
        "uniform", description="Training-by-sampling: how classes are drawn for each batch."
    )
    progress: bool = True


class OutputConfig(_Strict):
    """Where the shards go. ``{name}`` is replaced by the job name."""

    path: str = "runs/{name}"
    rows_per_shard: PositiveInt = Field(50_000, description="Default 50000 rows, 10000 images.")
    overwrite: bool = False
    clip_to_range: bool = Field(True, description="Keep numeric values within the seen range.")
    image_files: bool = Field(
        False, description="Images only: also write images/<class>/<sample_id>.png."
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

    @field_validator("work_dir")
    @classmethod
    def _local_work_dir(cls, value: str | None) -> str | None:
        if value is not None and is_url(value):
            raise ValueError(
                "must be a local folder (checkpoints are written with plain file I/O); "
                "drop the URL scheme"
            )
        return value


class ValidateConfig(_Strict):
    """Downstream check: real vs real+synthetic vs real+SMOTE, scored on a holdout."""

    enabled: bool = True
    holdout: Annotated[float, Field(gt=0, lt=1)] = 0.3
    classifiers: list[Literal["logistic", "random_forest", "hist_gradient_boosting"]] = Field(
        default_factory=lambda: ["logistic", "random_forest"], min_length=1
    )
    smote: bool = True
    fidelity: bool = True
    min_lift: float = Field(
        0.0, description="Do-no-harm gate: fail when lift in balanced accuracy is below this."
    )
    # -- images only
    epochs: PositiveInt = Field(15, description="Epochs of the downstream CNN in each arm.")
    albumentations: bool = Field(
        True, description="Run the classic-augmentation oversampling arm (the baseline to beat)."
    )
    fid: bool = True
    fid_extractor: Literal["auto", "inception", "domain"] = Field(
        "auto",
        description="inception: the standard FID InceptionV3 (weights on disk); domain: a small "
        "CNN trained on the real train split; auto: inception when its weights are found.",
    )
    inception_weights: str | None = Field(
        None, description="Path of the FID Inception weights; default: the torch hub cache."
    )
    kid: bool = Field(True, description="Also report KID with the same extractor.")


class FilterConfig(_Strict):
    """Images only: over-generate, keep what a classifier trained on real images agrees with."""

    enabled: bool = False
    threshold: Annotated[float, Field(gt=0, lt=1)] = Field(
        0.9, description="Keep an image when P(its conditioned class) >= threshold."
    )
    max_factor: Annotated[float, Field(ge=1)] = Field(
        8.0, description="Draw at most this many candidates per planned image and class."
    )
    on_shortfall: Literal["fill", "error"] = Field(
        "fill",
        description="When a class runs out of candidates: fill with its most confident "
        "rejected ones (reported in the manifest and MLflow), or stop with an error.",
    )


class TrackingConfig(_Strict):
    """MLflow. The default store is sqlite:///mlflow.db in the working directory."""

    enabled: bool = True
    uri: str | None = Field(None, description="Overrides MLFLOW_TRACKING_URI and the default.")
    experiment: str | None = Field(None, description="Defaults to the job name.")
    register_model: bool = True
    model_name: str | None = Field(None, description="Defaults to augment-<job name>.")
    grid_every: Annotated[int, Field(ge=0)] = Field(
        250, description="Images only: log a per-class sample grid every N steps (0 = at the end)."
    )


class CacheConfig(_Strict):
    """Reuse a trained generator when the same data meets the same training settings.

    The key is a digest of the training data as loaded (table rows and schema, or pixels and
    labels) plus the settings that shape the fitted model (``model``, ``train`` except progress,
    resume, checkpoint_every and cpu_threads, ``output.clip_to_range``, the units of work); see
    :mod:`augment.core.cache`. ``augment run --force`` (flow parameter ``force``) trains anyway.
    """

    enabled: bool = True
    dir: str | None = Field(
        None,
        description="Cache folder; default: .augment-cache beside the output folder (for "
        "runs/{name} that is runs/.augment-cache, shared by every job under runs/).",
    )


class OrchestrationConfig(_Strict):
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
                "orchestration.task_runner: dask"
            )
        if self.threads and self.task_runner != "threads":
            raise ValueError("threads applies only to task_runner: threads; remove it")
        return self


class JobConfig(_Strict):
    """One balancing job."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    data: DataConfig
    balance: BalanceConfig = Field(default_factory=BalanceConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    validate_: ValidateConfig = Field(default_factory=ValidateConfig, alias="validate")
    filter: FilterConfig = Field(default_factory=FilterConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    cache: CacheConfig = Field(default_factory=CacheConfig)
    orchestration: OrchestrationConfig = Field(default_factory=OrchestrationConfig)

    model_config = ConfigDict(extra="forbid", populate_by_name=True, validate_assignment=True)

    @model_validator(mode="before")
    @classmethod
    def _kind_defaults(cls, raw: Any) -> Any:
        """Fill the defaults that differ between tables and images, where the YAML is silent."""
        if isinstance(raw, dict) and isinstance(raw.get("data"), dict):
            defaults = KIND_DEFAULTS.get(raw["data"].get("kind", "tabular"), {})
            raw = dict(raw)
            for section, values in defaults.items():
                given = raw.get(section)
                if given is None:
                    given = {}
                if isinstance(given, dict):
                    raw[section] = {**values, **given}
        return raw

    @model_validator(mode="after")
    def _kind_keys(self) -> JobConfig:
        """A key of the other kind is an error, not silently ignored."""
        kind = self.data.kind
        if kind == "tabular" and not self.data.label:
            raise ValueError("data.label: required for tabular data; name the class column")
        other = IMAGE_ONLY if kind == "tabular" else TABULAR_ONLY
        for section, keys in other.items():
            part = getattr(self, "validate_" if section == "validate" else section)
            for key in sorted(keys & part.model_fields_set):
                if section == "filter" and not self.filter.enabled:
                    continue
                raise ValueError(
                    f"{section}.{key}: applies only to data.kind: "
                    f"{'image' if kind == 'tabular' else 'tabular'}; remove it"
                )
        return self

    @property
    def output_path(self) -> str:
        return self.output.path.replace("{name}", self.name)

    @property
    def work_dir(self) -> Path | None:
        """Local folder for checkpoints and the model file when the output is a URL, else None."""
        if not is_url(self.output_path):
            return None
        if self.output.work_dir:
            return Path(self.output.work_dir.replace("{name}", self.name)).expanduser()
        return default_work_dir(self.output_path)

    def to_dict(self) -> dict[str, Any]:
        """The resolved configuration as plain JSON-able data (keys as written in YAML).

        Keys that belong to the other data kind are left out: they do nothing for this job.
        """
        resolved = self.model_dump(mode="json", by_alias=True)
        # printed, logged as MLflow params and stored as an artifact: no secrets in there
        for section in ("data", "output"):
            resolved[section]["storage_options"] = redact(resolved[section]["storage_options"])
        other = IMAGE_ONLY if self.data.kind == "tabular" else TABULAR_ONLY
        for section, keys in other.items():
            if section == "filter" and self.data.kind == "tabular":
                resolved.pop("filter", None)
                continue
            for key in keys:
                resolved.get(section, {}).pop(key, None)
        return resolved

    def training_settings(self) -> dict[str, Any]:
        """The settings that shape a fitted generator, apart from the data it is fitted on.

        Half of the cache key of :mod:`augment.core.cache` (the other half digests the training data
        as loaded, so the data section, the holdout fraction and the seed's effect on the split
        are covered by content). Left out: what only changes speed or bookkeeping (progress bars,
        resume, checkpoint interval, CPU threads).
        """
        resolved = self.to_dict()
        train = {
            k: v
            for k, v in resolved["train"].items()
            if k not in ("progress", "resume", "checkpoint_every", "cpu_threads")
        }
        settings = {"kind": self.data.kind, "model": resolved["model"], "train": train}
        if self.data.kind == "tabular":
            settings["clip_to_range"] = self.output.clip_to_range  # held by the fitted encoder
        return settings

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
            relevant.pop("filter", None)
            relevant["balance"].pop("sampling_strategy", None)
        else:
            relevant["output"].pop("overwrite", None)
            relevant["output"].pop("path", None)
        # only the holdout fraction of the validation settings changes the training rows
        relevant["validate"] = {"holdout": relevant["validate"]["holdout"]}
        blob = json.dumps(relevant, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


# Defaults that differ by data.kind; a key written in the YAML always wins.
KIND_DEFAULTS: dict[str, dict[str, dict[str, Any]]] = {
    "image": {
        "model": {"noise_dim": 64, "ema_decay": 0.99},
        "train": {
            "steps": 1000,
            "batch_size": 128,
            "lr": 5e-4,
            "betas": [0.0, 0.99],
            "critic_steps": 1,
            "cpu_threads": None,  # convolutions do use both cores, unlike the tabular MLPs
            "checkpoint_every": 250,
        },
        "output": {"rows_per_shard": 10_000},
    }
}
TABULAR_ONLY: dict[str, set[str]] = {
    "data": {
        "format",
        "columns",
        "drop_columns",
        "categorical_max_unique",
        "max_categories",
        "missing",
        "constant_columns",
    },
    "model": {
        "generator_dims",
        "discriminator_dims",
        "pac",
        "continuous",
        "max_modes",
        "gumbel_tau",
        "gp_weight",
        "gp_every",
    },
    "output": {"clip_to_range"},
    "validate": {"classifiers", "smote", "fidelity"},
}
IMAGE_ONLY: dict[str, set[str]] = {
    "data": {"size", "channels", "on_bad_file", "image_column"},
    "model": {
        "width",
        "max_width",
        "embed_dim",
        "aux_weight",
        "mode_seeking",
        "diff_augment",
        "channels_last",
    },
    "output": {"image_files"},
    "validate": {"epochs", "albumentations", "fid", "fid_extractor", "inception_weights", "kid"},
    "filter": {"enabled", "threshold", "max_factor", "on_shortfall"},
    "tracking": {"grid_every"},
}


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b=c`` overrides to a raw config dict; values are parsed as YAML scalars."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, for example train.steps=200")
        dotted, _, text = item.partition("=")
        keys = [k for k in dotted.strip().split(".") if k]
        if not keys:
            raise ConfigError(f"--set {item!r}: the key is empty; write it like train.steps=200")
        value = yaml.safe_load(text) if text.strip() else None
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


def format_validation_error(error: ValidationError, origin: str) -> str:
    """One line per problem, each starting with its dotted path: ``train.lr: Input should be ...``."""
    lines = []
    for problem in error.errors():
        path = ".".join(str(part) for part in problem["loc"]) or "<root>"
        message = problem["msg"]
        if problem["type"] == "value_error":
            message = message.removeprefix("Value error, ")
            if not problem["loc"]:
                lines.append(message)  # a whole-config check: the message names its key
                continue
        if problem["type"] == "extra_forbidden":
            message = "unknown key; remove it or check its spelling"
        elif problem["type"] == "missing":
            message = "required key is missing"
        elif "input" in problem and not isinstance(problem["input"], dict | list):
            message = f"{message} (got {problem['input']!r})"  # the value the user wrote
        lines.append(f"{path}: {message}")
    return f"invalid config {origin}: " + "; ".join(lines)


def parse_config(raw: dict[str, Any], origin: str = "<dict>") -> JobConfig:
    """Validate a raw dict into a JobConfig, raising ConfigError with dotted paths."""
    if not isinstance(raw, dict):
        raise ConfigError(f"invalid config {origin}: the top level must be a mapping of sections")
    try:
        return JobConfig.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(format_validation_error(error, origin)) from None


def load_config(path: str | Path, overrides: list[str] | None = None) -> JobConfig:
    """Read a YAML job config, apply ``--set`` style overrides, and validate it.

    Raises:
        ConfigError: the file is missing or unreadable, or a key is unknown or of the wrong type.
    """
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
    raw = apply_overrides(raw, overrides or [])
    return parse_config(raw, origin=str(path))
