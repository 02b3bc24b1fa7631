"""Making the parts of a generation plan, in the job's process or on a Dask worker.

:class:`PartsJob` is what a worker needs to make parts, and nothing large: where the output is,
where the generator file is and its digest, the settings of generation. The generator is loaded
once per worker process and kept (:func:`_generator`); the job's own process passes the generator
it holds instead. :func:`make_parts` makes the parts it is given one after the other, each through
the commit protocol of :mod:`augment.core.parts`, and returns their records. A part already done
with the same key (by an earlier attempt or a crashed run) is kept as it is.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from threadpoolctl import threadpool_limits

from augment.core import storage
from augment.core.device import available_cores, cpu_threads
from augment.core.parts import (
    Part,
    finished_record,
    part_key,
    remove_part,
    write_record,
)
from augment.core.shards import ShardWriter
from augment.pipeline.registry import modality

#: a test's fault injection: ``<marker file>:<part index>`` makes the process that writes that
#: part exit hard after its first batch, once (the marker file says it happened)
CRASH_ONCE = "AUGMENT_TEST_CRASH_ONCE"


@dataclass(frozen=True)
class PartsJob:
    """What making a part needs besides the part (small: it goes into every Dask task)."""

    kind: str
    output: str  # a local folder or an fsspec URL
    settings: dict[str, Any]  # of generation, rows_per_shard among them; JSON-able
    digest: str  # the generator's content digest
    generator_file: str | None = None  # where workers load the generator from
    storage_options: dict[str, Any] = field(default_factory=dict)
    device: str = "cpu"
    cpu_threads: int | None = 1

    def key(self, part: Part) -> str:
        return part_key(part, self.digest, self.settings)

    @property
    def location(self) -> storage.Location:
        return storage.location(self.output, self.storage_options)


_LOADED: OrderedDict[tuple[str, str], Any] = OrderedDict()  # (file, digest) -> generator
_LOADED_LOCK = threading.Lock()
_KEEP = 2  # generators kept per worker process


def _generator(job: PartsJob) -> Any:
    """The job's generator in this process: loaded from its file once, then kept."""
    if job.generator_file is None:
        raise ValueError("this generation runs in the job's process only; no generator file")
    key = (job.generator_file, job.digest)
    with _LOADED_LOCK:
        if key in _LOADED:
            _LOADED.move_to_end(key)
            return _LOADED[key]
        source = storage.location(job.generator_file, job.storage_options)
        kind = modality(job.kind)
        if storage.is_remote(source):
            with tempfile.TemporaryDirectory(prefix="augment-generator-") as folder:
                local = Path(folder) / "generator.pt"
                local.write_bytes(source.read_bytes())
                generator = kind.generator_from_file(local, job.device)
        else:
            generator = kind.generator_from_file(Path(source), job.device)
        _LOADED[key] = generator
        while len(_LOADED) > _KEEP:
            _LOADED.popitem(last=False)
        return generator


def make_parts(
    job: PartsJob, parts: list[Part], generator: Any = None, threads: int = 1
) -> list[dict[str, Any]]:
    """Make each of ``parts`` (or keep it, when it is done with this job's key); their records,
    in the order of ``parts``.

    ``generator`` is the job's own (its process); None loads it from ``job.generator_file``.
    ``threads`` > 1 makes that many parts at once, in threads of this process: each part has its
    own seed, rows and files, and torch, BLAS and OpenMP stay at ``job.cpu_threads`` (set once
    for all of them here), so the files are those the parts give one after the other. Measured
    on 2 cores (benchmarks/NOTES.md): two parts side by side wrote 1.9x the rows per second of
    one, where two torch threads on one part were slower than one (its matrices are too small to
    split). A part that fails stops the parts not yet started and raises its error.
    """

    def one(part: Part) -> dict[str, Any]:
        key = job.key(part)
        done = finished_record(job.location, part, key)
        if done is not None:
            return {**done, "reused": True}
        return _make_part(job, part, key, generator or _generator(job))

    # BLAS and OpenMP (scikit-learn's neighbour search) at torch's count too: their default of
    # every core was slower for these small products, and beside other parts it oversubscribes
    with cpu_threads(job.cpu_threads), threadpool_limits(job.cpu_threads or available_cores()):
        if threads <= 1 or len(parts) <= 1:
            return [one(part) for part in parts]
        with ThreadPoolExecutor(min(threads, len(parts)), "augment-part") as pool:
            futures = [pool.submit(one, part) for part in parts]
            try:
                return [future.result() for future in futures]
            except BaseException:
                for future in futures:
                    future.cancel()
                raise


def _make_part(job: PartsJob, part: Part, key: str, generator: Any) -> dict[str, Any]:
    output = job.location
    remove_part(output, part.index)  # what an earlier, unfinished attempt left
    began = time.perf_counter()
    source = modality(job.kind).part_batches(generator, job.settings, part)
    counts = dict.fromkeys(part.counts, 0)
    crash = _crash_marker(part)
    with ShardWriter(output, job.settings["rows_per_shard"], part=part.index) as writer:
        for cls, rows in source:
            writer.write(rows)
            counts[cls] += len(rows)
            if crash is not None:
                crash.write_text(str(os.getpid()))
                os._exit(70)
        files = writer.commit()
    if counts != part.counts:
        raise RuntimeError(f"part {part.index}: generated {counts}, planned {part.counts}")
    origin, filters = source.stats()
    record = {
        **part.describe(),
        "key": key,
        "files": files,
        "origin": origin,
        "filter": filters,
        "seconds": time.perf_counter() - began,
    }
    return write_record(output, record)


def _crash_marker(part: Part) -> Path | None:
    """The marker file when this part is to crash its process now (see :data:`CRASH_ONCE`)."""
    spec = os.environ.get(CRASH_ONCE)
    if not spec:
        return None
    marker, _, index = spec.rpartition(":")
    path = Path(marker)
    if int(index) != part.index or path.exists():
        return None
    return path


def groups(parts: list[Part], max_groups: int) -> list[list[Part]]:
    """``parts`` dealt out into at most ``max_groups`` groups of neighbouring parts: how many
    task runs a plan of many parts becomes. The grouping never changes what a part holds."""
    if not parts:
        return []
    n_groups = min(len(parts), max(1, max_groups))
    size, extra = divmod(len(parts), n_groups)
    out, start = [], 0
    for g in range(n_groups):
        end = start + size + (1 if g < extra else 0)
        out.append(parts[start:end])
        start = end
    return out
