"""A customer table with gaps, nullable dtypes and a flag column, through the job (issue 16)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from typer.testing import CliRunner

from augment.cli import app
from augment.core.shards import read_manifest, read_shards
from augment.pipeline.registry import load_synthesizer

runner = CliRunner()


def _customers(n: int = 900) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    churned = np.where(rng.random(n) < 0.15, "yes", "no")
    amount = rng.gamma(2, 50, n)
    amount[rng.random(n) < np.where(churned == "yes", 0.35, 0.1)] = np.nan
    age = np.where(rng.random(n) < 0.2, None, rng.integers(18, 90, n))
    days = pd.to_timedelta(rng.integers(0, 700, n), unit="D")
    signup = (pd.Timestamp("2023-01-01") + days).tz_localize("Europe/Paris")  # local midnights
    seen = pd.Series(
        pd.Timestamp("2024-06-01 09:00") + pd.to_timedelta(rng.integers(0, 10**6, n), "s")
    )
    seen[rng.random(n) < 0.1] = pd.NaT
    return pd.DataFrame(
        {
            "signup": signup,  # dates in a zone
            "seen": seen,  # times to the second, some unknown
            "amount": amount,
            "age": pd.array(age, dtype="Int64"),
            "country": pd.array(rng.choice(["FR", "DE", "NZ", None], n), dtype="string"),
            "vip": rng.random(n) < 0.2,
            "visits": rng.poisson(3, n),
            "churned": churned,
        }
    )


def test_a_table_with_gaps_runs_with_defaults_and_keeps_them(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    frame = _customers()
    frame.to_parquet(tmp_path / "customers.parquet")
    args = ["run", "customers.parquet", "--label", "churned", "--set", "validate.min_lift=-1"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "customers"
    manifest = read_manifest(run)
    assert manifest["counts_generated"]["yes"] > 0
    # the shards have the input's schema: nullable integers and strings stay what they were
    shard_schema = pq.read_schema(next((run / "synthetic").glob("*.parquet")))
    assert str(shard_schema.field("age").type) == "int64"  # Int64 with nulls, as pandas wrote it
    synthetic = read_shards(run)
    assert str(synthetic["age"].dtype) == "Int64"
    assert synthetic["vip"].dtype == bool
    # gaps where the real rows have them, at their rate in the generated class
    real = frame[frame["churned"] == "yes"]
    fake = synthetic[synthetic["churned"] == "yes"]
    for column in ("amount", "age"):
        assert abs(fake[column].isna().mean() - real[column].isna().mean()) <= 0.1, column
    assert fake["amount"].dropna().between(0, frame["amount"].max()).all()
    # datetimes: the input's dtype and zone, inside the seen range, dates still dates
    assert synthetic["signup"].dtype == frame["signup"].dtype
    assert synthetic["signup"].between(frame["signup"].min(), frame["signup"].max()).all()
    local = synthetic["signup"].dt.tz_localize(None)
    assert (local == local.dt.normalize()).all()
    assert str(synthetic["seen"].dtype) == str(frame["seen"].dtype)
    assert abs(fake["seen"].isna().mean() - real["seen"].isna().mean()) <= 0.1
    # validation scored every arm (the holdout has gaps too)
    assert "balanced_accuracy" in result.output and "verdict" in result.output


def test_ids_are_fresh_and_unique_across_the_shards_and_parts_of_a_job(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    frame = _customers(400)[["amount", "visits", "churned"]]
    frame.insert(0, "customer_id", [f"C{i:06d}" for i in range(len(frame))])
    frame.to_parquet(tmp_path / "ids.parquet")
    args = ["run", "ids.parquet", "--label", "churned", "--set", "train.steps=2"]
    args += ["--set", "output.rows_per_shard=40", "--set", "validate.enabled=false"]
    args += ["--set", "generate.part_rows=50"]  # parts of their own seeds and id ranges
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "treated as ids, not learned: customer_id" in " ".join(result.output.split())
    run = tmp_path / "runs" / "ids"
    manifest = read_manifest(run)
    assert manifest["columns"] == {"ids": ["customer_id"]}
    assert len(list((run / "synthetic").glob("*.parquet"))) > 1
    assert manifest["generation"]["parts"] > 1
    synthetic = read_shards(run)
    assert len(synthetic) == manifest["counts_generated"]["yes"] > 40
    assert synthetic["customer_id"].is_unique
    assert not set(synthetic["customer_id"]) & set(frame["customer_id"])
    assert synthetic["customer_id"].str.fullmatch(r"C\d{6}").all()
    # workers sharing out more rows from the model file (docs/operations.md): disjoint id ranges
    # after the job's own rows give ids that no shard and no real row has
    synth = load_synthesizer(run / "model" / "synthesizer.pt")
    issued = len(synthetic)
    parts = [
        pd.concat(rows for _, rows in synth.class_batches({"yes": 30}, seed=k, first_id=first))
        for k, first in enumerate((issued, issued + 30))
    ]
    more = pd.concat([synthetic["customer_id"], *(part["customer_id"] for part in parts)])
    assert more.is_unique and not set(more) & set(frame["customer_id"])
