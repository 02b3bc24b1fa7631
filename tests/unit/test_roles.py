"""Column roles inferred from a customer table as users have them (issue 16, item 1)."""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd
import pytest

from augment.tabular.roles import infer_roles


@pytest.fixture
def customers() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 300
    return pd.DataFrame(
        {
            "customer_id": [f"C{i:06d}" for i in range(n)],
            "row": np.arange(n) + 1000,
            "token": [str(uuid.UUID(int=int(rng.integers(0, 2**62)))) for _ in range(n)],
            "signup": pd.date_range("2024-01-01", periods=n, freq="D", tz="Europe/Paris"),
            "signup_text": [f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}" for i in range(n)],
            "amount": np.where(rng.random(n) < 0.1, np.nan, rng.gamma(2, 50, n)),
            "amount_whole": np.where(rng.random(n) < 0.1, np.nan, rng.integers(0, 500, n)),
            "country": pd.Series(rng.choice(["FR", "DE", None], n)),
            "vip": rng.random(n) < 0.2,
            "visits": rng.poisson(3, n).clip(0, 8),
            "age": pd.array(np.where(rng.random(n) < 0.2, None, rng.integers(18, 90, n)), "Int64"),
            "income": rng.normal(50_000, 1_000, n),
            "score_unique": rng.permutation(n) * 7,  # unique integers, but a measurement
            "note": [f"the customer wrote message number {i} about the product" for i in range(n)],
            "churned": rng.choice(["yes", "no"], n),
        }
    )


def test_every_role_is_inferred_with_its_evidence(customers):
    roles = {p.name: p for p in infer_roles(customers, "churned")}
    assert "churned" not in roles
    expected = {
        "customer_id": "id",
        "row": "id",
        "token": "id",
        "signup": "datetime",
        "signup_text": "datetime",
        "amount": "continuous",
        "amount_whole": "integer",
        "country": "categorical",
        "vip": "boolean",
        "visits": "categorical",
        "age": "integer",
        "income": "continuous",
        "score_unique": "integer",  # unique per row, not consecutive, not named like a key
        "note": "text",
    }
    assert {name: p.role for name, p in roles.items()} == expected
    assert roles["country"].missing == pytest.approx(customers["country"].isna().mean())
    assert roles["age"].missing == pytest.approx(0.2, abs=0.06)
    assert roles["signup"].distinct == len(customers)
    assert "UUID" in roles["token"].why


def test_overrides_win_and_bad_ones_are_named(customers):
    roles = {p.name: p.role for p in infer_roles(customers, "churned", {"note": "ignore"})}
    assert roles["note"] == "ignore"
    with pytest.raises(ValueError, match="not in the table: \\['nope'\\]"):
        infer_roles(customers, "churned", {"nope": "id"})
    with pytest.raises(ValueError, match="unknown roles"):
        infer_roles(customers, "churned", {"note": "prose"})


def _job_config(tmp_path, table: pd.DataFrame, **data) -> dict:
    table.to_parquet(tmp_path / "t.parquet")
    return {
        "name": "roles",
        "data": {"source": str(tmp_path / "t.parquet"), "label": "churned", **data},
        "train": {"steps": 1, "device": "cpu"},
        "output": {"path": str(tmp_path / "run")},
        "tracking": {"enabled": False},
        "validate": {"enabled": False},
    }


def test_text_is_refused_in_the_words_of_the_interface(customers, tmp_path):
    from augment import GANOverSampler
    from augment.core.errors import DataError
    from augment.core.shards import read_shards
    from augment.pipeline.config import parse_config
    from augment.pipeline.job import run_job

    X = customers[["note", "amount", "income"]].fillna(0.0)
    y = customers["churned"]
    with pytest.raises(DataError) as caught:
        GANOverSampler(steps=1).fit_resample(X, y)
    message = str(caught.value)
    assert "'note' looks like free text (many distinct long strings with words)" in message
    assert "columns={'note': 'ignore'}" in message and "columns={'note': 'categorical'}" in message
    assert "X.drop(columns=['note'])" in message and "data." not in message

    table = customers[["note", "amount", "income", "churned"]].fillna(0.0)
    config = _job_config(tmp_path, table)
    with pytest.raises(DataError) as caught:
        run_job(parse_config(config))
    message = str(caught.value)
    assert "data.columns.note: ignore" in message and "data.drop_columns: ['note']" in message
    assert "columns=" not in message
    # declared ignore: left out of the model, missing in every generated row
    config["data"]["columns"] = {"note": "ignore"}
    result = run_job(parse_config(config))
    synthetic = read_shards(result.output)
    assert len(synthetic) == sum(result.plan.values()) > 0
    assert synthetic["note"].isna().all() and str(synthetic["note"].dtype) == "str"


