"""The job config of images (``data.kind: image``): the shared sections, the keys of images, their
own defaults (a longer, larger-batch training) and the ``filter`` section."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from augment.core.config import (
    KIND_HELP,
    MAX_ROWS_HELP,
    STACK_SHARE,
    DataConfig,
    JobConfig,
    ModelConfig,
    OutputConfig,
    PositiveInt,
    Strict,
    TrackingConfig,
    TrainConfig,
    ValidateConfig,
)
from augment.image.sizes import MAX_SIZE, MIN_SIZE, WORK_SIZE, base_grid

# data.max_images: auto: the training images the models are fitted on hold at most this many
# bytes decoded. A job may hold them up to three times (the set; the autoencoder's anchors, a copy
# unless the source lists its classes in order as a folder does; the saved model's copy of the
# generated classes), beside ~1.5 GB of libraries and working memory, so 512 MiB keeps a 256 px
# RGB job under 4 GB (measured: 3.0-3.4 GB, docs/operations.md); and the autoencoder's 600
# steps of 128 images see each of 2,730 images ~30 times, so more would add little.
FIT_BYTES = 512 * 2**20


class ImageDataConfig(DataConfig):
    """Where the images come from and the size they are brought to."""

    kind: Literal["image"] = Field("image", description=KIND_HELP)
    size: Annotated[int, Field(ge=MIN_SIZE, le=MAX_SIZE)] = Field(
        28,
        description="Images are brought to size x size (8..256, 4-7 times a power of two: ..., "
        "64, 80, 96, 112, 128, 160, 192, 224, 256); above 64 px the autoencoder and the "
        "validation CNN work on them area-averaged to 64 px or less.",
    )
    channels: Literal[1, 3] = Field(1, description="1 = grayscale, 3 = RGB; inputs are converted.")
    fit: Literal["resize", "crop"] = Field(
        "resize",
        description="How an image of another shape becomes size x size: resize the whole image "
        "(a non-square one is squeezed), or crop its largest centred square, then resize.",
    )
    max_images: PositiveInt | Literal["auto"] | None = Field(
        "auto",
        description="At most this many training images are decoded for the models to fit on: a "
        "seeded sample per class, the rarest classes whole (the plan still counts every image "
        "of the source; the summary and the manifest say so); train images outside it are "
        "never decoded. auto: as many as 512 MiB of decoded pixels hold (2,730 RGB images at "
        "256 px, 10,922 at 128, 43,690 at 64), which keeps a 256 px job under 4 GB. null: "
        "every image.",
    )
    on_bad_file: Literal["error", "skip"] = Field(
        "error", description="A corrupt, empty or non-image file stops the job, or is skipped."
    )
    image_column: str = Field("image", description="Image bytes column of a Parquet source.")

    @field_validator("size")
    @classmethod
    def _generator_size(cls, value: int) -> int:
        base_grid(value)  # the networks double a 4-7 px grid: say which sizes exist
        return value

    def image_limit(self) -> int | None:
        """``max_images`` as a number of images (``auto`` resolved for this size and channels)."""
        if self.max_images == "auto":
            return max(1, FIT_BYTES // (self.size * self.size * self.channels))
        return self.max_images


# every recipe, in the order auto prefers them (augment.image.choice.ALL_RECIPES reads it)
Recipes = Literal[
    "code-mix+warp",
    "code-mix",
    "latent+warp",
    "latent",
    "code-gan+warp",
    "code-gan",
    "mix+warp",
    "mix",
    "gan+warp",
    "gan",
]


class ImageModelConfig(ModelConfig):
    """The image GAN: conditional norms, projection + auxiliary discriminator, DiffAugment."""

    noise_dim: PositiveInt = 64
    ema_decay: Annotated[float, Field(ge=0, lt=1)] = Field(
        0.99, description="EMA of the generator weights; the EMA generator samples (0: none)."
    )
    width: PositiveInt = Field(
        32, description="Channels at half resolution, doubled per halving: speed vs capacity."
    )
    max_width: PositiveInt = Field(256, description="Cap on the channels of any layer.")
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
    recipe: Recipes | Literal["auto"] = Field(
        "auto",
        description="What generated images are made of, all decoded by an autoencoder shared by "
        "all classes: codes between real ones (latent), codes of a conditional GAN over codes, "
        "filtered and moment-matched (code-gan), half of each (code-mix); or the pixel-space "
        "GAN's samples (gan; mix: half latent), a recipe for GPUs and large sets. Each "
        "optionally warped once (+warp). auto: the best candidate on an inner split of the "
        "training images.",
    )
    recipe_candidates: list[Recipes] | None = Field(
        None,
        description="The recipes auto tries, in order of preference; null: code-mix+warp, "
        "latent, code-mix (recipes that differ only by the warp are judged first, the others "
        "only if the warp lost: there latent is preferred to code-mix; a recipe that draws from "
        "a GAN is judged by that GAN fitted again on the inner training images).",
    )
    code_gan_steps: PositiveInt = Field(
        500,
        description="Optimizer steps of the conditional GAN over the autoencoder's codes (the "
        "table GAN's engine), trained when a recipe draws from it (code-gan, code-mix).",
    )
    filter_generated: bool = Field(
        True,
        description="Draw three codes from the code GAN per image and keep the third whose "
        "nearest real codes (every class) are most often of the image's class.",
    )
    match_moments: bool = Field(
        True,
        description="Move a class's kept GAN codes to the mean and covariance of its real codes.",
    )
    autoencoder_steps: PositiveInt = Field(
        600, description="Optimizer steps of the shared autoencoder (batches of every class)."
    )
    latent_dim: PositiveInt = Field(32, description="Code size of the shared autoencoder.")
    choice_epochs: PositiveInt = Field(
        5, description="Epochs of the CNN that judges each candidate recipe (auto)."
    )
    choice_share: Annotated[float, Field(gt=0, lt=1)] = Field(
        0.25, description="Share of each class's training images held out to judge recipes."
    )


class ImageTrainConfig(TrainConfig):
    """Image training defaults: more, larger steps; one critic step; all CPU cores."""

    steps: PositiveInt = Field(
        1000, description="Generator optimizer steps; each comes with critic_steps critic steps."
    )
    batch_size: PositiveInt = 128
    lr: Annotated[float, Field(gt=0)] = 5e-4
    betas: tuple[float, float] = (0.0, 0.99)
    critic_steps: PositiveInt = 1
    cpu_threads: PositiveInt | None = Field(
        None,
        description="torch intra-op threads on the CPU; null = all cores (convolutions use them).",
    )
    checkpoint_every: PositiveInt = 250


class ImageOutputConfig(OutputConfig):
    rows_per_shard: PositiveInt = Field(
        10_000,
        description="Rows per Parquet part; a part of images also holds at most 128 MiB of "
        "their pixels (it is assembled in memory): 682 RGB images at 256 px, 2,730 at 128.",
    )
    image_files: bool = Field(False, description="Also write images/<class>/<sample_id>.png.")


class ImageValidateConfig(ValidateConfig):
    """A small CNN on real / real+synthetic / real+albumentations images; FID and KID."""

    epochs: PositiveInt = Field(15, description="Epochs of the downstream CNN in each arm.")
    # fewer than for tables: a CNN epoch over an image costs more than a classifier on a row
    max_rows: PositiveInt | None = Field(20_000, description=MAX_ROWS_HELP)
    albumentations: bool = Field(
        True, description="Run the classic-augmentation oversampling arm (the baseline to beat)."
    )
    fid: bool = Field(
        True,
        description="FID, k-NN precision / recall and the Inception Score (or the domain CNN's) "
        "of the synthetic images against the holdout.",
    )
    fid_extractor: Literal["auto", "inception", "domain"] = Field(
        "auto",
        description="inception: the standard FID InceptionV3 (weights on disk); domain: a small "
        "CNN trained on the real train split; auto: inception when its weights are found.",
    )
    inception_weights: str | None = Field(
        None, description="Path of the FID Inception weights; default: the torch hub cache."
    )
    kid: bool = Field(True, description="Also report KID with the same extractor.")
    max_size: Annotated[int, Field(ge=MIN_SIZE)] | None = Field(
        WORK_SIZE,
        description="Validation sees larger images area-averaged down to this side (halved until "
        "at most it): the CNN arms, their augmentation, the FID / KID features (Inception "
        "included) and the holdout kept in memory; at 256 px a CNN epoch costs ~16 times one at "
        "64 px. null: full size (each set then takes its images x size^2 x channels bytes).",
    )
    stacking: bool = Field(
        True,
        description="Run the arms with albumentations on the fly: real + classic, and real + "
        "synthetic + classic (stacked); their difference is lift_stacked_vs_classic.",
    )
    stack_share: Annotated[float, Field(gt=0, le=1)] = Field(
        STACK_SHARE,
        description="Share of each class's top-up that the stacked arm fills with synthetic "
        "images; copies of its real images fill the rest (1 = synthetic only).",
    )


class FilterConfig(Strict):
    """Over-generate, keep what a classifier trained on real images agrees with."""

    enabled: bool = Field(False, description="Turn the quality filter on.")
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


class ImageTrackingConfig(TrackingConfig):
    grid_every: Annotated[int, Field(ge=0)] = Field(
        250, description="Log a per-class sample grid every N steps (0 = at the end)."
    )


class ImageJobConfig(JobConfig):
    """A balancing job over images."""

    data: ImageDataConfig
    model: ImageModelConfig = Field(default_factory=ImageModelConfig)
    train: ImageTrainConfig = Field(default_factory=ImageTrainConfig)
    output: ImageOutputConfig = Field(default_factory=ImageOutputConfig)
    validate_: ImageValidateConfig = Field(default_factory=ImageValidateConfig, alias="validate")
    filter: FilterConfig = Field(default_factory=FilterConfig)
    tracking: ImageTrackingConfig = Field(default_factory=ImageTrackingConfig)
