"""Parquet shards with a commit protocol: parts, then ``manifest.json``, then ``_SUCCESS``.

A run folder looks like::

    <output>/synthetic/part-00000-00000.parquet ...   the generated rows, by part and shard
    <output>/synthetic/_parts/part-00000.json ...     each part's record (augment.core.parts)
    <output>/manifest.json                      counts per class, files with rows and sha256, ...
    <output>/_SUCCESS                           written last; readers refuse a folder without it

The output may be a local folder or an fsspec URL (``s3://bucket/runs/x``, see
:mod:`augment.core.storage`); the commit point is ``_SUCCESS`` in both cases, but the way there differs:

- **local**: parts are written into a hidden staging folder beside ``synthetic/`` and renamed into
  place only when all of them are complete, so a crash never leaves a half file under its name;
- **object store**: there is no rename (a "move" is a copy of every object), but one PUT is
  atomic, so every part is written straight under ``synthetic/`` in one request. What makes that
  safe: (1) ``prepare_output`` deletes ``_SUCCESS`` first, then the manifest, and generation removes
  every object under ``synthetic/`` that is not a finished part of its own plan, model and
  settings (:mod:`augment.core.parts`) before a single new part is written, so stale parts of a
  crashed or replaced run never mix with new ones; (2) the manifest (one PUT) lists every part
  with its row count and sha256, and ``_SUCCESS`` (one PUT) is written after it; (3) readers
  refuse a location without ``_SUCCESS`` and read exactly the files the manifest lists,
  checking each against its sha256.

A reader that found ``_SUCCESS`` can still see a run disappear under it if someone reruns the
job with ``--overwrite`` at that moment (the same holds locally); the sha256 check then fails
loudly instead of returning a mix.
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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from augment.core import storage
from augment.core.config import setting
from augment.core.errors import DataError, OutputError
from augment.core.storage import Location

SUCCESS = "_SUCCESS"
MANIFEST = "manifest.json"
JOB_YAML = "job.yaml"  # the resolved config: `augment run <output>/job.yaml` repeats the job
REPORT = "report.html"  # the job's page for people (augment.tracking.report), before _SUCCESS
SHARD_DIR = "synthetic"
LOCK = ".augment.lock"
_UNREADABLE_LOCK_GRACE_SECONDS = 60.0


class OutputLock:
    """One job per output location: a lock file created atomically, recording host, pid and time.

    A lock whose process is gone (same host, pid no longer alive) is stale and taken over; a lock
    from another host cannot be checked and is respected until removed by hand.

    On an object store the lock is an object created with a conditional PUT (``If-None-Match``),
    so two machines writing to the same URL exclude each other as two processes do locally.
    """

    def __init__(self, output: str | Location, storage_options: dict[str, Any] | None = None):
        self.output = storage.location(output, storage_options)
        self.path = self.output / LOCK
        self.held = False
        self.created = False  # this lock made the folder: release removes it if still empty

    def acquire(self) -> OutputLock:
        if not storage.is_remote(self.output):  # object stores have no folders to create
            self.created = not self.output.exists()
            try:
                self.output.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise OutputError(
                    f"cannot create output {self.output}: {error.strerror or error}; choose a "
                    "writable output.path"
                ) from None
        payload = json.dumps(
            {"host": socket.gethostname(), "pid": os.getpid(), "time": time.time()}
        )
        for attempt in range(2):
            try:
                storage.create_exclusive(self.path, payload.encode())
            except FileExistsError:
                holder = self._holder()
                if attempt == 0 and self._stale(holder):
                    storage.remove(self.path)
                    continue
                who = f"pid {holder.get('pid')} on {holder.get('host')}" if holder else "a job"
                raise OutputError(
                    f"output {self.output} is in use by another augment job ({who}); wait for it "
                    f"to finish, or delete {self.path} if that job is gone"
                ) from None
            except OSError as error:
                raise OutputError(_write_error(self.output, error)) from None
            self.held = True
            return self
        raise AssertionError("unreachable")  # pragma: no cover

    def release(self) -> None:
        if self.held:
            storage.remove(self.path)
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
            except (OSError, AttributeError, TypeError):
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


def _write_error(out: Location, error: OSError) -> str:
    hint = "choose a writable output.path or fix its permissions"
    if storage.is_remote(out):
        hint = (
            "check that the bucket exists and that the credentials (AWS_* / GOOGLE_* environment "
            "variables or output.storage_options) may write to it"
        )
    return f"cannot write to output {out}: {error.strerror or error}; {hint}"


def sha256_file(path: Location) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def prepare_output(
    path: str | Location,
    overwrite: bool,
    storage_options: dict[str, Any] | None = None,
    work: Path | None = None,
) -> Location:
    """Make ``path`` (a folder or an fsspec URL) ready for a new run.

    - a finished run (``_SUCCESS`` present) is refused unless ``overwrite``; with it, ``_SUCCESS``
      goes first so that an interrupted overwrite never looks finished, and the old checkpoints
      (in ``work``, the local folder that holds them; by default the output itself) go too, so
      the new run trains afresh;
    - leftovers of a crashed run are removed: staging folders locally; on an object store, where
      files are written in place, everything under ``images/``. Checkpoints are kept for resume,
      and so are the parts of ``synthetic/`` that a crashed run finished: generation keeps
      those of its own plan, model and settings and removes the rest before it writes
      (:mod:`augment.core.parts`).

    Raises:
        OutputError: the folder holds something that is not an augment run (with or without
            ``overwrite``), a finished run is there without ``overwrite``, or the location is
            not writable (checked now with a probe file, not after training).
    """
    out = storage.location(path, storage_options)
    remote = storage.is_remote(out)
    work = work if work is not None else (None if remote else out)
    if not remote and out.exists() and not out.is_dir():
        raise OutputError(f"output path {out} is a file; choose a folder with output.path")
    try:
        foreign = _foreign_entries(out)
        if foreign:
            shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
            raise OutputError(
                f"output {out} is not empty and holds no augment run ({shown}); augment only "
                "writes into a new or empty folder or over its own run, --overwrite or not: "
                "choose another output.path (or --output)"
            )
        finished = (out / SUCCESS).exists()
        if finished and not overwrite:
            raise OutputError(
                f"output {out} already holds a finished run; pass --overwrite "
                f"({setting('output.overwrite', True)}), choose another output.path, or give "
                "every run a folder of its own with a run placeholder "
                f"({setting('output.path', 'runs/{name}/{run_date}')})"
            )
        if finished:
            storage.remove(out / SUCCESS)
            if work is not None:
                storage.remove(work / "checkpoints")
        storage.remove(out / MANIFEST)  # of the replaced run, or of one killed before _SUCCESS
        storage.remove(out / REPORT)
        if finished:
            storage.remove(out / SHARD_DIR)
        if finished or remote:
            storage.remove(out / "images")
        if not remote:
            out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-probe-{uuid.uuid4().hex}"
        storage.write_bytes(probe, b"")
        storage.remove(probe)
    except OutputError:
        raise
    except OSError as error:
        raise OutputError(_write_error(out, error)) from None
    # What a killed run leaves behind locally: staging folders, and the temporary files of atomic
    # writes (checkpoints, the model file, JSON files) that never got renamed.
    if not remote:
        for pattern in (f".{SHARD_DIR}.tmp-*", ".images.tmp-*"):
            for stale in out.glob(pattern):
                shutil.rmtree(stale, ignore_errors=True)
    for folder, pattern in ((out, ".*.tmp"), (out, ".*.tmp-*"), (work, "checkpoints/.*.tmp")):
        if folder is None or storage.is_remote(folder):
            continue
        for stale in folder.glob(pattern):
            if stale.is_file():
                stale.unlink(missing_ok=True)
    return out


#: what a run of augment (finished, crashed or running) keeps in its output folder
RUN_ENTRIES = frozenset(
    {
        SUCCESS,
        MANIFEST,
        REPORT,
        JOB_YAML,
        SHARD_DIR,
        LOCK,
        "images",
        "model",
        "checkpoints",
        "holdout_ids.json",
    }
)


def _foreign_entries(out: Location) -> list[str]:
    """Names in ``out`` that no augment run writes (its files, staging folders, temporaries).

    A folder holding only augment's names is a run to resume or replace; anything else is the
    user's, and a job must not write into it (``prepare_output`` would delete parts of it).
    """
    try:
        names = sorted(entry.name for entry in out.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [
        name
        for name in names
        if name not in RUN_ENTRIES
        and not (name.startswith(".") and (".tmp" in name or name.startswith(".write-probe-")))
    ]


class StagedFolder:
    """A folder of the output that appears whole or not at all: the commit protocol of every file
    a job writes besides the manifest.

    Local: files go into a hidden staging folder that :meth:`commit` renames to ``<output>/<name>``
    (replacing what a crashed earlier run left there); until then nothing appears under the final
    name. Object store: files go straight to ``<output>/<name>/``, each in one PUT (see the module
    docstring for why that is safe: readers require ``_SUCCESS``, written last). :meth:`abort`, or
    an exception inside ``with``, removes what was written.
    """

    def __init__(self, output: Location, name: str, staging: str | None = None) -> None:
        self.output = storage.location(output)
        self.name = name
        self.remote = storage.is_remote(self.output)
        if self.remote:
            self.folder = self.output / name
        else:
            # a fixed staging name (a part's) is cleared first: what a killed attempt left there
            self.folder = self.output / f".{name}.tmp-{staging or uuid.uuid4().hex[:8]}"
            if staging:
                shutil.rmtree(self.folder, ignore_errors=True)
            self.folder.mkdir(parents=True)

    def __enter__(self) -> StagedFolder:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()

    def commit(self) -> None:
        if self.remote:
            return
        final = self.output / self.name
        if final.exists():
            shutil.rmtree(final)
        os.replace(self.folder, final)

    def abort(self) -> None:
        storage.remove(self.folder)


class ShardWriter(StagedFolder):
    """Buffer DataFrames and write fixed-size Parquet parts into ``<output>/synthetic``, staged
    and committed as a :class:`StagedFolder`.

    With ``part`` (a part of the generation plan, :mod:`augment.core.parts`) the files are named
    ``part-<part>-<n>.parquet`` and :meth:`commit` moves them into ``synthetic/`` beside the
    other parts' files instead of replacing the folder.
    """

    def __init__(self, output: Location, rows_per_shard: int, part: int | None = None) -> None:
        super().__init__(output, SHARD_DIR, None if part is None else f"p{part:05d}")
        self.part = part
        self.rows_per_shard = rows_per_shard
        self.files: list[dict[str, Any]] = []
        self._buffer: list[pd.DataFrame] = []
        self._buffered = 0
        self._schema: pa.Schema | None = None
        self._dictionary: list[str] | bool = True

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
            # Dictionary encoding pays for labels and categories, not for generated floats,
            # which are nearly all distinct: skipping it there writes a float part ~7x faster
            # and ~20% smaller.
            self._dictionary = [
                f.name for f in table.schema if not pa.types.is_floating(f.type)
            ] or False
        # Serialised in memory first: the sha256 comes from the same bytes that are written, and
        # an object store receives the part in a single PUT.
        sink = pa.BufferOutputStream()
        pq.write_table(table.cast(self._schema), sink, use_dictionary=self._dictionary)
        data = sink.getvalue().to_pybytes()
        del table, sink
        release_arrow_memory()
        name = (
            f"part-{len(self.files):05d}.parquet"
            if self.part is None
            else f"part-{self.part:05d}-{len(self.files):05d}.parquet"
        )
        storage.write_bytes(self.folder / name, data)
        self.files.append(
            {
                "path": f"{SHARD_DIR}/{name}",
                "rows": len(part),
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        )

    def commit(self) -> list[dict[str, Any]]:  # type: ignore[override]
        if self._buffered:
            self._flush(self._buffered)
        if self.part is None or self.remote:
            super().commit()
            return self.files
        final = self.output / SHARD_DIR
        final.mkdir(exist_ok=True)
        for entry in self.files:
            name = entry["path"].rsplit("/", 1)[-1]
            os.replace(self.folder / name, final / name)
        shutil.rmtree(self.folder, ignore_errors=True)
        return self.files

    def abort(self) -> None:
        if self.part is None or not self.remote:
            super().abort()
            return
        for entry in self.files:  # on a store, only this part's files: the others' stay
            storage.remove(self.output / entry["path"])


def write_json_atomic(path: Location, data: dict[str, Any]) -> None:
    """Write JSON in one piece: temporary file and rename locally, a single PUT on a store."""
    storage.write_bytes(path, json.dumps(data, indent=2, sort_keys=False, default=str).encode())


def finalize(output: Location, manifest: dict[str, Any]) -> None:
    """Write the manifest, then ``_SUCCESS`` (host, pid) last."""
    write_json_atomic(output / MANIFEST, manifest)
    write_json_atomic(output / SUCCESS, {"host": socket.gethostname(), "pid": os.getpid()})


def read_manifest(
    path: str | Location, storage_options: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The manifest of a finished run (a local folder or a URL).

    Raises:
        DataError: the run has no ``_SUCCESS`` (it did not finish).
    """
    out = storage.location(path, storage_options)
    _require_success(out)
    return json.loads((out / MANIFEST).read_text())


