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
  decoder missed on its two parents, so strokes and textures stay sharp. By default
  (``detail_mix="patchwork"``) each pixel takes it from one parent: a smooth random patchwork,
  a share ``t`` of the image from the partner (``D(z) + (1 - m) (x_i - D(z_i)) + m (x_j -
  D(z_j))``, ``m`` a soft-edged 0/1 mask of mean ``t``). Blending both everywhere (``"blend"``,
  ``m = t``) superposes two textures at lower contrast: 1.5 CNN points lower on the texture
  patches of ``benchmarks/images.py``, level on digits (``benchmarks/NOTES.md``);
- **warp** (:func:`augment.image.classic.classic_augmentation`), applied by the recipe of
  :mod:`augment.image.synthesizer`, not here.

The bank keeps the real images of the classes it generates (the anchors), as the tabular
sampler keeps its real rows: a saved model therefore holds those training images.

Codes are a continuous table, so the core engine serves them as it serves a table's rows
(:mod:`augment.core.vectors`, :mod:`augment.core.cgan`): partners are found by the same
nearest-neighbour search; with a code GAN (:mod:`augment.image.codes`, fitted on the codes of
every class, conditioned on the class) a class also gets GAN codes, drawn three times over, the
best third kept by the neighbour filter among the codes of every class, then moved to the class's
real mean and covariance (the moment map), and decoded with the detail of their nearest real
image given back (:meth:`LatentBank.sample_gan`).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from augment.core.device import autocast_dtype, autocast_to, cpu_threads
from augment.core.seeds import Stream, stream
from augment.core.synthesizer import fit_unit
from augment.core.train import (
    GANTrainerState,
    TrainingLoop,
    TrainingResult,
    TrainSettings,
    run_training,
)
from augment.core.vectors import DRAWS_PER_KEPT, VectorSpace, best_share, moment_match
from augment.core.weights import build
from augment.image.codes import (
    CODE_GAN_FORMAT,
    CodeCodec,
    CodeGAN,
    code_gan_settings,
    code_train_settings,
)
from augment.image.sizes import base_grid, work_size
from augment.image.transforms import downsample, from_unit, to_unit, upsample

ENCODE_BATCH = 512
# Values per decoded chunk at full size: 1024 images at 64 px RGB (25 MB as float); at 256 px RGB
# a chunk is 64 images, so the full-size float tensors of a batch stay small.
RENDER_VALUES = 1024 * 64 * 64 * 3
# the patchwork of two parents' detail: a random field on a PATCH_GRID x PATCH_GRID grid, smoothly
# enlarged to at most PATCH_SIZE px and cut at the share each parent gives (a few regions per
# image at any size), its edges softened over a pixel; resized to the pixels it weighs
PATCH_GRID = 4
PATCH_SIZE = 32


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
    # how two parents' detail is combined: each pixel from one (patchwork), or blended everywhere
    detail_mix: Literal["patchwork", "blend"] = "patchwork"
    precision: str = "auto"


def _widths(settings: LatentSettings) -> list[int]:
    _, k = base_grid(work_size(settings.size))
    return [min(settings.width * 2 ** (k - 1 - i), settings.max_width) for i in range(k)]


class ImageAutoencoder(nn.Module):
    """Strided convolutions down to the ``s0`` grid, a linear code; the decoder mirrors it.

    Any size the GAN takes (8-256 px, see :func:`augment.image.sizes.base_grid`) works: one
    stride-2 layer per halving. Above 64 px the network runs at :attr:`work` px
    (:func:`augment.image.sizes.work_size`): callers area-average the images down to it
    (:func:`augment.image.transforms.downsample`) and :class:`LatentBank` upsamples what it
    decodes, then gives back at full size the detail the decoder missed on the real parents. At
    256 px a training step then costs what it costs at 64 px instead of ~16 times more. Inputs
    and outputs are ``(B, C, work, work)`` in ``[-1, 1]``.
    """

    def __init__(self, settings: LatentSettings) -> None:
        super().__init__()
        self.work = work_size(settings.size)
        s0, _ = base_grid(self.work)
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


