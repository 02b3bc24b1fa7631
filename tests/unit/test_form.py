"""The model's form of a table and back: datetimes as seconds, gaps as a value and a flag."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from augment.tabular.form import TableForm


@pytest.fixture
def events() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 60
    seen = pd.Timestamp("2024-01-01 08:00") + pd.to_timedelta(rng.integers(0, 10**6, n), unit="s")
    frame = pd.DataFrame(
        {
            # dates in a zone with a daylight-saving change inside the range
            "signup": pd.date_range("2024-03-01", periods=n, freq="D", tz="Europe/Paris"),
            "seen": seen,
            "week": pd.date_range("2023-05-01", periods=n, freq="7D").astype("datetime64[s]"),
            "amount": np.where(rng.random(n) < 0.2, np.nan, rng.normal(size=n)),
            "age": pd.array(np.where(rng.random(n) < 0.3, None, rng.integers(18, 90, n)), "Int64"),
            "y": rng.choice(["a", "b"], n),
        }
    )
    frame.loc[3, "seen"] = pd.NaT
    return frame


def test_the_round_trip_gives_the_rows_back(events):
    form = TableForm.fit(events, "y")
    model = form.to_model(events)
    assert not model.isna().any().any()  # the model sees numbers and flags only
    assert set(model.columns) - set(events.columns) == {
        "seen__missing",
        "amount__missing",
        "age__missing",
    }
    assert model["signup"].dtype == np.float64 and model["signup"].min() == 0.0
    pd.testing.assert_frame_equal(form.restore(form.to_model(events)), events)
    again = TableForm.from_dict(form.to_dict())  # what a saved model keeps
    pd.testing.assert_frame_equal(again.restore(again.to_model(events)), events)


def test_generated_seconds_become_times_of_the_columns_kind(events):
    form = TableForm.fit(events, "y")
    model = form.to_model(events)
    noisy = model.assign(
        signup=model["signup"] + 5 * 3600,  # hours off: still a date (a local midnight)
        seen=model["seen"] + 0.4,  # under a second: rounded to whole seconds
        week=model["week"] * 10,  # far out: clipped to the seen range
    )
    rows = form.restore(noisy)
    assert rows.dtypes.to_dict() == events.dtypes.to_dict()
    local = rows["signup"].dt.tz_localize(None)
    assert (local == local.dt.normalize()).all()  # midnights, before and after the DST change
    assert rows["seen"].dropna().dt.microsecond.eq(0).all()
    assert rows["week"].max() == events["week"].max()
    assert rows["seen"].isna().sum() == 1 and rows["amount"].isna().sum() > 0


def test_date_strings_come_back_as_strings_in_their_format_within_the_seen_range():
    from augment.tabular.roles import ColumnRoles

    rng = np.random.default_rng(2)
    n = 80
    days = pd.Timestamp("2024-02-10") + pd.to_timedelta(rng.integers(0, 300, n), unit="D")
    stamps = pd.Timestamp("2024-05-01 08:00") + pd.to_timedelta(rng.integers(0, 10**6, n), "s")
    frame = pd.DataFrame(
        {
            "day": pd.Series(days.strftime("%Y-%m-%d"), dtype="string"),
            "european": days.strftime("%d/%m/%Y").astype(object),  # day first: 13/02/2024
            "stamp": stamps.tz_localize("Europe/Paris").strftime("%Y-%m-%dT%H:%M:%S%z"),
            "y": rng.choice(["a", "b"], n),
        }
    )
    frame.loc[4, "day"] = pd.NA
    roles = ColumnRoles(dict.fromkeys(["day", "european", "stamp"], "datetime"))
    form = TableForm.fit(frame, "y", roles)
    assert {name: c.format for name, c in form.date_strings.columns.items()} == {
        "day": "%Y-%m-%d",
        "european": "%d/%m/%Y",
        "stamp": "%Y-%m-%dT%H:%M:%S%z",
    }
    model = form.to_model(frame)
    assert model[["day", "european", "stamp"]].dtypes.eq(np.float64).all()
    assert "day__missing" in model
    back = form.restore(model.copy())
    assert back.dtypes.to_dict() == frame.dtypes.to_dict()
    pd.testing.assert_series_equal(back["day"], frame["day"])
    pd.testing.assert_series_equal(back["european"], frame["european"])
    # offsets are read as UTC and written in UTC: the same instants
    assert back["stamp"].str.endswith("+0000").all()
    assert (pd.to_datetime(back["stamp"]) == pd.to_datetime(frame["stamp"], utc=True)).all()
    # generated seconds far outside the range are clipped into it, still strings of the format
    wild = model.assign(day=model["day"] * 50 - 10**9, european=model["european"] + 10**9)
    again = TableForm.from_dict(form.to_dict()).restore(wild)
    assert again["day"].dropna().between(frame["day"].min(), frame["day"].max()).all()
    parsed = pd.to_datetime(again["european"], format="%d/%m/%Y")
    assert parsed.max() == pd.to_datetime(frame["european"], format="%d/%m/%Y").max()
