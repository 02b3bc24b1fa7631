"""augment.ShardDataset over real finished runs (a tiny image job and a tiny table job, made once
for the module): lengths, real + synthetic items, a DataLoader, albumentations and torchvision
style transforms, labels, the table encoding, and the folders it refuses."""

from __future__ import annotations

import shutil

import albumentations as A
import numpy as np
import pandas as pd
import pytest
import torch
from albumentations.pytorch import ToTensorV2
from torch.utils.data import DataLoader, WeightedRandomSampler

from augment import DataError, ShardDataset, load_config, run_job
from augment.core.shards import read_manifest, read_shards
from augment.image.shards import read_image_shards
from tests.conftest import image_config, write_config

FAST = {"validate": {"enabled": False}, "cache": {"enabled": False}}


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    """A finished digits run (8x8 grey images) and the path of its job YAML."""
    folder = tmp_path_factory.mktemp("image")
    path = image_config(folder, None, **FAST)
    return run_job(load_config(path)).output, path


@pytest.fixture(scope="module")
def table_run(tmp_path_factory):
    """A finished run on a table with number, text, category and bool columns."""
    folder = tmp_path_factory.mktemp("table")
    rng = np.random.default_rng(0)
    n = 120
    label = np.where(np.arange(n) < 90, "common", "rare")
    pd.DataFrame(
        {
            "amount": rng.normal(10, 2, n) + (label == "rare") * 2.0,
            "channel": rng.choice(["web", "shop", "phone"], n),
            "tier": pd.Categorical(rng.choice(["a", "b"], n)),
            "member": rng.random(n) > 0.5,
            "label": label,
        }
    ).to_parquet(folder / "table.parquet")
    path = write_config(
        folder,
        None,
        data={"source": str(folder / "table.parquet"), "label": "label", "imbalance_ratio": None},
        **FAST,
    )
    return run_job(load_config(path)).output, path


def test_synthetic_images_only(image_run):
    output, _ = image_run
    manifest = read_manifest(output)
    data = ShardDataset(output)

    assert len(data) == sum(manifest["counts_generated"].values()) > 0
    assert data.synthetic_mask.all()
    assert data.classes == [int(c) for c in manifest["counts_before"]]  # the labels' own type
    _, labels, _ = read_image_shards(output)
    assert [data.classes[t] for t in data.targets] == labels.tolist()
    x, y = data[0]
    assert x.shape == (1, 8, 8) and x.dtype == torch.float32
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    assert isinstance(y, int) and data.classes[y] == labels[0]


def test_real_and_synthetic_images_in_a_dataloader(image_run):
    output, path = image_run
    manifest = read_manifest(output)
    data = ShardDataset(output, include_real=True, config=path)

    assert len(data) == sum(manifest["counts_after"].values())
    real = ~data.synthetic_mask
    assert real.sum() == sum(manifest["counts_before"].values())
    assert not data.synthetic_mask[: real.sum()].any()  # real items first
    real_counts = np.bincount(data.targets[real], minlength=len(data.classes)).tolist()
    assert real_counts == list(manifest["counts_before"].values())  # the run's train split
    loader = DataLoader(data, batch_size=16, shuffle=True, num_workers=0)
    images, targets = next(iter(loader))
    assert images.shape == (16, 1, 8, 8) and images.dtype == torch.float32
    assert targets.shape == (16,) and targets.dtype == torch.int64
    assert sum(len(batch) for batch, _ in loader) == len(data)


