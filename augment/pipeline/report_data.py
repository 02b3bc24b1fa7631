"""The job's ``report.html``: what the pipeline knows after validation, handed as plain data to
:mod:`augment.tracking.report`, which draws and renders the page.

The shared sections (verdict, classes, confusion matrices, timings, config) come from the job;
the kind's own (real vs synthetic per feature or per class of images, fidelity measures) from
:meth:`augment.core.modality.Modality.report_inputs`.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from augment.core import __version__, storage
from augment.core.context import JobContext
from augment.core.storage import Location
from augment.core.validation import ValidationReport
from augment.pipeline.registry import modality
from augment.pipeline.summary import origin_sentence

log = logging.getLogger(__name__)


def write_report(
    ctx: JobContext,
    data: Any,
    report: ValidationReport | None,
    fidelity: dict[str, float],
    counts_after: dict[Any, int],
    origin: dict[str, dict[Any, int]] | None = None,
) -> Location | None:
    """Write ``report.html`` into the output folder and, with tracking, into the MLflow parent
    run, whose description becomes the verdict sentence. Adds ``report`` to ``ctx.timings``.

    The shards are the job's product and are good either way: a report that cannot be built is
    a warning, not a failed job. Returns the page's location, or None when it was not written.
    """
    began = time.perf_counter()
    try:
        # imported here: augment.tracking imports mlflow, and most of the job does not need it
        from augment.tracking.report import REPORT_FILE, ReportData, render_report

        cfg = ctx.config
        inputs = modality(cfg.data.kind).report_inputs(ctx, data, fidelity)
        page = render_report(
            ReportData(
                job=cfg.name,
                kind=cfg.data.kind,
                source=str(cfg.data.source),
                label=str(data.label),
                output=storage.describe(ctx.output),
                version=__version__,
                counts_before=data.counts_before,
                plan=data.plan,
                counts_after=counts_after,
                metrics={**(report.metrics if report else {}), **fidelity},
                passed=report.passed if report else None,
                min_lift=cfg.validate_.min_lift,
                timings={**ctx.timings, "report": time.perf_counter() - began},
                config_yaml=cfg.to_yaml(),
                inputs=inputs,
                per_class=report.per_class if report else None,
                confusion=report.confusion if report else {},
                classes=report.classes if report else [],
                notes=[*data.cleaning.get("notes", []), *(report.notes if report else [])],
                mlflow_run_id=ctx.tracker.run_id if ctx.tracker else None,
                tracking_uri=ctx.tracker.tracking_uri if ctx.tracker else None,
                origin=origin_sentence(origin, _noun(cfg.data.kind)) if origin else "",
            )
        )
        target = ctx.output / REPORT_FILE
        storage.write_bytes(target, page.html.encode("utf-8"))
        if ctx.tracker:
            ctx.tracker.log_report(page.html, page.verdict, REPORT_FILE)
    except Exception as error:
        log.warning(
            "report.html was not written: %s", error, exc_info=log.isEnabledFor(logging.DEBUG)
        )
        return None
    ctx.timings["report"] = time.perf_counter() - began
    log.info("report written to %s in %.1fs", storage.describe(target), ctx.timings["report"])
    return target


def _noun(kind: str) -> str:
    """What a kind's generated items are called in sentences."""
    return "images" if kind == "image" else "rows"
