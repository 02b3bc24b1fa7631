"""The run summary says in words when the classic baseline beat the synthetic data, and shows
k-NN precision / recall and the IS with the network that computed it."""

from __future__ import annotations

import pytest

from augment import cli
from augment.core.metrics import feature_network_doubt, trusted_feature_accuracy


def _summary(metrics: dict[str, float]) -> dict:
    return {
        "counts_before": {"a": 50, "b": 5},
        "plan": {"b": 45},
        "counts_after": {"a": 50, "b": 50},
        "metrics": metrics,
        "output": "/tmp/out",
        "passed": True,
        "seconds": 1.0,
    }


def _arms(classic: str, lift_vs: float) -> dict[str, float]:
    metrics = {}
    for name in ("accuracy", "balanced_accuracy", "macro_f1"):
        metrics |= {
            f"baseline/{name}": 0.80,
            f"augmented/{name}": 0.90,
            f"{classic}/{name}": 0.90 - lift_vs,
            f"lift/{name}": 0.10,
            f"lift_vs_{classic}/{name}": lift_vs,
        }
    return metrics


@pytest.mark.parametrize(
    ("classic", "name"), [("smote", "SMOTE"), ("albumentations", "albumentations oversampling")]
)
def test_a_baseline_that_wins_is_named(classic, name, capsys):
    cli.print_summary(_summary(_arms(classic, -0.0225)))
    out = " ".join(capsys.readouterr().out.split())
    assert f"{name} beat the synthetic data by 0.0225 balanced accuracy" in out


def test_no_note_when_the_synthetic_data_wins(capsys):
    cli.print_summary(_summary(_arms("smote", 0.01)))
    assert "beat the synthetic data" not in capsys.readouterr().out


def test_the_summary_says_which_sample_validation_used(capsys):
    metrics = {
        **_arms("smote", 0.01),
        "validation/capped": 1.0,
        "validation/rows/baseline": 398.0,
        "validation/rows/augmented": 50_000.0,
    }
    cli.print_summary(_summary(metrics))
    out = " ".join(capsys.readouterr().out.split())
    assert "validation used a stratified sample: baseline 398, augmented 50,000" in out
    cli.print_summary(_summary(_arms("smote", 0.01) | {"validation/capped": 0.0}))
    assert "stratified sample" not in capsys.readouterr().out


def _quality_line(capsys) -> str | None:
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("quality")]
    return " ".join(lines[0].split()) if lines else None


def test_the_summary_shows_precision_recall_and_names_the_is_network(capsys):
    table = {"fidelity/precision": 0.912, "fidelity/recall": 0.781, "fidelity/detection_auc": 0.6}
    cli.print_summary(_summary(_arms("smote", 0.01) | table))
    assert _quality_line(capsys) == "quality precision 0.91 · recall 0.78 (k-NN, encoded rows)"
    images = {
        "precision/domain": 0.5,
        "recall/domain": 0.25,
        "precision/domain/class/1": 0.0123,  # per class: MLflow only
        "is/domain": 1.4712,
        "is/domain/real": 1.5261,
    }
    cli.print_summary(_summary(_arms("albumentations", 0.01) | images))
    assert _quality_line(capsys) == (
        "quality precision 0.50 · recall 0.25 (k-NN, domain features) · "
        "IS 1.47 (domain CNN, not Inception; real 1.53)"
    )
    inception = {"precision/inception": 0.7, "recall/inception": 0.6, "is/inception": 3.0}
    cli.print_summary(_summary(_arms("albumentations", 0.01) | inception))
    assert _quality_line(capsys) == (
        "quality precision 0.70 · recall 0.60 (k-NN, inception features) · "
        "IS 3.00 (InceptionV3; real nan)"
    )
    cli.print_summary(_summary(_arms("smote", 0.01)))
    assert _quality_line(capsys) is None


def test_the_stacking_line_says_how_much_of_the_top_up_was_synthetic(capsys):
    metrics = _arms("albumentations", 0.01) | {
        "classic/balanced_accuracy": 0.95,
        "stacked/balanced_accuracy": 0.96,
        "lift_stacked_vs_classic/balanced_accuracy": 0.01,
        "stacked/synthetic_share": 0.5,
    }
    cli.print_summary(_summary(metrics))
    out = " ".join(capsys.readouterr().out.split())
    assert "0.9500 (real) → 0.9600 (real+synthetic, 50% of the top-up synthetic), +0.0100" in out
    cli.print_summary(_summary(metrics | {"stacked/synthetic_share": 1.0}))
    assert "(real+synthetic), +0.0100" in " ".join(capsys.readouterr().out.split())


