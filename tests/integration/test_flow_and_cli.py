"""A real Prefect flow on the ephemeral local server, and the CLI as a user runs it."""

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
import yaml
from typer.testing import CliRunner

from augment.cli import app
from augment.core.shards import read_manifest
from tests.conftest import free_port, stop_process_group, wait_until_healthy, write_config

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def test_library_never_imports_prefect():
    offenders = []
    for path in (ROOT / "augment").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path}: {n}" for n in names if n.split(".")[0] == "prefect"]
    assert not offenders


@pytest.fixture
def user_set_no_local_server_settings(monkeypatch):
    """Settings as for a user who chose neither of ``flows.balance.LOCAL_SERVER_DEFAULTS`` (the
    tests set them in tests/conftest.py); restored afterwards."""
    from prefect.context import refresh_global_settings_context

    from flows.balance import LOCAL_SERVER_DEFAULTS

    for name in LOCAL_SERVER_DEFAULTS:
        monkeypatch.delenv(name, raising=False)
    refresh_global_settings_context()
    yield
    monkeypatch.undo()
    refresh_global_settings_context()


def test_cli_engine_prefect_runs_the_per_class_flow_on_the_ephemeral_server(
    tmp_path, mlflow_uri, user_set_no_local_server_settings
):
    """`augment run --engine prefect` as a user runs it: no PREFECT_API_URL, so the flow runs on
    the ephemeral server Prefect starts in this process (the session's one server; this test
    starts it when it runs first), with the CLI's startup timeout."""
    from prefect.client.base import ServerType
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName
    from prefect.settings import PREFECT_API_URL

    assert not PREFECT_API_URL.value()
    path = write_config(
        tmp_path,
        mlflow_uri,
        name="flowjob",
        data={"source": "sklearn:wine", "imbalance_ratio": 5},
        model={"mode": "per_class"},
        validate={"min_lift": -1.0},  # a 30-step GAN is not meant to help
    )
    result = runner.invoke(app, ["run", str(path), "--engine", "prefect"])
    assert result.exit_code == 0, result.output
    # the CLI gave the server a startup timeout that fits a busy machine, and no telemetry
    assert os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] == "120"
    assert os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"
    with get_client(sync_client=True) as client:
        assert client.server_type is ServerType.EPHEMERAL
        [flow_run] = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=["flowjob"]))
        )
    assert flow_run.state.is_completed(), flow_run.state
    manifest = read_manifest(tmp_path / "out")
    assert len(set(manifest["counts_after"].values())) == 1
    [run_id] = re.findall(r"mlflow +run ([0-9a-f]{32})", result.output)
    client = mlflow.MlflowClient(mlflow_uri)
    run = client.get_run(run_id)
    assert "lift/balanced_accuracy" in run.data.metrics
    children = client.search_runs(
        [run.info.experiment_id], f"tags.mlflow.parentRunId = '{run.info.run_id}'"
    )
    # one train run per class that needed rows (per_class mode = one fit task per class)
    train_runs = [c for c in children if c.data.tags["mlflow.runName"].startswith("train/")]
    needed = sum(1 for n in manifest["counts_generated"].values() if n > 0)
    assert len(train_runs) == needed == 2


def test_local_server_defaults_keep_what_the_user_set(
    tmp_path, monkeypatch, user_set_no_local_server_settings
):
    from prefect.context import refresh_global_settings_context
    from prefect.settings import get_current_settings

    from flows.balance import LOCAL_SERVER_DEFAULTS, local_server_defaults

    assert local_server_defaults() == {
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    settings = get_current_settings()
    assert settings.server.ephemeral.startup_timeout_seconds == 120
    assert settings.server.analytics_enabled is False
    assert local_server_defaults() == {}  # applied once

    # chosen in a Prefect profile (`prefect config set`) or the environment: kept
    for name in LOCAL_SERVER_DEFAULTS:
        monkeypatch.delenv(name)
    profiles = tmp_path / "profiles.toml"
    profiles.write_text(
        'active = "mine"\n'
        "[profiles.mine]\n"
        'PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS = "45"\n'
    )
    monkeypatch.setenv("PREFECT_PROFILES_PATH", str(profiles))
    monkeypatch.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "true")
    refresh_global_settings_context()
    assert local_server_defaults() == {}
    settings = get_current_settings()
    assert settings.server.ephemeral.startup_timeout_seconds == 45
    assert settings.server.analytics_enabled is True
    assert "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS" not in os.environ


