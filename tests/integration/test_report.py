"""report.html of real tiny jobs: in the output folder and in the MLflow run (whose description is
the verdict), and opened offline in a real headless browser (Debian's chromium driven by
Playwright) where every image loads and the verdict is the first thing on the page.

Chromium is required, not optional: `.ci/run` installs it (apt-get install chromium) when
/usr/bin/chromium is missing. Playwright's own browser download (`playwright install`) is not used.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest

from augment.core.shards import REPORT
from augment.pipeline.config import load_config
from augment.pipeline.job import run_job
from tests.conftest import image_config, write_config

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
NOTE_TAG = "mlflow.note.content"  # the run's description on its MLflow page


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), (
        f"{CHROMIUM} is missing: apt-get install -y --no-install-recommends chromium"
    )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def open_report(browser, path: Path) -> dict:
    """What a reader sees: the verdict, every image's load state, and any request that left the
    page (a self-contained report makes none)."""
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    outside: list[str] = []
    page.on(
        "request", lambda r: None if r.url.startswith(("file:", "data:")) else outside.append(r.url)
    )
    try:
        page.goto(path.resolve().as_uri(), wait_until="load")
        return {
            "verdict": page.inner_text("#verdict-sentence"),
            "first_section": page.evaluate("document.querySelector('section').id"),
            "images": page.evaluate(
                "Array.from(document.images, i => [i.alt, i.complete, i.naturalWidth])"
            ),
            "text": page.inner_text("body"),
            "config_open": page.evaluate("document.querySelector('#config details').open"),
            "outside": outside,
        }
    finally:
        page.close()


def check_page(seen: dict, verdict_start: str, images: set[str]) -> None:
    assert seen["first_section"] == "verdict"
    assert seen["verdict"].startswith(verdict_start), seen["verdict"]
    assert {alt for alt, _, _ in seen["images"]} >= images, seen["images"]
    for alt, complete, width in seen["images"]:
        assert complete and width > 0, f"image {alt!r} did not load"
    assert not seen["outside"], seen["outside"]
    assert "Timings" in seen["text"] and not seen["config_open"]


@pytest.mark.parametrize("kind", ["table", "image"])
def test_report_in_output_and_mlflow_opens_in_chromium(kind, tmp_path, mlflow_uri, browser):
    if kind == "table":
        path = write_config(tmp_path, mlflow_uri)
        shown = {
            "rows per class before and after",
            "real vs synthetic values per feature",
            "correlation difference heat map",
        }
    else:
        path = image_config(tmp_path, mlflow_uri)
        shown = {"images per class before and after", "real and synthetic images per class"}
    result = run_job(load_config(path))

    report = result.output / REPORT
    assert report.is_file()
    client = mlflow.MlflowClient(mlflow_uri)
    run = client.get_run(result.mlflow_run_id)
    assert REPORT in [item.path for item in client.list_artifacts(result.mlflow_run_id)]
    description = run.data.tags[NOTE_TAG]
    classic = "SMOTE" if kind == "table" else "albumentations oversampling"
    assert "balanced accuracy" in description and f"vs {classic};" in description
    assert "time/report_seconds" in run.data.metrics

    seen = open_report(browser, report)
    assert seen["verdict"] == description
    check_page(
        seen, "Passed:" if result.passed else "Failed:", shown | {"confusion matrices per arm"}
    )
    if kind == "table":
        assert "detection AUC" in seen["text"] and "DCR ratio" in seen["text"]
        assert "precision (k-NN)" in seen["text"] and "recall (k-NN)" in seen["text"]
    else:
        assert "FID (domain features)" in seen["text"]
        assert "precision (k-NN, domain)" in seen["text"] and "coverage" in seen["text"]
        assert "IS formula on the domain CNN (not the Inception Score)" in seen["text"]
        assert "class confidence (domain CNN)" in seen["text"]
    assert f"MLflow run {result.mlflow_run_id}" in seen["text"]

    # A rerun over the finished run (the report is the run's, not a file of the user's), without
    # validation or tracking: still a report, with the data it has.
    again = run_job(
        load_config(
            path, ["output.overwrite=true", "validate.enabled=false", "tracking.enabled=false"]
        )
    )
    seen = open_report(browser, again.output / REPORT)
    check_page(seen, "Not validated", shown)
    assert "MLflow run" not in seen["text"]
