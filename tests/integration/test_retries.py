"""Retries with backoff in the Prefect flow: a transient failure after training never retrains."""

from __future__ import annotations

import augment.pipeline.parts
import augment.tracking
from augment.core.errors import DataError
from augment.core.shards import read_manifest
from tests.conftest import write_config


def _fail_once(monkeypatch, owner, name: str, error: BaseException) -> list[int]:
    """Make ``owner.name`` raise ``error`` on its first call only; returns the call log."""
    calls: list[int] = []
    real = getattr(owner, name)

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise error
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, flaky)
    return calls


def _config(tmp_path, mlflow_uri, **sections):
    return write_config(
        tmp_path,
        mlflow_uri,
        name="retried",
        train={"steps": 15},
        validate={"enabled": False},
        orchestration={"retries": 2, "retry_delay_seconds": 0.1, "retry_jitter_factor": None},
        **sections,
    )


def test_transient_failures_after_training_are_retried_without_retraining(
    tmp_path, mlflow_uri, prefect_api, monkeypatch, training_calls
):
    from flows.balance import balance_flow

    path = _config(tmp_path, mlflow_uri)
    writes = _fail_once(monkeypatch, augment.pipeline.parts, "_make_part", OSError("disk hiccup"))
    logs = _fail_once(
        monkeypatch,
        augment.tracking.JobTracker,
        "log_synthesizer",
        ConnectionError("tracking server went away"),
    )
    state = balance_flow(str(path), return_state=True)
    assert state.is_completed(), state
    summary = state.result()
    assert len(training_calls) == 1  # trained once
    assert len(writes) == 2 and len(logs) == 2  # the generate and finish tasks ran twice
    manifest = read_manifest(summary["output"])
    assert manifest["counts_generated"] == {"benign": 0, "malignant": 225}
    assert summary["model_uri"] and summary["mlflow_run_id"]


def test_bad_input_is_not_retried(tmp_path, prefect_api, monkeypatch, training_calls):
    from flows.balance import balance_flow

    path = _config(tmp_path, None)
    calls = _fail_once(monkeypatch, augment.pipeline.parts, "_make_part", DataError("bad rows"))
    state = balance_flow(str(path), return_state=True)
    assert state.is_failed()
    assert len(calls) == 1
    assert not (tmp_path / "out" / "_SUCCESS").exists()


def test_flow_reuses_the_cache_and_force_retrains(tmp_path, prefect_api, training_calls):
    from flows.balance import balance_flow

    path = _config(tmp_path, None)
    first = balance_flow(str(path))
    second = balance_flow(str(path), ["output.path=" + str(tmp_path / "second")])
    assert len(training_calls) == 1
    assert (first["cache_hit"], second["cache_hit"]) == (False, True)
    forced = balance_flow(str(path), ["output.path=" + str(tmp_path / "third")], force=True)
    assert len(training_calls) == 2 and forced["cache_hit"] is False
    assert len(forced["training"]) == 1