def test_declared_roles_are_checked_against_the_values(customers, tmp_path):
    from augment import GANOverSampler
    from augment.core.errors import DataError
    from augment.pipeline.config import parse_config
    from augment.pipeline.job import run_job

    X = customers[["amount", "income", "country", "signup_text"]]
    y = customers["churned"]

    def refused(**params) -> str:
        with pytest.raises(DataError) as caught:
            GANOverSampler(steps=1, **params).fit_resample(X, y)
        return str(caught.value)

    assert "'amount' holds numbers (float64), not times" in refused(columns={"amount": "datetime"})
    assert "declare columns={'amount': 'continuous'}" in refused(columns={"amount": "datetime"})
    message = refused(columns={"signup_text": "boolean"})
    assert "'signup_text' has 84 distinct values" in message and "at most two" in message
    assert "cannot be continuous" in refused(columns={"country": "continuous"})
    assert "not in X: ['nope']" in refused(columns={"nope": "id"})
    assert "'prose' is not a role" in refused(columns={"income": "prose"})
    assert "give it one role" in refused(
        categorical_columns=["income"], columns={"income": "continuous"}
    )
    assert "declare columns={'income': 'ignore'}" in refused(columns={"income": "text"})
    # a date string that does not parse: the row and the value, and the way out
    bad = X.assign(signup_text=X["signup_text"].mask(X.index == 7, "2024-13-45"))
    with pytest.raises(DataError) as caught:
        GANOverSampler(steps=1).fit_resample(bad, y)
    assert "row 7 ('2024-13-45') does not parse as %Y-%m-%d" in str(caught.value)
    assert "columns={'signup_text': 'categorical'}" in str(caught.value)
    # an array's columns are named by position
    with pytest.raises(DataError, match=r"not in X: \[5\]"):
        GANOverSampler(columns={5: "id"}).fit_resample(X[["amount", "income"]].to_numpy(), y)

    # the job words the same checks as YAML keys
    config = _job_config(tmp_path, customers[["amount", "income", "churned"]])
    config["data"]["columns"] = {"amount": "datetime"}
    with pytest.raises(DataError) as caught:
        run_job(parse_config(config))
    assert "declare data.columns.amount: continuous" in str(caught.value)
    assert "columns=" not in str(caught.value)


def test_a_column_mixing_numbers_and_text_is_one_short_error(tmp_path):
    from augment import GANOverSampler
    from augment.core.errors import DataError
    from augment.pipeline.config import parse_config
    from augment.pipeline.job import run_job

    rng = np.random.default_rng(1)
    n = 120
    amount = pd.Series(rng.gamma(2, 50, n).round(2), dtype=object)
    amount[17] = "n/a"
    X = pd.DataFrame({"amount": amount, "income": rng.normal(size=n)})
    y = pd.Series(np.where(np.arange(n) % 5 == 0, "yes", "no"), name="churned")
    with pytest.raises(DataError) as caught:
        GANOverSampler(steps=1).fit_resample(X, y)
    assert str(caught.value) == (
        "column 'amount' mixes numbers and text (row 17: 'n/a'); clean it or declare "
        "columns={'amount': 'categorical'}"
    )
    # a CSV gives strings: most parse as numbers, one does not ("n/a" would be read as NaN)
    csv = tmp_path / "t.csv"
    X.assign(amount=X["amount"].replace("n/a", "unknown"), churned=y).to_csv(csv, index=False)
    config = _job_config(tmp_path, X.assign(churned=y).astype({"amount": str}))
    config["data"]["source"] = str(csv)
    with pytest.raises(DataError) as caught:
        run_job(parse_config(config))
    assert str(caught.value) == (
        "column 'amount' mixes numbers and text (row 17: 'unknown'); clean it or declare "
        "data.columns.amount: categorical"
    )
    # declared categorical, the user's choice: no refusal
    X_res, _ = GANOverSampler(steps=2, columns={"amount": "categorical"}).fit_resample(X, y)
    assert set(X_res["amount"]) <= set(X["amount"])


def test_duplicate_column_names_are_a_data_error_naming_the_column():
    from augment import GANOverSampler
    from augment.core.errors import DataError

    X = pd.DataFrame(np.random.default_rng(0).random((30, 3)), columns=["a", "b", "a"])
    y = np.r_[np.zeros(24), np.ones(6)]
    with pytest.raises(DataError, match="column 'a' appears 2 times"):
        GANOverSampler(steps=2).fit_resample(X, y)


def test_a_csv_true_false_column_with_gaps_is_boolean(tmp_path):
    """Issue 32 item 9: pandas reads a CSV's True/False column with gaps as Python bools in an
    object column; profile called it "2 distinct strings", role categorical."""
    from augment.tabular.sources import read_table

    n = 60
    pd.DataFrame(
        {
            "vip": pd.array([None if i % 7 == 0 else i % 2 == 0 for i in range(n)], "boolean"),
            "y": np.arange(n) % 3,
        }
    ).to_csv(tmp_path / "data.csv", index=False)
    frame, _ = read_table(str(tmp_path / "data.csv"), "y", "auto")
    assert frame["vip"].dtype == object  # as pandas reads it
    (vip,) = [column for column in infer_roles(frame, "y") if column.name == "vip"]
    assert (vip.role, vip.why, vip.distinct) == ("boolean", "true/false values", 2)
