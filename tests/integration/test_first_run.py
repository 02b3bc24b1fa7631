"""The first run a user makes: a CSV without YAML, `augment init`, short output, short errors."""

from __future__ import annotations

import re

import pandas as pd
import pytest
import yaml
from sklearn.datasets import load_wine
from typer.testing import CliRunner

from augment.cli import app
from augment.core.shards import read_manifest

runner = CliRunner()


@pytest.fixture
def wine_csv(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # default output runs/<name> and mlflow.db land here
    frame = load_wine(as_frame=True).frame
    path = tmp_path / "wine.csv"
    frame.to_csv(path, index=False)
    return path


def test_a_csv_runs_without_yaml_and_leaves_a_job_yaml_to_repeat(wine_csv, tmp_path):
    args = ["run", str(wine_csv), "--label", "target"]
    result = runner.invoke(app, [*args, "--set", "train.steps=10", "--set", "validate.min_lift=-1"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert len(out.splitlines()) <= 40, out
    assert "Traceback" not in out
    # the roles it inferred, the plan, the verdict, and where everything is
    assert "13 continuous: alcohol" in out
    assert re.search(r"plan +0 \+\d+, 2 \+\d+", out), out
    assert "verdict" in out and "report " in out
    run = tmp_path / "runs" / "wine"
    manifest = read_manifest(run)
    assert manifest["counts_after"] == {"0": 50, "1": 50, "2": 50}  # every class at the majority
    # job.yaml repeats the job: the same data, label and settings
    job = yaml.safe_load((run / "job.yaml").read_text())
    assert job["data"]["source"] == str(wine_csv) and job["data"]["label"] == "target"
    assert job["train"]["steps"] == 10
    again = runner.invoke(app, ["run", str(run / "job.yaml"), "--overwrite"])
    assert again.exit_code == 0, again.output
    assert read_manifest(run)["counts_generated"] == manifest["counts_generated"]


def test_job_yaml_reruns_from_another_working_directory(wine_csv, tmp_path, monkeypatch):
    """A run started with relative paths (source, output, the default MLflow store) saves them
    absolute in job.yaml, so the rerun works from elsewhere and writes where the first one did."""
    quick = ["--set", "train.steps=10", "--set", "validate.enabled=false"]
    first = runner.invoke(app, ["run", "wine.csv", "--label", "target", *quick])
    assert first.exit_code == 0, first.output
    run = tmp_path / "runs" / "wine"
    before = read_manifest(run)
    job = yaml.safe_load((run / "job.yaml").read_text())
    assert job["data"]["source"] == str(wine_csv)
    assert job["output"]["path"] == str(run)
    assert job["tracking"]["uri"] == f"sqlite:///{tmp_path / 'mlflow.db'}"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    again = runner.invoke(app, ["run", str(run / "job.yaml"), "--overwrite"])
    assert again.exit_code == 0, again.output
    after = read_manifest(run)  # the rerun replaced the first run in its own folder
    assert after["mlflow"]["run_id"] != before["mlflow"]["run_id"]
    assert after["counts_generated"] == before["counts_generated"]
    assert "cache hit" in again.output  # the same cache, beside the same output
    assert list(elsewhere.iterdir()) == []  # no output, store or cache in the other folder


def test_init_writes_an_editable_yaml_with_the_inferred_roles(wine_csv, tmp_path):
    result = runner.invoke(app, ["init", str(wine_csv), "--label", "target"])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "wine.yaml").read_text()
    assert "#   alcohol: continuous" in text
    assert yaml.safe_load(text) == {
        "name": "wine",
        "data": {"source": str(wine_csv), "kind": "tabular", "label": "target"},
        # the label is in the registered model's name: each label of wine.csv has its own
        "tracking": {"model_name": "augment-wine-target"},
    }
    # not twice over the same file
    again = runner.invoke(app, ["init", str(wine_csv), "--label", "target"])
    assert again.exit_code == 2 and "exists" in again.output


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        ([], 2, "name its class column with --label"),
        (["--label", "tagret"], 3, "did you mean 'target'"),
        (["--label", "target", "--set", "train.stepz=3"], 2, "--set train.stepz=3: unknown key"),
    ],
)
def test_cli_errors_are_short_and_say_the_cause_first(wine_csv, args, code, message):
    result = runner.invoke(app, ["run", str(wine_csv), *args])
    assert result.exit_code == code, result.output
    error = result.output[result.output.index("error:") :]
    assert message in " ".join(error.split())  # rich wraps at 100 columns
    assert len(error.splitlines()) <= 6
    assert "Traceback" not in result.output


def test_an_unexpected_error_is_short_too_and_debug_shows_it(wine_csv, monkeypatch):
    from augment.pipeline import job

    def broken(*_args, **_kwargs):
        raise ZeroDivisionError("division by zero in a place nobody expected")

    monkeypatch.setattr(job, "generate_step", broken)
    args = ["run", str(wine_csv), "--label", "target", "--set", "train.steps=2"]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    error = result.output[result.output.index("error:") :]
    assert error.startswith("error: ZeroDivisionError: division by zero")
    assert len(error.splitlines()) <= 6 and "Traceback" not in result.output
    assert "--debug" in error
    debug = runner.invoke(app, ["--debug", *args, "--overwrite"])
    assert isinstance(debug.exception, ZeroDivisionError)


def test_a_missing_source_is_one_line(tmp_path):
    result = runner.invoke(app, ["run", str(tmp_path / "nope.csv"), "--label", "y"])
    assert result.exit_code == 3, result.output
    assert "does not exist" in " ".join(result.output.split())
    assert len(result.output[result.output.index("error:") :].splitlines()) <= 6


def test_guess_kind_tells_tables_from_image_folders(tmp_path):
    from PIL import Image

    from augment.pipeline.config import guess_kind

    for cls in ("cat", "dog"):
        (tmp_path / "pets" / cls).mkdir(parents=True)
        Image.new("L", (8, 8)).save(tmp_path / "pets" / cls / "0.png")
    pd.DataFrame({"a": [1], "y": [0]}).to_parquet(tmp_path / "t.parquet")
    assert guess_kind(str(tmp_path / "pets")) == "image"
    assert guess_kind(str(tmp_path / "t.parquet")) == "tabular"
    assert guess_kind("sklearn:digits") == "image"
    assert guess_kind("sklearn:wine") == "tabular"
