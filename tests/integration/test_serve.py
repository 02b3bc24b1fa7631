"""`augment serve` registers a cron-scheduled deployment with a real Prefect server and runs it."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from augment.cli import app
from augment.core.shards import read_manifest
from tests.conftest import stop_process_group, write_config

runner = CliRunner()


def _read_deployment(name: str, server, deadline: float):
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        while True:
            try:
                return client.read_deployment_by_name(name)
            except ObjectNotFound:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)


def test_serve_registers_a_cron_deployment_and_runs_it(tmp_path, prefect_api):
    from prefect.deployments import run_deployment

    path = write_config(
        tmp_path, None, name="served", train={"steps": 10}, validate={"enabled": False}
    )
    env = {**prefect_api.env, "PREFECT_RUNNER_POLL_FREQUENCY": "2"}
    serving = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "augment.cli",
            "serve",
            str(path),
            "--cron",
            "0 3 * * *",
            "--timezone",
            "Europe/Berlin",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deployment = _read_deployment("augment-balance/served", prefect_api, time.monotonic() + 180)
        assert serving.poll() is None, serving.stdout.read().decode()[-3000:]
        [schedule] = deployment.schedules
        assert schedule.schedule.cron == "0 3 * * *"
        assert schedule.schedule.timezone == "Europe/Berlin"
        assert schedule.active
        assert deployment.parameters["config_path"] == str(path)
        assert deployment.entrypoint == "flows.balance.balance_flow"

        flow_run = run_deployment("augment-balance/served", timeout=600)
        assert flow_run.state.is_completed(), flow_run.state
    finally:
        stop_process_group(serving, grace=60)
    manifest = read_manifest(tmp_path / "out")
    assert manifest["counts_generated"] == {"benign": 0, "malignant": 225}
    assert manifest["counts_after"]["malignant"] == manifest["counts_after"]["benign"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cron", "0 3 * *"], "Invalid cron string"),
        (["--cron", "0 3 * * *", "--timezone", "Mars/Base"], "IANA zone"),
    ],
)
def test_serve_refuses_a_bad_schedule_before_serving(tmp_path, args, message):
    path = write_config(tmp_path, None)
    result = runner.invoke(app, ["serve", str(path), *args])
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_prefect_yaml_deploys_to_a_work_pool(prefect_api):
    """The committed prefect.yaml registers its deployments (pool, schedule, parameters)."""
    from prefect.client.orchestration import get_client

    root = Path(__file__).resolve().parents[2]
    env = {**prefect_api.env, "PWD": str(root)}
    prefect = [sys.executable, "-m", "prefect", "--no-prompt"]
    for command in (["work-pool", "create", "augment", "--type", "process"], ["deploy", "--all"]):
        done = subprocess.run(
            [*prefect, *command], cwd=root, env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    with get_client(sync_client=True) as client:
        wine = client.read_deployment_by_name("augment-balance/wine")
        many = client.read_deployment_by_name("augment-balance-many/all-tables")
    assert wine.work_pool_name == "augment" and many.work_pool_name == "augment"
    assert [s.schedule.cron for s in wine.schedules] == ["0 3 * * *"]
    assert wine.parameters["overrides"] == ["orchestration.task_runner=dask"]
    assert wine.pull_steps == [
        {"prefect.deployments.steps.set_working_directory": {"directory": str(root)}}
    ]
    for config_path in [wine.parameters["config_path"], *many.parameters["config_paths"]]:
        assert (root / config_path).is_file()
