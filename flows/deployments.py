"""Deployments of the balancing flow: one per job config, named after the job, on a cron.

Served by a long-running process (what ``augment serve`` does)::

    augment serve configs/breast_cancer.yaml configs/wine.yaml --cron "0 3 * * *" --timezone UTC

which registers ``augment-balance/<job name>`` with the Prefect API (``PREFECT_API_URL``) and runs
its scheduled and triggered runs in subprocesses of this process. For work pools and workers
instead (runs on other machines, infrastructure per run) see ``prefect.yaml`` at the repo root.

A served job runs again and again into the output its config names, so its runs replace the
previous finished run (``SERVED_OVERRIDES``): the second night never fails on the first night's
output. A config keeps every run apart with a run placeholder in ``output.path``
(``runs/{name}/{run_date}``), and ``--set output.overwrite=false`` restores the refusal.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import prefect
from prefect.schedules import Cron
from prefect.settings import get_current_settings
from prefect.types.entrypoint import EntrypointType

from augment.core.errors import ConfigError
from augment.pipeline.config import load_config
from flows.balance import balance_flow

# Put before the user's overrides (theirs win): a rerun replaces the previous finished run.
SERVED_OVERRIDES = ("output.overwrite=true",)


def runner_deployments(
    config_paths: Sequence[str],
    overrides: Sequence[str] = (),
    cron: str | None = None,
    timezone: str = "UTC",
) -> list[Any]:
    """One ``RunnerDeployment`` of ``balance_flow`` per config; each config is validated first.

    The entrypoint is the module path ``flows.balance.balance_flow``, so a run's subprocess
    imports the installed package wherever it runs; the config path is stored absolute. The
    runs replace the previous finished run unless the overrides say otherwise
    (``SERVED_OVERRIDES``).
    """
    overrides = [*SERVED_OVERRIDES, *overrides]
    try:
        ZoneInfo(timezone)
        schedules = [Cron(cron, timezone=timezone)] if cron else None
    except (ValueError, ZoneInfoNotFoundError) as error:
        raise ConfigError(
            f"--cron {cron!r} --timezone {timezone!r}: {error}; give five cron fields like "
            "'0 3 * * *' and an IANA zone like Europe/Berlin"
        ) from None
    if cron and not get_current_settings().api.url:
        # Prefect's temporary server (what runs without an API URL) has no scheduler: the
        # deployment would be served and never run, without a word
        raise ConfigError(
            f"--cron {cron!r} needs a Prefect server whose scheduler runs, but no Prefect API "
            "is set: start one (`prefect server start`) and export "
            "PREFECT_API_URL=http://127.0.0.1:4200/api (or `prefect config set "
            "PREFECT_API_URL=...`); Prefect's temporary server never creates scheduled runs"
        )
    deployments, names = [], {}
    for path in config_paths:
        config = load_config(path, list(overrides))  # a bad config fails here, not at 03:00
        if config.name in names:
            raise ConfigError(
                f"{path} and {names[config.name]} both name the job {config.name!r}; deployments "
                "are named after the job, so give each config its own name"
            )
        names[config.name] = path
        deployments.append(
            balance_flow.to_deployment(
                name=config.name,
                schedules=schedules,
                parameters={
                    "config_path": str(Path(path).resolve()),
                    "overrides": list(overrides),
                    "force": False,
                },
                description=f"Balance {config.data.source} ({config.data.kind}) with augment.",
                tags=["augment", config.name],
                entrypoint_type=EntrypointType.MODULE_PATH,
            )
        )
    return deployments


def serve(deployments: Sequence[Any], limit: int | None = None) -> None:
    """Register the deployments and run their flow runs until interrupted."""
    prefect.serve(*deployments, limit=limit)