class AutoencoderTrainer(GANTrainerState):
    """One optimizer step of the shared autoencoder at a time: a :class:`augment.core.train.
    Trainer`, so the autoencoder trains through the shared loop (checkpoints, resume, loss
    callbacks, progress) like every GAN.

    Batches are drawn uniformly over images, so the frequent classes teach most of what the
    decoder knows and every class gets it. Images larger than the network's working size are
    area-averaged down to it once, here."""

    def __init__(
        self, images: np.ndarray, settings: LatentSettings, seed: int, device: torch.device
    ) -> None:
        self.settings, self.device = settings, device
        self.train = TrainSettings(seed=seed)  # the seed that restores the random generator
        # first weights from the seed (as torch.manual_seed(seed) drew them), never from the global
        # generator: jobs may train side by side in threads
        init_rng = torch.Generator().manual_seed(seed)
        self.network = build(lambda: ImageAutoencoder(settings), init_rng).to(device)
        # channels-last: a training step measured ~1.6x faster on the CPU under bf16 autocast
        self.network.to(memory_format=torch.channels_last)
        self.rng = torch.Generator(device="cpu").manual_seed(seed)
        self.amp_dtype = autocast_dtype(device, settings.precision, cpu_bf16_pays=True)
        self.optimizer = torch.optim.Adam(self.network.parameters(), lr=settings.lr)
        # uint8 on the device; a batch becomes float when drawn (a large set never sits as float)
        working = downsample(images, self.network.work)  # (N, work, work, C); a copy only if larger
        self.data = torch.as_tensor(np.ascontiguousarray(working), device=device)

    def train_step(self, step: int) -> dict[str, float]:
        self.network.train()
        size = min(self.settings.batch_size, len(self.data))
        rows = torch.randint(len(self.data), (size,), generator=self.rng)
        # (B, H, W, C) uint8 permuted to (B, C, H, W) is already channels-last in memory
        x = self.data[rows.to(self.device)].permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)
        with autocast_to(self.device, self.amp_dtype):
            out = self.network(x)
        loss = F.mse_loss(out.float(), x)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return {"loss_reconstruction": float(loss.detach())}

    def _stateful(self) -> dict[str, Any]:
        return {"network": self.network, "optimizer": self.optimizer}

    def _generators(self) -> dict[str, torch.Generator]:
        return {"rng": self.rng}


def fit_autoencoder(
    images: np.ndarray,
    settings: LatentSettings,
    *,
    seed: int,
    device: torch.device,
    loop: TrainingLoop | None = None,
) -> tuple[ImageAutoencoder, float, TrainingResult]:
    """Train the autoencoder on uint8 ``(N, H, W, C)`` images of every class for
    ``settings.steps`` steps through the shared training loop (``loop``: checkpoints, resume,
    callbacks). Returns the network (eval mode), the last batch's mean squared error in
    ``[-1, 1]`` units and the loop's result."""
    trainer = AutoencoderTrainer(images, settings, seed, device)
    result = run_training(trainer, settings.steps, loop, description="autoencoder (all classes)")
    loss = result.history[-1]["loss_reconstruction"] if result.history else float("nan")
    return trainer.network.eval(), float(loss), result


