"""Fixtures for the SDK's tests: isolated credentials, no retry waits, live-server clients."""

from __future__ import annotations

import inspect
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

import tally.retries
from tally import AsyncTally, Tally
from tally_server import RunningServer

AnyClient = Tally | AsyncTally


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[list[float]]:
    """No credentials leak in from the machine; run spools go to a temporary directory; retries never wait
    (their waits are recorded)."""
    for name in (
        "TALLY_API_KEY",
        "TALLY_BASE_URL",
        "TALLY_LOG",
        "TALLY_MODE",
        "TALLY_FLUSH_TIMEOUT",
        "TALLY_SENDER",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TALLY_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("TALLY_SPOOL_DIR", str(tmp_path / "spool"))
    with tally.retries.testing() as waits:
        yield waits


@pytest.fixture
def sync_client(live_server: RunningServer) -> Iterator[Tally]:
    with Tally(api_key=live_server.api_key, base_url=live_server.url) as client:
        yield client


@pytest.fixture
async def async_client(live_server: RunningServer) -> AsyncIterator[AsyncTally]:
    async with AsyncTally(api_key=live_server.api_key, base_url=live_server.url) as client:
        yield client


@pytest.fixture(params=["sync", "async"])
async def client(request: pytest.FixtureRequest, live_server: RunningServer) -> AsyncIterator[AnyClient]:
    """Each test that takes `client` runs twice: with `Tally` and with `AsyncTally`."""
    if request.param == "sync":
        with Tally(api_key=live_server.api_key, base_url=live_server.url) as sync:
            yield sync
    else:
        async with AsyncTally(api_key=live_server.api_key, base_url=live_server.url) as async_:
            yield async_


async def call(value: Any) -> Any:
    """The result of a sync or async client method call."""
    return await value if inspect.isawaitable(value) else value


async def collect(paginator: Any) -> list[Any]:
    """Every item of a sync or async paginator."""
    if hasattr(paginator, "__aiter__"):
        return [item async for item in paginator]
    return list(paginator)


async def collect_pages(paginator: Any) -> list[Any]:
    pages = paginator.pages()
    if hasattr(pages, "__aiter__"):
        return [page async for page in pages]
    return list(pages)


def acting(client: AnyClient, name: str) -> type[Any]:
    """The class of the objects that act (`Experiment`, `Folder`, `Annotation`) this client returns: `tally.<name>`
    for Tally, `tally.Async<name>` for AsyncTally."""
    cls: type[Any] = getattr(tally, ("Async" if isinstance(client, AsyncTally) else "") + name)
    return cls


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"
