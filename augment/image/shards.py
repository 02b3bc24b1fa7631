"""Image shards: PNG bytes in Parquet (``image``, ``label``, ``sample_id``), optional PNG files.

The Parquet parts go through :class:`~augment.core.shards.ShardWriter` (staging folder, renamed
into place at commit), so images follow the same commit protocol as tables. The optional
``images/<class>/<sample_id>.png`` files get their own staging folder, renamed at commit too (on an
object store both are written in place; see :mod:`augment.core.shards`).

PNG encoding is our own ~20 lines (:func:`encode_png`) instead of Pillow's: a generated image is
already an 8-bit array, so a file is the PNG signature, a header chunk, one zlib-compressed data
chunk (filter type 0 on every row) and the end chunk. Measured on 28x28 grey images, Pillow's
per-image overhead capped writing at ~7,000 img/s; this encoder does ~18,000 img/s on noise (the
worst case for zlib) on one core. Files decode with any PNG reader (tested with Pillow).
"""

from __future__ import annotations

import io
import struct
import zlib
from typing import Any

import numpy as np
from PIL import Image

from augment.core import storage
from augment.core.errors import DataError
from augment.core.shards import SHARD_DIR, StagedFolder, read_manifest, read_shards
from augment.core.storage import Location

IMAGE_DIR = "images"
_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COLOR_TYPE = {1: 0, 3: 2}  # grey, RGB


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


_IEND = _chunk(b"IEND", b"")


def encode_png(images: np.ndarray, level: int = 1) -> list[bytes]:
    """uint8 ``(n, H, W, C)`` with C = 1 or 3 -> one PNG file (bytes) per image."""
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[3] not in _COLOR_TYPE:
        raise ValueError(f"expected uint8 (n, H, W, 1|3) images, got {images.dtype} {images.shape}")
    n, height, width, channels = images.shape
    header = _chunk(
        b"IHDR", struct.pack(">IIBBBBB", width, height, 8, _COLOR_TYPE[channels], 0, 0, 0)
    )
    rows = np.zeros((n, height, 1 + width * channels), dtype=np.uint8)  # filter byte 0 per row
    rows[:, :, 1:] = images.reshape(n, height, width * channels)
    return [
        _SIGNATURE + header + _chunk(b"IDAT", zlib.compress(raw.tobytes(), level)) + _IEND
        for raw in rows
    ]


def decode_png(data: bytes) -> np.ndarray:
    """PNG bytes -> uint8 ``(H, W, C)``."""
    with Image.open(io.BytesIO(data)) as image:
        pixels = np.asarray(image)
    return pixels[:, :, None] if pixels.ndim == 2 else pixels


def path_part(value: Any) -> str:
    """A class value as a safe folder name (``/`` and other separators replaced)."""
    text = str(value)
    cleaned = "".join(ch if ch.isalnum() or ch in "-_.=" else "_" for ch in text)
    return cleaned.strip(".") or "_"


class ImageFileWriter(StagedFolder):
    """Write ``<class>/<sample_id>.png`` files; ``commit`` makes them visible under ``images/``
    (staged like the Parquet parts, see :class:`augment.core.shards.StagedFolder`; on an object
    store a batch of files goes up at once)."""

    def __init__(self, output: Location) -> None:
        super().__init__(output, IMAGE_DIR)
        self.count = 0

    def write(self, label: Any, sample_ids: list[str], files: list[bytes]) -> None:
        folder = self.folder / path_part(label)
        storage.write_many(
            {
                folder / f"{sample_id}.png": data
                for sample_id, data in zip(sample_ids, files, strict=True)
            }
        )
        self.count += len(files)


def read_image_shards(
    path: str | Location,
    require_success: bool = True,
    storage_options: dict[str, Any] | None = None,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Images ``(n, H, W, C)``, labels ``(n,)`` and sample ids of a run's image shards.

    ``path`` is a local folder or an fsspec URL. With ``require_success`` (the default) the run
    must be finished and every part must match its row count and sha256 in the manifest (see
    :func:`augment.core.shards.read_shards`).
    """
    out = storage.location(path, storage_options)
    shape = [0, 0, 0]
    if require_success:
        shape = read_manifest(out).get("image_shape", shape)  # refuses a folder w/o _SUCCESS
    frame = read_shards(out, verify=True, require_success=require_success)
    if len(frame) == 0:
        return np.zeros((0, *shape), dtype=np.uint8), np.array([]), []
    for column in ("image", "label", "sample_id"):
        if column not in frame.columns:
            raise DataError(f"{out}/{SHARD_DIR} has no {column!r} column; it is not an image run")
    images = np.stack([decode_png(data) for data in frame["image"]])
    return images, frame["label"].to_numpy(), frame["sample_id"].tolist()
