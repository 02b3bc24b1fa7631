"""Rows around real anchors, the neighbour check on generated rows, and how the sampler mixes them."""

import numpy as np
import pandas as pd
import pytest

from augment import GANOverSampler
from augment.tabular.anchored import RowSpace
from augment.tabular.schema import infer_schema

FAST = {"steps": 20, "batch_size": 32, "generator_dims": (32,), "discriminator_dims": (32,)}


@pytest.fixture
def space(mixed_frame):
    return RowSpace(mixed_frame, infer_schema(mixed_frame, "label"))


def test_interpolated_rows_stay_within_the_class_and_keep_dtypes(space, mixed_frame):
    rows = space.interpolate("rare", 200, np.random.default_rng(0))
    rare = mixed_frame[mixed_frame["label"] == "rare"]
    assert len(rows) == 200
    assert rows.dtypes.equals(rare.drop(columns="label").dtypes)
    # on the segment between two rows of the class: inside the class's own range
    for name in ("amount", "visits"):
        assert rows[name].between(rare[name].min(), rare[name].max()).all()
    # categorical values are those of one end
    for name in ("channel", "member", "tier", "small_int"):
        assert set(rows[name]) <= set(rare[name])
    assert (rows["visits"] == np.rint(rows["visits"])).all()


def test_about_half_the_anchored_rows_lie_toward_the_class_centre(monkeypatch):
    import augment.tabular.anchored as anchored

    # the rare class sits on a circle: rows between neighbours stay near it, rows toward the
    # class's centre (the circle's middle) fall inside it
    angle = np.linspace(0, 2 * np.pi, 20, endpoint=False)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "x": np.concatenate([np.cos(angle), rng.normal(5, 1, 60)]),
            "y": np.concatenate([np.sin(angle), rng.normal(5, 1, 60)]),
            "label": ["rare"] * 20 + ["common"] * 60,
        }
    )
    space = RowSpace(frame, infer_schema(frame, "label"))
    rows = space.interpolate("rare", 2000, np.random.default_rng(0))
    radius = np.hypot(rows["x"], rows["y"])
    # a central row is at radius 1 - t, t uniform: about half of the half fall below 0.5
    assert abs((radius < 0.5).mean() - anchored.TOWARD_CENTRE * 0.5) < 0.04
    monkeypatch.setattr(anchored, "TOWARD_CENTRE", 0.0)
    rows = space.interpolate("rare", 2000, np.random.default_rng(0))
    assert np.hypot(rows["x"], rows["y"]).min() > 0.8  # chords between near neighbours only


def _split_class(n_common: int, n_split: int, seed: int) -> pd.DataFrame:
    """A common class in one clump at the origin, and a class in two clumps at x = -3.5 and
    3.5 with the common one between them: the split class's centre lies among the common rows."""
    rng = np.random.default_rng(seed)
    side = rng.choice([-1.0, 1.0], n_split)
    return pd.DataFrame(
        {
            "x": np.concatenate(
                [rng.normal(0, 1, n_common), side * 3.5 + rng.normal(0, 0.5, n_split)]
            ),
            "y": np.concatenate([rng.normal(0, 1, n_common), rng.normal(0, 0.5, n_split)]),
            "label": ["common"] * n_common + ["rare"] * n_split,
        }
    )


def test_a_class_split_around_another_gets_no_rows_toward_its_centre():
    # its anchored rows run toward same-class neighbours only
    frame = _split_class(400, 30, seed=0)
    space = RowSpace(frame, infer_schema(frame, "label"))
    rows = space.interpolate("rare", 1000, np.random.default_rng(0))
    assert (rows["x"].abs() > 1.5).all()  # none in the gap, where rows toward (0, 0) would be
    # the common class is one clump: its centre is inside it
    assert space._centre_inside("common") and not space._centre_inside("rare")


def test_a_big_class_checks_its_centre_on_a_sample(monkeypatch):
    """Above CENTRE_CHECK_ROWS rows a class measures its own neighbour share on a fixed
    sample; the verdicts stay those of the full count."""
    import augment.tabular.anchored as anchored

    frame = _split_class(600, 300, seed=1)
    full = RowSpace(frame, infer_schema(frame, "label"))
    verdicts = {label: full._centre_inside(label) for label in ("common", "rare")}
    assert verdicts == {"common": True, "rare": False}
    monkeypatch.setattr(anchored, "CENTRE_CHECK_ROWS", 50)
    sampled = RowSpace(frame, infer_schema(frame, "label"))
    assert {label: sampled._centre_inside(label) for label in verdicts} == verdicts


