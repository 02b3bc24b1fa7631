"""Conditional tabular GAN: networks (pure nn.Modules) and a fit / sample wrapper.

Design, in short:
- the generator maps ``[z, one-hot(class)]`` through residual MLP blocks to the encoder's vector;
  identity on quantile-normalised numbers, tanh on GMM ``alpha`` blocks, Gumbel-softmax on mode and
  category blocks (hard one-hot at sampling);
- the critic judges ``pac`` rows at once (PacGAN), which penalises a generator that repeats itself;
- WGAN-GP loss; training-by-sampling draws the class first (uniform by default), then a real row of
  that class, so rare classes are seen as often as common ones;
- everything random comes from one seeded ``torch.Generator`` per model; sampling seeds a generator
  per (seed, class), so a class's rows do not depend on what else is generated;
- under torchrun the trainer is data-parallel (:mod:`augment.ddp`): each rank draws its own
  batches, DDP averages the gradients. The gradient penalty differentiates the critic with
  ``create_graph`` through the plain critic, outside DDP: ``autograd.grad`` there asks only for
  the input gradient, so no parameter is marked ready early, and the penalty's gradients join the
  score's in the single ``backward`` that DDP reduces.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from augment import ddp
from augment.device import autocast
from augment.train import class_probabilities
from augment.transforms.tabular import Span, TabularEncoder

_INIT_LOCK = threading.Lock()


@dataclass
class GANSettings:
    """Architecture knobs (the config's ``model`` section, minus ``mode``)."""

    noise_dim: int = 32
    generator_dims: Sequence[int] = (128, 128)
    discriminator_dims: Sequence[int] = (128, 128)
    pac: int = 4
    gumbel_tau: float = 0.2
    gp_weight: float = 10.0
    gp_every: int = 2  # lazy regularisation: penalise every k-th critic step with weight k * gp
    # Sampling only: z ~ N(0, truncation^2); below 1 trades variety for fidelity.
    truncation: float = 1.0


@dataclass
class TrainSettings:
    """Optimisation knobs (the config's ``train`` section, minus I/O)."""

    steps: int = 250
    batch_size: int = 64
    lr: float = 1e-3
    betas: tuple[float, float] = (0.5, 0.9)
    critic_steps: int = 3
    seed: int = 0
    class_sampling: str = "uniform"


# -- networks ---------------------------------------------------------------------------------
class _Residual(nn.Module):
    """Linear -> BatchNorm -> ReLU, concatenated to its input (CTGAN's generator block)."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_dim, out_dim)
        self.norm = nn.BatchNorm1d(out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([torch.relu(self.norm(self.linear(x))), x], dim=1)


class Generator(nn.Module):
    def __init__(self, in_dim: int, hidden: Sequence[int], out_dim: int) -> None:
        super().__init__()
        blocks, width = [], in_dim
        for size in hidden:
            blocks.append(_Residual(width, size))
            width += size
        self.body = nn.Sequential(*blocks)
        self.head = nn.Linear(width, out_dim)

    def forward(self, z_and_cond: torch.Tensor) -> torch.Tensor:  # (B, noise+classes) -> (B, D)
        return self.head(self.body(z_and_cond))


class Critic(nn.Module):
    """WGAN critic over packs of ``pac`` rows: (B, F) -> (B / pac, 1)."""

    def __init__(self, in_dim: int, hidden: Sequence[int], pac: int) -> None:
        super().__init__()
        self.pac = pac
        layers, width = [], in_dim * pac
        for size in hidden:
            layers += [nn.Linear(width, size), nn.LeakyReLU(0.2)]
            width = size
        layers.append(nn.Linear(width, 1))
        self.body = nn.Sequential(*layers)

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        return self.body(rows.reshape(rows.shape[0] // self.pac, -1))


class SpanActivation(nn.Module):
    """Applies identity / tanh / Gumbel-softmax per span with a constant number of tensor ops.

    All softmax spans are gathered into one padded (B, W, S) tensor (W = widest span, S = number
    of spans), so a table with 60 spans costs the same handful of kernels as one with 2. The
    softmax runs over dim 1, not the last dim: torch's CPU softmax is ~7x slower along a short
    last dimension (measured: 680 us vs 100 us for (192, 6, 30)).
    """

    def __init__(self, spans: Sequence[Span]) -> None:
        super().__init__()
        tanh_index, linear_index, soft_rows, offset = [], [], [], 0
        for span in spans:
            if span.activation == "tanh":
                tanh_index.extend(range(offset, offset + span.dim))
            elif span.activation == "linear":
                linear_index.extend(range(offset, offset + span.dim))
            else:
                soft_rows.append(list(range(offset, offset + span.dim)))
            offset += span.dim
        width = max((len(r) for r in soft_rows), default=1)
        gather = torch.zeros(width, len(soft_rows), dtype=torch.long)  # (W, S)
        mask = torch.zeros(width, len(soft_rows), dtype=torch.bool)
        for i, row in enumerate(soft_rows):
            gather[: len(row), i] = torch.tensor(row)
            mask[: len(row), i] = True
        self.register_buffer("tanh_index", torch.tensor(tanh_index, dtype=torch.long))
        self.register_buffer("linear_index", torch.tensor(linear_index, dtype=torch.long))
        self.register_buffer("gather", gather)
        self.register_buffer("mask", mask)
        self.register_buffer("flat_index", gather[mask])
        self.dim = offset

    def forward(
        self, raw: torch.Tensor, tau: float, hard: bool, generator: torch.Generator | None
    ) -> torch.Tensor:
        out = torch.empty_like(raw)
        out[:, self.tanh_index] = torch.tanh(raw[:, self.tanh_index])
        out[:, self.linear_index] = raw[:, self.linear_index]
        if self.flat_index.numel():
            logits = raw[:, self.gather].masked_fill(~self.mask, float("-inf"))  # (B, W, S)
            uniform = torch.rand(
                logits.shape, generator=generator, device=raw.device, dtype=raw.dtype
            ).clamp(1e-10, 1 - 1e-7)
            gumbel = -torch.log(-torch.log(uniform))  # Gumbel(0, 1) noise
            noisy = logits + gumbel
            if hard:
                winner = torch.nn.functional.one_hot(noisy.argmax(1), noisy.shape[1])  # (B, S, W)
                probs = winner.permute(0, 2, 1).to(raw.dtype)
            else:
                probs = torch.softmax(noisy / tau, dim=1)
            out[:, self.flat_index] = probs[:, self.mask]
        return out


# -- training ---------------------------------------------------------------------------------
class TabularGANTrainer:
    """One optimizer step at a time; implements :class:`augment.train.Trainer`.

    Data-parallel when a ``torch.distributed`` process group is up (see :mod:`augment.ddp`).
    """

    def __init__(
        self,
        model: TabularCGAN,
        encoded: np.ndarray,
        class_index: np.ndarray,
        train: TrainSettings,
        device: torch.device,
    ) -> None:
        self.model, self.train, self.device = model, train, device
        settings = model.settings
        self.batch = max(settings.pac, train.batch_size // settings.pac * settings.pac)
        # Weight initialisation draws from torch's global RNG. Seed it inside a fork (the caller's
        # RNG state is left as it was) and under a lock (per-class units may train in threads).
        with _INIT_LOCK, torch.random.fork_rng(devices=[]):
            torch.manual_seed(train.seed)
            model.build(device)
            self.critic = Critic(
                model.encoder.output_dim + model.n_classes,
                settings.discriminator_dims,
                settings.pac,
            ).to(device)
        # The fused Adam kernel updates every parameter in one call (CPU and CUDA); measured, it
        # made a step a third faster than the per-tensor loop on these small networks.
        self.opt_g = torch.optim.Adam(
            model.generator.parameters(), lr=train.lr, betas=train.betas, fused=True
        )
        self.opt_d = torch.optim.Adam(
            self.critic.parameters(), lr=train.lr, betas=train.betas, fused=True
        )
        # The modules whose backward is averaged over ranks: DDP wrappers under torchrun, the plain
        # modules otherwise. Every rank built the same weights from the same seed above.
        self.ddp_generator = ddp.wrap(model.generator)
        self.ddp_critic = ddp.wrap(self.critic)
        # Each rank draws its own batches and noise; rank 0 draws what a single process would.
        seed = ddp.rank_seed(train.seed)
        self.rng = torch.Generator(device=device).manual_seed(seed)
        self.sample_rng = torch.Generator(device="cpu").manual_seed(seed + 1)

        # Rows sorted by class, so "a random row of class c" is offset[c] + floor(u * count[c]).
        order = np.argsort(class_index, kind="stable")
        self.data = torch.as_tensor(encoded[order], device=device)  # (N, D)
        counts = np.bincount(class_index, minlength=model.n_classes)
        self.counts = torch.as_tensor(counts, dtype=torch.float64)
        self.offsets = torch.as_tensor(np.concatenate([[0], np.cumsum(counts)[:-1]]))
        self.class_probs = torch.as_tensor(class_probabilities(counts, train.class_sampling))
        self.eye = torch.eye(model.n_classes, device=device)
        self.last_penalty = float("nan")

    def _real_batch(self, n_batches: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """``n_batches`` batches at once: (n * B, D) rows and their (n * B, classes) one-hots."""
        size = self.batch * n_batches
        cls = torch.multinomial(self.class_probs, size, True, generator=self.sample_rng)
        u = torch.rand(size, generator=self.sample_rng, dtype=torch.float64)
        rows = self.offsets[cls] + (u * self.counts[cls]).long()
        return self.data[rows.to(self.device)], self.eye[cls.to(self.device)]

    def _fake(self, cond: torch.Tensor) -> torch.Tensor:
        settings = self.model.settings
        z = torch.randn(cond.shape[0], settings.noise_dim, generator=self.rng, device=self.device)
        raw = self.ddp_generator(torch.cat([z, cond], dim=1))
        return self.model.activation(raw.float(), settings.gumbel_tau, False, self.rng)

    def _gradient_penalty(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        pac = self.model.settings.pac
        # One mixing weight per pack, broadcast over its pac rows and features.
        mix = torch.rand(real.shape[0] // pac, 1, 1, generator=self.rng, device=self.device)
        mix = mix.expand(-1, pac, real.shape[1]).reshape(real.shape)
        blend = (mix * real + (1 - mix) * fake).requires_grad_(True)
        score = self.critic(blend)
        (grad,) = torch.autograd.grad(score.sum(), blend, create_graph=True)
        norms = grad.reshape(grad.shape[0] // pac, -1).norm(2, dim=1)
        return ((norms - 1) ** 2).mean()

    def train_step(self, step: int) -> dict[str, float]:
        self.model.generator.train()
        self.critic.train()
        settings = self.model.settings
        # Draw the real rows and generate the fakes for all critic steps in one go: one generator
        # pass instead of critic_steps of them.
        n_critic, batch = self.train.critic_steps, self.batch
        reals, conds = self._real_batch(n_critic)
        with torch.no_grad(), autocast(self.device):
            fakes = self._fake(conds)
        reals_in = torch.cat([reals, conds], dim=1)  # (n_critic * B, D + classes)
        fakes_in = torch.cat([fakes.float(), conds], dim=1)
        for inner in range(n_critic):
            part = slice(inner * batch, (inner + 1) * batch)
            real_in, fake_in = reals_in[part], fakes_in[part]
            with autocast(self.device):
                # One critic pass over both halves; packs never straddle them (B % pac == 0).
                scores = self.ddp_critic(torch.cat([real_in, fake_in])).float()
            half = scores.shape[0] // 2  # scores are per pack of pac rows
            wasserstein = scores[:half].mean() - scores[half:].mean()
            loss_d = -wasserstein
            # Lazy penalty (as StyleGAN2 does for R1): every gp_every-th critic step, scaled up by
            # gp_every; the double backward it needs is the most expensive part of a step.
            if (step * n_critic + inner) % settings.gp_every == 0:
                penalty = self._gradient_penalty(real_in, fake_in)
                loss_d = loss_d + settings.gp_weight * settings.gp_every * penalty
                self.last_penalty = float(penalty.detach())
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            self.opt_d.step()

        _, cond = self._real_batch()
        with autocast(self.device):
            fake = self._fake(cond)
            # The plain critic: its gradients here are thrown away, so DDP need not reduce them.
            loss_g = -self.critic(torch.cat([fake, cond], dim=1)).mean().float()
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        return {
            "loss_d": float(loss_d.detach()),
            "loss_g": float(loss_g.detach()),
            "wasserstein": float(wasserstein.detach()),
            "gp": self.last_penalty,
        }

    def state_dict(self) -> dict[str, Any]:
        return {
            "generator": self.model.generator.state_dict(),
            "critic": self.critic.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            **ddp.rng_states(self._generators()),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.generator.load_state_dict(state["generator"])
        self.critic.load_state_dict(state["critic"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        ddp.restore_rng_states(self._generators(), state, self.train.seed)

    def _generators(self) -> dict[str, torch.Generator]:
        return {"rng": self.rng, "sample_rng": self.sample_rng}


# -- fit / sample wrapper ---------------------------------------------------------------------
class TabularCGAN:
    """A fitted encoder + generator for a fixed list of classes (all of them, or one per_class)."""

    def __init__(
        self, encoder: TabularEncoder, classes: Sequence[Any], settings: GANSettings
    ) -> None:
        self.encoder = encoder
        self.classes = list(classes)
        self.settings = settings
        self.generator: Generator | None = None
        self.device = torch.device("cpu")

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def build(self, device: torch.device) -> None:
        settings = self.settings
        self.device = device
        self.activation = SpanActivation(self.encoder.spans).to(device)
        self.generator = Generator(
            settings.noise_dim + self.n_classes, settings.generator_dims, self.encoder.output_dim
        ).to(device)

    def make_trainer(
        self, frame: pd.DataFrame, labels: Sequence[Any], train: TrainSettings, device: torch.device
    ) -> TabularGANTrainer:
        """The trainer for ``frame`` (feature columns) with ``labels`` among ``self.classes``."""
        lookup = {c: i for i, c in enumerate(self.classes)}
        class_index = np.array([lookup[c] for c in labels], dtype=np.int64)
        encoded = self.encoder.transform(frame)
        return TabularGANTrainer(self, encoded, class_index, train, device)

    @torch.no_grad()
    def sample(self, label: Any, n_rows: int, seed: int, batch_size: int = 4096) -> pd.DataFrame:
        """Exactly ``n_rows`` feature rows of class ``label`` (seeded by ``seed`` and the class)."""
        assert self.generator is not None, "fit or load the model before sampling"
        self.generator.eval()
        cls = self.classes.index(label)
        rng = torch.Generator(device=self.device).manual_seed(seed * 100_003 + cls)
        cond_row = torch.zeros(1, self.n_classes, device=self.device)
        cond_row[0, cls] = 1.0
        parts = []
        for start in range(0, n_rows, batch_size):
            size = min(batch_size, n_rows - start)
            z = torch.randn(size, self.settings.noise_dim, generator=rng, device=self.device)
            z = z * self.settings.truncation
            with autocast(self.device):
                raw = self.generator(torch.cat([z, cond_row.expand(size, -1)], dim=1))
            vec = self.activation(raw.float(), self.settings.gumbel_tau, True, rng)
            parts.append(vec.cpu().numpy())
        encoded = np.concatenate(parts) if parts else np.zeros((0, self.encoder.output_dim))
        return self.encoder.inverse_transform(encoded)

    def state_dict(self) -> dict[str, Any]:
        assert self.generator is not None
        return {
            "classes": list(self.classes),
            "settings": {
                k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self.settings).items()
            },
            "encoder": self.encoder.state_dict(),
            "generator": {k: v.detach().cpu() for k, v in self.generator.state_dict().items()},
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, Any], device: torch.device) -> TabularCGAN:
        settings = GANSettings(**state["settings"])
        model = cls(TabularEncoder.from_state_dict(state["encoder"]), state["classes"], settings)
        model.build(device)
        model.generator.load_state_dict(state["generator"])
        model.generator.eval()
        return model
