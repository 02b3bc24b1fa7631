"""What an operator sees of a job run by Prefect, read back from the session's Prefect server:
the artifacts of every job flow run, and the flow run's state when the do-no-harm gate fails.
(Reruns of a served deployment: test_serve.py.)"""

from __future__ import annotations

import json

import mlflow
import pytest
from typer.testing import CliRunner

from augment.cli import app
from augment.core.shards import read_manifest
from tests.conftest import write_config
from tests.integration.conftest import read_artifacts

runner = CliRunner()


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
