"""augment.tracking against a real sqlite MLflow store on disk.

Creating a sqlite store runs MLflow's migrations (several seconds), so the tests share one store
per module; each test still gets its own parent run. Run with
``python -m pytest tests/integration/test_tracking.py -q``.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from augment.core.errors import ModelFileError
from augment.tracking import JobTracker, resolve_tracking_uri

EXPERIMENT = "tracking-test"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mlflow-store")


@pytest.fixture
def tracker(store_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[JobTracker]:
    monkeypatch.chdir(store_dir)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    job = JobTracker(EXPERIMENT, run_name="job", tags={"job": "unit", "config_hash": "abc"})
    yield job
    job.end()


def read_artifact(job: JobTracker, run_id: str, artifact_path: str) -> bytes:
    local = mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path=artifact_path, tracking_uri=job.tracking_uri
    )
    return Path(local).read_bytes()


def artifact_names(client: MlflowClient, run_id: str, folder: str | None = None) -> set[str]:
    return {entry.path for entry in client.list_artifacts(run_id, folder)}


def test_default_store_is_sqlite_in_cwd_with_local_artifacts(
    tracker: JobTracker, store_dir: Path
) -> None:
    assert tracker.tracking_uri == f"sqlite:///{store_dir / 'mlflow.db'}"
    assert (store_dir / "mlflow.db").is_file()
    experiment = MlflowClient(tracker.tracking_uri).get_experiment(tracker.experiment_id)
    assert experiment.name == EXPERIMENT
    assert experiment.artifact_location == (store_dir / "mlartifacts").as_uri()
    assert tracker.run_url() == (
        f"{tracker.tracking_uri} experiment {tracker.experiment_id} run {tracker.run_id}"
    )


def test_parent_and_nested_runs(tracker: JobTracker) -> None:
    client = MlflowClient(tracker.tracking_uri)
    train_id = tracker.child("train")
    validate_id = tracker.child("validate")

    parent = client.get_run(tracker.run_id)
    assert parent.info.run_name == "job"
    assert parent.data.tags["job"] == "unit"
    for run_id, name in [(train_id, "train"), (validate_id, "validate")]:
        run = client.get_run(run_id)
        assert run.info.run_name == name
        assert run.info.experiment_id == tracker.experiment_id
        assert run.data.tags["mlflow.parentRunId"] == tracker.run_id
        assert run.info.status == "RUNNING"

    tracker.end(train_id)
    tracker.end(validate_id, status="FAILED")
    assert client.get_run(train_id).info.status == "FINISHED"
    assert client.get_run(validate_id).info.status == "FAILED"
    assert client.get_run(tracker.run_id).info.status == "RUNNING"
    with pytest.raises(ValueError, match="DONE"):
        tracker.end(status="DONE")


def test_context_manager_fails_open_runs_on_error(
    store_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(store_dir)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(RuntimeError), JobTracker(EXPERIMENT) as job:
        child_id = job.child("train")
        raise RuntimeError("boom")
    client = MlflowClient(job.tracking_uri)
    assert client.get_run(child_id).info.status == "FAILED"
    assert client.get_run(job.run_id).info.status == "FAILED"


def test_params_are_flattened_stringified_truncated_and_batched(tracker: JobTracker) -> None:
    many = {f"p{i:03d}": i for i in range(150)}  # more than one log_batch of 100 params
    tracker.log_params(
        {
            "train": {"lr": 0.001, "betas": (0.5, 0.9), "nested": {"depth": 3}},
            "balance": {"sampling_strategy": {"a": 10}},
            "long": "x" * 7000,
            "bad key!": "ok",
            "many": many,
        }
    )
    params = MlflowClient(tracker.tracking_uri).get_run(tracker.run_id).data.params
    assert params["train.lr"] == "0.001"
    assert params["train.betas"] == "(0.5, 0.9)"
    assert params["train.nested.depth"] == "3"
    assert params["balance.sampling_strategy.a"] == "10"
    assert params["long"] == "x" * 6000
    assert params["bad key_"] == "ok"
    assert params["many.p149"] == "149"
    assert len(params) == 6 + 150


def test_metrics_with_steps_skip_nan_and_none(tracker: JobTracker) -> None:
    child_id = tracker.child("validate")
    for step in range(3):
        tracker.log_metrics(
            {"lift/accuracy": 0.1 * step, "fid": float("nan"), "fid/class/a b": None},
            step=step,
            run_id=child_id,
        )
    tracker.log_metrics({"baseline/balanced_accuracy": np.float32(0.75)})

    client = MlflowClient(tracker.tracking_uri)
    history = client.get_metric_history(child_id, "lift/accuracy")
    assert [m.step for m in history] == [0, 1, 2]
    assert [m.value for m in history] == pytest.approx([0.0, 0.1, 0.2])
    assert set(client.get_run(child_id).data.metrics) == {"lift/accuracy"}
    parent_metrics = client.get_run(tracker.run_id).data.metrics
    assert parent_metrics["baseline/balanced_accuracy"] == pytest.approx(0.75)
    tracker.end(child_id)


def test_loss_callback_buffers_and_flushes(tracker: JobTracker) -> None:
    train_id = tracker.child("train")
    client = MlflowClient(tracker.tracking_uri)
    on_losses = tracker.loss_callback(train_id, every=3)

    def logged_steps() -> list[int]:
        return [m.step for m in client.get_metric_history(train_id, "loss/g")]

    on_losses(0, {"loss/d": 1.0, "loss/g": 2.0})
    on_losses(1, {"loss/d": 0.9, "loss/g": 1.8})
    assert logged_steps() == []  # buffered until the third call
    for step in range(2, 7):
        on_losses(step, {"loss/d": 1.0 / (step + 1), "loss/g": float("nan") if step == 4 else 1.0})
    assert logged_steps() == [0, 1, 2, 3, 5]  # two flushes of 3 calls; the NaN skipped
    on_losses.flush()
    assert logged_steps() == [0, 1, 2, 3, 5, 6]
    assert len(client.get_metric_history(train_id, "loss/d")) == 7
    on_losses.flush()  # nothing left: a no-op
    tracker.end(train_id)


def test_tags(tracker: JobTracker) -> None:
    tracker.set_tags({"validation": "passed", "rows": 42})
    tags = MlflowClient(tracker.tracking_uri).get_run(tracker.run_id).data.tags
    assert tags["validation"] == "passed"
    assert tags["rows"] == "42"


def test_text_file_and_table_artifacts(tracker: JobTracker, tmp_path: Path) -> None:
    tracker.log_text("name: demo\n", "config.yaml")
    manifest = tmp_path / "manifest.json"
    manifest.write_text('{"counts": {"a": 3}}')
    tracker.log_file(manifest, artifact_path="output")
    frame = pd.DataFrame({"class": ["a", "b"], "recall": [0.5, 0.75]})
    tracker.log_table(frame, "reports/lift.csv")

    client = MlflowClient(tracker.tracking_uri)
    assert {"config.yaml", "output", "reports"} <= artifact_names(client, tracker.run_id)
    assert read_artifact(tracker, tracker.run_id, "config.yaml") == b"name: demo\n"
    assert read_artifact(tracker, tracker.run_id, "output/manifest.json") == manifest.read_bytes()
    table = pd.read_csv(io.BytesIO(read_artifact(tracker, tracker.run_id, "reports/lift.csv")))
    pd.testing.assert_frame_equal(table, frame)
    with pytest.raises(FileNotFoundError):
        tracker.log_file(tmp_path / "missing.txt")


def test_class_histogram_and_confusion_pngs(tracker: JobTracker) -> None:
    validate_id = tracker.child("validate")
    tracker.log_class_histograms({"a": 100, "b": 10, "c": 3}, {"a": 100, "b": 100, "c": 100})
    classes = ["a", "b", "c"]
    confusion = {
        "baseline/logreg": np.array([[9, 1, 0], [2, 7, 1], [0, 3, 2]]),
        "augmented/logreg": np.array([[9, 1, 0], [1, 8, 1], [0, 1, 4]]),
    }
    tracker.log_confusion_matrices(confusion, classes, run_id=validate_id)

    client = MlflowClient(tracker.tracking_uri)
    assert "class_histogram.png" in artifact_names(client, tracker.run_id)
    assert read_artifact(tracker, tracker.run_id, "class_histogram.png").startswith(PNG_MAGIC)
    for key in confusion:
        png = read_artifact(tracker, validate_id, f"confusion/{key}.png")
        assert png.startswith(PNG_MAGIC)
    with pytest.raises(ValueError, match="shape"):
        tracker.log_confusion_matrices({"bad/shape": np.eye(2)}, classes, run_id=validate_id)
    tracker.end(validate_id)


def test_resolve_tracking_uri_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    default = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert resolve_tracking_uri(None) == default
    assert resolve_tracking_uri("") == default
    assert default.startswith("sqlite:////")  # an absolute path, not relative to a later cwd

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://from-env:5000")
    assert resolve_tracking_uri(None) == "http://from-env:5000"
    assert resolve_tracking_uri("http://from-config:5000") == "http://from-config:5000"

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "")
    assert resolve_tracking_uri(None) == default


def test_log_synthesizer_refuses_a_missing_file(tracker: JobTracker, tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="missing.pt"):
        tracker.log_synthesizer(tmp_path / "missing.pt", registered_model_name=None)


def test_synthesizer_model_roundtrip(
    tracker: JobTracker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from augment import GANOverSampler, load_synthesizer

    rng = np.random.default_rng(0)
    X = pd.DataFrame(
        {"amount": rng.gamma(2.0, 10.0, size=80), "age": rng.integers(18, 80, size=80)}
    )
    y = pd.Series(["normal"] * 64 + ["fraud"] * 16, name="label")
    # Tiny and fast: a few optimizer steps on CPU; quality does not matter here.
    sampler = GANOverSampler(steps=20, batch_size=32, device="cpu", random_state=0)
    sampler.fit_resample(X, y)
    model_file = tmp_path / "synthesizer.pt"
    sampler.save(model_file)
    assert len(load_synthesizer(model_file).sample({"fraud": 2})) == 2

    train_id = tracker.child("train")
    uri = tracker.log_synthesizer(model_file, registered_model_name="augment-test", run_id=train_id)
    assert uri.startswith("models:/augment-test/")

    client = MlflowClient(tracker.tracking_uri)
    # Logging the model must not end the run it is attached to, nor leak the fluent URI.
    assert client.get_run(train_id).info.status == "RUNNING"
    assert mlflow.active_run() is None
    assert "MLFLOW_TRACKING_URI" not in os.environ

    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracker.tracking_uri)  # for "models:/" lookups
    model = mlflow.pyfunc.load_model(uri)
    rows = model.predict(pd.DataFrame({"label": ["fraud"], "n": [5]}), params={"seed": 1})
    assert len(rows) == 5
    assert set(rows["label"]) == {"fraud"}
    assert {"amount", "age"} <= set(rows.columns)
    again = model.predict(pd.DataFrame({"label": ["fraud"], "n": [5]}), params={"seed": 1})
    pd.testing.assert_frame_equal(rows, again)
    tracker.end(train_id)
