"""What an operator sees of a job run by Prefect, read back from the session's Prefect server:
the artifacts of every job flow run, the flow run's state when the do-no-harm gate fails, the
terminal of `augment run --engine prefect` and the automation that notifies on failed runs.
(Reruns of a served deployment: test_serve.py.)"""

from __future__ import annotations

import json
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
from tests.conftest import write_config
from tests.integration.conftest import ROOT, read_artifacts

runner = CliRunner()

# A line that Prefect's console handler or Dask's `distributed` loggers wrote, a traceback, or
# MLflow's run links: none belongs on the terminal of a run without -v.
NOISE = re.compile(
    r"^\d\d:\d\d:\d\d\.\d{3} \| |distributed\.|Traceback|CommClosedError|View run", re.M
)


def _job_flow_run(name: str):
    """The `augment-job` flow run of the job ``name`` (named after it) and its parent run."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    with get_client(sync_client=True) as client:
        [job_run] = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[name]))
        )
        parent = client.read_flow_run(client.read_task_run(job_run.parent_task_run_id).flow_run_id)
    return job_run, parent


@pytest.mark.parametrize(
    ("name", "validate", "code", "state"),
    [
        ("gate_pass", {"min_lift": -1.0}, 0, "COMPLETED"),
        ("gate_fail", {"min_lift": 1.0}, 10, "FAILED"),
        ("gate_kept", {"min_lift": 1.0, "gate_fails_flow": False}, 10, "COMPLETED"),
    ],
)
def test_job_flow_run_publishes_artifacts_and_fails_on_the_gate(
    tmp_path, mlflow_uri, prefect_api, name, validate, code, state
):
    """`augment run --engine prefect`: the job flow run's state follows the gate (unless
    validate.gate_fails_flow is off), its artifacts tell the story, all output is written, the
    CLI exits as without Prefect, and MLflow and Prefect point at each other."""
    path = write_config(tmp_path, mlflow_uri, name=name, validate=validate)
    result = runner.invoke(app, ["run", str(path), "--engine", "prefect"])
    assert result.exit_code == code, result.output
    assert "verdict" in result.output  # the summary is printed on a failed gate too
    assert (tmp_path / "out" / "_SUCCESS").exists()
    summary_passed = read_manifest(tmp_path / "out")["validation"]["passed"]
    assert summary_passed is (code == 0)

    job_run, parent = _job_flow_run(name)
    assert job_run.state.type.value == state and parent.state.type.value == state
    key = f"augment-{name.replace('_', '-')}"
    [page] = read_artifacts(key)
    [classes] = read_artifacts(f"{key}-classes")
    assert page.flow_run_id == classes.flow_run_id == job_run.id
    # the markdown opens with the verdict sentence, then the score table and the links
    assert page.data.startswith(f"**{name}**: The synthetic data ")
    verdict = page.data.splitlines()[0].removeprefix(f"**{name}**: T").removesuffix(".")
    assert "| metric | real | real+synthetic | real+SMOTE | lift | vs SMOTE |" in page.data
    assert "report.html](file://" in page.data and "- MLflow run:" in page.data
    rows = {row["class"]: row for row in json.loads(classes.data)}
    assert rows["malignant"]["after"] == rows["benign"]["after"] == rows["benign"]["before"]
    assert rows["malignant"]["generated"] > 0
    assert {"recall real", "recall real+synthetic", "recall real+SMOTE"} <= set(rows["benign"])
    if state == "FAILED":  # the verdict is the state's message, on the job and the parent run
        assert job_run.state.message.startswith(f"{name}: t{verdict}; ")
        assert "validation failed: lift in balanced accuracy" in job_run.state.message
        assert "**Gate failed**: lift in balanced accuracy" in page.data
        assert parent.state.message == job_run.state.message

    store = mlflow.MlflowClient(mlflow_uri)
    [run] = store.search_runs(
        [store.get_experiment_by_name(name).experiment_id], "tags.mlflow.runName = '" + name + "'"
    )
    assert run.data.tags["prefect.flow_run_id"] == str(job_run.id)
    assert run.data.tags["prefect.flow_run_url"].endswith(f"/runs/flow-run/{job_run.id}")
    version = store.get_model_version(f"augment-{name}", "1")
    assert version.tags["validation"] == ("passed" if code == 0 else "failed")


def _augment(server, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """`augment ARGS` in a subprocess on the session's Prefect server, with Prefect's INFO lines
    on (the test session turns them off; a user has them)."""
    env = {key: value for key, value in server.env.items() if key != "PREFECT_LOGGING_LEVEL"}
    return subprocess.run(
        [sys.executable, "-m", "augment.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_prefect_engine_on_dask_prints_the_local_engines_lines_and_no_log_lines(
    tmp_path, mlflow_uri, prefect_server
):
    """Per-class fits on a local Dask cluster that the flow starts: the terminal shows the
    header, classes, plan and phase lines of the local engine, and no Prefect, Dask or MLflow
    line."""
    path = write_config(
        tmp_path,
        mlflow_uri,
        name="quiet_dask",
        data={"source": "sklearn:wine", "imbalance_ratio": 5},
        model={"mode": "per_class"},
        train={"steps": 10},
        validate={"enabled": False},
        orchestration={"task_runner": "dask", "dask_workers": 1},
    )
    done = _augment(prefect_server, tmp_path, "run", str(path), "--engine", "prefect")
    shown = done.stdout + done.stderr
    assert done.returncode == 0, shown
    for line in (
        "augment quiet_dask",
        "classes  class_0 23, class_1 50, class_2 10 (train split)",
        "plan     class_0 +27, class_2 +40",
        "✓ training 2 GAN(s)",
        "✓ generating 67 rows",
        "✓ writing the report, MLflow run and manifest",
    ):
        assert line in shown, shown
    assert not NOISE.search(shown), shown


def test_a_missing_data_file_is_one_line_as_with_the_local_engine(tmp_path, prefect_api):
    """The same error line and exit code 3 from both engines, no traceback; the job flow run
    ends Failed with that line as its message and in its log."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterName,
        LogFilter,
        LogFilterFlowRunId,
    )

    path = write_config(
        tmp_path,
        None,
        name="no_data_file",
        data={"source": str(tmp_path / "missing.csv"), "label": "y"},
    )
    local = _augment(prefect_api, tmp_path, "run", str(path))
    prefect = _augment(prefect_api, tmp_path, "run", str(path), "--engine", "prefect")
    expected = f"error: data source {tmp_path / 'missing.csv'} does not exist; check data.source"
    assert (local.returncode, local.stderr.strip()) == (3, expected), local.stdout + local.stderr
    assert (prefect.returncode, prefect.stderr.strip()) == (3, expected), prefect.stderr
    assert prefect.stdout == local.stdout  # the header
    assert not NOISE.search(prefect.stdout + prefect.stderr)

    with get_client(sync_client=True) as client:
        [job_run] = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=["no_data_file"]))
        )
        logs = client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[job_run.id]))
        )
    assert job_run.state.is_failed()
    assert job_run.state.message == expected.removeprefix("error: ")
    errors = [log.message for log in logs if log.level >= 40 and log.task_run_id is None]
    assert errors == [expected.removeprefix("error: ")]
    assert not any("Traceback" in log.message for log in logs)


