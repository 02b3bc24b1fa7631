"""Jobs reading from and writing to S3: a real S3-compatible server (moto) on loopback, reached
through s3fs with the standard AWS_* environment variables (see ``s3_endpoint`` in conftest)."""

from __future__ import annotations

import io
import json

import fsspec
import mlflow
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from augment.core import storage
from augment.core.errors import DataError, OutputError
from augment.core.shards import read_manifest, read_shards
from augment.image.shards import read_image_shards
from augment.pipeline.config import load_config
from augment.pipeline.job import run_job
from augment.tabular.sources import load_table
from tests.conftest import write_config


def _upload_breast_cancer(bucket: str) -> str:
    """breast_cancer as two Parquet files under one S3 prefix; returns the prefix URL."""
    frame = load_table("sklearn:breast_cancer", "target")
    fs = fsspec.filesystem("s3")
    for i, part in enumerate((frame.iloc[:300], frame.iloc[300:])):
        with fs.open(f"{bucket}/source/part-{i}.parquet", "wb") as stream:
            part.to_parquet(stream, index=False)
    return f"s3://{bucket}/source/"


def _record_writes(monkeypatch) -> list[str]:
    """Record the order in which files reach the store (the real writes still happen)."""
    written: list[str] = []
    write_bytes, write_many = storage.write_bytes, storage.write_many

    def recording_write_bytes(path, data):
        write_bytes(path, data)
        written.append(str(path))

    def recording_write_many(files):
        write_many(files)
        written.extend(str(path) for path in files)

    monkeypatch.setattr(storage, "write_bytes", recording_write_bytes)
    monkeypatch.setattr(storage, "write_many", recording_write_many)
    return written


def _objects(url: str) -> list[str]:
    fs = fsspec.filesystem("s3")
    root = url.removeprefix("s3://")
    return sorted(path[len(root) + 1 :] for path in fs.find(root))


def test_tabular_job_from_s3_to_s3(tmp_path, mlflow_uri, s3_bucket, monkeypatch):
    source = _upload_breast_cancer(s3_bucket)
    url = f"s3://{s3_bucket}/runs/s3job"
    config = load_config(
        write_config(
            tmp_path,
            mlflow_uri,
            name="s3job",
            data={"source": source},
            output={"path": f"s3://{s3_bucket}/runs/{{name}}", "rows_per_shard": 100},
            validate={"fidelity": False},
        )
    )
    config.output.work_dir = str(tmp_path / "work")
    written = _record_writes(monkeypatch)
    result = run_job(config)

    assert str(result.output) == url and result.summary()["output"] == url
    manifest = read_manifest(url)
    assert manifest["counts_generated"] == {str(k): v for k, v in result.plan.items()}
    shards = read_shards(url)
    generated = {k: v for k, v in manifest["counts_generated"].items() if v}
    assert shards["target"].value_counts().to_dict() == generated
    assert sum(generated.values()) > 100  # so that there are several parts
    assert [f["rows"] for f in manifest["files"]][:-1] == [100] * (len(manifest["files"]) - 1)
    assert list(shards.columns) == list(load_table(source, "target").columns)

    # commit order: every part, then the manifest, then _SUCCESS last
    names = [path.removeprefix(url + "/") for path in written]
    parts = [f["path"] for f in manifest["files"]]
    assert names[-2:] == ["manifest.json", "_SUCCESS"]
    assert max(names.index(p) for p in parts) < names.index("manifest.json")
    # what is on the store: the run and nothing else (no lock, no probe, no checkpoints)
    assert _objects(url) == sorted(
        [
            "_SUCCESS",
            "manifest.json",
            "report.html",
            "job.yaml",
            "holdout_ids.json",
            "model/synthesizer.pt",
            "synthetic/_parts/part-00000.json",  # the one part's record, after its files
            *parts,
        ]
    )
    # checkpoints stayed in the local work dir; the model file was uploaded from there
    assert sorted(p.name for p in (tmp_path / "work" / "checkpoints").iterdir()) == ["unit-all.pt"]
    local_model = (tmp_path / "work" / "model" / "synthesizer.pt").read_bytes()
    assert fsspec.filesystem("s3").cat(f"{url}/model/synthesizer.pt") == local_model

    client = mlflow.MlflowClient(mlflow_uri)
    run = client.get_run(manifest["mlflow"]["run_id"])
    assert run.data.tags["augment.output"] == url
    logged = mlflow.artifacts.load_text(f"{run.info.artifact_uri}/manifest.json")
    assert json.loads(logged) == manifest

    with pytest.raises(OutputError, match="already holds a finished run"):
        run_job(config)


