"""The generation plan cut into parts: the unit of work that a process (or a Dask worker) writes.

A job's plan (class -> rows to generate) is cut into parts of at most ``part_rows`` rows, taking
the classes in the plan's order; a class may span two or more parts. What a part makes depends on
the plan, ``part_rows`` and the job's seed alone, never on how many processes share the work:

- its **seed**: part 0 takes the job's seed as it is (a job within one part writes exactly the
  rows it wrote before parts existed, and what ``fit_resample`` returns); part k > 0 a seed
  spawned from ``(seed, k)`` with numpy's SeedSequence;
- its **first row**: how many rows the parts before it hold, where its fresh ids (id columns,
  image sample ids) start, so that no two parts hand out the same one;
- its **files**: ``synthetic/part-<part>-<shard>.parquet``, written through the commit protocol
  of :class:`augment.core.shards.ShardWriter` (staged locally, one PUT per file on an object
  store), then its **record** ``synthetic/_parts/part-<part>.json`` last: files with rows and
  sha256, rows per class and where they came from, and the key of everything that shaped them.

A part whose record is there, has the key of this job and whose files match their sha256 is done:
a rerun after a crash keeps it and makes only the others. A part without a valid record is made
again from scratch (its leftover files are removed first), so a process killed in the middle of
a part leaves nothing behind that a reader or the merged manifest would see.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from augment.core import storage
from augment.core.shards import SHARD_DIR, sha256_file, write_json_atomic
from augment.core.storage import Location

#: the folder of the part records, inside synthetic/ (readers of Parquet datasets skip "_" names)
RECORD_DIR = "_parts"
_SEED_KEY = 37  # the SeedSequence key of part seeds (augment.core.seeds keys stay below 37)
_PART_FILE = re.compile(r"^part-(\d{5})-\d{5}\.parquet$")


@dataclass(frozen=True)
class Part:
    """One part of a generation plan (see the module docstring)."""

    index: int
    counts: dict[Any, int]  # class -> rows, in the plan's order; only classes with rows
    first_row: int  # rows of the plan in the parts before this one
    offsets: dict[Any, int]  # class -> rows of that class in the parts before this one
    seed: int

    @property
    def rows(self) -> int:
        return sum(self.counts.values())

    def describe(self) -> dict[str, Any]:
        """JSON-able: what the part holds, classes by ``str``."""
        return {
            "index": self.index,
            "counts": {str(c): n for c, n in self.counts.items()},
            "first_row": self.first_row,
            "offsets": {str(c): n for c, n in self.offsets.items()},
            "seed": self.seed,
        }


def part_seed(seed: int, index: int) -> int:
    """The seed of part ``index``: the job's own for part 0, one spawned from it otherwise."""
    if index == 0:
        return int(seed)
    state = np.random.SeedSequence([int(seed), _SEED_KEY, int(index)]).generate_state(1)
    return int(state[0])


def cut_plan(plan: Mapping[Any, int], part_rows: int, seed: int) -> list[Part]:
    """The parts of ``plan`` (class -> rows), each at most ``part_rows`` rows; none for an empty plan."""
    if part_rows < 1:
        raise ValueError(f"part_rows must be at least 1, got {part_rows}")
    parts: list[Part] = []
    counts: dict[Any, int] = {}
    offsets: dict[Any, int] = {}
    done: dict[Any, int] = dict.fromkeys(plan, 0)
    first_row = room = 0
    for cls, total in plan.items():
        left = int(total)
        while left > 0:
            if room == 0:
                if counts:
                    parts.append(_part(len(parts), counts, first_row, offsets, seed))
                    first_row += sum(counts.values())
                counts, offsets, room = {}, {}, part_rows
            take = min(left, room)
            offsets.setdefault(cls, done[cls])
            counts[cls] = counts.get(cls, 0) + take
            done[cls] += take
            left -= take
            room -= take
    if counts:
        parts.append(_part(len(parts), counts, first_row, offsets, seed))
    return parts


def _part(index: int, counts: dict, first_row: int, offsets: dict, seed: int) -> Part:
    return Part(index, dict(counts), first_row, dict(offsets), part_seed(seed, index))


def part_key(part: Part, generator: str, settings: Mapping[str, Any]) -> str:
    """The key of everything that shapes a part's bytes: the part, the generator's digest and
    the settings of generation (``rows_per_shard`` among them)."""
    payload = {"part": part.describe(), "generator": generator, "settings": dict(settings)}
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def record_path(output: Location, index: int) -> Location:
    return output / SHARD_DIR / RECORD_DIR / f"part-{index:05d}.json"


