"""Shared fixtures: small real datasets and a fast job config with a real MLflow sqlite store."""

from __future__ import annotations

import os

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import yaml  # noqa: E402


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
    """A fast image job: digits at 8x8, a tiny GAN, two CNN epochs, domain FID."""
    config = {
        "name": name,
        "data": {"source": "sklearn:digits", "kind": "image", "size": 8, "imbalance_ratio": 5},
        "model": {"width": 8, "noise_dim": 16},
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
