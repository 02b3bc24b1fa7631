"""Scale: generation throughput and peak memory for big jobs, and what the validation cap buys.

Run from the repository root::

    python -m benchmarks.scale              # 100k and 1M rows, 10k and 100k images, validation
                                            # at 200k rows with and without the cap, and the
                                            # 2M-row breast_cancer job (about 15 minutes)
    python -m benchmarks.scale --rows 10000000   # add the 10M-row case (by hand; minutes more)
    python -m benchmarks.scale --quick      # smoke test: small sizes (what the slow test runs)
    python -m benchmarks.scale --workers 1,2   # generation on Dask: the local engine, then 1
                                            # and 2 worker processes, side by side (4M rows)
    python -m benchmarks.scale --cases folder --output benchmarks/results/scale_folder.json
                                            # a folder of 20,000 RGB photos at 256 px (~10 min;
                                            # the folder is written once under /tmp)

Every case is a real job (``augment.run_job``: load, fit, generate into the output, validate) in
a fresh Python process, so its peak RSS (``ru_maxrss``) is its own. Tracking is off except in the
full job, which logs to a throwaway MLflow store as a user's job would.

- ``table``: breast_cancer (30 numeric columns), the GAN trained for a few steps (throughput
  does not depend on quality), then ``N`` rows generated into Parquet parts, validation off.
  rows/s is the generation phase: sampling, decoding, Arrow conversion, compression, writes.
- ``image``: digits at 28x28 (10 classes), ``N`` images as PNG bytes in Parquet parts.
- ``validate``: the breast_cancer job with ``N`` generated rows, validation (downstream arms and
  fidelity) with ``validate.max_rows`` at its default and with no cap.
- ``job``: the breast_cancer job with 1,000,000 rows of each class, all other settings default.
- ``folder``: a folder of ``--folder-images`` JPEG photos (20,000: noise, a gradient and a few
  shapes per image, four classes of 50/25/17.5/7.5 %) read at ``--folder-size`` px RGB (256),
  ``data.max_images`` at its default (the models fit on a 512 MiB sample, the plan counts every
  image), the default recipes (the choice between ``code-mix+warp`` and ``code-mix``, with one
  epoch per judge), the autoencoder for 50 steps and the code GAN for 100, validation on (1 CNN
  epoch per arm), one torch thread. The folder is written once under the system's temp folder and kept.

Prints a markdown table and writes ``benchmarks/results/scale.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

RESULTS = Path(__file__).parent / "results" / "scale.json"


def _config(kind: str, n: int, output: Path, **overrides: Any) -> dict[str, Any]:
    """The job configuration of one case: the shipped example with ``n`` samples planned."""
    if kind == "image":
        per_class, extra = n // 10, n % 10
        strategy = {digit: per_class + (digit < extra) for digit in range(10)}
        config: dict[str, Any] = {
            "name": "scale_images",
            "data": {"source": "sklearn:digits", "kind": "image", "size": 28, "channels": 1},
            "balance": {"sampling_strategy": strategy},
            "model": {"width": 32},
            "train": {"steps": 20, "batch_size": 128, "device": "cpu", "seed": 0},
            "validate": {"enabled": False},
        }
    else:
        half = n // 2
        config = {
            "name": "scale_table",
            "data": {"source": "sklearn:breast_cancer", "label": "target"},
            "balance": {"sampling_strategy": {"benign": n - half, "malignant": half}},
            "train": {"steps": 20, "batch_size": 64, "device": "cpu", "seed": 0},
            "validate": {"enabled": False},
        }
    config["output"] = {"path": str(output / "run")}
    config["tracking"] = {"enabled": False}
    for section, values in overrides.items():
        config.setdefault(section, {}).update(values)
    return config


FOLDER_CLASSES = {"a": 0.5, "b": 0.25, "c": 0.175, "d": 0.075}


def image_folder(n: int, size: int) -> Path:
    """A folder of ``n`` JPEG photos of ``size`` px in four classes, written once and kept
    (under the temp folder, never the repository): a smooth gradient of the class's colour, noise
    and a few random shapes, so that the files are photo-sized (~20 KB), not noise-sized."""
    import numpy as np
    from PIL import Image, ImageDraw

    root = Path(tempfile.gettempdir()) / f"augment-scale-folder-{n}-{size}"
    if (root / "_COMPLETE").exists():
        return root
    rng = np.random.default_rng(0)
    ramp = np.linspace(0.0, 1.0, size)[None, :, None]
    for index, (cls, share) in enumerate(FOLDER_CLASSES.items()):
        colour = np.array([[60, 120, 200], [200, 80, 60], [70, 180, 90], [190, 170, 50]][index])
        folder = root / cls
        folder.mkdir(parents=True, exist_ok=True)
        base = 40 + ramp * colour[None, None, :]  # (1, size, 3) gradient
        for i in range(round(n * share)):
            noise = rng.normal(0, 12, (size, size, 3))
            pixels = np.clip(base + noise, 0, 255).astype(np.uint8)
            image = Image.fromarray(pixels)
            draw = ImageDraw.Draw(image)
            for _ in range(3):
                x, y = rng.integers(0, size - size // 4, 2)
                extent = int(rng.integers(size // 8, size // 4))
                fill = tuple(int(v) for v in rng.integers(0, 256, 3))
                shape = draw.ellipse if index % 2 else draw.rectangle
                shape([int(x), int(y), int(x) + extent, int(y) + extent], fill=fill)
            image.save(folder / f"{i:06d}.jpg", quality=90)
    (root / "_COMPLETE").write_text("")
    return root


def run_case(case: str, n: int, cap: str, size: int = 256) -> dict[str, Any]:
    """One case in this process; returns its measurements."""
    from augment.pipeline.config import parse_config
    from augment.pipeline.job import run_job

    with tempfile.TemporaryDirectory(prefix="augment-scale-") as tmp:
        output = Path(tmp)
        if case == "folder":
            config = {
                "name": "scale_folder",
                "data": {
                    "source": str(image_folder(n, size)),
                    "kind": "image",
                    "size": size,
                    "channels": 3,
                },
                # the default recipes (auto: code-mix+warp or code-mix, the code GAN and the
                # choice's judges included); short trainings, since memory is the point
                "model": {"autoencoder_steps": 50, "code_gan_steps": 100, "choice_epochs": 1},
                "train": {"batch_size": 64, "device": "cpu", "seed": 0, "cpu_threads": 1},
                "validate": {"enabled": True, "epochs": 1},
                "output": {"path": str(output / "run")},
                "tracking": {"enabled": False},
            }
        elif case == "table":
            config = _config("table", n, output)
        elif case == "image":
            config = _config("image", n, output)
        elif case == "validate":
            validate: dict[str, Any] = {"enabled": True}
            if cap != "default":
                validate["max_rows"] = None if cap == "none" else int(cap)
            config = _config("table", n, output, validate=validate)
        elif case == "job":
            config = _config(
                "table",
                n,
                output,
                train={"steps": 250},
                validate={"enabled": True},
                tracking={"enabled": True, "uri": f"sqlite:///{output / 'mlflow.db'}"},
            )
        else:
            raise SystemExit(f"unknown case {case!r}")
        job_config = parse_config(config)
        began = time.perf_counter()
        result = run_job(job_config)
        seconds = time.perf_counter() - began
        shard_bytes = sum(f.stat().st_size for f in (output / "run").rglob("*.parquet"))
    generated = sum(result.plan.values())
    generate = result.timings.get("generate", float("nan"))
    return {
        "case": f"folder {size} px" if case == "folder" else case,
        "n": generated,
        "cap": str(job_config.validate_.max_rows) if case in ("validate", "job") else None,
        "seconds": round(seconds, 2),
        "timings": {k: round(v, 2) for k, v in result.timings.items()},
        "per_second": round(generated / generate) if generate else None,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "shard_mb": round(shard_bytes / 2**20, 1),
        "notes": result.notes,
    }


def run_workers_case(
    n: int, workers: int, part_rows: int, part_threads: int | None = 1
) -> dict[str, Any]:
    """The table job of ``n`` rows in parts of ``part_rows``: through the local engine
    (``workers`` 0; ``part_threads`` parts side by side in its process, None: one per core) or
    the Prefect flow with a LocalCluster of ``workers`` processes, one torch thread each.
    Generation's rows per second come from the manifest (plan to merge: the generator file, the
    tasks, the parts and the merge, not training)."""
    import hashlib

    import yaml

    from augment.core.shards import read_manifest

    with tempfile.TemporaryDirectory(prefix="augment-scale-") as tmp:
        output = Path(tmp)
        config = _config(
            "table",
            n,
            output,
            generate={"part_rows": part_rows, "part_threads": part_threads if not workers else 1},
            train={"cpu_threads": 1},
        )
        began = time.perf_counter()
        if workers == 0:
            from augment.pipeline.config import parse_config
            from augment.pipeline.job import run_job

            run_job(parse_config(config))
        else:
            from flows.balance import balance_flow, local_server_defaults

            config["orchestration"] = {"task_runner": "dask", "dask_workers": workers}
            path = output / "job.yaml"
            path.write_text(yaml.safe_dump(config))
            local_server_defaults()
            balance_flow(str(path))
        seconds = time.perf_counter() - began
        manifest = read_manifest(output / "run")
    files = hashlib.sha256(
        json.dumps([(f["path"], f["sha256"]) for f in manifest["files"]]).encode()
    ).hexdigest()
    generation = manifest["generation"]
    threads = generation.get("threads", 1)
    local = f"local engine, {threads} thread{'s' if threads > 1 else ''}"
    return {
        "case": f"workers {workers}" if workers else local,
        "n": generation["rows"],
        "cap": None,
        "seconds": round(seconds, 2),
        "timings": {"generate": generation["seconds"]},
        "per_second": round(generation["rows_per_second"]),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "parts": generation["parts"],
        "processes": generation["processes"],
        "files_sha256": files,
        "notes": [],
    }


def _spawn(case: str, n: int, cap: str = "default", size: int = 256) -> dict[str, Any]:
    if case == "folder":
        image_folder(n, size)  # written here, before the measured process starts
    command = [sys.executable, "-m", "benchmarks.scale", "--case", case, "--n", str(n)]
    command += ["--cap", cap, "--size", str(size)]
    print(f"running {case} n={n:,} cap={cap} ...", file=sys.stderr, flush=True)
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"case {case} n={n} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| case | generated | cap | job s | generate s | validate s | per second | peak RSS MB |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        t = row["timings"]
        unit = "images/s" if row["case"].startswith(("image", "folder")) else "rows/s"
        rate = f"{row['per_second']:,} {unit}" if row["per_second"] else "-"
        lines.append(
            f"| {row['case']} | {row['n']:,} | {row['cap'] or '-'} | {row['seconds']:.1f} "
            f"| {t.get('generate', 0):.1f} | {t.get('validate', 0):.1f} | {rate} "
            f"| {row['peak_rss_mb']:,} |"
        )
    return "\n".join(lines)


def scaling(args: argparse.Namespace) -> None:
    """The local engine, then each number of workers, each in a fresh process; rows/s and the
    scaling efficiency against one worker; the files' sha256 must agree."""
    # (workers, part threads): the local engine one part at a time and with a part per core
    # (generate.part_threads: null), then each number of workers
    cases = [(0, "1"), (0, "auto"), *((int(w), "1") for w in args.workers.split(","))]
    rows = []
    for workers, threads in cases:
        command = [sys.executable, "-m", "benchmarks.scale", "--case", "workers"]
        command += ["--n", str(args.workers_rows), "--cap", str(workers)]
        command += ["--part-rows", str(args.part_rows), "--part-threads", threads]
        name = f"{workers} workers" if workers else f"the local engine ({threads} part threads)"
        print(f"running {name} ...", file=sys.stderr, flush=True)
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"{workers} workers failed:\n{done.stderr[-3000:]}")
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    one = next((r["per_second"] for r in rows if r["case"] == "workers 1"), None)
    lines = [
        "| engine | rows | parts | processes | generate s | rows/s | vs 1 worker | efficiency "
        "| same files |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        workers = int(row["case"].split()[-1]) if row["case"].startswith("workers") else 0
        ratio = row["per_second"] / one if one else float("nan")
        efficiency = f"{ratio / workers:.0%}" if workers else "-"
        same = "yes" if row["files_sha256"] == rows[0]["files_sha256"] else "NO"
        lines.append(
            f"| {row['case']} | {row['n']:,} | {row['parts']} | {row['processes']} "
            f"| {row['timings']['generate']:.1f} | {row['per_second']:,} | {ratio:.2f}x "
            f"| {efficiency} | {same} |"
        )
    table = "\n".join(lines)
    print(table)
    output = args.output if args.output != RESULTS else RESULTS.with_name("scale_workers.json")
    output.write_text(
        json.dumps(
            {
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
                "results": rows,
                "table": table,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {output}", file=sys.stderr)
    if any(row["files_sha256"] != rows[0]["files_sha256"] for row in rows):
        raise SystemExit("the engines wrote different files")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--cap", default="default", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, default=256, help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="small sizes, for the smoke test")
    parser.add_argument(
        "--rows", type=int, nargs="*", default=None, help="table generation sizes to measure"
    )
    parser.add_argument(
        "--cases",
        default="table,image,validate,job",
        help="which cases to run (comma-separated): table, image, validate, job, folder",
    )
    parser.add_argument(
        "--folder-images", type=int, default=20_000, help="images in the folder case's folder"
    )
    parser.add_argument("--folder-size", type=int, default=256, help="data.size of the folder case")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument(
        "--workers",
        help="scaling instead of the cases: the table job through the local engine and on "
        "LocalClusters of these numbers of worker processes, side by side (e.g. 1,2)",
    )
    parser.add_argument(
        "--workers-rows", type=int, default=4_000_000, help="rows of the scaling job"
    )
    parser.add_argument("--part-rows", type=int, default=500_000, help="generate.part_rows")
    parser.add_argument("--part-threads", default="1", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case == "workers":  # a child process: one scaling case, one JSON line
        threads = None if args.part_threads == "auto" else int(args.part_threads)
        print(json.dumps(run_workers_case(args.n, int(args.cap), args.part_rows, threads)))
        return
    if args.case:  # a child process: one case, one JSON line
        print(json.dumps(run_case(args.case, args.n, args.cap, args.size)))
        return
    if args.workers is not None:
        scaling(args)
        return

    if args.quick:
        rows, images, validate_n, caps, job_n = [20_000], [2_000], 20_000, ("5000", "none"), None
    else:
        rows, images, validate_n, job_n = (
            [100_000, 1_000_000],
            [10_000, 100_000],
            200_000,
            2_000_000,
        )
        caps = ("default", "none")
    if args.rows:
        rows = args.rows
    cases = set(args.cases.split(","))
    results = [_spawn("table", n) for n in rows] if "table" in cases else []
    results += [_spawn("image", n) for n in images] if "image" in cases else []
    results += [_spawn("validate", validate_n, cap) for cap in caps] if "validate" in cases else []
    if job_n and "job" in cases:
        results.append(_spawn("job", job_n))
    if "folder" in cases:
        results.append(_spawn("folder", args.folder_images, size=args.folder_size))

    table = _table(results)
    print(table)
    for row in results:
        for note in row["notes"]:
            print(f"- {row['case']} {row['n']:,}: {note}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps(
            {
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": {
                    "cores": os.cpu_count(),
                    "python": platform.python_version(),
                    "platform": platform.platform(),
                },
                "quick": args.quick,
                "results": results,
                "table": table,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
