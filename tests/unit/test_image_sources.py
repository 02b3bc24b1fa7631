import io
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from augment.core.errors import DataError
from augment.image.sources import ImageDataset, load_images


def _noise(rng: np.random.Generator, height: int, width: int, mode: str) -> Image.Image:
    """A random image of the given Pillow mode (L, RGB, RGBA or P)."""
    if mode == "L":
        return Image.fromarray(rng.integers(0, 256, (height, width), dtype=np.uint8), mode="L")
    rgba = rng.integers(0, 256, (height, width, 4), dtype=np.uint8)
    if mode == "RGBA":
        return Image.fromarray(rgba, mode="RGBA")
    rgb = Image.fromarray(rgba[:, :, :3], mode="RGB")
    return rgb.convert("P", palette=Image.Palette.ADAPTIVE) if mode == "P" else rgb


def _png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def image_folder(tmp_path):
    """cats: 3 images, dogs: 2 images; PNG and JPEG, modes L/RGB/RGBA/P, sizes from 10 to 64."""
    rng = np.random.default_rng(0)
    root = tmp_path / "pets"
    layout = {
        "cats": [("a.png", "L", (20, 30)), ("b.jpg", "RGB", (64, 48)), ("c.png", "RGBA", (10, 10))],
        "dogs": [("d.jpeg", "L", (28, 28)), ("e.png", "P", (40, 17))],
    }
    for class_name, files in layout.items():
        (root / class_name).mkdir(parents=True)
        for name, mode, (width, height) in files:
            image = _noise(rng, height, width, mode)
            image.save(root / class_name / name)
    # Hidden files and files with other suffixes are not images of the set.
    (root / "cats" / ".DS_Store").write_bytes(b"\x00\x01")
    (root / "dogs" / "notes.txt").write_text("not an image")
    return root


def test_folder_shapes_labels_and_classes(image_folder):
    data = load_images(str(image_folder), size=16)
    assert isinstance(data, ImageDataset)
    assert data.images.shape == (5, 16, 16, 1)
    assert data.images.dtype == np.uint8
    assert data.labels.tolist() == ["cats", "cats", "cats", "dogs", "dogs"]
    assert data.classes == ["cats", "dogs"]
    assert [s.rsplit("/", 1)[-1] for s in data.sources] == [
        "a.png",
        "b.jpg",
        "c.png",
        "d.jpeg",
        "e.png",
    ]
    assert data.skipped == []
    assert data.class_counts() == {"cats": 3, "dogs": 2}


def test_folder_rgb_and_gray_agree(image_folder):
    gray = load_images(str(image_folder), size=12, channels=1)
    color = load_images(str(image_folder), size=12, channels=3)
    assert gray.images.shape == (5, 12, 12, 1)
    assert color.images.shape == (5, 12, 12, 3)
    # A grayscale source comes out with three equal channels when RGB is asked for.
    first = color.images[0]
    assert np.array_equal(first[..., 0], first[..., 1])
    assert np.array_equal(first[..., 0], first[..., 2])


