"""Read a labelled image set: index it (every image's label and origin, nothing decoded), then
decode the images a job uses, each converted to one size and channel count.

Four kinds of source are understood, all brought to ``size x size`` with 1 or 3 channels::

    load_images("data/pets/")                    # folder: pets/<class>/*.png|jpg|jpeg|bmp|gif|webp
    load_images("data/scans.parquet")            # Parquet (file or directory): image bytes + label
    load_images("data/arrays.npz")               # arrays ``images`` (N,H,W[,C]) and ``labels`` (N,)
    load_images("sklearn:digits", size=28)       # scikit-learn's 8x8 handwritten digits
    load_images("s3://bucket/scans/")            # any of the first three on object storage (fsspec)

:func:`load_images` decodes every image. A job reads a large source in two steps instead:
:func:`index_images` lists every image with its label without decoding any (a folder's file
names, a Parquet source's label column), so the split and the plan count every image; then
:meth:`ImageIndex.decode` decodes only the images the job keeps (a seeded per-class sample for
the models, ``data.max_images``, and the holdout images validation scores), a Parquet source
batch by batch. A 20,000-image folder of 256 px RGB photos is 3.9 GB decoded; what is never
used is never decoded.

Every image goes through Pillow: encoded files are fully decoded (so truncated files are caught
here, not halfway through training), converted to ``L`` or ``RGB`` and brought to the size:
resized as they are (``fit="resize"``, the aspect ratio of a non-square image is not kept) or
centre-cropped to a square first (``fit="crop"``). Files that cannot be decoded stop the load
with a :class:`~augment.core.errors.DataError` naming them, unless ``on_bad_file="skip"``, in
which case they are listed as skipped.
"""

from __future__ import annotations

import difflib
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image, ImageOps

from augment.core import storage
from augment.core.config import setting
from augment.core.errors import DataError
from augment.core.storage import Location

BUILTIN_PREFIX = "sklearn:"
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"})
BAD_FILE_POLICIES = ("error", "skip")
FITS = ("resize", "crop")
PARQUET_BATCH = 256  # rows of image bytes read at a time from a Parquet file

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


@dataclass
class DecodedImages:
    """What :meth:`ImageIndex.decode` made of some positions of an index.

    Attributes:
        images: uint8 ``(n, size, size, C)``, one per readable image, in the order asked.
        positions: ``(n,)`` their positions in the index.
        skipped: ``{"source": ..., "reason": ...}`` for each image left out under
            ``on_bad_file="skip"``.
    """

    images: np.ndarray
    positions: np.ndarray
    skipped: list[dict] = field(default_factory=list)


@dataclass
class ImageIndex:
    """Every image of a source with its label and origin, none of them decoded yet.

    Attributes:
        origin: the source as the user named it (for messages).
        labels: ``(N,)`` labels (as in :class:`ImageDataset`).
        sources: where each image comes from (as in :class:`ImageDataset`).
        skipped: images left out before decoding (a Parquet row without a label) under
            ``on_bad_file="skip"``.
    """

    origin: str
    labels: np.ndarray
    sources: list[str]
    payloads: Callable[[np.ndarray], Iterator[Any]] = field(repr=False)
    convert: Callable[[Any, int, int, str], np.ndarray] = field(repr=False)
    skipped: list[dict] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.labels)

    def decode(
        self,
        positions: np.ndarray | None = None,
        *,
        size: int,
        channels: int,
        fit: str = "resize",
        on_bad_file: str = "error",
    ) -> DecodedImages:
        """Decode the images at ``positions`` (ascending; all when None) into one array.

        The array is allocated once for all of them; a source holds one encoded image (or one
        Parquet batch) at a time besides it.

        Raises:
            DataError: an image cannot be decoded and ``on_bad_file="error"``.
        """
        _check_arguments(size, channels, on_bad_file, fit)
        if positions is None:
            positions = np.arange(len(self))
        positions = np.asarray(positions, dtype=np.int64)
        images = np.empty((len(positions), size, size, channels), dtype=np.uint8)
        kept = np.zeros(len(positions), dtype=bool)
        skipped: list[dict] = []
        filled = 0  # readable images so far: each goes to the next free slot
        payloads = self.payloads(positions)
        for slot, (position, payload) in enumerate(zip(positions, payloads, strict=True)):
            try:
                images[filled] = self.convert(payload, size, channels, fit)
            except _BadImage as bad:
                source = self.sources[position]
                if on_bad_file == "error":
                    raise DataError(f"cannot use image {source}: {bad}; {_skip_hint()}") from None
                skipped.append({"source": source, "reason": str(bad)})
                continue
            kept[slot] = True
            filled += 1
        return DecodedImages(images[:filled], positions[kept], skipped)


