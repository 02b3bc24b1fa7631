"""Real resolutions: sizes up to 256 px, the seeded sample of ``data.max_images``, and the networks
that work on large images area-averaged down to 64 px (the autoencoder, the validation CNN)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from augment.core.context import JobContext
from augment.core.storage import location
from augment.core.train import TrainingLoop, run_training
from augment.image.cgan import ImageCGAN, ImageGANSettings, ImageTrainSettings
from augment.image.classifier import train_classifier
from augment.image.latent import LatentSettings, fit_latent_bank
from augment.image.modality import ImageModality
from augment.image.sizes import base_grid, supported_sizes, work_size
from augment.image.transforms import downsample
from augment.pipeline.config import parse_config

CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def test_sizes_and_working_sizes():
    sizes = supported_sizes()
    assert sizes[0] == 8 and sizes[-1] == 256 and {96, 128, 160, 192, 224} <= set(sizes)
    assert all(base_grid(size) for size in sizes)
    assert [work_size(s) for s in (8, 28, 64, 80, 128, 160, 256)] == [8, 28, 64, 40, 64, 40, 64]
    assert work_size(256, None) == 256 and work_size(256, 128) == 128


def test_downsample_averages_each_block_and_keeps_small_images():
    images = np.random.default_rng(0).integers(0, 256, (3, 8, 8, 3), dtype=np.uint8)
    half = downsample(images, 4)
    blocks = images.reshape(3, 4, 2, 4, 2, 3).astype(float).mean(axis=(2, 4))
    assert half.dtype == np.uint8 and half.shape == (3, 4, 4, 3)
    assert np.abs(half.astype(float) - blocks).max() <= 0.5
    assert downsample(images, 8) is images


def _two_classes(size: int, n=(12, 4), channels=3, seed=0):
    """Class 0 bright on the left, class 1 bright on the right, over noise."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for cls, count in enumerate(n):
        block = rng.integers(0, 80, (count, size, size, channels))
        block[:, :, slice(0, size // 2) if cls == 0 else slice(size // 2, size)] += 150
        images.append(block.astype(np.uint8))
        labels += [cls] * count
    return np.concatenate(images), np.array(labels)


def test_the_autoencoder_works_at_64_px_and_gives_128_px_detail_back():
    images, labels = _two_classes(128)
    settings = LatentSettings(size=128, channels=3, latent_dim=8, width=8, steps=3, batch_size=8)
    bank = fit_latent_bank(images, labels.tolist(), [0, 1], settings, seed=0, device=CPU)
    assert bank.autoencoder.work == 64
    new = bank.sample(1, 9, seed=1)
    assert new.shape == (9, 128, 128, 3) and new.dtype == np.uint8
    assert np.array_equal(new, bank.sample(1, 9, seed=1))
    # an anchor's own code with its own missed detail is the anchor: the full-size detail is
    # given back exactly, whatever the decoder's working size
    codes, _, _ = bank._prepared(1)
    rows = torch.arange(4)
    assert np.array_equal(bank._decode(1, codes[rows], [(rows, None)]), bank.anchors[1])


def test_the_pixel_gan_builds_and_trains_at_128_px():
    images, labels = _two_classes(128, n=(6, 4), channels=1)
    settings = ImageGANSettings(size=128, channels=1, width=2, noise_dim=4, embed_dim=2)
    model = ImageCGAN([0, 1], settings)
    trainer = model.make_trainer(images, labels.tolist(), ImageTrainSettings(batch_size=4), CPU)
    assert trainer.data.dtype == torch.uint8  # the images never sit on the device as float
    result = run_training(trainer, 1, TrainingLoop(progress=False))
    assert np.isfinite(result.history[-1]["loss_d"])
    assert model.sample(1, 2, seed=0).shape == (2, 128, 128, 1)


def test_the_validation_cnn_runs_at_64_px_on_128_px_images():
    images, labels = _two_classes(128)
    classifier = train_classifier(images, labels, 2, epochs=1, batch_size=8, seed=0)
    assert (classifier.size, classifier.input_size) == (64, 128)
    on_full = classifier.predict_proba(images)
    on_small = classifier.predict_proba(downsample(images, 64))
    np.testing.assert_array_equal(on_full, on_small)  # the same area-averaged pixels
    with pytest.raises(Exception, match="trained on 128 x 128 x 3"):
        classifier.predict(np.zeros((1, 96, 96, 3), dtype=np.uint8))
    full = train_classifier(images, labels, 2, epochs=1, batch_size=8, seed=0, max_size=None)
    assert full.size == 128


def _npz_job(tmp_path, counts: dict[str, int], **data) -> JobContext:
    """A job context on a .npz of 16 px RGB images, ``counts`` images per class."""
    rng = np.random.default_rng(0)
    labels = np.concatenate([[c] * n for c, n in counts.items()])
    images = rng.integers(0, 256, (len(labels), 16, 16, 3), dtype=np.uint8)
    path = tmp_path / "set.npz"
    np.savez(path, images=images, labels=labels)
    config = parse_config(
        {
            "name": "sample",
            "data": {"source": str(path), "kind": "image", "size": 16, "channels": 3, **data},
            "validate": {"holdout": 0.2},
            "output": {"path": str(tmp_path / "run")},
            "tracking": {"enabled": False},
        }
    )
    return JobContext(
        config=config, output=location(str(tmp_path / "run")), fingerprint="x", tracker=None
    )


def test_max_images_fits_on_an_exact_seeded_sample_with_the_rarest_classes_whole(tmp_path):
    ctx = _npz_job(tmp_path, {"a": 400, "b": 100, "c": 20}, max_images=120)
    data = ImageModality().load(ctx)
    # the plan counts every image of the train split (80% of each class)
    assert data.counts_before == {"a": 320, "b": 80, "c": 16}
    assert data.plan == {"a": 0, "b": 240, "c": 304}
    # the models get 120: c whole, a and b share the rest evenly
    fitted = dict(zip(*np.unique(data.train_labels, return_counts=True), strict=True))
    assert fitted == {"a": 52, "b": 52, "c": 16} and data.train_images.shape == (120, 16, 16, 3)
    assert data.cleaning["fitted"]["fitted"] == fitted
    assert any(
        "data.max_images=120" in note and "all images of c" in note
        for note in data.cleaning["notes"]
    )
    assert data.params["data.images_fitted"] == 120 and data.params["data.images_train"] == 416
    assert len(data.split_ids["train_sources"]) == 416  # the split records every image
    again = ImageModality().load(ctx)
    np.testing.assert_array_equal(again.train_images, data.train_images)  # seeded
    other = _npz_job(tmp_path, {"a": 400, "b": 100, "c": 20}, max_images=120)
    other.config.train.seed = 1
    assert not np.array_equal(ImageModality().load(other).train_images, data.train_images)


def test_max_images_auto_and_null_keep_a_small_set_whole(tmp_path):
    for value in ("auto", None):
        data = ImageModality().load(_npz_job(tmp_path, {"a": 40, "b": 10}, max_images=value))
        assert len(data.train_images) == 40 and "fitted" not in data.cleaning
        assert "data.images_fitted" not in data.params


def test_the_holdout_is_kept_at_the_size_validation_sees(tmp_path):
    ctx = _npz_job(tmp_path, {"a": 40, "b": 10})
    ctx.config.validate_.max_size = 8
    data = ImageModality().load(ctx)
    assert data.holdout_images.shape == (10, 8, 8, 3) and data.train_images.shape[1] == 16
    ctx.config.validate_.max_rows = 5  # a stratified sample of the holdout, every class in it
    data = ImageModality().load(ctx)
    assert len(data.holdout_images) == 5 and set(data.holdout_labels) == {"a", "b"}
    assert any("5 of the 10 holdout images" in note for note in data.cleaning["notes"])


def test_validation_of_a_sample_keeps_the_class_mix_of_the_split():
    from augment.core.validation import scaled_to_sample

    counts = {"a": 7000, "b": 3500, "d": 1050}  # the train split
    fitted = {"a": 683, "b": 683, "d": 682}  # the models' sample: the large classes cut
    plan = {"a": 0, "b": 3500, "d": 5950}
    real, synthetic = scaled_to_sample(counts, fitted, plan)
    assert real == {"a": 683, "b": 342, "d": 102} and synthetic == {"a": 0, "b": 342, "d": 581}
    assert all(real[c] <= fitted[c] for c in counts)


def test_large_images_are_generated_in_smaller_batches_and_parts(tmp_path):
    from augment.core.storage import location
    from augment.image.generate import BATCH_BYTES, PART_BYTES, generate_image_shards

    class Stub:
        image_shape = (256, 256, 3)
        batches: list[int] = []

        def iter_batches(self, counts, seed, batch_size):
            for cls, n in counts.items():
                for start in range(0, n, batch_size):
                    self.batches.append(min(batch_size, n - start))
                    yield cls, np.zeros((self.batches[-1], *self.image_shape), dtype=np.uint8)

    result = generate_image_shards(Stub(), {"x": 800}, location(str(tmp_path)), 10_000, seed=0)
    pixels = 256 * 256 * 3
    assert max(Stub.batches) == BATCH_BYTES // pixels and sum(Stub.batches) == 800
    assert [f["rows"] for f in result.files] == [PART_BYTES // pixels, 800 - PART_BYTES // pixels]


def test_a_patchwork_of_detail_at_128_px():
    """The patchwork's masks (made at 32 px) weigh the detail at the decoder's 64 px and the
    image's 128 px alike: a mask of zeros gives the first parent back, of ones the second."""
    images, labels = _two_classes(128)
    settings = LatentSettings(size=128, channels=3, latent_dim=8, width=8, steps=3, batch_size=8)
    bank = fit_latent_bank(images, labels.tolist(), [0, 1], settings, seed=0, device=CPU)
    codes, _, _ = bank._prepared(1)
    first, second = torch.arange(0, 2), torch.arange(2, 4)
    zeros = torch.zeros(2, 1, 32, 32)
    back = bank._decode(1, codes[first], [(first, 1 - zeros), (second, zeros)])
    assert np.abs(back.astype(int) - bank.anchors[1][:2].astype(int)).max() <= 1
    ones = torch.ones(2, 1, 32, 32)
    back = bank._decode(1, codes[second], [(first, 1 - ones), (second, ones)])
    assert np.abs(back.astype(int) - bank.anchors[1][2:4].astype(int)).max() <= 1
