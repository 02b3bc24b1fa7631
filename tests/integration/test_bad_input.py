"""Every bad-input case of the job, through the Python API and through the CLI.

Each case must give, by both routes: a typed error from ``augment.core.errors`` (the CLI: its exit code),
a one-line message that names the file, column, class or key and says how to fix it, no traceback
without ``--debug``, and nothing under the output path (a folder the job created is removed again).
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from augment import (
    AugmentError,
    ConfigError,
    DataError,
    DeviceError,
    ModelFileError,
    OutputError,
    load_config,
    run_job,
)
from augment.cli import app
from augment.core.shards import SUCCESS, read_manifest
from tests.conftest import image_config, write_config

runner = CliRunner()


@dataclass
class Case:
    """``setup(tmp_path)`` writes the inputs and returns (config path, --set overrides)."""

    setup: Callable[[Path], tuple[Path, list[str]]]
    error: type[AugmentError]
    fragments: tuple[str, ...]
    output_kept: bool = (
        False  # the output held files before (a run, a checkpoint): kept as they were
    )
    patches: dict[str, object] = field(default_factory=dict)


# -- inputs --------------------------------------------------------------------------------------


def _frame(n_x: int = 40, n_y: int = 20, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = n_x + n_y
    return pd.DataFrame(
        {
            "amount": rng.normal(size=n),
            "visits": rng.normal(size=n) * 3,
            "label": ["x"] * n_x + ["y"] * n_y,
        }
    )


def _table_job(tmp: Path, frame: pd.DataFrame, *overrides: str, name: str = "t.parquet"):
    source = tmp / name
    if name.endswith(".csv"):
        frame.to_csv(source, index=False)
    else:
        frame.to_parquet(source)
    path = write_config(tmp, None, data={"source": str(source), "label": "label"})
    return path, list(overrides)


def _source_file(tmp: Path, name: str, content: bytes):
    (tmp / name).write_bytes(content)
    path = write_config(tmp, None, data={"source": str(tmp / name), "label": "label"})
    return path, []


def _truncated_parquet(tmp: Path):
    buffer = io.BytesIO()
    _frame().to_parquet(buffer)
    return _source_file(tmp, "cut.parquet", buffer.getvalue()[: len(buffer.getvalue()) // 2])


def _png(value: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((10, 10), value, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def _image_job(
    tmp: Path, bad: dict[str, bytes] | None = None, empty_class: bool = False, dogs: int = 4
):
    """An image folder of two classes, plus the given bad files under ``cat/``."""
    root = tmp / "pets"
    for cls, n in (("cat", 8), ("dog", dogs)):
        (root / cls).mkdir(parents=True)
        for i in range(n):
            (root / cls / f"{i}.png").write_bytes(_png(30 * i))
    for name, content in (bad or {}).items():
        (root / "cat" / name).write_bytes(content)
    if empty_class:
        (root / "bird").mkdir()
    path = image_config(tmp, None, data={"source": str(root), "imbalance_ratio": None})
    return path, []


def _unwritable_parent(tmp: Path) -> Path:
    """A folder in which nobody may create anything (root ignores modes, so use /sys for root)."""
    if os.geteuid() == 0:
        return Path("/sys")
    locked = tmp / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    return locked


def _finished_run(tmp: Path):
    path = write_config(tmp, None, train={"steps": 4}, validate={"enabled": False})
    run_job(load_config(path))
    return path, []


def _damaged_checkpoint(tmp: Path):
    checkpoints = tmp / "out" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / "unit-all.pt").write_bytes(b"PK\x03\x04 half a zip file")
    return write_config(tmp, None), []


def _users_folder(tmp: Path, *overrides: str):
    """The output is a non-empty folder of the user's: a document and a subfolder."""
    (tmp / "out" / "drafts").mkdir(parents=True)
    (tmp / "out" / "thesis.tex").write_text("mine")
    (tmp / "out" / "drafts" / "v1.txt").write_text("mine too")
    return write_config(tmp, None), list(overrides)


def _with_output(path_under: Callable[[Path], Path]):
    def setup(tmp: Path):
        path = write_config(tmp, None)
        return path, [f"output.path={path_under(tmp)}"]

    return setup


def _file(tmp: Path, name: str) -> Path:
    (tmp / name).write_text("I am a file")
    return tmp / name