def _skip_hint() -> str:
    return f"skip such files with {setting('data.on_bad_file', 'skip')}"


class _BadImage(Exception):
    """One image cannot be used; the caller decides between raising and skipping."""


# ---------------------------------------------------------------------------------------------
# One image: bytes or array in, (size, size, C) uint8 out.


def _fit_image(image: Image.Image, size: int, channels: int, fit: str = "resize") -> np.ndarray:
    """Convert a decoded image to the requested mode and size; returns ``(size, size, C)``.

    ``fit="crop"`` cuts the largest centred square out of a non-square image before resizing
    (nothing is squeezed; the edges of the long side are lost); ``"resize"`` resizes the whole
    image to the square."""
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
    if fit == "crop" and image.width != image.height:
        side = min(image.width, image.height)
        left, top = (image.width - side) // 2, (image.height - side) // 2
        image = image.crop((left, top, left + side, top + side))
    if image.size != (size, size):
        shrinking = image.width > size or image.height > size
        # LANCZOS keeps thin strokes when shrinking; BILINEAR avoids ringing when enlarging.
        resample = Image.Resampling.LANCZOS if shrinking else Image.Resampling.BILINEAR
        image = image.resize((size, size), resample=resample)
    pixels = np.asarray(image, dtype=np.uint8)
    return pixels[:, :, None] if pixels.ndim == 2 else pixels


def _decode(data: bytes | None, size: int, channels: int, fit: str = "resize") -> np.ndarray:
    """Decode encoded image bytes fully; raise :class:`_BadImage` with a short reason."""
    if data is None:
        raise _BadImage("no image bytes (null value)")
    if len(data) == 0:
        raise _BadImage("empty file (0 bytes)")
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format == "JPEG":
                # Let the JPEG decoder shrink by a power of two first: much faster for photos.
                # Both sides stay at least `size`, so a centre crop still has enough pixels.
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
    return _fit_image(oriented, size, channels, fit)


def _from_array(pixels: np.ndarray, size: int, channels: int, fit: str = "resize") -> np.ndarray:
    """Resize one uint8 ``(H, W)`` or ``(H, W, C)`` array through Pillow."""
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    return _fit_image(Image.fromarray(np.ascontiguousarray(pixels)), size, channels, fit)


def _convert_file(file: Location, size: int, channels: int, fit: str) -> np.ndarray:
    return _decode(file.read_bytes(), size, channels, fit)


def _convert_cell(cell: object, size: int, channels: int, fit: str) -> np.ndarray:
    return _decode(_bytes_of(cell), size, channels, fit)


# ---------------------------------------------------------------------------------------------
# Checks shared by the index and the decoded set.


def _check_arguments(size: object, channels: object, on_bad_file: object, fit: object) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise DataError(f"image size must be a positive integer, got {size!r}; set data.size")
    if channels not in (1, 3):
        raise DataError(f"image channels must be 1 or 3, got {channels!r}; set data.channels")
    if on_bad_file not in BAD_FILE_POLICIES:
        raise DataError(
            f"on_bad_file must be one of {', '.join(BAD_FILE_POLICIES)}, got {on_bad_file!r}; "
            "set data.on_bad_file"
        )
    if fit not in FITS:
        raise DataError(f"fit must be one of {', '.join(FITS)}, got {fit!r}; set data.fit")


def _classes_of(labels: np.ndarray, origin: str, skipped: list[dict]) -> list:
    """The sorted classes; at least one image and two classes, or a :class:`DataError`."""
    if len(labels) == 0:
        detail = f" ({len(skipped)} files skipped as unreadable)" if skipped else ""
        raise DataError(f"image source {origin} yields no images{detail}; check data.source")
    classes = sorted(set(labels.tolist()))
    if len(classes) < 2:
        raise DataError(
            f"image source {origin} has a single class {classes[0]!r}; "
            "balancing needs at least 2 classes"
        )
    return classes


