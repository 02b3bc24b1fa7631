"""Shared fixtures: small real datasets, a fast job config with a real MLflow sqlite store, and a
real S3-compatible server (moto) on loopback."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

# Prefect, set before it is imported (it reads its settings then) and inherited by every process a
# test starts. None of the developer's Prefect settings (API URL, profile, database) but the log
# level and the startup timeout; a home of its own for the session (a new sqlite database, the
# default profile). Flows then run on Prefect's ephemeral server, one per pytest process, which the
# `prefect_server` fixture (tests/integration/conftest.py) hands to subprocesses and Dask workers:
# the session's only Prefect server. Its start (a new database: migrations) can take longer than
# Prefect's default wait of 20 s on two busy cores. No usage data is sent.
for _key in [key for key in os.environ if key.startswith("PREFECT_")]:
    if _key not in ("PREFECT_LOGGING_LEVEL", "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"):
        del os.environ[_key]
_PREFECT_HOME = tempfile.mkdtemp(prefix="augment-tests-prefect-")
atexit.register(shutil.rmtree, _PREFECT_HOME, ignore_errors=True)  # after Prefect stops its server
os.environ["PREFECT_HOME"] = _PREFECT_HOME
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
if "prefect.context" in sys.modules:  # imported before this file (a plugin): make it read them
    sys.modules["prefect.context"].refresh_global_settings_context()

import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402
import uuid  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import yaml  # noqa: E402


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_healthy(url: str, process: subprocess.Popen, log: Path, seconds: float) -> None:
    """Poll ``url`` until it answers 200; fail with the end of ``log`` if the server dies first."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-3000:]
            pytest.fail(f"{process.args[:4]} did not answer on {url}:\n{tail}")
        time.sleep(0.5)


def stop_process_group(process: subprocess.Popen, grace: float = 30) -> None:
    """SIGTERM a process started with ``start_new_session=True`` and its children; SIGKILL late."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


@pytest.fixture(scope="session")
def s3_endpoint():
    """moto's S3 server on 127.0.0.1 for the whole session, reached the standard way.

    The ``AWS_*`` environment variables point s3fs (botocore) at it, exactly as a user points the
    job at MinIO or AWS; nothing in augment knows it is talking to a test server.
    """
    import s3fs
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    s3fs.S3FileSystem.clear_instance_cache()  # no client made before the variables were set
    try:
        yield endpoint
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        s3fs.S3FileSystem.clear_instance_cache()
        server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint) -> str:
    """A fresh, empty bucket on the session's S3 server; returns its name."""
    import fsspec

    name = f"test-{uuid.uuid4().hex[:12]}"
    fsspec.filesystem("s3").mkdir(name)
    return name


@pytest.fixture
def memory_root():
    """A unique ``memory://`` folder (fsspec's in-process filesystem), removed afterwards."""
    import fsspec

    root = f"memory://test-{uuid.uuid4().hex[:12]}"
    yield root
    fs = fsspec.filesystem("memory")
    if fs.exists(root):
        fs.rm(root, recursive=True)


# ImageGANOverSampler at its cheapest: tiny networks, a few steps of every model it may train
IMAGE_FAST = {
    "steps": 4,
    "batch_size": 16,
    "width": 4,
    "noise_dim": 8,
    "cpu_threads": 1,
    "autoencoder_steps": 4,
    "code_gan_steps": 4,
    "choice_epochs": 1,
}


def small_digits(counts: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits at 8x8, uint8 (N, 8, 8, 1): the first ``counts[c]`` of class c."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.rint(bunch.images * 255 / 16).astype(np.uint8)[..., None]
    picks = np.concatenate([np.flatnonzero(bunch.target == c)[:n] for c, n in enumerate(counts)])
    return images[picks], bunch.target[picks].astype(np.int64)


@pytest.fixture(scope="module")
def one_torch_thread():
    """torch on one thread for a module (small networks: threads only add overhead)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def mlflow_uri(tmp_path_factory) -> str:
    """One sqlite store for the session (creating its tables takes seconds)."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture
def mixed_frame() -> pd.DataFrame:
    """A small imbalanced table with every column kind: float, int, string, bool, category."""
    rng = np.random.default_rng(0)
    n = 120
    label = np.where(np.arange(n) < 100, "common", "rare")
    shift = (label == "rare").astype(float) * 2.0
    return pd.DataFrame(
        {
            "amount": rng.normal(10, 2, n) + shift,
            "visits": rng.integers(0, 500, n),
            "channel": rng.choice(["web", "shop", "phone"], n),
            "member": rng.random(n) > 0.5,
            "tier": pd.Categorical(rng.choice(["a", "b"], n)),
            "small_int": rng.integers(0, 3, n),
            "label": label,
        }
    )


def write_config(tmp_path: Path, mlflow_uri: str | None, **sections) -> Path:
    """A fast job config (few steps, tiny nets) under tmp_path; sections override defaults."""
    config = {
        "name": "tiny",
        "data": {"source": "sklearn:breast_cancer", "label": "target", "imbalance_ratio": 10},
        "model": {"generator_dims": [32], "discriminator_dims": [32], "max_modes": 3},
        "train": {"steps": 30, "batch_size": 32, "checkpoint_every": 10, "progress": False},
        "output": {"path": str(tmp_path / "out")},
        "validate": {"classifiers": ["logistic"]},
        "tracking": {"enabled": mlflow_uri is not None, "uri": mlflow_uri},
    }
    for section, values in sections.items():
        if isinstance(values, dict):
            config.setdefault(section, {}).update(values)
        else:
            config[section] = values
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def image_config(tmp_path, mlflow_uri, name="img", **sections):
    """A fast image job: digits at 8x8, tiny GANs (pixel and code), two CNN epochs, domain FID."""
    config = {
        "name": name,
        "data": {"source": "sklearn:digits", "kind": "image", "size": 8, "imbalance_ratio": 5},
        "model": {
            "width": 8,
            "noise_dim": 16,
            "autoencoder_steps": 10,
            "code_gan_steps": 20,
            "choice_epochs": 1,
        },
        "train": {"steps": 20, "batch_size": 32, "checkpoint_every": 10, "progress": False},
        "output": {"path": str(tmp_path / "out"), "rows_per_shard": 200},
        "validate": {"epochs": 2, "fid_extractor": "domain"},
        "tracking": {"enabled": mlflow_uri is not None, "uri": mlflow_uri, "grid_every": 10},
    }
    for section, values in sections.items():
        config.setdefault(section, {}).update(values)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path
