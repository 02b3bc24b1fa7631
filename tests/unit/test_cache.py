import numpy as np
import pandas as pd

from augment.core.cache import SynthesizerCache, cache_key, frame_digest, images_digest


def test_frame_digest_follows_content_not_identity(mixed_frame):
    same = mixed_frame.copy()
    assert frame_digest(same) == frame_digest(mixed_frame)
    one_cell = mixed_frame.copy()
    one_cell.loc[5, "visits"] += 1
    assert frame_digest(one_cell) != frame_digest(mixed_frame)
    assert frame_digest(mixed_frame.iloc[::-1]) != frame_digest(mixed_frame)  # row order
    assert frame_digest(mixed_frame.astype({"visits": "float64"})) != frame_digest(mixed_frame)
    renamed = mixed_frame.rename(columns={"amount": "total"})
    assert frame_digest(renamed) != frame_digest(mixed_frame)


def test_images_digest_covers_pixels_and_labels():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (6, 8, 8, 1), dtype=np.uint8)
    labels = [0, 0, 0, 1, 1, 2]
    base = images_digest(images, labels)
    assert images_digest(images.copy(), list(labels)) == base
    touched = images.copy()
    touched[2, 4, 4, 0] ^= 1
    assert images_digest(touched, labels) != base
    assert images_digest(images, [0, 0, 1, 1, 1, 2]) != base


def test_key_and_store(tmp_path):
    key = cache_key("d", {"model": {"noise_dim": 8}}, [["a"], ["b"]])
    assert key != cache_key("d", {"model": {"noise_dim": 8}}, [["a"]])
    assert key != cache_key("e", {"model": {"noise_dim": 8}}, [["a"], ["b"]])
    cache = SynthesizerCache(tmp_path / "cache")
    assert cache.get(key) is None
    model = tmp_path / "model.pt"
    model.write_bytes(b"weights")
    stored = cache.put(key, model, {"job": "x"})
    assert cache.get(key) == stored and stored.read_bytes() == b"weights"
    model.write_bytes(b"newer")
    cache.put(key, model, {"job": "x"})  # replaces the entry
    assert cache.get(key).read_bytes() == b"newer"
    assert not list((tmp_path / "cache").glob(".*"))  # no staging leftovers
    frame = pd.DataFrame({"a": [1]})
    assert frame_digest(frame) == frame_digest(pd.DataFrame({"a": [1]}))
