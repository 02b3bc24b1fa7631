"""What a finished job prints for a person, in about fifteen lines: the holdout scores of each
arm, the verdict in a sentence, fidelity, k-NN precision / recall and the IS, counts, and where
the shards, the report and the MLflow run are. The CLI and the torchrun entry point
(:mod:`augment.pipeline.distributed`) print the same summary (``JobResult.summary()``, plain
data).

The same parts, as plain text and tables, for an orchestrator to show (the Prefect flows publish
them as artifacts): :func:`verdict_sentence`, :func:`gate_message`, :func:`summary_markdown` (the
verdict, the score table, the generator's origin and the links) and :func:`class_table` (counts
and recall per class and arm)."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from augment.core.choice import TIE_Z
from augment.core.metrics import feature_network_doubt, fidelity_judgement

# A log file or CI gets 100 columns rather than rich's 80 (the score table needs ~90).
console = Console(width=None if sys.stdout.isatty() else 100)

_CLASSIC_NAMES = {"smote": "SMOTE", "albumentations": "albumentations oversampling"}
_WORD_STYLES = {"helped": "green", "did not help": "red", "made no difference": "yellow"}
SCORE_TITLE = "holdout scores (mean over classifiers)"


def _classic(summary: dict[str, Any]) -> str:
    """The classic baseline's arm: SMOTE for tables, albumentations oversampling for images
    (by the job's kind; summaries without one, by the metrics' names)."""
    kind = summary.get("kind")
    if kind is not None:
        return "albumentations" if kind == "image" else "smote"
    metrics = summary["metrics"]
    return "albumentations" if any(k.startswith("albumentations/") for k in metrics) else "smote"


def score_table(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """The holdout scores of every arm with the lifts, as a header and rows of text; both empty
    when the job was not validated."""
    metrics = summary["metrics"]
    if not any(k.startswith("baseline/") for k in metrics):
        return [], []
    classic = _classic(summary)
    short = _CLASSIC_NAMES[classic].split()[0]
    header = ["metric", "real", "real+synthetic", f"real+{short}", "lift", f"vs {short}"]
    rows = []
    for name in ("balanced_accuracy", "macro_f1", "accuracy"):
        keys = (f"baseline/{name}", f"augmented/{name}", f"{classic}/{name}")
        row = [name] + [f"{metrics[k]:.4f}" if k in metrics else "-" for k in keys]
        row += [
            f"{metrics[k]:+.4f}" if k in metrics else "-"
            for k in (f"lift/{name}", f"lift_vs_{classic}/{name}")
        ]
        rows.append(row)
    return header, rows


def print_summary(summary: dict[str, Any]) -> None:
    metrics = summary["metrics"]
    header, rows = score_table(summary)
    if rows:
        scores = Table(title=SCORE_TITLE, title_justify="left")
        for index, heading in enumerate(header):
            scores.add_column(heading, justify="left" if index == 0 else "right")
        for row in rows:
            scores.add_row(*row)
        console.print(scores)
    console.print(f"verdict  {verdict_sentence(summary, markup=True)}", highlight=False)
    stacked = metrics.get("lift_stacked_vs_classic/balanced_accuracy")
    if stacked is not None:
        console.print(
            f"stacking with albumentations on the fly: balanced accuracy "
            f"{metrics['classic/balanced_accuracy']:.4f} (real) → "
            f"{metrics['stacked/balanced_accuracy']:.4f} (real+synthetic{_share(metrics)}), "
            f"{stacked:+.4f}",
            highlight=False,
        )
    recipe = summary.get("recipe")
    if recipe:
        line = f"recipe   {recipe['recipe']}"
        if recipe.get("chosen"):
            scores = ", ".join(f"{k} {v:.3f}" for k, v in recipe["scores"].items())
            line += (
                f", chosen on an inner split of the training images "
                f"({recipe['inner_validation']} held out; mean balanced accuracy of a CNN and "
                f"a linear model: {scores})"
            )
            best = max(recipe["scores"], key=recipe["scores"].get)
            if best != recipe["recipe"] and "margin" in recipe:
                spread = recipe.get("spreads", {}).get(f"{recipe['recipe']} vs {best}")
                line += (
                    f"; {best} did not beat it by more than the margin of "
                    f"{recipe['margin']:g} that a later candidate needs"
                    + (
                        f" and {TIE_Z:g} times the {spread:.3f} a tie would spread"
                        if spread is not None
                        else ""
                    )
                )
            if recipe.get("not_judged"):
                line += f"; not judged, as the warp won: {', '.join(recipe['not_judged'])}"
        console.print(line, highlight=False, soft_wrap=True)

    fidelity = [
        ("detection AUC {:.3f}", "fidelity/detection_auc"),
        ("DCR ratio {:.2f}", "fidelity/dcr/ratio"),
        ("DCR share {:.2f} vs unseen rows" + _by_source(metrics), "privacy/dcr_share"),
        ("memorised {:.1%}", "privacy/memorised_share"),
        ("marginal distance {:.3f}", "fidelity/marginal_mean"),
        ("Fréchet {:.1f}", "fidelity/frechet"),
    ]
    parts = [
        text.format(metrics[key])
        + (f" ({judged})" if (judged := fidelity_judgement(key, metrics)) else "")
        for text, key in fidelity
        if key in metrics
    ]
    # numbers measured with a domain CNN too weak to trust are flagged (the note says why)
    doubted = bool(feature_network_doubt(metrics, len(summary["counts_before"])))
    parts += [
        f"{key.split('/')[0].upper()} {_distance(metrics[key])} ({key.split('/')[1]}"
        + (" features: not meaningful" if doubted and key.endswith("/domain") else "")
        + ")"
        for key in sorted(k for k in metrics if k.count("/") == 1)
        if key.split("/")[0] in ("fid", "kid")
    ]
    if parts:
        console.print("fidelity " + " · ".join(parts), highlight=False, soft_wrap=True)
    quality = _quality_parts(metrics, doubted)
    if quality:
        console.print("quality  " + " · ".join(quality), highlight=False, soft_wrap=True)
    if "validation/capped" in metrics and metrics["validation/capped"]:
        sizes = ", ".join(
            f"{k.split('/')[-1]} {int(v):,}"
            for k, v in metrics.items()
            if k.startswith("validation/rows/")
        )
        console.print(f"sampled  validation used a stratified sample: {sizes}", soft_wrap=True)
    if summary.get("cache_hit"):
        console.print("[cyan]cache hit[/cyan]: reused the trained generator (--force retrains)")
    for note in summary.get("notes", []):
        console.print(f"[yellow]note:[/yellow] {note}", highlight=False)

    after = ", ".join(
        f"{cls} {before:,} → {summary['counts_after'][cls]:,}"
        for cls, before in summary["counts_before"].items()
    )
    console.print(f"counts   {after}", highlight=False)
    origin = summary.get("origin") or {}
    if origin:
        noun = "images" if summary.get("kind") == "image" else "rows"
        line = origin_sentence(origin, noun)
        console.print(f"sources  {line}", highlight=False, soft_wrap=True)
    if summary.get("choice"):
        console.print(f"choice   {choice_sentence(summary['choice'])}", highlight=False)
    generated = sum(summary["plan"].values())
    console.print(
        f"shards   {summary['output']}/synthetic ({generated:,} generated)",
        highlight=False,
        soft_wrap=True,
    )
    if summary.get("report"):
        console.print(f"report   {summary['report']}", highlight=False, soft_wrap=True)
    if summary.get("mlflow_run_id"):
        from augment.tracking import is_server_uri  # tracking ran, so mlflow is imported already

        where = summary["tracking_uri"] if is_server_uri(summary["tracking_uri"]) else "augment ui"
        console.print(
            f"mlflow   run {summary['mlflow_run_id']}, model {summary['model_uri']}",
            highlight=False,
            soft_wrap=True,
        )
        console.print(
            f"         in {summary['tracking_uri']}; browse it with: {where}",
            highlight=False,
            soft_wrap=True,
        )
    state = "[green]passed[/green]" if summary["passed"] else "[red]failed[/red]"
    console.print(f"validation {state}, job done in {summary['seconds']:.1f}s")


def _by_source(metrics: dict[str, float]) -> str:
    """``" (GAN 0.52, anchored 0.64)"``: the DCR share of each row source, when measured."""
    parts = [
        f"{name} {metrics[key]:.2f}"
        for name, key in (
            ("GAN", "privacy/dcr_share/source/gan"),
            ("anchored", "privacy/dcr_share/source/anchored"),
        )
        if key in metrics and math.isfinite(metrics[key])
    ]
    return f" ({', '.join(parts)})" if len(parts) > 1 else ""


def _distance(value: float) -> str:
    """FID or KID: two decimals from 1 up, two significant digits below (a KID of 0.0031 is
    not 0.00)."""
    return f"{value:.2f}" if abs(value) >= 1 or value == 0 else f"{value:.2g}"


def _quality_parts(metrics: dict[str, float], doubted: bool = False) -> list[str]:
    """k-NN precision (realism) and recall (coverage), and the IS with the network it used;
    ``doubted``: the domain CNN is too weak for the numbers measured with it to mean anything."""
    flag = "; not meaningful"
    spaces = [("fidelity/precision", "fidelity/recall", "encoded rows")]
    spaces += [
        (key, f"recall/{key.split('/')[1]}", f"{key.split('/')[1]} features")
        for key in sorted(k for k in metrics if k.startswith("precision/") and k.count("/") == 1)
    ]
    parts = [
        f"precision {metrics[precision]:.2f} · recall {metrics[recall]:.2f} (k-NN, {space}"
        + (flag if doubted and space == "domain features" else "")
        + ")"
        for precision, recall, space in spaces
        if precision in metrics and recall in metrics
    ]
    # a score from the domain CNN is never called the Inception Score
    for source, network in (("inception", "InceptionV3"), ("domain", "domain CNN, not Inception")):
        if f"is/{source}" in metrics:
            real = metrics.get(f"is/{source}/real", float("nan"))
            parts.append(
                f"IS {metrics[f'is/{source}']:.2f} ({network}; real {real:.2f}"
                + (flag if doubted and source == "domain" else "")
                + ")"
            )
    return parts


def verdict_sentence(summary: dict[str, Any], markup: bool = False) -> str:
    """The answer to "did it help?" in one sentence (with rich colours when ``markup``)."""
    metrics = summary["metrics"]
    classic = _classic(summary)
    classic_name = _CLASSIC_NAMES[classic]
    lift = metrics.get("lift/balanced_accuracy")
    if lift is None:
        return "not validated (validate.enabled: false): no holdout scores"
    word = "helped" if lift > 0 else "did not help"
    if abs(lift) < 0.001:
        word = "made no difference"
    if markup:
        word = f"[{_WORD_STYLES[word]}]{word}[/{_WORD_STYLES[word]}]"
    text = f"the synthetic data {word}: balanced accuracy {lift:+.4f} over real data alone"
    behind = metrics.get(f"lift_vs_{classic}/balanced_accuracy")
    if behind is not None and behind < 0:  # say it in words, not only as a signed figure
        text += (
            f"; note: {classic_name} beat the synthetic data by {-behind:.4f} balanced "
            "accuracy on this holdout (the gate compares with real data only)"
        )
    elif behind is not None:
        text += f", {behind:+.4f} over {classic_name}"
    return text


def origin_sentence(origin: dict[str, dict[str, int]], noun: str = "rows") -> str:
    """Where the generated rows (images: ``noun="images"``) came from, in words: GAN rows (the
    drawn ones the neighbour filter dropped, those the moment map moved) and anchored rows
    (images: decoded between real codes)."""
    total = {source: sum(counts.values()) for source, counts in origin.items()}
    gan, anchored, dropped, moved, redrawn, below = (
        total.get(key, 0)
        for key in ("gan", "anchored", "dropped", "moved", "redrawn", "below_floor")
    )
    notes = []
    if dropped:
        notes.append(f"the neighbour filter dropped {dropped:,} of {gan + dropped:,} drawn")
    if moved:
        whom = "all" if moved == gan else f"{moved:,}"
        notes.append(f"{whom} moved to their class's real mean and covariance")
    text = f"{gan:,} {noun} from the GAN" + (f" ({'; '.join(notes)})" if notes else "")
    floor = ""
    if "redrawn" in origin:
        floor = f"; the privacy floor redrew {redrawn:,} that sat too close to a real one" + (
            f" ({below:,} kept below it when redraws ran out)" if below else ""
        )
    if noun == "images":
        return text + f", {anchored:,} between real images' codes" + floor
    return text + f", {anchored:,} anchored on real rows" + floor


def choice_sentence(choice: dict[str, Any]) -> str:
    """What an automatic choice picked, with every candidate's score."""
    scores = ", ".join(f"{name} {score:.3f}" for name, score in choice["scores"].items())
    text = (
        f"auto picked {choice['chosen']} (balanced accuracy on an inner split of the training "
        f"rows: {scores})"
    )
    best = max(choice["scores"], key=choice["scores"].get)
    spread = choice.get("spreads", {}).get(f"{choice['chosen']} vs {best}")
    if best != choice["chosen"] and spread is not None:
        text += (
            f"; {best} did not lead it by more than {TIE_Z:g} times a tie's spread ({spread:.3f})"
        )
    return text


