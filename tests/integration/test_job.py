"""The whole tabular job against real components: Parquet on disk and an MLflow sqlite store."""

import json
from pathlib import Path

import mlflow
import pytest
import torch

from augment.core.shards import read_manifest, read_shards
from augment.pipeline.config import load_config
from augment.pipeline.job import run_job
from augment.pipeline.summary import print_summary
from augment.tabular.sources import load_table
from tests.conftest import write_config

ROOT = Path(__file__).resolve().parents[2]


def test_breast_cancer_job_end_to_end(tmp_path, mlflow_uri, capsys):
    config = load_config(write_config(tmp_path, mlflow_uri))
    result = run_job(config)

    manifest = read_manifest(result.output)
    # exact per-class counts, equal to the plan
    assert manifest["counts_generated"] == {str(k): v for k, v in result.plan.items()}
    assert sum(result.plan.values()) > 0
    shards = read_shards(result.output)
    assert shards["target"].value_counts().to_dict() == {
        k: v for k, v in manifest["counts_generated"].items() if v
    }
    # same columns and dtypes as the input
    source = load_table("sklearn:breast_cancer", "target")
    assert list(shards.columns) == list(source.columns)
    assert shards.dtypes.equals(source.dtypes)
    holdout = json.loads((result.output / "holdout_ids.json").read_text())
    assert holdout["row_ids"] and not set(holdout["row_ids"]) & set(holdout["train_row_ids"])

    # MLflow: parent run with nested runs, metrics, artifacts, a registered model
    client = mlflow.MlflowClient(mlflow_uri)
    run = client.get_run(manifest["mlflow"]["run_id"])
    for key in (
        "baseline/balanced_accuracy",
        "augmented/balanced_accuracy",
        "smote/balanced_accuracy",
        "lift/balanced_accuracy",
        "lift_vs_smote/balanced_accuracy",
        "fidelity/frechet",
        "fidelity/detection_auc",
        "fidelity/dcr/ratio",
    ):
        assert key in run.data.metrics, key
    minority = min(result.counts_before, key=result.counts_before.get)
    for key in (
        "fidelity/precision",
        "fidelity/recall",
        f"fidelity/precision/class/{minority}",
        f"fidelity/recall/class/{minority}",
    ):
        assert 0.0 <= run.data.metrics[key] <= 1.0, key
    print_summary(result.summary())
    out = " ".join(capsys.readouterr().out.split())
    metrics = run.data.metrics
    assert (
        f"quality precision {metrics['fidelity/precision']:.2f} · "
        f"recall {metrics['fidelity/recall']:.2f} (k-NN, encoded rows)"
    ) in out
    assert run.data.params["train.steps"] == "30"
    children = client.search_runs(
        [run.info.experiment_id], f"tags.mlflow.parentRunId = '{run.info.run_id}'"
    )
    names = {child.data.tags["mlflow.runName"] for child in children}
    assert {"train", "generate", "validate"} <= names
    train_run = next(c for c in children if c.data.tags["mlflow.runName"] == "train")
    losses = client.get_metric_history(train_run.info.run_id, "loss_d")
    assert len(losses) == 30
    artifacts = _artifact_paths(client, run.info.run_id)
    for expected in (
        "config/resolved.yaml",
        "manifest.json",
        "class_histogram.png",
        "validation/per_class.csv",
        "data/holdout_ids.json",
    ):
        assert expected in artifacts, (expected, artifacts)
    assert any(path.startswith("confusion/") for path in artifacts)
    versions = client.search_model_versions("name = 'augment-tiny'")
    assert versions


def _artifact_paths(client, run_id, path=None):
    found = []
    for item in client.list_artifacts(run_id, path):
        found += _artifact_paths(client, run_id, item.path) if item.is_dir else [item.path]
    return found


def test_same_seed_gives_byte_identical_shards(tmp_path):
    digests = []
    for attempt in ("a", "b"):
        folder = tmp_path / attempt
        folder.mkdir()
        result = run_job(load_config(write_config(folder, None, validate={"enabled": False})))
        digests.append([f["sha256"] for f in read_manifest(result.output)["files"]])
    assert digests[0] == digests[1]


def test_per_class_mode_on_wine(tmp_path):
    config = load_config(
        write_config(
            tmp_path,
            None,
            data={"source": "sklearn:wine", "imbalance_ratio": 5},
            model={"mode": "per_class"},
        )
    )
    result = run_job(config)
    manifest = read_manifest(result.output)
    needed = [c for c, n in result.plan.items() if n > 0]
    assert len(needed) == 2
    assert sorted(p.name for p in (result.output / "checkpoints").iterdir()) == sorted(
        f"unit-{['class_0', 'class_1', 'class_2'].index(c)}.pt" for c in needed
    )
    assert len(set(manifest["counts_after"].values())) == 1  # balanced


def test_a_crashed_run_resumes_from_its_last_checkpoint(tmp_path, monkeypatch):
    from augment.tabular.cgan import TabularGANTrainer

    path = write_config(tmp_path, None, validate={"enabled": False})
    real_step = TabularGANTrainer.train_step

    def crash_at_15(self, step):
        if step == 15:
            raise RuntimeError("simulated crash")
        return real_step(self, step)

    monkeypatch.setattr(TabularGANTrainer, "train_step", crash_at_15)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_job(load_config(path))
    out = tmp_path / "out"
    assert (out / "checkpoints" / "unit-all.pt").exists()
    assert not (out / "_SUCCESS").exists()

    monkeypatch.setattr(TabularGANTrainer, "train_step", real_step)
    from augment.pipeline.job import fit_unit_step, load_data, start_job

    ctx = start_job(load_config(path))  # no --overwrite needed: the first run never finished
    data = load_data(ctx)
    resumed, result = fit_unit_step(ctx, data, data.schema.classes)
    assert result.resumed_from == 10 and result.steps == 30  # lost at most one interval
    assert len(result.history) == 30

    # the resumed model is the one an uninterrupted run trains (RNG and optimizer states resume)
    (tmp_path / "clean").mkdir()
    clean = write_config(tmp_path / "clean", None, validate={"enabled": False})
    ctx = start_job(load_config(clean))
    data = load_data(ctx)
    reference, _ = fit_unit_step(ctx, data, data.schema.classes)
    for part in ("generator", "ema"):  # the trained weights and their average, which samples
        expected = getattr(reference, part).state_dict()
        for name, tensor in getattr(resumed, part).state_dict().items():
            assert torch.equal(tensor, expected[name]), f"{part}.{name}"


