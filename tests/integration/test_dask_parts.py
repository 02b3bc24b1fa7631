"""Generation parts on Dask: the same files as one process, a killed worker, a rerun after a crash.

One job (breast_cancer, a plan of about 250 rows cut into parts of 60) runs through the local
engine (its parts one at a time, or several at once in threads) and through the Prefect flow on
LocalClusters of one and two worker processes; every shard file must have the same sha256
whichever ran it.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import pytest

from augment.core.parts import RECORD_DIR
from augment.core.shards import SHARD_DIR, read_manifest, read_shards
from augment.pipeline.config import load_config
from augment.pipeline.job import run_job
from augment.pipeline.parts import CRASH_ONCE
from tests.conftest import write_config

PART_ROWS = 60


def _config(folder: Path, part_threads: int | None = None, **orchestration) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return write_config(
        folder,
        None,
        name="parts",
        train={"steps": 10},
        generate={"part_rows": PART_ROWS, "part_threads": part_threads},
        output={"rows_per_shard": 25},
        validate={"enabled": False},
        orchestration=orchestration,
    )


def _files(output: str | Path) -> list[tuple[str, str]]:
    return [(f["path"], f["sha256"]) for f in read_manifest(output)["files"]]


def _on_disk(output: Path) -> list[str]:
    """Every file under synthetic/ (records included, temporaries too)."""
    root = output / SHARD_DIR
    return sorted(str(p.relative_to(output)) for p in root.rglob("*") if p.is_file())


def _cluster(n_workers: int):
    from distributed import LocalCluster

    return LocalCluster(
        n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None
    )


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    """The job through the local engine: its files and their sha256."""
    folder = tmp_path_factory.mktemp("local")
    result = run_job(load_config(_config(folder)))
    manifest = read_manifest(result.output)
    generation = manifest["generation"]
    assert generation["parts"] >= 4
    assert generation["engine"] == "local" and generation["parts_kept"] == 0
    return {"output": result.output, "files": _files(result.output), "plan": result.plan}


def test_parts_side_by_side_in_one_process_write_the_bytes_of_one_at_a_time(tmp_path, reference):
    """The local engine makes parts in threads (generate.part_threads; by default one per
    core): one at a time or three at once, the same files as the reference."""
    for threads in (1, 3):
        result = run_job(load_config(_config(tmp_path / f"threads-{threads}", threads)))
        assert _files(result.output) == reference["files"], f"{threads} thread(s)"
        generation = read_manifest(result.output)["generation"]
        assert generation["threads"] == threads and generation["processes"] == 1


def _run_on(cluster, folder: Path) -> dict:
    from flows.balance import balance_flow

    path = _config(folder, task_runner="dask", dask_address=cluster.scheduler_address)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        state = balance_flow(str(path), return_state=True)
    assert state.is_completed(), state
    large = [str(w.message) for w in caught if "large" in str(w.message).lower()]
    assert not large, large  # the model travels by reference, not in the task graph
    return state.result()


def _record_pids(output: str | Path) -> set[int]:
    records = Path(output) / SHARD_DIR / RECORD_DIR
    return {json.loads(p.read_text())["pid"] for p in records.glob("part-*.json")}


def test_one_and_two_workers_write_the_bytes_of_one_process(tmp_path, prefect_api, reference):
    for n_workers in (1, 2):
        with _cluster(n_workers) as cluster:
            from distributed import Client

            with Client(cluster) as client:
                worker_pids = set(client.run(os.getpid).values())
            summary = _run_on(cluster, tmp_path / f"workers-{n_workers}")
        output = summary["output"]
        assert _files(output) == reference["files"], f"{n_workers} worker(s)"
        generation = read_manifest(output)["generation"]
        # a cluster of its own address: how many workers it has is not the job's to say
        assert generation["engine"] == "dask" and generation["workers"] is None
        pids = _record_pids(output)
        assert pids <= worker_pids and os.getpid() not in pids  # made on the workers
        assert generation["processes"] == len(pids)
        if n_workers == 2:
            assert len(pids) == 2  # both workers made parts
        # nothing but the parts' files and records; the generator file for workers is gone
        assert not (Path(output) / "model" / "generation.pt").exists()


def test_a_worker_killed_in_a_part_makes_that_part_again(
    tmp_path, prefect_api, reference, monkeypatch
):
    marker = tmp_path / "crashed"
    monkeypatch.setenv(CRASH_ONCE, f"{marker}:1")  # the workers inherit it when they start
    with _cluster(2) as cluster:
        summary = _run_on(cluster, tmp_path / "faulty")
    assert marker.exists()  # a worker did exit in the middle of part 1
    output = Path(summary["output"])
    assert _files(output) == reference["files"]
    listed = {path for path, _ in reference["files"]}
    records = {
        f"{SHARD_DIR}/{RECORD_DIR}/part-{i:05d}.json"
        for i in range(read_manifest(output)["generation"]["parts"])
    }
    assert set(_on_disk(output)) == listed | records  # no partial or duplicate file
    counts = read_shards(output)["target"].value_counts().to_dict()
    assert {str(k): v for k, v in counts.items()} == {
        str(k): v for k, v in reference["plan"].items() if v
    }


def test_a_rerun_after_a_crash_keeps_the_finished_parts(tmp_path, prefect_api, reference):
    """A crash in the middle of generation leaves some parts recorded, one half written and
    others not started; the rerun on two workers makes only the missing ones."""
    folder = tmp_path / "resume"
    result = run_job(load_config(_config(folder)))
    output = Path(result.output)
    n_parts = read_manifest(output)["generation"]["parts"]
    before = _files(output)
    # this process has started local clusters by now (which set OMP_NUM_THREADS=1 here): the
    # job still runs torch on one thread and writes the bytes of the first local run
    assert before == reference["files"]
    for name in ("_SUCCESS", "manifest.json"):
        (output / name).unlink()
    lost = {1, n_parts - 1}
    for index in lost:
        (output / SHARD_DIR / RECORD_DIR / f"part-{index:05d}.json").unlink()
        for path in (output / SHARD_DIR).glob(f"part-{index:05d}-*.parquet"):
            path.unlink()
    (output / SHARD_DIR / "part-00001-00000.parquet").write_bytes(b"half a part")
    kept = {
        path: path.stat().st_mtime_ns
        for path in (output / SHARD_DIR).glob("part-*.parquet")
        if int(path.name[5:10]) not in lost
    }
    with _cluster(2) as cluster:
        summary = _run_on(cluster, folder)
    assert summary["output"] == str(output)
    generation = read_manifest(output)["generation"]
    assert generation["parts_kept"] == n_parts - len(lost)
    assert {path: path.stat().st_mtime_ns for path in kept} == kept  # not written again
    assert _files(output) == before  # the missing parts made again as they were
