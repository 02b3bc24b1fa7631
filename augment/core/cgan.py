"""The conditional GAN over vectors that every kind of data generates with.

A kind turns its items into continuous vectors with a *codec* and back; this module only ever
sees the vectors. A table's codec is its encoder (:class:`augment.tabular.transform.
TabularEncoder`: mode-normalised numbers, one-hot categories); an image's is the shared
autoencoder's code, standardised (:mod:`augment.image.codes`). The codec tells the generator
what it writes through a list of :class:`Span` blocks ``(dim, activation)`` (CTGAN's interface),
and has ``transform`` (items -> ``(N, output_dim)`` float32), ``inverse_transform`` (vectors,
and the winners of the softmax spans -> items) and ``state_dict``. One engine, two codecs: the
image wing has no GAN of its own over codes.

Design, in short:
- the generator maps ``[z, one-hot(class)]`` through residual MLP blocks to the codec's vector;
  identity on linear spans (quantile-normalised numbers, codes), tanh on GMM ``alpha`` blocks,
  Gumbel-softmax on mode and category blocks in training; at sampling each block's winner is
  drawn from its softmax by inverse CDF (one uniform per block), and the decoder takes the
  winners;
- the critic judges ``pac`` rows at once (PacGAN), which penalises a generator that repeats itself;
- rows are sampled from an exponential moving average (EMA) of the generator weights
  (``ema_decay``): on the benchmarks it raised downstream balanced accuracy by about 0.02;
- WGAN-GP loss; training-by-sampling draws the class first (uniform by default), then a real row of
  that class, so rare classes are seen as often as common ones;
- the critic's gradients (penalty included) and its gradient with respect to the generator's rows
  are written out by hand (``critic_gradients``, ``critic_score_gradient``): through autograd a
  critic step cost twice as much. Autograd still differentiates the generator;
- everything random comes from seeded ``torch.Generator`` objects of the model's own, never
  from torch's global one (the first weights: :mod:`augment.core.weights`); sampling seeds a
  generator per (seed, class), so a class's rows do not depend on what else is generated;
- under torchrun the trainer is data-parallel (:mod:`augment.core.ddp`): each rank draws its own
  batches; DDP averages the generator's gradients, and one all-reduce the critic's (which DDP
  cannot see, as no autograd graph makes them).
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Literal, Protocol

import numpy as np
import torch
from torch import nn

from augment.core import ddp
from augment.core.device import autocast, autocast_dtype, autocast_to
from augment.core.optim import LeanAdam
from augment.core.seeds import class_seed
from augment.core.train import EMA, GANTrainerState, TrainSettings, class_probabilities
from augment.core.weights import build


@dataclass(frozen=True)
class Span:
    """A block of the codec's vector and the activation the generator applies to it."""

    dim: int
    activation: Literal["tanh", "linear", "softmax"]


class Codec(Protocol):
    """Items of one kind <-> the vectors the GAN generates (see the module docstring)."""

    spans: list[Span]
    output_dim: int

    def transform(self, items: Any) -> np.ndarray: ...
    def inverse_transform(self, encoded: np.ndarray, codes: np.ndarray | None = None) -> Any: ...
    def state_dict(self) -> dict[str, Any]: ...


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
    # The generator that samples is an exponential moving average of the trained one (0: none).
    ema_decay: float = 0.95
    # Sampling only: z ~ N(0, truncation^2); below 1 trades variety for fidelity.
    truncation: float = 1.0


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


