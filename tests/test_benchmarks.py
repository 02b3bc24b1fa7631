"""The tabular benchmark script runs end to end in its quick mode (needs the ``bench`` extra)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
METHODS = {"none", "random_oversampling", "smote", "ctgan", "augment", "augment_quantile"}
DATASETS = ("breast_cancer", "wine")


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_quick_benchmark_prints_tables_and_writes_json(tmp_path: Path) -> None:
    pytest.importorskip("ctgan", reason="install the bench extra: pip install -e '.[bench]'")
    output = tmp_path / "tabular.json"
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.tabular", "--quick", "--output", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]

    assert "QUICK smoke test" in completed.stdout
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
