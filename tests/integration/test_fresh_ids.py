"""Generated ids never reuse a real one, wherever the real row is (issue 32, item 1).

A job's generator learns from the train split alone, but the holdout and the rows left out for a
missing label are real customers too: a fresh id continues after the largest id of the whole
source, in the shards, in the model file (what ``sample`` and the served model use) and on a
rerun that finds a cached generator.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from augment.core.balance import split_holdout
from augment.core.shards import read_shards
from augment.pipeline.config import load_config
from augment.pipeline.job import run_job
from augment.pipeline.registry import load_synthesizer
from augment.tabular.sources import read_table
from tests.conftest import write_config

FIRST = 100  # the smallest id number: customer ids C000100, C000101, ...


def _customers(n: int = 240) -> pd.DataFrame:
    rng = np.random.default_rng(32)
    churned = rng.random(n) < 0.2
    return pd.DataFrame(
        {
            "customer_id": [f"C{FIRST + i:06d}" for i in range(n)],
            "amount": rng.gamma(2, 40, n) * np.where(churned, 1.5, 1.0),
            "visits": rng.poisson(3, n),
            "churned": np.where(churned, "yes", "no"),
        }
    )


def _config(tmp_path, mlflow_uri, source, name, **data):
    return load_config(
        write_config(
            tmp_path,
            mlflow_uri,
            name=name,
            data={"source": str(source), "label": "churned", "imbalance_ratio": None, **data},
            train={"steps": 10, "checkpoint_every": 10},
            output={"path": str(tmp_path / name)},
            validate={"enabled": False},
        )
    )


def _numbers(ids: pd.Series) -> pd.Series:
    assert ids.str.fullmatch(r"C\d{6}").all()
    return ids.str.slice(1).astype(int)


def _check_fresh(result, source: pd.DataFrame, name: str, tmp_path) -> None:
    """The job's shards and more rows from its model file: unique ids that no source row has,
    counting on from the source's largest + 1."""
    real = set(source["customer_id"])
    top = int(_numbers(source["customer_id"]).max())
    synthetic = read_shards(result.output)
    assert len(synthetic) > 40
    ids = synthetic["customer_id"]
    assert ids.is_unique and not set(ids) & real
    assert int(_numbers(ids).min()) == top + 1
    # the model file carries the raised form: sample() and the served model count on from it
    synth = load_synthesizer(tmp_path / name / "model" / "synthesizer.pt")
    more = synth.sample_frame({"yes": 30}, seed=1)["customer_id"]
    assert not set(more) & real and int(_numbers(more).min()) == top + 1


def _says_where_ids_start(result, source: pd.DataFrame) -> bool:
    top = int(_numbers(source["customer_id"]).max())
    return any(f"customer_id from C{top + 1:06d}" in note for note in result.notes)


def _largest_id_to(frame: pd.DataFrame, config, side: str) -> int:
    """Swap the largest id into the first row of the job's train or holdout split (the split
    depends on the labels alone); returns that row."""
    train, holdout = split_holdout(frame, "churned", config.validate_.holdout, config.train.seed)
    row = int((holdout if side == "holdout" else train).index[0])
    top = int(_numbers(frame["customer_id"]).idxmax())
    column = frame.columns.get_loc("customer_id")
    frame.iloc[[top, row], column] = frame.iloc[[row, top], column].to_numpy()
    return row


def test_generated_ids_continue_after_the_largest_id_in_the_holdout(tmp_path, mlflow_uri):
    frame = _customers()
    source = tmp_path / "customers.csv"
    config = _config(tmp_path, mlflow_uri, source, "holdout")
    row = _largest_id_to(frame, config, "holdout")
    frame.to_csv(source, index=False)

    result = run_job(config)

    split = json.loads((tmp_path / "holdout" / "holdout_ids.json").read_text())
    assert row in split["row_ids"]  # the largest id was held out, as arranged
    _check_fresh(result, frame, "holdout", tmp_path)
    assert _says_where_ids_start(result, frame)


def test_generated_ids_continue_after_the_largest_id_of_a_row_left_out(tmp_path, mlflow_uri):
    """The largest id is in a row without a label (left out). A job on the same table without
    that row ran first (its largest id in the train split, so its ids were right): the same
    training rows find its cached generator, whose ids count from that smaller source's largest
    id, and it must not be reused."""
    frame = _customers()
    smaller = tmp_path / "smaller.csv"
    config = _config(tmp_path, mlflow_uri, smaller, "smaller")
    _largest_id_to(frame, config, "train")
    frame.to_csv(smaller, index=False)
    _check_fresh(run_job(config), frame, "smaller", tmp_path)

    unlabelled = {"customer_id": f"C{FIRST + len(frame):06d}", "amount": 50.0, "visits": 2}
    frame = pd.concat([frame, pd.DataFrame([unlabelled])], ignore_index=True)  # churned: NaN
    source = tmp_path / "customers.csv"
    frame.to_csv(source, index=False)

    result = run_job(_config(tmp_path, mlflow_uri, source, "left-out"))

    split = json.loads((tmp_path / "left-out" / "holdout_ids.json").read_text())
    assert len(frame) - 1 not in split["row_ids"] + split["train_row_ids"]  # left out
    assert any("without a label" in note for note in result.notes)
    _check_fresh(result, frame, "left-out", tmp_path)
    assert _says_where_ids_start(result, frame)


def test_generated_ids_continue_after_the_largest_id_a_sample_skipped(tmp_path, mlflow_uri):
    """A Parquet source larger than data.max_rows is fitted on a sample; the rows it skipped
    are never read whole, but their ids count: one more pass reads the id column alone."""
    frame = _customers()
    source = tmp_path / "customers.parquet"
    config = _config(tmp_path, mlflow_uri, source, "sampled", max_rows=150)
    frame.to_parquet(source)
    # which rows the sample keeps depends on the labels alone: move the largest id to one it skips
    sample, _ = read_table(str(source), "churned", max_rows=150, seed=config.train.seed)
    skipped = int(np.flatnonzero(~frame["customer_id"].isin(sample["customer_id"]))[0])
    top = int(_numbers(frame["customer_id"]).idxmax())
    column = frame.columns.get_loc("customer_id")
    frame.iloc[[top, skipped], column] = frame.iloc[[skipped, top], column].to_numpy()
    frame.to_parquet(source)

    result = run_job(config)

    assert any("data.max_rows=150" in note for note in result.notes)
    _check_fresh(result, frame, "sampled", tmp_path)
    assert _says_where_ids_start(result, frame)