def test_cli_run_prints_a_summary_and_exits_zero(tmp_path, mlflow_uri):
    # a 20-step GAN is not meant to help; the gate is tested on its own below
    path = write_config(tmp_path, mlflow_uri, name="clijob", validate={"min_lift": -1.0})
    result = runner.invoke(app, ["run", str(path), "--set", "train.steps=20"])
    assert result.exit_code == 0, result.output
    # quiet by default: no config dump, no library chatter, one short page
    assert "name: clijob" not in result.output
    for text in ("malignant", "balanced_accuracy", "verdict", "shards ", "report ", "mlflow "):
        assert text in result.output
    for noise in ("Downloading artifacts", "Creating initial MLflow", "Successfully registered"):
        assert noise not in result.output
    assert len(result.output.splitlines()) <= 40, result.output
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert sum(manifest["counts_generated"].values()) > 0

    again = runner.invoke(app, ["run", str(path)])
    assert again.exit_code == 4 and "--overwrite" in again.output
    # -v shows the resolved config (defaults filled in, overrides applied)
    verbose = runner.invoke(app, ["run", str(path), "--overwrite", "-v", "--set", "train.steps=5"])
    assert verbose.exit_code == 0, verbose.output
    assert "name: clijob" in verbose.output and "steps: 5" in verbose.output


def test_cli_gate_failure_exits_non_zero_and_keeps_shards(tmp_path):
    path = write_config(tmp_path, None, validate={"min_lift": 1.0, "classifiers": ["logistic"]})
    elsewhere = tmp_path / "elsewhere"
    result = runner.invoke(app, ["run", str(path), "--output", str(elsewhere)])
    assert result.exit_code == 10
    assert "validation failed" in result.output
    manifest = read_manifest(elsewhere)  # --output wins over output.path
    assert manifest["validation"]["passed"] is False
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--set", "train.stepz=3"], 2, "invalid --set train.stepz=3: unknown key"),
        (["--set", "train.lr=fast"], 2, "invalid --set train.lr=fast:"),
        (["--set", "data.label=targt"], 3, "did you mean 'target'"),
        (["--set", "data.source=/nope/x.parquet"], 3, "does not exist"),
        (["--set", "balance.sampling_strategy={benign: 1}"], 2, "oversampling never removes"),
    ],
)
def test_cli_bad_input_is_one_line_without_traceback(tmp_path, args, code, message):
    path = write_config(tmp_path, None)
    result = runner.invoke(app, ["run", str(path), *args])
    assert result.exit_code == code, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_cli_debug_shows_the_error_itself(tmp_path):
    path = write_config(tmp_path, None)
    result = runner.invoke(app, ["--debug", "run", str(path), "--set", "data.label=targt"])
    assert result.exit_code != 0
    from augment.core.errors import DataError

    assert isinstance(result.exception, DataError)  # raised, not turned into one line


def test_cli_profile(tmp_path, mixed_frame):
    source = tmp_path / "t.csv"
    mixed_frame.to_csv(source, index=False)
    result = runner.invoke(app, ["profile", str(source), "--label", "label"])
    assert result.exit_code == 0, result.output
    assert "imbalance ratio (largest / smallest): 5.00" in result.output
    # every column's inferred role, missing share and distinct count
    assert re.search(r"│ amount +│ continuous +│ float64", result.output), result.output
    assert re.search(r"│ channel +│ categorical +│", result.output), result.output
    missing = runner.invoke(app, ["profile", str(source), "--label", "lable"])
    assert missing.exit_code == 3 and "did you mean 'label'" in missing.output
    no_label = runner.invoke(app, ["profile", str(source)])
    assert no_label.exit_code == 2 and "--label" in no_label.output


