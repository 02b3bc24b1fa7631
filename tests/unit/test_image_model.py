"""The conditional image GAN, DiffAugment, PNG shards, exact generation and the quality filter."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from augment import load_synthesizer
from augment.core.errors import DataError, ModelFileError
from augment.core.shards import finalize, sha256_file
from augment.core.train import TrainingLoop, run_training
from augment.image.cgan import (
    ImageCGAN,
    ImageDiscriminator,
    ImageGANSettings,
    ImageGANTrainer,
    ImageGenerator,
    ImageTrainSettings,
    base_grid,
)
from augment.image.generate import generate_image_shards
from augment.image.shards import decode_png, encode_png, read_image_shards
from augment.image.synthesizer import ImageSynthesizer, fit_image_unit
from augment.image.transforms import diff_augment, from_unit, parse_policy, to_unit

TINY = {"width": 4, "noise_dim": 8, "embed_dim": 4}


def _blobs(n_per_class=(12, 4), size=8, channels=1, seed=0):
    """Class 0: bright top half; class 1: bright bottom half (easy to tell apart)."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for cls, n in enumerate(n_per_class):
        block = rng.integers(0, 60, size=(n, size, size, channels))
        rows = slice(0, size // 2) if cls == 0 else slice(size // 2, size)
        block[:, rows] += 180
        images.append(block.astype(np.uint8))
        labels += [cls] * n
    return np.concatenate(images), np.array(labels)


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (8, (4, 1)),
        (14, (7, 1)),
        (28, (7, 2)),
        (32, (4, 3)),
        (64, (4, 4)),
        (96, (6, 4)),
        (128, (4, 5)),
        (224, (7, 5)),
        (256, (4, 6)),
    ],
)
def test_base_grid_covers_8_to_256(size, expected):
    assert base_grid(size) == expected


@pytest.mark.parametrize("size", [4, 9, 36, 100, 512])
def test_base_grid_refuses_unsupported_sizes(size):
    with pytest.raises(ValueError, match="not supported"):
        base_grid(size)


@pytest.mark.parametrize(("size", "channels"), [(8, 1), (28, 1), (16, 3), (64, 3)])
def test_networks_scale_with_resolution(size, channels):
    settings = ImageGANSettings(size=size, channels=channels, **TINY)
    generator = ImageGenerator(settings, n_classes=3)
    disc = ImageDiscriminator(settings, n_classes=3)
    labels = torch.tensor([0, 1, 2, 1])
    images = generator(torch.randn(4, settings.noise_dim), labels)
    assert images.shape == (4, channels, size, size)
    assert images.abs().max() <= 1
    score, logits = disc(images, labels)
    assert score.shape == (4,) and logits.shape == (4, 3)


@pytest.mark.parametrize(("size", "channels"), [(8, 1), (28, 1), (32, 3)])
def test_sampling_path_equals_the_training_ops(size, channels):
    # Without autograd an eval-mode generator folds its norms in place and runs its last layer in
    # sub-pixel form; the values must be those of the plain ops (running statistics in use).
    torch.manual_seed(size + channels)  # seeded: an unlucky draw once gave a near-flat output
    settings = ImageGANSettings(size=size, channels=channels, width=8, noise_dim=8, embed_dim=4)
    generator = ImageGenerator(settings, n_classes=3)
    with torch.no_grad():
        for module in generator.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-1, 1)
                module.running_var.uniform_(0.5, 2.0)
            elif isinstance(module, torch.nn.Linear):
                module.weight.normal_(0, 0.3)
        generator.to_pixels.bias.normal_()
    generator.eval()
    z, labels = torch.randn(6, settings.noise_dim), torch.tensor([0, 1, 2, 2, 1, 0])
    plain = generator(z, labels)  # autograd on: the plain ops
    with torch.no_grad():
        fast = generator(z, labels)
    assert plain.requires_grad and not fast.requires_grad
    torch.testing.assert_close(fast, plain.detach(), atol=1e-5, rtol=0)
    assert plain.detach().std() > 0.05  # not a trivially flat output


def test_unit_scaling_round_trips_uint8():
    images = np.random.default_rng(0).integers(0, 256, size=(5, 8, 8, 3), dtype=np.uint8)
    tensor = to_unit(images)
    assert tensor.shape == (5, 3, 8, 8) and tensor.min() >= -1 and tensor.max() <= 1
    np.testing.assert_array_equal(from_unit(tensor), images)


def test_diff_augment_is_seeded_differentiable_and_changes_images():
    x = torch.rand(6, 3, 16, 16, requires_grad=True)
    policy = parse_policy("color,translation,cutout")
    a = diff_augment(x, policy, torch.Generator().manual_seed(1))
    b = diff_augment(x, policy, torch.Generator().manual_seed(1))
    c = diff_augment(x, policy, torch.Generator().manual_seed(2))
    assert a.shape == x.shape
    assert torch.equal(a, b) and not torch.equal(a, c)
    a.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    cut = diff_augment(torch.ones(4, 1, 8, 8), ("cutout",), torch.Generator().manual_seed(0))
    assert ((cut == 0).flatten(1).sum(1) > 0).all()  # every image lost a square
    with pytest.raises(ValueError, match="unknown DiffAugment policy"):
        parse_policy("color,blur")
    assert parse_policy("none") == ()


