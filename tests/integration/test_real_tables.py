"""Issue 16's acceptance test: a customer table as users have it, through ``fit_resample`` and
through ``augment run``, with default roles and settings (few steps).

Every column comes back with its dtype; gaps come back at their per-class rate (within 0.1);
datetimes and date strings stay inside the seen range; ids are fresh, unique and never a real
one; the job's shards read back with the input's Parquet schema.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch
from typer.testing import CliRunner

from augment import DataError, ShardDataset
from augment.cli import app
from augment.core.shards import read_manifest, read_shards

STEPS = 60
GAPPED = ("amount", "country", "vip", "orders", "age")


def _customers(n: int = 700) -> pd.DataFrame:
    rng = np.random.default_rng(16)
    churned = rng.random(n) < 0.2
    amount = rng.gamma(2, 40, n) * np.where(churned, 1.5, 1.0)
    amount[rng.random(n) < np.where(churned, 0.3, 0.1)] = np.nan  # gaps, more when churned
    signup = pd.Timestamp("2022-01-01 09:00", tz="UTC") + pd.to_timedelta(
        rng.integers(0, 900 * 86400, n), "s"
    )
    last_order = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 365, n), "D")
    vip = pd.array(np.where(rng.random(n) < 0.15, None, rng.random(n) < 0.3), dtype="boolean")
    orders = pd.array(np.where(rng.random(n) < 0.1, None, rng.poisson(4, n)), dtype="Int64")
    age = np.where(rng.random(n) < 0.2, np.nan, rng.integers(18, 90, n).astype(float))
    return pd.DataFrame(
        {
            "customer_id": [f"C{i:06d}" for i in rng.permutation(n) + 100],
            "signup": signup.tz_convert("Europe/Paris"),  # tz-aware, to the second
            "last_order": last_order.strftime("%Y-%m-%d"),  # dates as strings
            "amount": amount,
            "country": pd.Series(
                rng.choice(["FR", "DE", "ES", "IT", None], n, p=[0.4, 0.3, 0.15, 0.1, 0.05])
            ),
            "vip": vip,
            "orders": orders,
            "age": age,
            "churned": np.where(churned, "yes", "no"),
        }
    )


def _check_generated(real: pd.DataFrame, generated: pd.DataFrame) -> None:
    """What every generated table must satisfy, whichever interface made it."""
    assert generated.dtypes.to_dict() == real.dtypes.to_dict()
    assert generated["churned"].eq("yes").sum() > 100
    # ids: fresh, unique, never a real one, of the real form
    ids = generated["customer_id"]
    assert ids.is_unique and not set(ids) & set(real["customer_id"])
    assert ids.str.fullmatch(r"C\d{6}").all()
    # gaps at their per-class rate
    for cls in ("yes", "no"):
        fake, true = generated[generated["churned"] == cls], real[real["churned"] == cls]
        if fake.empty:
            continue
        for column in GAPPED:
            rate, expected = fake[column].isna().mean(), true[column].isna().mean()
            assert abs(rate - expected) <= 0.1, (cls, column, rate, expected)
    # times inside the seen range; date strings still dates of the same format
    assert generated["signup"].between(real["signup"].min(), real["signup"].max()).all()
    days = pd.to_datetime(generated["last_order"], format="%Y-%m-%d")
    seen = pd.to_datetime(real["last_order"], format="%Y-%m-%d")
    assert days.between(seen.min(), seen.max()).all()
    assert generated["country"].dropna().isin(set(real["country"].dropna())).all()
    assert generated["age"].dropna().between(real["age"].min(), real["age"].max()).all()


def test_fit_resample_gives_the_customer_table_back_in_its_own_form():
    from augment import GANOverSampler

    frame = _customers()
    X, y = frame.drop(columns="churned"), frame["churned"]
    sampler = GANOverSampler(steps=STEPS, random_state=0)
    X_res, y_res = sampler.fit_resample(X, y)
    pd.testing.assert_frame_equal(X_res.iloc[: len(X)], X)  # the real rows as they were
    generated = X_res.iloc[len(X) :].assign(churned=np.asarray(y_res[len(X) :]))
    _check_generated(frame, generated.reset_index(drop=True))
    assert sampler.synthesizer_.form.date_strings.columns["last_order"].format == "%Y-%m-%d"


def test_the_job_writes_shards_with_the_inputs_schema(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    frame = _customers()
    frame.to_parquet(tmp_path / "customers.parquet")
    args = ["run", "customers.parquet", "--label", "churned", "--set", f"train.steps={STEPS}"]
    args += ["--set", "output.rows_per_shard=150", "--set", "validate.min_lift=-1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "customers"
    parts = sorted((run / "synthetic").glob("*.parquet"))
    assert len(parts) > 1  # ids must be unique across shards, not only within one
    source = pq.read_schema(tmp_path / "customers.parquet")
    for part in parts:
        schema = pq.read_schema(part)
        assert {f.name: f.type for f in schema} == {f.name: f.type for f in source}, part
    synthetic = read_shards(run)
    _check_generated(frame, synthetic)
    manifest = read_manifest(run)
    assert manifest["columns"] == {"ids": ["customer_id"], "date_strings": ["last_order"]}
    printed = " ".join(result.output.split())
    assert "treated as ids, not learned: customer_id" in printed
    assert "1 id (fresh values): customer_id" in printed
    assert "treated as ids, not learned: customer_id" in (run / "report.html").read_text()
    assert "balanced_accuracy" in result.output  # validation ran on the model's form
    # the run as a dataset: the real train rows keep their own ids, the synthetic ones theirs
    both = ShardDataset(run, include_real=True, config=run / "job.yaml", features=["amount"])
    real_rows = both.frame[~both.synthetic_mask]
    assert real_rows["customer_id"].isin(set(frame["customer_id"])).all()
    assert real_rows["last_order"].isin(set(frame["last_order"])).all()
    assert both.frame["customer_id"].is_unique


def test_shard_dataset_opens_the_csv_run_with_defaults(tmp_path, monkeypatch):
    """Issue 32 item 3: the README's own command on the customer table as a CSV, then
    ``ShardDataset(run)`` with no arguments: ids left out, datetimes and date strings as seconds,
    gaps as value + flag (the encoding the job's classifiers scored), no NaN anywhere."""
    monkeypatch.chdir(tmp_path)
    frame = _customers()
    frame.to_csv(tmp_path / "data.csv", index=False)
    args = ["run", "data.csv", "--label", "churned", "--set", f"train.steps={STEPS}"]
    result = CliRunner().invoke(app, [*args, "--set", "validate.min_lift=-1"])
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "data"
    # issue 32 item 8: the columns line names datetimes as such and not the model's own flags
    printed = " ".join(result.output.split())
    columns = printed.split("columns ", 1)[1].split(" plan ", 1)[0]
    assert "2 datetime: signup, last_order" in columns and "__missing" not in columns
    assert "1 id (fresh values): customer_id" in columns
    # fidelity numbers come with a judgement, in the summary and in the report
    assert re.search(r"detection AUC [\d.]+ \((fine|told apart|easily told apart)", printed)
    assert re.search(r"DCR ratio [\d.]+ \((fine|near copies)", printed)
    page = (run / "report.html").read_text()
    assert "classes in column <code>churned</code>" in page and "never saw" not in page
    assert "<th>here</th>" in page

    synthetic = ShardDataset(run)
    both = ShardDataset(run, include_real=True)
    for data in (synthetic, both):
        assert not np.isnan(data.features).any()
        x, _ = data[0]
        assert not torch.isnan(x).any()
    assert both.feature_names == synthetic.feature_names
    names = synthetic.feature_names
    assert "customer_id" not in " ".join(names)  # an id is never a feature
    assert {"signup", "last_order", "amount", "amount__missing", "vip=None"} <= set(names)
    assert list(both.frame.columns) == list(frame.columns)  # the user's columns, in order
    # value + flag: the flag is set exactly where the row has a gap, the value where it has none
    amount, flag = names.index("amount"), names.index("amount__missing")
    gaps = both.frame["amount"].isna().to_numpy()
    assert gaps.any() and (both.features[:, flag] == gaps).all()
    np.testing.assert_allclose(
        both.features[~gaps, amount], both.frame["amount"][~gaps].to_numpy(), rtol=1e-6
    )
    # dates as seconds since the earliest training date: one day apart is 86,400 apart
    days = pd.to_datetime(both.frame["last_order"], format="%Y-%m-%d")
    seconds = both.features[:, names.index("last_order")]
    np.testing.assert_allclose(seconds - seconds.min(), (days - days.min()).dt.total_seconds())
    with pytest.raises(DataError, match="customer_id"):
        ShardDataset(run, features=["customer_id"])
