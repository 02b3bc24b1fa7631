"""Conditional image GAN: networks (pure nn.Modules) and a fit / sample wrapper.

Design, in short:
- the generator starts from a ``s0 x s0`` grid (``size = s0 * 2**k``, ``4 <= s0 <= 7``) and doubles
  it ``k`` times with stride-2 transposed convolutions; every block has class-conditional batch
  norm (a class embedding predicts each channel's gain and bias), so 8, 16, 28, 32 and 64 px all
  use the same code with one more or one fewer block;
- the discriminator mirrors it with stride-2 convolutions, every layer spectrally normalised, and a
  projection head (``linear(h) + <embed(y), h>``, Miyato & Koyama 2018);
- hinge loss plus an auxiliary class loss (AC-GAN style, ``aux_weight``): the projection alone
  conditioned too weakly at these widths (a classifier trained on real digits recognised ~40% of
  the generated ones); DiffAugment (translation, cutout, colour) on everything the discriminator sees;
- an exponential moving average (EMA) of the generator weights is what samples;
- one generator pass per step: its fakes train the discriminator (detached), then the generator;
- training-by-sampling: each batch draws classes (uniform by default) then images of them, so a
  class of 15 images is seen as often as one of 150;
- every random draw comes from seeded ``torch.Generator`` objects, saved in checkpoints, so a
  resumed run is bit-identical to an uninterrupted one on the same device;
- under torchrun the trainer is data-parallel (:mod:`augment.core.ddp`): each rank draws its own
  batches, DDP averages the gradients and keeps rank 0's spectral-norm vectors and batch-norm
  statistics on every rank; the EMA follows identical weights on every rank.

Widths are small on purpose: measured on the 2-core CPU, throughput is bound by convolution FLOPs,
and ``width`` (channels at half resolution, doubled per halving) is the knob that trades speed
for capacity (measured at 28 px, batch 128: width 32 ~1,500-1,800 img/s, width 16 ~2,900 img/s).
See ``benchmarks/images.py``.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from augment.core import ddp
from augment.core.device import autocast, autocast_dtype, autocast_to
from augment.core.seeds import class_seed
from augment.core.train import EMA, GANTrainerState, TrainSettings, class_probabilities
from augment.core.weights import build
from augment.image.sizes import base_grid
from augment.image.transforms import diff_augment, from_unit, parse_policy

# Images per generator call when sampling. On the CPU, 256-512 was fastest at 28x28: larger batches
# make activations of tens of MB, whose allocation (fresh pages every call) outweighs the gain.
SAMPLE_BATCH = 512


@dataclass
class ImageGANSettings:
    """Architecture knobs (the config's ``model`` section for ``data.kind: image``)."""

    size: int = 28
    channels: int = 1
    noise_dim: int = 64
    width: int = 32  # channels at half resolution; doubled at every further halving
    max_width: int = 256
    embed_dim: int = 32
    ema_decay: float = 0.99  # half-life ~70 steps: short runs are not dragged back to the start
    diff_augment: str = "color,translation,cutout"
    # Auxiliary classifier (AC-GAN) loss weight: the discriminator also predicts the class, and
    # the generator is pushed to make images of the conditioned class recognisable. 0 = off.
    aux_weight: float = 1.0
    # Mode-seeking regularisation (MSGAN, Mao et al. 2019) weight: the generator step pairs images
    # of the same class and is rewarded for making them differ as much as their noise does, which
    # counters a conditional generator that ignores its noise. 0 = off. On imbalanced digits
    # (3 seeds) the generated within-class pixel std was 6 at 0 (real: 32), 31 at 0.1, 43 at 0.3,
    # 60 at 1.0 (noisy strokes); 0.3 gave the best domain FID (3.8 vs 4.5 at 0) and balanced
    # accuracy (0.952 vs 0.947).
    mode_seeking: float = 0.3
    truncation: float = 1.0  # sampling only: z ~ N(0, truncation^2)
    channels_last: bool = True  # CUDA only; ignored on the CPU


@dataclass
class ImageTrainSettings(TrainSettings):
    """Optimisation knobs with the image defaults: longer, larger-batch training, one critic step."""

    steps: int = 1000
    batch_size: int = 128
    lr: float = 5e-4
    betas: tuple[float, float] = (0.0, 0.99)
    critic_steps: int = 1


def _widths(settings: ImageGANSettings) -> list[int]:
    """Channels at each resolution from the ``s0`` grid up to half the image size.

    ``width`` is the number at half size, doubled at every halving below it, capped at
    ``max_width``. Full resolution holds only the pixels: the generator's last layer writes them
    and the discriminator's first layer reads them, both strided, so no convolution runs with many
    channels at full size (measured on the CPU, those dominated a step).
    """
    _, k = base_grid(settings.size)
    return [min(settings.width * 2 ** (k - 1 - i), settings.max_width) for i in range(k)]


# -- networks ---------------------------------------------------------------------------------
class ConditionalBatchNorm(nn.Module):
    """Batch norm without its own affine; the class embedding predicts per-channel gain and bias."""

    def __init__(self, channels: int, embed_dim: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.affine = nn.Linear(embed_dim, 2 * channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Start as plain batch norm (gain 1, bias 0); after the affine layer's own draws."""
        nn.init.zeros_(self.affine.weight)
        nn.init.zeros_(self.affine.bias)

    def forward(self, x: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        gain, bias = self.affine(embedding).unsqueeze(-1).unsqueeze(-1).chunk(2, dim=1)
        if self.training or torch.is_grad_enabled():
            return self.norm(x) * (1 + gain) + bias
        # Sampling (eval mode, no autograd): the running statistics and the class gain and bias fold into one scale and
        # shift per (image, channel), applied in place. Batch norm followed by two broadcast ops
        # made three passes and three full-size temporaries, which cost a third of a CPU forward
        # pass (measured at 28x28). In place is safe here: no autograd, and the caller passes the
        # fresh output of a layer.
        inv_std = torch.rsqrt(self.norm.running_var + self.norm.eps)[None, :, None, None]
        scale = (1 + gain) * inv_std
        shift = bias - self.norm.running_mean[None, :, None, None] * scale
        return x.mul_(scale).add_(shift)  # x is the fresh output of the layer before


class ImageGenerator(nn.Module):
    """``(z, class index) -> (B, C, size, size)`` in ``[-1, 1]``."""

    def __init__(self, settings: ImageGANSettings, n_classes: int) -> None:
        super().__init__()
        s0, _ = base_grid(settings.size)
        widths = _widths(settings)
        self.s0, self.w0 = s0, widths[0]
        self.embed = nn.Embedding(n_classes, settings.embed_dim)
        self.project = nn.Linear(settings.noise_dim + settings.embed_dim, widths[0] * s0 * s0)
        self.norm0 = ConditionalBatchNorm(widths[0], settings.embed_dim)
        self.ups = nn.ModuleList(
            nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=False)
            for c_in, c_out in zip(widths[:-1], widths[1:], strict=True)
        )
        self.norms = nn.ModuleList(ConditionalBatchNorm(c, settings.embed_dim) for c in widths[1:])
        self.to_pixels = nn.ConvTranspose2d(widths[-1], settings.channels, 4, stride=2, padding=1)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        e = self.embed(labels)
        x = self.project(torch.cat([z, e], dim=1)).view(-1, self.w0, self.s0, self.s0)
        # Sampling (eval mode, no autograd) takes faster paths with the same values: in-place
        # activations (fewer large temporaries) and a sub-pixel form of the last layer.
        sampling = not self.training and not torch.is_grad_enabled()
        x = F.relu(self.norm0(x, e), inplace=sampling)
        for up, norm in zip(self.ups, self.norms, strict=True):
            x = F.relu(norm(up(x), e), inplace=sampling)
        if not sampling:
            return torch.tanh(self.to_pixels(x))
        return torch.tanh(F.pixel_shuffle(F.conv2d(x, *self._subpixel_weights(), padding=1), 2))

    def _subpixel_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``to_pixels`` as a 3x3 convolution to 4 phases per channel, then a pixel shuffle.

        A stride-2, 4x4 transposed convolution gives output pixel ``(2i+a, 2j+b)`` from input rows
        ``i-1, i`` (a = 0: kernel rows 3, 1) or ``i, i+1`` (a = 1: rows 2, 0), and likewise for
        columns; a 3x3 convolution with those taps, one output channel per phase ``(a, b)``,
        computes the same sums. With only 1 or 3 output channels the transposed convolution runs
        far below the CPU's speed; this form took 5 ms instead of 12 ms per 512 images at 28x28.
        Same values up to float rounding; used when sampling only.
        """
        weight = self.to_pixels.weight  # (in, out, 4, 4)
        taps = {0: {-1: 3, 0: 1}, 1: {0: 2, 1: 0}}  # phase -> input offset -> kernel index
        c_in, c_out = weight.shape[:2]
        kernel = weight.new_zeros(c_out, 2, 2, c_in, 3, 3)
        for a, rows in taps.items():
            for b, cols in taps.items():
                for d, ki in rows.items():
                    for e, kj in cols.items():
                        kernel[:, a, b, :, d + 1, e + 1] = weight[:, :, ki, kj].T
        bias = self.to_pixels.bias.repeat_interleave(4)
        return kernel.reshape(c_out * 4, c_in, 3, 3), bias


class ImageDiscriminator(nn.Module):
    """Spectrally normalised convolutions with a projection head: ``(x, class) -> (B,)`` scores."""

    def __init__(self, settings: ImageGANSettings, n_classes: int) -> None:
        super().__init__()
        widths = _widths(settings)[::-1]  # half resolution first
        self.from_pixels = spectral_norm(
            nn.Conv2d(settings.channels, widths[0], 4, stride=2, padding=1)
        )
        self.downs = nn.ModuleList(
            spectral_norm(nn.Conv2d(c_in, c_out, 4, stride=2, padding=1))
            for c_in, c_out in zip(widths[:-1], widths[1:], strict=True)
        )
        self.head = spectral_norm(nn.Linear(widths[-1], 1))
        self.embed = spectral_norm(nn.Embedding(n_classes, widths[-1]))
        self.classify = spectral_norm(nn.Linear(widths[-1], n_classes))

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Real/fake scores ``(B,)`` and class logits ``(B, classes)`` for the auxiliary loss."""
        h = F.leaky_relu(self.from_pixels(x), 0.2)
        for down in self.downs:
            h = F.leaky_relu(down(h), 0.2)
        h = h.sum(dim=(2, 3))  # global sum pooling over the s0 x s0 grid, (B, W)
        score = self.head(h).squeeze(1) + (self.embed(labels) * h).sum(dim=1)
        return score, self.classify(h)


# -- training ---------------------------------------------------------------------------------
class ImageGANTrainer(GANTrainerState):
    """One generator step (with ``critic_steps`` discriminator steps) at a time.

    Implements :class:`augment.core.train.Trainer`. The images stay on ``device`` as one uint8
    tensor, sorted by class, so a batch is one gather (on CUDA this keeps the data on the GPU).
    Data-parallel when a ``torch.distributed`` process group is up (see :mod:`augment.core.ddp`).
    """

    def __init__(
        self,
        model: ImageCGAN,
        images: np.ndarray,
        class_index: np.ndarray,
        train: ImageTrainSettings,
        device: torch.device,
    ) -> None:
        self.model, self.train, self.device = model, train, device
        # bf16 on CUDA, and on CPUs with AMX bf16 units, under "auto"
        self.amp_dtype = autocast_dtype(device, train.precision, cpu_bf16_pays=True)
        settings = model.settings
        self.policy = parse_policy(settings.diff_augment)
        # First weights from a generator seeded with the seed (the numbers torch.manual_seed gave
        # them), never from torch's global one: jobs may train side by side in threads.
        init_rng = torch.Generator().manual_seed(train.seed)
        model.build(device, init_rng)
        self.discriminator = build(
            lambda: ImageDiscriminator(settings, model.n_classes), init_rng
        ).to(device)
        if settings.channels_last:
            self.discriminator.to(memory_format=torch.channels_last)
        self.opt_g = torch.optim.Adam(
            model.generator.parameters(), lr=train.lr, betas=train.betas, fused=True
        )
        self.opt_d = torch.optim.Adam(
            self.discriminator.parameters(), lr=train.lr, betas=train.betas, fused=True
        )
        # The modules whose backward is averaged over ranks (plain modules in a single process).
        # Without the auxiliary loss the class head gets no gradient: DDP must be told.
        self.ddp_generator = ddp.wrap(model.generator)
        self.ddp_discriminator = ddp.wrap(
            self.discriminator, find_unused_parameters=self._aux_weight() == 0
        )
        seed = ddp.rank_seed(train.seed)  # each rank its own batches; rank 0 a single process's
        self.rng = torch.Generator(device=device).manual_seed(seed)
        self.sample_rng = torch.Generator(device="cpu").manual_seed(seed + 1)

        order = np.argsort(class_index, kind="stable")
        # uint8 (N, H, W, C) on the device, a batch made float when drawn: a float copy of every
        # image would take 4 times the decoded pixels (4 GB for 5,000 RGB images at 256 px)
        self.data = torch.as_tensor(np.ascontiguousarray(images[order]), device=device)
        counts = np.bincount(class_index, minlength=model.n_classes)
        self.counts = torch.as_tensor(counts, dtype=torch.float64)
        self.offsets = torch.as_tensor(np.concatenate([[0], np.cumsum(counts)[:-1]]))
        self.class_probs = torch.as_tensor(class_probabilities(counts, train.class_sampling))
        self.averager = EMA(model.ema, model.generator, settings.ema_decay)

    def _classes(self, size: int) -> torch.Tensor:
        return torch.multinomial(self.class_probs, size, True, generator=self.sample_rng)

    def _real(self, cls: torch.Tensor) -> torch.Tensor:
        u = torch.rand(cls.shape[0], generator=self.sample_rng, dtype=torch.float64)
        rows = self.offsets[cls] + (u * self.counts[cls]).long()
        # (B, H, W, C) uint8 permuted to (B, C, H, W) is channels-last in memory; the same values
        # as converting every image up front
        x = self.data[rows.to(self.device)].permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)
        return x if self.model.settings.channels_last else x.contiguous()

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        return diff_augment(x, self.policy, self.rng) if self.policy else x

    def _noise(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.model.settings.noise_dim, generator=self.rng, device=self.device)

    def _fake(self, labels: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        return self.ddp_generator(self._noise(labels.shape[0]) if z is None else z, labels)

    def _generator_classes(self, batch: int) -> torch.Tensor:
        """Classes for the generator's batch; with mode seeking, the last ``batch // 2`` repeat
        the first ones, so row ``i`` and row ``batch - batch // 2 + i`` share a class."""
        if not self.model.settings.mode_seeking:
            return self._classes(batch)
        pairs = batch // 2
        first = self._classes(batch - pairs)
        return torch.cat([first, first[:pairs]])

    @staticmethod
    def _mode_seeking_loss(fake: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """MSGAN's term: 1 / (mean |G(z1) - G(z2)| / mean |z1 - z2|) over same-class pairs."""
        pairs = fake.shape[0] // 2
        start = fake.shape[0] - pairs
        images = (fake[:pairs].float() - fake[start:].float()).abs().mean()
        noise = (z[:pairs] - z[start:]).abs().mean()
        return 1.0 / (images / noise + 1e-5)

    def _aux_weight(self) -> float:
        return self.model.settings.aux_weight if self.model.n_classes > 1 else 0.0

    def train_step(self, step: int) -> dict[str, float]:
        generator, disc = self.model.generator, self.discriminator
        aux = self._aux_weight()
        generator.train()
        batch = self.train.batch_size
        disc.requires_grad_(True)
        # One generator pass serves both updates (as in the DCGAN recipe): the discriminator step
        # sees these fakes detached, then the generator step backpropagates through them into the
        # generator. Dropping the second generator pass made a CPU step about 10% faster.
        g_cls = self._generator_classes(batch)
        g_labels = g_cls.to(self.device)
        g_z = self._noise(batch)
        with autocast_to(self.device, self.amp_dtype):
            g_fake = self._fake(g_labels, g_z)
        for inner in range(self.train.critic_steps):
            if inner == 0:
                labels, fake, real = g_labels, g_fake.detach(), self._real(g_cls)
            else:  # further critic steps draw their own batch
                cls = self._classes(batch)
                labels = cls.to(self.device)
                real = self._real(cls)
                with torch.no_grad(), autocast_to(self.device, self.amp_dtype):
                    fake = self._fake(labels)
            with autocast_to(self.device, self.amp_dtype):
                # One pass over real and fake together (the discriminator has no batch norm).
                scores, logits = self.ddp_discriminator(
                    self._augment(torch.cat([real, fake.to(real.dtype)])), labels.repeat(2)
                )
            scores = scores.float()
            d_real, d_fake = scores[:batch], scores[batch:]
            loss_d = F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()
            if aux:  # the class head learns from real images only
                loss_d = loss_d + aux * F.cross_entropy(logits[:batch].float(), labels)
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            self.opt_d.step()

        # Generator step; the discriminator's weights need no gradient here (and the plain module
        # is called: DDP has nothing of it to reduce).
        disc.requires_grad_(False)
        with autocast_to(self.device, self.amp_dtype):
            score, logits = disc(self._augment(g_fake), g_labels)
        loss_g = -score.float().mean()
        if aux:
            loss_g = loss_g + aux * F.cross_entropy(logits.float(), g_labels)
        if self.model.settings.mode_seeking and batch > 1:
            loss_g = loss_g + self.model.settings.mode_seeking * self._mode_seeking_loss(
                g_fake, g_z
            )
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        self.averager.update(step)
        return {
            "loss_d": float(loss_d.detach()),
            "loss_g": float(loss_g.detach()),
            "d_real": float(d_real.detach().mean()),
            "d_fake": float(d_fake.detach().mean()),
        }

    def _stateful(self) -> dict[str, Any]:
        return {
            "generator": self.model.generator,
            "ema": self.model.ema,
            "discriminator": self.discriminator,
            "opt_g": self.opt_g,
            "opt_d": self.opt_d,
        }


# -- fit / sample wrapper ---------------------------------------------------------------------
class ImageCGAN:
    """A generator (and its EMA) for a fixed list of classes: all of them, or one (per_class)."""

    def __init__(self, classes: Sequence[Any], settings: ImageGANSettings) -> None:
        base_grid(settings.size)  # refuse an unsupported size before anything is built
        parse_policy(settings.diff_augment)
        self.classes = list(classes)
        self.settings = settings
        self.generator: ImageGenerator | None = None
        self.ema: ImageGenerator | None = None
        self.device = torch.device("cpu")

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def build(self, device: torch.device, init_rng: torch.Generator | None) -> None:
        """The generator and its EMA on ``device``, the first weights drawn from ``init_rng``
        (``None``: uninitialised, for a state dict to fill; :func:`augment.core.weights.build`)."""
        self.device = device
        settings, n_classes = self.settings, self.n_classes
        self.generator = build(lambda: ImageGenerator(settings, n_classes), init_rng).to(device)
        self.ema = copy.deepcopy(self.generator).eval().requires_grad_(False)
        if self.settings.channels_last:
            self.generator.to(memory_format=torch.channels_last)
            self.ema.to(memory_format=torch.channels_last)

    def make_trainer(
        self,
        images: np.ndarray,
        labels: Sequence[Any],
        train: ImageTrainSettings,
        device: torch.device,
    ) -> ImageGANTrainer:
        """The trainer for uint8 ``images`` ``(N, H, W, C)`` with ``labels`` in ``self.classes``."""
        expected = (self.settings.size, self.settings.size, self.settings.channels)
        if images.ndim != 4 or images.shape[1:] != expected:
            raise ValueError(f"images have shape {images.shape[1:]}, the model expects {expected}")
        lookup = {c: i for i, c in enumerate(self.classes)}
        class_index = np.array([lookup[c] for c in labels], dtype=np.int64)
        return ImageGANTrainer(self, images, class_index, train, device)

    @torch.no_grad()
    def sample(
        self, label: Any, n_images: int, seed: int, batch_size: int = SAMPLE_BATCH
    ) -> np.ndarray:
        """Exactly ``n_images`` uint8 ``(n, H, W, C)`` images of class ``label`` from the EMA.

        Seeded by ``seed`` and the class, so a class's images do not depend on what else is asked.
        """
        assert self.ema is not None, "fit or load the model before sampling"
        self.ema.eval()
        cls = self.classes.index(label)
        rng = torch.Generator(device=self.device).manual_seed(class_seed(seed, cls))
        s = self.settings
        parts = [np.zeros((0, s.size, s.size, s.channels), dtype=np.uint8)]
        for start in range(0, n_images, batch_size):
            size = min(batch_size, n_images - start)
            z = torch.randn(size, s.noise_dim, generator=rng, device=self.device) * s.truncation
            labels = torch.full((size,), cls, dtype=torch.long, device=self.device)
            with autocast(self.device):
                pixels = self.ema(z, labels)
            parts.append(from_unit(pixels))
        return np.concatenate(parts)

    def state_dict(self) -> dict[str, Any]:
        assert self.ema is not None
        return {
            "classes": list(self.classes),
            "settings": asdict(self.settings),
            "ema": {k: v.detach().cpu() for k, v in self.ema.state_dict().items()},
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, Any], device: torch.device) -> ImageCGAN:
        model = cls(state["classes"], ImageGANSettings(**state["settings"]))
        model.build(device, init_rng=None)
        model.ema.load_state_dict(state["ema"])
        model.generator = None  # only the EMA generator is saved; it is what samples
        return model
