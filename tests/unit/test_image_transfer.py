"""Transfer across classes for images: the shared autoencoder, recipes and the validated choice."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from augment import ImageGANOverSampler
from augment.core.choice import balanced_accuracy
from augment.core.errors import DataError
from augment.image.cgan import ImageCGAN, ImageGANSettings
from augment.image.choice import (
    DEFAULT_CANDIDATES,
    candidates_for,
    choose_recipe,
    inner_split,
    judging_rounds,
    pick_in_rounds,
)
from augment.image.classic import classic_augmentation, dark_frames, edge_fill, warp_images
from augment.image.classifier import train_classifier
from augment.image.latent import LatentBank, LatentSettings, fit_latent_bank, patchwork
from augment.image.synthesizer import (
    ImageSynthesizer,
    Recipe,
    image_synthesizer_from_payload,
)
from augment.image.validate import stacked_set, validate_images
from tests.conftest import small_digits

CPU = torch.device("cpu")
SETTINGS = LatentSettings(size=8, channels=1, latent_dim=8, width=8, steps=30, batch_size=32)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def digits():
    return small_digits((40, 12, 1))


@pytest.fixture(scope="module")
def bank(digits):
    images, labels = digits
    return fit_latent_bank(images, labels.tolist(), [0, 1, 2], SETTINGS, seed=0, device=CPU)


def test_bank_samples_exact_counts_reproducibly_and_not_copies(digits, bank):
    images, labels = digits
    first = bank.sample(1, 25, seed=3)
    assert first.shape == (25, 8, 8, 1) and first.dtype == np.uint8
    assert np.array_equal(first, bank.sample(1, 25, seed=3))
    assert not np.array_equal(first, bank.sample(1, 25, seed=4))
    real = images[labels == 1].reshape(12, -1)
    copies = (first.reshape(25, 1, -1) == real[None]).all(axis=2).any(axis=1)
    assert copies.mean() < 0.2  # a code between two parents, not one of them
    assert bank.sample(1, 0, seed=0).shape == (0, 8, 8, 1)


def test_a_class_of_one_image_still_gets_images(bank):
    assert bank.sample(2, 7, seed=0).shape == (7, 8, 8, 1)


def test_detail_keeps_images_closer_to_their_class(digits, bank):
    """The decoder's missing detail, given back, brings new images nearer the real ones."""
    images, labels = digits
    plain = fit_latent_bank(
        images,
        labels.tolist(),
        [1],
        LatentSettings(**{**SETTINGS.__dict__, "detail": False}),
        seed=0,
        device=CPU,
    )
    real = images[labels == 1].reshape(12, -1).astype(float)

    def nearest(new):
        flat = new.reshape(len(new), -1).astype(float)
        return np.sqrt(((flat[:, None] - real[None]) ** 2).sum(axis=2)).min(axis=1).mean()

    assert nearest(bank.sample(1, 60, seed=0)) < nearest(plain.sample(1, 60, seed=0))


def test_recipes_parse_and_refuse_unknown_names():
    assert Recipe.parse("mix+warp") == Recipe("mix", True)
    assert Recipe("latent").name == "latent" and Recipe("gan", True).name == "gan+warp"
    for bad in ("smote", "latent+flip"):
        with pytest.raises(ValueError):
            Recipe.parse(bad)


def _gan():
    model = ImageCGAN([0, 1, 2], ImageGANSettings(size=8, width=4, noise_dim=8))
    model.build(CPU, torch.Generator().manual_seed(0))
    return model


def test_mix_recipe_gives_exact_counts_and_survives_save_and_load(bank, tmp_path):
    synth = ImageSynthesizer([_gan()], [0, 1, 2], bank=bank, recipe=Recipe("mix", warp=True))
    images, labels = synth.sample({1: 9, 2: 4}, seed=0)
    assert images.shape == (13, 8, 8, 1) and labels.tolist() == [1] * 9 + [2] * 4
    synth.save(tmp_path / "m.pt")
    from augment.core.persist import load_payload

    again = image_synthesizer_from_payload(load_payload(tmp_path / "m.pt", synth.format), "cpu")
    assert again.recipe == Recipe("mix", True)
    assert np.array_equal(again.sample({1: 9, 2: 4}, seed=0)[0], images)


def test_a_recipe_needs_what_it_uses(bank):
    with pytest.raises(ValueError, match="needs a trained GAN"):
        ImageSynthesizer([], [0, 1, 2], bank=bank, recipe=Recipe("mix"))
    without_gan = ImageSynthesizer([], [0, 1, 2], bank=bank, recipe=Recipe("latent"))
    assert [r.name for r in candidates_for(without_gan)] == ["latent+warp", "latent"]
    with pytest.raises(DataError, match="none of the candidate recipes"):
        candidates_for(ImageSynthesizer([_gan()], [0, 1, 2]), ["latent"])


