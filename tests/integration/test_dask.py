"""prefect-dask on a real distributed.LocalCluster: per-class fits and whole jobs on the workers."""

from __future__ import annotations

import os

import mlflow
import pytest

from augment.core.shards import read_manifest
from tests.conftest import write_config


@pytest.fixture(scope="module")
def dask_cluster():
    """Two worker processes on this machine, one thread each."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        yield cluster, set(client.run(os.getpid).values())


def test_per_class_fit_tasks_run_on_the_dask_workers(
    tmp_path, mlflow_uri, prefect_server, dask_cluster
):
    """The flow runs on this process's temporary Prefect server, with no PREFECT_API_URL set (as
    `augment run --engine prefect` without a server does), and the workers, which know no API
    either, report their fit task runs to that server instead of starting one each."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterId,
        FlowRunFilterName,
        TaskRunFilter,
        TaskRunFilterName,
    )

    from flows.balance import balance_flow

    cluster, worker_pids = dask_cluster
    path = write_config(
        tmp_path,
        mlflow_uri,  # the MLflow tracker crosses the wire with the job context
        name="dask_per_class",
        data={"source": "sklearn:wine", "imbalance_ratio": 5},
        model={"mode": "per_class"},
        validate={"enabled": False},
        orchestration={"task_runner": "dask", "dask_address": cluster.scheduler_address},
    )
    state = balance_flow(str(path), return_state=True)
    assert state.is_completed(), state
    summary = state.result()
    trained = {tuple(unit["classes"]): unit["pid"] for unit in summary["training"]}
    assert set(trained) == {("class_0",), ("class_2",)}  # the two classes short of class_1
    assert set(trained.values()) <= worker_pids and os.getpid() not in trained.values()
    manifest = read_manifest(summary["output"])
    assert manifest["counts_before"] == {"class_0": 23, "class_1": 50, "class_2": 10}
    assert manifest["counts_generated"] == {"class_0": 27, "class_1": 0, "class_2": 40}
    assert manifest["counts_after"] == {"class_0": 50, "class_1": 50, "class_2": 50}
    assert manifest["training"]["units"] == summary["training"]
    with get_client(sync_client=True) as client:
        [job_run] = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=["dask_per_class"]))
        )
        fits = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[job_run.id])),
            task_run_filter=TaskRunFilter(name=TaskRunFilterName(like_="fit-")),
        )
    assert sorted(run.state.type.value for run in fits) == ["COMPLETED", "COMPLETED"], fits
    # each worker logged its class's losses to its own nested MLflow run
    client = mlflow.MlflowClient(mlflow_uri)
    parent = client.get_run(summary["mlflow_run_id"])
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    train_runs = {c.data.tags["mlflow.runName"]: c for c in children if "train" in c.info.run_name}
    assert set(train_runs) == {"train/class_0", "train/class_2"}
    assert all("loss_g" in run.data.metrics for run in train_runs.values())


def test_several_jobs_in_one_flow_run_on_the_workers(tmp_path, prefect_api, dask_cluster):
    from flows.balance import balance_many_flow

    cluster, worker_pids = dask_cluster
    paths = []
    for name, source, label in (
        ("many_wine", "sklearn:wine", "target"),
        ("many_cancer", "sklearn:breast_cancer", "target"),
    ):
        folder = tmp_path / name
        folder.mkdir()
        paths.append(
            str(
                write_config(
                    folder,
                    None,
                    name=name,
                    data={"source": source, "label": label, "imbalance_ratio": 5},
                    train={"steps": 10},
                    validate={"enabled": False},
                    orchestration={
                        "task_runner": "dask",
                        "dask_address": cluster.scheduler_address,
                    },
                )
            )
        )
    summaries = balance_many_flow(paths)
    assert [s["output"] for s in summaries] == [
        str(tmp_path / n / "out") for n in ("many_wine", "many_cancer")
    ]
    pids = {unit["pid"] for s in summaries for unit in s["training"]}
    assert pids <= worker_pids and os.getpid() not in pids
    for summary in summaries:
        manifest = read_manifest(summary["output"])
        assert len(set(manifest["counts_after"].values())) == 1  # balanced exactly
        assert manifest["counts_generated"] == summary["plan"]