def test_stacking_weights_give_each_class_its_count_with_half_the_top_up_real(image_run):
    output, path = image_run
    manifest = read_manifest(output)
    data = ShardDataset(output, include_real=True, config=path)
    weights = data.stacking_weights()
    assert weights.sum().item() == pytest.approx(len(data))
    for index, cls in enumerate(data.classes):
        mine = data.targets == index
        # each class keeps its share of the draws: its count after balancing
        assert weights[mine].sum().item() == pytest.approx(manifest["counts_after"][str(cls)])
        fake, real = mine & data.synthetic_mask, mine & ~data.synthetic_mask
        if fake.any():
            assert weights[fake].sum().item() == pytest.approx(0.5 * fake.sum())
            assert weights[real].min().item() > 1
    assert torch.equal(data.stacking_weights(1.0), torch.ones(len(data), dtype=torch.float64))
    sampler = WeightedRandomSampler(weights, num_samples=len(data))
    assert len(list(DataLoader(data, batch_size=16, sampler=sampler))) == -(-len(data) // 16)
    with pytest.raises(DataError, match="in \\(0, 1\\]"):
        data.stacking_weights(0.0)
    with pytest.raises(DataError, match="include_real=True"):
        ShardDataset(output).stacking_weights()


def test_transforms(image_run):
    output, path = image_run
    plain = ShardDataset(output, include_real=True, config=load_config(path))
    flipped = ShardDataset(
        output, include_real=True, config=path, transform=A.HorizontalFlip(p=1.0)
    )
    n_real = int((~plain.synthetic_mask).sum())
    for index in (0, len(plain) - 1):  # a real image, a synthetic one
        assert torch.equal(flipped[index][0], plain[index][0].flip(-1))
    assert not torch.equal(flipped[0][0], plain[0][0])  # a digit is not symmetric

    # a pipeline that ends in ToTensorV2 returns its tensor (uint8, C x H x W) as it is
    to_tensor = ShardDataset(output, transform=A.Compose([A.HorizontalFlip(p=1.0), ToTensorV2()]))
    x, _ = to_tensor[0]
    assert x.dtype == torch.uint8 and x.shape == (1, 8, 8)
    assert torch.equal(x.float() / 255, flipped[n_real][0])

    # any other callable (torchvision style) gets the float tensor; target_transform the index
    torchvision_style = ShardDataset(
        output, transform=lambda t: t.flip(-1), target_transform=lambda y: y + 100
    )
    assert torch.equal(torchvision_style[0][0], flipped[n_real][0])
    assert torchvision_style[0][1] == plain[n_real][1] + 100

    # a transform that writes into its input leaves the dataset as it was
    before = plain[0][0].clone()
    plain.transform = lambda t: t.zero_()
    assert float(plain[0][0].abs().sum()) == 0.0
    plain.transform = A.Lambda(image=_zero_in_place)
    plain[0]
    plain.transform = None
    assert torch.equal(plain[0][0], before)


def _zero_in_place(image, **_):
    image *= 0
    return image


def test_table_rows_real_and_synthetic(table_run):
    output, path = table_run
    manifest = read_manifest(output)
    synthetic = ShardDataset(output)
    both = ShardDataset(output, include_real=True, config=path)

    assert len(synthetic) == sum(manifest["counts_generated"].values()) > 0
    assert len(both) == sum(manifest["counts_after"].values())
    assert both.classes == synthetic.classes == ["common", "rare"]
    assert [both.classes[t] for t in both.targets] == both.frame["label"].tolist()
    assert (
        both.frame.iloc[both.synthetic_mask.argmax() :]
        .reset_index(drop=True)
        .equals(read_shards(output))
    )
    # numbers and booleans as they are, text and categories one-hot over the run's categories:
    # the same columns with and without the real rows (which hold every category)
    assert both.feature_names == synthetic.feature_names
    assert both.feature_names == [
        "amount",
        "channel=phone",
        "channel=shop",
        "channel=web",
        "tier=a",
        "tier=b",
        "member",
    ]
    x, y = both[0]
    assert x.shape == (7,) and x.dtype == torch.float32 and both.classes[y] == "common"
    assert float(x[0]) == pytest.approx(both.frame["amount"].iloc[0])
    assert float(x[1:4].sum()) == 1.0 and float(x[4:6].sum()) == 1.0

    rows, targets = next(iter(DataLoader(both, batch_size=32, shuffle=True, num_workers=0)))
    assert rows.shape == (32, 7) and rows.dtype == torch.float32 and targets.dtype == torch.int64

    only_amount = ShardDataset(output, features=["amount"], transform=lambda t: t * 2)
    assert only_amount.feature_names == ["amount"]
    assert float(only_amount[0][0][0]) == pytest.approx(2 * only_amount.frame["amount"].iloc[0])
    with pytest.raises(DataError, match="'nope'"):
        ShardDataset(output, features=["nope"])


def test_refuses_what_is_not_a_finished_run(tmp_path, table_run):
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "cat.jpg").write_bytes(b"")
    with pytest.raises(DataError) as caught:
        ShardDataset(foreign)
    message = str(caught.value)
    assert "\n" not in message
    assert str(foreign) in message and "not a finished augment run" in message
    assert "augment run" in message.split(";")[1]  # the fix
    with pytest.raises(DataError, match="does not exist"):
        ShardDataset(tmp_path / "missing")

    output, path = table_run
    # every run keeps its resolved config (job.yaml): include_real needs no config=
    assert len(ShardDataset(output, include_real=True)) == len(
        ShardDataset(output, True, config=path)
    )
    bare = tmp_path / "bare"  # a run folder whose job.yaml was removed
    shutil.copytree(output, bare)
    (bare / "job.yaml").unlink()
    with pytest.raises(DataError, match="pass config="):
        ShardDataset(bare, include_real=True)
    other_split = load_config(path, ["validate.holdout=0.4"])
    with pytest.raises(DataError, match="not the data the run"):
        ShardDataset(output, include_real=True, config=other_split)
