"""The validated choice of a recipe: an inner split of the *training* images decides what to make.

Which images help a classifier most (the GAN's, images between real codes, half of each, warped
or not) depends on the data; measured on digits it differed between a CNN and a linear model and
between imbalance ratios. So the sampler and the job try each candidate :class:`Recipe` on an
inner split of the training images and keep the best by balanced accuracy::

    choice = choose_recipe(synth, images, index, n_classes, seed=0)
    choice.recipe.name, choice.scores     # 'latent+warp', {'latent': 0.94, 'latent+warp': 0.96, ...}

How, for every candidate:

1. each class's training images are split (stratified, seeded): ``share`` of them (at least one
   when a class has two or more) are the inner validation set, the rest the inner training set;
2. the candidate tops every class of the inner training set up to the largest class's count;
   images between real codes start only from inner *training* images;
3. two judges train on the inner training images plus the candidate's and are scored by
   balanced accuracy on the inner validation images: the small CNN of
   :mod:`augment.image.classifier` (same seed and epochs for every candidate) and a logistic
   regression on pixels. A candidate's score is their mean: the images should help a
   convolutional and a linear model alike, since the sampler's user may train either (on digits,
   the GAN's images helped the CNN and hurt the linear model).
4. the inner validation set of a rare class has a handful of images, so scores carry noise of
   a point or more: candidates are tried in order of preference, and a later one replaces the
   best so far only if it scores more than ``margin`` higher and more than 1.645 times the
   spread a tie between the two would have on these held-out images
   (:mod:`augment.core.choice`: ``TIE_Z``, ``tie_spread``): at 50:1 the rarest classes hold
   out one image each, and a lead of 2.4 points on such a split dropped the warp on digits,
   which then cost 4.3 points on the holdout (benchmarks/NOTES.md);
5. the warp first: when candidates come in pairs that differ only by the warp (drawn once,
   :func:`candidate_images`), the pairs are judged first; the candidates without a twin
   (another source without the warp) are judged only if a recipe without the warp won, against
   it. The warp decided more than the source on every set of the benchmark, so a source's
   judge is spent only on data the warp hurts (textures).

The autoencoder was fitted on all training images before the choice; it has seen the inner
validation images (its reconstructions, unsupervised), never the job's holdout, and new images
start only from inner training images. A GAN recipe is judged by GANs fitted again on the inner
training images alone (``fit_inner_gans``): judged by the GAN fitted on all of them, GAN recipes
won the inner split on digits and then lost on the holdout (benchmarks/NOTES.md). No candidate is "no synthetic images": the choice
is among ways to generate, never a fallback to copies.
"""

from __future__ import annotations

import time
import typing
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from augment.core.choice import TIE_Z, balanced_accuracy, pick_by_answers
from augment.core.choice import inner_split as core_inner_split
from augment.core.device import available_cores, cpu_threads
from augment.core.errors import DataError
from augment.core.seeds import Stream, stream
from augment.image.classic import warp_images
from augment.image.classifier import train_classifier
from augment.image.config import Recipes
from augment.image.sizes import work_size
from augment.image.synthesizer import ImageSynthesizer, Recipe
from augment.image.transforms import downsample

# In order of preference: a later candidate must beat the best earlier one by more than the
# margin. The order is what held up on the held-out sets of benchmarks/images.py (NOTES.md):
# half code-GAN, half between real codes first (level with images between real codes on digits,
# ahead at 50:1 and on the distorted digits), the pixel GAN last.
ALL_RECIPES: tuple[str, ...] = typing.get_args(Recipes)  # the config's list, in that order
# What ``auto`` tries unless told otherwise: the mix of code-GAN images and images between real
# codes, with and without the warp (the warp helps strokes and hurts textures, where a warp
# makes no new texture; benchmarks/NOTES.md); where the warp lost, images between real codes
# alone are preferred to the mix, which must beat them. Where moving an image changes what
# tells its class (texture patches: grain, grey level, direction), the code GAN's images,
# low-frequency codes with the detail of their nearest real image, cost 1.5-3 CNN points
# against images between two real codes of the class on every texture seed measured. The
# code-mix pair draws from the code GAN, so the choice judges it with a code GAN fitted again
# on the inner training codes (a few seconds); the pixel GAN is not trained by default.
DEFAULT_CANDIDATES = ("code-mix+warp", "latent", "code-mix")
MARGIN = 0.01


