"""Rows around real anchors, the neighbour check on generated rows, and how the sampler mixes them."""

import numpy as np
import pandas as pd
import pytest

from augment import GANOverSampler
from augment.core import vectors
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
    assert abs((radius < 0.5).mean() - vectors.TOWARD_CENTRE * 0.5) < 0.04
    monkeypatch.setattr(vectors, "TOWARD_CENTRE", 0.0)
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
    assert space.vectors.centre_inside("common") and not space.vectors.centre_inside("rare")


def test_a_big_class_checks_its_centre_on_a_sample(monkeypatch):
    """Above CENTRE_CHECK_ROWS rows a class measures its own neighbour share on a fixed
    sample; the verdicts stay those of the full count."""

    frame = _split_class(600, 300, seed=1)
    full = RowSpace(frame, infer_schema(frame, "label"))
    verdicts = {label: full.vectors.centre_inside(label) for label in ("common", "rare")}
    assert verdicts == {"common": True, "rare": False}
    monkeypatch.setattr(vectors, "CENTRE_CHECK_ROWS", 50)
    sampled = RowSpace(frame, infer_schema(frame, "label"))
    assert {label: sampled.vectors.centre_inside(label) for label in verdicts} == verdicts


def test_a_big_class_anchors_on_a_sample_with_neighbours_among_all_its_rows(monkeypatch):
    """Above ANCHOR_POOL_ROWS rows a class's anchors are a fixed sample; each anchor's partners
    are still its nearest rows of the whole class, and the counts stay exact."""

    monkeypatch.setattr(vectors, "TOWARD_CENTRE", 0.0)  # every row toward a neighbour
    monkeypatch.setattr(vectors, "ANCHOR_POOL_ROWS", 40)
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=330),
            "y": rng.normal(size=330),
            "label": ["big"] * 300 + ["small"] * 30,
        }
    )
    space = RowSpace(frame, infer_schema(frame, "label"))
    members, pool, nearest = space.vectors.anchors("big")
    assert len(members) == 300 and len(pool) == 40 and nearest.shape == (40, 5)
    points = space.points[members]
    for place, partners in zip(pool, nearest, strict=True):
        distance = np.linalg.norm(points - points[place], axis=1)
        distance[place] = np.inf
        np.testing.assert_array_equal(np.sort(partners), np.sort(np.argsort(distance)[:5]))
    assert (
        len(space.vectors.anchors("small")[1]) == 30
    )  # a class below the cap anchors on every row

    # move the big class's rows outside the pool far away: anchors and their nearest partners
    # are then all pooled rows, so every new row stays near the origin
    far = np.setdiff1d(np.arange(300), pool)
    frame.loc[far, "x"] += 100.0
    space = RowSpace(frame, infer_schema(frame, "label"))
    np.testing.assert_array_equal(space.vectors.anchors("big")[1], pool)  # the same fixed sample
    rows = space.interpolate("big", 500, np.random.default_rng(0))
    assert len(rows) == 500 and rows["x"].abs().max() < 10
    again = RowSpace(frame, infer_schema(frame, "label"))
    pd.testing.assert_frame_equal(rows, again.interpolate("big", 500, np.random.default_rng(0)))


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
    # the filter alone: the moment map (tested on its own) would move the kept rows again
    plain = {"generator": "gan", "match_moments": False, "random_state": 0, **FAST}
    on = GANOverSampler(**plain)
    off = GANOverSampler(**plain, filter_generated=False)
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
        sampler = GANOverSampler(
            steps=2, generator=generator, filter_generated=filtered, match_moments=filtered
        )
        sampler.fit_resample(X, y)
        sampler.save(tmp_path / "s.pt")
        extra = load_payload(tmp_path / "s.pt", SYNTHESIZER_FORMAT)["extra"]
        assert ("real_rows" in extra) is holds_rows, json.dumps(list(extra))
        again = GANOverSampler.load(tmp_path / "s.pt")
        assert len(again.sample({1: 5})[1]) == 5