def test_more_steps_continue_and_overwrite_starts_afresh(tmp_path):
    path = write_config(tmp_path, None, validate={"enabled": False})
    first = run_job(load_config(path, ["train.steps=20"]))
    assert (first.output / "checkpoints" / "unit-all.pt").exists()
    from augment.pipeline.job import fit_unit_step, load_data, start_job

    ctx = start_job(load_config(path, ["train.steps=30", "output.overwrite=true"]))
    assert not (first.output / "checkpoints").exists()  # overwrite retrains
    data = load_data(ctx)
    _, result = fit_unit_step(ctx, data, data.schema.classes)
    assert result.resumed_from == 0 and result.steps == 30


def test_parquet_example_config_on_a_written_file(tmp_path, mixed_frame):
    source = tmp_path / "transactions.parquet"
    frame = mixed_frame.copy()
    frame.loc[3, "amount"] = None  # the example imputes missing values
    frame.to_parquet(source)
    config = load_config(
        ROOT / "configs" / "parquet_example.yaml",
        [
            f"data.source={source}",
            f"output.path={tmp_path / 'out'}",
            "train.steps=20",
            "tracking.enabled=false",
            "validate.classifiers=[logistic]",
        ],
    )
    result = run_job(config)
    shards = read_shards(result.output)
    expected = mixed_frame.drop(columns="label").dtypes
    assert shards.drop(columns="label").dtypes.equals(expected)
    assert set(shards["channel"]) <= set(mixed_frame["channel"])
    before = result.counts_before
    assert before["common"] == 70 and before["rare"] == 14  # 30% stratified holdout
    assert shards["label"].value_counts().to_dict() == {"rare": 70 - 14}


@pytest.mark.parametrize("strategy", ["minority", {"malignant": 100}])
def test_strategies_through_the_job(tmp_path, strategy):
    config = load_config(
        write_config(
            tmp_path, None, balance={"sampling_strategy": strategy}, validate={"enabled": False}
        )
    )
    result = run_job(config)
    target = 100 if isinstance(strategy, dict) else result.counts_before["benign"]
    assert result.counts_after["malignant"] == target


def test_nothing_to_generate_still_finishes_cleanly(tmp_path):
    # the dict names the majority at its own size: the plan is all zeros, no GAN is trained
    config = load_config(
        write_config(tmp_path, None, balance={"sampling_strategy": {"benign": 250}})
    )
    result = run_job(config)
    assert result.plan == {"benign": 0, "malignant": 0}
    manifest = read_manifest(result.output)
    assert manifest["files"] == [] and manifest["counts_after"] == manifest["counts_before"]
    assert result.passed and any("no synthetic rows" in note for note in result.notes)


def test_job_refuses_an_output_in_use_and_unlocks_when_done(tmp_path):
    from augment.core.errors import OutputError
    from augment.core.shards import OutputLock

    config = load_config(write_config(tmp_path, None, validate={"enabled": False}))
    holder = OutputLock(tmp_path / "out").acquire()
    with pytest.raises(OutputError, match="in use by another augment job"):
        run_job(config)
    holder.release()
    run_job(config)
    assert not (tmp_path / "out" / ".augment.lock").exists()


def test_privacy_floor_and_measures_through_the_job(tmp_path, mlflow_uri, capsys):
    """generate.privacy_floor redraws rows and says so; the privacy measures (against the
    holdout, per class and row source) reach the summary, report.html and MLflow."""
    config = load_config(write_config(tmp_path, mlflow_uri, generate={"privacy_floor": 0.1}))
    result = run_job(config)
    manifest = read_manifest(result.output)
    assert manifest["generator"]["privacy_floor"] == 0.1
    redrawn = manifest["generator"]["rows"]["redrawn"]
    assert sum(redrawn.values()) > 0
    assert manifest["counts_generated"] == {str(k): v for k, v in result.plan.items()}
    metrics = mlflow.MlflowClient(mlflow_uri).get_run(manifest["mlflow"]["run_id"]).data.metrics
    minority = min(result.counts_before, key=result.counts_before.get)
    for key in (
        "privacy/dcr_share",
        f"privacy/dcr_share/class/{minority}",
        "privacy/dcr_share/source/gan",
        "privacy/dcr_share/source/anchored",
        "privacy/memorised_share",
        "privacy/exact_copy_share",
        "privacy/dcr_overfitting_protection",
        "origin/redrawn",
    ):
        assert key in metrics, key
    assert metrics["privacy/exact_copy_share"] == 0.0
    page = (result.output / "report.html").read_text()
    assert 'id="privacy"' in page and "DCROverfittingProtection" in page
    print_summary(result.summary())
    out = " ".join(capsys.readouterr().out.split())
    assert f"DCR share {metrics['privacy/dcr_share']:.2f} vs unseen rows (GAN" in out
    assert "the privacy floor redrew" in out
