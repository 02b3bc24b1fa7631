"""A real Prefect API server on loopback, started once per session for the tests that need one
(deployments served by `augment serve`, Dask task runners)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import free_port, stop_process_group, wait_until_healthy

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class PrefectServer:
    api_url: str
    env: dict[str, str]  # for subprocesses that talk to this server and import this checkout


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory) -> PrefectServer:
    """`prefect server start` in a subprocess with its own home and sqlite database."""
    home = tmp_path_factory.mktemp("prefect-home")
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    base = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("PREFECT_") or key == "PREFECT_LOGGING_LEVEL"
    }
    server_env = {
        **base,
        "PREFECT_HOME": str(home),
        "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home / 'prefect.db'}",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_ENABLED": "false",
    }
    log = open(home / "server.log", "wb")  # noqa: SIM115 - closed at teardown
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "prefect",
            "server",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-ui",
            "--analytics-off",
        ],
        env=server_env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_until_healthy(f"{api_url}/health", server, home / "server.log", 180)
        client_env = {
            **base,
            "PREFECT_HOME": str(home / "client"),
            "PREFECT_API_URL": api_url,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }
        yield PrefectServer(api_url=api_url, env=client_env)
    finally:
        stop_process_group(server)
        log.close()


@pytest.fixture
def prefect_api(prefect_server):
    """Point this process's Prefect client at the session's server for one test."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: prefect_server.api_url}):
        yield prefect_server


@pytest.fixture
def training_calls(monkeypatch) -> list[int]:
    """Counts entries into the training loop (one per fitted unit)."""
    import augment.tabular.synthesizer

    calls: list[int] = []
    real = augment.tabular.synthesizer.run_training

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(augment.tabular.synthesizer, "run_training", counting)
    return calls
