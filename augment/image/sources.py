"""Read a labelled image set into one uint8 array, whatever the source looks like on disk.

Four kinds of source are understood, all resized to ``size x size`` with 1 or 3 channels::

    load_images("data/pets/")                    # folder: pets/<class>/*.png|jpg|jpeg|bmp|gif|webp
    load_images("data/scans.parquet")            # Parquet (file or directory): image bytes + label
    load_images("data/arrays.npz")               # arrays ``images`` (N,H,W[,C]) and ``labels`` (N,)
    load_images("sklearn:digits", size=28)       # scikit-learn's 8x8 handwritten digits
    load_images("s3://bucket/scans/")            # any of the first three on object storage (fsspec)

Every image goes through Pillow: encoded files are fully decoded (so truncated files are caught
here, not halfway through training), converted to ``L`` or ``RGB`` and resized. Files that cannot
be decoded stop the load with a :class:`~augment.core.errors.DataError` naming them, unless
``on_bad_file="skip"``, in which case they are listed in :attr:`ImageDataset.skipped`.
"""

from __future__ import annotations

import difflib
import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image, ImageOps

from augment.core import storage
from augment.core.errors import DataError
from augment.core.storage import Location

BUILTIN_PREFIX = "sklearn:"
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"})
BAD_FILE_POLICIES = ("error", "skip")
SKIP_HINT = "set data.on_bad_file: skip to skip such files"

# Pillow clips 16-bit grayscale to 255 when converting to "L"; these modes are rescaled by hand.
_HIGH_DEPTH_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N"})


@dataclass
class ImageDataset:
    """Decoded images with one label each, in a stable order.

    Attributes:
        images: uint8 array ``(N, size, size, C)`` with ``C`` = 1 or 3.
        labels: ``(N,)`` class labels; folder names (str) for image folders, the stored values
            for Parquet and ``.npz`` sources, ints 0..9 for ``sklearn:digits``.
        classes: the sorted unique labels (plain Python values).
        sources: where each image came from: a file path, ``"<parquet file>#<row>"``,
            ``"<npz file>#<index>"`` or ``"sklearn:digits#<index>"``.
        skipped: ``{"source": ..., "reason": ...}`` for every image dropped under
            ``on_bad_file="skip"``.
    """

    images: np.ndarray
    labels: np.ndarray
    classes: list
    sources: list[str]
    skipped: list[dict] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.labels)

    def class_counts(self) -> dict:
        """Number of images per class, in the order of :attr:`classes`."""
        values, counts = np.unique(self.labels, return_counts=True)
        by_value = dict(zip(values.tolist(), counts.tolist(), strict=True))
        return {label: by_value[label] for label in self.classes}


class _BadImage(Exception):
    """One image cannot be used; the caller decides between raising and skipping."""


# ---------------------------------------------------------------------------------------------
# One image: bytes or array in, (size, size, C) uint8 out.


def _fit_image(image: Image.Image, size: int, channels: int) -> np.ndarray:
    """Convert a decoded image to the requested mode and size; returns ``(size, size, C)``."""
    mode = "L" if channels == 1 else "RGB"
    if image.mode in _HIGH_DEPTH_MODES:
        # 16-bit range -> 8-bit range; 257 maps 65535 exactly onto 255.
        wide = np.asarray(image, dtype=np.float64) / 257.0
        image = Image.fromarray(np.clip(np.rint(wide), 0, 255).astype(np.uint8), mode="L")
    elif image.mode == "P" and "transparency" in image.info:
        # Going through RGBA avoids Pillow's warning about palette transparency.
        image = image.convert("RGBA")
    if image.mode != mode:
        image = image.convert(mode)
    if image.size != (size, size):
        shrinking = image.width > size or image.height > size
        # LANCZOS keeps thin strokes when shrinking; BILINEAR avoids ringing when enlarging.
        resample = Image.Resampling.LANCZOS if shrinking else Image.Resampling.BILINEAR
        image = image.resize((size, size), resample=resample)
    pixels = np.asarray(image, dtype=np.uint8)
    return pixels[:, :, None] if pixels.ndim == 2 else pixels


