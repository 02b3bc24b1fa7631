"""``report.html``: one self-contained page per job that answers "did the synthetic data help,
and does it look real?".

The pipeline gathers plain data (:class:`ReportData`: counts, metrics, the validation's
confusion matrices, timings, the config, and what the kind adds in
:class:`augment.core.modality.ReportInputs`); :func:`render_report` draws the figures with
:mod:`.plots`, inlines them as base64 PNG and renders the Jinja template
``templates/report.html.j2``. The page needs no network and no other file.

    page = render_report(report_data)
    page.verdict   # one sentence: the lift vs real and vs the classic baseline, the gate
    page.html      # the whole page

This module imports neither MLflow nor a wing; :meth:`.tracker.JobTracker.log_report` stores the
page in the run.
"""

from __future__ import annotations

import base64
import io
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader, StrictUndefined
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from augment.core.metrics import fidelity_judgement
from augment.core.modality import ReportInputs
from augment.core.shards import REPORT
from augment.tracking import plots

__all__ = ["REPORT_FILE", "Report", "ReportData", "render_report", "verdict_sentence"]

#: name of the page in the output folder and in the MLflow run's artifacts
REPORT_FILE = REPORT
#: the per-feature plots show at most this many features, those that differ most
MAX_FEATURES = 12
#: the correlation heat map shows at most this many numeric features
MAX_CORRELATION_COLUMNS = 25
_DPI = 80
_SCORES = (
    ("accuracy", "accuracy"),
    ("balanced_accuracy", "balanced accuracy"),
    ("macro_f1", "macro-F1"),
)


@dataclass
class ReportData:
    """Everything the report shows, as plain values (built by the pipeline after validation)."""

    job: str
    kind: str
    source: str
    label: str
    output: str
    version: str
    counts_before: Mapping[Any, int]
    plan: Mapping[Any, int]
    counts_after: Mapping[Any, int]
    metrics: Mapping[str, float]
    passed: bool | None  # None: validation was off
    min_lift: float
    timings: Mapping[str, float]  # phase -> seconds
    config_yaml: str
    inputs: ReportInputs = field(default_factory=ReportInputs)
    per_class: pd.DataFrame | None = None  # ValidationReport.per_class
    confusion: Mapping[str, np.ndarray] = field(default_factory=dict)  # "<arm>/<classifier>"
    classes: Sequence[Any] = ()  # the confusion matrices' order
    notes: Sequence[str] = ()
    mlflow_run_id: str | None = None
    tracking_uri: str | None = None
    # where the generated rows came from, a sentence (tables: GAN, filter, anchors); "" for one
    origin: str = ""


@dataclass
class Report:
    html: str
    verdict: str  # the verdict sentence, also the MLflow run's description


def render_report(data: ReportData) -> Report:
    """Draw the figures and render the page (a second or two for a table of 30 features)."""
    began = time.perf_counter()
    classic = _classic_arm(data.metrics)
    verdict = verdict_sentence(data)
    figures = _figures(data)
    # the caller's "report" phase (gathering the data) plus drawing the figures
    timings = dict(data.timings)
    timings["report"] = timings.get("report", 0.0) + time.perf_counter() - began
    total = sum(timings.values())
    context = {
        "data": data,
        "verdict": verdict,
        "state": "off" if data.passed is None else ("passed" if data.passed else "failed"),
        "created": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "scores": _score_rows(data, classic),
        "score_names": [title for _, title in _SCORES],
        "class_rows": _class_rows(data, classic),
        "privacy": _privacy_rows(data.metrics),
        "privacy_judgement": fidelity_judgement("privacy/dcr_share", dict(data.metrics)),
        "class_arms": [_arm_title(a, data.inputs) for a in _arms(data.metrics, classic)],
        "figures": figures,
        "features_shown": min(MAX_FEATURES, len(data.inputs.features)),
        "timings": [
            (phase, seconds, seconds / total if total else 0.0)
            for phase, seconds in timings.items()
        ],
        "total_seconds": total,
    }
    html = _environment().get_template("report.html.j2").render(**context)
    return Report(html=html, verdict=verdict)