def test_failure_mid_write_on_s3_then_rerun_succeeds(tmp_path, s3_bucket, monkeypatch):
    url = f"s3://{s3_bucket}/runs/flaky"
    config = load_config(
        write_config(
            tmp_path,
            None,
            name="flaky",
            output={"path": url, "rows_per_shard": 50, "work_dir": str(tmp_path / "work")},
            validate={"enabled": False},
        )
    )
    write_bytes = storage.write_bytes

    def connection_drops_on_the_second_part(path, data):
        if path.name == "part-00000-00001.parquet":
            raise ConnectionResetError(104, "Connection reset by peer")
        write_bytes(path, data)

    monkeypatch.setattr(storage, "write_bytes", connection_drops_on_the_second_part)
    with pytest.raises(ConnectionResetError):
        run_job(config)
    assert "_SUCCESS" not in _objects(url) and "manifest.json" not in _objects(url)
    assert not [name for name in _objects(url) if name.startswith("synthetic/")]  # aborted
    assert ".augment.lock" not in _objects(url)  # unlocked
    with pytest.raises(DataError, match="no _SUCCESS"):
        read_shards(url)

    # A process killed outright cannot clean up: leave a stale part as it would.
    fsspec.filesystem("s3").pipe(f"{url.removeprefix('s3://')}/synthetic/part-00009.parquet", b"x")
    monkeypatch.setattr(storage, "write_bytes", write_bytes)
    result = run_job(config)  # not finished before, so no --overwrite needed

    manifest = read_manifest(url)
    parts = sorted(f["path"] for f in manifest["files"])
    assert sorted(n for n in _objects(url) if n.startswith("synthetic/part-")) == parts
    generated = {k: v for k, v in manifest["counts_generated"].items() if v}
    assert read_shards(url)["target"].value_counts().to_dict() == generated
    assert generated == {str(k): v for k, v in result.plan.items() if v}


def test_image_job_from_s3_parquet_to_s3_with_png_files(tmp_path, s3_bucket):
    rng = np.random.default_rng(0)
    labels = [0] * 40 + [1] * 8
    pngs = []
    for label in labels:
        pixels = rng.integers(0, 80, (8, 8), dtype=np.uint8) + (150 if label else 0)
        buffer = io.BytesIO()
        Image.fromarray(pixels.astype(np.uint8)).save(buffer, format="PNG")
        pngs.append(buffer.getvalue())
    with fsspec.open(f"s3://{s3_bucket}/images/train.parquet", "wb") as stream:
        pd.DataFrame({"image": pngs, "label": labels}).to_parquet(stream)

    url = f"s3://{s3_bucket}/runs/img"
    path = tmp_path / "img.yaml"
    path.write_text(
        json.dumps(
            {
                "name": "img",
                "data": {
                    "source": f"s3://{s3_bucket}/images/train.parquet",
                    "kind": "image",
                    "size": 8,
                },
                "model": {
                    "width": 8,
                    "noise_dim": 16,
                    "autoencoder_steps": 5,
                    "choice_epochs": 1,
                },
                "train": {"steps": 5, "batch_size": 16, "checkpoint_every": 5, "progress": False},
                "output": {
                    "path": url,
                    "rows_per_shard": 10,
                    "image_files": True,
                    "work_dir": str(tmp_path / "work"),
                },
                "validate": {"enabled": False},
                "tracking": {"enabled": False},
            }
        )
    )
    result = run_job(load_config(path))

    manifest = read_manifest(url)
    images, got_labels, ids = read_image_shards(url)
    assert images.shape[1:] == (8, 8, 1)
    assert pd.Series(got_labels).value_counts().to_dict() == {1: result.plan[1]}
    pngs_on_store = [n for n in _objects(url) if n.startswith("images/")]
    assert sorted(pngs_on_store) == sorted(f"images/1/{i}.png" for i in ids)
    assert len(manifest["files"]) == -(-result.plan[1] // 10)