def test_the_automation_example_loads_in_prefect(tmp_path, prefect_api):
    """automations.yaml (docs/operations.md) validates with Prefect's automation model, keeps
    every key it sets, and `prefect automation create --from-file` creates it on a server."""
    from prefect.blocks.notifications import CustomWebhookNotificationBlock
    from prefect.client.orchestration import get_client
    from prefect.events.schemas.automations import AutomationCore

    text = (ROOT / "automations.yaml").read_text()
    [automation] = yaml.safe_load(text)["automations"]
    loaded = AutomationCore.model_validate(automation).model_dump(mode="json")
    # the model ignores unknown keys silently: every key given must be one it kept
    assert automation.keys() <= loaded.keys()
    assert automation["trigger"].keys() <= loaded["trigger"].keys()
    for given, kept in zip(automation["actions"], loaded["actions"], strict=True):
        assert given.keys() <= kept.keys()
    assert loaded["trigger"]["expect"] == ["prefect.flow-run.Failed"]
    assert "augment-balance" in loaded["trigger"]["match_related"]["prefect.resource.name"]

    block = CustomWebhookNotificationBlock(
        name="operator", url="http://127.0.0.1:9/notify", json_data={"text": "{{body}}"}
    )
    block_id = block.save("augment-test-operator", overwrite=True)
    mine = tmp_path / "automations.yaml"
    mine.write_text(text.replace("00000000-0000-0000-0000-000000000000", str(block_id)))
    created = subprocess.run(
        [sys.executable, "-m", "prefect", "automation", "create", "--from-file", str(mine)],
        env=prefect_api.env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert created.returncode == 0, created.stdout + created.stderr
    with get_client(sync_client=True) as client:
        [stored] = client.read_automations_by_name("augment-balance failed")
    assert stored.trigger.expect == {"prefect.flow-run.Failed"}
    assert stored.actions[0].block_document_id == block_id
