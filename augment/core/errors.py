"""Typed errors. Every message names the file, column, class or key at fault and says how to fix it.

The CLI prints ``str(error)`` on one line and exits non-zero; the Python API raises these as they are.
"""

from __future__ import annotations

from typing import Any


class AugmentError(Exception):
    """Base class of every error this package raises on purpose."""

    exit_code = 1


class ConfigError(AugmentError, ValueError):
    """The job configuration is invalid (unknown key, wrong type, impossible value)."""

    exit_code = 2


class DataError(AugmentError, ValueError):
    """The input data cannot be used as it is (missing file, missing label, NaNs, one class ...)."""

    exit_code = 3


class OutputError(AugmentError, OSError):
    """The output location cannot be written, or already holds a finished run."""

    exit_code = 4


class DeviceError(AugmentError, RuntimeError):
    """The requested device is not available on this machine."""

    exit_code = 5


class ModelFileError(AugmentError, ValueError):
    """A checkpoint or saved sampler is missing, truncated, tampered with or of another kind."""

    exit_code = 6


class ValidationFailed(AugmentError):
    """The do-no-harm gate failed: synthetic rows did not lift balanced accuracy enough.

    The shards are kept; the run is marked as failing validation. ``summaries`` holds the job
    summaries (``JobResult.summary()``) of the run that failed, so that a caller can still show
    what was done.
    """

    exit_code = 10

    def __init__(self, message: str, summaries: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.summaries = list(summaries or [])

    def __reduce__(self) -> tuple[Any, ...]:  # pickled with its summaries (Dask, Prefect)
        return (type(self), (str(self), self.summaries))