def read_record(output: Location, index: int) -> dict[str, Any] | None:
    """The record of part ``index``, or None when there is none (or it cannot be read)."""
    path = record_path(output, index)
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def finished_record(output: Location, part: Part, key: str) -> dict[str, Any] | None:
    """The record of ``part`` when the part is done with this ``key``: every file it lists is
    there with its sha256. None otherwise (the part is to be made)."""
    record = read_record(output, part.index)
    if record is None or record.get("key") != key:
        return None
    for entry in record.get("files", []):
        file = output / entry["path"]
        try:
            if sha256_file(file) != entry["sha256"]:
                return None
        except OSError:
            return None
    return record


def write_record(output: Location, record: dict[str, Any]) -> dict[str, Any]:
    """A part's record, after its files: the part is done once this is there. Returns it with
    the process that made the part (host, pid)."""
    record = {**record, "host": socket.gethostname(), "pid": os.getpid()}
    write_json_atomic(record_path(output, record["index"]), record)
    return record


def part_files(output: Location) -> dict[int, list[Location]]:
    """The Parquet files under ``synthetic/`` by the part they belong to."""
    folder = output / SHARD_DIR
    found: dict[int, list[Location]] = {}
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for path in folder.iterdir():
            match = _PART_FILE.match(path.name)
            if match:
                found.setdefault(int(match.group(1)), []).append(path)
    return found


def remove_part(output: Location, index: int) -> None:
    """Everything of part ``index``: its record first (it no longer counts as done), then its
    files, whether a finished or a killed attempt wrote them."""
    storage.remove(record_path(output, index))
    for path in part_files(output).get(index, []):
        storage.remove(path)


def remove_other_parts(output: Location, parts: list[Part]) -> None:
    """Files and records of parts this plan does not have (a crashed run of another plan)."""
    wanted = {part.index for part in parts}
    indexes = set(part_files(output))
    records = output / SHARD_DIR / RECORD_DIR
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for path in records.iterdir():
            match = re.match(r"^part-(\d{5})\.json$", path.name)
            if match:
                indexes.add(int(match.group(1)))
            elif path.name.startswith("."):  # a temporary file of a killed write
                storage.remove(path)
    for index in indexes - wanted:
        remove_part(output, index)
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for path in (output / SHARD_DIR).iterdir():  # files of a run before parts existed
            if path.name.startswith("part-") and not _PART_FILE.match(path.name):
                storage.remove(path)


@dataclass
class PartSummary:
    """What the parts of one job made, merged: counts, files in part order, origin, timing."""

    counts: dict[Any, int]
    files: list[dict[str, Any]]
    origin: dict[str, dict[Any, int]] = field(default_factory=dict)
    filter: dict[str, Any] = field(default_factory=dict)
    reused: int = 0
    workers: int = 0  # processes (host, pid) that made the parts made in this run


def merge_records(plan: Mapping[Any, int], records: list[dict[str, Any]]) -> PartSummary:
    """One summary of the parts' records, in part order, classes as in ``plan``.

    Raises:
        RuntimeError: the records do not add up to exactly ``plan`` (a bug, never bad input).
    """
    by_name = {str(c): c for c in plan}
    counts = dict.fromkeys(plan, 0)
    files: list[dict[str, Any]] = []
    origin: dict[str, dict[Any, int]] = {}
    filters: dict[str, Any] = {}
    makers = set()
    reused = 0
    for record in sorted(records, key=lambda r: r["index"]):
        for name, n in record["counts"].items():
            counts[by_name[name]] += n
        files.extend(record["files"])
        for source, per_class in record.get("origin", {}).items():
            into = origin.setdefault(source, {})
            for name, n in per_class.items():
                cls = by_name[name]
                into[cls] = into.get(cls, 0) + n
        for name, entry in record.get("filter", {}).items():
            filters[name] = _merge_filter(filters.get(name), entry)
        if record.get("reused"):
            reused += 1
        else:
            makers.add((record.get("host"), record.get("pid")))
    if counts != {c: int(n) for c, n in plan.items()}:
        raise RuntimeError(f"generated counts {counts} differ from the plan {dict(plan)}")
    # every class of the plan under every source, 0 for a class that got none
    origin = {
        source: {c: per_class.get(c, 0) for c in plan} for source, per_class in origin.items()
    }
    return PartSummary(counts, files, origin, filters, reused, len(makers))


def _merge_filter(into: dict[str, Any] | None, entry: dict[str, Any]) -> dict[str, Any]:
    """A class's quality-filter counts over the parts it spans."""
    if into is None:
        return dict(entry)
    merged = {
        key: into.get(key, 0) + entry.get(key, 0) for key in entry if key != "acceptance_rate"
    }
    merged["acceptance_rate"] = (
        merged["accepted"] / merged["drawn"] if merged.get("drawn") else float("nan")
    )
    return merged