def verdict_sentence(data: ReportData) -> str:
    """One sentence: the augmented arm's balanced accuracy, its lift over real data alone and
    over the classic baseline, and whether the do-no-harm gate passed."""
    items = data.inputs.items
    generated = sum(int(n) for n in data.plan.values())
    metrics = data.metrics
    if data.passed is None or "lift/balanced_accuracy" not in metrics:
        return (
            f"Not validated (validate.enabled is false): {generated} synthetic {items} were "
            "generated and no lift was measured."
        )
    classic = _classic_arm(metrics)
    lift = metrics["lift/balanced_accuracy"]
    parts = [
        f"real + synthetic {items} scored {_number(metrics['augmented/balanced_accuracy'])} "
        f"balanced accuracy on the holdout, {_signed(lift)} vs real {items} alone"
    ]
    if classic is not None:
        parts.append(
            f"{_signed(metrics[f'lift_vs_{classic}/balanced_accuracy'])} vs "
            f"{data.inputs.classic_arm or classic}"
        )
    gate = "passed" if data.passed else "failed"
    return (
        f"{gate.capitalize()}: {' and '.join(parts)}; the do-no-harm gate "
        f"(lift ≥ {data.min_lift:g}) {gate}."
    )


# -- tables ----------------------------------------------------------------------------------


def _classic_arm(metrics: Mapping[str, float]) -> str | None:
    """The classic baseline arm that ran (``smote``, ``albumentations``), from the metric names."""
    for key in metrics:
        if key.startswith("lift_vs_") and key.endswith("/balanced_accuracy"):
            return key[len("lift_vs_") : -len("/balanced_accuracy")]
    return None


def _arms(metrics: Mapping[str, float], classic: str | None) -> list[str]:
    arms = [arm for arm in ("baseline", "augmented") if f"{arm}/balanced_accuracy" in metrics]
    arms += [classic] if classic else []
    # images: the arms with albumentations on the fly, alone and stacked on the synthetic images
    return arms + [arm for arm in ("classic", "stacked") if f"{arm}/balanced_accuracy" in metrics]


def _arm_title(arm: str, inputs: ReportInputs) -> str:
    items = inputs.items
    titles = {
        "baseline": f"real {items} only",
        "augmented": f"real + synthetic {items}",
        "classic": f"real {items}, albumentations on the fly",
        "stacked": f"real + synthetic {items}, albumentations on the fly",
    }
    return titles.get(arm, f"real + {inputs.classic_arm or arm}")


def _score_rows(data: ReportData, classic: str | None) -> list[dict[str, Any]]:
    """The verdict table: each arm's scores, then the lifts (signed)."""
    metrics = data.metrics
    rows = [
        {
            "name": _arm_title(arm, data.inputs),
            "values": [_number(metrics.get(f"{arm}/{key}")) for key, _ in _SCORES],
            "lift": False,
        }
        for arm in _arms(metrics, classic)
    ]
    lifts = [("lift", "lift vs real only")]
    if classic:
        lifts.append((f"lift_vs_{classic}", f"lift vs {data.inputs.classic_arm or classic}"))
    lifts.append(("lift_stacked_vs_classic", "lift of the synthetic images on the fly"))
    for prefix, name in lifts:
        if f"{prefix}/balanced_accuracy" in metrics:
            values = [_signed(metrics.get(f"{prefix}/{key}")) for key, _ in _SCORES]
            rows.append({"name": name, "values": values, "lift": True})
    return rows


def _class_rows(data: ReportData, classic: str | None) -> list[dict[str, Any]]:
    """Per class: rows before, generated, after, holdout recall of each arm, fidelity."""
    recall: dict[tuple[str, str], float] = {}
    if data.per_class is not None and len(data.per_class):
        means = data.per_class.groupby(["arm", "class"], sort=False)["recall"].mean()
        recall = {(arm, str(cls)): value for (arm, cls), value in means.items()}
    fidelity = {str(c): v for c, v in data.inputs.per_class_fidelity.items()}
    arms = _arms(data.metrics, classic)
    return [
        {
            "name": str(cls),
            "before": int(before),
            "generated": int(data.plan.get(cls, 0)),
            "after": int(data.counts_after.get(cls, before)),
            "recall": [_number(recall.get((arm, str(cls)))) for arm in arms],
            "fidelity": _number(fidelity.get(str(cls))) if data.plan.get(cls) else "",
        }
        for cls, before in data.counts_before.items()
    ]


_PRIVACY_SOURCES = {"gan": "GAN rows", "anchored": "anchored rows"}


