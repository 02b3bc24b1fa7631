"""A job against a shared MLflow tracking server: a real ``mlflow server`` process on loopback with
a sqlite database as its backend store, serving the artifacts itself (``--artifacts-destination``),
so the client needs no shared filesystem. One server for the module: it takes tens of seconds to
create its tables and start."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import mlflow
import pandas as pd
import pytest
from typer.testing import CliRunner

from augment.cli import app
from augment.core.errors import ConfigError
from augment.core.shards import read_manifest
from augment.pipeline.config import load_config
from augment.pipeline.job import run_job
from augment.tracking import JobTracker
from tests.conftest import free_port, stop_process_group, wait_until_healthy, write_config

START_TIMEOUT_SECONDS = 300


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """``mlflow server`` with a sqlite backend and proxied artifacts; yields (url, server root)."""
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(root / "server.log", "wb")  # noqa: SIM115 - closed in the teardown below
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination",
            str(root / "artifacts"),
            "--workers",
            "1",
        ],
        cwd=root,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_until_healthy(f"{url}/health", server, root / "server.log", START_TIMEOUT_SECONDS)
        yield url, root
    finally:
        stop_process_group(server)
        log.close()


def test_job_logs_and_registers_through_the_server(tmp_path, mlflow_server, monkeypatch):
    url, root = mlflow_server
    client_dir = tmp_path / "client"
    client_dir.mkdir()
    monkeypatch.chdir(client_dir)  # the client's working directory must stay empty of MLflow files
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    config = load_config(write_config(tmp_path, url, name="served"))
    result = run_job(config)
    assert result.tracking_uri == url

    client = mlflow.MlflowClient(url)
    run = client.get_run(result.mlflow_run_id)
    for key in (
        "lift/balanced_accuracy",
        "baseline/balanced_accuracy",
        "augmented/balanced_accuracy",
    ):
        assert key in run.data.metrics, key
    assert run.data.metrics["lift/balanced_accuracy"] == result.metrics["lift/balanced_accuracy"]
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.artifact_location.startswith("mlflow-artifacts:")  # proxied by the server

    # artifacts read back through the server's REST API
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)  # for runs:/ and models:/ URIs below
    manifest = json.loads(mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/manifest.json"))
    assert manifest == read_manifest(result.output)
    resolved = mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/config/resolved.yaml")
    assert "name: served" in resolved

    # the registered model, loaded from the registry and sampled on the CPU
    assert result.model_uri == "models:/augment-served/1"
    versions = client.search_model_versions("name = 'augment-served'")
    assert [v.run_id for v in versions] == [run.info.run_id]
    model = mlflow.pyfunc.load_model(result.model_uri)
    rows = model.predict(pd.DataFrame({"label": ["malignant"], "n": [7]}), params={"seed": 0})
    assert len(rows) == 7 and set(rows["target"]) == {"malignant"}

    # the files are on the server's side only
    assert list((root / "artifacts").rglob("manifest.json"))
    assert sorted(p.name for p in client_dir.iterdir()) == []


def test_cli_run_against_the_server_prints_no_mlflow_run_links(
    tmp_path, mlflow_server, monkeypatch
):
    """MLflow prints "View run ... at" and "View experiment at" for every run it ends on a
    server (parent and nested runs); `augment run` prints its own one MLflow line instead."""
    url, _ = mlflow_server
    monkeypatch.setenv("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "false")  # MLflow's default
    path = write_config(tmp_path, url, name="links", train={"steps": 10})
    result = CliRunner().invoke(app, ["run", str(path)])
    assert result.exit_code in (0, 10), result.output
    assert f"in {url}" in result.output  # the summary's own line names the server
    assert "View run" not in result.output and "View experiment" not in result.output


def test_cli_ui_points_at_the_server_instead_of_starting_one(mlflow_server):
    url, _ = mlflow_server
    result = CliRunner().invoke(app, ["ui", "--uri", url])
    assert result.exit_code == 0, result.output
    assert f"open {url} in a browser" in result.output


def test_a_server_that_does_not_answer_fails_fast():
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    began = time.monotonic()
    with pytest.raises(ConfigError, match=f"tracking.uri {url}: no MLflow server answers"):
        JobTracker("nowhere", tracking_uri=url)
    assert time.monotonic() - began < 60  # not MLflow's minutes of retries
