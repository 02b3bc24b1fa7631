"""Property tests (hypothesis) for the sampling planner, the tabular encoder and the shard store."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from imblearn.utils import check_sampling_strategy

from augment.core.balance import plan_samples
from augment.core.errors import ConfigError
from augment.core.shards import ShardWriter, finalize, prepare_output, read_shards
from augment.tabular.schema import infer_schema
from augment.tabular.transform import TabularEncoder

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MEDIUM = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])

STRING_STRATEGIES = ["not majority", "auto", "minority", "not minority", "all"]


# -- the sampling planner -------------------------------------------------------------------------

# Labels of one draw are all strings or all ints, never a mix.
# No NUL characters: NumPy's fixed-width strings drop trailing NULs, so imbalanced-learn (the
# oracle) would see "\x00" as "" and merge classes that pandas and augment keep apart.
_label_text = st.text(st.characters(exclude_characters="\x00"), min_size=1, max_size=6)
_string_labels = st.lists(_label_text, min_size=2, max_size=6, unique=True)
_int_labels = st.lists(st.integers(-10_000, 10_000), min_size=2, max_size=6, unique=True)


@st.composite
def class_counts(draw, min_classes: int = 2, max_classes: int = 6) -> dict:
    """A counts dict like ``class_counts`` returns, but in an arbitrary key order."""
    labels = draw(st.one_of(_string_labels, _int_labels))
    labels = labels[:max_classes]
    assume(len(labels) >= min_classes)
    # A small ceiling now and then makes ties (equal class sizes) common.
    ceiling = draw(st.sampled_from([3, 400]))
    sizes = draw(st.lists(st.integers(1, ceiling), min_size=len(labels), max_size=len(labels)))
    # Ties are where the planner is most likely to disagree with imbalanced-learn: force some.
    if draw(st.booleans()):
        sizes[-1] = sizes[0]
    return dict(zip(labels, sizes, strict=True))


def _label_vector(counts: dict) -> np.ndarray:
    """The label vector imbalanced-learn would see for these counts (its own dtype, no objects)."""
    labels = list(counts)
    return np.repeat(np.asarray(labels), [counts[c] for c in labels])


def _imblearn_final_sizes(counts: dict, strategy) -> dict:
    planned = check_sampling_strategy(strategy, _label_vector(counts), "over-sampling")
    extra = {(k.item() if isinstance(k, np.generic) else k): int(v) for k, v in planned.items()}
    return {c: n + extra.get(c, 0) for c, n in counts.items()}


def _check_plan_shape(counts: dict, plan: dict) -> None:
    assert set(plan) == set(counts)
    for cls, n_rows in plan.items():
        assert isinstance(n_rows, int)
        assert n_rows >= 0, (cls, n_rows)  # nothing is ever removed
        assert counts[cls] + n_rows >= counts[cls]


@FAST
@given(counts=class_counts(), strategy=st.sampled_from(STRING_STRATEGIES))
def test_plan_string_strategies_match_imblearn(counts, strategy):
    plan = plan_samples(counts, strategy)
    _check_plan_shape(counts, plan)
    final = {c: counts[c] + plan[c] for c in counts}
    assert final == _imblearn_final_sizes(counts, strategy)
    majority = max(counts.values())
    if strategy in ("not majority", "auto", "all"):
        assert set(final.values()) == {majority}
    if strategy == "minority":
        grown = [c for c in counts if plan[c] > 0]
        assert len(grown) <= 1
        assert all(final[c] == majority for c in grown)


@FAST
@given(counts=class_counts(), strategy=st.sampled_from(STRING_STRATEGIES))
def test_plan_string_strategies_ignore_key_order(counts, strategy):
    reordered = dict(reversed(list(counts.items())))
    assert plan_samples(reordered, strategy) == plan_samples(counts, strategy)


@FAST
@given(
    counts=class_counts(min_classes=2, max_classes=2),
    ratio=st.floats(0.001, 1.5, allow_nan=False, allow_infinity=False),
)
def test_plan_float_ratio_binary(counts, ratio):
    y = _label_vector(counts)
    majority_size = max(counts.values())
    try:
        reference = check_sampling_strategy(ratio, y, "over-sampling")
    except ValueError:
        reference = None
    if reference is None:
        with pytest.raises(ConfigError):
            plan_samples(counts, ratio)
        return
    plan = plan_samples(counts, ratio)
    _check_plan_shape(counts, plan)
    assert ratio <= 1
    final = {c: counts[c] + plan[c] for c in counts}
    assert final == _imblearn_final_sizes(counts, ratio)
    grown = [c for c in counts if plan[c] > 0]
    assert len(grown) == 1  # imbalanced-learn refuses a ratio that adds nothing
    (minority,) = grown
    assert counts[minority] + plan[minority] == math.floor(majority_size * ratio)


@FAST
@given(
    counts=class_counts(min_classes=2, max_classes=2),
    ratio=st.floats(0.001, 1.0, allow_nan=False, allow_infinity=False),
)
def test_plan_float_ratio_that_would_shrink_raises(counts, ratio):
    majority_size = max(counts.values())
    minority_size = min(counts.values())
    assume(majority_size * ratio < minority_size)
    with pytest.raises(ConfigError):
        plan_samples(counts, ratio)


@FAST
@given(
    counts=class_counts(min_classes=3),
    ratio=st.floats(0.001, 1.0, allow_nan=False, allow_infinity=False),
)
def test_plan_float_ratio_needs_two_classes(counts, ratio):
    with pytest.raises(ConfigError):
        plan_samples(counts, ratio)


@st.composite
def counts_and_targets(draw):
    counts = draw(class_counts())
    listed = draw(st.lists(st.sampled_from(list(counts)), unique=True, max_size=len(counts)))
    targets = {c: counts[c] + draw(st.integers(0, 500)) for c in listed}
    return counts, targets


@FAST
@given(data=counts_and_targets(), text_keys=st.booleans())
def test_plan_dict_reaches_targets(data, text_keys):
    counts, targets = data
    if text_keys:  # a YAML config names int classes as strings
        targets = {str(c): n for c, n in targets.items()}
    plan = plan_samples(counts, targets)
    _check_plan_shape(counts, plan)
    wanted = {str(c): n for c, n in targets.items()}
    for cls in counts:
        if str(cls) in wanted:
            assert counts[cls] + plan[cls] == wanted[str(cls)]
        else:
            assert plan[cls] == 0


@FAST
@given(counts=class_counts(), data=st.data())
def test_plan_dict_target_below_count_raises(counts, data):
    shrunk = data.draw(st.sampled_from(list(counts)))
    target = data.draw(st.integers(0, counts[shrunk] - 1))
    with pytest.raises(ConfigError):
        plan_samples(counts, {shrunk: target})


# -- the tabular encoder --------------------------------------------------------------------------

_finite = {"allow_nan": False, "allow_infinity": False}
_words = st.text(alphabet="abcdefghij XYZ-_", min_size=0, max_size=5)


def _column(kind: str, n_rows: int):
    """A strategy for one feature column of ``kind`` with ``n_rows`` values."""
    if kind == "float":
        values = st.lists(st.floats(-1e6, 1e6, **_finite), min_size=n_rows, max_size=n_rows).map(
            lambda v: pd.Series(v, dtype="float64")
        )
    elif kind == "float32":
        values = st.lists(
            st.floats(-1e4, 1e4, width=32, **_finite), min_size=n_rows, max_size=n_rows
        ).map(lambda v: pd.Series(v, dtype="float32"))
    elif kind == "int_few":
        values = st.lists(st.integers(-3, 3), min_size=n_rows, max_size=n_rows).map(
            lambda v: pd.Series(v, dtype="int64")
        )
    elif kind == "int_many":
        values = st.lists(st.integers(-(10**6), 10**6), min_size=n_rows, max_size=n_rows).map(
            lambda v: pd.Series(v, dtype="int64")
        )
    elif kind == "int32":
        values = st.lists(st.integers(0, 5000), min_size=n_rows, max_size=n_rows).map(
            lambda v: pd.Series(v, dtype="int32")
        )
    elif kind == "string":
        values = st.lists(
            st.sampled_from(["web", "shop", "phone", "", "x y"]), min_size=n_rows, max_size=n_rows
        ).map(pd.Series)
    elif kind == "text":
        values = st.lists(_words, min_size=n_rows, max_size=n_rows).map(pd.Series)
    elif kind == "bool":
        values = st.lists(st.booleans(), min_size=n_rows, max_size=n_rows).map(
            lambda v: pd.Series(v, dtype="bool")
        )
    else:  # pandas categorical
        values = st.lists(
            st.sampled_from(["lo", "mid", "hi"]), min_size=n_rows, max_size=n_rows
        ).map(lambda v: pd.Series(pd.Categorical(v)))
    return values


COLUMN_KINDS = [
    "float",
    "float32",
    "int_few",
    "int_many",
    "int32",
    "string",
    "text",
    "bool",
    "category",
]


@st.composite
def labelled_frames(draw) -> pd.DataFrame:
    n_rows = draw(st.integers(4, 40))
    kinds = draw(st.lists(st.sampled_from(COLUMN_KINDS), min_size=1, max_size=6))
    columns = {f"c{i}_{kind}": draw(_column(kind, n_rows)) for i, kind in enumerate(kinds)}
    # At least two classes: the first two rows differ, the rest are free.
    rest = draw(
        st.lists(st.sampled_from(["a", "b", "c"]), min_size=n_rows - 2, max_size=n_rows - 2)
    )
    columns["label"] = pd.Series(["a", "b", *rest])
    return pd.DataFrame(columns)


def _fitted(frame: pd.DataFrame, continuous: str):
    schema = infer_schema(frame, "label")
    features = frame[schema.names]
    encoder = TabularEncoder(max_modes=4, continuous=continuous).fit(features, schema)
    return schema, features, encoder


def _check_valid_rows(restored: pd.DataFrame, features: pd.DataFrame, schema) -> None:
    assert list(restored.columns) == list(features.columns) == schema.names
    for spec in schema.columns:
        got, seen = restored[spec.name], features[spec.name]
        assert got.dtype == seen.dtype, (spec.name, got.dtype, seen.dtype)
        if spec.kind == "categorical":
            assert set(got.tolist()) <= set(seen.tolist()), spec.name
            if isinstance(seen.dtype, pd.CategoricalDtype):
                assert set(got.cat.categories) <= set(seen.cat.categories)
        else:
            low, high = seen.min(), seen.max()
            assert got.between(low, high).all(), (spec.name, got.min(), got.max(), low, high)
            if pd.api.types.is_integer_dtype(seen.dtype):
                assert pd.api.types.is_integer_dtype(got.dtype)


@MEDIUM
@given(frame=labelled_frames(), continuous=st.sampled_from(["gmm", "quantile"]))
def test_encoder_round_trip_keeps_schema(frame, continuous):
    schema, features, encoder = _fitted(frame, continuous)
    encoded = encoder.transform(features)
    assert encoded.shape == (len(features), encoder.output_dim)
    assert np.isfinite(encoded).all()
    restored = encoder.inverse_transform(encoded)
    assert len(restored) == len(features)
    _check_valid_rows(restored, features, schema)
    # One-hot blocks decode exactly: seen categories come back unchanged, row for row.
    for spec in schema.categorical:
        assert restored[spec.name].tolist() == features[spec.name].tolist(), spec.name


@MEDIUM
@given(
    frame=labelled_frames(),
    continuous=st.sampled_from(["gmm", "quantile"]),
    seed=st.integers(0, 2**32 - 1),
    scale=st.sampled_from([0.1, 1.0, 5.0, 100.0]),
    n_rows=st.integers(1, 50),
)
def test_encoder_decodes_any_vector_to_valid_rows(frame, continuous, seed, scale, n_rows):
    schema, features, encoder = _fitted(frame, continuous)
    noise = np.random.default_rng(seed).normal(0.0, scale, size=(n_rows, encoder.output_dim))
    restored = encoder.inverse_transform(noise)
    assert len(restored) == n_rows
    _check_valid_rows(restored, features, schema)


# -- the shard store ------------------------------------------------------------------------------


@st.composite
def frames_and_chunks(draw):
    sizes = draw(st.lists(st.integers(0, 25), min_size=1, max_size=8))
    total = sum(sizes)
    assume(total > 0)
    frame = pd.DataFrame(
        {
            "x": np.arange(total, dtype=np.int64),
            "value": draw(st.lists(st.floats(**_finite), min_size=total, max_size=total)),
            "word": draw(st.lists(_words, min_size=total, max_size=total)),
            "flag": draw(st.lists(st.booleans(), min_size=total, max_size=total)),
            "label": draw(st.lists(st.sampled_from(["a", "b"]), min_size=total, max_size=total)),
            # Fixed categories, so some shards hold only part of them.
            "kind": pd.Categorical(
                draw(st.lists(st.sampled_from(["p", "q", "r"]), min_size=total, max_size=total)),
                categories=["p", "q", "r"],
            ),
        }
    )
    return frame, sizes


@FAST
@given(data=frames_and_chunks(), rows_per_shard=st.integers(1, 30))
def test_shards_round_trip_in_order(data, rows_per_shard):
    frame, sizes = data
    with tempfile.TemporaryDirectory() as tmp:
        out = prepare_output(Path(tmp) / "run", overwrite=False)
        with ShardWriter(out, rows_per_shard) as writer:
            start = 0
            for size in sizes:
                writer.write(frame.iloc[start : start + size])
                start += size
            files = writer.commit()
        finalize(out, {"files": files})
        back = read_shards(out)
    rows = [entry["rows"] for entry in files]
    assert sum(rows) == len(frame)
    assert all(n == rows_per_shard for n in rows[:-1])
    assert 1 <= rows[-1] <= rows_per_shard
    assert len(rows) == math.ceil(len(frame) / rows_per_shard)
    pd.testing.assert_frame_equal(back, frame.reset_index(drop=True), check_exact=True)