def test_the_moment_map_gives_generated_rows_the_real_class_moments():
    rng = np.random.default_rng(0)
    # the rare class: 40 rows with a strong correlation between a and b; the "GAN" rows miss
    # both its mean and its correlation (a round cloud nearer the common class)
    a = rng.normal(3, 1, 40)
    rare = pd.DataFrame({"a": a, "b": 2 * a + rng.normal(0, 0.3, 40), "label": "rare"})
    common = pd.DataFrame({"a": rng.normal(0, 1, 400), "b": rng.normal(0, 1, 400)})
    frame = pd.concat([common.assign(label="common"), rare], ignore_index=True)
    space = RowSpace(frame, infer_schema(frame, "label"))
    made = pd.DataFrame({"a": rng.normal(1.5, 1, 2000), "b": rng.normal(3, 1, 2000)})
    moments = space.moment_map(made, "rare")
    moved = moments.apply(made)
    real = rare[["a", "b"]]
    assert np.allclose(moved.mean(), real.mean(), atol=0.05)
    # the correlation comes back (the shrunk covariance keeps most of it), the range holds
    assert np.corrcoef(moved["a"], moved["b"])[0, 1] > 0.8 > abs(np.corrcoef(made.T)[0, 1]) + 0.7
    assert (moved.min() >= frame[["a", "b"]].min() - 1e-9).all()
    assert (moved.max() <= frame[["a", "b"]].max() + 1e-9).all()
    assert moved.dtypes.equals(made.dtypes)
    # nothing to match: a class of one row, or one generated row
    assert space.moment_map(made.iloc[:1], "rare") is None
    one = pd.concat([common.assign(label="common"), rare.iloc[:1]], ignore_index=True)
    assert RowSpace(one, infer_schema(one, "label")).moment_map(made, "rare") is None


def test_a_class_of_one_real_row_gets_no_map():
    """The samplers refuse to oversample a class of one row; the space still gives such a class
    no moment map (one row has no covariance), while a class of 20 gets one."""
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"a": rng.normal(size=121), "b": rng.normal(size=121)})
    frame["label"] = [0] * 100 + [1] * 20 + [2]
    space = RowSpace(frame, infer_schema(frame, "label"))
    made = pd.DataFrame({"a": rng.normal(size=30), "b": rng.normal(size=30)})
    assert space.moment_map(made, 2) is None
    assert space.moment_map(made, 1) is not None


def test_the_sampler_moves_gan_rows_to_the_class_moments_and_old_files_do_not(tmp_path):
    from augment.core.persist import load_payload, save_payload
    from augment.tabular.sampler import SYNTHESIZER_FORMAT

    rng = np.random.default_rng(1)
    X = pd.DataFrame({"a": rng.normal(size=120), "b": rng.normal(size=120)})
    y = np.array([0] * 100 + [1] * 20)
    X.loc[y == 1, "a"] += 2.0
    kwargs = {"generator": "gan", "filter_generated": False, "random_state": 0, **FAST}
    rows, samplers = {}, {}
    for match in (True, False):
        samplers[match] = GANOverSampler(match_moments=match, **kwargs)
        X_res, _ = samplers[match].fit_resample(X, y)
        rows[match] = X_res.iloc[len(X) :]
    real = X[y == 1]
    assert np.allclose(rows[True].mean(), real.mean(), atol=0.05)
    assert not np.allclose(rows[False].mean(), real.mean(), atol=0.05)  # what the GAN alone made
    assert samplers[True].n_moved_ == {1: 80} and samplers[False].n_moved_ == {1: 0}
    # a file saved before match_moments existed samples as it did then: GAN rows left as drawn
    samplers[True].save(tmp_path / "new.pt")
    payload = load_payload(tmp_path / "new.pt", SYNTHESIZER_FORMAT)
    del payload["extra"]["params"]["match_moments"]
    save_payload(tmp_path / "old.pt", payload)
    new, old = (GANOverSampler.load(tmp_path / f"{n}.pt") for n in ("new", "old"))
    assert new.match_moments is True and old.match_moments is False
    plan = {1: 50}
    assert np.allclose(new.sample(plan, seed=3)[0].mean(), real.mean(), atol=0.05)
    assert not np.allclose(old.sample(plan, seed=3)[0].mean(), real.mean(), atol=0.05)
