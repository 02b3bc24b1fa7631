"""The balancing job as Prefect flows: each task is one library call from ``augment.pipeline.job``.

Run it as a module (no Prefect server needed; Prefect starts a temporary local one)::

    python -m flows.balance configs/breast_cancer.yaml --set train.steps=300 [--force]
    python -m flows.balance configs/wine.yaml configs/breast_cancer.yaml   # several jobs

or from the CLI with ``augment run CONFIG... --engine prefect``. Both first apply
``local_server_defaults`` (a startup timeout for that temporary server that fits a busy machine,
and no Prefect telemetry) unless the user set those settings.

- ``balance_flow`` (one config) loads the config and runs the ``augment-job`` subflow with the
  task runner that the config's ``orchestration`` section names; a subflow, so that a deployment
  (which loads this module's ``balance_flow`` from its entrypoint) honours the config too. In
  ``per_class`` mode every class is its own ``fit`` task, spread over the task runner's workers.
- ``balance_many_flow`` (several configs) runs each whole job as one ``job`` task on the task
  runner of the first config, so several datasets train side by side on Dask workers.
- The steps that touch storage or the tracking server (start, load, reuse, assemble, generate,
  validate, finish) retry with exponential backoff (``orchestration.retries`` and
  ``retry_delay_seconds``); bad input (an ``AugmentError``) is never retried. ``fit`` is not
  retried; the fitted generator is saved (output folder and cache) before any later step runs,
  so a retried generate or finish never retrains.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
from typing import Any

from prefect import Task, flow, task
from prefect.cache_policies import NO_CACHE
from prefect.context import refresh_global_settings_context
from prefect.settings import get_current_settings
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner
from prefect.tasks import exponential_backoff

from augment.core.config import JobConfig, OrchestrationConfig
from augment.core.errors import AugmentError
from augment.pipeline import job
from augment.pipeline.config import load_config

# Job state (DataFrames, models, an MLflow client) passes between tasks in memory; Prefect caches
# and persists nothing here. Reruns are cached by the library (augment/cache.py) instead.
_task = {"cache_policy": NO_CACHE, "persist_result": False}


# Prefect settings for the temporary local server ("ephemeral server") that Prefect starts in this
# process when no PREFECT_API_URL is set, as environment variables (subprocesses inherit them):
# Prefect waits 20 s by default for it to answer, and on two busy cores its start (with the
# migrations of a new database) can take longer; and it sends no anonymous usage data (the
# server's and, with no API URL, the client's analytics follow this one setting).
LOCAL_SERVER_DEFAULTS = {
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": (
        "server.ephemeral.startup_timeout_seconds",
        "120",
    ),
    "PREFECT_SERVER_ANALYTICS_ENABLED": ("server.analytics_enabled", "false"),
}


def local_server_defaults() -> dict[str, str]:
    """Apply ``LOCAL_SERVER_DEFAULTS`` to the settings the user left unset; returns those applied.

    A value the user chose anywhere Prefect reads settings (environment, profile, ``.env``,
    ``prefect.toml``) is kept. Call it before the first flow run starts the server, outside any
    ``temporary_settings`` block (it updates Prefect's process-wide settings).
    """
    settings = get_current_settings()
    applied = {}
    for name, (path, value) in LOCAL_SERVER_DEFAULTS.items():
        *sections, field = path.split(".")
        if field not in functools.reduce(getattr, sections, settings).model_fields_set:
            os.environ[name] = applied[name] = value
    if applied:
        refresh_global_settings_context()  # Prefect read the environment when it was imported
    return applied


def _transient(task_: Task, task_run: Any, state: Any) -> bool:
    """Retry condition: anything but our own typed errors, which mean bad input, not bad luck."""
    error = state.result(raise_on_failure=False)
    return not isinstance(error, AugmentError)


def retrying(step: Task, orchestration: OrchestrationConfig) -> Task:
    """``step`` with the retries and exponential backoff of the job's orchestration section."""
    return step.with_options(
        retries=orchestration.retries,
        retry_delay_seconds=exponential_backoff(orchestration.retry_delay_seconds),
        retry_jitter_factor=orchestration.retry_jitter_factor,
        retry_condition_fn=_transient,
    )


def task_runner_for(orchestration: OrchestrationConfig) -> TaskRunner:
    """The Prefect task runner the config names: sequential, a thread pool, or Dask."""
    if orchestration.task_runner == "sequential":
        return ThreadPoolTaskRunner(max_workers=1)
    if orchestration.task_runner == "threads":
        return ThreadPoolTaskRunner(max_workers=orchestration.threads)
    from prefect_dask import DaskTaskRunner

    if orchestration.dask_address:
        return DaskTaskRunner(address=orchestration.dask_address)
    # One thread per worker process: torch already uses the cores it is given (train.cpu_threads).
    return DaskTaskRunner(
        cluster_kwargs={
            "n_workers": orchestration.dask_workers,
            "threads_per_worker": 1,
            "processes": True,
        }
    )


@task(name="start", **_task)
def start(config: JobConfig, force: bool) -> job.JobContext:
    return job.start_job(config, force=force)


@task(name="load", **_task)
def load(ctx: job.JobContext) -> Any:
    return job.load_data(ctx)


@task(name="reuse", **_task)
def reuse(ctx: job.JobContext, data: Any) -> Any:
    return job.reuse_synthesizer(ctx, data)


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


@task(name="job", **_task)
def whole_job(config_path: str, overrides: list[str], force: bool) -> dict[str, Any]:
    """One whole job in the worker that runs this task (``balance_many_flow``)."""
    return job.run_job(load_config(config_path, overrides), force=force).summary()


@flow(name="augment-job", log_prints=True)
def job_flow(config: JobConfig, force: bool = False) -> dict[str, Any]:
    """Load -> plan -> reuse or fit (one task per unit) -> generate -> validate -> track."""
    orchestration = config.orchestration
    ctx = retrying(start, orchestration)(config, force)
    try:
        data = retrying(load, orchestration)(ctx)
        synthesizer = retrying(reuse, orchestration)(ctx, data)
        if synthesizer is None:
            futures = [fit.submit(ctx, data, classes) for classes in job.units_for(ctx, data)]
            fitted = [future.result() for future in futures]
            synthesizer = retrying(assemble, orchestration)(ctx, data, fitted)
        generation = retrying(generate, orchestration)(ctx, data, synthesizer)
        if config.validate_.enabled:
            report, fidelity = retrying(validate, orchestration)(ctx, data)
        else:
            report, fidelity = None, {}
        result = retrying(finish, orchestration)(ctx, data, generation, report, fidelity)
    except BaseException:
        job.fail_job(ctx)
        raise
    return result.summary()


@flow(name="augment-balance", log_prints=True)
def balance_flow(
    config_path: str, overrides: list[str] | None = None, force: bool = False
) -> dict[str, Any]:
    """Balance one dataset; returns the job summary. ``force`` trains even on a cache hit."""
    config = load_config(config_path, overrides or [])
    runner = task_runner_for(config.orchestration)
    return job_flow.with_options(task_runner=runner, flow_run_name=config.name)(config, force)


@flow(name="augment-jobs", log_prints=True)
def jobs_flow(config_paths: list[str], overrides: list[str], force: bool) -> list[dict[str, Any]]:
    futures = [
        retrying(whole_job, load_config(path, overrides).orchestration).submit(
            path, overrides, force
        )
        for path in config_paths
    ]
    return [future.result() for future in futures]


@flow(name="augment-balance-many", log_prints=True)
def balance_many_flow(
    config_paths: list[str], overrides: list[str] | None = None, force: bool = False
) -> list[dict[str, Any]]:
    """Balance several datasets in one flow run, each job a task on the first config's task
    runner (with ``task_runner: dask`` the jobs train side by side on the Dask workers).
    A retried job reuses its trained generator from the cache. Returns the summaries in order."""
    configs = [load_config(path, overrides or []) for path in config_paths]  # fail fast
    runner = task_runner_for(configs[0].orchestration)
    return jobs_flow.with_options(task_runner=runner)(
        list(config_paths), list(overrides or []), force
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="Run augment balancing jobs as a Prefect flow.")
    parser.add_argument("configs", nargs="+")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--force", action="store_true", help="Train even on a cache hit.")
    args = parser.parse_args()
    local_server_defaults()
    if len(args.configs) == 1:
        summaries = [balance_flow(args.configs[0], args.overrides, args.force)]
    else:
        summaries = balance_many_flow(args.configs, args.overrides, args.force)
    for summary in summaries:
        print(json.dumps({k: v for k, v in summary.items() if k != "metrics"}, indent=2))
    raise SystemExit(0 if all(summary["passed"] for summary in summaries) else 10)


if __name__ == "__main__":
    main()
