import numpy as np
import pandas as pd
import pytest

from augment.tabular.schema import infer_schema
from augment.tabular.transform import TabularEncoder, fit_mixtures


@pytest.mark.parametrize("continuous", ["quantile", "gmm"])
def test_round_trip_keeps_columns_dtypes_and_values(mixed_frame, continuous):
    schema = infer_schema(mixed_frame, "label")
    features = mixed_frame[schema.names]
    encoder = TabularEncoder(max_modes=4, continuous=continuous).fit(features, schema)
    encoded = encoder.transform(features)
    assert encoded.shape == (len(features), encoder.output_dim)
    assert encoded.dtype == np.float32
    first = encoder.spans[0]
    assert first.activation == ("linear" if continuous == "quantile" else "tanh")
    if continuous == "quantile":  # standard-normal marginals
        assert abs(encoded[:, 0].mean()) < 0.1 and abs(encoded[:, 0].std() - 1) < 0.2
    else:  # alpha within [-1, 1], then a one-hot mode
        assert np.all(np.abs(encoded[:, 0]) <= 1)
    restored = encoder.inverse_transform(encoded)
    assert list(restored.columns) == schema.names
    assert restored.dtypes.equals(features.dtypes)
    for column in ("channel", "member", "tier", "small_int"):
        assert (restored[column] == features[column]).all(), column
    np.testing.assert_allclose(restored["amount"], features["amount"], rtol=1e-4)
    assert (restored["visits"] == features["visits"]).all()
    assert list(restored["tier"].cat.categories) == list(features["tier"].cat.categories)


@pytest.mark.parametrize("continuous", ["quantile", "gmm"])
def test_decoded_values_stay_in_seen_range(mixed_frame, continuous):
    schema = infer_schema(mixed_frame, "label")
    encoder = TabularEncoder(max_modes=4, continuous=continuous)
    encoder.fit(mixed_frame[schema.names], schema)
    noise = np.random.default_rng(0).uniform(-3, 3, size=(500, encoder.output_dim))
    decoded = encoder.inverse_transform(noise)
    assert decoded["amount"].between(mixed_frame["amount"].min(), mixed_frame["amount"].max()).all()
    assert set(decoded["channel"]) <= set(mixed_frame["channel"])


@pytest.mark.parametrize("continuous", ["quantile", "gmm"])
def test_state_dict_round_trip(mixed_frame, continuous):
    schema = infer_schema(mixed_frame, "label")
    encoder = TabularEncoder(max_modes=4, continuous=continuous)
    encoder.fit(mixed_frame[schema.names], schema)
    clone = TabularEncoder.from_state_dict(encoder.state_dict())
    np.testing.assert_array_equal(clone.transform(mixed_frame), encoder.transform(mixed_frame))


def test_mixture_finds_two_modes():
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(-3, 0.3, 500), rng.normal(3, 0.3, 500)])[:, None]
    standardized = (values - values.mean()) / values.std()
    means, _, weights = fit_mixtures(standardized, max_modes=6)
    means, weights = means[0] * values.std() + values.mean(), weights[0]
    # each cluster holds half the mass (possibly split over several components), nothing between
    assert abs(weights[np.abs(means + 3) < 0.5].sum() - 0.5) < 0.02
    assert abs(weights[np.abs(means - 3) < 0.5].sum() - 0.5) < 0.02
    assert weights[np.abs(means) < 2].sum() < 0.01


@pytest.mark.parametrize("continuous", ["quantile", "gmm"])
def test_constant_column_is_encoded(continuous):
    frame = pd.DataFrame({"const": [5.0] * 20, "x": np.arange(20.0), "label": [0, 1] * 10})
    schema = infer_schema(frame, "label")
    encoder = TabularEncoder(continuous=continuous).fit(frame[schema.names], schema)
    restored = encoder.inverse_transform(encoder.transform(frame))
    assert (restored["const"] == 5.0).all()


def test_known_codes_decode_like_the_argmax(mixed_frame):
    # hard sampling hands the decoder each softmax span's winner; the rows must not change
    schema = infer_schema(mixed_frame, "label")
    encoder = TabularEncoder(4).fit(mixed_frame[schema.names], schema)
    encoded = encoder.transform(mixed_frame[schema.names])
    spans = encoder.spans
    starts = np.cumsum([0] + [span.dim for span in spans])
    codes = np.stack(
        [
            encoded[:, starts[i] : starts[i + 1]].argmax(axis=1)
            for i, span in enumerate(spans)
            if span.activation == "softmax"
        ],
        axis=1,
    )
    pd.testing.assert_frame_equal(
        encoder.inverse_transform(encoded, codes), encoder.inverse_transform(encoded)
    )