class LatentBank:
    """A trained autoencoder and, per class, its real images: new images between real codes."""

    def __init__(
        self,
        autoencoder: ImageAutoencoder,
        anchors: Mapping[Any, np.ndarray],
        settings: LatentSettings,
        device: torch.device | None = None,
        loss: float = float("nan"),
        codes: CodeTable | None = None,
    ) -> None:
        self.autoencoder = autoencoder.eval()
        self.anchors = {c: np.ascontiguousarray(a) for c, a in anchors.items()}
        self.settings = settings
        self.device = device or next(autoencoder.parameters()).device
        self.loss = loss
        self.codes = codes  # the codes of every training image, and the code GAN (or None)
        self._codes: dict[Any, tuple[torch.Tensor, torch.Tensor, VectorSpace]] = {}
        # a plain lock cannot be pickled: made again on unpickling (see __getstate__)
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_lock"] = None
        state["_codes"] = {}  # a cache: made again when needed
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    @property
    def classes(self) -> list[Any]:
        return list(self.anchors)

    @torch.no_grad()
    def _prepared(self, cls: Any) -> tuple[torch.Tensor, torch.Tensor, VectorSpace]:
        """Codes ``(n, d)``, the decoder's reconstructions ``(n, C, w, w)`` at its working size
        (what it misses on an anchor is the anchor minus its reconstruction, upsampled) and the
        class's codes as a :class:`augment.core.vectors.VectorSpace` (its partners, its nearest
        real image to a GAN code); computed once per class."""
        with self._lock:
            if cls not in self._codes:
                anchors = self.anchors[cls]
                codes, reconstructions = [], []
                for start in range(0, len(anchors), ENCODE_BATCH):
                    working = downsample(
                        anchors[start : start + ENCODE_BATCH], self.autoencoder.work
                    )
                    z = self.autoencoder.encode(to_unit(working, self.device))
                    reconstructions.append(self.autoencoder.decode(z))
                    codes.append(z)
                z = torch.cat(codes).float()
                points = self._standard(z.cpu().numpy())
                space = VectorSpace(points, np.zeros(len(points)), self.settings.neighbours)
                self._codes[cls] = (z, torch.cat(reconstructions).float(), space)
            return self._codes[cls]

    def _standard(self, codes: np.ndarray) -> np.ndarray:
        """Codes in the units the neighbours are measured in: standardised over every training
        image when the codes of all were kept, as they are."""
        return self.codes.codec.transform(codes) if self.codes is not None else codes

    @torch.no_grad()
    def _decode(
        self, cls: Any, z: torch.Tensor, parents: list[tuple[torch.Tensor, torch.Tensor | None]]
    ) -> np.ndarray:
        """uint8 ``(n, H, W, C)`` images of the codes ``z`` ``(n, d)`` at full size, each with
        the detail the decoder misses on its real parents given back: ``parents`` holds
        ``(rows, weight)`` pairs, ``rows`` ``(n,)`` places among the class's anchors and
        ``weight`` ``(n, 1, 1, 1)`` or a mask ``(n, 1, h, w)`` of any size (resized to the
        pixels it weighs; ``None``: 1). Decoded a chunk at a time, so a batch of 256 px images
        never holds more than a few full-size float tensors of 64 images."""
        s = self.settings
        _, reconstructions, _ = self._prepared(cls)
        anchors = self.anchors[cls]
        step = max(1, RENDER_VALUES // (s.size * s.size * s.channels))
        parts = [np.zeros((0, s.size, s.size, s.channels), dtype=np.uint8)]
        for start in range(0, len(z), step):
            chunk = slice(start, start + step)
            decoded = self.autoencoder.decode(z[chunk]).float()  # (m, C, w, w)
            if not s.detail:
                parts.append(from_unit(upsample(decoded, s.size).clamp_(-1, 1)))
            elif self.autoencoder.work != s.size:
                parts.append(self._decode_up(decoded, reconstructions, anchors, parents, chunk))
            else:
                detail = None
                for rows, weight in parents:
                    part = rows[chunk]
                    # what the decoder misses on these anchors: (m, C, H, W)
                    missed = to_unit(anchors[part.numpy()], self.device) - reconstructions[part]
                    missed = missed if weight is None else _resized(weight[chunk], s.size) * missed
                    detail = missed if detail is None else detail + missed
                parts.append(from_unit((decoded + detail).clamp_(-1, 1)))
        return np.concatenate(parts)

    def _decode_up(
        self,
        decoded: torch.Tensor,
        reconstructions: torch.Tensor,
        anchors: np.ndarray,
        parents: list[tuple[torch.Tensor, torch.Tensor | None]],
        chunk: slice,
    ) -> np.ndarray:
        """:meth:`_decode` of a chunk when the decoder works below full size. Upsampling is
        linear, so ``up(D(z)) + sum w (x - up(r))`` is ``up(D(z) - sum w r) + sum w x``: one
        upsampling of small images instead of one per parent, and the full-size sum is made in
        the pixels' own (H, W, C) layout and 0..255 units (no full-size transposes)."""
        low = decoded  # (m, C, w, w) in [-1, 1]
        high = None  # sum w x: (m, H, W, C) in 0..255, summed in place (full-size passes cost)
        total = 0.0  # sum w: 1 for the recipes' parents
        for rows, weight in parents:
            part = rows[chunk]
            real = torch.as_tensor(anchors[part.numpy()], device=self.device).float()
            if weight is None:
                low, total = low - reconstructions[part], total + 1.0
            else:
                w = weight[chunk]  # (m, 1, 1, 1), or a mask (m, 1, h, w)
                low = low - _resized(w, low.shape[-1]) * reconstructions[part]
                w = _resized(w, self.settings.size).permute(0, 2, 3, 1)  # (m, H, W, 1) or as was
                total = total + w
                real.mul_(w)
            high = real if high is None else high.add_(real)
        up = upsample(low, self.settings.size).permute(0, 2, 3, 1)  # (m, H, W, C) view
        # 127.5 (p + 1) with p = up + sum w (x / 127.5 - 1), clipped to 0..255 as from_unit does
        pixels = high.add_(up, alpha=127.5).add_(127.5 * (1.0 - total))
        return pixels.clamp_(0, 255).round_().to(torch.uint8).cpu().numpy()

    @torch.no_grad()
    def sample(self, cls: Any, n_images: int, seed: int, batch_size: int = 512) -> np.ndarray:
        """Exactly ``n_images`` uint8 ``(n, H, W, C)`` images of ``cls``; seeded by ``seed``."""
        s = self.settings
        if n_images <= 0:
            return np.zeros((0, s.size, s.size, s.channels), dtype=np.uint8)
        if cls not in self.anchors or len(self.anchors[cls]) == 0:
            raise KeyError(f"class {cls!r} has no real image to start from")
        codes, _, space = self._prepared(cls)
        rng = stream(seed, Stream.IMAGE_PARTNERS)
        parts = []
        for start in range(0, n_images, batch_size):
            n = min(batch_size, n_images - start)
            # between a real code and one of its nearest same-class codes (never the class's
            # centre: a decoded centre is a blurred average of the class)
            pick = space.partners(0.0, n, rng, toward_centre=0.0)
            first, second = torch.as_tensor(pick.anchor), torch.as_tensor(pick.partner)
            t = torch.as_tensor(pick.t, dtype=torch.float32, device=self.device)[:, None]
            z = codes[first] * (1 - t) + codes[second] * t
            if s.detail_mix == "patchwork":
                share = patchwork(pick.t, s.size, rng).to(self.device)  # (n, 1, h, w)
            else:
                share = t[:, :, None, None]
            parts.append(self._decode(cls, z, [(first, 1 - share), (second, share)]))
        return np.concatenate(parts)

    @property
    def has_gan(self) -> bool:
        return self.codes is not None and self.codes.gan is not None

    @torch.no_grad()
    def sample_gan(
        self,
        cls: Any,
        n_images: int,
        seed: int,
        filter_generated: bool | None = None,
        match_moments: bool | None = None,
    ) -> tuple[np.ndarray, dict[str, int]]:
        """Exactly ``n_images`` uint8 images of ``cls`` decoded from the code GAN's codes, and
        what happened to them (``dropped``: draws the neighbour filter left out; ``moved``:
        codes the moment map moved).

        With ``filter_generated`` three codes are drawn per image and the third whose nearest
        real codes (every class, whitened) are most often of ``cls`` is kept; with
        ``match_moments`` the kept codes then take the mean and covariance of the class's real
        codes (None: as the code table says). Each decoded image gets back the pixel detail the
        decoder misses on the real image whose code is nearest to its own, so strokes and
        textures stay sharp."""
        s = self.settings
        empty = np.zeros((0, s.size, s.size, s.channels), dtype=np.uint8)
        stats = {"dropped": 0, "moved": 0}
        if n_images <= 0:
            return empty, stats
        if not self.has_gan:
            raise KeyError("this autoencoder has no code GAN; fit it with gan_steps > 0")
        table = self.codes
        if filter_generated is None:
            filter_generated = table.filter_generated
        if match_moments is None:
            match_moments = table.match_moments
        draws = DRAWS_PER_KEPT if filter_generated else 1
        drawn = table.codec.transform(table.gan.sample(cls, draws * n_images, seed))  # (3n, d)
        if filter_generated:
            share = table.space.neighbour_share(drawn, cls)
            drawn = drawn[best_share(share, n_images)]
            stats["dropped"] = (draws - 1) * n_images
        if match_moments:
            real = table.space.points[table.space.members(cls)]
            moments = moment_match(real, drawn)
            if moments is not None:
                drawn = moments.apply(drawn).astype(np.float32)
                stats["moved"] = n_images
        _, _, space = self._prepared(cls)
        nearest = space.nearest(drawn)  # (n,) places among the class's real images
        z = torch.as_tensor(table.codec.inverse_transform(drawn), device=self.device)
        return self._decode(cls, z, [(torch.as_tensor(nearest), None)]), stats

    def restricted(
        self, keep: Mapping[Any, np.ndarray], codes: CodeTable | None = None
    ) -> LatentBank:
        """The same autoencoder with only the anchors ``anchors[c][keep[c]]`` (for an inner
        split, with the inner split's ``codes``; by default the codes stay as they are)."""
        return LatentBank(
            self.autoencoder,
            {c: _kept(self.anchors[c], keep[c]) for c in self.anchors if c in keep},
            self.settings,
            self.device,
            self.loss,
            codes if codes is not None else self.codes,
        )

    def state_dict(self) -> dict[str, Any]:
        return {
            "settings": asdict(self.settings),
            "weights": {k: v.detach().cpu() for k, v in self.autoencoder.state_dict().items()},
            "classes": list(self.anchors),
            "anchors": [torch.from_numpy(a.copy()) for a in self.anchors.values()],
            "loss": self.loss,
            "codes": self.codes.state_dict() if self.codes is not None else None,
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, Any], device: torch.device) -> LatentBank:
        # files from before the patchwork blended the parents' detail: they keep doing so
        settings = LatentSettings(**{"detail_mix": "blend", **state["settings"]})
        network = build(lambda: ImageAutoencoder(settings), None).to(device)
        network.load_state_dict(state["weights"])
        anchors = {c: a.numpy() for c, a in zip(state["classes"], state["anchors"], strict=True)}
        codes = state.get("codes")  # files from before the code GAN keep no codes
        return cls(
            network,
            anchors,
            settings,
            device,
            float(state.get("loss", float("nan"))),
            CodeTable.from_state_dict(codes, device) if codes else None,
        )