def _suggest(missing: str, available: list[str], what: str, origin: object, fix: str) -> str:
    """A one-line message for a missing column or array, with close names when there are any."""
    close = difflib.get_close_matches(missing, available, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
    return (
        f"{what} {missing!r} is not in {origin}; {hint}{fix} (found: {', '.join(available[:20])})"
    )


# ---------------------------------------------------------------------------------------------
# Sources: each is indexed (labels and origins) without decoding an image.


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


def _index_folder(root: Location) -> ImageIndex:
    items = list(_folder_items(root))
    files = [file for _, _, file in items]
    return ImageIndex(
        origin=str(root),
        labels=np.asarray([label for _, label, _ in items]),
        sources=[source for source, _, _ in items],
        payloads=lambda positions: (files[i] for i in positions),
        convert=_convert_file,
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


def _unreadable(file: Location, error: Exception) -> DataError:
    return DataError(
        f"cannot read Parquet file {file}: {str(error).splitlines()[0]}; "
        "re-export it or remove it from the source"
    )


def _index_parquet(path: Location, label: str, image_column: str, on_bad_file: str) -> ImageIndex:
    """The label column of every file; image bytes are read later, only for the rows decoded."""
    files = _parquet_files(path)
    if not files:
        raise DataError(f"directory {path} holds no *.parquet files; point data.source at them")
    labels: list = []
    sources: list[str] = []
    places: list[tuple[int, int]] = []  # (file, row) of each indexed image
    skipped: list[dict] = []
    for number, file in enumerate(files):
        if file.stat().st_size == 0:
            raise DataError(f"Parquet file {file} is empty (0 bytes); remove or regenerate it")
        try:
            where, filesystem = storage.arrow_path(file)
            names = pq.read_schema(where, filesystem=filesystem).names
        except (pa.ArrowException, OSError) as error:
            raise _unreadable(file, error) from None
        if image_column not in names:
            raise DataError(
                _suggest(image_column, names, "image column", file, "set data.image_column")
            )
        if label not in names:
            raise DataError(_suggest(label, names, "label column", file, "set data.label"))
        try:
            values = pq.read_table(where, columns=[label], filesystem=filesystem)
        except (pa.ArrowException, OSError) as error:
            raise _unreadable(file, error) from None
        for row, value in enumerate(values.column(label).to_pylist()):
            source = f"{file}#{row}"
            if value is None:
                reason = f"no label (null in column {label!r})"
                if on_bad_file == "error":
                    raise DataError(f"cannot use image {source}: {reason}; {_skip_hint()}")
                skipped.append({"source": source, "reason": reason})
                continue
            labels.append(value)
            sources.append(source)
            places.append((number, row))

    where_of = np.asarray(places, dtype=np.int64).reshape(-1, 2)  # (N, 2): file, row

    def payloads(positions: np.ndarray) -> Iterator[Any]:
        """The image cells at ``positions`` (ascending), reading only the row groups that hold
        them, one batch of a row group in memory at a time."""
        wanted = where_of[positions]  # (n, 2)
        for number in np.unique(wanted[:, 0]):
            rows = wanted[wanted[:, 0] == number, 1]
            file = files[int(number)]
            try:
                with file.open("rb") as stream:
                    reader = pq.ParquetFile(stream)
                    meta = reader.metadata
                    sizes = [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]
                    starts = np.concatenate([[0], np.cumsum(sizes)])
                    for group in np.unique(np.searchsorted(starts, rows, side="right") - 1):
                        first = int(starts[group])
                        inside = rows[(rows >= first) & (rows < starts[group + 1])]
                        done = 0
                        batches = reader.iter_batches(
                            PARQUET_BATCH, row_groups=[int(group)], columns=[image_column]
                        )
                        for batch in batches:
                            upto = int(np.searchsorted(inside, first + batch.num_rows))
                            if upto > done:
                                take = pa.array(inside[done:upto] - first)
                                yield from batch.column(0).take(take).to_pylist()
                            first, done = first + batch.num_rows, upto
                            if done == len(inside):
                                break
            except (pa.ArrowException, OSError) as error:
                raise _unreadable(file, error) from None

    return ImageIndex(str(path), np.asarray(labels), sources, payloads, _convert_cell, skipped)


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


def _array_index(origin: str, pixels: np.ndarray, labels: np.ndarray, name: str) -> ImageIndex:
    """The index of images already in memory as one array (a .npz file, a built-in set)."""
    return ImageIndex(
        origin=origin,
        labels=np.asarray(labels),
        sources=[f"{name}#{i}" for i in range(len(labels))],
        payloads=lambda positions: (pixels[i] for i in positions),
        convert=_from_array,
    )


def _index_npz(path: Location) -> ImageIndex:
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
    return _array_index(str(path), _as_uint8(images, str(path)), labels, str(path))


def _index_builtin(name: str) -> ImageIndex:
    from sklearn import datasets

    if name != "digits":
        raise DataError(
            f"unknown built-in image dataset {BUILTIN_PREFIX}{name}; choose {BUILTIN_PREFIX}digits"
        )
    bunch = datasets.load_digits()
    # Pixel values are counts 0..16 of dark cells in a 4x4 block; stretch them to 0..255.
    pixels = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)  # (1797, 8, 8)
    origin = f"{BUILTIN_PREFIX}digits"
    return _array_index(origin, pixels, bunch.target, origin)


def index_images(
    source: str,
    *,
    label: str = "label",
    image_column: str = "image",
    on_bad_file: str = "error",
    storage_options: dict[str, Any] | None = None,
) -> ImageIndex:
    """List every image of a source with its label, decoding none of them.

    A folder is listed by file name; a Parquet source by its label column alone (the image
    bytes are read when :meth:`ImageIndex.decode` asks for their rows); a ``.npz`` file or a
    built-in set is read whole. The source is told by its path as in :func:`load_images`.

    Raises:
        DataError: missing path, unreadable or empty source, missing column or array, an empty
            class folder, or a Parquet row without a label under ``on_bad_file="error"``.
    """
    if on_bad_file not in BAD_FILE_POLICIES:
        _check_arguments(1, 1, on_bad_file, "resize")
    if source.startswith(BUILTIN_PREFIX):
        return _index_builtin(source[len(BUILTIN_PREFIX) :])
    path = storage.location(source, storage_options)
    if not path.exists():
        raise DataError(f"image source {path} does not exist; check data.source")
    suffix = path.suffix.lower()
    if path.is_file():
        if suffix == ".npz":
            return _index_npz(path)
        if suffix == ".parquet":
            return _index_parquet(path, label, image_column, on_bad_file)
        raise DataError(
            f"image source {path} is a {suffix or 'suffix-less'} file; point data.source at an "
            "image folder (root/<class>/<image>), a .parquet file or directory, or a .npz file"
        )
    if _parquet_files(path):
        return _index_parquet(path, label, image_column, on_bad_file)
    return _index_folder(path)


def load_images(
    source: str,
    *,
    size: int = 28,
    channels: int = 1,
    label: str = "label",
    image_column: str = "image",
    on_bad_file: str = "error",
    fit: str = "resize",
    storage_options: dict[str, Any] | None = None,
) -> ImageDataset:
    """Load a labelled image set, every image decoded, converted and resized to one shape.

    The kind of source is told by its path: ``sklearn:digits``; a ``.npz`` file; a ``.parquet``
    file or a directory holding ``*.parquet`` files; otherwise a directory laid out as
    ``root/<class>/<image>`` (files sorted, hidden files and other suffixes ignored).

    Args:
        source: path, fsspec URL or built-in name (see above).
        size: output height and width.
        channels: 1 (grayscale, ``L``) or 3 (``RGB``); inputs of either kind are converted.
        label: label column of a Parquet source.
        image_column: column of a Parquet source holding encoded image bytes (raw binary, or a
            struct with a ``bytes`` field as written by Hugging Face ``datasets``).
        on_bad_file: ``"error"`` stops at the first undecodable image; ``"skip"`` leaves it out
            and records it in ``skipped``.
        fit: how an image of another shape becomes ``size x size``: ``"resize"`` the whole image
            (a non-square one is squeezed), or ``"crop"`` its largest centred square first.
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
    _check_arguments(size, channels, on_bad_file, fit)
    index = index_images(
        source,
        label=label,
        image_column=image_column,
        on_bad_file=on_bad_file,
        storage_options=storage_options,
    )
    # the built-in set has no bad files to skip
    policy = "error" if source.startswith(BUILTIN_PREFIX) else on_bad_file
    decoded = index.decode(size=size, channels=channels, fit=fit, on_bad_file=policy)
    skipped = index.skipped + decoded.skipped
    labels = index.labels[decoded.positions]
    return ImageDataset(
        images=decoded.images,
        labels=labels,
        classes=_classes_of(labels, index.origin, skipped),
        sources=[index.sources[i] for i in decoded.positions],
        skipped=skipped,
    )