def _share(metrics: dict[str, float]) -> str:
    """``", 50% of the top-up synthetic"`` when the stacked arm mixed in copies of real images."""
    share = metrics.get("stacked/synthetic_share")
    return "" if share is None or share >= 1 else f", {share:.0%} of the top-up synthetic"


def gate_message(summary: dict[str, Any], prefix: str = "validation failed: ") -> str:
    """Why the do-no-harm gate failed, and that the output was kept (after ``prefix``)."""
    lift = summary["metrics"].get("lift/balanced_accuracy", float("nan"))
    return (
        f"{prefix}lift in balanced accuracy {lift:+.4f} is below validate.min_lift="
        f"{summary['min_lift']}; the shards are kept in {summary['output']}"
    )


# Recall per class is scored in these arms, named here as in the score table.
_ARM_NAMES = {
    "baseline": "real",
    "augmented": "real+synthetic",
    "smote": "real+SMOTE",
    "albumentations": "real+albumentations",
    "classic": "real, warped on the fly",
    "stacked": "real+synthetic, warped on the fly",
}


def class_table(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per class: its rows (images) before, generated and after, and its holdout recall
    in each arm that was scored (``recall <arm>``; None where the holdout has no such class)."""
    from augment.core.metrics import unique_metric_keys

    metrics = summary["metrics"]
    classes = list(summary["counts_before"])
    rows = []
    for cls, key in zip(classes, unique_metric_keys(classes), strict=True):
        before, after = summary["counts_before"][cls], summary["counts_after"][cls]
        row: dict[str, Any] = {
            "class": cls,
            "before": before,
            "generated": after - before,
            "after": after,
        }
        for arm, name in _ARM_NAMES.items():
            recall = metrics.get(f"{arm}/recall/{key}")
            if recall is not None:
                row[f"recall {name}"] = None if math.isnan(recall) else round(recall, 4)
        rows.append(row)
    return rows


def _link(target: str) -> str:
    """A markdown link to a local file or a URL."""
    href = target if "://" in target else Path(target).resolve().as_uri()
    return f"[{target}]({href})"


def generator_sentence(summary: dict[str, Any]) -> str | None:
    """Where the job's generator came from: reused from the cache, or trained by this run."""
    key = summary.get("cache_key")
    if summary.get("cache_hit"):
        return f"reused from the cache (trained by an earlier run; key {key}), nothing trained"
    units = summary.get("training") or []
    if not units:
        return None
    seconds = sum(unit.get("seconds", 0.0) for unit in units)
    cached = f"; cached for later runs (key {key})" if key else ""
    return f"trained by this run ({len(units)} model(s), {seconds:.1f} s){cached}"


def summary_markdown(summary: dict[str, Any]) -> str:
    """The job in markdown: the verdict sentence first (with the gate's outcome), then the
    score table, where the generator came from, and links to the output, report.html and the
    MLflow run."""
    verdict = verdict_sentence(summary)
    lines = [f"**{summary['name']}**: {verdict[0].upper()}{verdict[1:]}.", ""]
    if not summary["passed"]:
        lines += [gate_message(summary, prefix="**Gate failed**: ") + ".", ""]
    header, rows = score_table(summary)
    if rows:
        lines += [f"{SCORE_TITLE[0].upper()}{SCORE_TITLE[1:]}:", ""]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        lines.append("")
    generated = sum(summary["plan"].values())
    lines.append(f"- output: `{summary['output']}` ({generated:,} generated)")
    generator = generator_sentence(summary)
    if generator:
        lines.append(f"- generator: {generator}")
    if summary.get("report"):
        lines.append(f"- report: {_link(summary['report'])}")
    link = summary.get("mlflow_run_link")
    if link:
        where = _link(link) if "://" in link and " " not in link else f"`{link}`"
        lines.append(f"- MLflow run: {where}; model `{summary.get('model_uri')}`")
    return "\n".join(lines) + "\n"
