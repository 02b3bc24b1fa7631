"""The generation plan cut into parts (augment.core.parts): counts, seeds, ids, records."""

from __future__ import annotations

import pandas as pd
import pytest

from augment.core.parts import (
    cut_plan,
    finished_record,
    merge_records,
    part_key,
    part_seed,
    remove_other_parts,
    write_record,
)
from augment.core.shards import SHARD_DIR, ShardWriter


def test_parts_hold_the_plan_exactly_with_their_own_seeds_and_rows():
    plan = {"a": 0, "b": 250, "c": 30, "d": 125}
    parts = cut_plan(plan, part_rows=100, seed=7)
    assert [p.counts for p in parts] == [
        {"b": 100},
        {"b": 100},
        {"b": 50, "c": 30, "d": 20},
        {"d": 100},
        {"d": 5},
    ]
    assert [p.first_row for p in parts] == [0, 100, 200, 300, 400]
    assert [p.offsets for p in parts] == [
        {"b": 0},
        {"b": 100},
        {"b": 200, "c": 0, "d": 0},
        {"d": 20},
        {"d": 120},
    ]
    seeds = [p.seed for p in parts]
    assert seeds[0] == 7 and len(set(seeds)) == len(seeds)  # part 0 keeps the job's seed
    # the parts depend on the plan, part_rows and seed only
    assert cut_plan(plan, 100, 7) == parts
    assert [p.seed for p in cut_plan(plan, 100, 8)][1:] != seeds[1:]
    assert cut_plan(plan, 10**6, 7)[0].counts == {"b": 250, "c": 30, "d": 125}
    assert cut_plan({"a": 0}, 100, 0) == []
    with pytest.raises(ValueError, match="part_rows"):
        cut_plan(plan, 0, 0)


def test_part_seeds_are_spawned_not_counted():
    assert part_seed(0, 0) == 0 and part_seed(5, 0) == 5
    # neighbouring job seeds never share part seeds (a seed + index scheme would)
    assert not {part_seed(0, k) for k in range(1, 50)} & {part_seed(1, k) for k in range(1, 50)}


def _write_part(out, part, key, rows_per_shard=2):
    with ShardWriter(out, rows_per_shard, part=part.index) as writer:
        for cls, n in part.counts.items():
            writer.write(pd.DataFrame({"x": range(n), "label": [cls] * n}))
        files = writer.commit()
    return write_record(
        out,
        {
            **part.describe(),
            "key": key,
            "files": files,
            "origin": {"gan": part.describe()["counts"]},
        },
    )


def test_a_part_is_done_only_with_its_key_and_intact_files(tmp_path):
    parts = cut_plan({"a": 3, "b": 4}, part_rows=4, seed=0)
    keys = [part_key(p, "model-digest", {"rows_per_shard": 2}) for p in parts]
    records = [_write_part(tmp_path, p, k) for p, k in zip(parts, keys, strict=True)]
    assert sorted(p.name for p in (tmp_path / SHARD_DIR).glob("part-*.parquet")) == [
        "part-00000-00000.parquet",
        "part-00000-00001.parquet",
        "part-00001-00000.parquet",
        "part-00001-00001.parquet",
    ]
    assert finished_record(tmp_path, parts[0], keys[0]) == records[0]
    other = part_key(parts[0], "another-model", {"rows_per_shard": 2})
    assert finished_record(tmp_path, parts[0], other) is None
    (tmp_path / SHARD_DIR / "part-00001-00001.parquet").write_bytes(b"changed")
    assert finished_record(tmp_path, parts[1], keys[1]) is None

    merged = merge_records({"a": 3, "b": 4, "c": 0}, records)
    assert merged.counts == {"a": 3, "b": 4, "c": 0}
    assert [f["path"] for f in merged.files] == [
        f"{SHARD_DIR}/part-00000-00000.parquet",
        f"{SHARD_DIR}/part-00000-00001.parquet",
        f"{SHARD_DIR}/part-00001-00000.parquet",
        f"{SHARD_DIR}/part-00001-00001.parquet",
    ]
    assert merged.origin == {"gan": {"a": 3, "b": 4, "c": 0}}
    with pytest.raises(RuntimeError, match="differ from the plan"):
        merge_records({"a": 3, "b": 5}, records)

    # a smaller plan: the parts it does not have go, records first
    remove_other_parts(tmp_path, cut_plan({"a": 3}, part_rows=4, seed=0))
    left = sorted(p.name for p in (tmp_path / SHARD_DIR).rglob("*") if p.is_file())
    assert left == ["part-00000-00000.parquet", "part-00000-00001.parquet", "part-00000.json"]


def test_cpu_threads_applies_omp_num_threads_set_after_torch_started(monkeypatch):
    """distributed's LocalCluster sets OMP_NUM_THREADS=1 in the process that starts its workers;
    a job there must then run torch on one thread, as the workers do, or its bytes differ."""
    import torch

    from augment.core.device import cpu_threads

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        with cpu_threads(None):
            assert torch.get_num_threads() == 1
        monkeypatch.delenv("OMP_NUM_THREADS")
        with cpu_threads(1):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_part_threads_follow_the_cores_the_torch_threads_and_the_parts(monkeypatch):
    from augment.pipeline import job

    monkeypatch.setattr(job, "available_cores", lambda: 8)
    assert job.part_threads(None, 1, parts=20) == 8  # a part per core
    assert job.part_threads(None, 2, parts=20) == 4  # each part takes two cores
    assert job.part_threads(None, None, parts=20) == 1  # each part takes every core
    assert job.part_threads(None, 1, parts=3) == 3  # never more than the parts to make
    assert job.part_threads(None, 1, parts=0) == 1
    assert job.part_threads(5, 4, parts=20) == 5  # what the config says
    monkeypatch.setattr(job, "available_cores", lambda: 1)
    assert job.part_threads(None, 1, parts=20) == 1


def test_a_part_that_fails_among_threads_raises_its_error_and_records_nothing(
    tmp_path, monkeypatch
):
    import threading

    from augment.core.parts import RECORD_DIR
    from augment.pipeline import parts as making

    parts = cut_plan({"a": 40}, part_rows=10, seed=0)
    started: list[int] = []
    lock = threading.Lock()
    broken = {1}

    def make(job, part, key, generator):  # a stand-in for making a part: its record only
        with lock:
            started.append(part.index)
        if part.index in broken:
            raise ValueError(f"part {part.index} broke")
        return write_record(job.location, {**part.describe(), "key": key, "files": []})

    monkeypatch.setattr(making, "_make_part", make)
    job = making.PartsJob(kind="tabular", output=str(tmp_path), settings={}, digest="d")
    with pytest.raises(ValueError, match="part 1 broke"):
        making.make_parts(job, parts, generator=object(), threads=2)
    assert 1 in started
    records = {p.name for p in (tmp_path / SHARD_DIR / RECORD_DIR).glob("*.json")}
    assert "part-00001.json" not in records
    # the next attempt keeps the parts that finished and makes only the rest, in order
    broken.clear()
    started.clear()
    made = making.make_parts(job, parts, generator=object(), threads=2)
    assert [record["index"] for record in made] == [0, 1, 2, 3]
    done_before = {int(name[5:10]) for name in records}
    assert 1 in started and not done_before & set(started)
