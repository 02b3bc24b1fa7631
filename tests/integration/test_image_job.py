"""The whole image job against real components: image files on disk, Parquet shards, MLflow sqlite,
the CLI and a Prefect flow."""

from __future__ import annotations

import io

import mlflow
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from augment.cli import app
from augment.core.shards import read_manifest, sha256_file
from augment.image.shards import decode_png, read_image_shards
from augment.pipeline.config import load_config
from augment.pipeline.job import run_job
from augment.pipeline.summary import print_summary
from tests.conftest import image_config

runner = CliRunner()


def test_digits_job_end_to_end(tmp_path, mlflow_uri, monkeypatch, capsys):
    path = image_config(
        tmp_path,
        mlflow_uri,
        output={"image_files": True},
        filter={"enabled": True, "threshold": 0.3, "max_factor": 3},
        model={"recipe_candidates": ["latent+warp", "gan"]},  # a GAN recipe: inner GANs too
    )
    result = run_job(load_config(path))
    manifest = read_manifest(result.output)

    # exact per-class counts: every class reaches the majority's count
    assert manifest["counts_generated"] == {str(k): v for k, v in result.plan.items()}
    assert len(set(manifest["counts_after"].values())) == 1 and sum(result.plan.values()) > 0
    images, labels, ids = read_image_shards(result.output)
    assert images.shape[1:] == (8, 8, 1) and manifest["image_shape"] == [8, 8, 1]
    assert pd.Series(labels).value_counts().to_dict() == {
        int(k): v for k, v in manifest["counts_generated"].items() if v
    }
    assert len(list((result.output / "images").rglob("*.png"))) == len(ids)
    assert manifest["fid_extractor"] == "domain"
    for cls, row in manifest["filter"].items():
        assert row["accepted"] + row["filled_below_threshold"] == result.plan[int(cls)]

    client = mlflow.MlflowClient(mlflow_uri)
    run = client.get_run(manifest["mlflow"]["run_id"])
    metrics = run.data.metrics
    for key in (
        "baseline/balanced_accuracy",
        "augmented/balanced_accuracy",
        "albumentations/balanced_accuracy",
        "lift/balanced_accuracy",
        "lift_vs_albumentations/balanced_accuracy",
        "classic/balanced_accuracy",
        "stacked/balanced_accuracy",
        "lift_stacked_vs_classic/balanced_accuracy",
        "fid/domain",
        "kid/domain",
        "generate/images_per_second",
    ):
        assert key in metrics, key
    minority = min(result.counts_before, key=result.counts_before.get)
    assert f"fid/domain/class/{minority}" in metrics
    # k-NN precision / recall and the class confidence are shares; the IS is the domain CNN's
    # (no Inception weights here), between 1 and the number of classes, beside the real one
    for key in (
        "precision/domain",
        "recall/domain",
        f"precision/domain/class/{minority}",
        f"recall/domain/class/{minority}",
        "confidence/domain",
        "confidence/domain/real",
        f"confidence/domain/class/{minority}",
    ):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert 1.0 <= metrics["is/domain"] <= 10 and 1.0 <= metrics["is/domain/real"] <= 10
    assert not any(key.startswith("is/inception") for key in metrics)
    print_summary(result.summary())
    out = " ".join(capsys.readouterr().out.split())
    # two CNN epochs on 8x8 digits leave the domain CNN near chance (0.1 for ten classes; the
    # job printed "FID 0.00 · KID 0.00 · IS 1.00 (real 1.00)" as if perfect): every number
    # measured with it is flagged, in the summary, the report and MLflow
    cnn = metrics["domain_cnn/balanced_accuracy"]
    assert cnn == pytest.approx(metrics["baseline/cnn/balanced_accuracy"])  # the same CNN
    assert cnn < 0.55 and run.data.tags["domain_cnn.trusted"] == "false"
    assert (
        f"quality precision {metrics['precision/domain']:.2f} · recall "
        f"{metrics['recall/domain']:.2f} (k-NN, domain features; not meaningful) · IS "
        f"{metrics['is/domain']:.2f} (domain CNN, not Inception;"
    ) in out
    assert "FID 0.00 (domain)" not in out and "(domain features: not meaningful)" in out
    assert f"the domain CNN scored {cnn:.2f} balanced accuracy" in out
    assert "chance 0.10; trusted from 0.55" in out and "validate.fid_extractor: inception" in out
    report = (result.output / "report.html").read_text()
    assert "domain CNN balanced accuracy" in report and report.count("not meaningful") >= 4
    assert metrics["lift_stacked_vs_classic/balanced_accuracy"] == pytest.approx(
        metrics["stacked/balanced_accuracy"] - metrics["classic/balanced_accuracy"]
    )
    assert "stacking with albumentations on the fly" in out
    # validate.stack_share (default 0.5) reaches the stacked arm: per class round(share * n)
    assert 0.3 <= metrics["stacked/synthetic_share"] <= 0.7
    # the recipe: chosen on an inner split, every candidate scored, in MLflow and the manifest
    recipe = manifest["recipe"]
    assert recipe["chosen"] and set(recipe["scores"]) == {"latent+warp", "gan"}
    assert run.data.params["generate.recipe"] == recipe["recipe"]
    for name, score in recipe["scores"].items():
        assert metrics[f"choice/{name.replace('+', '_')}"] == pytest.approx(score, abs=1e-4)
    assert list(recipe["spreads"]) == ["latent+warp vs gan"]
    spread = metrics["choice/spread/latent_warp_vs_gan"]
    assert spread == pytest.approx(recipe["spreads"]["latent+warp vs gan"], abs=1e-4)
    assert f"recipe {recipe['recipe']}, chosen on an inner split" in out
    assert f"filter/acceptance_rate/{minority}" in metrics
    assert run.data.tags["fid.extractor"] == "domain"
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "samples")}
    assert {"samples/real.png", "samples/final.png"} <= artifacts
    assert any(
        a.path.startswith("confusion/") for a in client.list_artifacts(run.info.run_id, "confusion")
    )
    children = client.search_runs(
        [run.info.experiment_id], f"tags.mlflow.parentRunId = '{run.info.run_id}'"
    )
    train_run = next(c for c in children if c.data.tags["mlflow.runName"] == "train")
    grids = client.list_artifacts(train_run.info.run_id, "samples/train")
    assert {a.path.rsplit("/", 1)[1] for a in grids} == {"step_000010.png", "step_000020.png"}

    # the registered generator loads on the CPU and returns PNGs of the asked classes
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_uri)  # for the "models:/" lookup
    model = mlflow.pyfunc.load_model(result.model_uri)
    out = model.predict(pd.DataFrame({"label": [minority], "n": [3]}), params={"seed": 1})
    assert out["label"].tolist() == [minority] * 3
    assert decode_png(out["image"].iloc[0]).shape == (8, 8, 1)


