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

import contextlib
import importlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from enum import StrEnum
from typing import Any

import typer
import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from augment.core.config import apply_overrides, settings_as_command_line
from augment.core.errors import AugmentError
from augment.pipeline.summary import gate_message, print_summary

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Balance classes with a conditional GAN, write exact per-class shards, and measure "
    "whether the synthetic rows help (lift and fidelity in MLflow).",
)
# Output that is not a terminal (a log file, CI) gets 100 columns, not rich's 80.
console = Console(width=None if sys.stdout.isatty() else 100)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 100)
_state = {"debug": False, "verbose": False}


class Engine(StrEnum):
    local = "local"
    prefect = "prefect"


@app.callback()
def main(debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors.")) -> None:
    """augment: balance classes with a conditional GAN and measure whether it helps."""
    _state["debug"] = debug


def _quiet_libraries(verbose: bool) -> None:
    """Route log records to one short line each: augment's warnings (its INFO with -v), and
    the libraries' only when they are warnings or worse. MLflow's own handler is replaced,
    so its "Creating initial MLflow database tables" chatter stays out of a normal run."""
    _state["verbose"] = verbose
    # MLflow installs its own INFO handler when imported, unless told not to.
    os.environ.setdefault("MLFLOW_CONFIGURE_LOGGING", "false")
    if not verbose:  # the "View run ... at: http://..." lines a tracking server's runs print
        os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
    handler = _LineHandler()
    ours = logging.getLogger("augment")
    ours.handlers = [handler]
    ours.setLevel(logging.INFO if verbose else logging.WARNING)
    ours.propagate = False
    for name in ("mlflow", "alembic"):
        library = logging.getLogger(name)
        library.handlers = [handler]
        library.setLevel(logging.INFO if verbose else logging.WARNING)
        library.propagate = False


class _LineHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            style = "yellow" if record.levelno >= logging.WARNING else "dim"
            word = "note" if record.levelno < logging.ERROR else "error"
            if record.levelno < logging.WARNING:
                word = record.name.split(".")[0]
            err_console.print(
                f"[{style}]{word}:[/{style}] {record.getMessage()}",
                soft_wrap=True,
                highlight=False,
                markup=True,
            )
        except Exception:  # a log line must never break the job
            self.handleError(record)


def _origin(filename: str) -> str:
    """The package a warning came from: the folder under site-packages, else the file."""
    path = filename.replace("\\", "/")
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/")[0].removesuffix(".py")
    return path.rsplit("/", 1)[-1].removesuffix(".py") or "?"


@contextlib.contextmanager
def _library_warnings(verbose: bool) -> Iterator[None]:
    """Collect the warnings libraries raise during a job; print them with -v, else one line
    that counts them by kind."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        try:
            yield
        finally:
            seen: dict[tuple[str, str], int] = {}
            for item in caught:
                key = (item.category.__name__, _origin(item.filename))
                seen[key] = seen.get(key, 0) + 1
                if verbose:
                    err_console.print(
                        f"[dim]warning ({key[1]}, {key[0]}):[/dim] {item.message}",
                        soft_wrap=True,
                        highlight=False,
                    )
            if seen and not verbose:
                kinds = ", ".join(f"{n} {cat} from {mod}" for (cat, mod), n in seen.items())
                err_console.print(
                    f"[dim]{sum(seen.values())} library warning(s) ({kinds}); -v shows them[/dim]",
                    soft_wrap=True,
                    highlight=False,
                )


def _guard(action: Callable[[], Any]) -> Any:
    """Run ``action``; turn our errors into one red line and an exit code."""
    try:
        return action()
    except AugmentError as error:
        if _state["debug"]:
            raise
        # escaped: a hint such as --set data.drop_columns=[id,note] is text, not markup
        err_console.print(
            f"[red]error:[/red] {escape(str(error))}", soft_wrap=True, highlight=False
        )
        raise typer.Exit(error.exit_code) from None
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/yellow]: checkpoints were saved; rerun to resume")
        raise typer.Exit(130) from None
    except (typer.Exit, typer.Abort):
        raise
    except Exception as error:  # not ours: still short, the cause first, the way to the rest
        if _state["debug"]:
            raise
        cause = str(error).strip().splitlines()[0] if str(error).strip() else ""
        err_console.print(
            f"[red]error:[/red] {type(error).__name__}: {cause[:400]}\n"
            "this was not expected: rerun with --debug for the traceback, and report it with "
            "the config that caused it",
            highlight=False,
        )
        raise typer.Exit(1) from None


_VERBOSE = typer.Option(False, "-v", "--verbose", help="Show the resolved config and logs.")
_LABEL = typer.Option(None, "--label", help="Class column, when SOURCE is a data file.")
_KIND = typer.Option(None, "--kind", help="tabular or image, when SOURCE is data (else guessed).")


@app.command()
def run(
    sources: list[str] = typer.Argument(
        ...,
        metavar="SOURCE...",
        help="YAML job config(s), several run side by side; or one data file or folder (CSV, "
        "Parquet, a folder of class folders of images) with --label, run with defaults.",
    ),
    label: str | None = _LABEL,
    kind: str | None = _KIND,
    set_: list[str] = typer.Option([], "--set", help="Override a key: --set train.steps=200"),
    output: str | None = typer.Option(None, "--output", help="Output folder (output.path)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a finished run."),
    force: bool = typer.Option(
        False, "--force", help="Train even when the cache holds a generator for this data."
    ),
    engine: Engine = typer.Option(Engine.local, help="local (in-process) or prefect (a flow)."),
    verbose: bool = _VERBOSE,
) -> None:
    """Run one-off balancing jobs and print what they did.

    With --engine prefect, one config runs as the augment-balance flow and several as one
    augment-balance-many flow run (each job a task on the first config's task runner).
    """
    overrides = _overrides(set_, output, overwrite)
    _quiet_libraries(verbose)

    def go() -> Any:
        from augment.core.errors import ConfigError
        from augment.pipeline.config import load_config, parse_config

        if output and len(sources) > 1:
            raise ConfigError("--output names one folder; with several configs set output.path")
        if _is_yaml(sources[0]):
            if label or kind:
                raise ConfigError(
                    "--label and --kind go with a data file; a YAML config sets "
                    "data.label and data.kind itself"
                )
            paths, loaded = list(sources), [load_config(path, overrides) for path in sources]
        else:
            if len(sources) > 1:
                raise ConfigError("give one data file or folder (or YAML configs)")
            raw = apply_overrides(_source_config(sources[0], label, kind), overrides)
            loaded = [parse_config(raw, origin=sources[0], overrides=overrides)]
            paths = [_write_temp_yaml(loaded[0])] if engine is Engine.prefect else []
        for cfg in loaded:
            _header(cfg, verbose)
        if engine is Engine.prefect:
            flow_overrides = overrides if _is_yaml(sources[0]) else []
            flows = _flows("balance")
            # the same lines as the local engine; Prefect's and Dask's own only with -v
            with contextlib.nullcontext() if verbose else flows.quiet_terminal():
                summaries = flows.run_flows(paths, flow_overrides, force, observer=_Progress)
            return summaries, loaded
        from augment.pipeline.job import run_job

        return [
            run_job(cfg, force=force, observer=_Progress(cfg)).summary() for cfg in loaded
        ], loaded

    # a data file run without YAML: fixes are written as --set entries, else as YAML keys
    hints = contextlib.nullcontext() if _is_yaml(sources[0]) else settings_as_command_line()
    with _library_warnings(verbose), hints:
        summaries, loaded = _guard(go)
    passed = [_report(summary, cfg) for summary, cfg in zip(summaries, loaded, strict=True)]
    if not _is_yaml(sources[0]) and summaries:
        console.print(
            f"repeat or edit: {summaries[0]['output']}/job.yaml  "
            f"(augment run {summaries[0]['output']}/job.yaml --overwrite)",
            highlight=False,
            soft_wrap=True,
        )
    if not all(passed):
        raise typer.Exit(10)


@app.command()
def init(
    source: str = typer.Argument(..., help="Data file or folder: CSV, Parquet, image folders."),
    label: str | None = _LABEL,
    kind: str | None = _KIND,
    config: str | None = typer.Option(
        None, "--config", help="Where to write the YAML (default: <name>.yaml here)."
    ),
    set_: list[str] = typer.Option([], "--set", help="Set a key: --set train.steps=500"),
) -> None:
    """Write a job config for a data file, with every setting at its default, without running
    it: edit it, then `augment run <config>`."""

    def go() -> str:
        from pathlib import Path

        from augment.core.errors import ConfigError
        from augment.pipeline.config import parse_config

        raw = apply_overrides(_source_config(source, label, kind), list(set_))
        # refuse a bad source or key before writing
        cfg = parse_config(raw, origin=source, overrides=list(set_))
        target = Path(config or f"{cfg.name}.yaml")
        if target.exists():
            raise ConfigError(f"{target} exists; choose another --config or remove it")
        text = (
            f"# augment job for {source}, written by `augment init`. Every key not set here "
            "has its default;\n# docs/configuration.md lists them all. Run: augment run "
            f"{target}\n" + yaml.safe_dump(raw, sort_keys=False) + _roles_comment(cfg)
        )
        target.write_text(text)
        return str(target)

    with settings_as_command_line():
        written = _guard(go)
    console.print(f"wrote {written}; run it with: augment run {written}", highlight=False)


def _roles_comment(cfg: Any) -> str:
    """The inferred role of every column as commented ``data.columns`` entries, to uncomment
    and change (tables only)."""
    if cfg.data.kind != "tabular":
        return ""
    from augment.tabular.roles import infer_roles
    from augment.tabular.sources import read_table

    d = cfg.data
    try:
        frame, _ = read_table(d.source, d.label, d.format, d.drop_columns, max_rows=100_000)
        profiles = infer_roles(frame, d.label, categorical_max_unique=d.categorical_max_unique)
    except AugmentError as error:
        return f"# the columns' roles could not be inferred: {error}\n"
    lines = ["  # inferred roles of the columns; uncomment a line to change one:", "  # columns:"]
    lines += [f"  #   {p.name}: {p.role}  # {p.why}" for p in profiles]
    return "\n".join(lines) + "\n"


def _is_yaml(source: str) -> bool:
    return source.lower().endswith((".yaml", ".yml"))


def _source_config(source: str, label: str | None, kind: str | None) -> dict[str, Any]:
    from augment.pipeline.config import config_for_source

    return config_for_source(source, label, kind)


def _write_temp_yaml(cfg: Any) -> str:
    """The resolved config as a file, for the Prefect flow (which takes a config path)."""
    with tempfile.NamedTemporaryFile(
        "w", suffix=".yaml", prefix=f"augment-{cfg.name}-", delete=False
    ) as handle:
        handle.write(cfg.to_yaml())
    return handle.name


def _header(cfg: Any, verbose: bool) -> None:
    console.rule(f"[bold]augment[/bold] {cfg.name}")
    if verbose:
        console.print(cfg.to_yaml(), highlight=False)
    console.print(
        f"data     {cfg.data.source} ({cfg.data.kind}"
        + (f", label {cfg.data.label}" if getattr(cfg.data, "label", None) else "")
        + f"), output {cfg.output_path}",
        highlight=False,
        soft_wrap=True,
    )


class _Progress:
    """Shows a job's phases: a spinner while each runs (on a terminal), a line when it ends."""

    def __init__(self, cfg: Any) -> None:
        self.items = "images" if cfg.data.kind == "image" else "rows"

    def loaded(self, ctx: Any, data: Any) -> None:
        counts = ", ".join(f"{c} {n:,}" for c, n in data.counts_before.items())
        console.print(f"classes  {counts} (train split)", highlight=False)
        roles = getattr(data, "column_roles", None)  # a table's columns by role
        if roles:
            console.print(
                "columns  "
                + "; ".join(
                    f"{len(names)} {kind}: {_names(names)}" for kind, names in roles.items()
                ),
                highlight=False,
            )
        planned = {c: n for c, n in data.plan.items() if n}
        plan = ", ".join(f"{c} +{n:,}" for c, n in planned.items()) or "nothing to generate"
        console.print(f"plan     {plan}", highlight=False)

    @contextlib.contextmanager
    def phase(self, name: str, **detail: Any) -> Iterator[None]:
        words = {
            "load": "loading data",
            "train": f"training {detail.get('units', 1)} GAN(s)",
            "assemble": "fitting the autoencoder and choosing the recipe"
            if self.items == "images"
            else "assembling the generator",
            "generate": f"generating {detail.get('count', 0):,} {self.items}",
            "validate": "validating on the holdout",
            "finish": "writing the report, MLflow run and manifest",
        }
        text = words.get(name, name)
        began = time.perf_counter()
        # the training loop draws its own progress bars; nothing else may draw meanwhile
        spinner = console.status(text) if name != "train" and console.is_terminal else None
        with spinner or contextlib.nullcontext():
            yield
        seconds = time.perf_counter() - began
        # assembling is instant for tables: only say it when it took a while
        if name != "load" and (name != "assemble" or seconds >= 1.0):
            console.print(
                f"[green]✓[/green] {text} [dim]{seconds:.1f}s[/dim]",
                highlight=False,
            )


def _names(names: list[str], shown: int = 4) -> str:
    more = f", … (+{len(names) - shown})" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


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
    err_console.print(gate_message(summary, prefix=f"[red]validation failed[/red] ({cfg.name}): "))
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
    verbose: bool = _VERBOSE,
) -> None:
    """Run the job with each GAN trained data-parallel over --nproc processes (torchrun DDP).

    Rank 0 alone writes checkpoints, shards, the manifest and the MLflow run, and validates; the
    other ranks only train. --nproc 1 is `augment run`. On several machines, start
    `torchrun ... -m augment.pipeline.distributed CONFIG` on each instead (see the README).
    """
    overrides = _overrides(set_, output, overwrite)
    _quiet_libraries(verbose)

    def check() -> Any:
        from augment.pipeline.config import load_config

        cfg = load_config(config, overrides)  # a bad config stops here, before any process starts
        _header(cfg, verbose)
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
    source: str = typer.Argument(
        ..., help="Parquet file/dir, CSV, sklearn:<name>, or a folder of class folders of images."
    ),
    label: str | None = typer.Option(
        None, "--label", help="Label column (tables and Parquet images; a folder has none)."
    ),
    kind: str | None = _KIND,
    fmt: str = typer.Option("auto", "--format", help="auto, parquet or csv."),
) -> None:
    """Print the class counts, and for a table the role augment infers for every column with its
    missing share and distinct values: what a job will do with the data, before running it."""

    def go() -> None:
        from augment.core.balance import class_counts

        # refuses a table without --label, as `augment run` does
        data = _source_config(source, label, kind)["data"]
        if data["kind"] == "image":
            from augment.image.sources import index_images

            index = index_images(source, label=label or "label")  # a folder's classes: folders
            counts = class_counts(index.labels)
            _print_class_counts(f"{source}: {len(index):,} images", "images", counts)
            return
        from augment.tabular.roles import infer_roles
        from augment.tabular.sources import read_table

        frame, sample = read_table(source, label, fmt, max_rows=1_000_000)
        rows = sample.rows if sample else len(frame)
        counts = sample.counts if sample else class_counts(frame[label].dropna())
        title = f"{source}: {rows:,} rows, {len(frame.columns) - 1} features"
        _print_class_counts(title, "rows", counts)

        columns = Table(title="columns" + (f" (a sample of {len(frame):,} rows)" if sample else ""))
        for heading in ("column", "role", "dtype", "missing", "distinct", "why"):
            columns.add_column(
                heading, justify="right" if heading in ("missing", "distinct") else "left"
            )
        for column in infer_roles(frame, label):
            columns.add_row(
                column.name,
                column.role,
                column.dtype,
                f"{column.missing:.0%}" if column.missing else "-",
                f"{column.distinct:,}",
                column.why,
            )
        console.print(columns)

    with settings_as_command_line():
        _guard(go)


def _print_class_counts(title: str, noun: str, counts: dict[Any, int]) -> None:
    """The classes largest first with their count of ``noun`` and share, and the imbalance
    ratio."""
    total = sum(counts.values())
    table = Table(title=title)
    table.add_column("class")
    table.add_column(noun, justify="right")
    table.add_column("share", justify="right")
    for cls, n in sorted(counts.items(), key=lambda item: -item[1]):
        table.add_row(str(cls), f"{n:,}", f"{n / total:.1%}")
    console.print(table)
    ratio = max(counts.values()) / min(counts.values())
    console.print(f"imbalance ratio (largest / smallest): {ratio:.2f}")


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
