"""What a finished job prints for a person: class counts, holdout scores, fidelity, where the
output went. The CLI and the torchrun entry point (:mod:`augment.pipeline.distributed`) print the
same summary (``JobResult.summary()``, plain data)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

console = Console()


def print_summary(summary: dict[str, Any]) -> None:
    counts = Table(title="class counts (train split)")
    for column in ("class", "before", "generated", "after"):
        counts.add_column(column, justify="right" if column != "class" else "left")
    for cls, before in summary["counts_before"].items():
        counts.add_row(
            cls, str(before), str(summary["plan"].get(cls, 0)), str(summary["counts_after"][cls])
        )
    console.print(counts)

    metrics = summary["metrics"]
    # The classic baseline is SMOTE for tables and albumentations oversampling for images.
    classic = "albumentations" if any(k.startswith("albumentations/") for k in metrics) else "smote"
    scores = Table(title="holdout scores (mean over classifiers)")
    scores.add_column("metric")
    for arm in ("baseline", "augmented", classic, "lift", f"lift_vs_{classic}"):
        scores.add_column(arm, justify="right")
    for name in ("accuracy", "balanced_accuracy", "macro_f1"):
        row = [
            f"{metrics[k]:+.4f}" if k in metrics else "-"
            for k in (
                f"baseline/{name}",
                f"augmented/{name}",
                f"{classic}/{name}",
                f"lift/{name}",
                f"lift_vs_{classic}/{name}",
            )
        ]
        scores.add_row(name, *row)
    if any(k.startswith("baseline/") for k in metrics):
        console.print(scores)
    behind = metrics.get(f"lift_vs_{classic}/balanced_accuracy")
    if behind is not None and behind < 0:  # say it in words, not only as a signed figure
        name = "albumentations oversampling" if classic == "albumentations" else "SMOTE"
        console.print(
            f"[yellow]note:[/yellow] {name} beat the synthetic data by {-behind:.4f} balanced "
            "accuracy on this holdout; the gate compares with real data only"
        )

    fidelity = [
        ("Fréchet distance (encoded space)", "fidelity/frechet"),
        ("detection AUC (0.5 = indistinguishable)", "fidelity/detection_auc"),
        ("mean marginal distance", "fidelity/marginal_mean"),
        ("DCR synthetic / holdout (memorisation if << 1)", "fidelity/dcr/ratio"),
    ]
    for label, key in fidelity:
        if key in metrics:
            console.print(f"{label}: {metrics[key]:.4f}")
    for key in sorted(
        k for k in metrics if k.count("/") == 1 and k.split("/")[0] in ("fid", "kid")
    ):
        console.print(f"{key.upper()} ({key.split('/')[1]} features): {metrics[key]:.4f}")
    if summary.get("cache_hit"):
        console.print("[cyan]cache hit[/cyan]: reused the trained generator (--force retrains)")
    for note in summary.get("notes", []):
        console.print(f"[yellow]note:[/yellow] {note}")
    console.print(f"shards: {summary['output']}/synthetic  (manifest.json, _SUCCESS)")
    if summary.get("mlflow_run_id"):
        from augment.tracking import is_server_uri  # tracking ran, so mlflow is imported already

        where = summary["tracking_uri"] if is_server_uri(summary["tracking_uri"]) else "augment ui"
        console.print(
            f"MLflow run {summary['mlflow_run_id']} in {summary['tracking_uri']} "
            f"(model {summary['model_uri']}); browse it with: {where}",
            soft_wrap=True,
        )
    state = "[green]passed[/green]" if summary["passed"] else "[red]failed[/red]"
    console.print(f"validation {state} in {summary['seconds']:.1f}s")