def test_same_seed_gives_byte_identical_image_shards(tmp_path):
    digests = []
    for name in ("a", "b"):
        folder = tmp_path / name
        folder.mkdir()
        path = image_config(folder, None, name=name, validate={"enabled": False})
        result = run_job(load_config(path))
        digests.append(
            [sha256_file(result.output / f["path"]) for f in read_manifest(result.output)["files"]]
        )
    assert digests[0] == digests[1] and digests[0]


def test_an_image_plan_in_parts_keeps_exact_counts_and_unique_sample_ids(tmp_path):
    path = image_config(tmp_path, None, validate={"enabled": False}, generate={"part_rows": 40})
    result = run_job(load_config(path))
    manifest = read_manifest(result.output)
    assert manifest["generation"]["parts"] == -(-sum(result.plan.values()) // 40) > 2
    images, labels, ids = read_image_shards(result.output)
    assert len(set(ids)) == len(ids) == sum(result.plan.values())
    counts = pd.Series(labels).value_counts().to_dict()
    assert counts == {c: n for c, n in result.plan.items() if n}
    # a class spread over parts numbers its images on from where the part before stopped
    for cls, n in result.plan.items():
        if n:
            own = sorted(i for i, label in zip(ids, labels, strict=True) if label == cls)
            assert own == sorted(f"{cls}-{k:07d}" for k in range(n))


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def image_folder(tmp_path):
    """root/<class>/*.png with grey and RGB files of mixed sizes, plus one corrupt file."""
    rng = np.random.default_rng(0)
    root = tmp_path / "pets"
    for cls, n, value in (("cat", 24, 40), ("dog", 6, 200)):
        (root / cls).mkdir(parents=True)
        for i in range(n):
            size = 10 + i % 5
            pixels = np.clip(rng.normal(value, 20, (size, size)), 0, 255).astype(np.uint8)
            if i % 2:
                pixels = np.repeat(pixels[..., None], 3, axis=2)  # RGB next to grey
            (root / cls / f"{i:02d}.png").write_bytes(_png(pixels))
    (root / "dog" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    return root


def test_cli_image_folder_stops_on_a_corrupt_file_or_skips_it(tmp_path, image_folder):
    data = {"source": str(image_folder), "imbalance_ratio": None, "size": 8}
    path = image_config(tmp_path, None, data=data, validate={"enabled": False})
    result = runner.invoke(app, ["run", str(path)])
    assert result.exit_code == 3
    assert "broken.png" in result.output and "on_bad_file: skip" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out" / "_SUCCESS").exists()

    result = runner.invoke(app, ["run", str(path), "--set", "data.on_bad_file=skip"])
    assert result.exit_code == 0, result.output
    manifest = read_manifest(tmp_path / "out")
    assert manifest["skipped_files"] == 1
    before = manifest["counts_before"]
    assert before["cat"] + before["dog"] < 30  # 30 readable images, some held out
    assert manifest["counts_generated"] == {"cat": 0, "dog": before["cat"] - before["dog"]}


def test_prefect_flow_runs_the_image_job(tmp_path):
    from flows.balance import balance_flow

    path = image_config(tmp_path, None, model={"mode": "per_class"}, validate={"enabled": False})
    summary = balance_flow(config_path=str(path))
    assert summary["passed"] and summary["counts_after"]
    assert len(set(summary["counts_after"].values())) == 1


def test_the_stacked_arm_gets_a_warped_recipes_images_before_their_warp(tmp_path, monkeypatch):
    """The stacked arm warps on the fly; warping a recipe's warped images again would move them
    twice (measured: -5 pp on distorted digits), so it gets the same draws unwarped."""
    import augment.image.validate
    from augment.image.synthesizer import ImageSynthesizer, Recipe
    from augment.pipeline.job import MODEL_FILE
    from augment.pipeline.registry import load_synthesizer

    seen: dict = {}
    real = augment.image.validate.validate_images

    def capturing(*args, **kwargs):
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(augment.image.validate, "validate_images", capturing)
    path = image_config(
        tmp_path,
        None,
        model={"recipe": "latent+warp"},
        validate={"fid": False, "min_lift": -1.0, "epochs": 1, "stack_share": 1.0},
    )
    result = run_job(load_config(path))
    assert seen["stack_share"] == 1.0  # the config's share reaches the stacked arm
    synthesizer = load_synthesizer(result.output / MODEL_FILE)
    assert synthesizer.recipe.name == "latent+warp"
    unwarped = ImageSynthesizer(
        synthesizer.units,
        synthesizer.all_classes,
        synthesizer.label,
        bank=synthesizer.bank,
        recipe=Recipe("latent"),
    )
    plan = {c: n for c, n in result.plan.items() if n > 0}
    expected, labels = unwarped.sample(plan, seed=0)
    np.testing.assert_array_equal(seen["stacked_images"], expected)
    assert len(seen["stacked_labels"]) == len(labels) == sum(plan.values())
    # the shards hold the warped images of the same draws: same counts, other pixels
    shards, _, _ = read_image_shards(result.output)
    assert shards.shape == expected.shape and not np.array_equal(shards, expected)


def test_a_default_job_trains_the_code_gan_through_the_loop_and_counts_its_images(
    tmp_path, mlflow_uri, capsys
):
    """The default recipes draw from the conditional GAN over the autoencoder's codes: its
    losses in MLflow, its training in ``training.units``, and the manifest counting the images
    it made."""
    path = image_config(
        tmp_path, mlflow_uri, model={"code_gan_steps": 20}, validate={"enabled": False}
    )
    result = run_job(load_config(path))
    manifest = read_manifest(result.output)
    # no pixel GAN: the autoencoder, then the code GAN, both through the shared loop
    autoencoder, unit = manifest["training"]["units"]
    assert autoencoder["model"] == "autoencoder" and autoencoder["steps"] == 10
    assert unit["model"] == "code GAN" and unit["steps"] == 20
    assert sorted(unit["classes"]) == list(range(10))
    rows = manifest["generator"]["rows"]
    # chosen between the default candidates, both half code GAN, half between real codes
    assert manifest["generator"]["recipe"].startswith("code-mix")
    assert set(manifest["recipe"]["scores"]) == {"code-mix+warp", "code-mix"}
    generated = {k: v for k, v in manifest["counts_generated"].items() if v}
    for cls, n in generated.items():
        assert rows["gan"][cls] + rows["anchored"][cls] == n
        assert rows["dropped"][cls] == 2 * rows["gan"][cls]  # three draws per kept code
    assert sum(rows["gan"].values()) > 0

    client = mlflow.MlflowClient(mlflow_uri)
    parent = client.get_run(manifest["mlflow"]["run_id"])
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    [code_run] = [c for c in children if c.info.run_name == "train/code-gan"]
    losses = client.get_metric_history(code_run.info.run_id, "loss_d")
    assert losses and max(m.step for m in losses) == 20
    [ae_run] = [c for c in children if c.info.run_name == "train/autoencoder"]
    losses = client.get_metric_history(ae_run.info.run_id, "loss_reconstruction")
    assert losses and max(m.step for m in losses) == 10
    assert parent.data.metrics["origin/gan"] == sum(rows["gan"].values())

    print_summary(result.summary())
    out = capsys.readouterr().out
    assert f"{sum(rows['gan'].values()):,} images from the GAN" in out


def test_cli_runs_a_128px_rgb_folder_end_to_end(tmp_path, mlflow_uri):
    """Real resolutions: a folder of 128 px RGB photos (some wider than tall) through
    ``augment run <folder> --kind image``, centre-cropped, the models fitted on a
    ``data.max_images`` sample while the plan counts every image, MLflow on sqlite."""
    rng = np.random.default_rng(0)
    root = tmp_path / "photos"
    for cls, n, colour in (("cats", 30, (220, 60, 40)), ("dogs", 6, (40, 80, 220))):
        (root / cls).mkdir(parents=True)
        for i in range(n):
            width = 176 if i % 3 == 0 else 128  # every third image is not square
            pixels = rng.normal(110, 25, (128, width, 3)).clip(0, 255).astype(np.uint8)
            top, left = rng.integers(10, 60, 2)
            pixels[top : top + 50, left + (width - 128) // 2 :][:, :50] = colour
            Image.fromarray(pixels).save(root / cls / f"{i:02d}.png")
    sets = {
        "data.size": 128,
        "data.channels": 3,
        "data.fit": "crop",
        "data.max_images": 20,
        "model.autoencoder_steps": 5,
        "model.latent_dim": 8,
        "model.choice_epochs": 1,
        "train.batch_size": 16,
        "train.cpu_threads": 1,
        "train.progress": False,
        "validate.epochs": 1,
        "validate.min_lift": -1.0,
        "tracking.uri": mlflow_uri,
    }
    args = ["run", str(root), "--kind", "image", "--output", str(tmp_path / "out")]
    for key, value in sets.items():
        args += ["--set", f"{key}={value}"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "data.max_images=20" in " ".join(result.output.split())

    manifest = read_manifest(tmp_path / "out")
    assert manifest["image_shape"] == [128, 128, 3]
    before = manifest["counts_before"]  # every image of the train split (70%)
    assert before == {"cats": 21, "dogs": 4}
    assert manifest["counts_generated"] == {"cats": 0, "dogs": 17}
    sample = manifest["fitted_sample"]  # the rare class whole, the other one cut
    assert sample["train"] == before and sample["fitted"] == {"cats": 16, "dogs": 4}
    images, labels, _ = read_image_shards(tmp_path / "out")
    assert images.shape == (17, 128, 128, 3) and set(labels) == {"dogs"}
    # validation: the sample and the plan scaled to the split's class mix
    assert any("scaled by one factor" in note for note in manifest["validation"]["notes"])

    run = mlflow.MlflowClient(mlflow_uri).get_run(manifest["mlflow"]["run_id"])
    assert run.data.params["data.images_fitted"] == "20"
    assert run.data.params["data.images_train"] == "25"
    for key in ("baseline/balanced_accuracy", "augmented/balanced_accuracy", "fid/domain"):
        assert key in run.data.metrics, key
