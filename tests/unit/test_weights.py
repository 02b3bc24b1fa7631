"""augment.core.weights.build: the first weights torch's constructors draw after
``torch.manual_seed(seed)``, bit for bit, from a generator of the caller's own."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from augment.core.cgan import Critic, Generator
from augment.core.weights import build
from augment.image.cgan import ImageDiscriminator, ImageGANSettings, ImageGenerator
from augment.image.classifier import SmallCNN
from augment.image.latent import ImageAutoencoder, LatentSettings

NETWORKS = {
    "tabular generator": lambda: Generator(40, (16, 24), 30),
    "tabular critic": lambda: Critic(33, (16, 8), 4),
    "image generator 8 px": lambda: ImageGenerator(ImageGANSettings(size=8, width=4), 3),
    "image generator 28 px rgb": lambda: ImageGenerator(
        ImageGANSettings(size=28, channels=3, width=8), 5
    ),
    "image discriminator 28 px": lambda: ImageDiscriminator(ImageGANSettings(size=28, width=8), 4),
    "autoencoder 28 px": lambda: ImageAutoencoder(LatentSettings(size=28, width=8)),
    "autoencoder 128 px rgb": lambda: ImageAutoencoder(
        LatentSettings(size=128, channels=3, width=4)
    ),
    "classifier 8 px": lambda: SmallCNN(1, 8, 3, width=8),
    "classifier 28 px rgb": lambda: SmallCNN(3, 28, 10),
}


def _under_global_seed(make, seed: int) -> dict[str, torch.Tensor]:
    """What the networks were built as before: the constructor after torch.manual_seed."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return make().state_dict()


@pytest.mark.parametrize("name", NETWORKS)
def test_build_gives_the_weights_of_the_global_generator_seeded_alike(name):
    make = NETWORKS[name]
    expected = _under_global_seed(make, 17)
    before = torch.get_rng_state()
    built = build(make, torch.Generator().manual_seed(17)).state_dict()
    assert torch.equal(torch.get_rng_state(), before), "build moved torch's global generator"
    assert list(built) == list(expected)
    for key, value in expected.items():
        assert torch.equal(built[key], value), f"{name}: {key} differs"


def test_networks_built_in_a_sequence_share_one_stream():
    # the tabular trainer draws its generator and then its critic from one generator, as the
    # constructors did from the global one
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(4)
        first, second = NETWORKS["tabular generator"](), NETWORKS["tabular critic"]()
    weights = torch.Generator().manual_seed(4)
    again = (
        build(NETWORKS["tabular generator"], weights),
        build(NETWORKS["tabular critic"], weights),
    )
    for reference, built in zip((first, second), again, strict=True):
        for key, value in reference.state_dict().items():
            assert torch.equal(built.state_dict()[key], value)


def test_a_critic_built_on_the_meta_device_keeps_its_parameter_lists():
    critic = build(NETWORKS["tabular critic"], torch.Generator().manual_seed(0))
    assert all(p.device.type == "cpu" for p in critic.param_list)
    assert [id(p) for p in critic.param_list] == [id(p) for p in critic.parameters()]
    assert [id(layer) for layer in critic.linears] == [
        id(m) for m in critic.modules() if isinstance(m, nn.Linear)
    ]


def test_without_a_generator_the_network_takes_a_state_dict():
    reference = build(NETWORKS["image discriminator 28 px"], torch.Generator().manual_seed(1))
    empty = build(NETWORKS["image discriminator 28 px"], None)
    empty.load_state_dict(reference.state_dict())
    for key, value in reference.state_dict().items():
        assert torch.equal(empty.state_dict()[key], value)


def test_a_layer_it_cannot_draw_is_refused():
    with pytest.raises(TypeError, match="PReLU"):
        build(lambda: nn.Sequential(nn.Linear(3, 2), nn.PReLU()), torch.Generator())


def test_training_dropout_needs_a_generator():
    network = SmallCNN(1, 8, 3, width=4).train()
    x = torch.zeros(2, 1, 8, 8)
    with pytest.raises(ValueError, match="generator"):
        network(x)
    assert network(x, torch.Generator().manual_seed(0)).shape == (2, 3)
