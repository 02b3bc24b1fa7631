"""Image generation into shards: PNG bytes in Parquet parts (optionally PNG files too), exactly
the planned images per class, with an optional quality filter.

Without the filter every generated image is kept. With it, candidates are drawn in batches and an
image is kept when a classifier trained on the real train split gives its conditioned class a
probability of at least ``threshold``. A class draws at most ``max_factor`` times its planned
count; if it is still short, it is filled with its most confident rejected candidates
(``on_shortfall="fill"``, counted in the report) or the job stops (``"error"``). Either way the
counts are exact or the job fails; it never writes fewer images than planned.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd

from augment.core.config import setting
from augment.core.errors import DataError
from augment.core.generate import GenerationResult, prefetched, write_shards
from augment.core.seeds import round_seed
from augment.core.storage import Location
from augment.image.cgan import SAMPLE_BATCH
from augment.image.shards import ImageFileWriter, encode_png, path_part

# judge(images, cls) -> probability of class ``cls`` for each image, shape (n,)
Judge = Callable[[np.ndarray, Any], np.ndarray]
# A part is assembled and serialised in memory (several copies of its PNG bytes at once), so it
# holds at most this many pixel bytes whatever output.rows_per_shard says: 682 RGB images at
# 256 px, 2,730 at 128; 10,000 images of 64 px RGB or less fit.
PART_BYTES = 128 * 2**20
# Images of a batch (generated, then PNG-encoded while the next one is generated): at most this
# many pixel bytes, 170 RGB images at 256 px; the batch of SAMPLE_BATCH images fits up to 64 px,
# so smaller images are generated exactly as before.
BATCH_BYTES = 32 * 2**20


def generate_image_shards(
    synthesizer: Any,
    plan: Mapping[Any, int],
    output: Location,
    rows_per_shard: int,
    seed: int,
    *,
    image_files: bool = False,
    judge: Judge | None = None,
    threshold: float = 0.9,
    max_factor: float = 8.0,
    on_shortfall: str = "fill",
    batch_size: int = SAMPLE_BATCH,
) -> GenerationResult:
    """Stream ``plan[c]`` images of every class into Parquet parts of PNG bytes.

    Columns: ``image`` (PNG bytes), ``label`` (the class value), ``sample_id``
    (``<class>-<index>``, unique within the run). With ``image_files`` the same PNGs also go to
    ``<output>/images/<class>/<sample_id>.png``. ``judge`` turns the quality filter on. A part
    holds at most ``rows_per_shard`` images and at most :data:`PART_BYTES` of their pixels; a
    batch at most ``batch_size`` images and :data:`BATCH_BYTES` of their pixels.

    Raises:
        DataError: the filter ran out of candidates for a class and ``on_shortfall="error"``.
    """
    report: dict[str, Any] = {}
    files_writer = ImageFileWriter(output) if image_files else None
    rows_per_shard = shard_images(synthesizer.image_shape, rows_per_shard)
    rows = image_rows(
        synthesizer,
        plan,
        seed,
        report,
        files_writer=files_writer,
        judge=judge,
        threshold=threshold,
        max_factor=max_factor,
        on_shortfall=on_shortfall,
        batch_size=batch_size,
    )
    try:
        result = write_shards(output, plan, rows, rows_per_shard)
        if files_writer:
            files_writer.commit()
    except BaseException:
        if files_writer:
            files_writer.abort()
        raise
    result.filter = report
    return result


def shard_images(image_shape: tuple[int, ...], rows_per_shard: int) -> int:
    """Images per Parquet part: ``rows_per_shard``, or fewer so that a part holds at most
    :data:`PART_BYTES` of pixels."""
    return max(1, min(rows_per_shard, PART_BYTES // int(np.prod(image_shape))))


def image_rows(
    synthesizer: Any,
    plan: Mapping[Any, int],
    seed: int,
    report: dict[str, Any],
    *,
    offsets: Mapping[Any, int] | None = None,
    files_writer: ImageFileWriter | None = None,
    judge: Judge | None = None,
    threshold: float = 0.9,
    max_factor: float = 8.0,
    on_shortfall: str = "fill",
    batch_size: int = SAMPLE_BATCH,
) -> Iterator[tuple[Any, pd.DataFrame]]:
    """``(class, rows)`` of PNG bytes, label and sample id for ``plan[c]`` images of each class
    (a whole plan, or one part of a job's plan: its sample ids count on from ``offsets[c]``);
    the quality filter's counts per class go into ``report``."""
    pixels = int(np.prod(synthesizer.image_shape))
    batch_size = max(1, min(batch_size, BATCH_BYTES // pixels))
    batches = _class_batches(
        synthesizer, plan, seed, judge, threshold, max_factor, on_shortfall, batch_size, report
    )
    return _png_rows(batches, files_writer, offsets or {})


def _png_rows(
    batches: Iterator[tuple[Any, np.ndarray]],
    files_writer: ImageFileWriter | None,
    offsets: Mapping[Any, int],
) -> Iterator[tuple[Any, pd.DataFrame]]:
    """``(class, rows of PNG bytes)`` for each batch of images; the files too, when asked.
    A class's sample ids count on from ``offsets[c]`` (0 when absent)."""
    written: dict[Any, int] = defaultdict(int, offsets)
    # The next batch is generated (torch, which releases the GIL) while this one is encoded to
    # PNG and written; the order, and so the output bytes, stay the same.
    for cls, images in prefetched(batches):
        ids = [f"{path_part(cls)}-{written[cls] + i:07d}" for i in range(len(images))]
        pngs = encode_png(images)
        if files_writer:
            files_writer.write(cls, ids, pngs)
        written[cls] += len(images)
        yield cls, pd.DataFrame({"image": pngs, "label": [cls] * len(pngs), "sample_id": ids})


def _class_batches(
    synthesizer: Any,
    plan: Mapping[Any, int],
    seed: int,
    judge: Judge | None,
    threshold: float,
    max_factor: float,
    on_shortfall: str,
    batch_size: int,
    report: dict[str, Any],
) -> Iterator[tuple[Any, np.ndarray]]:
    """``(class, images)`` batches of every class in the plan, filtered when there is a judge."""
    for cls, n_images in plan.items():
        if n_images <= 0:
            continue
        if judge is None:
            yield from synthesizer.iter_batches({cls: n_images}, seed, batch_size)
            continue
        for images in _filtered(
            synthesizer,
            cls,
            n_images,
            seed,
            judge,
            threshold,
            max_factor,
            on_shortfall,
            batch_size,
            report,
        ):
            yield cls, images


def _filtered(
    synthesizer: Any,
    cls: Any,
    n_images: int,
    seed: int,
    judge: Judge,
    threshold: float,
    max_factor: float,
    on_shortfall: str,
    batch_size: int,
    report: dict[str, Any],
):
    """Yield accepted images of ``cls`` in batches until exactly ``n_images`` are out."""
    budget = max(n_images, int(np.ceil(n_images * max_factor)))
    drawn = accepted = 0
    best = np.zeros((0, *synthesizer.image_shape), dtype=np.uint8)  # best rejected so far
    best_conf = np.zeros(0)
    round_index = 0
    while accepted < n_images and drawn < budget:
        # Draw a bit more than still needed (acceptance is rarely 100%), within the budget.
        size = min(batch_size, budget - drawn, max(64, 2 * (n_images - accepted)))
        # Each round is its own seed stream, so rounds never repeat each other's images.
        candidates = synthesizer.unit_of[cls].sample(cls, size, seed=round_seed(seed, round_index))
        round_index += 1
        drawn += size
        confidence = np.asarray(judge(candidates, cls), dtype=np.float64)
        keep = confidence >= threshold
        chosen = candidates[keep][: n_images - accepted]
        accepted += len(chosen)
        if len(chosen):
            yield chosen
        if accepted < n_images:  # remember the most confident rejects, at most what may be needed
            pool = np.concatenate([best, candidates[~keep]])
            pool_conf = np.concatenate([best_conf, confidence[~keep]])
            top = np.argsort(-pool_conf, kind="stable")[: n_images - accepted]
            best, best_conf = pool[top], pool_conf[top]
    filled = n_images - accepted
    if filled and on_shortfall == "error":
        raise DataError(
            f"quality filter: class {cls!r} got {accepted} of {n_images} images at threshold "
            f"{threshold} within {drawn} candidates; lower filter.threshold, raise "
            f"filter.max_factor, train longer, or set {setting('filter.on_shortfall', 'fill')}"
        )
    if filled:
        yield best[:filled]
    report[str(cls)] = {
        "planned": n_images,
        "drawn": drawn,
        "accepted": accepted,
        "filled_below_threshold": filled,
        "acceptance_rate": accepted / drawn if drawn else float("nan"),
    }