def test_inner_split_is_stratified_and_disjoint():
    index = np.array([0] * 20 + [1] * 4 + [2])
    train, held = inner_split(index, 3, 0.25, seed=0)
    assert not set(train) & set(held) and len(train) + len(held) == len(index)
    assert np.bincount(index[held], minlength=3).tolist() == [5, 1, 0]  # one image: all trains


def test_choice_scores_every_candidate_on_the_inner_split(digits, bank):
    images, labels = digits
    synth = ImageSynthesizer([_gan()], [0, 1, 2], bank=bank)
    with pytest.raises(DataError, match="fit_inner_gans"):
        choose_recipe(synth, images, labels, 3, epochs=1, seed=0)
    seen = []

    def fit_inner_gans(inner, inner_labels):
        seen.append((len(inner), sorted(set(inner_labels))))
        return [_gan()]

    choice = choose_recipe(
        synth, images, labels, 3, epochs=1, seed=0, fit_inner_gans=fit_inner_gans
    )
    # the GANs that judge are fitted on the inner training images only
    assert seen == [(len(images) - 13, [0, 1, 2])]
    assert set(choice.scores) == {"latent", "latent+warp", "mix", "mix+warp", "gan", "gan+warp"}
    # every recipe has its warp twin here: one round, in the order of preference, each later
    # candidate against the best so far by the margin and 1.645 tie spreads
    assert choice.not_judged == [] and len(choice.spreads) == 5
    truth = labels[inner_split(labels, 3, 0.25, seed=0)[1]]
    for name, answers in choice.answers.items():
        assert np.isclose(choice.scores[name], balanced_accuracy(truth, answers))
    best = "latent+warp"
    for name in ["latent", "mix+warp", "mix", "gan+warp", "gan"]:
        needed = max(0.01, 1.645 * choice.spreads[f"{best} vs {name}"])
        best = name if choice.scores[name] > choice.scores[best] + needed else best
    assert choice.recipe.name == best
    assert choice.inner_validation == 10 + 3 and choice.inner_train == len(images) - 13


def test_the_warp_is_judged_first_and_other_sources_only_where_it_lost():
    truth = np.repeat([0, 1], [30, 30])
    right, wrong = np.ones(60), np.zeros(60)
    half = np.r_[np.ones(30), np.zeros(30)]
    candidates = [Recipe.parse(n) for n in DEFAULT_CANDIDATES]
    assert DEFAULT_CANDIDATES == ("code-mix+warp", "latent", "code-mix")
    assert [[r.name for r in part] for part in judging_rounds(candidates)] == [
        ["code-mix+warp", "code-mix"],
        ["latent"],
    ]
    # no twins, or nothing but twins: one round
    assert judging_rounds([Recipe("latent"), Recipe("code-gan")])[1] == []
    assert judging_rounds([Recipe("latent", True), Recipe("latent")])[1] == []
    assert judging_rounds([Recipe("latent", True), Recipe("code-gan")])[1] == []
    # a warped recipe without its twin is judged with the warp, never after the warp lost
    mixed = [Recipe("latent", True), Recipe("latent"), Recipe("code-gan", True), Recipe("gan")]
    assert [[r.name for r in part] for part in judging_rounds(mixed)] == [
        ["latent+warp", "latent", "code-gan+warp"],
        ["gan"],
    ]

    def judge_with(table):
        rounds = []

        def judge(recipes):
            rounds.append([r.name for r in recipes])
            return {r.name: table[r.name] for r in recipes}

        return judge, rounds

    # the warp wins: images between real codes alone are never judged
    judge, rounds = judge_with({"code-mix+warp": right, "code-mix": half, "latent": right})
    best, answers, spreads = pick_in_rounds(candidates, judge, truth)
    assert best == "code-mix+warp" and rounds == [["code-mix+warp", "code-mix"]]
    assert set(answers) == {"code-mix+warp", "code-mix"} and list(spreads) == [
        "code-mix+warp vs code-mix"
    ]
    # the warp loses: the second round meets its winner in the candidates' order, `latent`
    # first, so `code-mix` stays only if it beats `latent` by more than 1.645 tie spreads
    judge, rounds = judge_with({"code-mix+warp": wrong, "code-mix": half, "latent": half})
    best, _, spreads = pick_in_rounds(candidates, judge, truth)
    assert best == "latent" and rounds == [["code-mix+warp", "code-mix"], ["latent"]]
    assert "latent vs code-mix" in spreads
    judge, _ = judge_with({"code-mix+warp": wrong, "code-mix": right, "latent": half})
    assert pick_in_rounds(candidates, judge, truth)[0] == "code-mix"
    close = half.copy()
    close[30] = 1  # one image more: inside a tie's spread, the preferred source stays
    judge, _ = judge_with({"code-mix+warp": wrong, "code-mix": close, "latent": half})
    assert pick_in_rounds(candidates, judge, truth)[0] == "latent"


