"""Privacy (issue 35): the measures against unseen rows, the floor in the sampler and the job's
generator, and the missing-label error of the Python API."""

import numpy as np
import pandas as pd
import pytest
from sklearn.utils._param_validation import InvalidParameterError

from augment import GANOverSampler
from augment.core.errors import DataError
from augment.core.privacy import (
    copy_share,
    dcr_share,
    floor_distance,
    memorised_share,
    nearest_distances,
)
from augment.core.vectors import VectorSpace
from augment.pipeline.summary import origin_sentence
from augment.tabular.fidelity import privacy_report
from augment.tabular.schema import infer_schema

FAST = {"steps": 20, "batch_size": 32, "generator_dims": (32,), "discriminator_dims": (32,)}


def blobs(n_per_class: tuple[int, int], seed: int = 0, dims: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    parts = []
    for label, (n, centre) in enumerate(zip(n_per_class, (0.0, 3.0), strict=True)):
        part = pd.DataFrame(
            rng.normal(centre, 1.0, size=(n, dims)), columns=list("abcdefgh")[:dims]
        )
        part["label"] = f"c{label}"
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


# -- the measures ---------------------------------------------------------------------------
def test_dcr_share_is_one_for_near_copies_and_a_half_for_unseen_rows():
    rng = np.random.default_rng(0)
    train, holdout, fresh = (rng.normal(size=(300, 3)) for _ in range(3))
    assert dcr_share(train, holdout, train + 1e-4) == 1.0
    assert dcr_share(train, holdout, fresh) == pytest.approx(0.5, abs=0.07)


def test_dcr_share_cuts_the_larger_real_set_to_the_size_of_the_other():
    # four times as many training rows are nearer to any row by chance alone; cut, fresh rows
    # score about 0.5 again
    rng = np.random.default_rng(1)
    train, holdout, fresh = (
        rng.normal(size=(800, 3)),
        rng.normal(size=(200, 3)),
        rng.normal(size=(400, 3)),
    )
    assert dcr_share(train, holdout, fresh) == pytest.approx(0.5, abs=0.08)


def test_memorised_and_copy_shares():
    rng = np.random.default_rng(2)
    train = rng.normal(size=(200, 3))
    near = train[:50] + 1e-3  # each on one training row, far from the second nearest
    fresh = rng.normal(size=(50, 3))
    assert memorised_share(train, near) == 1.0
    assert memorised_share(train, fresh) < 0.3
    assert copy_share(train, near) == 0.0
    assert copy_share(train, np.vstack([train[:5], fresh[:5]])) == 0.5


def test_floor_distance_is_the_quantile_of_leave_one_out_distances():
    line = np.arange(10, dtype=float)[:, None] * np.array([[1.0, 0.0]])  # spacing 1
    line[-1, 0] = 11.0  # the last one 3 from its neighbour
    assert floor_distance(line, 0.1) == 1.0
    assert floor_distance(line, 1.0) == 3.0
    assert floor_distance(line[:1], 0.1) == 0.0  # no other row: no floor
    assert nearest_distances(line, line[:2], k=2).tolist() == [[0.0, 1.0], [0.0, 1.0]]


def test_floor_margin_is_negative_near_a_real_vector_and_for_copies():
    points = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [5.0, 5.0]])
    space = VectorSpace(points, np.array(["a", "a", "a", "b"]))
    margin = space.floor_margin(np.array([[0.05, 0.0], [2.0, 2.0], [5.0, 5.0]]), "a", 0.5)
    assert margin[0] < 0 < margin[1]
    assert margin[2] > 0  # far from class a; class b's row does not count
    assert space.floor_margin(np.array([[5.0, 5.0]]), "b", 0.5)[0] == -np.inf  # one row: copy


def test_privacy_report_per_class_and_source():
    frame = blobs((120, 120))
    train, holdout = frame.iloc[::2].reset_index(drop=True), frame.iloc[1::2]
    schema = infer_schema(train, "label")
    copies = train[train["label"] == "c1"].iloc[:40]
    fresh = holdout[holdout["label"] == "c1"].iloc[:40]
    report = privacy_report(
        train, holdout, {"anchored": copies, "gan": fresh}, schema, counts=None, seed=0
    )
    assert report["privacy/dcr_share/source/anchored"] == 1.0
    assert report["privacy/exact_copy_share/source/anchored"] == 1.0
    assert report["privacy/exact_copy_share/source/gan"] == 0.0
    # the holdout rows themselves: always nearer to themselves than to a training row
    assert report["privacy/dcr_share/source/gan"] == 0.0
    assert report["privacy/dcr_share/class/c1"] == 0.5
    assert report["privacy/dcr_overfitting_protection"] == 1.0
    # the made counts weigh each source: 3 anchored rows for each GAN row
    weighted = privacy_report(
        train,
        holdout,
        {"anchored": copies, "gan": fresh},
        schema,
        counts={"anchored": {"c1": 300}, "gan": {"c1": 100}},
    )
    assert weighted["privacy/dcr_share"] == 0.75