def test_folder_is_deterministic(image_folder):
    once = load_images(str(image_folder), size=16, channels=3)
    twice = load_images(str(image_folder), size=16, channels=3)
    assert np.array_equal(once.images, twice.images)
    assert np.array_equal(once.labels, twice.labels)
    assert once.sources == twice.sources


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("truncated.png", "truncated"),
        ("zero.png", b""),
        ("x.png", b"this is plain text, not a PNG\n"),
    ],
)
def test_bad_file_errors_then_skips(image_folder, name, content):
    target = image_folder / "dogs" / name
    if content == "truncated":
        full = _png_bytes(_noise(np.random.default_rng(1), 32, 32, "RGB"))
        content = full[: len(full) // 2]
    target.write_bytes(content)

    with pytest.raises(DataError, match=name) as caught:
        load_images(str(image_folder), size=16)
    assert "on_bad_file: skip" in str(caught.value)
    assert "\n" not in str(caught.value)

    data = load_images(str(image_folder), size=16, on_bad_file="skip")
    assert len(data) == 5
    assert len(data.skipped) == 1
    assert data.skipped[0]["source"] == str(target)
    assert data.skipped[0]["reason"]


def test_all_bad_files_together_are_counted(image_folder):
    full = _png_bytes(_noise(np.random.default_rng(1), 32, 32, "RGB"))
    (image_folder / "cats" / "truncated.png").write_bytes(full[:100])
    (image_folder / "cats" / "zero.png").write_bytes(b"")
    (image_folder / "dogs" / "x.png").write_text("hello")
    data = load_images(str(image_folder), size=8, on_bad_file="skip")
    assert len(data) == 5
    assert sorted(s["source"].rsplit("/", 1)[-1] for s in data.skipped) == [
        "truncated.png",
        "x.png",
        "zero.png",
    ]
    assert any("0 bytes" in s["reason"] for s in data.skipped)


def test_only_bad_files_is_an_error(tmp_path):
    for class_name in ("a", "b"):
        (tmp_path / class_name).mkdir()
        (tmp_path / class_name / "x.png").write_text("text")
    with pytest.raises(DataError, match="no images"):
        load_images(str(tmp_path), on_bad_file="skip")


def test_empty_class_folder_is_named(image_folder):
    (image_folder / "birds").mkdir()
    (image_folder / "birds" / "readme.txt").write_text("nothing here")
    with pytest.raises(DataError, match="birds"):
        load_images(str(image_folder))


def test_single_class_and_missing_path(tmp_path, image_folder):
    only = tmp_path / "only"
    (only / "cats").mkdir(parents=True)
    _noise(np.random.default_rng(0), 8, 8, "L").save(only / "cats" / "a.png")
    with pytest.raises(DataError, match="at least 2 classes"):
        load_images(str(only))
    with pytest.raises(DataError, match="does not exist"):
        load_images(str(tmp_path / "nowhere"))


def test_argument_checks(image_folder):
    with pytest.raises(DataError, match="channels"):
        load_images(str(image_folder), channels=2)
    with pytest.raises(DataError, match="on_bad_file"):
        load_images(str(image_folder), on_bad_file="ignore")
    with pytest.raises(DataError, match="size"):
        load_images(str(image_folder), size=0)


def _image_table(rng: np.random.Generator, count: int) -> pa.Table:
    modes = ["L", "RGB", "RGBA", "P"]
    cells = [
        _png_bytes(_noise(rng, 8 + i, 12 + 2 * i, modes[i % len(modes)])) for i in range(count)
    ]
    labels = ["rare" if i % 3 == 0 else "common" for i in range(count)]
    return pa.table({"image": pa.array(cells, pa.binary()), "label": labels, "extra": range(count)})


def test_parquet_file_and_directory(tmp_path):
    rng = np.random.default_rng(3)
    file = tmp_path / "images.parquet"
    pq.write_table(_image_table(rng, 9), file)
    data = load_images(str(file), size=10, channels=3)
    assert data.images.shape == (9, 10, 10, 3)
    assert data.classes == ["common", "rare"]
    assert data.sources[4] == f"{file}#4"

    folder = tmp_path / "parts"
    folder.mkdir()
    pq.write_table(_image_table(rng, 4), folder / "part-0.parquet")
    pq.write_table(_image_table(rng, 5), folder / "part-1.parquet")
    parts = load_images(str(folder), size=10)
    assert parts.images.shape == (9, 10, 10, 1)
    assert parts.sources[4] == f"{folder / 'part-1.parquet'}#0"


def test_parquet_struct_cells_and_bad_rows(tmp_path):
    rng = np.random.default_rng(4)
    good = [_png_bytes(_noise(rng, 9, 9, "L")) for _ in range(3)]
    cells = [{"bytes": good[0], "path": None}, {"bytes": good[1], "path": None}]
    cells += [{"bytes": b"garbage", "path": None}, {"bytes": good[2], "path": None}]
    file = tmp_path / "hf.parquet"
    pq.write_table(pa.table({"image": cells, "label": [0, 1, 1, 0]}), file)
    with pytest.raises(DataError, match=r"hf\.parquet#2"):
        load_images(str(file))
    data = load_images(str(file), on_bad_file="skip")
    assert data.labels.tolist() == [0, 1, 0]
    assert data.classes == [0, 1]
    assert data.skipped[0]["source"] == f"{file}#2"


def test_parquet_missing_columns_suggest_names(tmp_path):
    file = tmp_path / "images.parquet"
    table = _image_table(np.random.default_rng(5), 4).rename_columns(["img", "labels", "extra"])
    pq.write_table(table, file)
    with pytest.raises(DataError, match=r"label column 'label'.*did you mean 'labels'"):
        load_images(str(file), image_column="img")
    with pytest.raises(DataError, match=r"image column 'image'.*did you mean 'img'"):
        load_images(str(file), label="labels")
    data = load_images(str(file), label="labels", image_column="img", size=8)
    assert len(data) == 4


def test_npz_gray_and_color(tmp_path):
    rng = np.random.default_rng(6)
    gray = tmp_path / "gray.npz"
    np.savez(
        gray, images=rng.integers(0, 256, (6, 20, 20), dtype=np.uint8), labels=np.arange(6) % 2
    )
    data = load_images(str(gray), size=14)
    assert data.images.shape == (6, 14, 14, 1)
    assert data.classes == [0, 1]
    assert data.sources[5] == f"{gray}#5"

    color = tmp_path / "color.npz"
    pixels = rng.integers(0, 256, (5, 32, 24, 3), dtype=np.uint8)
    np.savez(color, images=pixels, labels=np.array(["a", "b", "a", "b", "b"]))
    rgb = load_images(str(color), size=32, channels=3)
    assert rgb.images.shape == (5, 32, 32, 3)
    assert rgb.labels.tolist() == ["a", "b", "a", "b", "b"]
    as_gray = load_images(str(color), size=8, channels=1)
    assert as_gray.images.shape == (5, 8, 8, 1)


def test_npz_size_unchanged_keeps_pixels(tmp_path):
    rng = np.random.default_rng(7)
    pixels = rng.integers(0, 256, (4, 10, 10), dtype=np.uint8)
    path = tmp_path / "same.npz"
    np.savez(path, images=pixels, labels=np.array([0, 1, 0, 1]))
    data = load_images(str(path), size=10)
    assert np.array_equal(data.images[..., 0], pixels)


def test_npz_errors(tmp_path):
    path = tmp_path / "wrong.npz"
    np.savez(path, imgs=np.zeros((2, 4, 4), np.uint8), labels=np.array([0, 1]))
    with pytest.raises(DataError, match=r"'images'.*did you mean 'imgs'"):
        load_images(str(path))
    mismatch = tmp_path / "mismatch.npz"
    np.savez(mismatch, images=np.zeros((3, 4, 4), np.uint8), labels=np.array([0, 1]))
    with pytest.raises(DataError, match="labels"):
        load_images(str(mismatch))


def test_sklearn_digits():
    started = time.perf_counter()
    data = load_images("sklearn:digits", size=28)
    elapsed = time.perf_counter() - started
    assert data.images.shape == (1797, 28, 28, 1)
    assert data.images.dtype == np.uint8
    assert data.images.min() == 0
    assert data.images.max() == 255
    assert data.classes == list(range(10))
    assert data.sources[0] == "sklearn:digits#0"
    assert elapsed < 2.0
    again = load_images("sklearn:digits", size=28)
    assert np.array_equal(data.images, again.images)


def test_unknown_builtin_and_unknown_file(tmp_path):
    with pytest.raises(DataError, match="sklearn:digits"):
        load_images("sklearn:mnist")
    stray = tmp_path / "table.csv"
    stray.write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="table.csv"):
        load_images(str(stray))


