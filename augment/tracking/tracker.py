"""MLflow tracking for a job: the only module of the package that talks to MLflow.

Everything goes through an explicit :class:`mlflow.MlflowClient` and run ids rather than MLflow's
"active run" API, because a job's steps may run as Prefect tasks on worker threads, where a
thread-local active run would point at the wrong run (or at none). The one exception is model
logging, which MLflow only offers through the fluent API; :meth:`JobTracker.log_synthesizer`
opens the run just around that call.

Layout of a job in MLflow (see docs/architecture.md): one experiment per job name, one parent run
per job, and nested ``train`` / ``generate`` / ``validate`` runs made with :meth:`JobTracker.child`.

Example::

    tracker = JobTracker("credit-fraud", run_name="nightly")
    tracker.log_params({"train": {"steps": 2000, "lr": 2e-4}})
    train_run = tracker.child("train")
    on_losses = tracker.loss_callback(train_run, every=50)
    ...  # the training loop calls on_losses(step, {"loss/d": ..., "loss/g": ...})
    on_losses.flush()
    tracker.end(train_run)
    tracker.end()
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
import re
import threading
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from mlflow.entities import Metric, Param, RunStatus, RunTag
from mlflow.exceptions import MlflowException
from mlflow.models.signature import ModelSignature
from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, ErrorCode
from mlflow.types.schema import AnyType, ColSpec, ParamSchema, ParamSpec, Schema
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NOTE
from mlflow.utils.validation import (
    MAX_ENTITY_KEY_LENGTH,
    MAX_METRICS_PER_BATCH,
    MAX_PARAM_VAL_LENGTH,
    MAX_PARAMS_TAGS_PER_BATCH,
    MAX_TAG_VAL_LENGTH,
)

from augment.core.errors import ConfigError, ModelFileError
from augment.tracking import plots

log = logging.getLogger(__name__)

__all__ = ["JobTracker", "LossLogger", "is_server_uri", "resolve_tracking_uri", "run_link"]

#: The store used when neither the job config nor the environment names one.
DEFAULT_DB_FILE = "mlflow.db"
#: Folder, beside a local sqlite store, that receives that store's artifacts.
ARTIFACTS_DIR = "mlartifacts"
#: Requirements written into the logged synthesizer model. An explicit list keeps MLflow from
#: resolving the environment by importing the model, which costs tens of seconds per log.
SYNTHESIZER_PIP_REQUIREMENTS = ["torch", "pandas", "numpy", "pyarrow"]
#: Name of the logged synthesizer model inside its run.
SYNTHESIZER_MODEL_NAME = "synthesizer"
_MODEL_CODE_PATH = Path(__file__).with_name("mlflow_model.py")

# Labels may be ints or strings, so the label column is left untyped; the seed is a param
# because MLflow refuses ``params`` at predict time unless the signature declares them.
_SYNTHESIZER_SIGNATURE = ModelSignature(
    inputs=Schema([ColSpec(AnyType(), "label"), ColSpec("long", "n")]),
    params=ParamSchema([ParamSpec("seed", "long", 0)]),
)

# MLflow keeps the tracking URI of its fluent API in a process-wide global (and mirrors it into
# the environment); model logging is serialised so two trackers never swap it under each other.
_FLUENT_LOCK = threading.Lock()

# Logging the model downloads its artifacts back once, behind a tqdm bar per file that lands in
# the middle of a job's output. Off unless the user turned it on.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
_BAD_KEY_CHARS = re.compile(r"[^\w.\- /]")
_RUN_STATUSES = frozenset(RunStatus.to_string(s) for s in RunStatus.all_status())


def resolve_tracking_uri(configured: str | None) -> str:
    """Pick the MLflow tracking URI for a job.

    Precedence: the job config's ``tracking.uri``, then the ``MLFLOW_TRACKING_URI`` environment
    variable, then a sqlite store ``mlflow.db`` in the current directory (as an absolute path, so
    worker threads or processes that change directory still find the same store).

    Args:
        configured: The URI from the job config, or ``None`` / ``""`` when not set.

    Returns:
        The tracking URI to use.

    Example:
        >>> resolve_tracking_uri("http://mlflow:5000")
        'http://mlflow:5000'
    """
    if configured and configured.strip():
        return configured.strip()
    from_env = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    if from_env:
        return from_env
    return f"sqlite:///{Path.cwd() / DEFAULT_DB_FILE}"


def is_server_uri(tracking_uri: str) -> bool:
    """True for a tracking server (``http(s)://``), which keeps the store and serves the UI."""
    return tracking_uri.startswith(("http://", "https://"))


def check_server(tracking_uri: str, timeout: float = 10.0) -> None:
    """Fail fast when no tracking server answers at ``tracking_uri``.

    MLflow's client retries a refused connection with backoff for minutes before it gives up; a job
    should say at once that the server is down. Only a connection failure counts: a server behind
    a proxy may answer ``/health`` with an error status and still accept the REST calls.

    Raises:
        ConfigError: nothing answers at ``tracking_uri``.
    """
    try:
        with urllib.request.urlopen(f"{tracking_uri.rstrip('/')}/health", timeout=timeout):
            pass
    except urllib.error.HTTPError:
        pass  # something answered: the REST calls will tell whether it is MLflow
    except (urllib.error.URLError, OSError) as error:
        reason = str(getattr(error, "reason", error)).splitlines()[0][:200]
        raise ConfigError(
            f"tracking.uri {tracking_uri}: no MLflow server answers ({reason}); start it "
            "(mlflow server --backend-store-uri sqlite:///mlflow.db ...) or fix tracking.uri / "
            "MLFLOW_TRACKING_URI"
        ) from None


def _local_artifact_location(tracking_uri: str) -> str | None:
    """File URI of ``mlartifacts/`` beside a local sqlite database, else ``None``.

    MLflow's own default for a sqlite store is ``./mlruns`` relative to whatever the current
    directory is when the store is opened; pinning it beside the database keeps the store and its
    artifacts together.
    """
    prefix = "sqlite:///"
    if not tracking_uri.startswith(prefix):
        return None
    db_path = tracking_uri[len(prefix) :].split("?", 1)[0]
    if not db_path or db_path == ":memory:":
        return None
    return (Path(db_path).resolve().parent / ARTIFACTS_DIR).as_uri()


def _clean_key(key: str) -> str:
    """Make ``key`` a legal MLflow param/metric/tag name.

    MLflow accepts alphanumerics, ``_ - . /`` and spaces, refuses ``.``/``..`` path parts and
    leading or doubled slashes, and caps the length; class names end up in metric keys
    (``fid/class/<c>``), so anything else is replaced by ``_`` rather than raised on.
    """
    parts = [
        "_" if part in (".", "..") else part
        for part in _BAD_KEY_CHARS.sub("_", str(key)).split("/")
        if part
    ]
    return "/".join(parts)[:MAX_ENTITY_KEY_LENGTH] or "_"


def _clean_artifact_path(path: str) -> str:
    """Relative artifact path with no empty, ``.`` or ``..`` parts."""
    parts = [p for p in str(path).replace("\\", "/").split("/") if p not in ("", ".", "..")]
    if not parts:
        raise ValueError(
            f"Artifact path {path!r} names no file; give a relative path like 'a.csv'."
        )
    return "/".join(parts)


def _flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; empty nested mappings vanish."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, prefix=f"{name}."))
        else:
            flat[name] = value
    return flat


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _now_ms() -> int:
    return int(time.time() * 1000)


def _metric_entities(
    metrics: Mapping[str, Any], step: int, timestamp: int | None = None
) -> list[Metric]:
    """Metric entities for every finite-or-infinite number in ``metrics``; None and NaN skipped."""
    timestamp = _now_ms() if timestamp is None else timestamp
    entities = []
    for key, value in _flatten(metrics).items():
        if value is None:
            continue
        number = float(value)  # numpy and 0-d torch scalars convert here
        if math.isnan(number):
            continue
        entities.append(Metric(_clean_key(key), number, timestamp, int(step)))
    return entities


class LossLogger:
    """Callback ``(step, losses)`` that buffers losses and writes them in batches.

    Made by :meth:`JobTracker.loss_callback`. It writes every ``every`` calls; call
    :meth:`flush` once the loop ends to write the rest. Safe to call from one training thread
    while another thread flushes.
    """

    def __init__(self, client: mlflow.MlflowClient, run_id: str, every: int = 10) -> None:
        if every < 1:
            raise ValueError(f"loss_callback(every={every}) must flush at least every 1 step.")
        self.client = client
        self.run_id = run_id
        self.every = every
        self._pending: list[Metric] = []
        self._calls_since_flush = 0
        self._lock = threading.Lock()

    def __call__(self, step: int, losses: Mapping[str, float]) -> None:
        """Record ``losses`` (name -> value) at ``step``; NaN and None values are skipped."""
        entities = _metric_entities(losses, step)
        with self._lock:
            self._pending.extend(entities)
            self._calls_since_flush += 1
            due = self._calls_since_flush >= self.every
        if due:
            self.flush()

    def flush(self) -> None:
        """Write every buffered value now."""
        with self._lock:
            pending, self._pending = self._pending, []
            self._calls_since_flush = 0
        for chunk in _chunks(pending, MAX_METRICS_PER_BATCH):
            self.client.log_batch(self.run_id, metrics=list(chunk))


class JobTracker:
    """One job's MLflow experiment, parent run and nested runs.

    Creating the tracker creates the experiment if it is missing (restoring it if it was deleted)
    and starts the parent run. Every ``log_*`` method takes an optional ``run_id`` and writes to
    the parent run when it is omitted. Also usable as a context manager: leaving the block ends
    still-open child runs and the parent, as ``FAILED`` when an exception escapes.

    Args:
        experiment: Experiment name, normally the job name.
        tracking_uri: Tracking URI; resolved with :func:`resolve_tracking_uri` (so ``None`` means
            environment, then ``sqlite:///<cwd>/mlflow.db``).
        run_name: Name of the parent run (MLflow makes one up when ``None``).
        tags: Tags set on the parent run.

    Attributes:
        tracking_uri: The resolved tracking URI.
        experiment_id: Id of the job's experiment.
        run_id: Id of the parent run.

    Example:
        >>> with JobTracker("iris-demo") as tracker:  # doctest: +SKIP
        ...     tracker.log_metrics({"baseline/accuracy": 0.91})
    """

    def __init__(
        self,
        experiment: str,
        tracking_uri: str | None = None,
        run_name: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> None:
        self.tracking_uri = resolve_tracking_uri(tracking_uri)
        if is_server_uri(self.tracking_uri):
            check_server(self.tracking_uri)
        self.client = mlflow.MlflowClient(tracking_uri=self.tracking_uri)
        self.experiment_id = self._get_or_create_experiment(experiment)
        run = self.client.create_run(
            self.experiment_id, run_name=run_name, tags=self._clean_tags(tags or {})
        )
        self.run_id: str = run.info.run_id
        self._open_children: list[str] = []
        self._lock = threading.Lock()

    # -- runs -----------------------------------------------------------------------------------

    def _get_or_create_experiment(self, name: str) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is None:
            try:
                return self.client.create_experiment(
                    name, artifact_location=_local_artifact_location(self.tracking_uri)
                )
            except MlflowException as error:
                # Another thread or process created it between our lookup and create.
                if error.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
                    raise
                found = self.client.get_experiment_by_name(name)
                if found is None:
                    raise
        if found.lifecycle_stage == "deleted":
            self.client.restore_experiment(found.experiment_id)
        return found.experiment_id

    def child(self, name: str) -> str:
        """Start a run nested under the parent run.

        Args:
            name: Run name, e.g. ``"train"``, ``"generate"``, ``"validate"``.

        Returns:
            The new run's id.
        """
        run = self.client.create_run(
            self.experiment_id, run_name=name, tags={MLFLOW_PARENT_RUN_ID: self.run_id}
        )
        with self._lock:
            self._open_children.append(run.info.run_id)
        return run.info.run_id

    def end(self, run_id: str | None = None, status: str = "FINISHED") -> None:
        """End a run.

        Args:
            run_id: The run to end; the parent run when ``None``.
            status: ``FINISHED``, ``FAILED`` or ``KILLED``.

        Raises:
            ValueError: If ``status`` is not an MLflow run status.
        """
        if status not in _RUN_STATUSES:
            raise ValueError(f"Run status {status!r} is not one of {sorted(_RUN_STATUSES)}.")
        target = run_id or self.run_id
        self.client.set_terminated(target, status=status)
        with self._lock:
            if target in self._open_children:
                self._open_children.remove(target)

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (a Dask task runner ships the job context to worker processes) without its
        lock and client; :meth:`__setstate__` makes new ones for the same store and runs."""
        state = self.__dict__.copy()
        del state["_lock"], state["client"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self.client = mlflow.MlflowClient(tracking_uri=self.tracking_uri)

    def __enter__(self) -> JobTracker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        status = "FINISHED" if exc_type is None else "FAILED"
        with self._lock:
            children = list(self._open_children)
        for child_id in children:
            self.end(child_id, status=status)
        self.end(status=status)

    def run_url(self) -> str:
        """Where to find the parent run: a link into the server's UI for a tracking server,
        else ``"<tracking_uri> experiment <id> run <run_id>"``."""
        return run_link(self.tracking_uri, self.experiment_id, self.run_id)

    # -- params, metrics, tags ------------------------------------------------------------------

    def log_params(self, params: Mapping[str, Any], run_id: str | None = None) -> None:
        """Log parameters; nested mappings become dotted keys (``train.lr``).

        Values are stringified and cut to MLflow's length limit. MLflow refuses to change a
        parameter already logged on the run with another value.

        Args:
            params: Possibly nested mapping of parameter names to values.
            run_id: Target run; the parent run when ``None``.
        """
        entities = {
            _clean_key(key): Param(_clean_key(key), str(value)[:MAX_PARAM_VAL_LENGTH])
            for key, value in _flatten(params).items()
        }
        for chunk in _chunks(list(entities.values()), MAX_PARAMS_TAGS_PER_BATCH):
            self.client.log_batch(run_id or self.run_id, params=list(chunk))

    def log_metrics(
        self,
        metrics: Mapping[str, float | None],
        step: int | None = None,
        run_id: str | None = None,
    ) -> None:
        """Log metrics at one step; ``None`` and NaN values are skipped, not raised on.

        Args:
            metrics: Metric names (nested mappings allowed, joined with ``.``) to numbers.
            step: Step of the values; 0 when ``None``.
            run_id: Target run; the parent run when ``None``.
        """
        entities = _metric_entities(metrics, step or 0)
        for chunk in _chunks(entities, MAX_METRICS_PER_BATCH):
            self.client.log_batch(run_id or self.run_id, metrics=list(chunk))

    def loss_callback(self, run_id: str, every: int = 10) -> LossLogger:
        """A ``callback(step, losses)`` for the training loop that logs losses in batches.

        Args:
            run_id: The run receiving the losses (normally the ``train`` child run).
            every: Write to MLflow once per this many calls.

        Returns:
            A :class:`LossLogger`; call its ``flush()`` after the last step.
        """
        return LossLogger(self.client, run_id, every=every)

    @staticmethod
    def _clean_tags(tags: Mapping[str, Any]) -> dict[str, str]:
        return {_clean_key(k): str(v)[:MAX_TAG_VAL_LENGTH] for k, v in tags.items()}

    def set_tags(self, tags: Mapping[str, Any], run_id: str | None = None) -> None:
        """Set tags on a run (values stringified and cut to MLflow's limit).

        Args:
            tags: Tag names to values.
            run_id: Target run; the parent run when ``None``.
        """
        entities = [RunTag(k, v) for k, v in self._clean_tags(tags).items()]
        for chunk in _chunks(entities, MAX_PARAMS_TAGS_PER_BATCH):
            self.client.log_batch(run_id or self.run_id, tags=list(chunk))

    # -- artifacts ------------------------------------------------------------------------------

    def log_text(self, text: str, artifact_file: str, run_id: str | None = None) -> None:
        """Store ``text`` as the artifact ``artifact_file`` (e.g. ``"config.yaml"``)."""
        self.client.log_text(run_id or self.run_id, text, _clean_artifact_path(artifact_file))

    def log_file(
        self, path: str | Path, artifact_path: str | None = None, run_id: str | None = None
    ) -> None:
        """Copy a local file, or a folder's contents, into the run's artifacts.

        Args:
            path: Local file or directory.
            artifact_path: Artifact folder to put it in; the artifact root when ``None``.
            run_id: Target run; the parent run when ``None``.

        Raises:
            FileNotFoundError: If ``path`` does not exist.
        """
        local = Path(path)
        if not local.exists():
            raise FileNotFoundError(f"Cannot log artifact {local}: no such file or directory.")
        folder = _clean_artifact_path(artifact_path) if artifact_path else None
        if local.is_dir():
            self.client.log_artifacts(run_id or self.run_id, str(local), folder)
        else:
            self.client.log_artifact(run_id or self.run_id, str(local), folder)

    def log_table(self, frame: pd.DataFrame, artifact_file: str, run_id: str | None = None) -> None:
        """Store a DataFrame as a CSV artifact (the index is kept only when it is meaningful)."""
        keep_index = not isinstance(frame.index, pd.RangeIndex)
        self.log_text(frame.to_csv(index=keep_index), artifact_file, run_id=run_id)

    def _log_figure(self, figure: Figure, artifact_file: str, run_id: str | None) -> None:
        # Figures are built on an Agg canvas without pyplot: no display is needed, the caller's
        # backend is left alone, and there is no global figure list to close from worker threads.
        FigureCanvasAgg(figure)
        self.client.log_figure(run_id or self.run_id, figure, _clean_artifact_path(artifact_file))

    def log_class_histograms(
        self,
        before: Mapping[Any, int],
        after: Mapping[Any, int],
        run_id: str | None = None,
        artifact_file: str = "class_histogram.png",
    ) -> None:
        """Plot rows per class before and after balancing as grouped bars, one PNG.

        Args:
            before: Class -> row count in the real data.
            after: Class -> row count after adding synthetic rows.
            run_id: Target run; the parent run when ``None``.
            artifact_file: Artifact name of the PNG.
        """
        self._log_figure(plots.class_histograms(before, after), artifact_file, run_id)

    def log_image_grid(
        self,
        images_by_class: Mapping[Any, np.ndarray],
        artifact_file: str,
        run_id: str | None = None,
        title: str = "",
    ) -> None:
        """One PNG with a row of images per class, labelled with the class.

        Args:
            images_by_class: Class -> uint8 ``(n, H, W, C)`` images; rows shorter than the longest
                are padded with blank tiles.
            artifact_file: Artifact name of the PNG, e.g. ``samples/step_000500.png``.
            run_id: Target run; the parent run when ``None``.
            title: Figure title.
        """
        figure = plots.image_grid(images_by_class, title)
        if figure is not None:
            self._log_figure(figure, artifact_file, run_id)

    def log_confusion_matrices(
        self,
        confusion: Mapping[str, np.ndarray],
        classes: Sequence[Any],
        run_id: str | None = None,
    ) -> None:
        """Plot each confusion matrix as an annotated heat map, ``confusion/<key>.png``.

        Args:
            confusion: ``"<arm>/<classifier>"`` -> square count matrix (rows true, columns
                predicted), ordered as ``classes``.
            classes: Class names in matrix order.
            run_id: Target run; the parent run when ``None``.

        Raises:
            ValueError: If a matrix is not ``len(classes)`` x ``len(classes)``.
        """
        for key, figure in plots.confusion_matrices(confusion, classes):
            self._log_figure(figure, f"confusion/{_clean_artifact_path(key)}.png", run_id)

    def log_report(
        self,
        html: str,
        description: str,
        artifact_file: str = "report.html",
        run_id: str | None = None,
    ) -> None:
        """Store the job's HTML report and show ``description`` on the run's page.

        Args:
            html: The page (self-contained: its images are inlined).
            description: A sentence or two of Markdown, the run's description in the MLflow UI
                (the ``mlflow.note.content`` tag).
            artifact_file: Artifact name of the page.
            run_id: Target run; the parent run when ``None``.
        """
        self.log_text(html, artifact_file, run_id=run_id)
        self.set_tags({MLFLOW_RUN_NOTE: description}, run_id=run_id)

    # -- model ----------------------------------------------------------------------------------

    def log_synthesizer(
        self,
        model_path: str | Path,
        registered_model_name: str | None,
        run_id: str | None = None,
    ) -> str:
        """Log a saved synthesizer as an MLflow pyfunc model, and register it when asked.

        The model is logged "from code" (``augment/mlflow_model.py``) with the saved file as its
        ``synthesizer`` artifact. Loaded with ``mlflow.pyfunc.load_model``, it takes a frame with
        columns ``label`` and ``n`` (and ``params={"seed": ...}``) and returns generated rows; it
        loads on the CPU and needs ``augment`` installed where it is served.

        Args:
            model_path: The file written by the sampler's ``save``.
            registered_model_name: Register a new version under this name; skip when ``None``.
            run_id: Run that owns the model; the parent run when ``None``.

        Returns:
            ``"models:/<name>/<version>"`` when registered, else the logged model's URI
            (``"models:/<model_id>"``).

        Raises:
            ModelFileError: If ``model_path`` does not exist.
        """
        local = Path(model_path)
        if not local.exists():
            raise ModelFileError(
                f"Synthesizer file {local} does not exist; save the fitted sampler first."
            )
        target = run_id or self.run_id
        with _FLUENT_LOCK, _fluent_tracking_uri(self.tracking_uri):
            status_before = self.client.get_run(target).info.status
            try:
                # Leaving this block marks the run as ended; the finally below undoes that.
                # MLflow prints "Successfully registered model ..." straight to stderr; it
                # goes to the log instead (-v in the CLI shows it).
                with (
                    mlflow.start_run(run_id=target, nested=mlflow.active_run() is not None),
                    warnings.catch_warnings(),
                    contextlib.redirect_stderr(io.StringIO()) as printed,
                ):
                    # An input example would make MLflow load the synthesizer (and torch) and
                    # sample from it at log time; the explicit signature already covers serving.
                    warnings.filterwarnings("ignore", message=".*An input example was not provided")
                    info = mlflow.pyfunc.log_model(
                        name=SYNTHESIZER_MODEL_NAME,
                        python_model=str(_MODEL_CODE_PATH),
                        artifacts={"synthesizer": str(local.resolve())},
                        pip_requirements=SYNTHESIZER_PIP_REQUIREMENTS,
                        signature=_SYNTHESIZER_SIGNATURE,
                        registered_model_name=registered_model_name,
                    )
            finally:
                if status_before == "RUNNING":
                    self.client.update_run(target, status="RUNNING")
        for line in printed.getvalue().splitlines():
            log.info("mlflow: %s", line)
        if registered_model_name and info.registered_model_version is not None:
            return f"models:/{registered_model_name}/{info.registered_model_version}"
        return info.model_uri

    def tag_model_version(self, model_uri: str, tags: Mapping[str, Any]) -> None:
        """Set tags on the registered model version ``models:/<name>/<version>``; other model
        URIs (a logged, unregistered model) have no version to tag and are left alone."""
        name, _, version = model_uri.removeprefix("models:/").rpartition("/")
        if not model_uri.startswith("models:/") or not name or not version.isdigit():
            return
        for key, value in self._clean_tags(tags).items():
            self.client.set_model_version_tag(name, version, key, value)


def run_link(tracking_uri: str, experiment_id: str, run_id: str) -> str:
    """A link to a run in the MLflow UI of a tracking server; a plain description otherwise."""
    if is_server_uri(tracking_uri):
        return f"{tracking_uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"
    return f"{tracking_uri} experiment {experiment_id} run {run_id}"


@contextmanager
def _fluent_tracking_uri(uri: str) -> Iterator[None]:
    """Point MLflow's fluent API at ``uri`` for the block, then put the previous setting back.

    ``mlflow.set_tracking_uri`` also writes ``MLFLOW_TRACKING_URI`` into the environment, which
    would leak into later :func:`resolve_tracking_uri` calls if left behind.
    """
    previous_env = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous_env)  # None clears both the global and the env var
