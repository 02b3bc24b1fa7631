"""The job config at the edge: one pydantic discriminated union over the kinds' configs, keyed by
``data.kind``, read from YAML with ``--set`` overrides::

    cfg = load_config("configs/breast_cancer.yaml", overrides=["train.steps=200"])
    type(cfg).__name__   # TabularJobConfig; an image job gives ImageJobConfig

Each kind's config lives in its wing (``augment/<kind>/config.py``); the union is built from the
registry, so a new kind adds its config there and nowhere else.
"""

from __future__ import annotations

import functools
import itertools
import re
from pathlib import Path
from typing import Annotated, Any, Union

from pydantic import Discriminator, Tag, TypeAdapter, ValidationError

from augment.core.config import (
    JobConfig,
    apply_overrides,
    format_validation_error,
    has_key,
    read_yaml,
)
from augment.core.errors import ConfigError
from augment.pipeline.registry import MODALITIES

DEFAULT_KIND = "tabular"


def _kind_of(raw: Any) -> str:
    """The union's discriminator: ``data.kind`` of a raw mapping or of a validated config."""
    if isinstance(raw, JobConfig):
        return raw.data.kind
    data = raw.get("data") if isinstance(raw, dict) else None
    kind = data.get("kind", DEFAULT_KIND) if isinstance(data, dict) else DEFAULT_KIND
    return kind if isinstance(kind, str) else repr(kind)


def _union(configs: tuple[tuple[str, type], ...]) -> Any:
    members = tuple(Annotated[config, Tag(kind)] for kind, config in configs)
    return Annotated[Union[members], Discriminator(_kind_of)]  # noqa: UP007


@functools.cache
def _adapter(configs: tuple[tuple[str, type], ...]) -> TypeAdapter:
    return TypeAdapter(_union(configs))


def kinds_with_key(loc: tuple[str, ...]) -> list[str]:
    """The data kinds whose config has the key at ``loc`` (for "applies only to" errors)."""
    return [kind for kind, m in MODALITIES.items() if has_key(m.config, loc)]


def parse_config(
    raw: dict[str, Any], origin: str = "<dict>", overrides: list[str] | None = None
) -> JobConfig:
    """Validate a raw dict into the JobConfig of its ``data.kind``; ConfigError with dotted paths
    (naming the ``--set`` entry of ``overrides`` that set a key in error)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"invalid config {origin}: the top level must be a mapping of sections")
    kind = _kind_of(raw)
    if kind not in MODALITIES:
        choices = " or ".join(repr(k) for k in MODALITIES)
        raise ConfigError(
            f"invalid config {origin}: data.kind: Input should be {choices} (got {kind!r})"
        )
    try:
        return _adapter(tuple((k, m.config) for k, m in MODALITIES.items())).validate_python(raw)
    except ValidationError as error:
        raise ConfigError(_format(error, origin, overrides)) from None


def _format(error: ValidationError, origin: str, overrides: list[str] | None) -> str:
    # A tagged union puts the tag first in every error location; the user wrote no such key.
    problems = []
    for problem in error.errors():
        loc = problem["loc"]
        if loc and loc[0] in MODALITIES:
            problem = {**problem, "loc": loc[1:]}
        problems.append(problem)
    return format_validation_error(problems, origin, kinds_with_key, overrides)


def load_config(path: str | Path, overrides: list[str] | None = None) -> JobConfig:
    """Read a YAML job config, apply ``--set`` style overrides, and validate it.

    Returns the config model of the job's ``data.kind`` (a :class:`JobConfig` subclass).

    Raises:
        ConfigError: the file is missing or unreadable, or a key is unknown or of the wrong type.
    """
    raw = apply_overrides(read_yaml(path), overrides or [])
    return parse_config(raw, origin=str(path), overrides=overrides)


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


def guess_kind(source: str) -> str:
    """The kind of data at ``source``, for a run without YAML: an ``.npz`` file or a folder of
    class folders of images is ``image``; a CSV or Parquet file or folder is ``tabular``."""
    from augment.core import storage

    if source.startswith("sklearn:"):
        return "image" if source == "sklearn:digits" else "tabular"
    path = storage.location(source)
    if path.suffix.lower() == ".npz":
        return "image"
    if path.is_dir():
        for folder in path.iterdir():
            if folder.is_dir():
                first = itertools.islice(folder.iterdir(), 20)  # a look, not a listing
                if any(f.suffix.lower() in IMAGE_SUFFIXES for f in first):
                    return "image"
    return "tabular"


def config_for_source(
    source: str, label: str | None, kind: str | None = None, name: str | None = None
) -> dict[str, Any]:
    """The raw config of a job on ``source`` with every other setting at its default: what
    ``augment run data.csv --label y`` runs and ``augment init`` writes.

    Raises:
        ConfigError: a table without ``label``, or a name that cannot be made from the source.
    """
    kind = kind or guess_kind(source)
    stem = Path(source.rstrip("/").split(":")[-1]).stem or "job"
    name = name or re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).lstrip("_.-") or "job"
    data: dict[str, Any] = {"source": source, "kind": kind}
    if kind == "tabular" and not label:
        raise ConfigError(
            f"{source} is a table: name its class column with --label (e.g. --label target)"
        )
    if label:
        data["label"] = label
        # one registered model per (file, label): every label of data.csv is not augment-data
        column = re.sub(r"[^A-Za-z0-9_.-]+", "_", label).strip("_") or "label"
        return {"name": name, "data": data, "tracking": {"model_name": f"augment-{name}-{column}"}}
    return {"name": name, "data": data}
