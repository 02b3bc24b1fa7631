"""The job generates what GANOverSampler would: the GAN / anchored mix, the neighbour filter, exact
counts, reported in the summary, the manifest, report.html and MLflow."""

import mlflow
import numpy as np
import pandas as pd

from augment.core.choice import TIE_Z, pick_best
from augment.core.shards import read_manifest, read_shards
from augment.pipeline.config import load_config
from augment.pipeline.job import run_job
from augment.pipeline.summary import choice_sentence, origin_sentence
from augment.tabular.sources import load_table
from tests.conftest import write_config


def test_job_with_the_mix_writes_exact_counts_and_reports_the_sources(tmp_path, mlflow_uri):
    config = load_config(
        write_config(
            tmp_path,
            mlflow_uri,
            name="mix-job",
            generate={"generator": "mix", "anchored_share": 0.5},
            output={"rows_per_shard": 100},
        )
    )
    assert config.generate.filter_generated  # the sampler's default
    result = run_job(config)

    manifest = read_manifest(result.output)
    planned = {str(k): v for k, v in result.plan.items()}
    assert manifest["counts_generated"] == planned
    shards = read_shards(result.output)
    assert shards["target"].value_counts().to_dict() == {k: v for k, v in planned.items() if v}
    source = load_table("sklearn:breast_cancer", "target")
    assert list(shards.columns) == list(source.columns)
    assert shards.dtypes.equals(source.dtypes)

    # half of each class's rows are anchored, the other half from the GAN; the filter drew 3x
    rows = manifest["generator"]["rows"]
    for cls, n in planned.items():
        assert rows["gan"][cls] + rows["anchored"][cls] == n
        assert rows["anchored"][cls] == round(n * 0.5)
        assert rows["dropped"][cls] == 2 * rows["gan"][cls]
        assert rows["moved"][cls] == rows["gan"][cls]  # the moment map is on by default
    assert manifest["generator"]["generator"] == "mix"
    # a class's anchored rows come after its GAN rows and lie between real rows of the class or
    # toward their mean: inside the class's range in every column
    minority = max(planned, key=planned.get)
    real = source[source["target"].astype(str) == minority]
    made = shards[shards["target"].astype(str) == minority].tail(rows["anchored"][minority])
    numeric = [c for c in source.columns if c != "target"]
    assert (made[numeric] >= real[numeric].min() - 1e-9).all().all()
    assert (made[numeric] <= real[numeric].max() + 1e-9).all().all()

    summary = result.summary()
    assert summary["origin"] == rows
    sentence = origin_sentence(summary["origin"])
    assert "anchored on real rows" in sentence
    assert "all moved to their class's real mean and covariance" in sentence
    assert "neighbour filter dropped" in (result.output / "report.html").read_text()

    client = mlflow.MlflowClient(mlflow_uri)
    run = client.get_run(manifest["mlflow"]["run_id"])
    assert run.data.params["generate.generator"] == "mix"
    assert run.data.params["generate.anchored_share"] == "0.5"
    assert run.data.metrics["origin/gan"] == sum(rows["gan"].values())
    assert run.data.metrics["origin/anchored"] == sum(rows["anchored"].values())
    assert run.data.metrics["origin/dropped"] == sum(rows["dropped"].values())
    assert run.data.metrics["origin/moved"] == sum(rows["moved"].values())


def test_job_rows_match_the_samplers_for_the_same_seed_and_model(tmp_path):
    """The job and GANOverSampler share RowGenerator: a job with the same seed writes the rows
    the generator gives for the fitted model and the job's real training rows."""
    from augment.pipeline.job import load_data, start_job
    from augment.pipeline.registry import load_synthesizer
    from augment.tabular.generation import RowGenerator, real_row_space

    config = load_config(write_config(tmp_path, None, generate={"anchored_share": 0.3}))
    result = run_job(config)
    shards = read_shards(result.output)

    (tmp_path / "again").mkdir()
    again = load_config(write_config(tmp_path / "again", None, generate={"anchored_share": 0.3}))
    data = load_data(start_job(again))
    synthesizer = load_synthesizer(result.output / "model/synthesizer.pt")
    space = real_row_space(data.train, data.schema, data.form, seed=again.train.seed)
    source = RowGenerator(synthesizer, space, "mix", 0.3, True)
    expected = pd.concat(
        [rows for _, rows in source.class_batches(data.plan, again.train.seed)], ignore_index=True
    )
    assert len(expected) == len(shards)
    np.testing.assert_allclose(
        shards.drop(columns="target").to_numpy(np.float64),
        expected.drop(columns="target").to_numpy(np.float64),
    )