def patchwork(share: np.ndarray, size: int, rng: np.random.Generator) -> torch.Tensor:
    """``(n, 1, m, m)`` float32 masks, ``m = min(size, PATCH_SIZE)``: where the second parent's
    detail is taken (1) and where the first's (0), a share ``share[i]`` of image ``i`` from the
    second, in a few smooth regions with edges softened over a pixel. Seeded by ``rng``."""
    n, m = len(share), min(size, PATCH_SIZE)
    field = torch.from_numpy(rng.standard_normal((n, 1, PATCH_GRID, PATCH_GRID))).float()
    field = F.interpolate(field, size=(m, m), mode="bicubic", align_corners=False).view(n, -1)
    # the share-quantile of each field: the pixels below it come from the second parent
    ranks = torch.as_tensor(np.clip(share, 0.0, 1.0) * m * m, dtype=torch.float32)
    order = field.argsort(dim=1).argsort(dim=1).float()  # each pixel's rank in its field
    mask = (order < ranks[:, None]).float().view(n, 1, m, m)
    return F.avg_pool2d(mask, 3, stride=1, padding=1, count_include_pad=False)


def _resized(weight: torch.Tensor, size: int) -> torch.Tensor:
    """A weight ``(m, 1, 1, 1)`` as it is, a mask ``(m, 1, h, w)`` resized to ``size`` px."""
    if weight.shape[-1] in (1, size):
        return weight
    return F.interpolate(weight, size=(size, size), mode="bilinear", align_corners=False)


