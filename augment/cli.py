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
        from augment.core.config import load_config
        from augment.core.errors import ConfigError

        if output and len(configs) > 1:
            raise ConfigError("--output names one folder; with several configs set output.path")
        loaded = [load_config(path, overrides) for path in configs]
        for cfg in loaded:
            console.rule(f"[bold]augment[/bold] {cfg.name}")
            console.print(cfg.to_yaml(), highlight=False)
        if engine is Engine.prefect:
            flows = importlib.import_module("flows.balance")
            if len(configs) == 1:
                return [flows.balance_flow(configs[0], overrides, force)], loaded
            return flows.balance_many_flow(list(configs), overrides, force), loaded
        from augment.pipeline.job import run_job

        return [run_job(cfg, force=force).summary() for cfg in loaded], loaded

    summaries, loaded = _guard(go)
    passed = [_report(summary, cfg) for summary, cfg in zip(summaries, loaded, strict=True)]
    if not all(passed):
        raise typer.Exit(10)


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
        from augment.core.config import load_config

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
        deployments = importlib.import_module("flows.deployments")
        made = deployments.runner_deployments(list(configs), list(set_), cron, timezone)
        for deployment in made:
            when = f"cron {cron!r} ({timezone})" if cron else "on demand"
            console.print(f"deployment augment-balance/{deployment.name}: {when}")
        deployments.serve(made, limit=limit)

    _guard(go)


def print_summary(summary: dict[str, Any]) -> None:
    counts = Table(title="class counts (train split)")
    for column in ("class", "before", "generated", "after"):
        counts.add_column(column, justify="right" if column != "class" else "left")
    for cls, before in summary["counts_before"].items():
        counts.add_row(
            cls, str(before), str(summary["plan"].get(cls, 0)), str(summary["counts_after"][cls])
        )
    console.print(counts)

    metrics = summary["metrics"]
    # The classic baseline is SMOTE for tables and albumentations oversampling for images.
    classic = "albumentations" if any(k.startswith("albumentations/") for k in metrics) else "smote"
    scores = Table(title="holdout scores (mean over classifiers)")
    scores.add_column("metric")
    for arm in ("baseline", "augmented", classic, "lift", f"lift_vs_{classic}"):
        scores.add_column(arm, justify="right")
    for name in ("accuracy", "balanced_accuracy", "macro_f1"):
        row = [
            f"{metrics[k]:+.4f}" if k in metrics else "-"
            for k in (
                f"baseline/{name}",
                f"augmented/{name}",
                f"{classic}/{name}",
                f"lift/{name}",
                f"lift_vs_{classic}/{name}",
            )
        ]
        scores.add_row(name, *row)
    if any(k.startswith("baseline/") for k in metrics):
        console.print(scores)
    behind = metrics.get(f"lift_vs_{classic}/balanced_accuracy")
    if behind is not None and behind < 0:  # say it in words, not only as a signed figure
        name = "albumentations oversampling" if classic == "albumentations" else "SMOTE"
        console.print(
            f"[yellow]note:[/yellow] {name} beat the synthetic data by {-behind:.4f} balanced "
            "accuracy on this holdout; the gate compares with real data only"
        )

    fidelity = [
        ("Fréchet distance (encoded space)", "fidelity/frechet"),
        ("detection AUC (0.5 = indistinguishable)", "fidelity/detection_auc"),
        ("mean marginal distance", "fidelity/marginal_mean"),
        ("DCR synthetic / holdout (memorisation if << 1)", "fidelity/dcr/ratio"),
    ]
    for label, key in fidelity:
        if key in metrics:
            console.print(f"{label}: {metrics[key]:.4f}")
    for key in sorted(
        k for k in metrics if k.count("/") == 1 and k.split("/")[0] in ("fid", "kid")
    ):
        console.print(f"{key.upper()} ({key.split('/')[1]} features): {metrics[key]:.4f}")
    if summary.get("cache_hit"):
        console.print("[cyan]cache hit[/cyan]: reused the trained generator (--force retrains)")
    for note in summary.get("notes", []):
        console.print(f"[yellow]note:[/yellow] {note}")
    console.print(f"shards: {summary['output']}/synthetic  (manifest.json, _SUCCESS)")
    if summary.get("mlflow_run_id"):
        from augment.tracking import is_server_uri  # tracking ran, so mlflow is imported already

        where = summary["tracking_uri"] if is_server_uri(summary["tracking_uri"]) else "augment ui"
        console.print(
            f"MLflow run {summary['mlflow_run_id']} in {summary['tracking_uri']} "
            f"(model {summary['model_uri']}); browse it with: {where}",
            soft_wrap=True,
        )
    state = "[green]passed[/green]" if summary["passed"] else "[red]failed[/red]"
    console.print(f"validation {state} in {summary['seconds']:.1f}s")


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