def _privacy_rows(metrics: Mapping[str, float]) -> list[dict[str, str]]:
    """The privacy measures (``privacy/<measure>[/source/<s> | /class/<c>]``) as table rows:
    all rows first, then each row source, then each class; empty when none was measured."""
    if "privacy/dcr_share" not in metrics:
        return []
    scopes = [("", "all synthetic rows")]
    for kind in ("source", "class"):
        prefix = f"privacy/dcr_share/{kind}/"
        scopes += [
            (f"/{kind}/{key[len(prefix) :]}", _scope_name(kind, key[len(prefix) :]))
            for key in metrics
            if key.startswith(prefix)
        ]
    return [
        {
            "name": name,
            "dcr": _number(metrics.get(f"privacy/dcr_share{scope}"), 2),
            "memorised": _share(metrics.get(f"privacy/memorised_share{scope}")),
            "copies": _share(metrics.get(f"privacy/exact_copy_share{scope}")),
        }
        for scope, name in scopes
    ]


def _scope_name(kind: str, key: str) -> str:
    return _PRIVACY_SOURCES.get(key, key) if kind == "source" else f"class {key}"


def _share(value: float | None) -> str:
    """A share as a percentage with one decimal ("0.0%" is none at all)."""
    if value is None or not math.isfinite(float(value)):
        return "–"
    return f"{100 * float(value):.1f}%"


# -- figures ---------------------------------------------------------------------------------


def _figures(data: ReportData) -> dict[str, Any]:
    """Name -> base64 PNG (or a list of ``(title, PNG)`` for the confusion matrices)."""
    inputs = data.inputs
    figures: dict[str, Any] = {
        "features": None,
        "correlation": None,
        "images": None,
        "confusion": None,
        "classes": _png(
            plots.class_histograms(
                {str(c): n for c, n in data.counts_before.items()},
                {str(c): n for c, n in data.counts_after.items()},
            )
        ),
    }
    if inputs.features:
        shown = sorted(inputs.features, key=lambda f: _sort_key(f.distance))[:MAX_FEATURES]
        figures["features"] = _png(plots.feature_distributions(shown))
    if inputs.real_correlation is not None and inputs.synthetic_correlation is not None:
        difference = np.asarray(inputs.synthetic_correlation) - np.asarray(inputs.real_correlation)
        keep = _most_changed(difference, MAX_CORRELATION_COLUMNS)
        figures["correlation"] = _png(
            plots.correlation_difference(
                [inputs.correlation_columns[i] for i in keep], difference[np.ix_(keep, keep)]
            )
        )
        figures["correlation_shown"] = len(keep)
        figures["correlation_total"] = len(inputs.correlation_columns)
        figures["correlation_max"] = float(np.nanmax(np.abs(difference), initial=0.0))
    if inputs.image_pairs:
        grid = plots.real_vs_synthetic_grid(inputs.image_pairs)
        if grid is not None:
            figures["images"] = _png(grid)
    if data.confusion:
        arms = {key.partition("/")[0] for key in data.confusion}
        figures["confusion"] = _png(
            plots.confusion_grid(
                data.confusion, list(data.classes), {a: _arm_title(a, inputs) for a in arms}
            )
        )
    return figures


def _sort_key(distance: float) -> float:
    # the most different first; a NaN distance last
    return -distance if math.isfinite(distance) else math.inf


def _most_changed(difference: np.ndarray, most: int) -> list[int]:
    """Indices (in their order) of the ``most`` columns whose correlations changed most."""
    if len(difference) <= most:
        return list(range(len(difference)))
    with np.errstate(invalid="ignore"):
        change = np.nan_to_num(np.abs(difference), nan=0.0).mean(axis=1)
    return sorted(np.argsort(-change, kind="stable")[:most].tolist())


def _png(figure: Figure) -> str:
    FigureCanvasAgg(figure)  # no pyplot: see plots
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=_DPI)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


# -- formatting ------------------------------------------------------------------------------


def _number(value: float | None, digits: int = 3) -> str:
    if value is None or not math.isfinite(float(value)):
        return "–"
    return f"{float(value):.{digits}f}"


def _signed(value: float | None) -> str:
    if value is None or not math.isfinite(float(value)):
        return "–"
    return f"{float(value):+.3f}".replace("-", "−")


def _environment() -> Environment:
    environment = Environment(
        loader=PackageLoader("augment.tracking", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["number"] = _number
    return environment
