from datetime import UTC, datetime
from pathlib import Path

import pytest

from augment.core.config import RunInfo
from augment.core.errors import ConfigError
from augment.core.train import settings_from
from augment.pipeline.config import config_for_source, load_config, parse_config
from augment.tabular.cgan import GANSettings

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_parses(path):
    config = load_config(path)
    assert config.name
    assert config.fingerprint() == load_config(path).fingerprint()


def _raw(**extra):
    raw = {"name": "x", "data": {"source": "sklearn:wine", "label": "target"}}
    raw.update(extra)
    return raw


def test_unknown_key_names_its_path():
    with pytest.raises(ConfigError, match=r"train\.stepz: unknown key"):
        parse_config(_raw(train={"stepz": 3}))


def test_wrong_type_names_its_path():
    with pytest.raises(ConfigError, match=r"train\.lr: "):
        parse_config(_raw(train={"lr": "fast"}))


@pytest.mark.parametrize("key", ["steps", "batch_size"])
def test_non_positive_counts_are_refused(key):
    with pytest.raises(ConfigError, match=rf"train\.{key}: Input should be greater than 0"):
        parse_config(_raw(train={key: 0}))


def test_missing_required_key():
    with pytest.raises(ConfigError, match=r"data\.source: required key is missing"):
        parse_config({"name": "x", "data": {"label": "target"}})
    with pytest.raises(ConfigError, match=r"data\.label: required for tabular data"):
        parse_config({"name": "x", "data": {"source": "sklearn:wine"}})


def test_image_jobs_get_their_own_defaults_and_refuse_tabular_keys():
    image = parse_config({"name": "d", "data": {"source": "sklearn:digits", "kind": "image"}})
    table = parse_config({"name": "t", "data": {"source": "sklearn:wine", "label": "target"}})
    assert (image.train.steps, image.train.batch_size, image.model.noise_dim) == (1000, 128, 64)
    assert (table.train.steps, table.train.batch_size, table.model.noise_dim) == (250, 64, 32)
    # a shared key with a default per kind, settable for both
    assert (image.model.ema_decay, table.model.ema_decay) == (0.99, 0.95)
    tuned = _raw(model={"ema_decay": 0.9})
    assert settings_from(GANSettings, parse_config(tuned).model).ema_decay == 0.9
    written = parse_config(
        {"name": "d", "data": {"source": "x", "kind": "image"}, "train": {"steps": 7}}
    )
    assert written.train.steps == 7 and written.train.batch_size == 128  # YAML wins, per key
    with pytest.raises(ConfigError, match=r"model\.pac: applies only to data\.kind: tabular"):
        parse_config({"name": "d", "data": {"source": "x", "kind": "image"}, "model": {"pac": 2}})
    with pytest.raises(
        ConfigError, match=r"validate\.fid_extractor: applies only to data\.kind: image"
    ):
        parse_config(
            {
                "name": "t",
                "data": {"source": "x", "label": "y"},
                "validate": {"fid_extractor": "domain"},
            }
        )
    with pytest.raises(ConfigError, match=r"data\.size: Input should be less than or equal to 256"):
        parse_config({"name": "d", "data": {"source": "x", "kind": "image", "size": 512}})
    with pytest.raises(ConfigError, match=r"data\.size: image size 100 is not supported.*96, 112"):
        parse_config({"name": "d", "data": {"source": "x", "kind": "image", "size": 100}})
    big = parse_config({"name": "d", "data": {"source": "x", "kind": "image", "size": 256}})
    assert big.data.fit == "resize" and big.data.max_images == "auto"
    # auto: as many images as 512 MiB of decoded pixels hold
    assert big.data.image_limit() == 2**29 // (256 * 256 * 1)
    big.data.channels, big.data.max_images = 3, None
    assert big.data.image_limit() is None


def test_overrides_are_typed_and_validated(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: x\ndata: {source: 'sklearn:wine', label: target}\n")
    config = load_config(path, ["train.steps=42", "model.mode=per_class", "output.overwrite=true"])
    assert config.train.steps == 42
    assert config.model.mode == "per_class"
    assert config.output.overwrite is True
    with pytest.raises(ConfigError, match=r"invalid --set train\.nope=1: unknown key"):
        load_config(path, ["train.nope=1"])
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        load_config(path, ["train.steps"])


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_fingerprint_ignores_tracking_but_not_model():
    base = parse_config(_raw())
    assert parse_config(_raw(tracking={"enabled": False})).fingerprint() == base.fingerprint()
    assert parse_config(_raw(model={"pac": 2})).fingerprint() != base.fingerprint()


def test_output_path_uses_job_name():
    assert parse_config(_raw()).output_path == "runs/x"


def test_output_path_template_gives_each_run_its_folder_and_one_cache():
    started = datetime(2026, 12, 7, 3, 0, 5, tzinfo=UTC)
    config = parse_config(_raw(output={"path": "runs/{name}/{run_date}/{run_time}-{run_id}"}))
    first = config.for_run(RunInfo(id="abc", started=started))
    assert first.output.path == "runs/x/2026-12-07/20261207T030005Z-abc"
    second = config.for_run(RunInfo(id="def", started=started))
    assert second.output.path != first.output.path
    # the runs share the cache beside the fixed part of the path, so reruns reuse generators
    assert first.cache.dir == second.cache.dir == str(Path("runs/x/.augment-cache").absolute())
    assert config.output.path.endswith("{run_id}")  # the template itself is left as it was
    # a path without a run placeholder keeps the default cache (beside the output folder)
    assert parse_config(_raw()).for_run(RunInfo()).cache.dir is None
    dated = parse_config(_raw(output={"path": "s3://b/{name}/{run_date}"}))
    assert dated.for_run(RunInfo(started=started)).output.path == "s3://b/x/2026-12-07"


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("runs/{nme}", r"unknown placeholder \{nme\}; use \{name\}"),
        ("runs/{name", "a brace without its pair"),
    ],
)
def test_output_path_placeholders_are_checked(path, message):
    with pytest.raises(ConfigError, match=rf"output\.path: {message}"):
        parse_config(_raw(output={"path": path}))


