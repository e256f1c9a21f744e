"""pytest fixtures backed by a real, embedded Tally reference server.

Registered through the `pytest11` entry point, so installing Tally is enough:

    def test_training_logs_loss(tally_client):
        experiment = tally_client.experiments.create("unit-test")
        tally_client.metrics.ingest(experiment.id, [{"name": "loss", "value": 0.5, "step": 0}])

Fixtures:
- `tally_server`: the running server (`.url`, `.api_key`, `.client()`, `.async_client()`).
- `tally_client`: a `Tally` on it, closed after the test.
- `async_tally_client`: an `AsyncTally` on it, closed after the test. With pytest-asyncio installed it is a
  pytest-asyncio fixture, so it works in pytest-asyncio's default strict mode (mark the test
  `@pytest.mark.asyncio`) as in auto mode, with no setting; without pytest-asyncio it is a plain async fixture
  for whichever plugin runs async tests (anyio's, for tests marked `@pytest.mark.anyio`).

The fixtures need the reference server (`pip install 'tally-metrics[server]'`). This plugin is loaded by
pytest wherever Tally is installed, so it imports nothing beyond pytest (and pytest-asyncio, which pytest has
loaded already when it is installed) until a fixture is used; a fixture used in a bare install fails with one
line naming the extra.

Isolation: one server for the whole session by default; `--tally-isolation=function` (or the ini option
`tally_isolation = function`) gives every test its own server and empty database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar, cast

import pytest

if TYPE_CHECKING:
    from tally import AsyncTally, Tally
    from tally.embedded import EmbeddedServer

_ISOLATION_CHOICES = ("session", "function")


_F = TypeVar("_F", bound=Callable[..., Any])


def _async_fixture_decorator() -> Callable[[_F], _F]:
    """`pytest_asyncio.fixture` when pytest-asyncio is installed (pytest loads it anyway, so importing it costs
    nothing more), else `pytest.fixture`: a plain async fixture for anyio's plugin or another runner."""
    try:
        import pytest_asyncio
    except ImportError:
        return cast("Callable[[_F], _F]", pytest.fixture)
    return cast("Callable[[_F], _F]", pytest_asyncio.fixture)


_async_fixture = _async_fixture_decorator()


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


@_async_fixture
async def async_tally_client(tally_server: EmbeddedServer) -> AsyncIterator[AsyncTally]:
    """An `AsyncTally` client of the `tally_server` fixture (needs an async test runner such as pytest-asyncio).

    Declared with `pytest_asyncio.fixture` when pytest-asyncio is installed: its default strict mode handles only
    fixtures declared so, and pytest refuses an async fixture that no plugin handled."""
    async with tally_server.async_client() as client:
        yield client
