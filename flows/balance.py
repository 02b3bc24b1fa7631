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
- Every job publishes two artifacts on the flow run that ran it (``publish``): a markdown page
  keyed ``augment-<name>`` (the verdict, the holdout scores, the generator's origin, links to
  report.html and the MLflow run) and a table keyed ``augment-<name>-classes`` (counts and
  recall per class). The MLflow run is tagged with the flow run's id and address.
- A job that fails the do-no-harm gate (``validate.min_lift``) ends its flow run ``Failed`` with
  the verdict as the message, after writing all of its output; ``validate.gate_fails_flow:
  false`` keeps it ``Completed``. ``run_flows`` gives the summaries either way.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import logging
import os
import re
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from typing import Any

from prefect import Task, flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.context import refresh_global_settings_context
from prefect.logging.handlers import PrefectConsoleHandler
from prefect.runtime import flow_run
from prefect.settings import PREFECT_API_URL, get_current_settings, temporary_settings
from prefect.states import Failed, State
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner
from prefect.tasks import exponential_backoff
from prefect.utilities.urls import url_for

from augment.core.config import JobConfig, OrchestrationConfig, RunInfo
from augment.core.errors import AugmentError, ValidationFailed
from augment.core.parts import Part
from augment.pipeline import job
from augment.pipeline.config import load_config
from augment.pipeline.parts import PartsJob, groups, make_parts
from augment.pipeline.summary import (
    class_table,
    gate_message,
    summary_markdown,
    verdict_sentence,
)

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


# What keeps Prefect's and Dask's log lines off a terminal, as environment variables that the
# processes a flow run starts (the workers of a local Dask cluster) inherit: Prefect's console
# handler, where its loggers and the root logger print, lets only CRITICAL records through
# (the flow and task runs' logs still go to the Prefect API), and `distributed` logs errors only.
QUIET_TERMINAL = {
    "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "CRITICAL",
    "DASK_LOGGING__DISTRIBUTED": "error",
}


@contextlib.contextmanager
def quiet_terminal() -> Iterator[None]:
    """Keep Prefect's and Dask's log lines off the terminal while the block runs flows.

    The environment (``QUIET_TERMINAL``) is restored afterwards; this process's loggers stay
    quiet, since Prefect's temporary server says goodbye when the process exits.
    """
    saved = {name: os.environ.get(name) for name in QUIET_TERMINAL}
    os.environ.update(QUIET_TERMINAL)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, PrefectConsoleHandler):
            handler.setLevel(logging.CRITICAL)
    logging.getLogger("distributed").setLevel(logging.ERROR)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def api_for_workers() -> Iterator[None]:
    """Name this process's Prefect API in the settings while the block runs, so that task runs
    in other processes report to it.

    prefect-dask sends the flow's settings with every task. Without PREFECT_API_URL they name no
    API, and every Dask worker would start a temporary Prefect server of its own (about 15 s
    each), record its task runs there and stop it when the cluster closes. With the API of the
    flow run's own server (the temporary one of this process, or any other), they report there.
    """
    if get_current_settings().api.url:
        yield
        return
    with get_client(sync_client=True) as client:
        api_url = str(client.api_url)
    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        yield


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


def this_run() -> RunInfo:
    """The current flow run as the library knows a run: its id fills ``output.path``'s
    ``{run_id}``; its id, name and address (when Prefect knows its UI's) tag the MLflow run."""
    run_id = str(flow_run.id)
    tags = {"prefect.flow_run_id": run_id, "prefect.flow_run_name": flow_run.name}
    address = url_for("flow-run", obj_id=run_id)
    if address:
        tags["prefect.flow_run_url"] = address
    return RunInfo(id=run_id, tags=tags)


def artifact_key(name: str) -> str:
    """``augment-<job name>`` in the characters Prefect allows in a key (a-z, 0-9, dashes)."""
    return "augment-" + re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def publish(summary: dict[str, Any]) -> None:
    """A job's artifacts on the current flow run: the markdown page (``augment-<name>``) and
    the per-class table (``augment-<name>-classes``); each key keeps its history across runs."""
    key = artifact_key(summary["name"])
    verdict = verdict_sentence(summary)
    create_markdown_artifact(summary_markdown(summary), key=key, description=verdict)
    create_table_artifact(
        class_table(summary),
        key=f"{key}-classes",
        description=f"{summary['name']}: rows per class before, generated and after; holdout "
        "recall per arm",
    )


def gate_failure(summaries: list[dict[str, Any]], configs: Sequence[JobConfig]) -> State | None:
    """A Failed state when a job failed its gate and its config says that this fails the flow
    run (``validate.gate_fails_flow``), else None. The verdict is the state's message, and its
    exception (:class:`ValidationFailed`) carries every summary."""
    failed = [
        summary
        for summary, config in zip(summaries, configs, strict=True)
        if not summary["passed"] and config.validate_.gate_fails_flow
    ]
    if not failed:
        return None
    message = "; ".join(f"{s['name']}: {verdict_sentence(s)}; {gate_message(s)}" for s in failed)
    return Failed(message=message, data=ValidationFailed(message, summaries))