def test_interpolation_is_seeded(space):
    first = space.interpolate("rare", 50, np.random.default_rng(1))
    again = space.interpolate("rare", 50, np.random.default_rng(1))
    other = space.interpolate("rare", 50, np.random.default_rng(2))
    pd.testing.assert_frame_equal(first, again)
    assert not first.equals(other)


def test_neighbour_share_is_zero_deep_among_other_classes(space, mixed_frame):
    common = mixed_frame[mixed_frame["label"] == "common"].drop(columns="label")
    rare = mixed_frame[mixed_frame["label"] == "rare"].drop(columns="label")
    # a real row's nearest rows include itself, so a class's own rows score above zero
    assert (space.neighbour_share(rare, "rare") > 0).all()
    assert space.neighbour_share(common, "rare").mean() < space.neighbour_share(rare, "rare").mean()


@pytest.mark.parametrize(("generator", "anchored"), [("gan", 0), ("mix", 40), ("anchored", 80)])
def test_generator_choice_splits_exact_counts(mixed_frame, generator, anchored):
    X, y = mixed_frame.drop(columns="label"), mixed_frame["label"]
    sampler = GANOverSampler(generator=generator, anchored_share=0.5, random_state=0, **FAST)
    X_res, y_res = sampler.fit_resample(X, y)
    assert pd.Series(y_res).value_counts().to_dict() == {"common": 100, "rare": 100}
    assert X_res.dtypes.equals(X.dtypes)
    assert sampler.n_anchored_ == {"rare": anchored}
    assert sampler.n_generated_ == {"common": 0, "rare": 80}
    # the anchored path trains no GAN
    assert (len(sampler.synthesizer_.units) == 0) == (generator == "anchored")


def test_filter_keeps_the_rows_nearest_their_class_and_exact_counts(mixed_frame):
    X, y = mixed_frame.drop(columns="label"), mixed_frame["label"]
    on = GANOverSampler(generator="gan", random_state=0, **FAST)
    off = GANOverSampler(generator="gan", filter_generated=False, random_state=0, **FAST)
    X_on, y_on = on.fit_resample(X, y)
    X_off, y_off = off.fit_resample(X, y)
    assert on.n_dropped_ == {"rare": 160} and off.n_dropped_ == {"rare": 0}
    assert len(y_on) == len(y_off) == 200
    share_on = on.space_.neighbour_share(X_on.iloc[len(X) :], "rare")
    share_off = off.space_.neighbour_share(X_off.iloc[len(X) :], "rare")
    assert share_on.mean() >= share_off.mean()
    # what was dropped scores no higher than what was kept
    drawn = on.synthesizer_.sample({"rare": 240}, seed=on.seed_).drop(columns="label")
    all_shares = np.sort(on.space_.neighbour_share(drawn, "rare"))[::-1]
    assert share_on.min() >= all_shares[79]


def test_anchored_sampler_saves_and_loads(tmp_path, mixed_frame):
    X, y = mixed_frame.drop(columns="label"), mixed_frame["label"]
    sampler = GANOverSampler(generator="anchored", random_state=0)
    sampler.fit_resample(X, y)
    sampler.save(tmp_path / "anchored.pt")
    loaded = GANOverSampler.load(tmp_path / "anchored.pt")
    X_new, y_new = loaded.sample({"rare": 9})
    pd.testing.assert_frame_equal(X_new, sampler.sample({"rare": 9})[0])
    assert set(y_new) == {"rare"}


def test_a_gan_only_sampler_saves_no_real_row(tmp_path):
    import json

    import numpy as np
    import pandas as pd

    from augment import GANOverSampler
    from augment.core.persist import load_payload
    from augment.tabular.sampler import SYNTHESIZER_FORMAT

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=60), "b": rng.normal(size=60)})
    y = np.array([0] * 48 + [1] * 12)
    for generator, filtered, holds_rows in (("gan", False, False), ("mix", True, True)):
        sampler = GANOverSampler(steps=2, generator=generator, filter_generated=filtered)
        sampler.fit_resample(X, y)
        sampler.save(tmp_path / "s.pt")
        extra = load_payload(tmp_path / "s.pt", SYNTHESIZER_FORMAT)["extra"]
        assert ("real_rows" in extra) is holds_rows, json.dumps(list(extra))
        again = GANOverSampler.load(tmp_path / "s.pt")
        assert len(again.sample({1: 5})[1]) == 5
