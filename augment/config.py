"""The job configuration: YAML on disk, validated once at the edge into pydantic models.

Library functions below the edge take plain typed arguments; only ``augment.job`` and the CLI read
these models. Unknown keys are errors (``extra="forbid"``), and every error names its dotted path::

    cfg = load_config("configs/breast_cancer.yaml", overrides=["train.steps=200"])
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from augment.errors import ConfigError

PositiveInt = Annotated[int, Field(gt=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
ColumnKind = Literal["continuous", "categorical"]
SamplingStrategy = str | float | dict[str, Annotated[int, Field(ge=0)]]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(_Strict):
    """Where the rows come from and how to read them."""

    source: str = Field(description="Parquet file or directory, CSV file, or sklearn:<name>.")
    label: str = Field(description="Name of the class label column.")
    kind: Literal["tabular"] = "tabular"
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
    imbalance_ratio: Annotated[float, Field(ge=1.0)] | None = Field(
        None,
        description="Subsample the train split to this largest/smallest class ratio (demos, "
        "benchmarks). Class sizes fall geometrically from the largest class to the smallest.",
    )


class BalanceConfig(_Strict):
    """How many rows to generate per class, with imbalanced-learn's sampling_strategy semantics."""

    sampling_strategy: SamplingStrategy = "not majority"


class ModelConfig(_Strict):
    """Conditional tabular GAN architecture."""

    mode: Literal["conditional", "per_class"] = "conditional"
    noise_dim: PositiveInt = 32
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
    rows_per_shard: PositiveInt = 50_000
    overwrite: bool = False
    clip_to_range: bool = Field(True, description="Keep numeric values within the seen range.")


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


class TrackingConfig(_Strict):
    """MLflow. The default store is sqlite:///mlflow.db in the working directory."""

    enabled: bool = True
    uri: str | None = Field(None, description="Overrides MLFLOW_TRACKING_URI and the default.")
    experiment: str | None = Field(None, description="Defaults to the job name.")
    register_model: bool = True
    model_name: str | None = Field(None, description="Defaults to augment-<job name>.")


class JobConfig(_Strict):
    """One balancing job."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    data: DataConfig
    balance: BalanceConfig = Field(default_factory=BalanceConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    validate_: ValidateConfig = Field(default_factory=ValidateConfig, alias="validate")
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)

    model_config = ConfigDict(extra="forbid", populate_by_name=True, validate_assignment=True)

    @property
    def output_path(self) -> str:
        return self.output.path.replace("{name}", self.name)

    def to_dict(self) -> dict[str, Any]:
        """The resolved configuration as plain JSON-able data (keys as written in YAML)."""
        return self.model_dump(mode="json", by_alias=True)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def fingerprint(self, for_checkpoint: bool = False) -> str:
        """A hash of everything that changes the generated rows (not tracking or progress bars).

        ``for_checkpoint`` also leaves out the step budget, so a rerun with more steps continues
        from a checkpoint of the same model instead of starting over.
        """
        relevant = self.to_dict()
        relevant.pop("tracking", None)
        for key in ("progress", "resume"):
            relevant["train"].pop(key, None)
        if for_checkpoint:
            for key in ("steps", "checkpoint_every"):
                relevant["train"].pop(key, None)
            relevant.pop("output", None)
            relevant["balance"].pop("sampling_strategy", None)
        else:
            relevant["output"].pop("overwrite", None)
            relevant["output"].pop("path", None)
        # only the holdout fraction of the validation settings changes the training rows
        relevant["validate"] = {"holdout": relevant["validate"]["holdout"]}
        blob = json.dumps(relevant, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


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
        if problem["type"] == "extra_forbidden":
            message = "unknown key; remove it or check its spelling"
        elif problem["type"] == "missing":
            message = "required key is missing"
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
