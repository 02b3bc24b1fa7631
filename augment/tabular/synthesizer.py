"""A fitted tabular synthesizer: one conditional GAN, or one GAN per class, behind one interface.

``fit_table_unit`` trains one unit of work (all classes in ``conditional`` mode, one class in
``per_class`` mode); ``Synthesizer`` routes each class to its unit and samples exact counts.
Saved files hold only tensors and plain data (see :mod:`augment.core.persist`)::

    synth.save("model.pt")
    synth = load_synthesizer("model.pt", device="cpu")
    rows = synth.sample({"malignant": 100}, seed=0)   # exactly 100 rows, label column included

A job's model file also keeps the real rows its generation used (``keep_rows``): sampling from it
then makes rows the way the job did (the mix of GAN and anchored rows, the neighbour filter), and
the job's plan and seed give back the job's very rows. Without them it samples GAN rows only.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from augment.core.seeds import Stream, stream
from augment.core.synthesizer import UnitSynthesizer, fit_unit, load_device
from augment.core.train import TrainingLoop, TrainingResult, TrainSettings
from augment.tabular.anchored import RowSpace
from augment.tabular.cgan import GANSettings, TabularCGAN
from augment.tabular.form import TableForm
from augment.tabular.generation import RowGenerator
from augment.tabular.schema import TableSchema
from augment.tabular.transform import TabularEncoder

SYNTHESIZER_FORMAT = "augment.tabular_synthesizer/2"

__all__ = ["SYNTHESIZER_FORMAT", "Synthesizer", "TrainSettings", "fit_table_unit"]


def fit_table_unit(
    frame: pd.DataFrame,
    schema: TableSchema,
    classes: Sequence[Any],
    *,
    gan: GANSettings,
    train: TrainSettings,
    max_modes: int = 6,
    continuous: str = "gmm",
    clip_to_range: bool = True,
    device: str = "auto",
    loop: TrainingLoop | None = None,
) -> tuple[TabularCGAN, TrainingResult]:
    """Fit the encoder and a conditional GAN on the rows of ``classes`` in ``frame``.

    Args:
        frame: training rows, label column included.
        schema: inferred on the whole training table (shared by all units).
        classes: the classes this unit models; the GAN is conditioned on them.
        loop: checkpoints, resume, callbacks and progress of the training loop.
    """
    rows = frame[frame[schema.label].isin(classes)]
    features = rows[schema.names]
    encoder = TabularEncoder(max_modes, clip_to_range, continuous).fit(features, schema)
    model = TabularCGAN(encoder, classes, gan)
    result = fit_unit(
        model,
        features,
        rows[schema.label].tolist(),
        train,
        device=device,
        what="GAN",
        model_format=SYNTHESIZER_FORMAT,
        loop=loop,
    )
    return model, result


class Synthesizer(UnitSynthesizer):
    """Routes each class to the unit that models it and samples exact per-class counts."""

    kind = "tabular"
    format = SYNTHESIZER_FORMAT
    batch_size = 4096

    def __init__(
        self,
        units: Sequence[TabularCGAN],
        schema: TableSchema,
        columns: Sequence[str],
        form: TableForm | None = None,
    ):
        super().__init__(units)
        self.schema = schema  # of the model's columns (missing-value flags included)
        self.columns = list(columns)  # the input's column order, label included
        self.form = form or TableForm()  # the model's rows back to the user's form
        # real rows and settings to generate as a job does (keep_rows); None: GAN rows only
        self.space: RowSpace | None = None
        self.generation: dict[str, Any] = {}
        self._label_columns: dict[Any, Any] = {}  # class -> its label column (see finish)

    def keep_rows(
        self,
        space: RowSpace,
        generator: str,
        anchored_share: float,
        filter_generated: bool,
        match_moments: bool,
        privacy_floor: float | None = None,
    ) -> None:
        """Generate from now on as :class:`augment.tabular.generation.RowGenerator` does with
        these real rows and settings (and save them with the model)."""
        self.space = space
        self.generation = {
            "generator": generator,
            "anchored_share": float(anchored_share),
            "filter_generated": bool(filter_generated),
            "match_moments": bool(match_moments),
        }
        if privacy_floor:  # files without it load as before
            self.generation["privacy_floor"] = float(privacy_floor)

    def class_batches(
        self,
        counts: Mapping[Any, int],
        seed: int = 0,
        batch_size: int = 4096,
        first_id: int = 0,
    ) -> Iterator[tuple[Any, pd.DataFrame]]:
        """Yield ``(class, rows)`` batches, label column included; exactly ``counts[c]`` rows of
        class c, with the input's columns and dtypes. Fresh ids (id columns) count on from the
        ``first_id``-th across batches and classes: every row of one call has its own, and calls
        given disjoint ranges (workers sharing out a big job) never repeat one.

        With kept rows (:meth:`keep_rows`) the rows come as the job made them: GAN rows (drawn
        three times and filtered) and anchored rows, by the kept settings."""
        if self.space is not None:
            source = RowGenerator(self, self.space, **self.generation)
            yield from source.class_batches(counts, seed, batch_size, first_id)
            return
        issued = first_id
        rngs: dict[Any, np.random.Generator] = {}
        for cls, rows in self.unit_batches(counts, seed, batch_size):
            if cls not in rngs:  # rare levels and UUIDs: a stream per seed, class and id range
                index = self.schema.classes.index(cls)
                rngs[cls] = stream(seed, index, Stream.ROWS_GAN_RESTORE, first_id)
            rows = self.finish(cls, rows, rngs[cls], first_id=issued)
            issued += len(rows)
            yield cls, rows

    def finish(
        self, cls: Any, rows: pd.DataFrame, rng: np.random.Generator, first_id: int = 0
    ) -> pd.DataFrame:
        """Feature rows of ``cls`` in the model's form -> the input's form: its columns in its
        order and dtypes, label included. ``rng`` draws rare levels and UUIDs; fresh ids start
        at the ``first_id``-th."""
        rows = self.form.restore(self.schema.round_to_input(rows), cls, rng, first_id=first_id)
        # the class's label column as pandas made it for the longest batch so far, sliced:
        # building it from objects (text labels) took ~0.4 ms a batch, holding the GIL
        column = self._label_columns.get(cls)
        if column is None or len(column) < len(rows):
            label = self.schema.restore_labels([cls]).to_numpy()  # in the input's dtype
            rows[self.schema.label] = np.repeat(label, len(rows))
            self._label_columns[cls] = rows[self.schema.label].array
        else:
            rows[self.schema.label] = column[: len(rows)].copy()
        return rows[self.columns]

    def iter_batches(
        self, counts: Mapping[Any, int], seed: int = 0, batch_size: int = 4096
    ) -> Iterator[pd.DataFrame]:
        """Yield generated rows class by class in batches; exactly ``counts[c]`` rows of class c."""
        for _, rows in self.class_batches(counts, seed, batch_size):
            yield rows

    def sample(self, counts: Mapping[Any, int], seed: int = 0) -> pd.DataFrame:
        """All requested rows in one DataFrame with the input's columns and dtypes."""
        parts = list(self.iter_batches(counts, seed))
        if not parts:
            return pd.DataFrame({c: pd.Series(dtype="float64") for c in self.columns})
        return pd.concat(parts, ignore_index=True)

    sample_frame = sample

    def _payload(self) -> dict[str, Any]:
        payload = {
            "schema": self.schema.to_dict(),
            "columns": self.columns,
            "form": self.form.to_dict(),
        }
        if self.space is not None:
            payload["real_rows"] = {**self.generation, "space": self.space.state_dict()}
        return payload


def synthesizer_from_payload(payload: dict[str, Any], device: str = "cpu") -> Synthesizer:
    target = load_device(device)
    units = [TabularCGAN.from_state_dict(state, target) for state in payload["units"]]
    synthesizer = Synthesizer(
        units,
        TableSchema.from_dict(payload["schema"]),
        payload["columns"],
        TableForm.from_dict(payload.get("form")),  # files before 2026-12 have none
    )
    kept = payload.get("real_rows")
    if kept is not None:
        space = RowSpace.from_state_dict(kept["space"], synthesizer.schema)
        settings = {k: v for k, v in kept.items() if k != "space"}
        # a file saved before match_moments existed has no such key: its GAN rows were not moved
        settings.setdefault("match_moments", False)
        synthesizer.keep_rows(space, **settings)
    return synthesizer
