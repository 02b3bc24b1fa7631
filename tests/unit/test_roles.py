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


def test_ids_and_text_are_refused_in_the_words_of_the_interface(customers, tmp_path):
    from augment import GANOverSampler
    from augment.core.errors import DataError
    from augment.pipeline.config import parse_config
    from augment.pipeline.job import run_job

    X = customers[["customer_id", "amount", "income"]].fillna(0.0)
    y = customers["churned"]
    with pytest.raises(DataError) as caught:
        GANOverSampler(steps=1).fit_resample(X, y)
    message = str(caught.value)
    assert "'customer_id' looks like an id (unique per row, named like a key)" in message
    assert "X.drop(columns=['customer_id'])" in message and "data." not in message

    table = customers[["note", "amount", "income", "churned"]].fillna(0.0)
    table.to_parquet(tmp_path / "t.parquet")
    config = {
        "name": "texty",
        "data": {"source": str(tmp_path / "t.parquet"), "label": "churned"},
        "train": {"steps": 1, "device": "cpu"},
        "output": {"path": str(tmp_path / "run")},
        "tracking": {"enabled": False},
    }
    with pytest.raises(DataError, match=r"'note' looks like free text .*data.drop_columns"):
        run_job(parse_config(config))
    # declared as a category, it is the user's choice: no refusal
    config["data"]["columns"] = {"note": "categorical"}
    config["data"]["max_categories"] = 1000
    config["validate"] = {"enabled": False}
    assert run_job(parse_config(config)).counts_after
