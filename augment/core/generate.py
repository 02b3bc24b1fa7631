"""Generation into shards: exactly the planned rows (or images) per class, streamed batch by batch.

A kind turns its synthesizer's samples into ``(class, table)`` batches (table rows; images as PNG
bytes with their label and sample id); :func:`write_shards` streams them through the shard commit
protocol (:class:`augment.core.shards.ShardWriter`) and checks that every class got exactly its
planned count, so a job either writes the plan or fails: never fewer rows than planned.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd

from augment.core.shards import ShardWriter
from augment.core.storage import Location

T = TypeVar("T")


@dataclass
class GenerationResult:
    counts: dict[Any, int]
    files: list[dict[str, Any]]
    seconds: float = 0.0
    filter: dict[str, Any] = field(default_factory=dict)  # per-class acceptance (images only)
    # where the rows came from, per source and class (tables: "gan", "anchored", "dropped", the
    # drawn GAN rows the neighbour filter left out, and "moved", the GAN rows the moment map
    # moved); empty when there is one source
    origin: dict[str, dict[Any, int]] = field(default_factory=dict)
    # an automatic choice of how to generate (tables: generate.generator auto): what was chosen
    # and each candidate's score; empty when nothing was chosen
    choice: dict[str, Any] = field(default_factory=dict)
    # measures of the written rows that need what only generation knows (tables: the privacy
    # measures per row source, told apart by the parts' records, "privacy/..."); empty: none
    measures: dict[str, float] = field(default_factory=dict)
    # the synthesizer took on what generation used (tables: the real rows and settings of the
    # mix), so the job saves its model file again
    model_updated: bool = False
    # how generation went: rows, seconds, rows per second, parts (made and kept from an earlier
    # run), part_rows and the processes that made them (the manifest's "generation")
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass
class GenerationSetup:
    """What a kind prepares for generation before the parts are made (see
    :meth:`augment.core.modality.Modality.prepare_generation`).

    ``generator`` makes the rows of a part (through the kind's ``part_batches``) in this
    process; ``settings`` (JSON-able) are everything besides the generator that shapes a part's
    bytes, ``digest`` the generator's content digest: together the key of a finished part.
    ``save`` writes the generator to a file that other processes load it from; None when parts
    must run in this process (images with the quality filter: its classifier stays here).
    ``state`` is the kind's own, for :meth:`~augment.core.modality.Modality.finish_generation`.
    """

    generator: Any
    settings: dict[str, Any]
    digest: str
    save: Callable[[Path], None] | None = None
    choice: dict[str, Any] = field(default_factory=dict)
    model_updated: bool = False
    state: dict[str, Any] = field(default_factory=dict)


class PartBatches:
    """The ``(class, rows)`` batches of one part, and after them what the part's rows are made
    of: ``origin`` (source -> class -> rows) and ``filter`` (class -> the quality filter's
    counts), classes as ``str`` (they go into the part's JSON record)."""

    def __init__(
        self,
        batches: Iterable[tuple[Any, pd.DataFrame]],
        stats: Callable[[], tuple[dict[str, dict[str, int]], dict[str, Any]]] | None = None,
    ) -> None:
        self.batches = batches
        self._stats = stats

    def __iter__(self) -> Iterator[tuple[Any, pd.DataFrame]]:
        return iter(self.batches)

    def stats(self) -> tuple[dict[str, dict[str, int]], dict[str, Any]]:
        return self._stats() if self._stats else ({}, {})


def write_shards(
    output: Location,
    plan: Mapping[Any, int],
    batches: Iterable[tuple[Any, pd.DataFrame]],
    rows_per_shard: int,
) -> GenerationResult:
    """Stream ``(class, rows)`` batches into ``<output>/synthetic/part-*.parquet``.

    The parts appear under their final names only after the last one is complete; an error on
    the way removes what was written.

    Raises:
        RuntimeError: the batches did not add up to exactly ``plan`` (a bug, never bad input).
    """
    began = time.perf_counter()
    counts = {cls: 0 for cls in plan}
    with ShardWriter(output, rows_per_shard) as writer:
        for cls, rows in batches:
            writer.write(rows)
            counts[cls] += len(rows)
        files = writer.commit()
    if counts != dict(plan):
        raise RuntimeError(f"generated counts {counts} differ from the plan {dict(plan)}")
    return GenerationResult(counts=counts, files=files, seconds=time.perf_counter() - began)


_END = object()


def prefetched(items: Iterator[T]) -> Iterator[T]:
    """Yield the items of ``items`` while a background thread computes the next one.

    Only one ``next`` runs at a time, so any iterator works; its exceptions reach the caller.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="augment-prefetch") as pool:
        pending = pool.submit(next, items, _END)
        while (item := pending.result()) is not _END:
            pending = pool.submit(next, items, _END)
            yield item