def test_sampler_with_a_fixed_latent_recipe_trains_no_gan():
    images, labels = small_digits((40, 12, 3))  # a sampler refuses a class of one image
    sampler = ImageGANOverSampler(
        recipe="latent", autoencoder_steps=10, latent_dim=8, random_state=0, cpu_threads=1
    )
    X_res, y_res = sampler.fit_resample(images, labels)
    assert np.bincount(y_res).tolist() == [40, 40, 40]
    assert sampler.synthesizer_.units == [] and sampler.recipe_ == "latent"
    assert sampler.choice_ is None
    # only the classes that got new images keep their real images in the model
    assert sorted(sampler.synthesizer_.bank.anchors) == [1, 2]


def test_sampler_auto_reports_its_choice():
    images, labels = small_digits((40, 12, 3))
    sampler = ImageGANOverSampler(
        steps=3,
        width=4,
        noise_dim=8,
        batch_size=16,
        autoencoder_steps=10,
        choice_epochs=1,
        recipe_candidates=["latent", "gan"],
        random_state=0,
        cpu_threads=1,
    )
    sampler.fit_resample(images, labels)
    assert set(sampler.choice_["scores"]) == {"latent", "gan"}
    assert sampler.recipe_ == sampler.choice_["recipe"]
    with pytest.raises(DataError, match="recipe_candidates"):
        ImageGANOverSampler(recipe_candidates=["smote"]).fit_resample(images, labels)


def test_on_the_fly_augmentation_sees_every_batch_with_its_own_seed(digits):
    images, labels = digits
    seen = []

    def augment(batch, seed):
        seen.append((len(batch), seed))
        return warp_images(batch, seed)

    train_classifier(images, labels, 3, epochs=2, batch_size=32, seed=5, augment=augment)
    assert [n for n, _ in seen] == [32, 21] * 2
    assert len({s for _, s in seen}) == 4


def _validate_with_copies(digits, **options):
    """Validation where the synthetic images are copies of class 1's real ones."""
    images, labels = digits
    synthetic = np.concatenate([images[labels == 1]] * 2)
    report = validate_images(
        images,
        labels,
        images,
        labels,
        synthetic,
        np.ones(len(synthetic), dtype=np.int64),
        classes=[0, 1, 2],
        target_counts={1: 40, 2: 40},
        epochs=1,
        **options,
    )
    return report, len(images), synthetic


def test_validation_runs_the_stacked_arms(digits):
    report, _, _ = _validate_with_copies(digits)
    m = report.metrics
    for arm in ("classic", "stacked"):
        assert 0 <= m[f"{arm}/balanced_accuracy"] <= 1
    assert m["lift_stacked_vs_classic/balanced_accuracy"] == pytest.approx(
        m["stacked/balanced_accuracy"] - m["classic/balanced_accuracy"]
    )


def test_the_stacked_arm_can_take_other_images(digits):
    """A warped recipe's stacked arm gets its images before the warp: other images, same job."""
    images, labels = digits
    stacked = images[labels == 1][:5]
    report, n_real, synthetic = _validate_with_copies(
        digits, stacked_images=stacked, stacked_labels=np.ones(5, dtype=np.int64)
    )
    assert report.metrics["validation/rows/augmented"] == n_real + len(synthetic)
    assert report.metrics["validation/rows/stacked"] == n_real + 5
    # by default half of the top-up is synthetic and half copies of real images
    assert report.metrics["stacked/synthetic_share"] == pytest.approx(0.4)  # 2 of 5
    only, _, _ = _validate_with_copies(
        digits, stacked_images=stacked, stacked_labels=np.ones(5, dtype=np.int64), stack_share=1.0
    )
    assert only.metrics["stacked/synthetic_share"] == 1.0


