"""The job config of a table (``data.kind: tabular``): the shared sections plus the keys of tables."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from augment.core.config import (
    KIND_HELP,
    DataConfig,
    GenerateConfig,
    JobConfig,
    ModelConfig,
    OutputConfig,
    PositiveFloat,
    PositiveInt,
    ValidateConfig,
)
from augment.tabular.roles import Role


class TabularDataConfig(DataConfig):
    """Where the rows come from and how to read them."""

    kind: Literal["tabular"] = Field("tabular", description=KIND_HELP)
    format: Literal["auto", "parquet", "csv"] = Field(
        "auto", description="How to read data.source; auto goes by the file suffix."
    )
    columns: dict[str, Role] = Field(
        default_factory=dict,
        description="Override the inferred role of some columns (`augment profile` shows them): "
        "continuous, integer, categorical, boolean, datetime (a datetime dtype or date "
        "strings), id (never learned; generated rows get fresh ids of the same form), ignore "
        "(left out of the model; generated rows leave it missing) or text (refused: declare "
        "it ignore or categorical). docs/tabular.md, 'Column roles'.",
    )
    drop_columns: list[str] = Field(
        default_factory=list, description="Columns left out of the model and the output."
    )
    categorical_max_unique: PositiveInt = Field(
        10, description="Integer columns with at most this many distinct values are categorical."
    )
    max_levels: PositiveInt | None = Field(
        50,
        description="A categorical column with more distinct values keeps this many of its "
        "most frequent ones for the model; the rest share one level, and a generated row with "
        "it gets one of them drawn from its class's frequencies. null keeps every level.",
    )
    max_categories: PositiveInt = Field(
        1000,
        description="Refuse a categorical column with more levels than this for the model "
        "(after data.max_levels).",
    )
    missing: Literal["model", "error", "drop", "impute"] = Field(
        "model",
        description="Missing values: model them (a missing number becomes a value and a flag "
        "the GAN learns, a missing category a level; generated rows have gaps where real ones "
        "do), refuse them, drop those rows, or impute (median / most frequent). Rows without "
        "a label are dropped, except under error.",
    )
    max_rows: PositiveInt | None = Field(
        1_000_000,
        description="A Parquet source with more rows is read in two streaming passes: the label "
        "column for the class counts (the plan counts every row), then a sample of at most this "
        "many rows to fit on, the rarest classes kept whole (a table with id columns gets a "
        "third pass over them, so fresh ids stay above every real one). null = read every row.",
    )
    constant_columns: Literal["error", "keep"] = Field(
        "error",
        description="A column with one value in the train split: refuse it (error) or keep it; a "
        "kept column is generated as that same value.",
    )


class TabularModelConfig(ModelConfig):
    """The tabular GAN: residual MLP generator, PacGAN critic with a lazy gradient penalty."""

    generator_dims: list[PositiveInt] = Field(
        default_factory=lambda: [128, 128], description="Hidden widths of the residual generator."
    )
    discriminator_dims: list[PositiveInt] = Field(
        default_factory=lambda: [128, 128], description="Hidden widths of the critic."
    )
    pac: PositiveInt = Field(
        4, description="PacGAN group size: the critic judges pac rows at once."
    )
    continuous: Literal["gmm", "quantile"] = Field(
        "gmm",
        description="Numeric column transform: gmm (mode-specific normalisation, the default: "
        "better downstream scores on the benchmarks) or quantile (to a normal; twice as fast).",
    )
    max_modes: PositiveInt = Field(6, description="Gaussian mixture components (gmm only).")
    gumbel_tau: PositiveFloat = Field(
        0.2, description="Gumbel-softmax temperature of categorical outputs."
    )
    gp_weight: Annotated[float, Field(ge=0)] = Field(
        10.0, description="WGAN-GP gradient penalty weight."
    )
    gp_every: PositiveInt = Field(
        2, description="Lazy gradient penalty: applied every k-th critic step, scaled by k."
    )


class TabularOutputConfig(OutputConfig):
    clip_to_range: bool = Field(True, description="Keep numeric values within the seen range.")
    model_real_rows: bool = Field(
        True,
        description="Keep the real training rows that generation used (the anchors and the "
        "filter's neighbours, at most generate.reference_rows) and the generate settings in the "
        "model file, so that sampling from it (load_synthesizer, the MLflow model) makes rows "
        "as the job did; false: the file holds the GAN alone and samples GAN rows only.",
    )


class TabularValidateConfig(ValidateConfig):
    """Real vs real+synthetic vs real+SMOTE, scored on the holdout by scikit-learn classifiers."""

    classifiers: list[Literal["logistic", "random_forest", "hist_gradient_boosting"]] = Field(
        default_factory=lambda: ["logistic", "random_forest"],
        min_length=1,
        description="Downstream classifiers; every arm trains each and the scores are averaged.",
    )
    smote: bool = Field(True, description="Run the SMOTE arm (the classic baseline to beat).")
    fidelity: bool = Field(
        True,
        description="Fidelity metrics: Fréchet distance, detection AUC, marginals, k-NN "
        "precision / recall, DCR; and privacy: the DCR share against the holdout, memorised "
        "and exact-copy shares, per class and row source.",
    )


class TabularGenerateConfig(GenerateConfig):
    """Where the new rows come from: the GAN, real anchors, or a mix (as ``GANOverSampler``)."""

    generator: Literal["mix", "gan", "anchored", "auto"] = Field(
        "mix",
        description="mix: a share anchored_share of each class's rows lies between a real row "
        "of the class and one of its 5 nearest same-class rows or the class's centre, the rest "
        "comes from the GAN (the default, as in GANOverSampler); gan: all from the GAN; "
        "anchored: all anchored, and no "
        "GAN is trained; auto: one of mix, anchored and gan, picked by balanced accuracy on an "
        "inner split of the training rows (a second GAN is fitted on a sample of at most "
        "20,000 of them; mix stays unless another leads it by more than 1.645 tie spreads); "
        "the choice and every score go to the summary, manifest and MLflow.",
    )
    anchored_share: Annotated[float, Field(ge=0, le=1)] = Field(
        0.5, description="The anchored share of each class's rows under generator: mix."
    )
    filter_generated: bool = Field(
        True,
        description="Draw three times the GAN rows and keep the third whose 5 nearest real "
        "training rows are most often of their own class (counts stay exact).",
    )
    match_moments: bool = Field(
        True,
        description="Move each class's GAN rows (after the filter) by one affine map of the "
        "continuous columns to the mean and covariance of the class's real training rows.",
    )
    privacy_floor: Annotated[float, Field(gt=0, lt=1)] | None = Field(
        None,
        description="null (off) or a quantile q, e.g. 0.1: a generated row nearer to a real "
        "training row of its class than the q-quantile of the class's real rows' distances to "
        "their nearest other row (how far an unseen real row sits) is redrawn, so no row "
        "copies a real one and the counts stay exact. docs/tabular.md, 'Privacy'.",
    )
    reference_rows: PositiveInt = Field(
        200_000,
        description="The anchors and the filter's neighbours come from at most this many real "
        "training rows (a sample, each class in proportion), which bounds memory and the "
        "neighbour searches on large tables.",
    )


class TabularJobConfig(JobConfig):
    """A balancing job over a table."""

    data: TabularDataConfig
    model: TabularModelConfig = Field(default_factory=TabularModelConfig)
    output: TabularOutputConfig = Field(default_factory=TabularOutputConfig)
    validate_: TabularValidateConfig = Field(
        default_factory=TabularValidateConfig, alias="validate"
    )
    generate: TabularGenerateConfig = Field(default_factory=TabularGenerateConfig)

    @model_validator(mode="after")
    def _label_given(self) -> TabularJobConfig:
        if not self.data.label:
            raise ValueError("data.label: required for tabular data; name the class column")
        return self

    def fitted_settings(self) -> dict[str, Any]:
        return {"clip_to_range": self.output.clip_to_range}  # held by the fitted encoder
