"""train.precision: which arithmetic a trainer uses, and that the choice reaches the training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import augment.core.device as device_module
from augment.core.device import autocast_dtype, cpuinfo_has_flag
from augment.core.errors import ConfigError, DeviceError
from augment.core.train import run_training
from augment.image.cgan import ImageCGAN, ImageGANSettings, ImageTrainSettings
from augment.pipeline.config import parse_config

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


def test_cpuinfo_flags_are_read_as_whole_words():
    info = "processor\t: 0\nflags\t\t: fpu avx512f amx_tile amx_bf16\nbugs\t\t: spectre\n"
    assert cpuinfo_has_flag(info, "amx_bf16")
    assert not cpuinfo_has_flag(info.replace("amx_bf16", "amx_bf16x"), "amx_bf16")
    assert not cpuinfo_has_flag("bugs\t: amx_bf16\n", "amx_bf16")  # only the flags line counts


@pytest.mark.parametrize("amx", [True, False])
def test_auto_is_bf16_on_cuda_and_on_amx_cpus_for_models_that_gain(monkeypatch, amx):
    monkeypatch.setattr(device_module, "cpu_has_amx_bf16", lambda: amx)
    assert autocast_dtype(CUDA, "auto", cpu_bf16_pays=False) is torch.bfloat16
    assert autocast_dtype(CPU, "auto", cpu_bf16_pays=False) is None  # the tabular GAN
    assert autocast_dtype(CPU, "auto", cpu_bf16_pays=True) is (torch.bfloat16 if amx else None)
    for device in (CPU, CUDA):
        assert autocast_dtype(device, "fp32", cpu_bf16_pays=True) is None


def test_bf16_on_a_cpu_without_bf16_is_an_error_that_names_the_fix(monkeypatch):
    monkeypatch.setattr(device_module, "cpu_supports_bf16", lambda: False)
    with pytest.raises(DeviceError, match="train.precision is bf16.*use precision: auto or fp32"):
        autocast_dtype(CPU, "bf16")
    monkeypatch.setattr(device_module, "cpu_supports_bf16", lambda: True)
    assert autocast_dtype(CPU, "bf16") is torch.bfloat16


def test_an_unknown_precision_is_a_config_error():
    raw = {"name": "x", "data": {"source": "sklearn:wine", "label": "target"}}
    with pytest.raises(ConfigError, match=r"train\.precision: "):
        parse_config({**raw, "train": {"precision": "fp16"}})
    assert parse_config(raw).train.precision == "auto"


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_the_image_trainer_runs_in_the_chosen_precision(precision):
    if precision == "bf16" and not device_module.cpu_supports_bf16():
        pytest.skip("this CPU has no bf16")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(24, 8, 8, 1), dtype=np.uint8)
    model = ImageCGAN([0, 1], ImageGANSettings(size=8, channels=1, width=8, noise_dim=8))
    trainer = model.make_trainer(
        images, [0, 1] * 12, ImageTrainSettings(batch_size=8, precision=precision), CPU
    )
    assert trainer.amp_dtype is (torch.bfloat16 if precision == "bf16" else None)
    seen = []  # the dtype the generator's convolutions computed in
    hook = model.generator.to_pixels.register_forward_hook(
        lambda module, args, out: seen.append(out.dtype)
    )
    result = run_training(trainer, 3)
    hook.remove()
    assert result.precision == precision
    assert set(seen) == {torch.bfloat16 if precision == "bf16" else torch.float32}
    assert all(np.isfinite(v) for losses in result.history for v in losses.values())
    # weights and the EMA stay float32 whatever the arithmetic
    assert all(p.dtype == torch.float32 for p in model.ema.parameters())
