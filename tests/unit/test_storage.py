"""Object storage through fsspec, on its in-process ``memory://`` filesystem: the shard commit
protocol without rename, the store-side lock, and readers of every source kind given a URL."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import fsspec
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from augment.core import storage
from augment.core.errors import ConfigError, DataError, OutputError
from augment.core.parts import cut_plan, remove_other_parts
from augment.core.shards import (
    LOCK,
    MANIFEST,
    SHARD_DIR,
    SUCCESS,
    OutputLock,
    ShardWriter,
    finalize,
    prepare_output,
    read_manifest,
    read_shards,
)
from augment.image.sources import load_images
from augment.pipeline.config import parse_config
from augment.tabular.sources import load_table

memfs = fsspec.filesystem("memory")


def _frame(n, start=0):
    return pd.DataFrame({"x": range(start, start + n), "label": ["a"] * n})


def _names(url: str) -> list[str]:
    root = storage.location(url).path
    return sorted(path[len(root) + 1 :] for path in memfs.find(root, withdirs=False))


def test_location_tells_local_paths_from_urls(tmp_path):
    assert storage.location(str(tmp_path)) == tmp_path
    assert storage.location(f"file://{tmp_path}") == tmp_path
    remote = storage.location("memory://bucket/run")
    assert storage.is_remote(remote) and str(remote) == "memory://bucket/run"
    assert str(remote / "manifest.json") == "memory://bucket/run/manifest.json"
    with pytest.raises(ConfigError, match="no fsspec filesystem handles nosuch://"):
        storage.location("nosuch://bucket/run")


def test_commit_protocol_on_a_store_without_rename(memory_root):
    url = f"{memory_root}/run"
    out = prepare_output(url, overwrite=False)
    assert storage.is_remote(out)
    with ShardWriter(out, rows_per_shard=10) as writer:
        for i in range(5):
            writer.write(_frame(7, start=7 * i))
        files = writer.commit()
    assert [f["rows"] for f in files] == [10, 10, 10, 5]
    with pytest.raises(DataError, match="no _SUCCESS"):
        read_shards(url)  # parts are there, but the run is not finished
    finalize(out, {"files": files})
    assert read_shards(url)["x"].tolist() == list(range(35))
    assert read_manifest(url)["files"] == files
    assert _names(url) == [SUCCESS, MANIFEST] + [f["path"] for f in files]


def test_failure_mid_write_on_a_store_leaves_no_parts_and_no_success(memory_root):
    url = f"{memory_root}/run"
    out = prepare_output(url, overwrite=False)
    with pytest.raises(RuntimeError, match="boom"), ShardWriter(out, rows_per_shard=4) as writer:
        writer.write(_frame(10))  # two parts already uploaded
        assert len(_names(url)) == 2
        raise RuntimeError("boom")
    assert _names(url) == []
    with pytest.raises(DataError, match="no _SUCCESS"):
        read_shards(url)


def test_rerun_on_a_store_removes_parts_of_a_crashed_run(memory_root):
    url = f"{memory_root}/run"
    memfs.pipe(f"{url}/{SHARD_DIR}/part-00007.parquet", b"half of a run before parts")
    memfs.pipe(f"{url}/{SHARD_DIR}/part-00003-00000.parquet", b"a part of another plan")
    memfs.pipe(f"{url}/{SHARD_DIR}/_parts/part-00003.json", b"{}")
    memfs.pipe(f"{url}/images/a/a-0000000.png", b"stale")
    out = prepare_output(url, overwrite=False)
    # image files go now; parts stay until generation knows its plan (a crashed run's finished
    # parts of the same plan are kept), and then go when they are not of it
    assert "images/a/a-0000000.png" not in _names(url)
    remove_other_parts(out, cut_plan({"a": 3}, part_rows=100, seed=0))
    assert _names(url) == []
    with ShardWriter(out, rows_per_shard=100) as writer:
        writer.write(_frame(3))
        files = writer.commit()
    finalize(out, {"files": files})
    assert [f["path"] for f in read_manifest(url)["files"]] == [f"{SHARD_DIR}/part-00000.parquet"]


def test_finished_run_on_a_store_needs_overwrite_which_drops_success_first(memory_root, tmp_path):
    url = f"{memory_root}/run"
    out = prepare_output(url, overwrite=False)
    with ShardWriter(out, rows_per_shard=4) as writer:
        writer.write(_frame(3))
        files = writer.commit()
    finalize(out, {"files": files})
    with pytest.raises(OutputError, match="--overwrite"):
        prepare_output(url, overwrite=False)
    work = tmp_path / "work"
    (work / "checkpoints").mkdir(parents=True)
    prepare_output(url, overwrite=True, work=work)
    assert _names(url) == []
    assert not (work / "checkpoints").exists()  # a replaced run trains afresh


def test_tampered_part_on_a_store_is_detected(memory_root):
    url = f"{memory_root}/run"
    out = prepare_output(url, overwrite=False)
    with ShardWriter(out, rows_per_shard=100) as writer:
        writer.write(_frame(20))
        files = writer.commit()
    finalize(out, {"files": files})
    buffer = io.BytesIO()
    _frame(20, start=1).to_parquet(buffer)
    memfs.pipe(f"{url}/{files[0]['path']}", buffer.getvalue())
    with pytest.raises(DataError, match="sha256"):
        read_shards(url)


def test_lock_on_a_store_is_exclusive_and_a_dead_holder_is_taken_over(memory_root):
    url = f"{memory_root}/run"
    first = OutputLock(url).acquire()
    with pytest.raises(OutputError, match=rf"in use by another augment job \(pid {os.getpid()}"):
        OutputLock(url).acquire()
    first.release()
    assert _names(url) == []

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    holder = {"host": socket.gethostname(), "pid": gone.pid, "time": 0}
    memfs.pipe(f"{url}/{LOCK}", json.dumps(holder).encode())
    taken = OutputLock(url).acquire()
    assert json.loads(memfs.cat(f"{url}/{LOCK}"))["pid"] == os.getpid()
    taken.release()


def test_tabular_sources_by_url(memory_root, mixed_frame):
    frame = mixed_frame.drop(columns=["tier"])
    with memfs.open(f"{memory_root}/table.csv", "wb") as stream:
        frame.to_csv(stream, index=False)
    for i, part in enumerate((frame.iloc[:50], frame.iloc[50:])):
        with memfs.open(f"{memory_root}/parts/day={i}/part.parquet", "wb") as stream:
            part.to_parquet(stream, index=False)

    from_csv = load_table(f"{memory_root}/table.csv", "label")
    from_parquet = load_table(f"{memory_root}/parts/", "label")
    assert len(from_csv) == len(from_parquet) == len(frame)
    assert from_parquet["label"].value_counts().to_dict() == {"common": 100, "rare": 20}
    assert from_csv["amount"].tolist() == pytest.approx(frame["amount"].tolist())
    with pytest.raises(DataError, match=f"{memory_root}/missing.parquet does not exist"):
        load_table(f"{memory_root}/missing.parquet", "label")


def _png(value: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((10, 10), value, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_image_sources_by_url(memory_root):
    labels = ["cat"] * 6 + ["dog"] * 3
    pngs = [_png(20 * i) for i in range(len(labels))]
    for i, (label, data) in enumerate(zip(labels, pngs, strict=True)):
        memfs.pipe(f"{memory_root}/folder/{label}/{i:03d}.png", data)
    with memfs.open(f"{memory_root}/images.parquet", "wb") as stream:
        pd.DataFrame({"image": pngs, "label": labels}).to_parquet(stream)
    arrays = np.stack([np.full((10, 10), 20 * i, dtype=np.uint8) for i in range(len(labels))])
    buffer = io.BytesIO()
    np.savez(buffer, images=arrays, labels=np.array(labels))
    memfs.pipe(f"{memory_root}/images.npz", buffer.getvalue())

    for name in ("folder", "images.parquet", "images.npz"):
        data = load_images(f"{memory_root}/{name}", size=8)
        assert data.images.shape == (9, 8, 8, 1), name
        assert data.class_counts() == {"cat": 6, "dog": 3}, name
    folder = load_images(f"{memory_root}/folder", size=8)
    assert folder.sources[0] == f"{memory_root}/folder/cat/000.png"


def test_storage_options_are_redacted_and_do_not_change_the_fingerprint(tmp_path):
    raw = {
        "name": "x",
        "data": {"source": "s3://b/in.parquet", "label": "y"},
        "output": {
            "path": "s3://b/runs/{name}",
            "storage_options": {
                "endpoint_url": "http://minio:9000",
                "key": "AKIA-SECRET",
                "secret": "very-secret",
                "client_kwargs": {"aws_session_token": "FwoGZX-session"},
            },
        },
    }
    config = parse_config(raw)
    text = config.to_yaml()
    for secret in ("AKIA-SECRET", "very-secret", "FwoGZX-session"):
        assert secret not in text
    assert "http://minio:9000" in text
    assert config.output.storage_options["key"] == "AKIA-SECRET"  # still handed to fsspec
    plain = parse_config({**raw, "output": {"path": "s3://b/runs/{name}"}})
    assert config.fingerprint() == plain.fingerprint()

    assert config.work_dir is not None and config.work_dir.name.startswith("x-")
    local = parse_config({**raw, "output": {"path": str(tmp_path)}})
    assert local.work_dir is None  # a local output keeps everything in itself
    with pytest.raises(ConfigError, match="output.work_dir: must be a local folder"):
        parse_config({**raw, "output": {"path": "s3://b/x", "work_dir": "s3://b/work"}})


def test_local_paths_keep_their_exact_behaviour(tmp_path):
    out = prepare_output(tmp_path / "run", overwrite=False)
    assert isinstance(out, Path) and not storage.is_remote(out)


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_folder_of_the_users_is_refused_and_left_alone(tmp_path, overwrite):
    out = tmp_path / "mine"
    (out / "notes").mkdir(parents=True)
    (out / "thesis.tex").write_text("do not touch")
    (out / "notes" / "a.txt").write_text("mine too")
    before = sorted(str(p.relative_to(out)) for p in out.rglob("*"))
    with pytest.raises(OutputError, match=r"holds no augment run \(notes, thesis.tex\)"):
        prepare_output(out, overwrite=overwrite)
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == before
    assert (out / "thesis.tex").read_text() == "do not touch"


def test_a_crashed_run_is_still_resumed_and_an_empty_folder_used(tmp_path, memory_root):
    crashed = tmp_path / "crashed"
    (crashed / "checkpoints").mkdir(parents=True)
    (crashed / "checkpoints" / "unit-all.pt").write_bytes(b"state")
    (crashed / "holdout_ids.json").write_text("{}")
    (crashed / f".{SHARD_DIR}.tmp-1234abcd").mkdir()
    assert prepare_output(crashed, overwrite=False) == crashed
    assert (crashed / "checkpoints" / "unit-all.pt").exists()  # kept for the resume
    (tmp_path / "empty").mkdir()
    prepare_output(tmp_path / "empty", overwrite=False)
    memfs.pipe(f"{memory_root}/theirs/report.pdf", b"%PDF")
    with pytest.raises(OutputError, match=r"holds no augment run \(report.pdf\)"):
        prepare_output(f"{memory_root}/theirs", overwrite=True)
    assert memfs.cat(f"{memory_root}/theirs/report.pdf") == b"%PDF"


def test_a_finished_output_says_how_to_overwrite_in_the_users_form(tmp_path):
    """The fix is written as YAML for a config file and as --set for the command line."""
    from augment.core.config import settings_as_command_line
    from augment.core.errors import OutputError

    (tmp_path / SUCCESS).write_text("")
    with pytest.raises(OutputError, match=r"output\.overwrite: true\)"):
        prepare_output(str(tmp_path), overwrite=False)
    with settings_as_command_line(), pytest.raises(OutputError) as refused:
        prepare_output(str(tmp_path), overwrite=False)
    assert "--set output.overwrite=true" in str(refused.value)
    assert "--set output.path=runs/{name}/{run_date}" in str(refused.value)
