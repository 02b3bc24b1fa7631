"""Data-parallel training for real: two CPU processes on the gloo backend.

The job tests launch torchrun (``python -m torch.distributed.run``) as a subprocess with a probe
(``tests/ddp_probe/sitecustomize.py``) that records, per rank, which files the rank wrote and a
hash of its parameters after training. The gradient test starts its two processes with
``torch.multiprocessing.spawn``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
import torch

from augment.core.shards import read_manifest, read_shards
from augment.image.shards import read_image_shards
from tests.conftest import write_config

ROOT = Path(__file__).resolve().parents[2]
PROBE = ROOT / "tests" / "ddp_probe"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def probe_env(tmp_path: Path, probe_dir: Path, **extra: str) -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(PROBE), str(ROOT), os.environ.get("PYTHONPATH")]))
    return {
        **os.environ,
        "PYTHONPATH": path,
        "OMP_NUM_THREADS": "1",
        "NO_ALBUMENTATIONS_UPDATE": "1",
        "AUGMENT_PROBE_DIR": str(probe_dir),
        "AUGMENT_PROBE_ROOT": str(tmp_path),
        **extra,
    }


def torchrun(config: Path, env: dict[str, str], *options: str) -> subprocess.CompletedProcess:
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(free_port()),
        "-m",
        "augment.pipeline.distributed",
        str(config),
        *options,
    ]
    return subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False
    )


def probe_records(probe_dir: Path) -> list[dict]:
    return [json.loads((probe_dir / f"rank-{r}.json").read_text()) for r in (0, 1)]


def test_two_ranks_train_one_tabular_gan_and_resume_after_a_crash(tmp_path, mlflow_uri):
    name = "ddp_tabular"
    config = write_config(
        tmp_path,
        mlflow_uri,
        name=name,
        validate={"classifiers": ["logistic"], "smote": False, "fidelity": False, "min_lift": -1},
    )
    out = tmp_path / "out"
    checkpoint = out / "checkpoints" / "unit-all.pt"

    # -- a crash on rank 0 at step 15: the checkpoint of step 10 stays, no _SUCCESS ----------------
    # (tracking is no part of the checkpoint's fingerprint; off here to save time)
    crash_env = probe_env(tmp_path, tmp_path / "probe-crash", AUGMENT_PROBE_CRASH_AT="15")
    crashed = torchrun(config, crash_env, "--set", "tracking.enabled=false")
    assert crashed.returncode != 0
    assert "simulated crash at step 15" in crashed.stderr + crashed.stdout
    assert checkpoint.is_file() and not (out / "_SUCCESS").exists()

    # -- the rerun: both ranks resume from rank 0's checkpoint --------------------------------------
    done = torchrun(config, probe_env(tmp_path, tmp_path / "probe"))
    assert done.returncode == 0, done.stderr[-3000:]
    rank0, rank1 = probe_records(tmp_path / "probe")
    assert [fit["resumed_from"] for fit in (*rank0["fits"], *rank1["fits"])] == [10, 10]
    assert [fit["steps"] for fit in (*rank0["fits"], *rank1["fits"])] == [30, 30]
    # DDP kept the replicas in sync: generator and critic parameters are identical on both ranks
    assert rank0["fits"][0]["parameters"] == rank1["fits"][0]["parameters"]

    # only rank 0 wrote: checkpoints, model, shards, manifest and _SUCCESS; rank 1 nothing at all
    assert rank1["writes"] == []
    written = {
        Path(path).relative_to(out).as_posix() for _, path in rank0["writes"] if str(out) in path
    }
    expected = {"checkpoints/unit-all.pt", "model/synthesizer.pt", "synthetic", "manifest.json"}
    assert expected | {"_SUCCESS", "holdout_ids.json"} <= written

    # exact counts, and the world size on record
    manifest = read_manifest(out)
    shards = read_shards(out)
    assert manifest["counts_generated"] == {"benign": 0, "malignant": 225}
    assert shards["target"].value_counts().to_dict() == {"malignant": 225}
    assert sum(f["rows"] for f in manifest["files"]) == 225
    training = manifest["training"]
    assert (training["world_size"], training["effective_batch_size"]) == (2, 64)
    assert [unit["resumed_from"] for unit in training["units"]] == [10]

    # one MLflow parent run, opened by rank 0 only, with the world size and effective batch
    client = mlflow.MlflowClient(tracking_uri=mlflow_uri)
    experiment = client.get_experiment_by_name(name)
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert [r.info.status for r in parents] == ["FINISHED"]
    finished = parents[0]
    assert finished.data.params["train.world_size"] == "2"
    assert finished.data.params["train.effective_batch_size"] == "64"
    assert manifest["mlflow"]["run_id"] == finished.info.run_id
    children = {
        r.data.tags["mlflow.runName"]
        for r in runs
        if r.data.tags.get("mlflow.parentRunId") == finished.info.run_id
    }
    assert {"train", "generate", "validate"} <= children


def test_augment_train_nproc_2_trains_the_image_gan_over_two_processes(tmp_path):
    from tests.integration.test_image_job import image_config

    config = image_config(
        tmp_path, None, name="ddp_images", validate={"min_lift": -1.0}, model={"recipe": "mix"}
    )
    probe_dir = tmp_path / "probe"
    done = subprocess.run(
        [sys.executable, "-m", "augment.cli", "train", str(config), "--nproc", "2"],
        cwd=ROOT,
        env=probe_env(tmp_path, probe_dir),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "validation passed" in done.stdout  # the CLI printed rank 0's summary

    rank0, rank1 = probe_records(probe_dir)
    assert len(rank0["fits"]) == len(rank1["fits"]) == 1
    # generator, EMA, discriminator (spectral norm, aux head) identical on both ranks
    assert rank0["fits"][0]["parameters"] == rank1["fits"][0]["parameters"]
    assert rank1["writes"] == [] and rank0["writes"]

    out = tmp_path / "out"
    manifest = read_manifest(out)
    images, labels, _ = read_image_shards(out)
    generated = {int(k): v for k, v in manifest["counts_generated"].items() if v}
    assert sum(generated.values()) > 0 and len(images) == sum(generated.values())
    assert pd.Series(labels).value_counts().to_dict() == generated
    assert manifest["training"]["world_size"] == 2


def test_ddp_averages_penalty_gradients_keeps_replicas_equal_and_resumes_exactly(tmp_path):
    import torch.multiprocessing as mp

    from tests.integration.ddp_worker import gradient_worker

    # the critic's hand-made gradients (penalty included) are averaged over ranks;
    # a resumed DDP run equals an uninterrupted one; rank 0's errors reach every rank
    mp.spawn(gradient_worker, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)


def test_without_a_process_group_nothing_is_wrapped():
    from augment.core import ddp

    module = torch.nn.Linear(2, 2)
    assert ddp.world_size() == 1 and ddp.rank() == 0 and ddp.is_main()
    assert ddp.wrap(module) is module
    assert ddp.rank_seed(7) == 7
    assert ddp.from_main(lambda: 42) == 42


def test_augment_train_refuses_a_bad_config_before_starting_any_process(tmp_path):
    from typer.testing import CliRunner

    from augment.cli import app

    config = write_config(tmp_path, None, train={"stepz": 3})
    result = CliRunner().invoke(app, ["train", str(config), "--nproc", "2"])
    assert result.exit_code == 2
    assert "train.stepz: unknown key" in result.output
