"""The session's one Prefect server, for the tests that need its address (deployments served by
`augment serve`, Dask task runners, flows run in subprocesses)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class PrefectServer:
    api_url: str
    env: dict[str, str]  # for subprocesses that talk to this server and import this checkout


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
    env = {
        **os.environ,
        "PREFECT_API_URL": api_url,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    return PrefectServer(api_url=api_url, env=env)


@pytest.fixture
def prefect_api(prefect_server):
    """Point this process's Prefect client at the session's server for one test."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: prefect_server.api_url}):
        yield prefect_server


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
