"""Generation into shards: exactly the planned rows per class, streamed batch by batch.

There is no rejection loop: every generated row is kept (values are clipped into the seen range by
the encoder), so a class can never fall short of its planned count.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from augment.data.shards import ShardWriter
from augment.synthesizer import Synthesizer


@dataclass
class GenerationResult:
    counts: dict[Any, int]
    files: list[dict[str, Any]]


def generate_shards(
    synthesizer: Synthesizer,
    plan: Mapping[Any, int],
    output: Path,
    rows_per_shard: int,
    seed: int,
    batch_size: int = 4096,
) -> GenerationResult:
    """Stream ``plan[c]`` rows of every class into ``<output>/synthetic/part-*.parquet``.

    The parts appear under their final names only after the last one is complete.
    """
    counts = {cls: 0 for cls in plan}
    label = synthesizer.schema.label
    with ShardWriter(output, rows_per_shard) as writer:
        for batch in synthesizer.iter_batches(plan, seed=seed, batch_size=batch_size):
            writer.write(batch)
            cls = batch[label].iloc[0]
            counts[_key(cls, plan)] += len(batch)
        files = writer.commit()
    if counts != dict(plan):
        raise RuntimeError(f"generated counts {counts} differ from the plan {dict(plan)}")
    return GenerationResult(counts=counts, files=files)


def _key(value: Any, plan: Mapping[Any, int]) -> Any:
    # Labels come back with the input's dtype (e.g. numpy ints); map them to the plan's keys.
    plain = value.item() if hasattr(value, "item") else value
    return plain if plain in plan else str(plain)