def _rows_of(images: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``images[mask]``; a view, not a copy, when the rows are one run (a folder source lists
    its images class by class: at 256 px a copy of every class would be 512 MiB more)."""
    rows = np.flatnonzero(mask)
    if len(rows) and rows[-1] - rows[0] + 1 == len(rows):
        return images[rows[0] : rows[-1] + 1]
    return images[rows]


def _kept(anchors: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """``anchors[keep]``; the array itself when ``keep`` is every row in order (no copy of a
    class's images when a synthesizer keeps all of them)."""
    keep = np.asarray(keep)
    if len(keep) == len(anchors) and np.array_equal(keep, np.arange(len(anchors))):
        return anchors
    return anchors[keep]


class CodeTable:
    """The codes of every training image (standardised, with their classes) and the code GAN.

    The codes are what the neighbour filter and the moment map measure generated codes against;
    a saved model keeps them (``latent_dim`` numbers per training image, no pixels).
    """

    def __init__(
        self,
        codec: CodeCodec,
        points: np.ndarray,
        labels: Sequence[Any],
        gan: CodeGAN | None = None,
        steps: int = 0,
        filter_generated: bool = True,
        match_moments: bool = True,
    ) -> None:
        self.codec = codec
        self.space = VectorSpace(points, np.asarray(list(labels), dtype=object))
        self.gan = gan
        self.steps = steps  # the code GAN's training steps (0: no GAN)
        # how GAN codes are made (LatentBank.sample_gan): three draws per kept code, filtered by
        # neighbour share; the kept codes moved to the class's real mean and covariance
        self.filter_generated = filter_generated
        self.match_moments = match_moments

    def fit_gan(
        self,
        steps: int,
        seed: int,
        device: torch.device,
        precision: str = "auto",
        loop: TrainingLoop | None = None,
    ) -> TrainingResult:
        """Train the code GAN on these codes (every class present, conditioned on the class)
        for ``steps`` steps through the shared training loop."""
        labels = self.space.labels
        present = list(dict.fromkeys(labels.tolist()))
        gan = CodeGAN(self.codec, present, code_gan_settings())
        # on one torch thread, whatever the caller's: its matrices are too small to split (500
        # steps took 2.8 s on one thread and 3.1-3.2 s on two, 28 px digits)
        with cpu_threads(1):
            result = fit_unit(
                gan,
                self.codec.inverse_transform(self.space.points),
                labels.tolist(),
                code_train_settings(steps, seed, precision),
                device=device.type,
                what="code GAN",
                model_format=CODE_GAN_FORMAT,
                loop=loop,
            )
        self.gan, self.steps = gan, steps
        return result

    def subset(self, rows: np.ndarray, seed: int, device: torch.device) -> CodeTable:
        """The codes at ``rows`` only, with a code GAN fitted anew on them (when this table
        has one): what an inner split judges, so that no held-out code shaped the GAN."""
        table = CodeTable(
            self.codec,
            self.space.points[rows],
            self.space.labels[rows].tolist(),
            filter_generated=self.filter_generated,
            match_moments=self.match_moments,
        )
        if self.gan is not None:
            table.fit_gan(self.steps, seed, device)
        return table

    def state_dict(self) -> dict[str, Any]:
        return {
            "codec": self.codec.state_dict(),
            "points": torch.from_numpy(np.ascontiguousarray(self.space.points, dtype=np.float32)),
            "labels": list(self.space.labels.tolist()),
            "gan": self.gan.state_dict() if self.gan is not None else None,
            "steps": self.steps,
            "filter_generated": self.filter_generated,
            "match_moments": self.match_moments,
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, Any], device: torch.device) -> CodeTable:
        gan = state.get("gan")
        return cls(
            CodeCodec.from_state_dict(state["codec"]),
            state["points"].numpy(),
            state["labels"],
            CodeGAN.from_state_dict(gan, device) if gan else None,
            int(state.get("steps", 0)),
            bool(state.get("filter_generated", True)),
            bool(state.get("match_moments", True)),
        )


@torch.no_grad()
def encode_images(autoencoder: ImageAutoencoder, images: np.ndarray, device: torch.device):
    """(N, latent_dim) float32 codes of uint8 ``images``, encoded batch by batch."""
    parts = [np.zeros((0, autoencoder.to_code.out_features), dtype=np.float32)]
    for start in range(0, len(images), ENCODE_BATCH):
        working = downsample(images[start : start + ENCODE_BATCH], autoencoder.work)
        parts.append(autoencoder.encode(to_unit(working, device)).float().cpu().numpy())
    return np.concatenate(parts)


def fit_latent_bank(
    images: np.ndarray,
    labels: Sequence[Any],
    classes: Sequence[Any],
    settings: LatentSettings,
    *,
    seed: int,
    device: torch.device,
    gan_steps: int = 0,
    loop: TrainingLoop | None = None,
    autoencoder_loop: TrainingLoop | None = None,
) -> LatentBank:
    """Train the shared autoencoder on all ``images`` and keep the anchors of ``classes``.

    With ``gan_steps`` > 0 the codes of every image also train the code GAN (the core
    conditional GAN of :mod:`augment.core.cgan`, conditioned on every class present) for that
    many steps. Both train through the shared loop (``autoencoder_loop``, ``loop``:
    checkpoints, resume, callbacks).
    """
    network, loss, _ = fit_autoencoder(
        images, settings, seed=seed, device=device, loop=autoencoder_loop
    )
    bank = latent_bank(network, images, labels, classes, settings, device, loss)
    if gan_steps > 0:
        bank.codes.fit_gan(gan_steps, seed, device, settings.precision, loop)
    return bank


def latent_bank(
    network: ImageAutoencoder,
    images: np.ndarray,
    labels: Sequence[Any],
    classes: Sequence[Any],
    settings: LatentSettings,
    device: torch.device,
    loss: float = float("nan"),
) -> LatentBank:
    """The bank of a trained autoencoder: the anchors of ``classes`` and the codes of every
    image (standardised; what the neighbour filter and a code GAN use)."""
    labels = np.asarray(labels, dtype=object)
    anchors = {c: _rows_of(images, labels == c) for c in classes}
    codes = encode_images(network, images, device)
    codec = CodeCodec.fit(codes)
    table = CodeTable(codec, codec.transform(codes), labels.tolist())
    return LatentBank(network, anchors, settings, device, loss, table)