def test_portable_config_has_absolute_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    raw = _raw(
        data={"source": "data/t.csv", "label": "y"},
        output={"path": "runs/{name}", "work_dir": "scratch"},
        cache={"dir": "~/cache"},
        tracking={"uri": "sqlite:///mlflow.db"},
    )
    portable = parse_config(raw).for_run(RunInfo()).portable()
    assert portable.data.source == str(tmp_path / "data" / "t.csv")
    assert portable.output.path == str(tmp_path / "runs" / "x")
    assert portable.output.work_dir == str(tmp_path / "scratch")
    assert portable.cache.dir == str(Path.home() / "cache")
    assert portable.tracking.uri == f"sqlite:///{tmp_path / 'mlflow.db'}"
    # sources and stores with a scheme are no local paths; an unset store stays unset unless
    # the run logged to a local sqlite store, which is written out
    builtin = parse_config(_raw(tracking={"uri": "http://mlflow:5000"})).portable()
    assert builtin.data.source == "sklearn:wine" and builtin.tracking.uri == "http://mlflow:5000"
    assert parse_config(_raw()).portable("http://mlflow:5000").tracking.uri is None
    used = parse_config(_raw()).portable("sqlite:///mlflow.db")
    assert used.tracking.uri == f"sqlite:///{tmp_path / 'mlflow.db'}"


def test_orchestration_section():
    config = parse_config(_raw(orchestration={"task_runner": "dask", "dask_workers": 3}))
    assert config.orchestration.dask_address is None and config.orchestration.dask_workers == 3
    assert parse_config(_raw()).orchestration.task_runner == "threads"
    with pytest.raises(ConfigError, match=r"orchestration\.task_runner: Input should be"):
        parse_config(_raw(orchestration={"task_runner": "ray"}))
    with pytest.raises(ConfigError, match=r"orchestration\.retries: Input should be greater"):
        parse_config(_raw(orchestration={"retries": -1}))
    with pytest.raises(ConfigError, match=r"orchestration: dask_address applies only to"):
        parse_config(_raw(orchestration={"dask_address": "tcp://scheduler:8786"}))
    with pytest.raises(ConfigError, match=r"orchestration\.workers: unknown key"):
        parse_config(_raw(orchestration={"workers": 2}))


def test_cache_and_orchestration_do_not_change_the_output_fingerprint():
    base = parse_config(_raw())
    other = parse_config(
        _raw(cache={"enabled": False}, orchestration={"task_runner": "sequential", "retries": 0})
    )
    assert other.fingerprint() == base.fingerprint()


def test_training_settings_cover_what_shapes_the_model():
    base = parse_config(_raw()).training_settings()
    assert (
        parse_config(_raw(train={"progress": False, "cpu_threads": 2})).training_settings() == base
    )
    assert parse_config(_raw(output={"rows_per_shard": 5})).training_settings() == base
    assert parse_config(_raw(train={"steps": 7})).training_settings() != base
    assert parse_config(_raw(model={"noise_dim": 8})).training_settings() != base
    assert parse_config(_raw(output={"clip_to_range": False})).training_settings() != base


@pytest.mark.parametrize(
    ("written", "classes", "plan"),
    [
        ("{0: 60, 1: 60}", {0: 60, 1: 6}, {0: 0, 1: 54}),
        ("{true: 20}", {False: 20, True: 4}, {False: 0, True: 16}),
        ("{fraud: 30}", {"fraud": 3, "ok": 30}, {"fraud": 27, "ok": 0}),
        ("'1': 30", {0: 30, 1: 3}, {0: 0, 1: 27}),  # a quoted key still finds an integer class
    ],
)
def test_sampling_strategy_keys_are_the_labels_as_written(tmp_path, written, classes, plan):
    from augment.core.balance import plan_samples

    value = written if written.startswith("{") else "{" + written + "}"
    path = tmp_path / "c.yaml"
    path.write_text("name: x\ndata: {source: 'sklearn:wine', label: target}\n")
    config = load_config(path, [f"balance.sampling_strategy={value}"])
    assert plan_samples(classes, config.balance.sampling_strategy) == plan
    assert (
        config.fingerprint()
        == load_config(path, [f"balance.sampling_strategy={value}"]).fingerprint()
    )


@pytest.mark.parametrize(
    ("strategy", "message"),
    [
        ({"a": -1}, r"target counts must be whole numbers >= 0; got \{'a': -1\}"),
        ("sideways", r"use one of 'auto', 'not majority'.*\(got 'sideways'\)"),
        (2.5, r"a ratio minority/majority in \(0, 1\]"),
    ],
)
def test_a_bad_sampling_strategy_is_one_line_in_the_users_terms(strategy, message):
    with pytest.raises(ConfigError, match=message) as caught:
        parse_config(_raw(balance={"sampling_strategy": strategy}))
    assert str(caught.value).count("balance.sampling_strategy") == 1


def test_a_data_file_job_registers_one_model_per_label():
    """Every job on data.csv registered its generator as augment-data, whichever its label."""
    names = {
        label: parse_config(config_for_source("data.csv", label)).tracking.model_name
        for label in ("churned", "plan type")
    }
    assert names == {"churned": "augment-data-churned", "plan type": "augment-data-plan_type"}
    assert parse_config(config_for_source("sklearn:digits", None)).tracking.model_name is None