@torch.no_grad()
def sampling_forward(generator: Generator) -> Any:
    """The evaluation-mode ``generator`` as plain matrix products, for sampling.

    In evaluation mode each block's BatchNorm is an affine map with fixed statistics, so it folds
    into the linear layer before it: ``W' = W * s``, ``b' = (b - mean) * s + beta`` with
    ``s = gamma / sqrt(var + eps)``. The same function (outputs differ by float rounding, ~1e-6),
    without a module call or a normalisation pass per block: 4096 rows of breast_cancer's generator
    took ~6.3 ms instead of ~9.9 ms, 1 thread. Folded on every call (a few small matrices), so it
    always follows the generator's current weights.
    """
    blocks = []
    for block in generator.body:
        norm = block.norm
        scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
        weight = (block.linear.weight * scale[:, None]).t()
        blocks.append(((block.linear.bias - norm.running_mean) * scale + norm.bias, weight))
    head = (generator.head.bias, generator.head.weight.t())

    def forward(z_and_cond: torch.Tensor) -> torch.Tensor:
        # One buffer holds what the blocks concatenate, [h_last | ... | h_1 | input]: each block
        # reads the columns right of its own and writes its output in place, with no copies
        # (torch.cat copied every block's input: 6.8 ms instead of 11 ms for 4096 rows, the same
        # numbers). Autocast (bf16 on CUDA) does not cast a product written into ``out``, so
        # there the blocks concatenate as the module does.
        if torch.is_autocast_enabled(z_and_cond.device.type):
            x = z_and_cond
            for bias, weight in blocks:
                x = torch.cat([torch.addmm(bias, x, weight).relu_(), x], dim=1)
            return torch.addmm(head[0], x, head[1])
        width = head[1].shape[0]
        x = z_and_cond.new_empty(z_and_cond.shape[0], width)
        start = width - z_and_cond.shape[1]
        x[:, start:] = z_and_cond
        for bias, weight in blocks:
            end, start = start, start - weight.shape[1]
            torch.addmm(bias, x[:, end:], weight, out=x[:, start:end]).relu_()
        return torch.addmm(head[0], x, head[1])

    return forward