def _decode(data: bytes | None, size: int, channels: int) -> np.ndarray:
    """Decode encoded image bytes fully; raise :class:`_BadImage` with a short reason."""
    if data is None:
        raise _BadImage("no image bytes (null value)")
    if len(data) == 0:
        raise _BadImage("empty file (0 bytes)")
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format == "JPEG":
                # Let the JPEG decoder shrink by a power of two first: much faster for photos.
                image.draft("L" if channels == 1 else "RGB", (size, size))
            # load() decodes every pixel, which is what exposes truncated or damaged files.
            image.load()
            # A copy turned upright by its EXIF orientation tag (camera photos), open file freed.
            oriented = ImageOps.exif_transpose(image)
    except Exception as error:
        # Decoders meeting damaged data raise many kinds of errors (OSError, SyntaxError,
        # ValueError, struct.error ...); each one means the same thing here.
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        if "cannot identify image file" in reason:
            reason = "not a readable image (unknown or damaged format)"
        raise _BadImage(reason) from None
    return _fit_image(oriented, size, channels)


def _from_array(pixels: np.ndarray, size: int, channels: int) -> np.ndarray:
    """Resize one uint8 ``(H, W)`` or ``(H, W, C)`` array through Pillow."""
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    return _fit_image(Image.fromarray(np.ascontiguousarray(pixels)), size, channels)


# ---------------------------------------------------------------------------------------------
# Shared assembly: run items through a converter, apply the bad-file policy, check the result.


def _collect(
    items: Iterable[tuple[str, object, object]],
    convert: Callable[[object], np.ndarray],
    origin: str,
    on_bad_file: str,
) -> ImageDataset:
    """Build the dataset from ``(source, label, payload)`` triples.

    ``convert`` turns a payload into a ``(size, size, C)`` array or raises :class:`_BadImage`.
    """
    images: list[np.ndarray] = []
    labels: list = []
    sources: list[str] = []
    skipped: list[dict] = []
    for source, label, payload in items:
        try:
            images.append(convert(payload))
        except _BadImage as bad:
            if on_bad_file == "error":
                raise DataError(f"cannot use image {source}: {bad}; {SKIP_HINT}") from None
            skipped.append({"source": source, "reason": str(bad)})
            continue
        labels.append(label)
        sources.append(source)
    if not images:
        detail = f" ({len(skipped)} files skipped as unreadable)" if skipped else ""
        raise DataError(f"image source {origin} yields no images{detail}; check data.source")
    label_array = np.asarray(labels)
    classes = sorted(set(label_array.tolist()))
    if len(classes) < 2:
        raise DataError(
            f"image source {origin} has a single class {classes[0]!r}; "
            "balancing needs at least 2 classes"
        )
    return ImageDataset(
        images=np.stack(images),
        labels=label_array,
        classes=classes,
        sources=sources,
        skipped=skipped,
    )


