"""generator="auto": a reported choice among mix / anchored / gan on an inner split of the
training rows only."""

import numpy as np
import pandas as pd

from augment import GANOverSampler
from augment.core.choice import TIE_Z, pick_best
from augment.tabular.choice import CANDIDATES, HELD_OUT, inner_split

FAST = {"steps": 20, "batch_size": 32, "generator_dims": (32,), "discriminator_dims": (32,)}


def test_inner_split_holds_out_a_quarter_of_each_class_and_keeps_single_rows():
    labels = np.array(["a"] * 40 + ["b"] * 8 + ["c"])
    fit, held = inner_split(labels, np.random.default_rng(0))
    assert not set(fit) & set(held)
    assert sorted([*fit, *held]) == list(range(len(labels)))
    assert (labels[held] == "a").sum() == round(40 * HELD_OUT)
    assert (labels[held] == "b").sum() == 2
    assert "c" not in set(labels[held])  # a class of one row is never held out


def test_auto_reports_its_choice_and_generates_exact_counts(mixed_frame, tmp_path):
    X, y = mixed_frame.drop(columns="label"), mixed_frame["label"]
    sampler = GANOverSampler(generator="auto", random_state=0, **FAST)
    X_res, y_res = sampler.fit_resample(X, y)

    choice = sampler.choice_
    assert choice["chosen"] in CANDIDATES and sampler.generator_ == choice["chosen"]
    assert set(choice["scores"]) == set(CANDIDATES)
    assert all(0.0 <= score <= 1.0 for score in choice["scores"].values())
    # mix first; a later candidate only by more than TIE_Z tie spreads over the best so far
    assert choice["chosen"] == pick_best(
        CANDIDATES,
        choice["scores"],
        lead_needed=lambda best, name: TIE_Z * choice["spreads"][f"{best} vs {name}"],
    )
    assert choice["held_out_rows"] + choice["fit_rows"] == len(X)
    # the counts are those of the plan, whatever was chosen
    counts = pd.Series(y_res).value_counts()
    assert counts.nunique() == 1 and counts.iloc[0] == y.value_counts().max()
    if choice["chosen"] == "gan":
        assert sum(sampler.n_anchored_.values()) == 0
    else:
        assert sum(sampler.n_anchored_.values()) > 0
    # the same seed makes the same choice; the choice is saved with the sampler
    again = GANOverSampler(generator="auto", random_state=0, **FAST)
    again.fit_resample(X, y)
    assert again.choice_ == choice
    sampler.save(tmp_path / "auto.pt")
    loaded = GANOverSampler.load(tmp_path / "auto.pt")
    assert loaded.choice_ == choice and loaded.generator_ == choice["chosen"]
    new_x, new_y = loaded.sample({"rare": 7})
    assert len(new_x) == 7 and set(new_y) == {"rare"}


def test_a_fixed_generator_reports_no_choice(mixed_frame):
    X, y = mixed_frame.drop(columns="label"), mixed_frame["label"]
    sampler = GANOverSampler(generator="anchored", random_state=0, **FAST)
    sampler.fit_resample(X, y)
    assert sampler.choice_ is None and sampler.generator_ == "anchored"


def test_row_generator_streams_exact_counts_in_small_batches(mixed_frame):
    """The job's path: many small batches per class, the filter per batch, exact counts."""
    from augment.tabular.generation import RowGenerator

    X, y = mixed_frame.drop(columns="label"), mixed_frame["label"]
    sampler = GANOverSampler(random_state=0, **FAST)
    sampler.fit_resample(X, y)
    source = RowGenerator(sampler.synthesizer_, sampler.space_, "mix", 0.4, True)
    plan = {"rare": 53, "common": 20}
    batches = list(source.class_batches(plan, seed=3, batch_size=8))
    assert max(len(rows) for _, rows in batches) <= 8
    got = pd.concat([rows for _, rows in batches])["label"].value_counts().to_dict()
    assert got == plan
    assert source.origin["anchored"] == {"rare": 21, "common": 8}
    assert source.origin["gan"] == {"rare": 32, "common": 12}
    assert source.origin["dropped"] == {"rare": 64, "common": 24}
    again = RowGenerator(sampler.synthesizer_, sampler.space_, "mix", 0.4, True)
    repeat = pd.concat([rows for _, rows in again.class_batches(plan, seed=3, batch_size=8)])
    pd.testing.assert_frame_equal(pd.concat([rows for _, rows in batches]), repeat)