def test_the_stacked_set_keeps_counts_and_fills_the_rest_with_real_copies():
    rng = np.random.default_rng(0)
    real = rng.integers(0, 100, size=(30, 4, 4, 1), dtype=np.uint8)
    labels = np.repeat([0, 1, 2], [20, 6, 4])
    fake = rng.integers(150, 256, size=(30, 4, 4, 1), dtype=np.uint8)  # told apart by value
    fake_labels = np.repeat([1, 2, 3], [14, 15, 1])  # class 3 has no real image to copy

    x, y, copies = stacked_set(real, labels, fake, fake_labels, share=0.5, seed=3)
    np.testing.assert_array_equal(x[:30], real)
    assert np.bincount(y).tolist() == [20, 20, 19, 1]  # real + synthetic counts
    added, added_y = x[30:], y[30:]
    is_fake = added.min(axis=(1, 2, 3)) >= 150
    assert [int(is_fake[added_y == c].sum()) for c in (1, 2, 3)] == [7, 8, 1]
    assert copies == 7 + 7
    for cls in (1, 2):
        # each copy is one of its class's real images, each kept image one of its synthetic
        for image in added[(added_y == cls) & ~is_fake]:
            assert (real[labels == cls] == image).all(axis=(1, 2, 3)).any()
        for image in added[(added_y == cls) & is_fake]:
            assert (fake[fake_labels == cls] == image).all(axis=(1, 2, 3)).any()
    again = stacked_set(real, labels, fake, fake_labels, share=0.5, seed=3)
    np.testing.assert_array_equal(again[0], x)

    all_fake = stacked_set(real, labels, fake, fake_labels, share=1.0)
    assert all_fake[2] == 0 and (all_fake[0][30:].min(axis=(1, 2, 3)) >= 150).all()
    with pytest.raises(DataError, match="share"):
        stacked_set(real, labels, fake, fake_labels, share=0.0)


def test_the_patchwork_takes_a_share_of_each_image_from_the_second_parent():
    share = np.array([0.0, 0.25, 0.5, 0.9, 1.0])
    masks = patchwork(share, 28, np.random.default_rng(0))
    assert masks.shape == (5, 1, 28, 28) and masks.dtype == torch.float32
    assert float(masks.min()) >= 0.0 and float(masks.max()) <= 1.0
    assert float(masks[0].max()) == 0.0 and float(masks[-1].min()) == 1.0
    np.testing.assert_allclose(masks.mean(dim=(1, 2, 3)).numpy(), share, atol=0.03)
    # a few regions with soft edges, not salt and pepper: most pixels are wholly one parent's
    assert float(((masks[2] == 0) | (masks[2] == 1)).float().mean()) > 0.7
    assert torch.equal(masks, patchwork(share, 28, np.random.default_rng(0)))
    assert patchwork(share, 256, np.random.default_rng(0)).shape == (5, 1, 32, 32)


def test_the_patchwork_gives_each_pixel_one_parents_full_detail(bank):
    """Unlike a blend, a patchwork keeps the detail's contrast: a pixel wholly from one parent
    has that parent's detail, unscaled (here: the same code both ways, detail on either side)."""
    codes, _, _ = bank._prepared(0)
    first, second = torch.tensor([0, 1]), torch.tensor([2, 3])
    left = torch.zeros(2, 1, 8, 8)
    left[..., 4:] = 1.0  # the second parent's detail on the right half
    z = codes[first]
    made = bank._decode(0, z, [(first, 1 - left), (second, left)])
    own = bank._decode(0, z, [(first, None)])
    other = bank._decode(0, z, [(second, None)])
    assert np.array_equal(made[:, :, :4], own[:, :, :4])
    assert np.array_equal(made[:, :, 4:], other[:, :, 4:])


def test_a_bank_saved_before_the_patchwork_keeps_blending(bank):
    state = bank.state_dict()
    del state["settings"]["detail_mix"]
    assert LatentBank.from_state_dict(state, CPU).settings.detail_mix == "blend"
    assert LatentBank.from_state_dict(bank.state_dict(), CPU).settings.detail_mix == "patchwork"


def test_a_warp_fills_black_frames_with_black_and_mirrors_the_rest():
    rng = np.random.default_rng(0)
    digits = np.zeros((20, 28, 28, 1), dtype=np.uint8)
    digits[:, 6:22, 12:16] = 255  # a stroke, away from a black frame
    texture = np.clip(rng.normal(128, 10, (20, 28, 28, 1)), 0, 255).astype(np.uint8)
    assert dark_frames(digits).all() and not dark_frames(texture).any()
    # black frames move exactly as under the black-filling pipeline alone (digit sets unchanged)
    pipeline = classic_augmentation(28, seed=3, border="constant")
    alone = np.stack([pipeline(image=image)["image"] for image in digits])
    assert np.array_equal(warp_images(digits, seed=3), alone)
    # a texture gets no black corners; forced black filling gives some
    assert (warp_images(texture, seed=3) <= 5).sum() == 0
    assert (warp_images(texture, seed=3, border="constant") <= 5).sum() > 20
    with pytest.raises(ValueError, match="border"):
        warp_images(texture, seed=3, border="zero")
    assert edge_fill(digits) == "constant" and edge_fill(texture) == "reflect"
    # one fill per batch: a few digits on a brightened background are not mirrored
    bright = digits.copy()
    bright[:3] = np.maximum(bright[:3], 60)
    assert not dark_frames(bright[:3]).any()
    fresh = classic_augmentation(28, seed=3, border="constant")
    black = np.stack([fresh(image=image)["image"] for image in bright])
    assert np.array_equal(warp_images(bright, seed=3), black)
