"""Tables as a modality of the job: what the pipeline's steps do with a table.

- load: :func:`augment.tabular.sources.read_table` (Parquet, CSV, built-in tables), missing-value
  policy, holdout split and plan (:mod:`augment.core.balance`), column kinds
  (:func:`augment.tabular.schema.infer_schema`);
- fit: :func:`augment.tabular.synthesizer.fit_table_unit` (the encoder and the tabular cGAN);
- generate: the synthesizer's rows, with the input's columns and dtypes, into Parquet shards;
- validate: scikit-learn classifiers on real / real+synthetic / real+SMOTE rows, and fidelity.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from augment.core.cache import frame_digest
from augment.core.context import JobContext
from augment.core.device import cpu_threads
from augment.core.generate import GenerationResult, GenerationSetup, PartBatches
from augment.core.metrics import fidelity_judgement, unique_metric_keys
from augment.core.modality import FeatureComparison, Modality, ReportInputs
from augment.core.parts import Part, read_record
from augment.core.precision_recall import precision_recall_meanings
from augment.core.seeds import Stream, stream
from augment.core.shards import read_shards
from augment.core.train import TrainingLoop, settings_from
from augment.core.validation import proportional_pick
from augment.tabular.cgan import GANSettings
from augment.tabular.choice import GeneratorChoice, choose_generator
from augment.tabular.config import TabularJobConfig
from augment.tabular.form import TableForm
from augment.tabular.generation import RowGenerator, real_row_space
from augment.tabular.roles import Wording, resolve_roles
from augment.tabular.schema import TableSchema, infer_schema
from augment.tabular.sources import handle_missing, read_table
from augment.tabular.synthesizer import (
    SYNTHESIZER_FORMAT,
    Synthesizer,
    TrainSettings,
    fit_table_unit,
    synthesizer_from_payload,
)

log = logging.getLogger(__name__)


@dataclass
class TableData:
    schema: TableSchema
    columns: list[str]
    train: pd.DataFrame
    holdout: pd.DataFrame
    counts_before: dict[Any, int]
    plan: dict[Any, int]
    cleaning: dict[str, Any]
    # train and holdout are in the model's form (datetimes as seconds, gaps as value + flag)
    form: TableForm = field(default_factory=TableForm)
    # the train rows' values of the columns the form does not keep (ids, ignored, wide
    # categories), as the user has them: what puts the real rows back together
    originals: pd.DataFrame | None = None

    @property
    def classes(self) -> list[Any]:
        return self.schema.classes

    @property
    def label(self) -> str:
        return self.schema.label

    @property
    def split_ids(self) -> dict[str, list[int]]:
        return {
            "row_ids": [int(i) for i in self.holdout.index],
            "train_row_ids": [int(i) for i in self.train.index],
        }

    @property
    def column_roles(self) -> dict[str, list[str]]:
        """The user's columns by what the model makes of them, for the printed summary: numbers
        (continuous), datetimes and date strings, categories, ids and ignored columns. The
        missing-value flags are the model's own columns, not the user's: not listed."""
        flags = set(self.form.missing.flags.values())
        times = set(self.form.datetimes.columns)
        roles: dict[str, list[str]] = {}
        for spec in self.schema.columns:
            if spec.name not in flags:
                kind = "datetime" if spec.name in times else spec.kind
                roles.setdefault(kind, []).append(spec.name)
        for kind, names in (
            ("id (fresh values)", self.form.ids.columns),
            ("ignored", self.form.ignored),
        ):
            if names:
                roles[kind] = sorted(names)
        return roles

    @property
    def params(self) -> dict[str, Any]:
        return {
            "data.rows_train": len(self.train),
            "data.rows_holdout": len(self.holdout),
            "data.columns_continuous": len(self.schema.continuous),
            "data.columns_categorical": len(self.schema.categorical),
            **(
                {"data.rows_source": self.cleaning["source_rows"]}
                if "source_rows" in self.cleaning
                else {}
            ),
        }


class TabularModality(Modality):
    kind = "tabular"
    config = TabularJobConfig
    synthesizer_format = SYNTHESIZER_FORMAT
    # each part's RowGenerator keeps its own counts; the synthesizer's lazy caches are filled
    # with the same values whichever thread fills them first
    parts_in_threads = True

    def load(self, ctx: JobContext) -> TableData:
        cfg = ctx.config
        d = cfg.data
        frame, sample = read_table(
            d.source,
            d.label,
            d.format,
            d.drop_columns,
            storage_options=d.storage_options,
            max_rows=d.max_rows,
            seed=cfg.train.seed,
        )
        source = frame
        frame, cleaning = handle_missing(frame, d.label, d.missing)
        left_out = source.drop(index=frame.index)  # rows without a label (drop: with gaps)
        del source
        population = None
        if sample is not None:
            population = sample.counts
            cleaning.setdefault("notes", []).append(sample.note(d.max_rows))
            cleaning["source_rows"] = sample.rows
            log.warning(cleaning["notes"][-1])
        roles = resolve_roles(
            frame, d.label, dict(d.columns), Wording(python_api=False), d.categorical_max_unique
        )
        train, holdout, counts, plan = ctx.split_and_plan(frame, d.label, population)
        # the model's form: ids and ignored columns out, date strings and datetimes as
        # seconds, (data.missing: model) a missing number as a value and a flag, the rare
        # levels of a wide category as one; fitted on the train split alone
        form = TableForm.fit(
            train,
            d.label,
            roles,
            also=holdout,
            missing=d.missing == "model",
            max_levels=d.max_levels,
        )
        # fresh ids above every id of the source, not of the train split alone: the holdout,
        # rows subsampled away (data.imbalance_ratio), rows left out for a missing label and
        # the rows a large source's sample skipped are real rows with real ids too
        for rows in (frame, left_out):
            form.ids.cover(rows)
        if sample is not None and form.ids:
            for batch in sample.column_batches(list(form.ids.columns)):
                form.ids.cover(batch)
        originals = train[form.replaced]
        train, holdout = form.to_model(train), form.to_model(holdout)
        _describe_form(form, cleaning)
        schema = infer_schema(
            train,
            d.label,
            overrides=roles.schema_overrides(),
            categorical_max_unique=d.categorical_max_unique,
            max_categories=d.max_categories,
            constant_columns=d.constant_columns,
        )
        return TableData(
            schema, list(frame.columns), train, holdout, counts, plan, cleaning, form, originals
        )

    def data_digest(self, data: TableData) -> str:
        blob = json.dumps(data.schema.to_dict(), sort_keys=True, default=str)
        if data.form.ids:
            # the model file carries the id forms, and they depend on rows the train split does
            # not hold: a cached model must not number ids from a smaller source's largest one
            blob += json.dumps(data.form.ids.to_dict(), sort_keys=True)
        return frame_digest(data.train) + ":" + hashlib.sha256(blob.encode()).hexdigest()

    def fit_unit(self, ctx, data: TableData, classes: Sequence[Any], loop, run_name, run_id):
        return _fit_gan(ctx.config, data.train, data.schema, classes, loop)

    def assemble(self, data: TableData, models: Sequence[Any]) -> Synthesizer:
        return Synthesizer(models, data.schema, data.columns, data.form)

    def synthesizer_from_payload(self, payload: dict[str, Any], device: str) -> Synthesizer:
        return synthesizer_from_payload(payload, device)

    def needs_model(self, config: TabularJobConfig) -> bool:
        return config.generate.generator != "anchored"

    def prepare_generation(
        self, ctx: JobContext, data: TableData, synthesizer: Synthesizer
    ) -> GenerationSetup:
        """The GAN, anchors or both (``generate`` section), as ``GANOverSampler`` generates:
        the choice under ``generator: auto``, then the real rows of the mix kept by the
        generator (the model itself with ``output.model_real_rows``, else a copy that only
        generation sees)."""
        cfg = ctx.config
        options = cfg.generate
        generator, choice = options.generator, None
        if generator == "auto":
            choice = self._choose(ctx, data)
            generator = choice.chosen
        space = None
        needs_rows = options.filter_generated or options.match_moments or options.privacy_floor
        if generator != "gan" or needs_rows:
            space = real_row_space(
                data.train, data.schema, data.form, options.reference_rows, cfg.train.seed
            )
        mix = {
            "generator": generator,
            "anchored_share": float(options.anchored_share),
            "filter_generated": bool(options.filter_generated),
            "match_moments": bool(options.match_moments),
        }
        if options.privacy_floor:  # only when on: the parts of a job without it keep their keys
            mix["privacy_floor"] = float(options.privacy_floor)
        source = synthesizer
        if space is not None:
            if not cfg.output.model_real_rows:  # the model file holds the GAN alone
                source = Synthesizer(
                    synthesizer.units, synthesizer.schema, synthesizer.columns, synthesizer.form
                )
            # the model file then samples as this job did: its plan and seed give these rows
            source.keep_rows(space, **mix)
        return GenerationSetup(
            generator=source,
            settings={**mix, "rows_per_shard": cfg.output.rows_per_shard},
            digest=source.digest(),
            save=source.save,
            choice=choice.to_dict() if choice else {},
            model_updated=source is synthesizer and space is not None,
        )

    def part_batches(
        self, generator: Synthesizer, settings: dict[str, Any], part: Part
    ) -> PartBatches:
        """One part's rows: per class its filtered GAN rows, then its anchored rows."""
        source = RowGenerator(
            generator,
            generator.space,
            settings["generator"],
            settings["anchored_share"],
            settings["filter_generated"],
            settings["match_moments"],
            settings.get("privacy_floor"),
        )
        # In this thread: sampling in a second thread (core.generate.prefetched, as images do)
        # was measured 5-25% slower here on 2 cores; torch's threads and the decoding compete.
        batches = source.class_batches(part.counts, seed=part.seed, first_id=part.first_row)

        def stats() -> tuple[dict[str, dict[str, int]], dict[str, Any]]:
            origin = {
                key: {str(c): int(n) for c, n in counts.items()}
                for key, counts in source.origin.items()
            }
            return origin, {}

        return PartBatches(batches, stats)

    def finish_generation(
        self,
        ctx: JobContext,
        data: TableData,
        synthesizer: Synthesizer,
        setup: GenerationSetup,
        result: GenerationResult,
    ) -> GenerationResult:
        """The privacy measures of the written rows, per class and source (with
        ``validate.fidelity``): see :func:`_privacy`."""
        cfg = ctx.config
        if cfg.validate_.enabled and cfg.validate_.fidelity and len(data.holdout):
            result.measures = _privacy(ctx, data, result.origin)
        return result

    def _choose(self, ctx: JobContext, data: TableData) -> GeneratorChoice:
        """generate.generator auto: the choice on an inner split of (a sample of) the training
        rows, with a second GAN fitted there with the job's settings."""
        cfg = ctx.config
        rows = data.train
        labels = rows[data.label].to_numpy()
        if len(rows) > CHOICE_ROWS:
            pick = proportional_pick(
                labels, CHOICE_ROWS, stream(cfg.train.seed, Stream.TABLE_CHOICE_ROWS)
            )
            rows = rows.iloc[np.sort(pick)]
        # the plan scaled to the sample: each class keeps its share of new rows per real row
        full = pd.Series(labels).value_counts()
        kept = rows[data.label].value_counts()
        plan = {c: int(round(n * kept.get(c, 0) / full[c])) for c, n in data.plan.items() if n}

        with cpu_threads(cfg.train.cpu_threads):
            choice = choose_generator(
                rows,
                data.schema,
                data.form,
                data.columns,
                plan,
                cfg.model.mode,
                lambda fit_rows, classes: _fit_gan(cfg, fit_rows, data.schema, classes)[0],
                cfg.generate.anchored_share,
                cfg.generate.filter_generated,
                cfg.train.seed,
                cfg.generate.match_moments,
            )
        log.info("generate.generator auto chose %s (scores %s)", choice.chosen, choice.scores)
        return choice

    def validate(self, ctx: JobContext, data: TableData):
        """Score real vs real+synthetic vs real+SMOTE on the holdout, then measure fidelity.

        The synthetic rows are read back from the shards just written, so what is validated is
        what the user gets.
        """
        from augment.tabular.fidelity import fidelity_report, label_values
        from augment.tabular.validate import validate_downstream

        cfg = ctx.config
        rng = np.random.default_rng(cfg.train.seed)
        # the arms never use more rows than validate.max_rows (validate_downstream samples again
        # to fit the real rows in), so the rest need never be in memory
        synthetic = _read_synthetic(ctx, data, cfg.validate_.max_rows, rng)
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
            max_rows=cfg.validate_.max_rows,
        )
        fidelity: dict[str, float] = {}
        if cfg.validate_.fidelity and len(synthetic):
            # distances and the detection classifier grow with the rows: each set is a sample

            def sample(frame: pd.DataFrame) -> pd.DataFrame:
                labels = label_values(frame, data.schema)
                return frame.iloc[proportional_pick(labels, cfg.validate_.max_rows, rng)]

            fidelity = fidelity_report(
                sample(data.train),
                sample(synthetic),
                sample(data.holdout),
                data.schema,
                cfg.train.seed,
            )
        return report, fidelity

    def manifest_fields(self, ctx, data, generation: GenerationResult) -> dict[str, Any]:
        options = ctx.config.generate
        form = data.form
        columns = {
            "ids": sorted(form.ids.columns),
            "ignored": sorted(form.ignored),
            "date_strings": sorted(form.date_strings.columns),
            "levels_kept": {name: len(c.kept) for name, c in form.levels.columns.items()},
        }
        return {
            "columns": {key: value for key, value in columns.items() if value},
            "generator": {
                "generator": options.generator,
                "choice": generation.choice or None,
                "anchored_share": options.anchored_share,
                "filter_generated": options.filter_generated,
                "match_moments": options.match_moments,
                "privacy_floor": options.privacy_floor,
                "rows": {
                    source: {str(c): n for c, n in counts.items()}
                    for source, counts in generation.origin.items()
                },
            },
        }

    def shard_items(self, output, manifest, real: TableData | None, features=None):
        from augment.tabular.dataset import shard_items

        return shard_items(output, manifest, real, features)

    def report_inputs(
        self, ctx: JobContext, data: TableData, fidelity: dict[str, float]
    ) -> ReportInputs:
        """Every feature's real and synthetic values (the real rows of the generated classes,
        weighted to the synthetic class mix, as the fidelity metrics compare them), the
        correlations of the numeric features, and the fidelity measures."""
        from augment.tabular.fidelity import label_values, marginal_distances, weights_to_mix

        generated = [c for c in data.classes if data.plan.get(c)]
        inputs = ReportInputs(
            items="rows",
            classic_arm="SMOTE",
            fidelity_name="Fréchet distance (encoded rows)",
            per_class_fidelity={
                c: fidelity[f"fidelity/frechet/class/{key}"]
                for c, key in zip(generated, unique_metric_keys(generated), strict=True)
                if f"fidelity/frechet/class/{key}" in fidelity
            },
            measures=[
                (name, fidelity[key], meaning)
                for name, key, meaning in _TABLE_MEASURES
                if key in fidelity
            ],
            judgements={
                name: fidelity_judgement(key, fidelity)
                for name, key, _ in _TABLE_MEASURES
                if fidelity_judgement(key, fidelity)
            },
        )
        rng = np.random.default_rng(ctx.config.train.seed)
        synthetic = _read_synthetic(ctx, data, REPORT_ROWS, rng)
        if len(synthetic) == 0:
            return inputs
        synthetic_labels = label_values(synthetic, data.schema)
        real = data.train[
            pd.Series(label_values(data.train, data.schema)).isin(generated).to_numpy()
        ]
        real = real.iloc[proportional_pick(label_values(real, data.schema), REPORT_ROWS, rng)]
        weights = weights_to_mix(label_values(real, data.schema), synthetic_labels)
        # the distances MLflow has; measured here on the same rows when fidelity was off
        keys = unique_metric_keys(data.schema.names)
        distances = [fidelity.get(f"fidelity/marginal/{key}") for key in keys]
        if any(distance is None for distance in distances):
            distances = marginal_distances(real, weights, synthetic, data.schema)
        inputs.features = [
            FeatureComparison(
                name=spec.name,
                categorical=spec.kind == "categorical",
                real=real[spec.name].to_numpy(),
                synthetic=synthetic[spec.name].to_numpy(),
                distance=float(distance),
                real_weights=weights,
                origin=getattr(data.form.datetimes.columns.get(spec.name), "origin", None),
            )
            for spec, distance in zip(data.schema.columns, distances, strict=True)
        ]
        numeric = [spec.name for spec in data.schema.continuous]
        if len(numeric) >= 2 and len(real) >= 2 and len(synthetic) >= 2:
            inputs.correlation_columns = numeric
            inputs.real_correlation = _correlation(real[numeric].to_numpy(np.float64), weights)
            inputs.synthetic_correlation = _correlation(synthetic[numeric].to_numpy(np.float64))
        return inputs