def passed_on(state: State) -> Any:
    """What a subflow's final state gives the flow that ran it: the result, or a Failed state
    with the subflow's own message and exception (so both runs fail with the verdict)."""
    if state.is_failed():
        return Failed(message=state.message, data=state.result(raise_on_failure=False))
    return state.result()


def one_line_errors(body: Callable[..., Any]) -> Callable[..., Any]:
    """A flow body whose own errors (an ``AugmentError``: bad config, data or output) fail the
    flow run with the error's one line as its log line and message, and no traceback; the
    caller of the flow gets the error raised, as from the library. Other errors are Prefect's
    to report, traceback and all."""

    @functools.wraps(body)
    def ends_failed(*args: Any, **kwargs: Any) -> Any:
        try:
            return body(*args, **kwargs)
        except AugmentError as error:
            get_run_logger().error("%s", error)
            return Failed(message=str(error), data=error)

    return ends_failed


# How a flow run in this process shows a job's progress (the CLI's header, plan and phase
# lines): a factory of a JobObserver per config, set by run_flows. Runs elsewhere (deployments,
# Dask workers) show none.
_observer_for: ContextVar[Callable[[JobConfig], job.JobObserver] | None] = ContextVar(
    "augment_observer_for", default=None
)


def _observer(config: JobConfig) -> job.JobObserver:
    make = _observer_for.get()
    return make(config) if make else job.JobObserver()


@task(name="start", **_task)
def start(config: JobConfig, force: bool, run: RunInfo) -> job.JobContext:
    return job.start_job(config, force=force, run=run)


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


@task(name="plan-generation", **_task)
def plan_generation(ctx: job.JobContext, data: Any, synthesizer: Any) -> job.GenerationWork:
    return job.plan_generation(ctx, data, synthesizer, workers=True)


@task(name="generate-parts", **_task)
def generate_parts(parts_job: PartsJob, parts: list[Part]) -> list[dict[str, Any]]:
    """Make a group of parts on a Dask worker (the generator loaded there once, by reference)."""
    return make_parts(parts_job, parts)


@task(name="generate-here", **_task)
def generate_here(work: job.GenerationWork) -> list[dict[str, Any]]:
    return job.make_generation_parts(work, work.todo)


@task(name="merge-generation", **_task)
def merge_generation(
    ctx: job.JobContext,
    data: Any,
    synthesizer: Any,
    work: job.GenerationWork,
    records: list[dict[str, Any]],
    engine: str,
    workers: int | None,
) -> Any:
    return job.merge_generation(ctx, data, synthesizer, work, records, engine, workers)


#: a plan of many parts becomes at most this many task runs (groups of neighbouring parts)
MAX_PART_TASKS = 64


def generate_on_workers(
    ctx: job.JobContext, data: Any, synthesizer: Any, orchestration: OrchestrationConfig
) -> Any:
    """Generation with the parts as tasks on the Dask workers: planned here, made there, merged
    here. Parts that need the job's process (an image job's quality filter) are made here."""
    work = retrying(plan_generation, orchestration)(ctx, data, synthesizer)
    if work.in_process:
        records = retrying(generate_here, orchestration)(work)
    else:
        futures = [
            retrying(generate_parts, orchestration).submit(work.job, group)
            for group in groups(work.todo, MAX_PART_TASKS)
        ]
        records = [record for future in futures for record in future.result()]
    engine = "local" if work.in_process else "dask"
    workers = None if orchestration.dask_address else orchestration.dask_workers
    return retrying(merge_generation, orchestration)(
        ctx, data, synthesizer, work, records, engine, workers
    )


@task(name="validate", **_task)
def validate(ctx: job.JobContext, data: Any) -> Any:
    return job.validate_step(ctx, data)


@task(name="finish", **_task)
def finish(ctx: job.JobContext, data: Any, generation: Any, report: Any, fidelity: Any):
    return job.finish_job(ctx, data, generation, report, fidelity)


@task(name="job", **_task)
def whole_job(config_path: str, overrides: list[str], force: bool, run: RunInfo) -> dict[str, Any]:
    """One whole job in the worker that runs this task (``balance_many_flow``)."""
    return job.run_job(load_config(config_path, overrides), force=force, run=run).summary()


