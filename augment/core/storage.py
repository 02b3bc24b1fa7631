"""Where a job reads and writes: a local path or an fsspec URL (``s3://``, ``gs://``, ``memory://``).

:func:`location` turns what the user wrote into a path object. A local path becomes a plain
:class:`pathlib.Path`, so everything local keeps its atomic renames and ``O_EXCL`` files; a URL
becomes a :class:`upath.UPath` (universal_pathlib: the pathlib API over fsspec), so the same code
can say ``output / "manifest.json"``, ``exists()``, ``glob()`` or ``read_bytes()`` on both. The few
things object stores do differently are the small functions below, which branch on
:func:`is_remote`:

- there is no rename, but a single PUT is atomic: :func:`write_bytes` writes an object in one
  request (a reader sees the whole object or none), where a local file goes through a temporary
  name and ``os.replace``;
- there are no folders: :func:`remove` deletes a prefix, and nothing needs ``mkdir``;
- an exclusive create is a conditional PUT (``If-None-Match: *``): :func:`create_exclusive`.

Credentials and endpoints come from where the fsspec backend looks for them (s3fs through
botocore: ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL``, ``AWS_PROFILE``
...; gcsfs: ``GOOGLE_APPLICATION_CREDENTIALS``), and ``storage_options`` are handed to fsspec as
they are (``{"endpoint_url": ..., "anon": true}``)::

    out = location("s3://bucket/runs/wine", {"endpoint_url": "http://127.0.0.1:9000"})
    write_bytes(out / "manifest.json", b"{}")
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

from fsspec import get_filesystem_class
from fsspec.core import split_protocol
from upath import UPath

from augment.core.errors import ConfigError

Location = Path | UPath
_LOCAL_PROTOCOLS = frozenset({None, "file", "local"})
_SECRET_KEY = re.compile(r"key|secret|token|password|credential|session", re.IGNORECASE)
REDACTED = "***"


def is_url(target: str | os.PathLike) -> bool:
    """True for a URL of a non-local fsspec filesystem (``s3://b/k``), False for a local path."""
    protocol, _ = split_protocol(str(target))
    return protocol not in _LOCAL_PROTOCOLS


def location(target: str | os.PathLike, storage_options: dict[str, Any] | None = None) -> Location:
    """A path object for ``target``: :class:`~pathlib.Path` when local, :class:`UPath` for a URL.

    ``file://`` URLs are local paths. A path object passed in comes back as it is.

    Raises:
        ConfigError: the URL scheme is unknown, or its fsspec backend (s3fs, gcsfs ...) is not
            installed.
    """
    if isinstance(target, UPath) and not isinstance(target, Path):
        return target
    if isinstance(target, Path):
        return target.expanduser()
    text = str(target)
    if is_url(text):
        protocol = split_protocol(text)[0]
        try:
            get_filesystem_class(protocol)
        except ImportError as error:  # e.g. s3:// without s3fs
            raise ConfigError(
                f"{text}: {error} (for s3://: pip install 'augment[s3]'), or use a local path"
            ) from None
        except ValueError:
            raise ConfigError(
                f"{text}: no fsspec filesystem handles {protocol}://; check the URL scheme "
                "(s3://, gs://, az://, memory:// ...)"
            ) from None
        return UPath(text, **(storage_options or {}))
    return Path(split_protocol(text)[1]).expanduser()


def is_remote(path: Location) -> bool:
    """True when ``path`` lives on an fsspec filesystem other than the local disk."""
    return not isinstance(path, Path)


def describe(path: Location) -> str:
    """How to name ``path`` in messages and tags: the URL, or the absolute local path."""
    return str(path) if is_remote(path) else str(Path(path).resolve())


def write_bytes(path: Location, data: bytes) -> None:
    """Write ``data`` so that no reader ever sees a partial file.

    Local: a temporary file in the same folder, renamed over ``path``. Object store: one PUT,
    which is atomic there (the object appears complete or not at all).
    """
    if is_remote(path):
        path.fs.pipe_file(path.path, data)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_many(files: dict[Location, bytes]) -> None:
    """Write several small files of one filesystem; on an object store the PUTs go out
    concurrently (each still atomic on its own)."""
    if not files:
        return
    first = next(iter(files))
    if is_remote(first):
        first.fs.pipe({path.path: data for path, data in files.items()})
        return
    for path, data in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def create_exclusive(path: Location, data: bytes) -> None:
    """Create ``path`` holding ``data``; raise :class:`FileExistsError` when it exists.

    Local: ``O_CREAT | O_EXCL``. Object store: a conditional PUT (``If-None-Match: *``), which AWS
    S3, MinIO, GCS and moto honour; a server that ignores the condition makes this a plain PUT.
    """
    if is_remote(path):
        path.fs.pipe_file(path.path, data, mode="create")
        return
    handle = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    with os.fdopen(handle, "wb") as stream:
        stream.write(data)


def remove(path: Location) -> None:
    """Delete a file or a whole folder (prefix); nothing happens when it is not there."""
    if is_remote(path):
        if path.fs.exists(path.path):
            path.fs.rm(path.path, recursive=True)
        return
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def arrow_path(path: Location) -> tuple[str, Any]:
    """``(path, filesystem)`` as pyarrow's readers take them (``filesystem=None`` when local)."""
    return (path.path, path.fs) if is_remote(path) else (str(path), None)


def default_work_dir(output_url: str) -> Path:
    """The local folder that holds what stays on this machine for a remote ``output_url``.

    ``$XDG_CACHE_HOME/augment/work/<last path part>-<hash of the URL>`` (``~/.cache`` when the
    variable is unset): one folder per output URL, so a rerun on the same machine finds its
    checkpoints again.
    """
    cache = Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser()
    tail = re.sub(r"[^A-Za-z0-9_.-]", "_", output_url.rstrip("/").rsplit("/", 1)[-1])[:40]
    digest = hashlib.sha256(output_url.encode()).hexdigest()[:12]
    return cache / "augment" / "work" / f"{tail or 'output'}-{digest}"


def redact(options: dict[str, Any]) -> dict[str, Any]:
    """``storage_options`` safe to print and log: values of secret-looking keys are masked."""
    clean: dict[str, Any] = {}
    for key, value in options.items():
        if isinstance(value, dict):
            clean[key] = redact(value)
        elif _SECRET_KEY.search(str(key)) and value is not None:
            clean[key] = REDACTED
        else:
            clean[key] = value
    return clean