def _suggest(missing: str, available: list[str], what: str, origin: object, fix: str) -> str:
    """A one-line message for a missing column or array, with close names when there are any."""
    close = difflib.get_close_matches(missing, available, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
    return (
        f"{what} {missing!r} is not in {origin}; {hint}{fix} (found: {', '.join(available[:20])})"
    )


# ---------------------------------------------------------------------------------------------
# Sources.


def _parts(path: Location) -> tuple[str, ...]:
    """Sort key: pathlib's own order (part by part), for local paths and URLs alike."""
    return path.parts


def _is_hidden(path: Location, root: Location) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def _folder_items(root: Location) -> Iterator[tuple[str, str, Location]]:
    entries = list(root.iterdir())
    class_dirs = sorted(
        (p for p in entries if p.is_dir() and not p.name.startswith(".")), key=_parts
    )
    loose = sorted(
        (
            p
            for p in entries
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
        ),
        key=_parts,
    )
    if loose:
        raise DataError(
            f"image file {loose[0]} sits directly in {root} and so has no class; "
            "move images into one subfolder per class (root/<class>/<image>)"
        )
    if not class_dirs:
        raise DataError(
            f"image folder {root} has no class subfolders; lay it out as root/<class>/<image>"
        )
    for class_dir in class_dirs:
        files = sorted(
            (
                p
                for p in class_dir.rglob("*")
                if p.is_file()
                and p.suffix.lower() in IMAGE_SUFFIXES
                and not _is_hidden(p, class_dir)
            ),
            key=_parts,
        )
        if not files:
            raise DataError(
                f"class folder {class_dir} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))}); "
                "add images or remove the folder"
            )
        for file in files:
            yield str(file), class_dir.name, file


def _load_folder(root: Location, size: int, channels: int, on_bad_file: str) -> ImageDataset:
    return _collect(
        _folder_items(root),
        lambda file: _decode(file.read_bytes(), size, channels),
        str(root),
        on_bad_file,
    )


def _parquet_files(path: Location) -> list[Location]:
    if path.is_file():
        return [path]
    return sorted(
        (p for p in path.rglob("*.parquet") if p.is_file() and not _is_hidden(p, path)),
        key=_parts,
    )


def _bytes_of(cell: object) -> bytes | None:
    """Image bytes from a Parquet cell: raw binary, or a ``{"bytes": ..., "path": ...}`` struct."""
    if isinstance(cell, dict):
        cell = cell.get("bytes")
    if cell is None or isinstance(cell, bytes):
        return cell
    if isinstance(cell, bytearray | memoryview):
        return bytes(cell)
    raise _BadImage(f"cell holds {type(cell).__name__}, not image bytes")


def _parquet_items(
    files: list[Location], label: str, image_column: str
) -> Iterator[tuple[str, object, object]]:
    for file in files:
        if file.stat().st_size == 0:
            raise DataError(f"Parquet file {file} is empty (0 bytes); remove or regenerate it")
        try:
            where, filesystem = storage.arrow_path(file)
            names = pq.read_schema(where, filesystem=filesystem).names
        except (pa.ArrowException, OSError) as error:
            raise DataError(
                f"cannot read Parquet file {file}: {str(error).splitlines()[0]}; "
                "re-export it or remove it from the source"
            ) from None
        if image_column not in names:
            raise DataError(
                _suggest(image_column, names, "image column", file, "set data.image_column")
            )
        if label not in names:
            raise DataError(_suggest(label, names, "label column", file, "set data.label"))
        try:
            table = pq.read_table(where, columns=[image_column, label], filesystem=filesystem)
        except (pa.ArrowException, OSError) as error:
            raise DataError(
                f"cannot read Parquet file {file}: {str(error).splitlines()[0]}; "
                "re-export it or remove it from the source"
            ) from None
        cells = table.column(image_column).to_pylist()
        values = table.column(label).to_pylist()
        for row, (cell, value) in enumerate(zip(cells, values, strict=True)):
            yield f"{file}#{row}", value, (cell, value)


def _load_parquet(
    path: Location, size: int, channels: int, label: str, image_column: str, on_bad_file: str
) -> ImageDataset:
    files = _parquet_files(path)
    if not files:
        raise DataError(f"directory {path} holds no *.parquet files; point data.source at them")

    def convert(payload: tuple[object, object]) -> np.ndarray:
        cell, value = payload
        if value is None:
            raise _BadImage(f"no label (null in column {label!r})")
        return _decode(_bytes_of(cell), size, channels)

    return _collect(_parquet_items(files, label, image_column), convert, str(path), on_bad_file)


def _as_uint8(images: np.ndarray, origin: str) -> np.ndarray:
    """Bring a numeric image array to uint8 without guessing beyond two common conventions."""
    if images.dtype == np.uint8:
        return images
    if images.dtype == np.bool_:
        return images.astype(np.uint8) * 255
    if not np.issubdtype(images.dtype, np.number):
        raise DataError(f"array 'images' in {origin} has dtype {images.dtype}; store numbers")
    values = images.astype(np.float64)
    if not np.isfinite(values).all():
        raise DataError(f"array 'images' in {origin} holds NaN or infinite values; clean them")
    low, high = float(values.min()), float(values.max())
    if low < 0 or high > 255:
        raise DataError(
            f"array 'images' in {origin} spans {low:g}..{high:g}; store pixels in 0..255 "
            "(or floats in 0..1)"
        )
    if np.issubdtype(images.dtype, np.floating) and high <= 1.0:
        # Floats within 0..1 are read as intensities; anything larger as 0..255 pixel values.
        values = values * 255.0
    return np.rint(values).astype(np.uint8)


def _load_npz(path: Location, size: int, channels: int, on_bad_file: str) -> ImageDataset:
    try:
        with path.open("rb") as stream, np.load(stream, allow_pickle=False) as archive:
            names = list(archive.files)
            for key in ("images", "labels"):
                if key not in names:
                    raise DataError(
                        _suggest(key, names, "array", path, "save arrays 'images' and 'labels'")
                    )
            images = archive["images"]
            labels = archive["labels"]
    except DataError:
        raise
    except ValueError as error:
        # np.load refuses object arrays without pickle: say so rather than enabling it.
        raise DataError(
            f"cannot read {path}: {str(error).splitlines()[0]}; save 'images' and 'labels' as "
            "plain numeric or string arrays (no Python objects)"
        ) from None
    except (OSError, EOFError) as error:
        raise DataError(
            f"cannot read .npz file {path}: {error}; re-save it with np.savez"
        ) from None

    if images.ndim == 4 and images.shape[3] not in (1, 3, 4):
        raise DataError(
            f"array 'images' in {path} has {images.shape[3]} channels; store 1, 3 or 4 "
            "(shape (N, H, W) or (N, H, W, C))"
        )
    if images.ndim not in (3, 4):
        raise DataError(
            f"array 'images' in {path} has shape {images.shape}; store (N, H, W) or (N, H, W, C)"
        )
    if labels.ndim != 1 or len(labels) != len(images):
        raise DataError(
            f"array 'labels' in {path} has shape {labels.shape}, expected ({len(images)},) to "
            "match 'images'"
        )
    pixels = _as_uint8(images, str(path))
    items = ((f"{path}#{i}", value, pixels[i]) for i, value in enumerate(labels.tolist()))
    return _collect(items, lambda array: _from_array(array, size, channels), str(path), on_bad_file)


def _load_builtin(name: str, size: int, channels: int) -> ImageDataset:
    from sklearn import datasets

    if name != "digits":
        raise DataError(
            f"unknown built-in image dataset {BUILTIN_PREFIX}{name}; choose {BUILTIN_PREFIX}digits"
        )
    bunch = datasets.load_digits()
    # Pixel values are counts 0..16 of dark cells in a 4x4 block; stretch them to 0..255.
    pixels = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)  # (1797, 8, 8)
    items = (
        (f"{BUILTIN_PREFIX}digits#{i}", value, pixels[i])
        for i, value in enumerate(bunch.target.tolist())
    )
    return _collect(
        items, lambda array: _from_array(array, size, channels), f"{BUILTIN_PREFIX}digits", "error"
    )


