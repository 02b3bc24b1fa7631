"""`augment serve` registers a cron-scheduled deployment with a real Prefect server, whose scheduler
creates its run, which the serving process runs."""

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
from tests.integration.conftest import read_artifacts

runner = CliRunner()


def _read_deployment(name: str, deadline: float):
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


def _serve(server, cwd: Path, *args: str) -> subprocess.Popen:
    """`augment serve ARGS` in a subprocess on ``server``, polling for runs every 2 s."""
    return subprocess.Popen(
        [sys.executable, "-m", "augment.cli", "serve", *args],
        cwd=cwd,
        env={**server.env, "PREFECT_RUNNER_POLL_FREQUENCY": "2"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _first_runs_finished(
    deployment_id, server, created_by: float, finished_by: float, count: int = 1
):
    """The deployment's ``count`` earliest flow runs, once all are in a final state; fails with
    the end of the server's log if fewer runs exist by ``created_by`` (the scheduler made none)
    or they did not finish by ``finished_by``."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
    from prefect.client.schemas.sorting import FlowRunSort

    only_this = DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
    with get_client(sync_client=True) as client:
        while True:
            runs = client.read_flow_runs(
                deployment_filter=only_this, sort=FlowRunSort.EXPECTED_START_TIME_ASC, limit=count
            )
            if len(runs) == count and all(run.state.is_final() for run in runs):
                return runs
            now = time.monotonic()
            if now > finished_by or (len(runs) < count and now > created_by):
                tail = server.log.read_text(errors="replace")[-3000:]
                what = f"runs {[run.state for run in runs]!r}" if runs else "no flow run"
                pytest.fail(
                    f"{what} of the {count} the scheduler should have created; end of the "
                    f"Prefect server's log:\n{tail}"
                )
            time.sleep(2)


def test_serve_runs_a_cron_deployment_twice_when_the_scheduler_fires(
    tmp_path, prefect_scheduler_api
):
    """A deployment served by `augment serve` with a cron gets its flow runs from the server's
    scheduler (nobody triggers them), and the serving process runs two in a row to Completed:
    the second replaces the first's finished output (serve's rerun policy; the config says
    nothing about overwriting).

    The runs come at the next two full minutes. With SQLAlchemy 2.1 next to Prefect 3.8 the
    scheduler failed on every pass and no run was ever created (issue 34); then this fails with
    that error from the server's log.
    """
    path = write_config(
        tmp_path, None, name="served", train={"steps": 10}, validate={"enabled": False}
    )
    cron = ["--cron", "* * * * *", "--timezone", "Europe/Berlin", "--limit", "1"]
    serving = _serve(prefect_scheduler_api, tmp_path, str(path), *cron)
    try:
        deployment = _read_deployment("augment-balance/served", time.monotonic() + 180)
        assert serving.poll() is None, serving.stdout.read().decode()[-3000:]
        [schedule] = deployment.schedules
        assert schedule.schedule.cron == "* * * * *"
        assert schedule.schedule.timezone == "Europe/Berlin"
        assert schedule.active
        assert deployment.parameters["config_path"] == str(path)
        assert deployment.entrypoint == "flows.balance.balance_flow"

        registered = time.monotonic()
        flow_runs = _first_runs_finished(
            deployment.id, prefect_scheduler_api, registered + 180, registered + 540, count=2
        )
        for flow_run in flow_runs:
            assert flow_run.auto_scheduled
            assert flow_run.created_by.type == "SCHEDULE"
            assert flow_run.created_by.id == schedule.id
            assert flow_run.state.is_completed(), flow_run.state
        first, second = (run.expected_start_time for run in flow_runs)
        assert (second - first).total_seconds() == 60
    finally:
        stop_process_group(serving, grace=60)
    manifest = read_manifest(tmp_path / "out")
    assert manifest["counts_generated"] == {"benign": 0, "malignant": 225}
    assert manifest["counts_after"]["malignant"] == manifest["counts_after"]["benign"]


def test_a_served_deployment_runs_twice_into_a_dated_folder_and_reuses_its_generator(
    tmp_path, prefect_api
):
    """Two runs of one deployment served by `augment serve`, one after the other: both end
    Completed (the second replaces the first's finished output of the same day: the policy of
    served jobs), and the second reuses the generator the first trained, as its artifact says."""
    from prefect.deployments import run_deployment

    path = write_config(
        tmp_path,
        None,
        name="nightly",
        train={"steps": 10},
        validate={"enabled": False},
        output={"path": str(tmp_path / "runs" / "{name}" / "{run_date}")},
    )
    serving = _serve(prefect_api, tmp_path, str(path))
    try:
        _read_deployment("augment-balance/nightly", time.monotonic() + 180)
        assert serving.poll() is None, serving.stdout.read().decode()[-3000:]
        runs = [run_deployment("augment-balance/nightly", timeout=300, poll_interval=2)]
        runs.append(run_deployment("augment-balance/nightly", timeout=300, poll_interval=2))
    finally:
        stop_process_group(serving, grace=60)
    assert [run.state.type.value for run in runs] == ["COMPLETED", "COMPLETED"], runs
    outputs = sorted((tmp_path / "runs" / "nightly").glob("*/_SUCCESS"))
    assert outputs, list((tmp_path / "runs").rglob("*"))
    latest = read_manifest(outputs[-1].parent)
    assert latest["cache"]["hit"] is True
    assert (tmp_path / "runs" / "nightly" / ".augment-cache" / latest["cache"]["key"]).is_dir()
    [*_, page] = sorted(read_artifacts("augment-nightly"), key=lambda artifact: artifact.created)
    assert "- generator: reused from the cache" in page.data


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


def test_serve_refuses_a_schedule_without_a_prefect_server(tmp_path):
    """Without PREFECT_API_URL Prefect serves on a temporary server that never schedules: a
    cron given there would never fire, so serve refuses it and says how to fix it."""
    import os

    path = write_config(tmp_path, None)
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    done = subprocess.run(
        [sys.executable, "-m", "augment.cli", "serve", str(path), "--cron", "0 3 * * *"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "PREFECT_API_URL" in done.stdout + done.stderr
    assert "never creates scheduled runs" in done.stdout + done.stderr


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
    # scheduled runs replace the previous finished run, as `augment serve`'s do
    assert wine.parameters["overrides"] == [
        "orchestration.task_runner=dask",
        "output.overwrite=true",
    ]
    for deployment in (wine, many):
        assert "output.overwrite=true" in deployment.parameters["overrides"]
    assert wine.pull_steps == [
        {"prefect.deployments.steps.set_working_directory": {"directory": str(root)}}
    ]
    for config_path in [wine.parameters["config_path"], *many.parameters["config_paths"]]:
        assert (root / config_path).is_file()