class Critic(nn.Module):
    """WGAN critic over packs of ``pac`` rows: (B, F) -> (B / pac, 1).

    An MLP of linear layers and leaky ReLUs. ``forward`` is the plain autograd version (the
    reference the tests check against); training uses the hand-derived gradients below, which
    need no autograd graph.
    """

    slope = 0.2

    def __init__(self, in_dim: int, hidden: Sequence[int], pac: int) -> None:
        super().__init__()
        self.pac = pac
        layers, width = [], in_dim * pac
        for size in hidden:
            layers += [nn.Linear(width, size), nn.LeakyReLU(self.slope)]
            width = size
        layers.append(nn.Linear(width, 1))
        self.body = nn.Sequential(*layers)
        self._loss_weights: dict[tuple[int, torch.device], torch.Tensor] = {}

    # Plain lists for the hand-made passes: walking the module tree each time cost 0.4 ms a
    # training step. Made on first use, not in __init__: augment.core.weights.build replaces the
    # meta parameters the constructor made; ``.to()`` and ``load_state_dict`` keep them.
    @functools.cached_property
    def linears(self) -> list[nn.Linear]:
        return [layer for layer in self.body if isinstance(layer, nn.Linear)]

    @functools.cached_property
    def param_list(self) -> list[nn.Parameter]:
        return list(self.parameters())

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        return self.body(rows.reshape(rows.shape[0] // self.pac, -1))

    def loss_weights(self, packs: int, device: torch.device) -> torch.Tensor:
        """(2 * packs, 1): d loss / d score, -1/packs for the real packs, +1/packs for the fake."""
        key = (packs, device)
        if key not in self._loss_weights:
            weights = torch.full((2 * packs, 1), 1.0 / packs, device=device)
            weights[:packs] = -1.0 / packs
            self._loss_weights[key] = weights
        return self._loss_weights[key]


# -- the critic's gradients, by hand ------------------------------------------------------------
# A critic step is a few small matrix products; through autograd it cost twice as much as the
# products themselves (graph nodes, the engine, the gradient penalty's double backward). So the
# forward and backward passes are written out. With W_1..W_L the hidden layers, w the output row,
# a_l the pre-activations and S_l = leaky'(a_l) (1 or 0.2, piecewise constant in the input):
#
#   d score / d a_L = g_L = S_L * w,  g_(l-1) = S_(l-1) * (g_l W_l),  d score / d x = g_1 W_1.
#
# The gradient penalty mean((|d score / d x| - 1)^2) is a function of the weights through these
# products only (the S_l are constant almost everywhere), so its weight gradients follow by the
# chain rule through them. tests/unit/test_tabular_model.py checks every gradient against
# autograd (double backward included). Measured on wine and breast_cancer, Adam step included: a
# critic step took 0.44 ms and 0.61 ms instead of 0.78-0.84 ms and 1.04 ms through autograd;
# with the penalty, 0.95 ms instead of 1.58 ms on wine.
# The critic runs in float32 on every device: its matrices are tiny, autocast would only add casts.


def _forward(critic: Critic, packed: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Hidden pre-activations a_1..a_L and the layer inputs h_0 (= packed)..h_L."""
    pre, inputs = [], [packed]
    for layer in critic.linears[:-1]:
        pre.append(torch.addmm(layer.bias, inputs[-1], layer.weight.t()))
        inputs.append(torch.nn.functional.leaky_relu(pre[-1], critic.slope))
    return pre, inputs


def _times_slope(critic: Critic, values: torch.Tensor, pre: torch.Tensor) -> torch.Tensor:
    """S * values, S = leaky'(pre): one kernel, the one autograd uses for a leaky ReLU."""
    return torch.ops.aten.leaky_relu_backward(values, pre, critic.slope, False)


def _input_gradient(
    critic: Critic, pre: list[torch.Tensor]
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """g_1..g_L and d score / d input, for the packs whose pre-activations are ``pre``."""
    linears = critic.linears
    g = [_times_slope(critic, linears[-1].weight.expand_as(pre[-1]), pre[-1])]
    for layer, a in zip(reversed(linears[1:-1]), reversed(pre[:-1]), strict=True):
        g.insert(0, _times_slope(critic, g[0] @ layer.weight, a))
    return g, g[0] @ linears[0].weight


def _backward_scores(
    critic: Critic, pre: list[torch.Tensor], inputs: list[torch.Tensor], d_scores: torch.Tensor
) -> list[torch.Tensor]:
    """Weight and bias gradients of sum(d_scores * score), in parameter order (W_1, b_1, ...)."""
    linears = critic.linears
    rows = slice(0, d_scores.shape[0])  # the scored packs come first
    grads = [d_scores.t() @ inputs[-1][rows], d_scores.sum(0)]
    delta = d_scores @ linears[-1].weight
    for i in reversed(range(len(linears) - 1)):
        delta = _times_slope(critic, delta, pre[i][rows])
        grads[:0] = [delta.t() @ inputs[i][rows], delta.sum(0)]
        if i:
            delta = delta @ linears[i].weight
    return grads


def _backward_penalty(
    critic: Critic,
    pre: list[torch.Tensor],
    g: list[torch.Tensor],
    d_input: torch.Tensor,
    grads: list[torch.Tensor],
) -> None:
    """Add to ``grads`` the weight gradients of sum(d_input * d score / d input)."""
    linears = critic.linears
    grads[0] += g[0].t() @ d_input
    d_g = d_input @ linears[0].weight.t()  # d / d (S_1 * u_1)
    for i in range(1, len(linears) - 1):
        d_u = _times_slope(critic, d_g, pre[i - 1])
        grads[2 * i] += g[i].t() @ d_u
        d_g = d_u @ linears[i].weight.t()
    grads[-2] += _times_slope(critic, d_g, pre[-1]).sum(0, keepdim=True)


@torch.no_grad()
def critic_gradients(
    critic: Critic,
    real_in: torch.Tensor,
    fake_in: torch.Tensor,
    blend_in: torch.Tensor | None = None,
    penalty_weight: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Set the critic's ``.grad`` to the gradient of its WGAN-GP loss on one batch.

    The loss is ``mean score(fake) - mean score(real) + penalty_weight * penalty``, where the
    penalty, with ``blend_in`` given, is ``mean((|d score / d x| - 1)^2)`` over its packs.
    Returns (the Wasserstein estimate, the unweighted penalty or None).
    """
    pac = critic.pac
    packs = real_in.shape[0] // pac
    parts = [real_in, fake_in] + ([blend_in] if blend_in is not None else [])
    packed = torch.cat(parts).reshape(-1, real_in.shape[1] * pac)
    pre, inputs = _forward(critic, packed)
    last = critic.linears[-1]
    scores = torch.addmm(last.bias, inputs[-1][: 2 * packs], last.weight.t())
    d_scores = critic.loss_weights(packs, scores.device)  # -1/P for the real, +1/P for the fake
    wasserstein = -(d_scores.t() @ scores).squeeze()
    grads = _backward_scores(critic, pre, inputs, d_scores)
    penalty = None
    if blend_in is not None:
        blend_pre = [a[2 * packs :] for a in pre]
        g, d_blend = _input_gradient(critic, blend_pre)
        norms = d_blend.norm(dim=1, keepdim=True)
        excess = norms - 1
        penalty = excess.square().mean()
        # d (weighted penalty) / d (d score / d x); at a zero gradient the norm's subgradient is
        # 0, as in autograd
        d_input = d_blend * (excess * (2 * penalty_weight / packs) / norms.clamp_min(1e-12))
        _backward_penalty(critic, blend_pre, g, d_input, grads)
    for param, grad in zip(critic.param_list, grads, strict=True):
        param.grad = grad
    return wasserstein, penalty


@torch.no_grad()
def critic_score_gradient(critic: Critic, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean score over the packs of ``rows``, its gradient with respect to ``rows``)."""
    packed = rows.reshape(rows.shape[0] // critic.pac, -1)
    pre, inputs = _forward(critic, packed)
    last = critic.linears[-1]
    mean_score = torch.addmm(last.bias, inputs[-1], last.weight.t()).mean()
    _, d_packed = _input_gradient(critic, pre)
    return mean_score, (d_packed / packed.shape[0]).reshape(rows.shape)


class SpanActivation(nn.Module):
    """Turns the generator's raw output into the encoder's vector with a constant number of ops.

    The generator writes its output in a *model layout* built for cheap activations:
    ``[tanh block | linear block | softmax block]``, where the softmax block is a (W, S) grid
    flattened row-major (S softmax spans, W = the widest span; a narrower span's unused cells
    get a constant -inf bias, so their probability is exactly 0). Every activation then works on a
    slice or a reshape (no gathers), and one ``index_select`` puts the columns in the encoder's
    order. A table with 60 spans costs the same handful of kernels as one with 2. Measured on
    wine (91 encoded columns): 270 us instead of 575 us for 192 rows, 380 us instead of 730 us
    with the backward pass (the earlier version gathered and scattered per activation kind).

    The softmax runs over dim 1 of (B, W, S), not the last dim: torch's CPU softmax is ~7x
    slower along a short last dimension (measured: 680 us vs 100 us for (192, 6, 30)).
    """

    def __init__(self, spans: Sequence[Span]) -> None:
        super().__init__()
        kinds: dict[str, list[int]] = {"tanh": [], "linear": [], "softmax": []}
        softmax_spans, offset = [], 0
        for span in spans:
            columns = list(range(offset, offset + span.dim))
            if span.activation == "softmax":
                softmax_spans.append(columns)
            else:
                kinds[span.activation].extend(columns)
            offset += span.dim
        n_tanh, n_linear = len(kinds["tanh"]), len(kinds["linear"])
        width = max((len(columns) for columns in softmax_spans), default=0)
        n_soft = len(softmax_spans)
        # where each encoder column sits in the model layout
        position = torch.empty(offset, dtype=torch.long)
        position[kinds["tanh"]] = torch.arange(n_tanh, dtype=torch.long)
        position[kinds["linear"]] = n_tanh + torch.arange(n_linear, dtype=torch.long)
        bias = torch.full((width, n_soft), float("-inf"))
        for s, columns in enumerate(softmax_spans):
            for w, column in enumerate(columns):
                position[column] = n_tanh + n_linear + w * n_soft + s
            bias[: len(columns), s] = 0.0
        self.register_buffer("position", position)
        self.register_buffer("bias", bias)
        # For hard (one-hot) sampling: the encoder column of each plain cell and of each grid
        # cell (w, s), so the winners are scattered straight into the output (unused cells
        # never win; they point at column 0). Not saved: rebuilt from the spans.
        plain = torch.empty(n_tanh + n_linear, dtype=torch.long)
        plain[position[kinds["tanh"] + kinds["linear"]]] = torch.tensor(
            kinds["tanh"] + kinds["linear"], dtype=torch.long
        )
        cell_column = torch.zeros(width * n_soft, dtype=torch.long)
        for s, columns in enumerate(softmax_spans):
            for w, column in enumerate(columns):
                cell_column[w * n_soft + s] = column
        self.register_buffer("plain_column", plain, persistent=False)
        self.register_buffer("cell_column", cell_column, persistent=False)
        # the last live cell of each softmax span: a sampled winner never goes past it
        last_cell = torch.tensor([len(columns) - 1 for columns in softmax_spans], dtype=torch.long)
        self.register_buffer("last_cell", last_cell, persistent=False)
        self.n_tanh, self.n_linear, self.width, self.n_soft = n_tanh, n_linear, width, n_soft
        self.dim = offset  # the encoder's width
        self.raw_dim = n_tanh + n_linear + width * n_soft  # the generator's output width

    def forward(
        self, raw: torch.Tensor, tau: float, hard: bool, generator: torch.Generator | None
    ) -> torch.Tensor:
        """(B, raw_dim) in the model layout -> (B, dim) in the encoder's column order."""
        if hard:
            out, winners = self.sample(raw, generator)
            if winners is None:
                return out
            cells = winners * self.n_soft + torch.arange(self.n_soft, device=raw.device)
            return out.scatter_(1, self.cell_column[cells], 1.0)
        parts = self._plain(raw)
        if self.n_soft:
            probs = torch.softmax(self._gumbel_logits(raw, generator) / tau, dim=1)
            parts.append(probs.reshape(raw.shape[0], -1))
        return torch.cat(parts, dim=1).index_select(1, self.position)

    def sample(
        self, raw: torch.Tensor, generator: torch.Generator | None, out: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Hard sampling: the (B, dim) vector of the plain (tanh and linear) cells in the
        encoder's columns, and the (B, S) winner of each softmax span in span order (None without
        softmax spans), which the decoder takes as codes. The softmax spans' columns of the
        vector are left as they are (0 in a new vector): the decoder reads the winners, never a
        one-hot (``forward`` with ``hard`` writes one). ``out``: a (B, dim) tensor to write the
        plain cells into (the caller's zeros, e.g. rows of one array for every batch)."""
        if out is None:
            out = raw.new_zeros(raw.shape[0], self.dim)
        out.index_copy_(1, self.plain_column, torch.cat(self._plain(raw), dim=1))
        if not self.n_soft:
            return out, None
        return out, self._winners(raw, generator)

    def _winners(self, raw: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """(B, S): a draw from each softmax span's categorical, by inverse CDF.

        One uniform per span and row, against the span's cumulative (unnormalised) softmax:
        the winner is the first cell whose cumulative sum exceeds ``u * total``. The same
        distribution as Gumbel-max (which training's relaxation needs), for S uniforms per row
        instead of W * S and two logarithms each: 4096 rows of 30 spans of 6 cells took ~5 ms
        instead of ~12 ms (noise, maximum, one-hot), 1 thread.
        """
        logits = raw[:, self.n_tanh + self.n_linear :].reshape(-1, self.width, self.n_soft)
        logits = logits + self.bias  # padding cells: -inf, so exp gives them exactly 0
        cumulative = logits.sub_(logits.amax(1, keepdim=True)).exp_().cumsum_(1)
        uniform = torch.rand(
            raw.shape[0], self.n_soft, generator=generator, device=raw.device, dtype=raw.dtype
        )
        threshold = uniform.mul_(cumulative[:, -1])  # in [0, total)
        # the number of cells whose cumulative sum is <= the threshold is the winner's place;
        # capped at the span's last live cell, should rounding put u * total on the total
        below = (cumulative <= threshold.unsqueeze(1)).sum(1)
        return torch.minimum(below, self.last_cell)

    def _plain(self, raw: torch.Tensor) -> list[torch.Tensor]:
        n_plain = self.n_tanh + self.n_linear
        return [torch.tanh(raw[:, : self.n_tanh]), raw[:, self.n_tanh : n_plain]]

    def _gumbel_logits(self, raw: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """The (B, W, S) softmax grid's logits plus Gumbel(0, 1) noise."""
        logits = raw[:, self.n_tanh + self.n_linear :].reshape(-1, self.width, self.n_soft)
        logits = logits + self.bias
        uniform = torch.rand(
            logits.shape, generator=generator, device=raw.device, dtype=raw.dtype
        ).clamp_(1e-10, 1 - 1e-7)
        return logits - uniform.log_().neg_().log_()


# -- training ---------------------------------------------------------------------------------
class VectorGANTrainer(GANTrainerState):
    """One optimizer step at a time; implements :class:`augment.core.train.Trainer`.

    Data-parallel when a ``torch.distributed`` process group is up (see :mod:`augment.core.ddp`).
    """

    def __init__(
        self,
        model: VectorCGAN,
        encoded: np.ndarray,
        class_index: np.ndarray,
        train: TrainSettings,
        device: torch.device,
    ) -> None:
        self.model, self.train, self.device = model, train, device
        # bf16 on CUDA under "auto"; never on a CPU unless asked (tiny matrices: no gain)
        self.amp_dtype = autocast_dtype(device, train.precision, cpu_bf16_pays=False)
        settings = model.settings
        self.batch = max(settings.pac, train.batch_size // settings.pac * settings.pac)
        # The first weights of both networks come from one generator seeded with the seed (the
        # numbers torch.manual_seed(seed) gave them), never from torch's global one: units and
        # jobs may train side by side in threads.
        init_rng = torch.Generator().manual_seed(train.seed)
        model.build(device, init_rng)
        self.critic = build(
            lambda: Critic(
                model.encoder.output_dim + model.n_classes,
                settings.discriminator_dims,
                settings.pac,
            ),
            init_rng,
        ).to(device)
        # Fused Adam updates every parameter in one kernel call (measured: a step a third faster
        # than torch's per-tensor loop on these small networks); LeanAdam also skips most of the
        # Python bookkeeping around that call (see augment.core.optim).
        self.generator_params = list(model.generator.parameters())
        self.opt_g = LeanAdam(self.generator_params, lr=train.lr, betas=train.betas)
        self.opt_d = LeanAdam(self.critic.param_list, lr=train.lr, betas=train.betas)
        # Under torchrun the generator's backward is averaged by its DDP wrapper; the critic's
        # hand-made gradients are averaged explicitly. Every rank built the same weights from the
        # same seed above.
        self.ddp_generator = ddp.wrap(model.generator)
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
        self.averager = EMA(model.ema, model.generator, settings.ema_decay)

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

    def penalty_blend(self, real_in: torch.Tensor, fake_in: torch.Tensor) -> torch.Tensor:
        """Random blends of the real and fake packs: one mixing weight per pack of pac rows."""
        pac = self.model.settings.pac
        mix = torch.rand(real_in.shape[0] // pac, 1, 1, generator=self.rng, device=self.device)
        return torch.lerp(
            fake_in, real_in, mix.expand(-1, pac, real_in.shape[1]).reshape(real_in.shape)
        )

    @property
    def penalty_weight(self) -> float:
        """WGAN-GP's weight, scaled by gp_every for the lazy penalty."""
        return self.model.settings.gp_weight * self.model.settings.gp_every

    def critic_gradients(
        self, real_in: torch.Tensor, fake_in: torch.Tensor, penalty: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Set the critic's gradients for one batch (averaged over ranks under torchrun).

        With ``penalty``, WGAN-GP's gradient penalty at :meth:`penalty_blend` points, weighted
        :attr:`penalty_weight`. Returns (Wasserstein estimate, unweighted penalty or None).
        """
        blend = self.penalty_blend(real_in, fake_in) if penalty else None
        result = critic_gradients(self.critic, real_in, fake_in, blend, self.penalty_weight)
        ddp.average_gradients(self.critic.param_list)
        return result

    def train_step(self, step: int) -> dict[str, float]:
        self.model.generator.train()
        settings = self.model.settings
        # Draw the real rows and generate the fakes for all critic steps in one go: one generator
        # pass instead of critic_steps of them.
        n_critic, batch = self.train.critic_steps, self.batch
        reals, conds = self._real_batch(n_critic)
        with torch.no_grad(), autocast_to(self.device, self.amp_dtype):
            fakes = self._fake(conds)
        reals_in = torch.cat([reals, conds], dim=1)  # (n_critic * B, D + classes)
        fakes_in = torch.cat([fakes.float(), conds], dim=1)
        for inner in range(n_critic):
            part = slice(inner * batch, (inner + 1) * batch)
            # Lazy penalty (as StyleGAN2 does for R1): every gp_every-th critic step.
            penalize = (step * n_critic + inner) % settings.gp_every == 0
            wasserstein, penalty = self.critic_gradients(reals_in[part], fakes_in[part], penalize)
            if penalty is not None:
                self.last_penalty = float(penalty)
            self.opt_d.lean_step()

        _, cond = self._real_batch()
        with autocast_to(self.device, self.amp_dtype):
            fake = self._fake(cond).float()
        # The critic's gradient with respect to the fake rows, by hand; autograd carries it back
        # through the generator only (DDP averages the generator's gradients).
        mean_score, d_rows = critic_score_gradient(self.critic, torch.cat([fake.detach(), cond], 1))
        self.opt_g.zero_grad(set_to_none=True)
        fake.backward(-d_rows[:, : fake.shape[1]])  # the generator minimises -mean score
        self.opt_g.lean_step()
        self.averager.update(step)
        loss_d = float(-wasserstein)
        if penalty is not None:  # the last critic step's loss, as it was optimised
            loss_d += self.penalty_weight * float(penalty)
        return {
            "loss_d": loss_d,
            "loss_g": float(-mean_score),
            "wasserstein": float(wasserstein),
            "gp": self.last_penalty,
        }

    def _stateful(self) -> dict[str, Any]:
        return {
            "generator": self.model.generator,
            "ema": self.model.ema,
            "critic": self.critic,
            "opt_g": self.opt_g,
            "opt_d": self.opt_d,
        }


# -- fit / sample wrapper ---------------------------------------------------------------------
class VectorCGAN:
    """A fitted codec + generator for a fixed list of classes (all of them, or one per_class).

    A kind subclasses it to name its codec (``codec_type``, whose ``from_state_dict`` loads it);
    ``sample`` returns what the codec's ``inverse_transform`` makes (rows of a table, codes).
    """

    codec_type: ClassVar[Any]

    def __init__(self, encoder: Codec, classes: Sequence[Any], settings: GANSettings) -> None:
        self.encoder = encoder
        self.classes = list(classes)
        self.settings = settings
        self.generator: Generator | None = None  # trained (None once loaded: only the EMA is saved)
        self.ema: Generator | None = None  # samples
        self.device = torch.device("cpu")

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def build(self, device: torch.device, init_rng: torch.Generator | None) -> None:
        """The networks on ``device``, their first weights drawn from ``init_rng`` (``None``:
        uninitialised, for a state dict to fill; see :func:`augment.core.weights.build`)."""
        settings = self.settings
        self.device = device
        self.activation = SpanActivation(self.encoder.spans).to(device)
        self.generator = build(
            lambda: Generator(
                settings.noise_dim + self.n_classes,
                settings.generator_dims,
                self.activation.raw_dim,
            ),
            init_rng,
        ).to(device)
        self.ema = copy.deepcopy(self.generator).eval().requires_grad_(False)

    def make_trainer(
        self, frame: Any, labels: Sequence[Any], train: TrainSettings, device: torch.device
    ) -> VectorGANTrainer:
        """The trainer for ``frame`` (items the codec takes) with ``labels`` among ``self.classes``."""
        lookup = {c: i for i, c in enumerate(self.classes)}
        class_index = np.array([lookup[c] for c in labels], dtype=np.int64)
        encoded = self.encoder.transform(frame)
        return VectorGANTrainer(self, encoded, class_index, train, device)

    @torch.no_grad()
    def sample(self, label: Any, n_rows: int, seed: int, batch_size: int = 4096) -> Any:
        """Exactly ``n_rows`` items of class ``label`` (seeded by ``seed`` and the class), as the
        codec's ``inverse_transform`` makes them."""
        assert self.ema is not None, "fit or load the model before sampling"
        self.ema.eval()
        cls = self.classes.index(label)
        rng = torch.Generator(device=self.device).manual_seed(class_seed(seed, cls))
        cond_row = torch.zeros(1, self.n_classes, device=self.device)
        cond_row[0, cls] = 1.0
        network = sampling_forward(self.ema)
        # every batch writes its rows of one array (no concatenation at the end); the softmax
        # spans' columns stay 0, the decoder takes the winners (the codes it would otherwise
        # argmax for)
        encoded = torch.zeros(n_rows, self.encoder.output_dim, device=self.device)
        n_soft = self.activation.n_soft
        codes = torch.empty(n_rows, n_soft, dtype=torch.long, device=self.device)
        for start in range(0, n_rows, batch_size):
            size = min(batch_size, n_rows - start)
            z = torch.randn(size, self.settings.noise_dim, generator=rng, device=self.device)
            z = z * self.settings.truncation
            with autocast(self.device):
                raw = network(torch.cat([z, cond_row.expand(size, -1)], dim=1))
            rows = slice(start, start + size)
            _, won = self.activation.sample(raw.float(), rng, out=encoded[rows])
            if won is not None:
                codes[rows] = won
        return self.encoder.inverse_transform(
            encoded.cpu().numpy(), codes.cpu().numpy() if n_soft else None
        )

    def state_dict(self) -> dict[str, Any]:
        assert self.ema is not None
        return {
            "classes": list(self.classes),
            "settings": {
                k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self.settings).items()
            },
            "encoder": self.encoder.state_dict(),
            # the EMA generator, the one that samples
            "generator": {k: v.detach().cpu() for k, v in self.ema.state_dict().items()},
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, Any], device: torch.device) -> VectorCGAN:
        settings = GANSettings(**state["settings"])
        codec = cls.codec_type.from_state_dict(state["encoder"])
        model = cls(codec, state["classes"], settings)
        model.build(device, init_rng=None)
        model.ema.load_state_dict(state["generator"])
        model.generator = None  # only the EMA generator is saved; it is what samples
        return model