def test_a_recipe_kept_within_the_margin_is_explained(capsys):
    recipe = {
        "recipe": "latent+warp",
        "chosen": True,
        "scores": {"latent+warp": 0.979, "latent": 0.982},
        "inner_validation": 132,
        "margin": 0.01,
    }
    cli.print_summary(_summary(_arms("albumentations", 0.01)) | {"recipe": recipe})
    out = " ".join(capsys.readouterr().out.split())
    assert "latent did not beat it by more than the margin of 0.01" in out
    recipe["scores"] = {"latent+warp": 0.99, "latent": 0.982}
    cli.print_summary(_summary(_arms("albumentations", 0.01)) | {"recipe": recipe})
    assert "margin" not in capsys.readouterr().out


def test_the_sources_line_says_which_gan_rows_the_moment_map_moved(capsys):
    """A class without a map (too few real rows) leaves its GAN rows as drawn; the line counts
    what was moved rather than claiming all of it."""
    origin = {
        "gan": {"b": 20, "c": 4},
        "anchored": {"b": 20, "c": 4},
        "dropped": {"b": 40, "c": 8},
        "moved": {"b": 20, "c": 0},
    }
    cli.print_summary(_summary({}) | {"origin": origin})
    out = " ".join(capsys.readouterr().out.split())
    assert "24 rows from the GAN (the neighbour filter dropped 48 of 72 drawn; 20 moved" in out
    assert "24 anchored on real rows" in out
    cli.print_summary(_summary({}) | {"origin": origin | {"moved": {"b": 0, "c": 0}}})
    assert "moved" not in capsys.readouterr().out


def test_numbers_from_a_domain_cnn_near_chance_are_flagged_not_printed_bare(capsys):
    """Two classes: chance 0.5, trusted from 0.75 (halfway to 1)."""
    images = {
        "fid/domain": 0.0004,
        "kid/domain": 0.0,
        "precision/domain": 0.98,
        "recall/domain": 0.4,
        "is/domain": 1.0,
        "is/domain/real": 1.0,
    }
    weak = {**_arms("albumentations", 0.01), **images, "domain_cnn/balanced_accuracy": 0.55}
    summary = _summary(weak) | {"notes": [feature_network_doubt(weak, 2)]}
    cli.print_summary(summary)
    out = " ".join(capsys.readouterr().out.split())
    assert "FID 0.0004 (domain features: not meaningful)" in out
    assert "(k-NN, domain features; not meaningful)" in out and "real 1.00; not meaningful)" in out
    assert "the domain CNN scored 0.55 balanced accuracy" in out
    assert "chance 0.50; trusted from 0.75" in out

    strong = weak | {"domain_cnn/balanced_accuracy": 0.75}
    assert feature_network_doubt(strong, 2) == ""
    cli.print_summary(_summary(strong))
    out = " ".join(capsys.readouterr().out.split())
    assert "not meaningful" not in out and "FID 0.0004 (domain)" in out
    assert trusted_feature_accuracy(10) == pytest.approx(0.55)


def test_an_image_job_without_its_classic_arm_is_not_headed_smote():
    """validate.albumentations off: no albumentations scores, and still no SMOTE column."""
    from augment.pipeline.summary import score_table

    metrics = {k: v for k, v in _arms("albumentations", 0.01).items() if "albumentations" not in k}
    header, _ = score_table({**_summary(metrics), "kind": "image"})
    assert header[3] == "real+albumentations" and "SMOTE" not in " ".join(header)
    header, _ = score_table({**_summary(_arms("smote", 0.01)), "kind": "tabular"})
    assert header[3] == "real+SMOTE"


def test_the_recipe_line_names_the_tie_spread_and_what_was_not_judged(capsys):
    recipe = {
        "recipe": "code-mix+warp",
        "chosen": True,
        "scores": {"code-mix+warp": 0.81, "code-mix": 0.85},
        "spreads": {"code-mix+warp vs code-mix": 0.052},
        "not_judged": ["latent"],
        "inner_validation": 92,
        "margin": 0.01,
    }
    cli.print_summary(_summary(_arms("albumentations", 0.01)) | {"recipe": recipe})
    out = " ".join(capsys.readouterr().out.split())
    assert "code-mix did not beat it by more than the margin of 0.01" in out
    assert "and 1.645 times the 0.052 a tie would spread" in out
    assert "not judged, as the warp won: latent" in out


def test_a_table_choice_kept_within_a_ties_spread_says_so():
    from augment.pipeline.summary import choice_sentence

    choice = {
        "chosen": "mix",
        "scores": {"mix": 0.80, "anchored": 0.83, "gan": 0.78},
        "spreads": {"mix vs anchored": 0.025, "mix vs gan": 0.02},
    }
    text = choice_sentence(choice)
    assert "auto picked mix" in text
    assert "anchored did not lead it by more than 1.645 times a tie's spread (0.025)" in text
    assert "did not lead" not in choice_sentence(choice | {"chosen": "anchored"})
