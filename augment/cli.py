"""The ``augment`` command line (typer).

    augment run configs/breast_cancer.yaml [--set train.steps=300] [--output DIR] [--overwrite]
    augment run configs/breast_cancer.yaml --engine prefect     # the same job as a Prefect flow
    augment run configs/wine.yaml configs/breast_cancer.yaml --engine prefect   # several jobs
    augment run configs/breast_cancer.yaml --force              # train even on a cache hit
    augment train configs/breast_cancer.yaml --nproc 2          # each GAN trained over 2 processes
    augment serve configs/breast_cancer.yaml --cron "0 3 * * *" # a scheduled Prefect deployment
    augment profile data.parquet --label churned
    augment ui

Errors print one line and exit non-zero (no traceback unless ``--debug``).
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from enum import StrEnum
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from augment.core.errors import AugmentError
from augment.pipeline.summary import print_summary

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Balance classes with a conditional GAN, write exact per-class shards, and measure "
    "whether the synthetic rows help (lift and fidelity in MLflow).",
)
console = Console()
err_console = Console(stderr=True)
_state = {"debug": False}


class Engine(StrEnum):
    local = "local"
    prefect = "prefect"


@app.callback()
def main(debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors.")) -> None:
    """augment: balance classes with a conditional GAN and measure whether it helps."""
    _state["debug"] = debug


def _guard(action: Callable[[], Any]) -> Any:
    """Run ``action``; turn our errors into one red line and an exit code."""
    try:
        return action()
    except AugmentError as error:
        if _state["debug"]:
            raise
        err_console.print(f"[red]error:[/red] {error}", soft_wrap=True, highlight=False)
        raise typer.Exit(error.exit_code) from None
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/yellow]: checkpoints were saved; rerun to resume")
        raise typer.Exit(130) from None


@app.command()
def run(
    configs: list[str] = typer.Argument(..., help="YAML job config(s); several run side by side."),
    set_: list[str] = typer.Option([], "--set", help="Override a key: --set train.steps=200"),
    output: str | None = typer.Option(None, "--output", help="Output folder (output.path)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a finished run."),
    force: bool = typer.Option(
        False, "--force", help="Train even when the cache holds a generator for this data."
    ),
    engine: Engine = typer.Option(Engine.local, help="local (in-process) or prefect (a flow)."),
) -> None:
    """Run one-off balancing jobs and print what they did.

    With --engine prefect, one config runs as the augment-balance flow and several as one
    augment-balance-many flow run (each job a task on the first config's task runner).
    """
    overrides = _overrides(set_, output, overwrite)

    def go() -> Any:
        from augment.core.errors import ConfigError
        from augment.pipeline.config import load_config

        if output and len(configs) > 1:
            raise ConfigError("--output names one folder; with several configs set output.path")
        loaded = [load_config(path, overrides) for path in configs]
        for cfg in loaded:
            console.rule(f"[bold]augment[/bold] {cfg.name}")
            console.print(cfg.to_yaml(), highlight=False)
        if engine is Engine.prefect:
            flows = _flows("balance")
            if len(configs) == 1:
                return [flows.balance_flow(configs[0], overrides, force)], loaded
            return flows.balance_many_flow(list(configs), overrides, force), loaded
        from augment.pipeline.job import run_job

        return [run_job(cfg, force=force).summary() for cfg in loaded], loaded

    summaries, loaded = _guard(go)
    passed = [_report(summary, cfg) for summary, cfg in zip(summaries, loaded, strict=True)]
    if not all(passed):
        raise typer.Exit(10)


def _flows(module: str) -> Any:
    """Import ``flows.<module>`` (Prefect) and apply ``flows.balance.local_server_defaults``.

    Everything here that runs Prefect comes through this, before its first flow run or client:
    without PREFECT_API_URL, Prefect starts a temporary local server in this process, and its
    default startup timeout (20 s) is too short on a small busy machine. Settings the user chose
    are kept.
    """
    imported = importlib.import_module(f"flows.{module}")
    importlib.import_module("flows.balance").local_server_defaults()
    return imported


def _overrides(set_: list[str], output: str | None, overwrite: bool) -> list[str]:
    overrides = list(set_)
    if output:
        overrides.append(f"output.path={output}")
    if overwrite:
        overrides.append("output.overwrite=true")
    return overrides


def _report(summary: dict[str, Any], cfg: Any) -> bool:
    """Print a job summary, and why the do-no-harm gate failed if it did; True when it passed."""
    print_summary(summary)
    if summary["passed"]:
        return True
    lift = summary["metrics"].get("lift/balanced_accuracy", float("nan"))
    err_console.print(
        f"[red]validation failed[/red] ({cfg.name}): lift in balanced accuracy {lift:+.4f} is "
        f"below validate.min_lift={cfg.validate_.min_lift}; the shards are kept in "
        f"{summary['output']}"
    )
    return False


@app.command()
def train(
    config: str = typer.Argument(..., help="YAML job config."),
    nproc: int = typer.Option(
        1,
        "--nproc",
        min=1,
        help="Processes that train each GAN together (torchrun DDP): one per GPU on CUDA "
        "(nccl), CPU shares otherwise (gloo). The effective batch is train.batch_size x nproc.",
    ),
    set_: list[str] = typer.Option([], "--set", help="Override a key: --set train.steps=200"),
    output: str | None = typer.Option(None, "--output", help="Output folder (output.path)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a finished run."),
    master_port: int | None = typer.Option(
        None, "--master-port", help="Rendezvous port on this host (default: a free one)."
    ),
) -> None:
    """Run the job with each GAN trained data-parallel over --nproc processes (torchrun DDP).

    Rank 0 alone writes checkpoints, shards, the manifest and the MLflow run, and validates; the
    other ranks only train. --nproc 1 is `augment run`. On several machines, start
    `torchrun ... -m augment.pipeline.distributed CONFIG` on each instead (see the README).
    """
    overrides = _overrides(set_, output, overwrite)

    def check() -> Any:
        from augment.pipeline.config import load_config

        cfg = load_config(config, overrides)  # a bad config stops here, before any process starts
        console.rule(f"[bold]augment[/bold] {cfg.name} ({nproc} training process(es))")
        console.print(cfg.to_yaml(), highlight=False)
        return cfg

    cfg = _guard(check)
    if nproc == 1:
        from augment.pipeline.job import run_job

        if not _report(_guard(lambda: run_job(cfg)).summary(), cfg):
            raise typer.Exit(10)
        return
    with tempfile.TemporaryDirectory(prefix="augment-ddp-") as scratch:
        summary_path = os.path.join(scratch, "summary.json")
        command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc)]
        if master_port is None:
            command.append("--standalone")  # a rendezvous on a free local port
        else:
            command += ["--master_addr", "127.0.0.1", "--master_port", str(master_port)]
        command += ["-m", "augment.pipeline.distributed", config, "--summary-json", summary_path]
        for item in overrides:
            command += ["--set", item]
        env = os.environ.copy()
        # torchrun would set 1; share the cores between the processes instead.
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
        code = subprocess.call(command, env=env)
        summary = None
        if os.path.exists(summary_path):
            with open(summary_path) as handle:
                summary = json.load(handle)
    if summary is None:
        err_console.print(
            f"[red]error:[/red] distributed training failed (torchrun exit code {code}); "
            "the lines above name the failing rank"
        )
        raise typer.Exit(code or 1)
    if "error" in summary:  # rank 0 already printed it
        raise typer.Exit(summary["exit_code"])
    if not _report(summary, cfg):
        raise typer.Exit(10)


@app.command()
def serve(
    configs: list[str] = typer.Argument(..., help="YAML job config(s): one deployment each."),
    cron: str | None = typer.Option(
        None, "--cron", help='Cron schedule, e.g. "0 3 * * *" (03:00 daily); none: on demand.'
    ),
    timezone: str = typer.Option("UTC", "--timezone", help="IANA time zone of the cron."),
    set_: list[str] = typer.Option([], "--set", help="Override a key in every config."),
    limit: int | None = typer.Option(None, "--limit", help="At most this many runs at once."),
) -> None:
    """Serve Prefect deployments of the balancing flow (one per config, named after the job)
    and run their scheduled or triggered runs until stopped (Ctrl-C).

    Needs a Prefect API (PREFECT_API_URL, e.g. `prefect server start`). Work pools instead of a
    serving process: see prefect.yaml.
    """

    def go() -> None:
        deployments = _flows("deployments")
        made = deployments.runner_deployments(list(configs), list(set_), cron, timezone)
        for deployment in made:
            when = f"cron {cron!r} ({timezone})" if cron else "on demand"
            console.print(f"deployment augment-balance/{deployment.name}: {when}")
        deployments.serve(made, limit=limit)

    _guard(go)


@app.command()
def profile(
    source: str = typer.Argument(..., help="Parquet file/dir, CSV, or sklearn:<name>."),
    label: str = typer.Option(..., "--label", help="Label column."),
    fmt: str = typer.Option("auto", "--format", help="auto, parquet or csv."),
) -> None:
    """Print class counts and the imbalance ratio of a labelled table."""

    def go() -> None:
        from augment.core.balance import class_counts
        from augment.tabular.sources import load_table

        frame = load_table(source, label, fmt)
        counts = class_counts(frame[label].dropna())
        table = Table(title=f"{source}: {len(frame)} rows, {len(frame.columns) - 1} features")
        table.add_column("class")
        table.add_column("rows", justify="right")
        table.add_column("share", justify="right")
        for cls, n in sorted(counts.items(), key=lambda item: -item[1]):
            table.add_row(str(cls), str(n), f"{n / len(frame):.1%}")
        console.print(table)
        ratio = max(counts.values()) / min(counts.values())
        console.print(f"imbalance ratio (largest / smallest): {ratio:.2f}")

    _guard(go)


@app.command()
def ui(
    uri: str | None = typer.Option(None, "--uri", help="Tracking URI (default: the job default)."),
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(5000, "--port"),
    print_command: bool = typer.Option(False, "--print-command", help="Only print the command."),
) -> None:
    """Open the MLflow UI on the same store the jobs write to.

    For a tracking server (``http(s)://``) there is nothing to start: the server is the UI.
    """
    from augment.tracking import is_server_uri, resolve_tracking_uri

    store = resolve_tracking_uri(uri)
    if is_server_uri(store):
        console.print(
            f"the tracking server serves the MLflow UI itself: open {store} in a browser",
            highlight=False,
            soft_wrap=True,
        )
        return
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "ui",
        "--backend-store-uri",
        store,
        "--host",
        host,
        "--port",
        str(port),
    ]
    if print_command:
        console.print(" ".join(command), highlight=False, soft_wrap=True)
        return
    console.print(f"MLflow UI on http://{host}:{port} for {store} (Ctrl-C to stop)")
    raise typer.Exit(subprocess.call(command, env=os.environ.copy()))


if __name__ == "__main__":
    app()
