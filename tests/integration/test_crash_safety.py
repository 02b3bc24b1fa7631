"""Real processes stopped at bad moments: SIGKILL or Ctrl-C during training, SIGKILL while
writing shards. Each is followed by a rerun that must pick up where the dead job stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import torch
from typer.testing import CliRunner

from augment.cli import app
from augment.core.shards import LOCK, SHARD_DIR, SUCCESS, read_manifest, read_shards
from augment.core.train import CHECKPOINT_FORMAT
from tests.conftest import write_config

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def _wait_for(path: Path, job: subprocess.Popen, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert job.poll() is None, f"the job ended (exit {job.returncode}) before {path} appeared"
        assert time.monotonic() < deadline, f"{path} did not appear within {seconds} s"
        time.sleep(0.1)


def _long_training(tmp_path: Path) -> tuple[Path, Path, subprocess.Popen]:
    """Start a real job process that trains for long; return (config, checkpoint, process)."""
    path = write_config(
        tmp_path,
        None,
        train={"steps": 5000, "batch_size": 32, "checkpoint_every": 20, "progress": False},
        validate={"enabled": False},
    )
    job = subprocess.Popen(
        [sys.executable, "-m", "augment.cli", "run", str(path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # as from a terminal: a suite started in the background (`make test &`) ignores SIGINT,
        # the child would inherit that, and Python then installs no Ctrl-C handler at all
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    checkpoint = tmp_path / "out" / "checkpoints" / "unit-all.pt"
    _wait_for(checkpoint, job)
    return path, checkpoint, job


def test_sigkill_during_training_then_rerun_resumes(tmp_path):
    path, checkpoint, job = _long_training(tmp_path)
    job.kill()  # SIGKILL: no handler runs, nothing is cleaned up
    job.communicate(timeout=60)
    out = tmp_path / "out"
    assert not (out / SUCCESS).exists() and not (out / SHARD_DIR).exists()
    saved = torch.load(checkpoint, weights_only=True)
    assert saved["format"] == CHECKPOINT_FORMAT and saved["step"] >= 20

    # rerun without --overwrite: the dead job's lock is stale, training continues from the file
    result = runner.invoke(app, ["run", str(path), "--set", f"train.steps={saved['step'] + 20}"])
    assert result.exit_code == 0, result.output
    unit = read_manifest(out)["training"]["units"][0]
    assert unit["resumed_from"] == saved["step"]  # at most one checkpoint interval was lost
    assert unit["steps"] == saved["step"] + 20


def test_ctrl_c_saves_a_checkpoint_says_so_and_unlocks(tmp_path):
    path, checkpoint, job = _long_training(tmp_path)
    out = tmp_path / "out"
    try:
        first = torch.load(checkpoint, weights_only=True)["step"]
        time.sleep(1.0)  # let it train past the first checkpoint
        job.send_signal(signal.SIGINT)  # what Ctrl-C in a terminal sends
        _, stderr = job.communicate(timeout=120)
    finally:
        if job.poll() is None:
            job.kill()
    assert job.returncode == 130, stderr
    assert "interrupted" in stderr and "rerun to resume" in stderr
    assert "Traceback" not in stderr
    saved = torch.load(checkpoint, weights_only=True)
    assert saved["step"] > first  # the step reached at Ctrl-C, not only the last periodic one
    assert f"interrupted at step {saved['step']}" in stderr
    assert not (out / SUCCESS).exists() and not (out / LOCK).exists()

    # the rerun resumes from exactly that step
    result = runner.invoke(app, ["run", str(path), "--set", f"train.steps={saved['step'] + 10}"])
    assert result.exit_code == 0, result.output
    assert read_manifest(out)["training"]["units"][0]["resumed_from"] == saved["step"]


KILL_WHILE_WRITING = textwrap.dedent(
    """
    import os, signal, sys
    from augment.core import shards

    write_part = shards.ShardWriter._flush

    def write_then_die(self, n_rows):
        write_part(self, n_rows)
        if len(self.files) == 2:  # two parts are on disk in the staging folder
            os.kill(os.getpid(), signal.SIGKILL)

    shards.ShardWriter._flush = write_then_die
    from augment.cli import app

    app(["run", sys.argv[1]])
    """
)


def test_sigkill_while_writing_leaves_no_success_and_the_rerun_replaces_the_parts(tmp_path):
    path = write_config(
        tmp_path,
        None,
        train={"steps": 10, "batch_size": 32, "checkpoint_every": 5, "progress": False},
        output={"path": str(tmp_path / "out"), "rows_per_shard": 20},
        validate={"enabled": False},
    )
    out = tmp_path / "out"
    job = subprocess.run(
        [sys.executable, "-c", KILL_WHILE_WRITING, str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert job.returncode == -signal.SIGKILL, job.stderr
    staging = list(out.glob(f".{SHARD_DIR}.tmp-*"))
    assert len(staging) == 1 and len(list(staging[0].glob("part-*.parquet"))) == 2
    assert not (out / SUCCESS).exists() and not (out / "manifest.json").exists()
    assert not (out / SHARD_DIR).exists()  # nothing under the final name
    assert (out / LOCK).exists()  # the dead job's lock is left behind ...

    result = runner.invoke(app, ["run", str(path)])  # ... and taken over: no --overwrite needed
    assert result.exit_code == 0, result.output
    assert not list(out.glob(f".{SHARD_DIR}.tmp-*"))  # the half-written parts are gone
    manifest = read_manifest(out)
    rows = read_shards(out)  # sha256 and row counts checked against the manifest
    assert len(rows) == sum(manifest["counts_generated"].values()) > 40
    # the model was kept: it went to the cache right after training, so nothing is retrained
    assert manifest["cache"]["hit"] is True and manifest["training"]["units"] == []
    assert not (out / LOCK).exists() and os.listdir(out)
