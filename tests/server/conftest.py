"""Fixtures for the reference server's own tests: clients over real HTTP."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tally_server import RunningServer, start_server

from .helpers import make_client, unique
from .postgres_cluster import PostgresCluster

BACKENDS = ["sqlite", "postgresql"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/server/" in str(item.fspath).replace("\\", "/") and "contract" not in item.keywords:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """A PostgreSQL server of this session's own (see postgres_cluster.py); never skipped: a missing
    PostgreSQL fails the run with the way to install it."""
    cluster = PostgresCluster()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session", params=BACKENDS)
def backend_db(request: pytest.FixtureRequest) -> str | None:
    """The `db` of a fresh database on each backend: None (a scratch SQLite file) or a new PostgreSQL
    database."""
    if request.param == "sqlite":
        return None
    cluster: PostgresCluster = request.getfixturevalue("postgres")
    return cluster.create_database("live")


@pytest.fixture(scope="session")
def live_server(backend_db: str | None) -> Iterator[RunningServer]:
    """The server tests' live server, once per backend (this overrides the SQLite-only one of
    tests/conftest.py for tests/server only)."""
    with start_server(db=backend_db, validate_responses=True) as server:
        yield server


@pytest.fixture
def client(live_server: RunningServer) -> Iterator[httpx.Client]:
    """An httpx client with the live server's org key."""
    with make_client(live_server, live_server.api_key) as c:
        yield c


@pytest.fixture
def anon(live_server: RunningServer) -> Iterator[httpx.Client]:
    """An httpx client without credentials."""
    with make_client(live_server, None) as c:
        yield c


@pytest.fixture
def new_experiment(client: httpx.Client) -> Callable[..., dict[str, Any]]:
    """Create an experiment (a fresh name each time); returns its JSON."""

    def create(**fields: Any) -> dict[str, Any]:
        body = {"name": unique("exp"), **fields}
        response = client.post("/v1/experiments", json=body)
        assert response.status_code == 201, response.text
        return dict(response.json())

    return create


@pytest.fixture
def ingest_client(
    live_server: RunningServer, client: httpx.Client
) -> Iterator[Callable[[str], httpx.Client]]:
    """`ingest_client(experiment_id)`: an httpx client holding a new ingestion key of that experiment."""
    opened: list[httpx.Client] = []

    def make(experiment_id: str) -> httpx.Client:
        response = client.post(f"/v1/experiments/{experiment_id}/ingestion-keys", json={"name": "tests"})
        assert response.status_code == 201, response.text
        c = make_client(live_server, response.json()["token"])
        opened.append(c)
        return c

    yield make
    for c in opened:
        c.close()
