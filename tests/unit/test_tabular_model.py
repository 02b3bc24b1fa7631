"""The tabular GAN's pieces: the activation layout, the critic's hand-made gradients and
the EMA generator that samples."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from augment.core.cgan import (
    Critic,
    GANSettings,
    Generator,
    Span,
    SpanActivation,
    TrainSettings,
    critic_gradients,
    critic_score_gradient,
    sampling_forward,
)
from augment.tabular.cgan import TabularCGAN
from augment.tabular.schema import infer_schema
from augment.tabular.transform import TabularEncoder

SPANS = [
    Span(1, "tanh"),
    Span(3, "softmax"),
    Span(2, "linear"),
    Span(1, "tanh"),
    Span(5, "softmax"),
    Span(1, "softmax"),
    Span(1, "linear"),
    Span(2, "softmax"),
]


def _blocks(spans):
    offset = 0
    for span in spans:
        yield span, slice(offset, offset + span.dim)
        offset += span.dim


def test_activation_puts_every_column_where_the_encoder_expects_it():
    act = SpanActivation(SPANS)
    assert act.dim == sum(span.dim for span in SPANS)
    # 2 tanh + 3 linear + 4 softmax spans padded to the widest (5)
    assert act.raw_dim == 2 + 3 + 5 * 4
    raw = torch.randn(64, act.raw_dim)
    soft = act(raw, tau=0.5, hard=False, generator=torch.Generator().manual_seed(0))
    hard = act(raw, tau=0.5, hard=True, generator=torch.Generator().manual_seed(0))
    assert soft.shape == hard.shape == (64, act.dim)

    # tanh and linear columns are the raw values at their model-layout positions
    position = act.position
    for span, cols in _blocks(SPANS):
        source = raw[:, position[cols]]
        if span.activation == "tanh":
            torch.testing.assert_close(soft[:, cols], torch.tanh(source))
        elif span.activation == "linear":
            torch.testing.assert_close(soft[:, cols], source)
        else:
            # a distribution over the span's own columns only: padding never takes mass
            torch.testing.assert_close(soft[:, cols].sum(1), torch.ones(64))
            assert torch.all(soft[:, cols] > 0)
            assert torch.equal(hard[:, cols].sum(1), torch.ones(64))
            assert set(hard[:, cols].unique().tolist()) <= {0.0, 1.0}
    # the positions are a permutation into the unpadded part of the model layout
    assert len(set(position.tolist())) == act.dim


def test_hard_sampling_scatters_what_the_one_hot_layout_gives():
    # The hard path draws each span's winner by inverse CDF (one uniform per span and row) and
    # writes the one-hot straight into the output; the reference draws the same uniforms, picks
    # per span with searchsorted on the normalised cumulative softmax, builds the one-hot grid in
    # the model layout and reorders it, as the soft path does.
    act = SpanActivation(SPANS)
    raw = torch.randn(256, act.raw_dim)
    hard = act(raw, tau=0.5, hard=True, generator=torch.Generator().manual_seed(3))

    generator = torch.Generator().manual_seed(3)
    n_plain = act.n_tanh + act.n_linear
    logits = raw[:, n_plain:].reshape(-1, act.width, act.n_soft)
    uniform = torch.rand(256, act.n_soft, generator=generator)
    winner = torch.zeros(256, act.n_soft, dtype=torch.long)
    dims = [span.dim for span in SPANS if span.activation == "softmax"]
    for s, dim in enumerate(dims):
        probs = torch.softmax(logits[:, :dim, s].double(), dim=1)
        cumulative = probs.cumsum(1)
        for row in range(256):
            place = torch.searchsorted(cumulative[row], uniform[row, s].double(), right=True)
            winner[row, s] = min(int(place), dim - 1)
    grid = torch.nn.functional.one_hot(winner, act.width).transpose(1, 2).float()
    plain = [torch.tanh(raw[:, : act.n_tanh]), raw[:, act.n_tanh : n_plain]]
    expected = torch.cat([*plain, grid.reshape(256, -1)], dim=1).index_select(1, act.position)
    assert torch.equal(hard, expected)

    # sample() gives the same winners and the plain cells; the softmax columns stay 0
    vector, winners = act.sample(raw, torch.Generator().manual_seed(3))
    assert torch.equal(winners, winner)
    for span, cols in _blocks(SPANS):
        if span.activation == "softmax":
            assert not vector[:, cols].any()
        else:
            assert torch.equal(vector[:, cols], hard[:, cols])


def test_hard_sampling_draws_each_span_from_its_softmax():
    # inverse-CDF winners follow the softmax probabilities (what Gumbel-max draws from): a
    # chi-square test per span over 200,000 rows of fixed logits, and padding never wins
    spans = [Span(6, "softmax"), Span(3, "softmax"), Span(1, "softmax"), Span(2, "tanh")]
    act = SpanActivation(spans)
    logits = torch.tensor([[2.0, 0.5, -1.0, 0.0, 1.5, -3.0], [0.3, -0.2, 1.0, 0, 0, 0]])
    raw = torch.zeros(200_000, act.raw_dim)
    grid = raw[:, act.n_tanh + act.n_linear :].view(-1, act.width, act.n_soft)
    grid[:, :, 0] = logits[0]
    grid[:, :, 1] = logits[1]  # cells 3-5 are padding: -inf bias
    grid[:, :, 2] = 5.0  # one cell, padding after it
    _, winners = act.sample(raw, torch.Generator().manual_seed(0))
    for s, dim in enumerate([6, 3, 1]):
        counts = np.bincount(winners[:, s].numpy(), minlength=act.width)
        assert counts[dim:].sum() == 0
        expected = torch.softmax(logits[s, :dim].double() if s < 2 else torch.zeros(1), 0)
        expected = expected.numpy() * len(raw)
        chi2 = ((counts[:dim] - expected) ** 2 / expected).sum()
        # 99.9% quantile of chi-square with dim - 1 degrees of freedom (0 for one cell)
        assert chi2 <= {6: 20.52, 3: 13.82, 1: 0.0}[dim] + 1e-9, (s, counts, expected)


def test_the_sampling_network_is_the_generator_in_evaluation_mode():
    # BatchNorm folded into the linear layers: the same function, up to float rounding
    torch.manual_seed(0)
    generator = Generator(10, (16, 8), 12)
    for block in generator.body:  # statistics and affine terms away from their defaults
        block.norm.running_mean.normal_()
        block.norm.running_var.uniform_(0.5, 2.0)
        block.norm.weight.data.normal_()
        block.norm.bias.data.normal_()
    generator.eval()
    x = torch.randn(64, 10)
    with torch.no_grad():
        torch.testing.assert_close(sampling_forward(generator)(x), generator(x))


def test_hard_sampling_follows_the_logits():
    act = SpanActivation([Span(4, "softmax")])
    raw = torch.full((200, act.raw_dim), -30.0)
    raw[:, 2] = 30.0  # column 2 of the span dominates any Gumbel noise
    hard = act(raw, tau=0.2, hard=True, generator=torch.Generator().manual_seed(1))
    assert torch.equal(hard.argmax(1), torch.full((200,), 2))


@pytest.fixture
def small_model():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=120),
            "kind": rng.choice(["a", "b", "c"], size=120),
            "label": np.repeat(["p", "q"], [90, 30]),
        }
    )
    schema = infer_schema(frame, "label")
    encoder = TabularEncoder(3).fit(frame[schema.names], schema)

    def fit(ema_decay: float) -> TabularCGAN:
        model = TabularCGAN(encoder, ["p", "q"], GANSettings(ema_decay=ema_decay))
        trainer = model.make_trainer(
            frame[schema.names],
            frame["label"].tolist(),
            TrainSettings(steps=8, batch_size=32),
            torch.device("cpu"),
        )
        for step in range(8):
            trainer.train_step(step)
        return model

    return fit


def test_the_ema_generator_samples(small_model):
    averaged = small_model(0.95)
    live, ema = averaged.generator.state_dict(), averaged.ema.state_dict()
    assert not all(torch.equal(live[k], ema[k]) for k in live)  # an average lags the weights
    rows = averaged.sample("q", 50, seed=3)
    with torch.no_grad():  # scrambling the trained weights leaves the samples alone
        for parameter in averaged.generator.parameters():
            parameter.normal_()
    pd.testing.assert_frame_equal(averaged.sample("q", 50, seed=3), rows)

    # what is saved is the EMA: a reloaded model samples the same rows
    reloaded = TabularCGAN.from_state_dict(averaged.state_dict(), torch.device("cpu"))
    assert reloaded.generator is None
    pd.testing.assert_frame_equal(reloaded.sample("q", 50, seed=3), rows)


def test_ema_decay_zero_samples_the_trained_weights(small_model):
    plain = small_model(0.0)
    live, ema = plain.generator.state_dict(), plain.ema.state_dict()
    for key in live:
        torch.testing.assert_close(ema[key], live[key], rtol=0, atol=0)


@pytest.mark.parametrize("hidden", [(16,), (24, 16), (8, 8, 8)])
def test_the_critics_hand_made_gradients_equal_autograds(hidden):
    torch.manual_seed(0)
    pac, features, packs = 4, 7, 6
    critic = Critic(features, hidden, pac)
    real, fake, blend = torch.randn(3, packs * pac, features).unbind(0)
    params = list(critic.parameters())

    # the reference: WGAN-GP through autograd, with a double backward for the penalty
    blend_leaf = blend.clone().requires_grad_(True)
    (input_grad,) = torch.autograd.grad(critic(blend_leaf).sum(), blend_leaf, create_graph=True)
    penalty = ((input_grad.reshape(packs, -1).norm(dim=1) - 1) ** 2).mean()
    wasserstein = critic(real).mean() - critic(fake).mean()
    expected = torch.autograd.grad(-wasserstein + 10 * penalty, params, retain_graph=True)

    got_wasserstein, got_penalty = critic_gradients(critic, real, fake, blend, 10.0)
    torch.testing.assert_close(got_wasserstein, wasserstein.detach())
    torch.testing.assert_close(got_penalty, penalty.detach())
    for param, want in zip(params, expected, strict=True):
        torch.testing.assert_close(param.grad, want)
    # the penalty is in there: without it the weight gradients differ
    critic_gradients(critic, real, fake)
    assert not torch.allclose(params[0].grad, expected[0], atol=1e-4)
    plain = torch.autograd.grad(-wasserstein, params)
    for param, want in zip(params, plain, strict=True):
        torch.testing.assert_close(param.grad, want)

    # the generator's side: d mean score / d rows
    rows = fake.clone().requires_grad_(True)
    (want,) = torch.autograd.grad(critic(rows).mean(), rows)
    mean_score, d_rows = critic_score_gradient(critic, fake)
    torch.testing.assert_close(mean_score, critic(fake).mean().detach())
    torch.testing.assert_close(d_rows, want)
