"""Transfer across classes: a shared autoencoder and new images between a class's real ones.

A minority class of 10-50 images is too small to teach a GAN what its class looks like; the other
classes share its strokes, textures and poses. The approach is DeepSMOTE's (Dablain et al. 2022)
and BAGAN's (Mariani et al. 2018) common core: one convolutional autoencoder is trained on the
images of *every* class, so its decoder renders a rare class with what it learned from all of
them; a new image of class ``c`` comes from the latent code between a real image of ``c`` and one
of its nearest same-class neighbours (in code space), decoded::

    bank = fit_latent_bank(images, labels, classes, LatentSettings(size=28), seed=0)
    new = bank.sample(cls=3, n_images=100, seed=0)      # uint8 (100, 28, 28, 1)

Two details decide how useful the images are downstream (measured in ``benchmarks/NOTES.md``):

- **detail**: a small autoencoder blurs; the decoded image gets back the pixel detail the
  decoder missed on its two parents, blended with the same weight as the codes
  (``D(z) + (1 - t) (x_i - D(z_i)) + t (x_j - D(z_j))``), so strokes stay sharp;
- **warp** (:func:`augment.image.classic.classic_augmentation`), applied by the recipe of
  :mod:`augment.image.synthesizer`, not here.

The bank keeps the real images of the classes it generates (the anchors), as the tabular
sampler keeps its real rows: a saved model therefore holds those training images.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from augment.core.device import autocast_dtype, autocast_to
from augment.image.cgan import base_grid
from augment.image.transforms import from_unit, to_unit

_INIT_LOCK = threading.Lock()
ENCODE_BATCH = 512


@dataclass
class LatentSettings:
    """The shared autoencoder and the interpolation between real codes."""

    size: int = 28
    channels: int = 1
    latent_dim: int = 32
    width: int = 32  # channels at half resolution, doubled per halving (as the GAN's)
    max_width: int = 128
    steps: int = 600  # optimizer steps over batches of every class
    batch_size: int = 128
    lr: float = 2e-3
    neighbours: int = 5  # a new code lies between a real code and one of its k nearest
    detail: bool = True  # give back the parents' pixel detail the decoder misses
    precision: str = "auto"


def _widths(settings: LatentSettings) -> list[int]:
    _, k = base_grid(settings.size)
    return [min(settings.width * 2 ** (k - 1 - i), settings.max_width) for i in range(k)]


class ImageAutoencoder(nn.Module):
    """Strided convolutions down to the ``s0`` grid, a linear code; the decoder mirrors it.

    Any size the GAN takes (8-64 px, see :func:`augment.image.cgan.base_grid`) works: one
    stride-2 layer per halving. Inputs and outputs are ``(B, C, H, W)`` in ``[-1, 1]``.
    """

    def __init__(self, settings: LatentSettings) -> None:
        super().__init__()
        s0, _ = base_grid(settings.size)
        widths = _widths(settings)  # low resolution first
        self.s0, self.w0 = s0, widths[0]
        down = [nn.Conv2d(settings.channels, widths[-1], 4, stride=2, padding=1)]
        for c_in, c_out in zip(widths[::-1][:-1], widths[::-1][1:], strict=True):
            down += [nn.LeakyReLU(0.2), nn.Conv2d(c_in, c_out, 4, stride=2, padding=1)]
            down.append(nn.BatchNorm2d(c_out))
        self.encoder = nn.Sequential(*down, nn.LeakyReLU(0.2), nn.Flatten())
        self.to_code = nn.Linear(widths[0] * s0 * s0, settings.latent_dim)
        self.from_code = nn.Linear(settings.latent_dim, widths[0] * s0 * s0)
        up: list[nn.Module] = [nn.BatchNorm2d(widths[0]), nn.ReLU()]
        for c_in, c_out in zip(widths[:-1], widths[1:], strict=True):
            up += [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=False)]
            up += [nn.BatchNorm2d(c_out), nn.ReLU()]
        up += [nn.ConvTranspose2d(widths[-1], settings.channels, 4, stride=2, padding=1)]
        self.decoder = nn.Sequential(*up, nn.Tanh())

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.to_code(self.encoder(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.from_code(z).view(-1, self.w0, self.s0, self.s0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


def fit_autoencoder(
    images: np.ndarray, settings: LatentSettings, *, seed: int, device: torch.device
) -> tuple[ImageAutoencoder, float]:
    """Train the autoencoder on uint8 ``(N, H, W, C)`` images of every class.

    Batches are drawn uniformly over images, so the frequent classes teach most of what the
    decoder knows and every class gets it. Returns the network (eval mode) and the last batch's
    mean squared error in ``[-1, 1]`` units.
    """
    with _INIT_LOCK, torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        network = ImageAutoencoder(settings).to(device)
    # channels-last: a training step measured ~1.6x faster on the CPU under bf16 autocast
    network.to(memory_format=torch.channels_last)
    rng = torch.Generator(device="cpu").manual_seed(seed)
    amp = autocast_dtype(device, settings.precision, cpu_bf16_pays=True)
    optimizer = torch.optim.Adam(network.parameters(), lr=settings.lr)
    # uint8 on the device; a batch becomes float when drawn (a large set never sits as float)
    data = torch.as_tensor(np.ascontiguousarray(images), device=device)
    loss = torch.zeros(())
    network.train()
    for _ in range(settings.steps):
        rows = torch.randint(len(data), (min(settings.batch_size, len(data)),), generator=rng)
        # (B, H, W, C) uint8 permuted to (B, C, H, W) is already channels-last in memory
        x = data[rows.to(device)].permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)
        with autocast_to(device, amp):
            out = network(x)
        loss = F.mse_loss(out.float(), x)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return network.eval(), float(loss.detach())


class LatentBank:
    """A trained autoencoder and, per class, its real images: new images between real codes."""

    def __init__(
        self,
        autoencoder: ImageAutoencoder,
        anchors: Mapping[Any, np.ndarray],
        settings: LatentSettings,
        device: torch.device | None = None,
        loss: float = float("nan"),
    ) -> None:
        self.autoencoder = autoencoder.eval()
        self.anchors = {c: np.ascontiguousarray(a) for c, a in anchors.items()}
        self.settings = settings
        self.device = device or next(autoencoder.parameters()).device
        self.loss = loss
        self._codes: dict[Any, tuple[torch.Tensor, torch.Tensor, np.ndarray]] = {}
        self._lock = threading.Lock()

    @property
    def classes(self) -> list[Any]:
        return list(self.anchors)

    @torch.no_grad()
    def _prepared(self, cls: Any) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
        """Codes ``(n, d)``, pixel detail the decoder misses ``(n, C, H, W)`` and each code's
        nearest same-class neighbours ``(n, k)``; computed once per class."""
        with self._lock:
            if cls not in self._codes:
                x = to_unit(self.anchors[cls], self.device)
                codes, detail = [], []
                for start in range(0, len(x), ENCODE_BATCH):
                    z = self.autoencoder.encode(x[start : start + ENCODE_BATCH])
                    detail.append(x[start : start + ENCODE_BATCH] - self.autoencoder.decode(z))
                    codes.append(z)
                z = torch.cat(codes).float()
                k = min(self.settings.neighbours, len(z) - 1)
                if k > 0:
                    distances = torch.cdist(z, z)
                    distances.fill_diagonal_(float("inf"))
                    near = distances.topk(k, largest=False).indices.cpu().numpy()
                else:  # one image: its code is the only parent
                    near = np.zeros((len(z), 1), dtype=np.int64)
                self._codes[cls] = (z, torch.cat(detail).float(), near)
            return self._codes[cls]

    @torch.no_grad()
    def sample(self, cls: Any, n_images: int, seed: int, batch_size: int = 512) -> np.ndarray:
        """Exactly ``n_images`` uint8 ``(n, H, W, C)`` images of ``cls``; seeded by ``seed``."""
        s = self.settings
        if n_images <= 0:
            return np.zeros((0, s.size, s.size, s.channels), dtype=np.uint8)
        if cls not in self.anchors or len(self.anchors[cls]) == 0:
            raise KeyError(f"class {cls!r} has no real image to start from")
        codes, detail, near = self._prepared(cls)
        rng = np.random.default_rng([seed, 7])
        parts = []
        for start in range(0, n_images, batch_size):
            n = min(batch_size, n_images - start)
            first = rng.integers(len(codes), size=n)
            second = near[first, rng.integers(near.shape[1], size=n)]
            t = torch.as_tensor(rng.random(n), dtype=torch.float32, device=self.device)[:, None]
            z = codes[first] * (1 - t) + codes[second] * t
            pixels = self.autoencoder.decode(z).float()
            if s.detail:
                t4 = t[:, :, None, None]
                pixels = pixels + (1 - t4) * detail[first] + t4 * detail[second]
            parts.append(from_unit(pixels.clamp_(-1, 1)))
        return np.concatenate(parts)

    def restricted(self, keep: Mapping[Any, np.ndarray]) -> LatentBank:
        """The same autoencoder with only the anchors ``anchors[c][keep[c]]`` (for an inner split)."""
        return LatentBank(
            self.autoencoder,
            {c: self.anchors[c][keep[c]] for c in self.anchors if c in keep},
            self.settings,
            self.device,
            self.loss,
        )

    def state_dict(self) -> dict[str, Any]:
        return {
            "settings": asdict(self.settings),
            "weights": {k: v.detach().cpu() for k, v in self.autoencoder.state_dict().items()},
            "classes": list(self.anchors),
            "anchors": [torch.from_numpy(a.copy()) for a in self.anchors.values()],
            "loss": self.loss,
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, Any], device: torch.device) -> LatentBank:
        settings = LatentSettings(**state["settings"])
        network = ImageAutoencoder(settings).to(device)
        network.load_state_dict(state["weights"])
        anchors = {c: a.numpy() for c, a in zip(state["classes"], state["anchors"], strict=True)}
        return cls(network, anchors, settings, device, float(state.get("loss", float("nan"))))


def fit_latent_bank(
    images: np.ndarray,
    labels: Sequence[Any],
    classes: Sequence[Any],
    settings: LatentSettings,
    *,
    seed: int,
    device: torch.device,
) -> LatentBank:
    """Train the shared autoencoder on all ``images`` and keep the anchors of ``classes``."""
    labels = np.asarray(labels, dtype=object)
    network, loss = fit_autoencoder(images, settings, seed=seed, device=device)
    anchors = {c: images[labels == c] for c in classes}
    return LatentBank(network, anchors, settings, device, loss)