# -- the floor ------------------------------------------------------------------------------
def margins(sampler: GANOverSampler, X_res: pd.DataFrame, y_res, n_real: int) -> np.ndarray:
    new = X_res.iloc[n_real:].reset_index(drop=True)
    labels = np.asarray(y_res)[n_real:]
    return np.concatenate(
        [sampler.space_.floor_margin(new[labels == c], c, 0.2) for c in np.unique(labels)]
    )


@pytest.mark.parametrize("generator", ["anchored", "mix"])
def test_privacy_floor_redraws_rows_too_close_and_keeps_counts_exact(generator):
    frame = blobs((150, 25))
    X, y = frame.drop(columns="label"), frame["label"]
    plain = GANOverSampler(generator=generator, random_state=0, **FAST)
    X_plain, y_plain = plain.fit_resample(X, y)
    floored = GANOverSampler(generator=generator, privacy_floor=0.2, random_state=0, **FAST)
    X_res, y_res = floored.fit_resample(X, y)
    # without the floor some rows sit nearer than it (the test would fail with no floor)
    assert (margins(floored, X_plain, y_plain, len(X)) < 0).any()
    assert (margins(floored, X_res, y_res, len(X)) >= 0).all()
    assert pd.Series(y_res).value_counts().to_dict() == {"c0": 150, "c1": 150}
    assert floored.n_redrawn_["c1"] > 0 and plain.n_redrawn_ is None
    again, _ = GANOverSampler(
        generator=generator, privacy_floor=0.2, random_state=0, **FAST
    ).fit_resample(X, y)
    pd.testing.assert_frame_equal(X_res, again)


def test_privacy_floor_keeps_its_rows_after_save_and_load(tmp_path):
    frame = blobs((80, 20))
    X, y = frame.drop(columns="label"), frame["label"]
    sampler = GANOverSampler(generator="gan", filter_generated=False, match_moments=False)
    sampler.set_params(privacy_floor=0.3, random_state=0, **FAST)
    sampler.fit_resample(X, y)
    sampler.save(tmp_path / "model.pt")
    loaded = GANOverSampler.load(tmp_path / "model.pt")
    assert loaded.privacy_floor == 0.3
    X_new, _ = loaded.sample({"c1": 60}, seed=1)
    assert (loaded.space_.floor_margin(X_new, "c1", 0.3) >= 0).all()


def test_privacy_floor_is_checked():
    frame = blobs((30, 10))
    with pytest.raises(InvalidParameterError, match="privacy_floor"):
        GANOverSampler(privacy_floor=1.5).fit_resample(frame.drop(columns="label"), frame["label"])


def test_origin_sentence_names_the_floors_redraws():
    origin = {
        "gan": {"a": 10},
        "anchored": {"a": 10},
        "redrawn": {"a": 7},
        "below_floor": {"a": 2},
    }
    sentence = origin_sentence(origin)
    assert "the privacy floor redrew 7" in sentence and "2 kept below it" in sentence
    assert "privacy floor" not in origin_sentence({"gan": {"a": 10}, "anchored": {"a": 10}})


# -- a missing label in the Python API ------------------------------------------------------
def test_missing_labels_are_named_with_their_count_and_first_row():
    frame = blobs((30, 10))
    X = frame.drop(columns="label")
    y = frame["label"].astype(object).set_axis([f"r{i}" for i in range(len(frame))])
    y.iloc[[4, 9, 12]] = [None, np.nan, None]
    with pytest.raises(DataError, match=r"3 missing label\(s\).*row 4 \(index 'r4'\)"):
        GANOverSampler(**FAST).fit_resample(X, y)
    labels = np.array([0.0] * 30 + [1.0] * 10)
    labels[7] = np.nan
    with pytest.raises(DataError, match=r"1 missing label\(s\).*row 7:"):
        GANOverSampler(**FAST).fit_resample(X.to_numpy(), labels)


# -- issue 35's "done when", as benchmarks/privacy.py measures it ---------------------------
@pytest.mark.parametrize("table", ["breast_cancer", "wine", "penguins"])
def test_the_floor_brings_the_dcr_share_to_at_most_060(table):
    """Each class's real rows split 50/50; with privacy_floor=0.1 at most 60% of the new rows
    lie nearer to a train row than to an unseen one, over seeds 0, 1, 2 (without the floor:
    0.65 on breast_cancer, 0.86 on wine; one seed alone moves by up to 0.1, so the mean is
    what is held), the counts are exact and no new row equals a real one."""
    from sklearn.model_selection import train_test_split

    from benchmarks.privacy import LABEL, load, measure, method_rows

    if table == "penguins":
        pytest.importorskip("palmerpenguins")
    frame = load(table)
    shares = []
    for seed in (0, 1, 2):
        train, holdout = train_test_split(
            frame, test_size=0.5, stratify=frame[LABEL], random_state=seed
        )
        train, holdout = train.reset_index(drop=True), holdout.reset_index(drop=True)
        rows = method_rows("augment+floor", train, seed=seed, floor=0.1)
        result = measure(train, holdout, rows, seed=seed)
        assert result["counts_exact"] and result["copies"] == 0
        shares.append(result["dcr_share"])
    assert np.mean(shares) <= 0.60, shares