def _require_success(out: Location) -> None:
    if not (out / SUCCESS).exists():
        raise DataError(
            f"{out} has no {SUCCESS} marker: the run that wrote it did not finish; rerun the job"
        )


def read_shards(
    path: str | Location,
    verify: bool = True,
    require_success: bool = True,
    storage_options: dict[str, Any] | None = None,
    columns: list[str] | None = None,
    take: np.ndarray | None = None,
) -> pd.DataFrame:
    """Read a finished run's shards, checking row counts (and sha256 when ``verify``).

    ``path`` is a local folder or an fsspec URL (``storage_options`` go to fsspec).
    ``require_success=False`` is for the job itself, which validates its committed shards before
    it writes the manifest; it then reads every part of ``synthetic/`` in order.
    ``columns`` reads only those columns; ``take`` (sorted row numbers over all parts in order)
    keeps only those rows, one part at a time, so a sample of a large run never holds it all.
    """
    frames = list(iter_shards(path, verify, require_success, storage_options, columns, take))
    if not frames:
        return pd.DataFrame()
    return pd.concat(frames, ignore_index=True)


def iter_shards(
    path: str | Location,
    verify: bool = True,
    require_success: bool = True,
    storage_options: dict[str, Any] | None = None,
    columns: list[str] | None = None,
    take: np.ndarray | None = None,
) -> Iterator[pd.DataFrame]:
    """:func:`read_shards` one part at a time: each part's rows (those of ``take`` in it) as a
    frame, for a reader that must never hold the whole run (large images)."""
    out = storage.location(path, storage_options)
    if require_success:
        entries = read_manifest(out)["files"]
    else:
        entries = [
            {"path": f"{SHARD_DIR}/{p.name}", "rows": None, "sha256": None}
            for p in sorted((out / SHARD_DIR).glob("part-*.parquet"), key=lambda p: p.name)
        ]
        verify = False
    read_rows = 0  # rows of the parts before this one (for ``take``)
    for entry in entries:
        file = out / entry["path"]
        data = file.read_bytes()  # one read serves both the checksum and the parse
        if verify and hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise DataError(
                f"shard {file} does not match its sha256 in the manifest; rerun the job"
            )
        table = pq.read_table(pa.BufferReader(data), columns=columns)
        del data
        if entry["rows"] is not None and table.num_rows != entry["rows"]:
            raise DataError(
                f"shard {file} has {table.num_rows} rows, the manifest says {entry['rows']}"
            )
        if take is not None:
            first, taken = read_rows, np.searchsorted(take, read_rows + table.num_rows)
            read_rows += table.num_rows
            table = table.take(take[np.searchsorted(take, first) : taken] - first)
        frame = table.to_pandas()
        del table
        release_arrow_memory()
        yield frame


def release_arrow_memory() -> None:
    """Give back to the system what Arrow's allocator (mimalloc or jemalloc) keeps after a
    part is written or read: measured on 256 px images, it otherwise held a few hundred MB
    of freed part buffers for the rest of the job."""
    pa.default_memory_pool().release_unused()
