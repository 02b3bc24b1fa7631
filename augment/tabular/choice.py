"""``generator="auto"``: pick where the new rows come from on an inner split of the training rows.

The training rows (never a test fold: the sampler sees no other) are split once, stratified: a
quarter of each class with at least two rows is held out. A GAN is fitted on the rest with the
sampler's own settings; each candidate (``mix``, ``anchored``, ``gan``) generates for the rest what
the plan asks, scaled to its size; two cheap classifiers (logistic regression, a 50-tree forest)
learn from the rest plus each candidate's rows and are scored on the held-out quarter by balanced
accuracy. The earlier candidate in ``CANDIDATES`` (the default, ``mix``, first) stays unless a
later one leads it by more than 1.645 times the spread a tie would have on the held-out rows
(:func:`augment.core.choice.pick_by_answers`, the rule the image wing's choice uses): a quarter
of a training fold holds 1-10 minority rows on most KEEL tables, too few to tell the candidates
apart, and the choice by the best mean ranked behind the fixed mix (benchmarks/NOTES.md). Every
score and spread is kept in the sampler's ``choice_``: the choice is explicit and reported,
never a silent fallback.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from augment.core.choice import inner_split as core_inner_split
from augment.core.choice import pick_by_answers
from augment.core.seeds import Stream, stream
from augment.core.synthesizer import training_units
from augment.tabular.form import TableForm
from augment.tabular.generation import RowGenerator, real_row_space
from augment.tabular.schema import TableSchema
from augment.tabular.synthesizer import Synthesizer

CANDIDATES = ("mix", "anchored", "gan")
#: the share of each class's training rows held out to score the candidates
HELD_OUT = 0.25


@dataclass
class GeneratorChoice:
    """What ``generator="auto"`` chose and why (plain data, saved with the sampler)."""

    chosen: str
    scores: dict[str, float]  # candidate -> mean balanced accuracy on the held-out rows
    held_out_rows: int
    fit_rows: int
    classifiers: list[str] = field(
        default_factory=lambda: ["logistic_regression", "random_forest_50"]
    )
    spreads: dict[str, float] = field(default_factory=dict)  # "a vs b" -> a tie's spread

    def to_dict(self) -> dict[str, Any]:
        return {
            "chosen": self.chosen,
            "scores": dict(self.scores),
            "spreads": dict(self.spreads),
            "held_out_rows": self.held_out_rows,
            "fit_rows": self.fit_rows,
            "classifiers": list(self.classifiers),
        }


def inner_split(labels: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(fit rows, held-out rows) as sorted indices: ``HELD_OUT`` of each class with two rows or
    more (at least one) is held out; a class of one row stays whole in the fit rows."""
    return core_inner_split(labels, HELD_OUT, rng)


def choose_generator(
    rows: pd.DataFrame,
    schema: TableSchema,
    form: TableForm,
    columns: Sequence[str],
    plan: Mapping[Any, int],
    mode: str,
    fit_unit: Callable[[pd.DataFrame, list[Any]], Any],
    anchored_share: float,
    filter_generated: bool,
    seed: int,
    match_moments: bool,
) -> GeneratorChoice:
    """Score the candidates on an inner split of ``rows`` (the training rows in the model's form,
    label included) and return the choice. ``fit_unit(rows, classes)`` fits one GAN unit with the
    sampler's settings; ``plan`` is the full training set's, scaled here to the fit rows."""
    rng = stream(seed, Stream.TABLE_CHOICE_SPLIT)
    labels = rows[schema.label].to_numpy()
    fit_index, held_index = inner_split(labels, rng)
    fit_rows, held_rows = rows.iloc[fit_index], rows.iloc[held_index]
    counts = pd.Series(labels).value_counts()
    fit_counts = pd.Series(labels[fit_index]).value_counts()
    inner_plan = {c: int(round(n * fit_counts.get(c, 0) / counts[c])) for c, n in plan.items() if n}
    models = [
        fit_unit(fit_rows, unit)
        for unit in training_units(
            schema.classes, {**dict.fromkeys(schema.classes, 0), **inner_plan}, mode
        )
    ]
    synthesizer = Synthesizer(models, schema, columns, form)
    space = real_row_space(fit_rows, schema, form)
    names = schema.names
    real_x = space.points
    held_x, held_y = space.embed(held_rows[names]), held_rows[schema.label].to_numpy()
    truth = held_y.astype(str)
    answers = {}
    for candidate in CANDIDATES:
        source = RowGenerator(
            synthesizer, space, candidate, anchored_share, filter_generated, match_moments
        )
        parts = [rows for _, rows in source.class_batches(inner_plan, seed)]
        new = form.to_model(pd.concat(parts, ignore_index=True)) if parts else fit_rows.iloc[:0]
        x = np.vstack([real_x, space.embed(new[names])])
        y = np.concatenate([space.labels, new[schema.label].to_numpy()]).astype(str)
        # each held-out row's share of the two classifiers that got it right
        answers[candidate] = np.mean(
            [m.fit(x, y).predict(held_x) == truth for m in _models(seed)], axis=0
        )
    chosen, scores, spreads = pick_by_answers(CANDIDATES, answers, truth)
    return GeneratorChoice(
        chosen,
        {name: round(score, 6) for name, score in scores.items()},
        len(held_index),
        len(fit_index),
        spreads={name: round(spread, 6) for name, spread in spreads.items()},
    )


def _models(seed: int) -> list[Any]:
    return [
        LogisticRegression(max_iter=500),
        RandomForestClassifier(n_estimators=50, random_state=seed, n_jobs=1),
    ]