@dataclass
class Choice:
    """The chosen recipe, the inner balanced accuracy of every candidate judged, and the spread
    a tie would have had in each comparison made (``"a vs b"``). ``answers`` holds each judged
    candidate's share of judges right on each inner validation image (not saved)."""

    recipe: Recipe
    scores: dict[str, float] = field(default_factory=dict)
    inner_train: int = 0
    inner_validation: int = 0
    seconds: float = 0.0
    margin: float = MARGIN
    spreads: dict[str, float] = field(default_factory=dict)
    not_judged: list[str] = field(default_factory=list)
    answers: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def as_dict(self) -> dict[str, object]:
        return {
            "recipe": self.recipe.name,
            "scores": {k: round(v, 4) for k, v in self.scores.items()},
            "spreads": {k: round(v, 4) for k, v in self.spreads.items()},
            "not_judged": list(self.not_judged),
            "inner_train": self.inner_train,
            "inner_validation": self.inner_validation,
            "seconds": round(self.seconds, 2),
            "margin": self.margin,
        }


def candidates_for(
    synthesizer: ImageSynthesizer, names: Sequence[str] | None = None
) -> list[Recipe]:
    """The candidate recipes the fitted parts allow (all of :data:`ALL_RECIPES` by default)."""
    recipes = [Recipe.parse(n) for n in (names or ALL_RECIPES)]
    has_gan, has_bank = bool(synthesizer.units), synthesizer.bank is not None
    has_code_gan = has_bank and synthesizer.bank.has_gan
    usable = [
        r
        for r in recipes
        if (has_gan or not r.needs_gan)
        and (has_bank or not r.needs_bank)
        and (has_code_gan or not r.needs_code_gan)
    ]
    if not usable:
        raise DataError(
            f"none of the candidate recipes {[r.name for r in recipes]} can be made by what was "
            "fitted; fit the GAN for 'gan'/'mix' recipes, the autoencoder for 'latent'/'mix' and "
            "the code GAN for 'code-gan'/'code-mix'"
        )
    return usable


