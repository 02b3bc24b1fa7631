"""Images through the one engine: the core conditional GAN over autoencoder codes, the
neighbour filter, the moment map and partners of augment.core.vectors."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from augment import ImageGANOverSampler
from augment.core import vectors
from augment.core.train import TrainingLoop
from augment.image.choice import ALL_RECIPES, choose_recipe
from augment.image.config import ImageModelConfig
from augment.image.latent import LatentSettings, fit_latent_bank
from augment.image.synthesizer import ImageSynthesizer, Recipe, image_synthesizer_from_payload
from tests.conftest import small_digits

CPU = torch.device("cpu")
SETTINGS = LatentSettings(size=8, channels=1, latent_dim=8, width=8, steps=30, batch_size=32)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def digits():
    return small_digits((60, 15, 1))


@pytest.fixture(scope="module")
def bank(digits):
    images, labels = digits
    return fit_latent_bank(
        images, labels.tolist(), [0, 1, 2], SETTINGS, seed=0, device=CPU, gan_steps=30
    )


def test_the_code_gan_is_the_core_gan_trained_on_every_class(bank):
    from augment.core.cgan import VectorCGAN

    gan = bank.codes.gan
    assert isinstance(gan, VectorCGAN) and gan.classes == [0, 1, 2]
    assert bank.codes.space.points.shape == (76, SETTINGS.latent_dim)
    codes = gan.sample(1, 9, seed=0)
    assert codes.shape == (9, SETTINGS.latent_dim) and codes.dtype == np.float32


def test_code_gan_images_are_exact_seeded_and_counted(bank):
    images, stats = bank.sample_gan(1, 12, seed=5)
    assert images.shape == (12, 8, 8, 1) and images.dtype == np.uint8
    assert np.array_equal(images, bank.sample_gan(1, 12, seed=5)[0])
    assert not np.array_equal(images, bank.sample_gan(1, 12, seed=6)[0])
    # three draws per kept code, the best third kept; every kept code moved by the moment map
    assert stats == {"dropped": 24, "moved": 12}
    plain, plain_stats = bank.sample_gan(1, 12, 5, filter_generated=False, match_moments=False)
    assert plain_stats == {"dropped": 0, "moved": 0} and not np.array_equal(plain, images)


def test_the_filter_keeps_codes_among_their_class(bank):
    """Kept codes have at least the neighbour share of the codes drawn without the filter."""
    table = bank.codes
    drawn = table.codec.transform(table.gan.sample(1, 300, seed=1))
    share = table.space.neighbour_share(drawn, 1)
    kept = share[vectors.best_share(share, 100)]
    assert kept.mean() >= share.mean()
    assert kept.min() >= np.sort(share)[-100]


def test_code_mix_splits_each_class_and_reports_origin(bank):
    synth = ImageSynthesizer([], [0, 1, 2], bank=bank, recipe=Recipe.parse("code-mix+warp"))
    images, labels = synth.sample({1: 11, 2: 4}, seed=0)
    assert images.shape == (15, 8, 8, 1) and np.bincount(labels).tolist() == [0, 11, 4]
    assert synth.origin["anchored"] == {1: 6, 2: 2}  # round(n / 2) between real codes
    assert synth.origin["gan"] == {1: 5, 2: 2}
    assert synth.origin["dropped"] == {1: 10, 2: 4}
    # class 2 has one real image: no covariance to match, its GAN codes stay as drawn
    assert synth.origin["moved"] == {1: 5, 2: 0}
    assert synth.origin_totals() == {"anchored": 8, "gan": 7, "dropped": 14, "moved": 5}
    synth.reset_origin()
    assert synth.origin_totals() == {"anchored": 0, "gan": 0, "dropped": 0, "moved": 0}


def test_a_code_recipe_needs_the_code_gan(digits):
    images, labels = digits
    plain = fit_latent_bank(images, labels.tolist(), [1], SETTINGS, seed=0, device=CPU)
    assert not plain.has_gan
    with pytest.raises(ValueError, match="code GAN"):
        ImageSynthesizer([], [0, 1, 2], bank=plain, recipe=Recipe("code-mix"))


def test_save_load_and_pickle_give_the_same_images(bank, tmp_path):
    synth = ImageSynthesizer([], [0, 1, 2], bank=bank, recipe=Recipe("code-mix"))
    expected, _ = synth.sample({1: 9}, seed=2)
    synth.save(tmp_path / "model.pt")
    from augment.core.persist import load_payload

    payload = load_payload(tmp_path / "model.pt", expected_format=synth.format)
    again = image_synthesizer_from_payload(payload)
    assert again.recipe == Recipe("code-mix") and again.bank.has_gan
    assert np.array_equal(again.sample({1: 9}, seed=2)[0], expected)
    thawed = pickle.loads(pickle.dumps(synth))
    assert np.array_equal(thawed.sample({1: 9}, seed=2)[0], expected)


def test_the_code_gan_trains_through_the_shared_loop_and_resumes(digits, tmp_path):
    images, labels = digits
    seen: list[int] = []
    loop = TrainingLoop(
        checkpoint_path=tmp_path / "code-gan.pt",
        checkpoint_every=10,
        callbacks=[lambda step, losses: seen.append(step)],
    )
    first = fit_latent_bank(
        images, labels.tolist(), [1], SETTINGS, seed=0, device=CPU, gan_steps=20, loop=loop
    )
    assert seen == list(range(1, 21)) and (tmp_path / "code-gan.pt").exists()
    result = first.codes.fit_gan(
        20, 0, CPU, loop=TrainingLoop(checkpoint_path=tmp_path / "code-gan.pt")
    )
    assert result.resumed_from == 20  # the finished checkpoint: nothing left to train


def test_choice_refits_the_code_gan_on_the_inner_training_codes(digits, bank):
    images, labels = digits
    synth = ImageSynthesizer([], [0, 1, 2], bank=bank, recipe=Recipe("latent"))
    choice = choose_recipe(
        synth,
        images,
        labels,
        3,
        candidates=[Recipe("latent"), Recipe("code-mix")],
        epochs=1,
        seed=0,
    )
    assert set(choice.scores) == {"latent", "code-mix"}
    assert choice.inner_train + choice.inner_validation == len(images)
    # the synthesizer's own bank still holds every code and the GAN trained on all of them
    assert len(bank.codes.space.points) == len(images)


def test_config_and_sampler_offer_every_recipe():
    """Every recipe the choice knows is a valid config value, a valid sampler parameter and a
    recipe that parses back to its name."""
    assert {"code-mix+warp", "code-gan", "latent+warp", "gan"} <= set(ALL_RECIPES)
    for name in ALL_RECIPES:
        assert ImageModelConfig(recipe=name, recipe_candidates=[name]).recipe == name
        assert Recipe.parse(name).name == name
        ImageGANOverSampler(recipe=name)._validate_params()


def test_sampler_with_a_code_recipe_trains_the_code_gan():
    images, labels = small_digits((60, 15, 2))  # a sampler refuses a class of one image
    sampler = ImageGANOverSampler(
        recipe="code-mix",
        autoencoder_steps=10,
        code_gan_steps=10,
        latent_dim=8,
        random_state=0,
        cpu_threads=1,
    )
    new_x, new_y = sampler.fit_resample(images, labels)
    assert np.bincount(new_y).tolist() == [60, 60, 60]
    assert sampler.synthesizer_.units == [] and sampler.synthesizer_.bank.has_gan
    made = [Recipe("code-mix").split(n) for n in (60 - 15, 60 - 2)]  # (latent, code GAN, pixel)
    assert sampler.synthesizer_.origin_totals()["gan"] == sum(m[1] for m in made) == 52
    assert sampler.synthesizer_.origin_totals()["anchored"] == sum(m[0] for m in made)


def test_filter_and_moment_map_can_be_turned_off_and_stay_off_after_load(tmp_path):
    images, labels = small_digits((60, 15, 2))
    sampler = ImageGANOverSampler(
        recipe="code-gan",
        autoencoder_steps=10,
        code_gan_steps=10,
        latent_dim=8,
        random_state=0,
        cpu_threads=1,
        filter_generated=False,
        match_moments=False,
    )
    sampler.fit_resample(images, labels)
    totals = sampler.synthesizer_.origin_totals()
    assert totals["gan"] == 45 + 58 and totals["dropped"] == totals["moved"] == 0
    sampler.save(tmp_path / "plain.pt")
    loaded = ImageGANOverSampler.load(tmp_path / "plain.pt")
    table = loaded.synthesizer_.bank.codes
    assert table.filter_generated is False and table.match_moments is False
    loaded.synthesizer_.sample({1: 6}, seed=0)
    assert loaded.synthesizer_.origin_totals()["dropped"] == 0


def test_recipes_that_differ_by_the_warp_share_their_draws(bank):
    """The choice draws a source's images once and warps a copy: exactly what each recipe's
    own sampling gives, so judging both costs one draw."""
    from augment.image.choice import candidate_images

    plan = {0: 3, 1: 600, 2: 40}  # class 1 spans two sampling batches (their own seeds)
    recipes = [Recipe("code-mix", True), Recipe("code-mix"), Recipe("latent")]
    drawn = candidate_images(recipes, [], [0, 1, 2], "label", bank, plan, seed=4)
    assert set(drawn) == {"code-mix+warp", "code-mix", "latent"}
    for recipe in recipes:
        alone = ImageSynthesizer([], [0, 1, 2], bank=bank, recipe=recipe).sample(plan, seed=4)
        images, labels = drawn[recipe.name]
        assert np.array_equal(images, alone[0]) and np.array_equal(labels, alone[1])
    assert not np.array_equal(drawn["code-mix+warp"][0], drawn["code-mix"][0])


def test_the_choice_scores_the_same_whatever_the_threads_around_it(digits, bank):
    """The judges run side by side on one torch thread each: the same scores as a run made
    with every thread the process has, and the caller's thread count is given back."""
    images, labels = digits
    synth = ImageSynthesizer([], [0, 1, 2], bank=bank, recipe=Recipe("latent"))
    candidates = [Recipe("code-mix", True), Recipe("code-mix")]
    scores = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        scores.append(choose_recipe(synth, images, labels, 3, candidates=candidates, epochs=1))
        assert torch.get_num_threads() == threads
    assert scores[0].scores == scores[1].scores
