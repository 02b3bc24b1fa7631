"""The session's one Prefect server, for the tests that need its address (deployments served by
`augment serve`, Dask task runners, flows run in subprocesses); and a full `prefect server start`
for the test that needs the server's scheduler, which the ephemeral server does not run."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import free_port, stop_process_group, wait_until_healthy

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class PrefectServer:
    api_url: str
    env: dict[str, str]  # for subprocesses that talk to this server and import this checkout
    log: Path | None = None  # the server's output, when the tests started it themselves


def _client_env(api_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "PREFECT_API_URL": api_url,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }


@pytest.fixture(scope="session")
def prefect_server() -> PrefectServer:
    """The ephemeral server of this pytest process, as the session's only Prefect server.

    Without PREFECT_API_URL (tests/conftest.py unsets it) Prefect starts one temporary server per
    process on the first flow run, in a subprocess with a sqlite database in the session's
    PREFECT_HOME, and stops it when the process exits; flows run in-process by tests without this
    fixture use it too, as `augment run --engine prefect` does. This starts it if no test has yet
    (a client is what starts it; the wait is tests/conftest.py's startup timeout) and gives its
    address to processes that would otherwise start a server of their own.
    """
    from prefect.client.base import ServerType
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    assert not PREFECT_API_URL.value(), "tests/conftest.py unsets PREFECT_API_URL"
    with get_client(sync_client=True) as client:
        assert client.server_type is ServerType.EPHEMERAL, client.server_type
        api_url = str(client.api_url).rstrip("/")
        client.hello().raise_for_status()
    return PrefectServer(api_url=api_url, env=_client_env(api_url))


@pytest.fixture(scope="module")
def prefect_server_with_scheduler(tmp_path_factory) -> Iterator[PrefectServer]:
    """`prefect server start` on loopback with all its services, as a user runs it for schedules.

    The session's ephemeral server runs no scheduler (Prefect starts only a few services in a
    temporary server), so a cron deployment served against it never gets a run. This one has its
    own home and sqlite database and a scheduler loop of 5 s instead of 60 s (a new deployment is
    scheduled within seconds anyway, by the scheduler's pass over recently changed deployments).
    """
    home = tmp_path_factory.mktemp("prefect-server")
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_UI_ENABLED": "false",
        "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "5",
    }
    log_path = home / "server.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start"]
            + ["--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_until_healthy(f"{api_url}/health", server, log_path, 180)
            yield PrefectServer(api_url=api_url, env=_client_env(api_url), log=log_path)
        finally:
            stop_process_group(server)


@pytest.fixture
def prefect_api(prefect_server):
    """Point this process's Prefect client at the session's server for one test."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: prefect_server.api_url}):
        yield prefect_server


@pytest.fixture
def prefect_scheduler_api(prefect_server_with_scheduler):
    """Point this process's Prefect client at the server with a scheduler for one test."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    api_url = prefect_server_with_scheduler.api_url
    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        yield prefect_server_with_scheduler


def read_artifacts(key: str) -> list:
    """Every artifact under ``key`` on the Prefect server this process talks to."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        return client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key]))
        )


@pytest.fixture
def training_calls(monkeypatch) -> list[int]:
    """Counts entries into the training loop (one per fitted unit, tables and images alike)."""
    import augment.core.synthesizer

    calls: list[int] = []
    real = augment.core.synthesizer.run_training

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(augment.core.synthesizer, "run_training", counting)
    return calls