def _thirds(width: int = 90, height: int = 30) -> np.ndarray:
    """A wide RGB image: a red, a green and a blue square side by side."""
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    third = width // 3
    pixels[:, :third, 0] = pixels[:, third : 2 * third, 1] = pixels[:, 2 * third :, 2] = 255
    return pixels


@pytest.mark.parametrize("kind", ["folder", "npz"])
def test_resize_squeezes_a_non_square_image_and_crop_keeps_its_centre(tmp_path, kind):
    pixels = _thirds()
    if kind == "folder":
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            Image.fromarray(pixels).save(tmp_path / name / "wide.png")
        source = str(tmp_path)
    else:
        source = str(tmp_path / "wide.npz")
        np.savez(source, images=np.stack([pixels, pixels]), labels=np.array(["a", "b"]))
    squeezed = load_images(source, size=30, channels=3).images[0]  # the default: resize
    cropped = load_images(source, size=30, channels=3, fit="crop").images[0]
    # resized, all three squares are there, each a third as wide; cropped, only the middle one
    assert squeezed[15, 2].argmax() == 0 and squeezed[15, 15].argmax() == 1
    assert squeezed[15, 27].argmax() == 2
    assert (cropped[..., 1] == 255).all() and (cropped[..., [0, 2]] == 0).all()
    with pytest.raises(DataError, match="data.fit"):
        load_images(source, fit="pad")


def test_crop_of_a_tall_jpeg_keeps_its_centre(tmp_path):
    pixels = np.transpose(_thirds(width=300, height=100), (1, 0, 2))  # tall: red, green, blue
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        Image.fromarray(np.ascontiguousarray(pixels)).save(tmp_path / name / "tall.jpg", quality=95)
    cropped = load_images(str(tmp_path), size=25, channels=3, fit="crop").images[0]
    assert cropped[..., 1].min() > 200 and cropped[..., [0, 2]].max() < 60  # green, even drafted


def test_an_index_decodes_only_the_images_asked_for(image_folder, tmp_path):
    from augment.image.sources import index_images

    bad = image_folder / "dogs" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    index = index_images(str(image_folder))
    assert len(index) == 6 and index.labels.tolist().count("dogs") == 3
    where = index.sources.index(str(bad))
    good = np.array([i for i in range(len(index)) if i != where])
    decoded = index.decode(good, size=8, channels=1)  # the bad file is never opened
    assert decoded.images.shape == (5, 8, 8, 1) and decoded.positions.tolist() == good.tolist()
    with pytest.raises(DataError, match="broken.png"):
        index.decode(np.array([where]), size=8, channels=1)
    skipped = index.decode(np.arange(len(index)), size=8, channels=1, on_bad_file="skip")
    assert len(skipped.images) == 5 and skipped.skipped[0]["source"] == str(bad)

    # Parquet: the image bytes of the rows asked for, read a batch at a time
    rng = np.random.default_rng(8)
    cells = [_png_bytes(_noise(rng, 9, 9, "L")) for _ in range(600)]
    file = tmp_path / "many.parquet"
    table = pa.table({"image": pa.array(cells, pa.binary()), "label": [i % 2 for i in range(600)]})
    pq.write_table(table, file, row_group_size=100)
    whole = load_images(str(file), size=10)
    rows = np.array([3, 250, 251, 599])
    part = index_images(str(file)).decode(rows, size=10, channels=1)
    np.testing.assert_array_equal(part.images, whole.images[rows])