def _privacy(
    ctx: JobContext, data: TableData, origin: dict[str, dict[Any, int]]
) -> dict[str, float]:
    """The privacy measures (:func:`augment.tabular.fidelity.privacy_report`) of the first
    :data:`PRIVACY_ROWS` written rows of each class and source, against the job's holdout, which
    no model of the job was fitted on and nothing in generation read (the floor reads the
    training rows alone), and at most ``validate.max_rows`` training rows (each class in
    proportion). A part writes each class's GAN rows, then its anchored rows, and its record
    counts both: that tells the source of every row. ``origin``: the merged parts' rows per
    source and class (each source's share weighs by it)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from augment.tabular.fidelity import label_values, privacy_report

    cfg = ctx.config
    rng = np.random.default_rng(cfg.train.seed)
    train = data.train
    if cfg.validate_.max_rows and len(train) > cfg.validate_.max_rows:
        labels = label_values(train, data.schema)
        train = train.iloc[np.sort(proportional_pick(labels, cfg.validate_.max_rows, rng))]
    made: dict[str, list[pd.DataFrame]] = {"gan": [], "anchored": []}
    counts: dict[str, dict[Any, int]] = {"gan": {}, "anchored": {}}
    by_name = {str(c): c for c in data.plan}
    wanted = {  # (source, class) -> rows to measure: all it made, at most PRIVACY_ROWS
        (source, cls): min(n, PRIVACY_ROWS)
        for source in made
        for cls, n in origin.get(source, {}).items()
        if n
    }
    index = 0
    while (record := read_record(ctx.output, index)) is not None:
        if all(counts[s].get(c, 0) >= n for (s, c), n in wanted.items()):
            break  # every class and source has its sample: no need to read further parts
        index += 1
        part_origin = record.get("origin", {})
        if not record.get("files") or not part_origin:
            continue
        rows = pd.concat(
            [
                pq.read_table(
                    pa.BufferReader((ctx.output / entry["path"]).read_bytes())
                ).to_pandas()
                for entry in record["files"]
            ],
            ignore_index=True,
        )
        labels = rows[data.label].astype(str).to_numpy()
        for name, n_gan in part_origin.get("gan", {}).items():
            cls = by_name[name]
            of_class = rows[labels == name]  # the part's rows of the class, in written order
            for source, part in (
                ("gan", of_class.iloc[:n_gan]),
                ("anchored", of_class.iloc[n_gan:]),
            ):
                taken = counts[source].get(cls, 0)
                room = PRIVACY_ROWS - taken
                if room > 0 and len(part):
                    made[source].append(part.iloc[:room])
                counts[source][cls] = taken + min(max(room, 0), len(part))
    samples = {
        source: data.form.to_model(pd.concat(parts, ignore_index=True))
        for source, parts in made.items()
        if parts
    }
    if not samples:
        return {}
    made_rows = {source: origin.get(source, {}) for source in samples}
    return privacy_report(train, data.holdout, samples, data.schema, made_rows, cfg.train.seed)


def _fit_gan(
    cfg: TabularJobConfig,
    rows: pd.DataFrame,
    schema: TableSchema,
    classes: Sequence[Any],
    loop: TrainingLoop | None = None,
):
    """One GAN unit on ``rows`` with the job's model and training settings: the job's units, and
    the second GAN that ``generate.generator: auto`` fits on its inner split."""
    return fit_table_unit(
        rows,
        schema,
        classes,
        gan=settings_from(GANSettings, cfg.model),
        train=settings_from(TrainSettings, cfg.train),
        max_modes=cfg.model.max_modes,
        continuous=cfg.model.continuous,
        clip_to_range=cfg.output.clip_to_range,
        device=cfg.train.device,
        loop=loop,
    )


def _describe_form(form: TableForm, cleaning: dict[str, Any]) -> None:
    """What the form does to the columns, for the summary, the report and MLflow."""
    notes = cleaning.setdefault("notes", [])
    if form.missing:
        cleaning["missing_modelled"] = sorted(form.missing.flags)
    if form.datetimes:
        cleaning["datetimes"] = sorted(form.datetimes.columns)
    if form.ids:
        cleaning["ids"] = sorted(form.ids.columns)
        fresh = ", ".join(f"{name} {form.ids.columns[name].describe()}" for name in cleaning["ids"])
        notes.append(
            f"treated as ids, not learned: {', '.join(cleaning['ids'])}; generated rows get "
            f"fresh ids that no row of the source has, holdout and left-out rows included "
            f"({fresh})"
        )
    if form.ignored:
        cleaning["ignored"] = sorted(form.ignored)
        notes.append(
            f"ignored (data.columns): {', '.join(cleaning['ignored'])}; generated rows leave "
            "them missing"
        )
    if form.date_strings:
        cleaning["date_strings"] = sorted(form.date_strings.columns)
    for name, column in form.levels.columns.items():
        notes.append(
            f"{name}: {len(column.kept) + len(column.rare):,} levels; the model keeps the "
            f"{len(column.kept)} most frequent (data.max_levels), the other "
            f"{len(column.rare):,} are drawn from each class's frequencies"
        )
    if not notes:
        del cleaning["notes"]


#: generate.generator auto chooses on at most this many training rows (each class in proportion)
CHOICE_ROWS = 20_000

#: at most this many real and synthetic rows in the report's per-feature plots
REPORT_ROWS = 5000

#: the privacy measures look at the first this many generated rows of each class and source
PRIVACY_ROWS = 2000

_PRECISION_MEANING, _RECALL_MEANING = precision_recall_meanings("rows", "the encoded space")
_TABLE_MEASURES = [
    (
        "detection AUC",
        "fidelity/detection_auc",
        "how well a random forest tells synthetic rows from real rows of the same class "
        "(cross-validated ROC AUC): 0.5 = indistinguishable, 1.0 = always told apart",
    ),
    (
        "DCR ratio (synthetic / holdout)",
        "fidelity/dcr/ratio",
        "median distance of a synthetic row to its closest real training row, over the same "
        "for unseen real (holdout) rows: about 1 = as new as real rows, well below 1 hints at "
        "copied (memorised) rows",
    ),
    (
        "exact copies",
        "fidelity/dcr/exact_copy_share",
        "share of synthetic rows that repeat a real training row",
    ),
    ("precision (k-NN)", "fidelity/precision", _PRECISION_MEANING),
    ("recall (k-NN)", "fidelity/recall", _RECALL_MEANING),
    (
        "Fréchet distance",
        "fidelity/frechet",
        "between synthetic and real rows in the encoded space (0 = same means and covariances)",
    ),
    (
        "mean marginal distance",
        "fidelity/marginal_mean",
        "mean over features of the KS statistic (numbers) or total variation (categories) "
        "between synthetic and real values: 0 = same distributions, 1 = disjoint",
    ),
]


def _read_synthetic(
    ctx: JobContext, data: TableData, max_rows: int | None, rng: np.random.Generator
) -> pd.DataFrame:
    """The committed synthetic rows; a large run as a sample of at most ``max_rows``, each class
    in proportion, read one part at a time so that the rest is never in memory."""
    take = None
    if sum(data.plan.values()):
        labels = read_shards(ctx.output, require_success=False, columns=[data.label])
        # class codes in sorted label order, not a Python object per row: 10M labels cost
        # 80 MB, not 600 (the same classes in the same order, so the same sample)
        codes, _ = pd.factorize(labels[data.label], sort=True)
        pick = proportional_pick(codes, max_rows, rng)
        take = pick if len(pick) < len(labels) else None
    # in the model's form, as train and holdout are (datetimes as seconds, gaps as flags)
    return data.form.to_model(read_shards(ctx.output, require_success=False, take=take))


def _correlation(values: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Pearson correlation of the columns of ``values`` (N, F), rows weighted; NaN where a
    column is constant."""
    covariance = np.atleast_2d(np.cov(values, rowvar=False, aweights=weights))  # (F, F)
    scale = np.sqrt(np.diag(covariance))
    with np.errstate(divide="ignore", invalid="ignore"):
        return covariance / np.outer(scale, scale)
