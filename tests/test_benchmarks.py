"""The benchmark scripts run end to end in their quick modes (the tabular one needs the ``bench`` extra)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
METHODS = {"none", "random_oversampling", "smote", "ctgan", "augment", "augment_quantile"}
DATASETS = ("breast_cancer", "wine")


def run_benchmark(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m <module> <args>`` from the repository root; it must exit 0."""
    completed = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    return completed


def _run_quick(module: str, output: Path) -> subprocess.CompletedProcess[str]:
    completed = run_benchmark(module, "--quick", "--output", str(output))
    assert "QUICK smoke test" in completed.stdout
    return completed


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_quick_benchmark_prints_tables_and_writes_json(tmp_path: Path) -> None:
    pytest.importorskip("ctgan", reason="install the bench extra: pip install -e '.[bench]'")
    output = tmp_path / "tabular.json"
    completed = _run_quick("benchmarks.tabular", output)
    header = (
        "| method | balanced acc | macro-F1 | minority recall | fit+sample s | speed vs CTGAN |"
    )
    assert completed.stdout.count(header) == len(DATASETS)
    for dataset in DATASETS:
        assert f"## {dataset}" in completed.stdout
    assert "## Targets" in completed.stdout

    results = json.loads(output.read_text())
    assert results["config"]["quick"] is True
    assert set(results["datasets"]) == set(DATASETS)
    for dataset in DATASETS:
        methods = results["datasets"][dataset]["methods"]
        assert set(methods) == METHODS
        for method in METHODS:
            summary = methods[method]["summary"]
            assert 0 <= summary["balanced_accuracy"]["mean"] <= 1
            assert summary["seconds"]["mean"] >= 0


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_quick_image_benchmark_prints_table_and_writes_json(tmp_path: Path) -> None:
    output = tmp_path / "images.json"
    completed = _run_quick("benchmarks.images", output)
    assert "| arm | CNN balanced acc | linear balanced acc |" in completed.stdout
    assert "## Targets" in completed.stdout
    results = json.loads(output.read_text())
    arms = {"none", "random_oversampling", "albumentations", "augment", "classic"}
    summary = results["summary"]["digits"]
    assert arms | {"augment+classic", "augment+classic, all synthetic"} == set(summary)
    for arm in arms:
        assert 0 <= summary[arm]["cnn"]["mean"] <= 1
    assert summary["augment"]["recipes"][0] in (
        "latent",
        "latent+warp",
        "mix",
        "mix+warp",
        "gan",
        "gan+warp",
    )
    assert results["generation_images_per_second"] > 0


def test_texture_patches_never_share_a_pixel_between_training_and_test() -> None:
    pytest.importorskip("skimage", reason="the texture set needs scikit-image (make .venv/.bench)")
    from benchmarks.texture_data import PATCH, SOURCES, texture_patches

    patches = texture_patches(train_per_class=20, test_per_class=10, seed=0)
    assert patches.train_images.shape == (20 * len(SOURCES), PATCH, PATCH, 1)
    assert patches.test_images.shape == (10 * len(SOURCES), PATCH, PATCH, 1)
    assert patches.train_images.dtype == np.uint8
    for cls, start in enumerate(patches.test_start):
        train_columns = patches.train_corners[patches.train_labels == cls, 1]
        test_columns = patches.test_corners[patches.test_labels == cls, 1]
        # a gap of one patch between the last training column and the first test column
        assert train_columns.max() + PATCH <= start - PATCH
        assert test_columns.min() >= start
    again = texture_patches(train_per_class=20, test_per_class=10, seed=0)
    assert np.array_equal(patches.test_images, again.test_images)


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_quick_image_benchmark_runs_on_textures(tmp_path: Path) -> None:
    pytest.importorskip("skimage", reason="the texture set needs scikit-image (make .venv/.bench)")
    output = tmp_path / "images.json"
    completed = run_benchmark(
        "benchmarks.images",
        "--sets",
        "textures",
        "--quick",
        "--no-throughput",
        "--output",
        str(output),
    )
    assert "## textures (32x32, imbalance 10:1" in completed.stdout
    summary = json.loads(output.read_text())["summary"]
    assert set(summary) == {"textures"}
    for arm in ("none", "augment", "classic", "augment+classic"):
        assert 0 <= summary["textures"][arm]["cnn"]["mean"] <= 1


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_quick_scale_benchmark_prints_table_and_writes_json(tmp_path: Path) -> None:
    output = tmp_path / "scale.json"
    completed = run_benchmark("benchmarks.scale", "--quick", "--output", str(output))
    assert "| case | generated | cap |" in completed.stdout
    results = json.loads(output.read_text())["results"]
    assert [r["case"] for r in results] == ["table", "image", "validate", "validate"]
    for row in results:
        assert row["peak_rss_mb"] > 0 and row["per_second"] > 0
    capped, uncapped = results[2], results[3]
    assert capped["cap"] == "5000" and uncapped["cap"] == "None"
    assert any("stratified sample" in note for note in capped["notes"])


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_quick_high_cardinality_benchmark_prints_table_and_writes_json(tmp_path: Path) -> None:
    output = tmp_path / "high_cardinality.json"
    completed = _run_quick("benchmarks.high_cardinality", output)
    assert "| mix | 50 |" in completed.stdout and "| gan | 2000 |" in completed.stdout
    runs = json.loads(output.read_text())["runs"]
    assert len(runs) == 8 and all(run["new_levels"] == 0 for run in runs)
    widths = {(run["generator"], run["max_levels"]): run["width"] for run in runs}
    assert widths[("mix", 50)] == 54 and widths[("mix", None)] > 1000