CASES: dict[str, Case] = {
    # files
    "missing file": Case(
        lambda t: (write_config(t, None), [f"data.source={t / 'nope.parquet'}"]),
        DataError,
        ("nope.parquet", "does not exist", "data.source"),
    ),
    "missing folder": Case(
        lambda t: (write_config(t, None), [f"data.source={t / 'shards'}/"]),
        DataError,
        ("shards", "does not exist"),
    ),
    "corrupt parquet": Case(
        lambda t: _source_file(t, "bad.parquet", b"PAR1 this is not parquet at all"),
        DataError,
        ("bad.parquet",),
    ),
    "truncated parquet": Case(_truncated_parquet, DataError, ("cut.parquet",)),
    "ragged csv": Case(
        lambda t: _source_file(t, "ragged.csv", b"amount,label\n1,x\n2,y,3,4\n"),
        DataError,
        ("ragged.csv",),
    ),
    "empty csv": Case(lambda t: _source_file(t, "empty.csv", b""), DataError, ("empty.csv",)),
    "empty parquet": Case(
        lambda t: _table_job(t, _frame().iloc[:0]), DataError, ("t.parquet", "no rows")
    ),
    # labels
    "missing label": Case(
        lambda t: _table_job(t, _frame(), "data.label=lable"),
        DataError,
        ("'lable'", "did you mean 'label'"),
    ),
    "one class": Case(
        lambda t: _table_job(t, _frame().assign(label="x")), DataError, ("'label'", "single class")
    ),
    "class of one row": Case(
        lambda t: _table_job(t, _frame(40, 1)), DataError, ("'y'", "single row", "add rows")
    ),
    # two rows: the holdout takes one, and every generated row would copy the other
    "class of two rows": Case(
        lambda t: _table_job(t, _frame(40, 2)),
        DataError,
        ("['y']", "single row in the train split", "column 'label'", "more rows"),
    ),
    "class of two images": Case(
        lambda t: _image_job(t, dogs=2),
        DataError,
        ("['dog']", "single row in the train split", "balance.sampling_strategy"),
    ),
    # features
    # missing values are modelled by default; data.missing: error refuses them
    "nan in a feature": Case(
        lambda t: _table_job(
            t, _frame().assign(amount=lambda f: f.amount.mask(f.index == 3)), "data.missing=error"
        ),
        DataError,
        ("amount (1 rows)", "data.missing"),
    ),
    "inf in a feature": Case(
        lambda t: _table_job(
            t,
            _frame().assign(visits=lambda f: f.visits.mask(f.index == 5, np.inf)),
            "data.missing=error",
        ),
        DataError,
        ("visits (1 rows)", "data.missing"),
    ),
    "constant column": Case(
        lambda t: _table_job(t, _frame().assign(country="NZ")),
        DataError,
        ("['country']", "data.drop_columns", "data.constant_columns: keep"),
    ),
    "too many categories": Case(
        lambda t: _table_job(
            t, _frame().assign(user=[f"u{i}" for i in range(60)]), "data.max_categories=20"
        ),
        DataError,
        ("'user' has", "data.max_categories=20", "data.drop_columns"),
    ),
    # images
    "corrupt image": Case(
        lambda t: _image_job(t, {"broken.png": b"\x89PNG\r\n\x1a\n garbage"}),
        DataError,
        ("broken.png", "on_bad_file"),
    ),
    "non-image file": Case(
        lambda t: _image_job(t, {"notes.jpg": b"a shopping list, not a picture"}),
        DataError,
        ("notes.jpg", "on_bad_file"),
    ),
    "zero-byte image": Case(
        lambda t: _image_job(t, {"zero.png": b""}), DataError, ("zero.png", "on_bad_file")
    ),
    "class folder without images": Case(
        lambda t: _image_job(t, empty_class=True), DataError, ("bird",)
    ),
    # config
    "unknown key": Case(
        lambda t: (write_config(t, None), ["train.stepz=3"]),
        ConfigError,
        ("train.stepz", "unknown key"),
    ),
    "wrong type": Case(
        lambda t: (write_config(t, None), ["train.lr=fast"]), ConfigError, ("train.lr",)
    ),
    "zero steps": Case(
        lambda t: (write_config(t, None), ["train.steps=0"]), ConfigError, ("train.steps",)
    ),
    "negative batch size": Case(
        lambda t: (write_config(t, None), ["train.batch_size=-8"]),
        ConfigError,
        ("train.batch_size",),
    ),
    "strategy that shrinks a class": Case(
        lambda t: _table_job(t, _frame(), "balance.sampling_strategy={x: 10}"),
        ConfigError,
        ("'x'", "oversampling never removes"),
    ),
    # output and device
    "output under a file": Case(
        _with_output(lambda t: _file(t, "taken") / "out"), OutputError, ("taken", "output.path")
    ),
    "output not writable": Case(
        _with_output(lambda t: _unwritable_parent(t) / "augment-out"),
        OutputError,
        ("augment-out", "output.path"),
    ),
    "finished output without --overwrite": Case(
        _finished_run,
        OutputError,
        ("already holds a finished run", "--overwrite"),
        output_kept=True,
    ),
    "a folder of the user's": Case(
        _users_folder, OutputError, ("holds no augment run (drafts, thesis.tex)",), output_kept=True
    ),
    "a folder of the user's with --overwrite": Case(
        lambda t: _users_folder(t, "output.overwrite=true"),
        OutputError,
        ("holds no augment run", "choose another output.path"),
        output_kept=True,
    ),
    "damaged checkpoint": Case(
        _damaged_checkpoint,
        ModelFileError,
        ("checkpoints/unit-all.pt", "delete it to train from scratch", "--overwrite"),
        output_kept=True,
    ),
    "cuda without a gpu": Case(
        lambda t: (write_config(t, None), ["train.device=cuda"]),
        DeviceError,
        ("train.device", "no CUDA GPU", "device: cpu"),
        patches={"torch.cuda.is_available": lambda: False},  # a GPU machine must fail here too
    ),
}


