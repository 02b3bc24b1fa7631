"""Cached reruns: the same data and training settings reuse the trained generator."""

from __future__ import annotations

import mlflow
import pandas as pd
from typer.testing import CliRunner

from augment.cli import app
from augment.core.shards import read_manifest
from tests.conftest import write_config

runner = CliRunner()


def _train_runs(tracking_uri: str, parent_run_id: str) -> list[str]:
    client = mlflow.MlflowClient(tracking_uri)
    parent = client.get_run(parent_run_id)
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent_run_id}'"
    )
    return [
        c.data.tags["mlflow.runName"] for c in children if "train" in c.data.tags["mlflow.runName"]
    ]


def test_rerun_reuses_the_generator_until_data_or_settings_change(
    tmp_path, mixed_frame, mlflow_uri, training_calls
):
    source = tmp_path / "table.csv"
    mixed_frame.to_csv(source, index=False)
    path = write_config(
        tmp_path,
        mlflow_uri,
        name="cached",
        data={"source": str(source), "label": "label", "imbalance_ratio": None},
        validate={"enabled": False},
    )

    def run(*args: str) -> dict:
        result = runner.invoke(app, ["run", str(path), "--overwrite", *args])
        assert result.exit_code == 0, result.output
        return read_manifest(tmp_path / "out")

    first = run()
    assert len(training_calls) == 1 and first["cache"]["hit"] is False
    assert [unit["steps"] for unit in first["training"]["units"]] == [30]

    # same data, same settings, into the same output: nothing is trained, same shards
    again = runner.invoke(app, ["run", str(path), "--overwrite"])
    assert again.exit_code == 0, again.output
    assert "cache hit" in again.output
    second = read_manifest(tmp_path / "out")
    assert len(training_calls) == 1
    assert second["cache"] == {**first["cache"], "hit": True}
    assert second["training"]["units"] == []
    assert _train_runs(mlflow_uri, second["mlflow"]["run_id"]) == []
    assert _train_runs(mlflow_uri, first["mlflow"]["run_id"]) == ["train"]
    assert [f["sha256"] for f in second["files"]] == [f["sha256"] for f in first["files"]]
    assert second["counts_generated"] == first["counts_generated"]

    # keys that do not shape the model still hit: output layout, downstream classifiers
    run("--set", "output.rows_per_shard=7", "--set", "validate.classifiers=[random_forest]")
    assert len(training_calls) == 1

    # --force trains again (and refreshes the entry)
    forced = run("--force")
    assert len(training_calls) == 2
    assert forced["cache"]["hit"] is False and forced["cache"]["forced"] is True

    # a setting that shapes the model misses
    wider = run("--set", "model.generator_dims=[48]")
    assert len(training_calls) == 3 and wider["cache"]["key"] != first["cache"]["key"]

    # the same file with one value changed misses
    changed = pd.read_csv(source)
    changed.loc[3, "amount"] += 1.0
    changed.to_csv(source, index=False)
    edited = run()
    assert len(training_calls) == 4 and edited["cache"]["key"] != first["cache"]["key"]
    # ... and now that version of the data is cached too
    assert run()["cache"]["hit"] is True and len(training_calls) == 4


def test_cache_can_be_turned_off(tmp_path, training_calls):
    path = write_config(
        tmp_path, None, validate={"enabled": False}, cache={"enabled": False}, train={"steps": 10}
    )
    for _ in range(2):
        assert runner.invoke(app, ["run", str(path), "--overwrite"]).exit_code == 0
    assert len(training_calls) == 2
    assert not (tmp_path / ".augment-cache").exists()


def test_a_run_that_crashed_after_training_reruns_without_training(
    tmp_path, training_calls, monkeypatch
):
    """The fit is cached before generation; a crash during training leaves no entry, and its
    rerun resumes from the checkpoint as before (tests/integration/test_job.py)."""
    import augment.pipeline.job

    path = write_config(tmp_path, None, validate={"enabled": False}, train={"steps": 20})
    real = augment.pipeline.job.generate_step

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(augment.pipeline.job, "generate_step", crash)
    assert runner.invoke(app, ["run", str(path)]).exit_code == 130
    monkeypatch.setattr(augment.pipeline.job, "generate_step", real)
    # the generator was saved to the cache before generation: the rerun trains nothing
    assert runner.invoke(app, ["run", str(path)]).exit_code == 0
    assert len(training_calls) == 1
    assert read_manifest(tmp_path / "out")["cache"]["hit"] is True


def test_image_rerun_reuses_the_generator(tmp_path, training_calls, monkeypatch):
    import augment.image.latent
    from tests.conftest import image_config

    fits, real = [], augment.image.latent.fit_autoencoder

    def counting(*args, **kwargs):
        fits.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(augment.image.latent, "fit_autoencoder", counting)
    # training_calls counts image trainings too: every kind's fit goes through core.synthesizer
    path = image_config(tmp_path, None, validate={"enabled": False})
    first = runner.invoke(app, ["run", str(path)])
    assert first.exit_code == 0, first.output
    manifest = read_manifest(tmp_path / "out")
    # the default recipes draw from the code GAN: it is trained for the job and once more on
    # the inner training codes to judge the candidates; the pixel GAN is not trained
    assert len(training_calls) == 2 and sum(manifest["generator"]["rows"]["gan"].values()) > 0
    assert [u["model"] for u in manifest["training"]["units"]] == ["autoencoder", "code GAN"]
    again = runner.invoke(app, ["run", str(path), "--output", str(tmp_path / "again")])
    assert again.exit_code == 0, again.output
    rerun = read_manifest(tmp_path / "again")
    # the rerun takes the autoencoder, the code GAN and the recipe from the cache
    assert len(training_calls) == 2 and len(fits) == 1
    assert rerun["cache"]["hit"] is True
    assert rerun["recipe"]["recipe"] == manifest["recipe"]["recipe"]
    assert [f["sha256"] for f in rerun["files"]] == [f["sha256"] for f in manifest["files"]]
    # the cached model says how its recipe was chosen: the rerun's recipe line keeps the scores
    assert rerun["recipe"]["scores"] == manifest["recipe"]["scores"]
    recipe_line = [line for line in again.output.splitlines() if line.startswith("recipe")]
    assert recipe_line == [line for line in first.output.splitlines() if line.startswith("recipe")]
    assert "chosen on an inner split" in recipe_line[0]


def test_an_image_job_with_a_gan_recipe_trains_and_caches_the_gan(tmp_path, training_calls):
    from tests.conftest import image_config

    path = image_config(tmp_path, None, validate={"enabled": False}, model={"recipe": "mix"})
    assert runner.invoke(app, ["run", str(path)]).exit_code == 0
    again = runner.invoke(app, ["run", str(path), "--output", str(tmp_path / "again")])
    assert again.exit_code == 0, again.output
    assert len(training_calls) == 1 and read_manifest(tmp_path / "again")["cache"]["hit"] is True
