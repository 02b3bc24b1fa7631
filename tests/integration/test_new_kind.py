"""A new kind of data is one Modality and one registry entry: the config union, the pipeline, the
manifest and load_synthesizer take it with no other change (docs/architecture.md)."""

from __future__ import annotations

from typing import Literal

import pytest

from augment import load_synthesizer
from augment.core.errors import ConfigError
from augment.core.shards import read_manifest
from augment.pipeline import registry
from augment.pipeline.config import parse_config
from augment.pipeline.job import run_job
from augment.tabular.config import TabularDataConfig, TabularJobConfig
from augment.tabular.modality import TabularModality


class RowsDataConfig(TabularDataConfig):
    kind: Literal["rows"] = "rows"  # type: ignore[assignment]


class RowsJobConfig(TabularJobConfig):
    data: RowsDataConfig


class RowsModality(TabularModality):
    """A stand-in third kind: tables under another name, with their own config model."""

    kind = "rows"
    config = RowsJobConfig


def test_a_registered_kind_runs_the_whole_job(tmp_path, monkeypatch):
    monkeypatch.setitem(registry.MODALITIES, "rows", RowsModality())
    raw = {
        "name": "rows",
        "data": {
            "source": "sklearn:breast_cancer",
            "label": "target",
            "kind": "rows",
            "imbalance_ratio": 10,
        },
        "model": {"generator_dims": [16], "discriminator_dims": [16]},
        "train": {"steps": 5, "batch_size": 32, "progress": False},
        "output": {"path": str(tmp_path / "out")},
        "validate": {"classifiers": ["logistic"], "fidelity": False},
        "tracking": {"enabled": False},
    }
    config = parse_config(raw)
    assert isinstance(config, RowsJobConfig)
    result = run_job(config)
    manifest = read_manifest(tmp_path / "out")
    assert manifest["kind"] == "rows"
    assert manifest["counts_generated"] == {"benign": 0, "malignant": 225}
    assert (
        "lift/balanced_accuracy" in result.metrics and "smote/balanced_accuracy" in result.metrics
    )
    rows = load_synthesizer(tmp_path / "out" / manifest["model_file"]).sample({"malignant": 4})
    assert len(rows) == 4
    # the other kinds' keys are still refused, and say where they belong
    raw["model"]["width"] = 8
    with pytest.raises(ConfigError, match=r"model\.width: applies only to data\.kind: image"):
        parse_config(raw)
