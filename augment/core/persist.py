"""Safe model files: torch.save of plain containers, read back with ``weights_only=True``.

Nothing we write holds a pickled class, so loading never runs code from the file. A payload is a dict
with a ``format`` tag; a file of another kind, a truncated file or a tampered one is refused with a
:class:`~augment.core.errors.ModelFileError` that names the file.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch

from augment.core.errors import ModelFileError

_PLAIN = (str, int, float, bool, type(None), torch.Tensor, torch.dtype, torch.Size)


def _check_plain(value: Any, where: str = "payload") -> None:
    """Refuse anything ``weights_only`` loading would reject, at save time rather than load time."""
    if isinstance(value, dict):
        for key, item in value.items():
            _check_plain(key, f"{where} key")
            _check_plain(item, f"{where}[{key!r}]")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_plain(item, f"{where}[{i}]")
    elif not isinstance(value, _PLAIN):
        raise TypeError(f"{where} holds a {type(value).__name__}; convert it to plain data first")


def payload_digest(payload: Any) -> str:
    """sha256 of a payload's content (keys, plain values, tensors' dtype, shape and bytes), the
    same whatever file it is saved to: what identifies a model (the bytes of a torch file also
    hold its name and a random id)."""
    digest = hashlib.sha256()

    def feed(value: Any) -> None:
        if isinstance(value, dict):
            digest.update(b"{")
            for key in sorted(value, key=repr):
                feed(key)
                feed(value[key])
            digest.update(b"}")
        elif isinstance(value, list | tuple):
            digest.update(b"[")
            for item in value:
                feed(item)
            digest.update(b"]")
        elif isinstance(value, torch.Tensor):
            tensor = value.detach().to("cpu").contiguous()
            digest.update(f"T{tensor.dtype}{tuple(tensor.shape)}".encode())
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
        else:
            digest.update(f"{type(value).__name__}:{value!r};".encode())

    feed(payload)
    return digest.hexdigest()


def save_payload(path: str | Path, payload: dict[str, Any]) -> None:
    """Write atomically: a temporary file in the same folder, then rename over the target."""
    _check_plain(payload)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        torch.save(payload, tmp_name)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def load_payload(path: str | Path, expected_format: str | tuple[str, ...]) -> dict[str, Any]:
    """Read a payload written by :func:`save_payload` without unpickling arbitrary objects.

    Raises:
        ModelFileError: missing, truncated, tampered, or not an ``expected_format`` file.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file {path} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (
        pickle.UnpicklingError,
        RuntimeError,
        EOFError,
        zipfile.BadZipFile,
        ValueError,
    ) as error:
        first_line = (
            str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        )
        raise ModelFileError(
            f"model file {path} is truncated, corrupt or holds code that is not allowed to run "
            f"({first_line[:200]}); retrain or restore it from the run's artifacts"
        ) from None
    formats = (expected_format,) if isinstance(expected_format, str) else expected_format
    if not isinstance(payload, dict) or payload.get("format") not in formats:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        wanted = " or ".join(formats)
        kinds = {f.rsplit("/", 1)[0] for f in formats}
        if isinstance(found, str) and found.rsplit("/", 1)[0] in kinds:
            raise ModelFileError(
                f"model file {path} was saved by an earlier version of augment ({found}; this "
                f"version reads {wanted}); retrain the model (a cached one is retrained on rerun)"
            )
        raise ModelFileError(f"model file {path} is not a {wanted} file (found {found!r})")
    return payload