def test_cli_errors_name_the_set_entry_and_write_fixes_in_the_users_form(tmp_path, mixed_frame):
    source = tmp_path / "t.csv"
    mixed_frame.assign(country="NZ").to_csv(source, index=False)  # a constant column
    bad = runner.invoke(app, ["run", str(source), "--label", "label", "--set", "train.steps=abc"])
    assert bad.exit_code == 2 and "invalid --set train.steps=abc: Input should be" in bad.output
    assert "invalid config" not in bad.output
    broken = runner.invoke(app, ["run", str(source), "--label", "label", "--set", "model.pac=[1,"])
    assert broken.exit_code == 2 and "--set 'model.pac=[1,': the value '[1,'" in broken.output
    assert "not expected" not in broken.output

    # on the command line with a data file: the fix is a --set entry ...
    out = str(tmp_path / "out")
    cli = runner.invoke(app, ["run", str(source), "--label", "label", "--output", out])
    assert cli.exit_code == 3
    text = " ".join(cli.output.split())
    assert "--set data.drop_columns=[country]" in text
    assert "--set data.constant_columns=keep" in text
    # ... and with a YAML config, the key to write in it
    config = tmp_path / "t.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "name": "t",
                "data": {"source": str(source), "label": "label"},
                "output": {"path": out},
            }
        )
    )
    from_yaml = runner.invoke(app, ["run", str(config)])
    assert from_yaml.exit_code == 3 and "data.constant_columns: keep" in from_yaml.output
    assert "--set" not in from_yaml.output


def test_cli_profile_of_an_image_folder_needs_no_label(tmp_path):
    """A folder of class folders has its classes in the folder names (it demanded --label)."""
    from PIL import Image

    for cls, n in (("cat", 6), ("dog", 2)):
        (tmp_path / "pets" / cls).mkdir(parents=True)
        for i in range(n):
            Image.new("L", (8, 8), 40 * i).save(tmp_path / "pets" / cls / f"{i}.png")
    result = runner.invoke(app, ["profile", str(tmp_path / "pets")])
    assert result.exit_code == 0, result.output
    assert "8 images" in result.output
    assert re.search(r"│ cat +│ +6 │ +75.0% │", result.output), result.output
    assert "imbalance ratio (largest / smallest): 3.00" in result.output


def test_cli_ui_points_at_the_job_store(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    result = runner.invoke(app, ["ui", "--print-command", "--port", "5123"])
    assert result.exit_code == 0
    assert f"sqlite:///{tmp_path / 'mlflow.db'}" in result.output.replace("\n", "")
    assert "--port 5123" in result.output


def test_flow_runs_as_a_module(tmp_path, prefect_server):
    """`python -m flows.balance` in a subprocess, on the session's server (not one of its own)."""
    path = write_config(tmp_path, None, name="modulejob", validate={"enabled": False})
    done = subprocess.run(
        [sys.executable, "-m", "flows.balance", str(path), "--set", "train.steps=10"],
        cwd=ROOT,
        env=prefect_server.env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "out" / "_SUCCESS").exists()
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    with get_client(sync_client=True) as client:  # the run is on the session's server
        [flow_run] = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=["modulejob"]))
        )
    assert flow_run.state.is_completed(), flow_run.state


def test_cli_ui_serves_the_store(tmp_path, monkeypatch):
    """`augment ui` starts a real MLflow UI on the job store; it answers on loopback."""
    port = free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    with open(tmp_path / "ui.log", "wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "augment.cli", "ui", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_until_healthy(f"http://127.0.0.1:{port}/health", server, tmp_path / "ui.log", 120)
        finally:
            stop_process_group(server)


def test_cli_runs_several_configs(tmp_path):
    paths = []
    for name in ("first", "second"):
        folder = tmp_path / name
        folder.mkdir()
        paths.append(
            str(
                write_config(
                    folder, None, name=name, train={"steps": 5}, validate={"enabled": False}
                )
            )
        )
    result = runner.invoke(app, ["run", *paths])
    assert result.exit_code == 0, result.output
    for name in ("first", "second"):
        assert (tmp_path / name / "out" / "_SUCCESS").exists()
    refused = runner.invoke(app, ["run", *paths, "--output", str(tmp_path / "x")])
    assert refused.exit_code == 2 and "with several configs" in refused.output
