"""The shard commit protocol: parts, then manifest, then _SUCCESS; nothing half-written."""

import numpy as np
import pandas as pd
import pytest

from augment.core.errors import DataError, OutputError
from augment.core.shards import (
    SHARD_DIR,
    SUCCESS,
    ShardWriter,
    finalize,
    prepare_output,
    read_shards,
)


def _frame(n, start=0):
    return pd.DataFrame({"x": range(start, start + n), "label": ["a"] * n})


def test_rows_per_shard_and_round_trip(tmp_path):
    out = prepare_output(tmp_path / "run", overwrite=False)
    with ShardWriter(out, rows_per_shard=10) as writer:
        for i in range(5):
            writer.write(_frame(7, start=7 * i))
        files = writer.commit()
    assert [f["rows"] for f in files] == [10, 10, 10, 5]
    finalize(out, {"files": files})
    back = read_shards(out)
    assert back["x"].tolist() == list(range(35))


def test_failure_mid_write_leaves_nothing_under_final_names(tmp_path):
    out = prepare_output(tmp_path / "run", overwrite=False)
    with pytest.raises(RuntimeError, match="boom"), ShardWriter(out, rows_per_shard=4) as writer:
        writer.write(_frame(10))  # two parts already written into staging
        raise RuntimeError("boom")
    assert not (out / SHARD_DIR).exists()
    assert not (out / SUCCESS).exists()
    assert not list(out.glob(".synthetic.tmp-*"))  # staging removed
    with pytest.raises(DataError, match="no _SUCCESS"):
        read_shards(out)


def test_stale_staging_from_a_killed_run_is_cleaned(tmp_path):
    out = tmp_path / "run"
    stale = out / ".synthetic.tmp-dead"
    stale.mkdir(parents=True)
    (stale / "part-00000.parquet").write_bytes(b"half")
    (out / "checkpoints").mkdir()
    (out / "checkpoints" / "unit-all.pt").write_bytes(b"kept")
    leftovers = [
        out / "checkpoints" / ".unit-all.pt.k2j3h4.tmp",  # a checkpoint save cut short
        out / ".synthesizer.pt.x8y9.tmp",  # the model file
        out / ".manifest.json.tmp-0a1b2c3d",  # a JSON file
    ]
    for leftover in leftovers:
        leftover.write_bytes(b"half")
    prepare_output(out, overwrite=False)
    assert not stale.exists()
    assert not any(leftover.exists() for leftover in leftovers)
    assert (out / "checkpoints" / "unit-all.pt").read_bytes() == b"kept"  # kept for resume


def test_finished_run_needs_overwrite(tmp_path):
    out = prepare_output(tmp_path / "run", overwrite=False)
    with ShardWriter(out, rows_per_shard=4) as writer:
        writer.write(_frame(3))
        files = writer.commit()
    finalize(out, {"files": files})
    with pytest.raises(OutputError, match="--overwrite"):
        prepare_output(out, overwrite=False)
    prepare_output(out, overwrite=True)
    assert not (out / SUCCESS).exists() and not (out / SHARD_DIR).exists()


def test_unwritable_output_is_an_output_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="is a file"):
        prepare_output(blocker, overwrite=False)
    with pytest.raises(OutputError, match="cannot write"):
        prepare_output(blocker / "sub", overwrite=False)


def test_tampered_shard_is_detected(tmp_path):
    out = prepare_output(tmp_path / "run", overwrite=False)
    with ShardWriter(out, rows_per_shard=100) as writer:
        writer.write(_frame(20))
        files = writer.commit()
    finalize(out, {"files": files})
    _frame(20, start=1).to_parquet(out / files[0]["path"])
    with pytest.raises(DataError, match="sha256"):
        read_shards(out)


def _write_lock(out, **holder):
    import json

    out.mkdir(parents=True, exist_ok=True)
    (out / ".augment.lock").write_text(json.dumps(holder))


def test_a_second_job_on_the_same_output_is_refused(tmp_path):
    import os

    from augment.core.shards import OutputLock

    first = OutputLock(tmp_path / "run").acquire()
    with pytest.raises(OutputError, match=rf"in use by another augment job \(pid {os.getpid()}"):
        OutputLock(tmp_path / "run").acquire()
    first.release()
    assert not (tmp_path / "run" / ".augment.lock").exists()
    OutputLock(tmp_path / "run").acquire().release()  # free again


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    import socket
    import subprocess
    import sys

    from augment.core.shards import OutputLock

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    _write_lock(tmp_path / "run", host=socket.gethostname(), pid=gone.pid, time=0)
    lock = OutputLock(tmp_path / "run").acquire()
    assert lock.held
    lock.release()


def test_lock_from_another_host_is_respected(tmp_path):
    from augment.core.shards import OutputLock

    _write_lock(tmp_path / "run", host="some-other-host", pid=1, time=0)
    with pytest.raises(OutputError, match="pid 1 on some-other-host"):
        OutputLock(tmp_path / "run").acquire()


def test_read_shards_takes_columns_and_rows_part_by_part(tmp_path):
    """A sample of a large run is read one part at a time: the rows asked for, in order."""
    writer = ShardWriter(tmp_path, rows_per_shard=7)
    writer.write(pd.DataFrame({"x": np.arange(30), "y": np.arange(30) % 3}))
    writer.commit()
    take = np.array([0, 5, 6, 7, 13, 14, 20, 29])  # across part boundaries, first and last row
    part = read_shards(tmp_path, require_success=False, take=take)
    assert part["x"].tolist() == take.tolist() and part["y"].tolist() == (take % 3).tolist()
    only_y = read_shards(tmp_path, require_success=False, columns=["y"])
    assert list(only_y.columns) == ["y"] and len(only_y) == 30
    assert read_shards(tmp_path, require_success=False, take=np.array([], dtype=int)).empty
