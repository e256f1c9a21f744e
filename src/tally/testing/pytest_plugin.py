"""pytest fixtures backed by a real, embedded Tally reference server.

Registered through the `pytest11` entry point, so installing Tally is enough:

    def test_training_logs_loss(tally_client):
        experiment = tally_client.experiments.create("unit-test")
        tally_client.metrics.ingest(experiment.id, [{"name": "loss", "value": 0.5, "step": 0}])

Fixtures:
- `tally_server`: the running server (`.url`, `.api_key`, `.client()`, `.async_client()`).
- `tally_client`: a `Tally` on it, closed after the test.
- `async_tally_client`: an `AsyncTally` on it, closed after the test.

The fixtures need the reference server (`pip install 'tally-metrics[server]'`). This plugin is loaded by
pytest wherever Tally is installed, so it imports nothing beyond pytest until a fixture is used; a fixture used
in a bare install fails with one line naming the extra.

Isolation: one server for the whole session by default; `--tally-isolation=function` (or the ini option
`tally_isolation = function`) gives every test its own server and empty database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tally import AsyncTally, Tally
    from tally.embedded import EmbeddedServer

_ISOLATION_CHOICES = ("session", "function")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tally")
    group.addoption(
        "--tally-isolation",
        choices=_ISOLATION_CHOICES,
        default=None,
        help="one Tally server per test session (default) or per test function",
    )
    parser.addini(
        "tally_isolation", "session (default) or function: the lifetime of the tally_server fixture"
    )


def _server_scope(fixture_name: str, config: pytest.Config) -> str:
    """The `tally_server` fixture's scope, from the command line, else the ini file, else `session`."""
    chosen = config.getoption("--tally-isolation") or config.getini("tally_isolation") or "session"
    if chosen not in _ISOLATION_CHOICES:
        raise pytest.UsageError(
            f"tally_isolation must be one of {', '.join(_ISOLATION_CHOICES)}, not {chosen!r}"
        )
    return str(chosen)


@pytest.fixture(scope=_server_scope)  # type: ignore[arg-type]
def tally_server() -> Iterator[EmbeddedServer]:
    """A real Tally reference server on a free loopback port, with a scratch database."""
    from tally._extras import MissingExtraError
    from tally.embedded import start_embedded

    try:
        server = start_embedded()
    except MissingExtraError as error:  # a bare install: one line naming the extra, no traceback
        pytest.fail(str(error), pytrace=False)
    with server:
        yield server


@pytest.fixture
def tally_client(tally_server: EmbeddedServer) -> Iterator[Tally]:
    """A `Tally` client of the `tally_server` fixture."""
    with tally_server.client() as client:
        yield client


@pytest.fixture
async def async_tally_client(tally_server: EmbeddedServer) -> AsyncIterator[AsyncTally]:
    """An `AsyncTally` client of the `tally_server` fixture (needs an async test runner such as pytest-asyncio)."""
    async with tally_server.async_client() as client:
        yield client