def test_an_anchored_job_trains_no_gan(tmp_path, training_calls, mlflow_uri):
    config = load_config(
        write_config(tmp_path, mlflow_uri, name="anchored-job", generate={"generator": "anchored"})
    )
    result = run_job(config)
    assert training_calls == []
    assert result.training == []
    manifest = read_manifest(result.output)
    assert manifest["counts_generated"] == {str(k): v for k, v in result.plan.items()}
    rows = manifest["generator"]["rows"]
    assert sum(rows["gan"].values()) == 0
    assert sum(rows["anchored"].values()) == sum(result.plan.values())
    # every anchored row lies between real rows or toward their mean: inside the real range
    shards = read_shards(result.output)
    source = load_table("sklearn:breast_cancer", "target")
    numeric = [c for c in source.columns if c != "target"]
    assert (shards[numeric] >= source[numeric].min() - 1e-9).all().all()
    assert (shards[numeric] <= source[numeric].max() + 1e-9).all().all()


def test_an_auto_job_reports_its_choice(tmp_path, mlflow_uri):
    config = load_config(
        write_config(tmp_path, mlflow_uri, name="auto-job", generate={"generator": "auto"})
    )
    result = run_job(config)
    manifest = read_manifest(result.output)
    choice = manifest["generator"]["choice"]
    assert choice["chosen"] in ("mix", "anchored", "gan")
    assert set(choice["scores"]) == {"mix", "anchored", "gan"}
    # mix first; a later candidate only by more than TIE_Z tie spreads over the best so far
    assert choice["chosen"] == pick_best(
        ["mix", "anchored", "gan"],
        choice["scores"],
        lead_needed=lambda best, name: TIE_Z * choice["spreads"][f"{best} vs {name}"],
    )
    assert manifest["counts_generated"] == {str(k): v for k, v in result.plan.items()}
    rows = manifest["generator"]["rows"]
    anchored = sum(rows["anchored"].values())
    assert (anchored == 0) == (choice["chosen"] == "gan")
    assert result.summary()["choice"] == choice
    assert "auto picked" in choice_sentence(choice)

    run = mlflow.MlflowClient(mlflow_uri).get_run(manifest["mlflow"]["run_id"])
    assert run.data.params["generate.generator"] == "auto"
    assert run.data.params["generate.chosen"] == choice["chosen"]
    for name, score in choice["scores"].items():
        assert run.data.metrics[f"choice/{name}"] == score
    for pair, spread in choice["spreads"].items():
        assert run.data.metrics[f"choice/spread/{pair.replace(' vs ', '_vs_')}"] == spread


def test_the_model_file_samples_as_the_job_did(tmp_path):
    from augment import load_synthesizer
    from augment.core.persist import load_payload
    from augment.pipeline.job import MODEL_FILE
    from augment.tabular.synthesizer import SYNTHESIZER_FORMAT

    off = {"enabled": False}
    config = load_config(write_config(tmp_path, None, name="kept", validate=off))
    result = run_job(config)
    model = load_synthesizer(result.output / MODEL_FILE)
    assert model.generation == {
        "generator": "mix",
        "anchored_share": 0.5,
        "filter_generated": True,
        "match_moments": True,
    }
    # the job's plan and seed give back the job's rows: GAN rows filtered, then anchored ones
    plan = {c: n for c, n in result.plan.items() if n}
    again = model.sample(plan, seed=config.train.seed)
    pd.testing.assert_frame_equal(again, read_shards(result.output), check_dtype=True)
    # a model file saved before match_moments existed keeps its GAN rows as drawn
    from augment.core.persist import save_payload

    payload = load_payload(result.output / MODEL_FILE, SYNTHESIZER_FORMAT)
    del payload["real_rows"]["match_moments"]
    save_payload(tmp_path / "old.pt", payload)
    assert load_synthesizer(tmp_path / "old.pt").generation["match_moments"] is False

    # without the real rows the file holds the GAN alone (and samples its rows only)
    (tmp_path / "lean").mkdir()
    lean_config = write_config(
        tmp_path / "lean",
        None,
        name="lean",
        validate=off,
        output={"model_real_rows": False},
        generate={"match_moments": False},
    )
    lean = run_job(load_config(lean_config))
    lean_manifest = read_manifest(lean.output)
    assert lean_manifest["generator"]["match_moments"] is False
    assert set(lean_manifest["generator"]["rows"]["moved"].values()) == {0}
    assert "moved" not in origin_sentence(lean.summary()["origin"])
    assert "real_rows" not in load_payload(lean.output / MODEL_FILE, SYNTHESIZER_FORMAT)
    assert load_synthesizer(lean.output / MODEL_FILE).space is None
