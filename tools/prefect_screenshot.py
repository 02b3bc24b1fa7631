"""Screenshots of Prefect's own UI for docs/operations.md: a job flow run's Artifacts tab and its
markdown artifact (verdict, scores, links), taken with Chromium.

    python -m tools.prefect_screenshot            # writes docs/img/prefect-*.png

Starts `prefect server start` (with its UI) on a free loopback port with a scratch PREFECT_HOME,
runs a small breast_cancer job through `augment run --engine prefect` against it, and opens the
job flow run's page in Debian's chromium driven by Playwright (as tests/integration/test_report.py
does). Everything but the PNG files lives in a temporary folder and is gone afterwards.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
JOB = "breast_cancer"
KEY = "augment-breast-cancer"  # flows.balance.artifact_key(JOB)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for(url: str, server: subprocess.Popen, seconds: float = 240) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and server.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise SystemExit(f"the Prefect server did not answer on {url}")


def _job_run_and_page(api_url: str) -> tuple[str, str]:
    """The ids of the job's flow run and of its markdown artifact."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterKey,
        FlowRunFilter,
        FlowRunFilterName,
    )
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with (
        temporary_settings(updates={PREFECT_API_URL: api_url}),
        get_client(sync_client=True) as client,
    ):
        [run] = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[JOB]))
        )
        [page] = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[KEY]))
        )
    return str(run.id), str(page.id)


def _shoot(ui: str, run_id: str, page_id: str, out: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright

    shots = [out / "prefect-flow-run-artifacts.png", out / "prefect-artifact.png"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.goto(f"{ui}/runs/flow-run/{run_id}", wait_until="networkidle")
        page.get_by_text("Artifacts", exact=True).first.click()
        page.get_by_text(KEY, exact=True).first.wait_for()
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(shots[0]))
        # the markdown artifact's own page: the verdict first, then the holdout scores
        page.goto(f"{ui}/artifacts/artifact/{page_id}", wait_until="networkidle")
        page.get_by_text("balanced_accuracy").first.wait_for()
        page.screenshot(path=str(shots[1]), full_page=True)
        browser.close()
    return shots


def main() -> None:
    port = _free_port()
    ui, api_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port}/api"
    with tempfile.TemporaryDirectory(prefix="augment-screenshot-") as scratch:
        env = {
            **os.environ,
            "PREFECT_HOME": scratch,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "NO_ALBUMENTATIONS_UPDATE": "1",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }
        config = yaml.safe_load((ROOT / "configs" / f"{JOB}.yaml").read_text())
        config["output"] = {"path": f"{scratch}/runs/{{name}}"}
        config["tracking"] = {"uri": f"sqlite:///{scratch}/mlflow.db"}
        config_path = Path(scratch) / f"{JOB}.yaml"
        config_path.write_text(yaml.safe_dump(config))
        with (Path(scratch) / "server.log").open("w") as log:
            server = subprocess.Popen(
                [sys.executable, "-m", "prefect", "server", "start"]
                + ["--host", "127.0.0.1", "--port", str(port)],
                env={**env, "PREFECT_UI_API_URL": api_url},  # the UI's own default is port 4200
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                _wait_for(f"{api_url}/health", server)
                subprocess.run(
                    [sys.executable, "-m", "augment.cli", "run", str(config_path)]
                    + ["--engine", "prefect"],
                    env={**env, "PREFECT_API_URL": api_url},
                    check=False,  # a failed gate (exit 10) is a page worth showing too
                )
                out = ROOT / "docs" / "img"
                for shot in _shoot(ui, *_job_run_and_page(api_url), out):
                    print(f"wrote {shot.relative_to(ROOT)}")
            finally:
                server.terminate()
                server.wait(timeout=60)


if __name__ == "__main__":
    main()
