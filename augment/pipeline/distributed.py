"""The balancing job with each GAN trained data-parallel over several processes (torchrun, DDP).

    torchrun --nproc_per_node 2 -m augment.pipeline.distributed configs/breast_cancer.yaml [--set k=v ...]
    augment train configs/breast_cancer.yaml --nproc 2        # launches the line above for you

One process per GPU on CUDA (backend nccl), or per CPU share (backend gloo). What each rank does:

    rank 0     start_job (output lock, MLflow run) -> load_data -> hands the data to the others
               -> fit every unit (DDP) -> assemble -> generate -> validate -> finish
    rank r > 0 receives the data -> fit every unit (DDP) -> exits

Every rank draws its own batches (seeded per rank) and DDP averages the gradients, so one step
sees ``train.batch_size x world size`` rows (the effective batch; the learning rate is not
scaled). Rank 0 alone logs to MLflow, writes checkpoints, shards, the manifest and ``_SUCCESS``,
and validates. A rerun resumes every rank from rank 0's checkpoint, each rank with its own saved
random streams (on the CPU, a resumed run ends with the weights of an uninterrupted one). Another
world size trains another model: the manifest and the MLflow params record it.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from augment.core import ddp
from augment.core.config import JobConfig
from augment.core.context import JobContext
from augment.core.errors import AugmentError, ValidationFailed
from augment.pipeline.config import load_config
from augment.pipeline.job import (
    JobResult,
    assemble,
    fail_job,
    finish_job,
    fit_unit_step,
    generate_step,
    load_data,
    start_job,
    units_for,
    validate_step,
)
from augment.pipeline.summary import gate_message


def run_distributed_job(config: JobConfig, raise_on_gate: bool = False) -> JobResult | None:
    """Run the job as one rank of a torchrun launch; rank 0 returns the result, the others None.

    Raises:
        ValidationFailed: only on rank 0, when ``raise_on_gate`` and the gate failed.
        AugmentError: on every rank when rank 0 cannot start the job or load the data.
    """
    ddp.init(config.train.device)
    world = ddp.world_size()
    main_ctx: list[JobContext] = []

    def prepare() -> Any:  # rank 0 only: lock the output, open the MLflow run, load and plan
        ctx = start_job(config)
        ctx.world_size = world
        main_ctx.append(ctx)
        if ctx.tracker:
            ctx.tracker.log_params(
                {
                    "train.world_size": world,
                    "train.effective_batch_size": config.train.batch_size * world,
                }
            )
        return load_data(ctx)

    try:
        try:
            data = ddp.from_main(prepare)
            ctx = main_ctx[0] if main_ctx else _worker_context(config, world)
            fitted = [fit_unit_step(ctx, data, classes) for classes in units_for(ctx, data)]
            # Every rank is past its last collective before any leaves the group. Only on
            # success: after a crash the other ranks may be inside a collective that never ends.
            ddp.barrier()
        finally:
            # Training is the only collective part: leave the group now, so no rank waits for
            # rank 0 to generate and validate.
            ddp.shutdown()
        if not main_ctx:
            return None
        synthesizer = assemble(ctx, data, fitted)
        generation = generate_step(ctx, data, synthesizer)
        report, fidelity = validate_step(ctx, data) if config.validate_.enabled else (None, {})
        result = finish_job(ctx, data, generation, report, fidelity)
    except BaseException:
        if main_ctx:
            fail_job(main_ctx[0])
        raise
    if raise_on_gate and not result.passed:
        summary = result.summary()
        raise ValidationFailed(gate_message(summary), [summary])
    return result


def _worker_context(config: JobConfig, world: int) -> JobContext:
    """What a rank other than 0 needs to train: the config and where rank 0 keeps checkpoints."""
    return JobContext(
        config=config,
        output=Path(config.output_path).expanduser(),
        fingerprint=config.fingerprint(),
        tracker=None,
        world_size=world,
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``torchrun ... -m augment.pipeline.distributed CONFIG``; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="torchrun --nproc_per_node N -m augment.pipeline.distributed",
        description="Run an augment job with each GAN trained over the torchrun processes (DDP).",
    )
    parser.add_argument("config", help="YAML job config")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument(
        "--summary-json", help="rank 0 writes the job summary (or the error) to this JSON file"
    )
    args = parser.parse_args(argv)
    rank = int(os.environ.get("RANK", "0"))
    summary_path = Path(args.summary_json) if args.summary_json else None
    try:
        result = run_distributed_job(load_config(args.config, args.overrides))
    except AugmentError as error:
        if rank == 0:
            print(f"error: {error}", file=sys.stderr)
            if summary_path:
                _write_summary(summary_path, {"error": str(error), "exit_code": error.exit_code})
        return error.exit_code
    if result is None:
        return 0
    summary = result.summary()
    if summary_path:
        _write_summary(summary_path, summary)
    else:
        from augment.pipeline.summary import print_summary

        print_summary(summary)
    return 0 if summary["passed"] else ValidationFailed.exit_code


def _write_summary(path: Path, summary: dict[str, Any]) -> None:
    from augment.core.shards import write_json_atomic

    write_json_atomic(path, summary)


if __name__ == "__main__":
    raise SystemExit(main())