def _prepare(case: Case, tmp_path: Path, monkeypatch) -> tuple[Path, list[str], dict]:
    for target, value in case.patches.items():
        monkeypatch.setattr(target, value)
    path, overrides = case.setup(tmp_path)
    before = _snapshot(tmp_path / "out")
    return path, overrides, before


def _snapshot(out: Path) -> dict[str, bytes]:
    if not out.exists():
        return {}
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def _check_output(case: Case, tmp_path: Path, before: dict[str, bytes]) -> None:
    out = tmp_path / "out"
    if case.output_kept:
        after = _snapshot(out)
        assert {name: after.get(name) for name in before} == before  # untouched
        assert set(after) - set(before) <= {"holdout_ids.json"}  # no shards, manifest, _SUCCESS
        if SUCCESS in before:
            read_manifest(out)  # and a finished run still reads as one
    else:
        assert not out.exists(), sorted(p.name for p in out.iterdir())


@pytest.mark.parametrize("name", list(CASES))
def test_api_raises_a_typed_one_line_error(name, tmp_path, monkeypatch):
    case = CASES[name]
    path, overrides, before = _prepare(case, tmp_path, monkeypatch)
    with pytest.raises(case.error) as caught:
        run_job(load_config(path, overrides))
    message = str(caught.value)
    assert "\n" not in message
    for fragment in case.fragments:
        assert fragment in message
    _check_output(case, tmp_path, before)


@pytest.mark.parametrize("name", list(CASES))
def test_cli_exits_non_zero_with_one_line(name, tmp_path, monkeypatch):
    case = CASES[name]
    path, overrides, before = _prepare(case, tmp_path, monkeypatch)
    args = ["run", str(path)]
    for override in overrides:
        args += ["--set", override]
    result = runner.invoke(app, args)
    assert result.exit_code == case.error.exit_code != 0, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    for fragment in case.fragments:
        assert fragment in errors[0]
    _check_output(case, tmp_path, before)


def test_cli_debug_raises_the_typed_error_with_its_traceback(tmp_path):
    path, overrides = CASES["constant column"].setup(tmp_path)
    result = runner.invoke(app, ["--debug", "run", str(path)])
    assert isinstance(result.exception, DataError)
    assert result.exc_info is not None and result.exc_info[2] is not None


def test_constant_columns_can_be_kept_and_come_out_constant(tmp_path):
    path, _ = _table_job(tmp_path, _frame().assign(country="NZ", code=7))
    overrides = ["data.constant_columns=keep", "validate.enabled=false"]
    result = run_job(load_config(path, overrides))
    from augment.core.shards import read_shards

    rows = read_shards(result.output)
    assert len(rows) == sum(result.plan.values()) > 0
    assert set(rows["country"]) == {"NZ"} and set(rows["code"]) == {7}
    assert rows["code"].dtype == np.int64


def test_torch_reports_no_gpu_here_so_the_device_case_is_real():
    # Without the patch, this machine (no GPU) must already refuse device: cuda on its own.
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible; the patched case above covers this machine")
    from augment.core.device import resolve_device

    with pytest.raises(DeviceError, match="no CUDA GPU"):
        resolve_device("cuda")
