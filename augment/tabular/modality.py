"""Tables as a modality of the job: what the pipeline's steps do with a table.

- load: :func:`augment.tabular.sources.load_table` (Parquet, CSV, built-in tables), missing-value
  policy, holdout split and plan (:mod:`augment.core.balance`), column kinds
  (:func:`augment.tabular.schema.infer_schema`);
- fit: :func:`augment.tabular.synthesizer.fit_table_unit` (the encoder and the tabular cGAN);
- generate: the synthesizer's rows, with the input's columns and dtypes, into Parquet shards;
- validate: scikit-learn classifiers on real / real+synthetic / real+SMOTE rows, and fidelity.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from augment.core.cache import frame_digest
from augment.core.context import JobContext
from augment.core.generate import GenerationResult, write_shards
from augment.core.modality import Modality
from augment.core.shards import read_shards
from augment.core.train import settings_from
from augment.core.validation import proportional_pick
from augment.tabular.cgan import GANSettings
from augment.tabular.config import TabularJobConfig
from augment.tabular.schema import TableSchema, infer_schema
from augment.tabular.sources import handle_missing, load_table
from augment.tabular.synthesizer import (
    SYNTHESIZER_FORMAT,
    Synthesizer,
    TrainSettings,
    fit_table_unit,
    synthesizer_from_payload,
)


@dataclass
class TableData:
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

    @property
    def split_ids(self) -> dict[str, list[int]]:
        return {
            "row_ids": [int(i) for i in self.holdout.index],
            "train_row_ids": [int(i) for i in self.train.index],
        }

    @property
    def params(self) -> dict[str, Any]:
        return {
            "data.rows_train": len(self.train),
            "data.rows_holdout": len(self.holdout),
            "data.columns_continuous": len(self.schema.continuous),
            "data.columns_categorical": len(self.schema.categorical),
        }


class TabularModality(Modality):
    kind = "tabular"
    config = TabularJobConfig
    synthesizer_format = SYNTHESIZER_FORMAT

    def load(self, ctx: JobContext) -> TableData:
        cfg = ctx.config
        d = cfg.data
        frame = load_table(
            d.source, d.label, d.format, d.drop_columns, storage_options=d.storage_options
        )
        frame, cleaning = handle_missing(frame, d.label, d.missing)
        train, holdout, counts, plan = ctx.split_and_plan(frame, d.label)
        schema = infer_schema(
            train,
            d.label,
            overrides=d.columns,
            categorical_max_unique=d.categorical_max_unique,
            max_categories=d.max_categories,
            constant_columns=d.constant_columns,
        )
        return TableData(schema, list(frame.columns), train, holdout, counts, plan, cleaning)

    def data_digest(self, data: TableData) -> str:
        schema = json.dumps(data.schema.to_dict(), sort_keys=True, default=str)
        return frame_digest(data.train) + ":" + hashlib.sha256(schema.encode()).hexdigest()

    def fit_unit(self, ctx, data: TableData, classes: Sequence[Any], loop, run_name, run_id):
        cfg = ctx.config
        return fit_table_unit(
            data.train,
            data.schema,
            classes,
            gan=settings_from(GANSettings, cfg.model),
            train=settings_from(TrainSettings, cfg.train),
            max_modes=cfg.model.max_modes,
            continuous=cfg.model.continuous,
            clip_to_range=cfg.output.clip_to_range,
            device=cfg.train.device,
            loop=loop,
        )

    def assemble(self, data: TableData, models: Sequence[Any]) -> Synthesizer:
        return Synthesizer(models, data.schema, data.columns)

    def synthesizer_from_payload(self, payload: dict[str, Any], device: str) -> Synthesizer:
        return synthesizer_from_payload(payload, device)

    def generate(self, ctx: JobContext, data: TableData, synthesizer: Synthesizer):
        batches = synthesizer.class_batches(data.plan, seed=ctx.config.train.seed)
        return write_shards(ctx.output, data.plan, batches, ctx.config.output.rows_per_shard)

    def validate(self, ctx: JobContext, data: TableData):
        """Score real vs real+synthetic vs real+SMOTE on the holdout, then measure fidelity.

        The synthetic rows are read back from the shards just written, so what is validated is
        what the user gets.
        """
        from augment.tabular.fidelity import fidelity_report, label_values
        from augment.tabular.validate import validate_downstream

        cfg = ctx.config
        rng = np.random.default_rng(cfg.train.seed)
        # A large run is read as a sample, each class in proportion, one part at a time: the
        # arms never use more rows than validate.max_rows (validate_downstream samples again to
        # fit the real rows in), so the rest need never be in memory.
        take = None
        if sum(data.plan.values()):
            labels = read_shards(ctx.output, require_success=False, columns=[data.label])
            pick = proportional_pick(label_values(labels, data.schema), cfg.validate_.max_rows, rng)
            take = pick if len(pick) < len(labels) else None
        synthetic = read_shards(ctx.output, require_success=False, take=take)
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
        return {}