def inner_split(
    index: np.ndarray, n_classes: int, share: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the inner training and inner validation images, stratified by class."""
    return core_inner_split(index, share, stream(seed, Stream.IMAGE_CHOICE_SPLIT), range(n_classes))


def choose_recipe(
    synthesizer: ImageSynthesizer,
    images: np.ndarray,
    index: np.ndarray,
    n_classes: int,
    *,
    candidates: Sequence[Recipe] | None = None,
    share: float = 0.25,
    epochs: int = 5,
    seed: int = 0,
    device: torch.device | str = "cpu",
    margin: float = MARGIN,
    fit_inner_gans: Callable[[np.ndarray, list[Any]], list[Any]] | None = None,
) -> Choice:
    """Score each candidate recipe on an inner split of ``images`` and return the best.

    Args:
        synthesizer: the fitted synthesizer; its classes are ``synthesizer.all_classes`` and
            ``index`` holds positions into them.
        images: the training images, uint8 ``(N, H, W, C)``.
        index: ``(N,)`` class positions.
        n_classes: number of classes.
        candidates: recipes to try (default: every one the fitted parts allow).
        share: inner validation share of each class.
        epochs, seed, device: of the judging CNN.
        margin: how much a later candidate must beat the best earlier one by.
        fit_inner_gans: ``fit_inner_gans(images, labels)`` fits the GAN units anew on the inner
            training images (labels are class values); required when a candidate uses the GAN,
            whose units in ``synthesizer`` have seen the inner validation images and would be
            judged on images they may reproduce.

    Raises:
        DataError: no candidate can be made, or the inner split leaves fewer than two classes
            to validate on.
    """
    began = time.perf_counter()
    candidates = list(candidates or candidates_for(synthesizer))
    train, held = inner_split(index, n_classes, share, seed)
    if len(np.unique(index[held])) < 2:
        raise DataError(
            "too few images to choose a recipe on an inner split (fewer than two classes with "
            "two or more images); set the recipe explicitly"
        )
    classes = synthesizer.all_classes
    counts = np.bincount(index[train], minlength=n_classes)
    plan = {
        classes[c]: int(counts.max() - counts[c])
        for c in range(n_classes)
        if counts.max() > counts[c] and counts[c] > 0
    }
    bank = None
    if synthesizer.bank is not None:
        keep = {}
        for c in range(n_classes):
            inner = train[index[train] == c]
            # anchors of class c are its training images in order; keep the inner-train ones
            members = np.flatnonzero(index == c)
            keep[classes[c]] = np.searchsorted(members, inner)
        codes = None
        if any(r.needs_code_gan for r in candidates) and synthesizer.bank.codes is not None:
            # the neighbour filter and a code GAN fitted anew see the inner training codes only
            codes = synthesizer.bank.codes.subset(train, seed, torch.device(device))
        bank = synthesizer.bank.restricted(keep, codes)
    units: list[Any] = []
    if any(r.needs_gan for r in candidates):
        if fit_inner_gans is None:
            raise DataError(
                "a GAN recipe among the candidates needs GANs fitted on the inner training "
                "images to be judged fairly (fit_inner_gans)"
            )
        units = fit_inner_gans(images[train], [classes[i] for i in index[train]])
    lookup = {c: i for i, c in enumerate(classes)}
    truth = index[held]

    def judge(recipe: Recipe, drawn: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        """Each inner validation image's share of the two judges that got it right."""
        new, new_labels = drawn
        new_index = np.array([lookup[v] for v in new_labels.tolist()], dtype=np.int64)
        model = train_classifier(
            np.concatenate([images[train], new]),
            np.concatenate([index[train], new_index]),
            n_classes,
            epochs=epochs,
            seed=seed,
            device=device,
        )
        cnn = model.predict(images[held]) == truth
        linear = _linear_answers(
            np.concatenate([images[train], new]),
            np.concatenate([index[train], new_index]),
            images[held],
        )
        return (cnn.astype(np.float64) + (linear == truth)) / 2

    def judge_round(round_: list[Recipe]) -> dict[str, np.ndarray]:
        with cpu_threads(1):  # decoding small batches: faster on one thread (see the sampler)
            drawn = candidate_images(round_, units, classes, synthesizer.label, bank, plan, seed)
        # The candidates' judges side by side, one torch and one BLAS thread each: a judge's
        # small CNN gains ~1.6x from a second thread, two judges at once ~2x; the logistic
        # regression ran 3x faster on one BLAS thread than on two (2.7 s against 0.9 s at 28
        # px). One thread also makes the scores the same on machines of any number of cores.
        cpu = torch.device(device).type == "cpu"
        workers = min(len(round_), available_cores()) if cpu else 1
        with cpu_threads(1), threadpool_limits(1), ThreadPoolExecutor(max(1, workers)) as pool:
            judged = pool.map(judge, round_, [drawn[r.name] for r in round_])
            return dict(zip([r.name for r in round_], judged, strict=True))

    best, answers, spreads = pick_in_rounds(candidates, judge_round, truth, margin)
    return Choice(
        recipe=Recipe.parse(best),
        scores={n: balanced_accuracy(truth, a) for n, a in answers.items()},
        inner_train=len(train),
        inner_validation=len(held),
        seconds=time.perf_counter() - began,
        margin=margin,
        spreads=spreads,
        not_judged=[r.name for r in candidates if r.name not in answers],
        answers=answers,
    )


def pick_in_rounds(
    candidates: Sequence[Recipe],
    judge: Callable[[list[Recipe]], dict[str, np.ndarray]],
    truth: np.ndarray,
    margin: float = MARGIN,
    z: float = TIE_Z,
) -> tuple[str, dict[str, np.ndarray], dict[str, float]]:
    """The winner's name, every judged candidate's answers and the tie spread of each comparison.

    ``judge(recipes)`` gives each recipe's answers on the inner validation images (each image's
    share of judges right; ``truth`` their classes). The rounds of :func:`judging_rounds`: the
    second is judged only if the first was won by a recipe without the warp, and its candidates
    meet that winner in the candidates' order of preference. In a round, a later candidate
    replaces the best so far only by more than ``margin`` and more than ``z`` tie spreads.
    """
    order = {r.name: i for i, r in enumerate(candidates)}
    answers: dict[str, np.ndarray] = {}
    spreads: dict[str, float] = {}
    best: str | None = None
    for round_ in judging_rounds(candidates):
        if not round_ or (best is not None and Recipe.parse(best).warp):
            continue  # the warp won: sources without it are not judged
        answers.update(judge(list(round_)))
        names = sorted([*([best] if best else []), *(r.name for r in round_)], key=order.get)
        best, _, compared = pick_by_answers(names, answers, truth, margin, z)
        spreads.update(compared)
    assert best is not None  # the first round is never empty
    return best, answers, spreads


def judging_rounds(candidates: Sequence[Recipe]) -> tuple[list[Recipe], list[Recipe]]:
    """(first round, second round): every warped candidate and the unwarped twin of one, then
    the unwarped candidates without a warped twin (judged only if the warp lost). Without such
    a pair, or with nothing left for the second round, one round of all."""
    names = {r.name for r in candidates}
    first = [r for r in candidates if r.warp or Recipe(r.source, True).name in names]
    rest = [r for r in candidates if r not in first]
    if not rest or all(r.warp for r in first):  # no pair to judge the warp by
        return list(candidates), []
    return first, rest


def candidate_images(
    candidates: Sequence[Recipe],
    units: Sequence[Any],
    classes: Sequence[Any],
    label: str,
    bank: Any,
    plan: dict[Any, int],
    seed: int,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each candidate's images and labels for ``plan``, as :meth:`ImageSynthesizer.sample` makes
    them. Recipes that differ only by the warp share their draws: the warp is the last step of
    a class's batch, seeded by the batch's seed, so the warped images are the plain ones warped
    (drawn once: the code GAN, the filter and the decoder are most of a recipe's cost)."""
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    by_source: dict[str, list[Recipe]] = {}
    for recipe in candidates:
        by_source.setdefault(recipe.source, []).append(recipe)
    for source, recipes in by_source.items():
        view = ImageSynthesizer(units, classes, label, bank=bank, recipe=Recipe(source, False))
        counts = {c: n for c, n in plan.items() if c in view.classes}
        if len(recipes) == 1:
            out[recipes[0].name] = view.sample(counts, seed)
            continue
        view.unit_of = {c: _WarpPair(unit) for c, unit in view.unit_of.items()}
        plain, warped, labels = [], [], []
        for cls, (images, moved) in view.unit_batches(counts, seed, view.batch_size):
            plain.append(images)
            warped.append(moved)
            labels.extend([cls] * len(images))
        empty = np.zeros((0, *view.image_shape), dtype=np.uint8)
        for recipe in recipes:
            batches = warped if recipe.warp else plain
            out[recipe.name] = (np.concatenate([empty, *batches]), np.asarray(labels))
    return out


class _WarpPair:
    """A class's unit under a recipe without the warp that also returns its images warped, as
    the ``+warp`` recipe's unit would: ``sample`` gives ``(images, warped)``."""

    def __init__(self, unit: Any) -> None:
        self.unit = unit

    def sample(self, cls: Any, n_images: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        images = self.unit.sample(cls, n_images, seed)
        return images, warp_images(images, seed)


def _linear_answers(images: np.ndarray, labels: np.ndarray, held: np.ndarray) -> np.ndarray:
    """A logistic regression's predictions for ``held``, fitted on pixels scaled to 0..1 at the
    working size of the cheap networks (:func:`augment.image.sizes.work_size`: the images
    themselves up to 64 px; above, area-averaged copies, where full-size float pixels of 2,000
    images at 256 px alone took 3.2 GB)."""
    from sklearn.linear_model import LogisticRegression

    size = work_size(images.shape[1])
    images, held = downsample(images, size), downsample(held, size)
    model = LogisticRegression(max_iter=200, C=0.1)
    model.fit(images.reshape(len(images), -1) / 255.0, labels)
    return model.predict(held.reshape(len(held), -1) / 255.0)