def load_images(
    source: str,
    *,
    size: int = 28,
    channels: int = 1,
    label: str = "label",
    image_column: str = "image",
    on_bad_file: str = "error",
    storage_options: dict[str, Any] | None = None,
) -> ImageDataset:
    """Load a labelled image set, every image decoded, converted and resized to one shape.

    The kind of source is told by its path: ``sklearn:digits``; a ``.npz`` file; a ``.parquet``
    file or a directory holding ``*.parquet`` files; otherwise a directory laid out as
    ``root/<class>/<image>`` (files sorted, hidden files and other suffixes ignored).

    Args:
        source: path, fsspec URL or built-in name (see above).
        size: output height and width; images of other sizes or aspect ratios are resized.
        channels: 1 (grayscale, ``L``) or 3 (``RGB``); inputs of either kind are converted.
        label: label column of a Parquet source.
        image_column: column of a Parquet source holding encoded image bytes (raw binary, or a
            struct with a ``bytes`` field as written by Hugging Face ``datasets``).
        on_bad_file: ``"error"`` stops at the first undecodable image; ``"skip"`` leaves it out
            and records it in ``skipped``.
        storage_options: passed to fsspec when ``source`` is a URL (``s3://bucket/images/``).

    Returns:
        An :class:`ImageDataset` with ``images`` of shape ``(N, size, size, channels)``.

    Raises:
        DataError: missing path, unreadable or empty source, missing column or array, an empty
            class folder, a bad image under ``on_bad_file="error"``, or fewer than 2 classes.

    Example::

        data = load_images("sklearn:digits", size=28)
        data.images.shape   # (1797, 28, 28, 1)
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise DataError(f"image size must be a positive integer, got {size!r}; set data.size")
    if channels not in (1, 3):
        raise DataError(f"image channels must be 1 or 3, got {channels!r}; set data.channels")
    if on_bad_file not in BAD_FILE_POLICIES:
        raise DataError(
            f"on_bad_file must be one of {', '.join(BAD_FILE_POLICIES)}, got {on_bad_file!r}; "
            "set data.on_bad_file"
        )
    if source.startswith(BUILTIN_PREFIX):
        return _load_builtin(source[len(BUILTIN_PREFIX) :], size, channels)

    path = storage.location(source, storage_options)
    if not path.exists():
        raise DataError(f"image source {path} does not exist; check data.source")
    suffix = path.suffix.lower()
    if path.is_file():
        if suffix == ".npz":
            return _load_npz(path, size, channels, on_bad_file)
        if suffix == ".parquet":
            return _load_parquet(path, size, channels, label, image_column, on_bad_file)
        raise DataError(
            f"image source {path} is a {suffix or 'suffix-less'} file; point data.source at an "
            "image folder (root/<class>/<image>), a .parquet file or directory, or a .npz file"
        )
    if _parquet_files(path):
        return _load_parquet(path, size, channels, label, image_column, on_bad_file)
    return _load_folder(path, size, channels, on_bad_file)