def _fit(tmp_path=None, steps=6, **train):
    images, labels = _blobs()
    settings = ImageGANSettings(size=8, **TINY)
    return fit_image_unit(
        images,
        labels.tolist(),
        [0, 1],
        gan=settings,
        train=ImageTrainSettings(steps=steps, batch_size=16, seed=3, **train),
        device="cpu",
        loop=TrainingLoop(
            checkpoint_path=None if tmp_path is None else tmp_path / "unit.pt", checkpoint_every=3
        ),
    )


def test_training_runs_and_losses_are_finite():
    model, result = _fit(steps=5)
    assert result.steps == 5
    assert all(np.isfinite(v) for row in result.history for v in row.values())
    assert set(result.history[0]) == {"loss_d", "loss_g", "d_real", "d_fake"}


def test_resumed_training_is_bit_identical(tmp_path):
    straight, _ = _fit(steps=6)
    images, labels = _blobs()
    settings = ImageGANSettings(size=8, **TINY)
    train = ImageTrainSettings(steps=6, batch_size=16, seed=3)
    first = ImageCGAN([0, 1], settings)
    trainer = first.make_trainer(images, labels.tolist(), train, torch.device("cpu"))
    path = tmp_path / "ckpt.pt"
    run_training(trainer, 3, TrainingLoop(checkpoint_path=path, fingerprint="f"))
    second = ImageCGAN([0, 1], settings)  # a new process would start from scratch like this
    trainer2 = second.make_trainer(images, labels.tolist(), train, torch.device("cpu"))
    result = run_training(trainer2, 6, TrainingLoop(checkpoint_path=path, fingerprint="f"))
    assert result.resumed_from == 3
    for key, value in straight.ema.state_dict().items():
        assert torch.equal(value, second.ema.state_dict()[key]), key


def test_sampling_is_exact_seeded_and_survives_save_and_load(tmp_path):
    model, _ = _fit(steps=3)
    synth = ImageSynthesizer([model], [0, 1])
    images, labels = synth.sample({0: 5, 1: 1030}, seed=4)  # 1030 spans two sampling batches
    assert images.shape == (1035, 8, 8, 1) and images.dtype == np.uint8
    assert (labels == 0).sum() == 5 and (labels == 1).sum() == 1030
    again, _ = synth.sample({0: 5, 1: 1030}, seed=4)
    other, _ = synth.sample({0: 5, 1: 1030}, seed=5)
    assert np.array_equal(images, again) and not np.array_equal(images, other)
    only_one, _ = synth.sample({1: 1030}, seed=4)
    assert np.array_equal(only_one, images[5:])  # a class's images do not depend on the others

    synth.save(tmp_path / "model.pt")
    loaded = load_synthesizer(tmp_path / "model.pt", device="cpu")
    assert isinstance(loaded, ImageSynthesizer) and loaded.classes == [0, 1]
    assert np.array_equal(loaded.sample({0: 5, 1: 1030}, seed=4)[0], images)
    payload = torch.load(tmp_path / "model.pt", weights_only=True)  # no pickled code inside
    assert payload["format"] == "augment.image_synthesizer/1"

    (tmp_path / "cut.pt").write_bytes((tmp_path / "model.pt").read_bytes()[:200])
    with pytest.raises(ModelFileError, match="truncated, corrupt"):
        load_synthesizer(tmp_path / "cut.pt")


@pytest.mark.parametrize("channels", [1, 3])
def test_png_encoder_round_trips_through_pillow(channels):
    images = np.random.default_rng(channels).integers(0, 256, (4, 12, 12, channels), np.uint8)
    files = encode_png(images)
    for image, data in zip(images, files, strict=True):
        with Image.open(io.BytesIO(data)) as decoded:
            assert decoded.mode == ("L" if channels == 1 else "RGB")
            decoded.verify()
        np.testing.assert_array_equal(decode_png(data), image)
    with pytest.raises(ValueError, match="uint8"):
        encode_png(images.astype(np.float32))


def _synth():
    model, _ = _fit(steps=3)
    return ImageSynthesizer([model], [0, 1])


def test_generation_writes_exact_counts_and_identical_bytes_for_a_seed(tmp_path):
    synth = _synth()
    plan = {0: 0, 1: 37}
    shas = []
    for name in ("a", "b"):
        out = tmp_path / name
        out.mkdir()
        result = generate_image_shards(
            synth, plan, out, rows_per_shard=10, seed=1, image_files=True, batch_size=16
        )
        assert result.counts == plan
        assert [f["rows"] for f in result.files] == [10, 10, 10, 7]
        finalize(out, {"files": result.files, "image_shape": [8, 8, 1]})
        shas.append([sha256_file(out / f["path"]) for f in result.files])
        images, labels, ids = read_image_shards(out)
        assert images.shape == (37, 8, 8, 1) and set(labels.tolist()) == {1}
        assert len(set(ids)) == 37
        pngs = sorted((out / "images" / "1").glob("*.png"))
        assert len(pngs) == 37 and not list(out.glob(".images.tmp-*"))
        np.testing.assert_array_equal(decode_png(pngs[0].read_bytes()), images[0])
        frame = pd.read_parquet(out / "synthetic")
        assert list(frame.columns) == ["image", "label", "sample_id"]
    assert shas[0] == shas[1]


