"""Image scaling and differentiable augmentation for the image GAN.

Pixels live as uint8 ``(N, H, W, C)`` everywhere outside the networks; the networks see float
``(N, C, H, W)`` in ``[-1, 1]``. :func:`downsample` brings large images to the working size of the
autoencoder and the validation CNN (:mod:`augment.image.sizes`) by area averaging. :func:`diff_augment` is DiffAugment (Zhao et al., 2020): the same
random translation, cutout and colour changes are applied to real and generated images before the
discriminator sees them, and gradients flow through them to the generator. With a few dozen images
in a class, it keeps the discriminator from memorising them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

DIFF_AUGMENT_POLICIES = ("color", "translation", "cutout")


def to_unit(images: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 ``(N, H, W, C)`` -> float ``(N, C, H, W)`` in ``[-1, 1]`` on ``device``."""
    tensor = torch.as_tensor(np.ascontiguousarray(images), device=device)
    return tensor.permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0).contiguous()


def from_unit(tensor: torch.Tensor) -> np.ndarray:
    """float ``(N, C, H, W)`` in ``[-1, 1]`` -> uint8 ``(N, H, W, C)`` (values clipped, rounded)."""
    pixels = tensor.detach().float().add(1.0).mul_(127.5).round_().clamp_(0, 255)
    return pixels.to(torch.uint8).permute(0, 2, 3, 1).contiguous().cpu().numpy()


# Pixels (values) per block when images are resized on the CPU: a 256 px RGB block of 128
# images is 100 MB as float, so a large set never sits in memory as float.
BLOCK_VALUES = 128 * 256 * 256 * 3


def downsample(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 ``(N, H, W, C)`` -> uint8 ``(N, size, size, C)``, each pixel the mean of the pixels
    it covers (area averaging; a box filter for the halvings of :func:`augment.image.sizes.
    work_size`), rounded. The same array when the images already have that size."""
    if images.shape[1:3] == (size, size):
        return images
    out = np.empty((len(images), size, size, images.shape[3]), dtype=np.uint8)
    step = max(1, BLOCK_VALUES // max(1, int(np.prod(images.shape[1:]))))
    for start in range(0, len(images), step):
        block = torch.from_numpy(np.ascontiguousarray(images[start : start + step]))
        x = block.permute(0, 3, 1, 2).float()  # (B, C, H, W)
        y = F.interpolate(x, size=(size, size), mode="area").round_().clamp_(0, 255)
        out[start : start + step] = y.to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return out


def upsample(x: torch.Tensor, size: int) -> torch.Tensor:
    """Float ``(B, C, h, w)`` -> ``(B, C, size, size)``, bilinear; ``x`` itself at that size."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


def parse_policy(policy: str | Sequence[str]) -> tuple[str, ...]:
    """``"color,translation"`` or a list -> validated tuple; ``""`` / ``"none"`` -> ``()``."""
    items = policy.split(",") if isinstance(policy, str) else list(policy)
    parts = tuple(p.strip() for p in items if p.strip() and p.strip() != "none")
    unknown = [p for p in parts if p not in DIFF_AUGMENT_POLICIES]
    if unknown:
        raise ValueError(
            f"unknown DiffAugment policy {unknown}; choose from {', '.join(DIFF_AUGMENT_POLICIES)}"
        )
    return parts


def diff_augment(
    x: torch.Tensor, policy: Sequence[str], generator: torch.Generator | None = None
) -> torch.Tensor:
    """Apply the policies in order to a ``(B, C, H, W)`` batch, differentiably.

    Every random draw comes from ``generator``, so a seeded run is reproducible.
    """
    for name in policy:
        if name == "color":
            x = _color(x, generator)
        elif name == "translation":
            x = _translation(x, generator)
        elif name == "cutout":
            x = _cutout(x, generator)
    return x


def _rand(x: torch.Tensor, generator: torch.Generator | None, *shape: int) -> torch.Tensor:
    return torch.rand(*shape, generator=generator, device=x.device, dtype=x.dtype)


def _color(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    b = x.shape[0]
    x = x + (_rand(x, generator, b, 1, 1, 1) - 0.5)  # brightness
    if x.shape[1] == 3:  # saturation: scale the distance to the per-pixel grey value
        grey = x.mean(dim=1, keepdim=True)
        x = (x - grey) * (_rand(x, generator, b, 1, 1, 1) * 2) + grey
    mean = x.mean(dim=(1, 2, 3), keepdim=True)  # contrast
    return (x - mean) * (_rand(x, generator, b, 1, 1, 1) + 0.5) + mean


def _translation(
    x: torch.Tensor, generator: torch.Generator | None, ratio: float = 0.125
) -> torch.Tensor:
    """Shift each image by up to ``ratio`` of its size, filling with zeros (mid-grey)."""
    b, _, h, w = x.shape
    pad_h, pad_w = max(1, int(h * ratio + 0.5)), max(1, int(w * ratio + 0.5))
    shift_h = torch.randint(-pad_h, pad_h + 1, (b, 1, 1), generator=generator, device=x.device)
    shift_w = torch.randint(-pad_w, pad_w + 1, (b, 1, 1), generator=generator, device=x.device)
    rows = torch.arange(h, device=x.device).view(1, h, 1) + shift_h + pad_h  # (B, H, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w) + shift_w + pad_w  # (B, 1, W)
    padded = F.pad(x, (pad_w, pad_w, pad_h, pad_h))
    batch = torch.arange(b, device=x.device).view(b, 1, 1)
    # (B, H, W, C) gather, then back to channels-first
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)


def _cutout(x: torch.Tensor, generator: torch.Generator | None, ratio: float = 0.5) -> torch.Tensor:
    """Zero one square of ``ratio`` of the image size at a random place in each image."""
    b, _, h, w = x.shape
    cut_h, cut_w = max(1, int(h * ratio + 0.5)), max(1, int(w * ratio + 0.5))
    top = torch.randint(0, h + (1 - cut_h % 2), (b, 1, 1), generator=generator, device=x.device)
    left = torch.randint(0, w + (1 - cut_w % 2), (b, 1, 1), generator=generator, device=x.device)
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    inside = (
        (rows >= top - cut_h // 2)
        & (rows < top - cut_h // 2 + cut_h)
        & (cols >= left - cut_w // 2)
        & (cols < left - cut_w // 2 + cut_w)
    )
    return x * (~inside).unsqueeze(1).to(x.dtype)