@flow(name="augment-job", log_prints=True)
@one_line_errors
def job_flow(config: JobConfig, force: bool = False) -> Any:
    """Load -> plan -> reuse or fit (one task per unit) -> generate -> validate -> track, then
    publish the artifacts. Returns the job summary, or a Failed state when the gate failed or
    the job stopped on bad input (the error's line is the message). The steps are those of
    ``job.run_job``, with the same phases for the observer of ``run_flows``."""
    orchestration = config.orchestration
    watch = _observer(config)
    ctx = retrying(start, orchestration)(config, force, this_run())
    try:
        with watch.phase("load"):
            data = retrying(load, orchestration)(ctx)
        watch.loaded(ctx, data)
        synthesizer = retrying(reuse, orchestration)(ctx, data)
        if synthesizer is None:
            units = job.units_for(ctx, data)
            fitted = []
            if units:
                with watch.phase("train", units=len(units)):
                    futures = [fit.submit(ctx, data, classes) for classes in units]
                    fitted = [future.result() for future in futures]
            with watch.phase("assemble"):
                synthesizer = retrying(assemble, orchestration)(ctx, data, fitted)
        with watch.phase("generate", count=sum(data.plan.values())):
            if orchestration.task_runner == "dask":
                generation = generate_on_workers(ctx, data, synthesizer, orchestration)
            else:
                generation = retrying(generate, orchestration)(ctx, data, synthesizer)
        report, fidelity = None, {}
        if config.validate_.enabled:
            with watch.phase("validate"):
                report, fidelity = retrying(validate, orchestration)(ctx, data)
        with watch.phase("finish"):
            result = retrying(finish, orchestration)(ctx, data, generation, report, fidelity)
    except BaseException:
        job.fail_job(ctx)
        raise
    summary = result.summary()
    publish(summary)
    return gate_failure([summary], [config]) or summary


def _on_workers(orchestration: OrchestrationConfig) -> contextlib.AbstractContextManager:
    """``api_for_workers`` when the task runner runs tasks in other processes (Dask)."""
    return api_for_workers() if orchestration.task_runner == "dask" else contextlib.nullcontext()


@flow(name="augment-balance", log_prints=True)
@one_line_errors
def balance_flow(config_path: str, overrides: list[str] | None = None, force: bool = False) -> Any:
    """Balance one dataset; returns the job summary. ``force`` trains even on a cache hit.
    Fails, with the verdict as its message, when the job's flow run failed its gate."""
    config = load_config(config_path, overrides or [])
    runner = task_runner_for(config.orchestration)
    job_run = job_flow.with_options(task_runner=runner, flow_run_name=config.name)
    with _on_workers(config.orchestration):
        return passed_on(job_run(config, force, return_state=True))


@flow(name="augment-jobs", log_prints=True)
@one_line_errors
def jobs_flow(config_paths: list[str], overrides: list[str], force: bool) -> Any:
    configs = [load_config(path, overrides) for path in config_paths]
    run = this_run()
    futures = [
        retrying(whole_job, config.orchestration).submit(path, overrides, force, run)
        for path, config in zip(config_paths, configs, strict=True)
    ]
    summaries = [future.result() for future in futures]
    for summary in summaries:
        publish(summary)
    return gate_failure(summaries, configs) or summaries


@flow(name="augment-balance-many", log_prints=True)
@one_line_errors
def balance_many_flow(
    config_paths: list[str], overrides: list[str] | None = None, force: bool = False
) -> list[dict[str, Any]]:
    """Balance several datasets in one flow run, each job a task on the first config's task
    runner (with ``task_runner: dask`` the jobs train side by side on the Dask workers).
    A retried job reuses its trained generator from the cache. Returns the summaries in order."""
    configs = [load_config(path, overrides or []) for path in config_paths]  # fail fast
    runner = task_runner_for(configs[0].orchestration)
    jobs_run = jobs_flow.with_options(task_runner=runner)
    with _on_workers(configs[0].orchestration):
        state = jobs_run(list(config_paths), list(overrides or []), force, return_state=True)
    return passed_on(state)


def run_flows(
    config_paths: Sequence[str],
    overrides: Sequence[str] = (),
    force: bool = False,
    observer: Callable[[JobConfig], job.JobObserver] | None = None,
) -> list[dict[str, Any]]:
    """Run one config as ``balance_flow``, several as ``balance_many_flow``; the job summaries
    in order, also when a failed gate failed the flow run (other errors are raised: an
    ``AugmentError`` as itself). ``observer`` makes the observer of a job run in this process
    from its config (one config: every phase; the jobs of several run as whole tasks)."""
    token = _observer_for.set(observer)
    try:
        if len(config_paths) == 1:
            return [balance_flow(config_paths[0], list(overrides), force)]
        return balance_many_flow(list(config_paths), list(overrides), force)
    except ValidationFailed as failed:
        if not failed.summaries:
            raise
        return failed.summaries
    finally:
        _observer_for.reset(token)


def main() -> None:
    parser = argparse.ArgumentParser(description="Run augment balancing jobs as a Prefect flow.")
    parser.add_argument("configs", nargs="+")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--force", action="store_true", help="Train even on a cache hit.")
    args = parser.parse_args()
    local_server_defaults()
    summaries = run_flows(args.configs, args.overrides, args.force)
    for summary in summaries:
        print(json.dumps({k: v for k, v in summary.items() if k != "metrics"}, indent=2))
    raise SystemExit(0 if all(summary["passed"] for summary in summaries) else 10)


if __name__ == "__main__":
    main()
