"""The balancing job as a Prefect flow: each task is one library call from ``augment.job``.

Run it as a module (no Prefect server needed; Prefect starts a temporary local one)::

    python -m flows.balance configs/breast_cancer.yaml --set train.steps=300

or from the CLI with ``augment run CONFIG --engine prefect``. In ``per_class`` mode every class
is its own ``fit`` task, so a task runner can train them in parallel.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from augment import job
from augment.config import load_config

# Job state (DataFrames, models, an MLflow client) passes between tasks in memory; nothing is cached
# or persisted by Prefect here.
_task = {"cache_policy": NO_CACHE, "persist_result": False}


@task(name="start", **_task)
def start(config: Any) -> job.JobContext:
    return job.start_job(config)


@task(name="load", **_task)
def load(ctx: job.JobContext) -> Any:
    return job.load_data(ctx)


@task(name="fit", **_task)
def fit(ctx: job.JobContext, data: Any, classes: list[Any]) -> Any:
    return job.fit_unit_step(ctx, data, classes)


@task(name="assemble", **_task)
def assemble(ctx: job.JobContext, data: Any, fitted: list[Any]) -> Any:
    return job.assemble(ctx, data, fitted)


@task(name="generate", **_task)
def generate(ctx: job.JobContext, data: Any, synthesizer: Any) -> Any:
    return job.generate_step(ctx, data, synthesizer)


@task(name="validate", **_task)
def validate(ctx: job.JobContext, data: Any) -> Any:
    return job.validate_step(ctx, data)


@task(name="finish", **_task)
def finish(ctx: job.JobContext, data: Any, generation: Any, report: Any, fidelity: Any):
    return job.finish_job(ctx, data, generation, report, fidelity)


@flow(name="augment-balance", log_prints=True)
def balance_flow(config_path: str, overrides: list[str] | None = None) -> dict[str, Any]:
    """Load -> plan -> fit (one task per unit) -> generate -> validate -> track; returns a summary."""
    config = load_config(config_path, overrides or [])
    ctx = start(config)
    try:
        data = load(ctx)
        futures = [fit.submit(ctx, data, classes) for classes in job.units_for(ctx, data)]
        synthesizer = assemble(ctx, data, [future.result() for future in futures])
        generation = generate(ctx, data, synthesizer)
        report, fidelity = validate(ctx, data) if config.validate_.enabled else (None, {})
        result = finish(ctx, data, generation, report, fidelity)
    except BaseException:
        job.fail_job(ctx)
        raise
    return result.summary()


def main() -> None:
    parser = argparse.ArgumentParser(description="Run an augment balancing job as a Prefect flow.")
    parser.add_argument("config")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    summary = balance_flow(config_path=args.config, overrides=args.overrides)
    print(json.dumps({k: v for k, v in summary.items() if k != "metrics"}, indent=2, default=str))
    raise SystemExit(0 if summary["passed"] else 10)


if __name__ == "__main__":
    main()