def test_quality_filter_accounts_for_every_candidate(tmp_path):
    synth = _synth()

    def judge(images, cls):  # deterministic stand-in for the classifier: brightness as confidence
        return images.reshape(len(images), -1).mean(axis=1) / 255.0

    def cutoff_for(rate):
        sample, _ = synth.sample({1: 2000}, seed=9)
        return float(np.quantile(judge(sample, 1), 1 - rate))

    threshold = cutoff_for(0.3)  # about 30% of candidates pass
    result = generate_image_shards(
        synth,
        {0: 20, 1: 50},
        tmp_path,
        1000,
        seed=0,
        judge=judge,
        threshold=threshold,
        max_factor=8.0,
        batch_size=64,
    )
    assert result.counts == {0: 20, 1: 50}
    for cls, planned in ((0, 20), (1, 50)):
        row = result.filter[str(cls)]
        assert row["planned"] == planned
        assert row["accepted"] + row["filled_below_threshold"] == planned
        assert planned <= row["drawn"] <= 8 * planned
        assert row["acceptance_rate"] == pytest.approx(row["accepted"] / row["drawn"])
    images, labels, _ = read_image_shards(tmp_path, require_success=False)
    kept = judge(images[labels == 1], 1)
    filled = result.filter["1"]["filled_below_threshold"]
    assert (kept >= threshold).sum() == 50 - filled

    impossible = 2.0  # nothing passes: fill with the most confident, or fail
    out = tmp_path / "fill"
    out.mkdir()
    result = generate_image_shards(
        synth, {1: 10}, out, 1000, seed=0, judge=judge, threshold=impossible, max_factor=3.0
    )
    assert result.filter["1"] == {
        "planned": 10,
        "drawn": 30,
        "accepted": 0,
        "filled_below_threshold": 10,
        "acceptance_rate": 0.0,
    }
    out = tmp_path / "error"
    out.mkdir()
    with pytest.raises(DataError, match="class 1 got 0 of 10 images"):
        generate_image_shards(
            synth,
            {1: 10},
            out,
            1000,
            seed=0,
            judge=judge,
            threshold=impossible,
            max_factor=3.0,
            on_shortfall="error",
        )
    assert not (out / "synthetic").exists() and not list(out.glob(".synthetic.tmp-*"))


def _trainer(mode_seeking: float):
    images, labels = _blobs(n_per_class=(12, 12))
    model = ImageCGAN([0, 1], ImageGANSettings(size=8, mode_seeking=mode_seeking, **TINY))
    train = ImageTrainSettings(steps=4, batch_size=16, seed=3)
    return model.make_trainer(images, labels.tolist(), train, torch.device("cpu"))


def test_mode_seeking_pairs_images_of_one_class():
    trainer = _trainer(1.0)
    for batch in (9, 16):
        cls = trainer._generator_classes(batch)
        pairs = batch // 2
        assert len(cls) == batch
        assert torch.equal(cls[:pairs], cls[batch - pairs :])
    # With the term off the generator's classes are plain independent draws.
    assert torch.equal(_trainer(0.0)._generator_classes(16), _trainer(0.0)._classes(16))


def test_mode_seeking_loss_punishes_a_generator_that_ignores_its_noise():
    z = torch.randn(8, 4, generator=torch.Generator().manual_seed(0))
    same = torch.ones(8, 1, 8, 8)  # the same image for every noise
    varied = torch.randn(8, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    collapsed = ImageGANTrainer._mode_seeking_loss(same, z)
    diverse = ImageGANTrainer._mode_seeking_loss(varied, z)
    assert collapsed > 1e3 * diverse
    # Its gradient pushes paired images apart: a small step along it lowers the loss.
    fake = (varied * 0.1).requires_grad_()
    loss = ImageGANTrainer._mode_seeking_loss(fake, z)
    loss.backward()
    assert ImageGANTrainer._mode_seeking_loss(fake.detach() - 0.01 * fake.grad, z) < loss


def test_mode_seeking_changes_the_generator_update():
    # Same class pairing and draws on both sides; only the term's weight differs.
    on, off = _trainer(1.0), _trainer(1e-30)
    for step in range(2):
        on.train_step(step)
        off.train_step(step)
    state_on, state_off = on.model.generator.state_dict(), off.model.generator.state_dict()
    assert any(not torch.equal(state_on[k], state_off[k]) for k in state_on)
    assert all(torch.isfinite(v).all() for v in state_on.values() if v.is_floating_point())
