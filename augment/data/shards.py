"""Parquet shards with a commit protocol: parts, then ``manifest.json``, then ``_SUCCESS``.

A run folder looks like::

    <output>/synthetic/part-00000.parquet ...   the generated rows
    <output>/manifest.json                      counts per class, files with rows and sha256, ...
    <output>/_SUCCESS                           written last; readers refuse a folder without it

Parts are written into a hidden staging folder beside ``synthetic/`` and renamed into place only
when all of them are complete, so a crash never leaves a half file under the final name.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import socket
import time
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from augment.errors import DataError, OutputError

SUCCESS = "_SUCCESS"
MANIFEST = "manifest.json"
SHARD_DIR = "synthetic"
LOCK = ".augment.lock"
_UNREADABLE_LOCK_GRACE_SECONDS = 60.0


class OutputLock:
    """One job per output folder: a lock file created atomically, recording host, pid and time.

    A lock whose process is gone (same host, pid no longer alive) is stale and taken over; a lock
    from another host cannot be checked and is respected until removed by hand.
    """

    def __init__(self, output: str | Path) -> None:
        self.output = Path(output).expanduser()
        self.path = self.output / LOCK
        self.held = False
        self.created = False  # this lock made the folder: release removes it if still empty

    def acquire(self) -> OutputLock:
        self.created = not self.output.exists()
        try:
            self.output.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise OutputError(
                f"cannot create output {self.output}: {error.strerror or error}; choose a writable "
                "output.path"
            ) from None
        for attempt in range(2):
            try:
                handle = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._holder()
                if attempt == 0 and self._stale(holder):
                    self.path.unlink(missing_ok=True)
                    continue
                who = f"pid {holder.get('pid')} on {holder.get('host')}" if holder else "a job"
                raise OutputError(
                    f"output {self.output} is in use by another augment job ({who}); wait for it "
                    f"to finish, or delete {self.path} if that job is gone"
                ) from None
            except OSError as error:
                raise OutputError(
                    f"cannot write to output {self.output}: {error.strerror or error}; choose a "
                    "writable output.path or fix its permissions"
                ) from None
            with os.fdopen(handle, "w") as stream:
                json.dump(
                    {"host": socket.gethostname(), "pid": os.getpid(), "time": time.time()}, stream
                )
            self.held = True
            return self
        raise AssertionError("unreachable")  # pragma: no cover

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False
            if self.created:  # a job that failed before writing anything leaves no empty folder
                with contextlib.suppress(OSError):
                    self.output.rmdir()

    def _holder(self) -> dict[str, Any]:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}

    def _stale(self, holder: dict[str, Any]) -> bool:
        if not holder:  # unreadable: being written right now, or left half-written by a crash
            try:
                age = time.time() - self.path.stat().st_mtime
            except OSError:
                return True
            return age > _UNREADABLE_LOCK_GRACE_SECONDS
        if holder.get("host") != socket.gethostname():
            return False
        try:
            os.kill(int(holder["pid"]), 0)
        except ProcessLookupError:
            return True
        except (PermissionError, ValueError, KeyError, TypeError):
            return False
        return False


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def prepare_output(path: str | Path, overwrite: bool) -> Path:
    """Make ``path`` ready for a new run.

    - a finished run (``_SUCCESS`` present) is refused unless ``overwrite``; with it, ``_SUCCESS``
      goes first so that an interrupted overwrite never looks finished, and the old checkpoints go
      too, so the new run trains afresh;
    - leftovers of a crashed run (staging folders) are removed; checkpoints are kept for resume.

    Raises:
        OutputError: a finished run is there without ``overwrite``, or the path is not writable.
    """
    out = Path(path).expanduser()
    if out.exists() and not out.is_dir():
        raise OutputError(f"output path {out} is a file; choose a folder with output.path")
    if (out / SUCCESS).exists():
        if not overwrite:
            raise OutputError(
                f"output {out} already holds a finished run; pass --overwrite "
                "(output.overwrite: true) or choose another output.path"
            )
        (out / SUCCESS).unlink()
        (out / MANIFEST).unlink(missing_ok=True)
        shutil.rmtree(out / SHARD_DIR, ignore_errors=True)
        shutil.rmtree(out / "images", ignore_errors=True)
        shutil.rmtree(out / "checkpoints", ignore_errors=True)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-probe-{uuid.uuid4().hex}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise OutputError(
            f"cannot write to output {out}: {error.strerror or error}; choose a writable "
            "output.path or fix its permissions"
        ) from None
    # What a killed run leaves behind: staging folders, and the temporary files of atomic writes
    # (checkpoints, the model file, JSON files) that never got renamed.
    for pattern in (f".{SHARD_DIR}.tmp-*", ".images.tmp-*"):
        for stale in out.glob(pattern):
            shutil.rmtree(stale, ignore_errors=True)
    for pattern in (".*.tmp", ".*.tmp-*", "checkpoints/.*.tmp"):
        for stale in out.glob(pattern):
            if stale.is_file():
                stale.unlink(missing_ok=True)
    return out


class ShardWriter:
    """Buffer DataFrames and write fixed-size Parquet parts into a staging folder.

    ``commit()`` renames the staging folder to ``<output>/synthetic``. Until then nothing appears
    under the final name; ``abort()`` (or an exception inside ``with``) removes the staging folder.
    """

    def __init__(self, output: Path, rows_per_shard: int) -> None:
        self.output = Path(output)
        self.rows_per_shard = rows_per_shard
        self.staging = self.output / f".{SHARD_DIR}.tmp-{uuid.uuid4().hex[:8]}"
        self.staging.mkdir(parents=True)
        self.files: list[dict[str, Any]] = []
        self._buffer: list[pd.DataFrame] = []
        self._buffered = 0
        self._schema: pa.Schema | None = None

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()

    def write(self, frame: pd.DataFrame) -> None:
        self._buffer.append(frame)
        self._buffered += len(frame)
        while self._buffered >= self.rows_per_shard:
            self._flush(self.rows_per_shard)

    def _flush(self, n_rows: int) -> None:
        merged = pd.concat(self._buffer, ignore_index=True)
        part, rest = merged.iloc[:n_rows], merged.iloc[n_rows:]
        self._buffer = [rest] if len(rest) else []
        self._buffered = len(rest)
        table = pa.Table.from_pandas(part, preserve_index=False)
        if self._schema is None:
            self._schema = table.schema
        name = f"part-{len(self.files):05d}.parquet"
        tmp = self.staging / f".{name}.tmp"
        pq.write_table(table.cast(self._schema), tmp)
        os.replace(tmp, self.staging / name)
        self.files.append(
            {
                "path": f"{SHARD_DIR}/{name}",
                "rows": len(part),
                "sha256": sha256_file(self.staging / name),
            }
        )

    def commit(self) -> list[dict[str, Any]]:
        if self._buffered:
            self._flush(self._buffered)
        final = self.output / SHARD_DIR
        if final.exists():
            shutil.rmtree(final)
        os.replace(self.staging, final)
        return self.files

    def abort(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=str))
    os.replace(tmp, path)


def finalize(output: Path, manifest: dict[str, Any]) -> None:
    """Write the manifest, then ``_SUCCESS`` (host, pid) last."""
    write_json_atomic(output / MANIFEST, manifest)
    write_json_atomic(output / SUCCESS, {"host": socket.gethostname(), "pid": os.getpid()})


def read_manifest(path: str | Path) -> dict[str, Any]:
    out = Path(path)
    _require_success(out)
    return json.loads((out / MANIFEST).read_text())


def _require_success(out: Path) -> None:
    if not (out / SUCCESS).exists():
        raise DataError(
            f"{out} has no {SUCCESS} marker: the run that wrote it did not finish; rerun the job"
        )


def read_shards(
    path: str | Path, verify: bool = True, require_success: bool = True
) -> pd.DataFrame:
    """Read a finished run's shards, checking row counts (and sha256 when ``verify``).

    ``require_success=False`` is for the job itself, which validates its committed shards before
    it writes the manifest; it then reads every part of ``synthetic/`` in order.
    """
    out = Path(path)
    if require_success:
        entries = read_manifest(out)["files"]
    else:
        entries = [
            {"path": f"{SHARD_DIR}/{p.name}", "rows": None, "sha256": None}
            for p in sorted((out / SHARD_DIR).glob("part-*.parquet"))
        ]
        verify = False
    frames = []
    for entry in entries:
        file = out / entry["path"]
        if verify and sha256_file(file) != entry["sha256"]:
            raise DataError(
                f"shard {file} does not match its sha256 in the manifest; rerun the job"
            )
        frame = pq.read_table(file).to_pandas()
        if entry["rows"] is not None and len(frame) != entry["rows"]:
            raise DataError(
                f"shard {file} has {len(frame)} rows, the manifest says {entry['rows']}"
            )
        frames.append(frame)
    if not frames:
        return pd.DataFrame()
    return pd.concat(frames, ignore_index=True)
