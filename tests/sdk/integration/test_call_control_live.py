"""Per-call control against the real reference server: pacing under its `--rate-limit`, and a client dropped
without `close()` releasing its sockets. (The hung server, the deadline and a restart: `fault/test_call_faults.py`.)

The unit tests (`tests/sdk/unit/test_call_control.py`, `test_call_options.py`) cover the arithmetic with a
simulated clock and scripted answers; these show that it holds on real sockets and processes.
"""

from __future__ import annotations

import asyncio
import gc
import os
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

import tally._transports
from tally import AsyncTally, Tally
from tally_server import RunningServer, start_server

pytestmark = pytest.mark.timeout(120)

RATE = 10.0
"""The server's limit: 10 requests a second per key, with a burst of 10."""
CALLS = 30
"""Calls per test: 10 ride the burst, the other 20 must be paced over about 2 seconds."""


class Recording(httpx.BaseTransport):
    """The innermost transport of a caller's `httpx.Client`: it sees every attempt, retries included."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.statuses: list[int] = []
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        with self._lock:
            self.statuses.append(response.status_code)
        return response

    def close(self) -> None:
        self.inner.close()


class AsyncRecording(httpx.AsyncBaseTransport):
    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.statuses: list[int] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        self.statuses.append(response.status_code)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.fixture(scope="module")
def limited_server() -> Iterator[RunningServer]:
    server = start_server(rate_limit=RATE)
    try:
        yield server
    finally:
        server.stop()


def refill(server: RunningServer) -> None:
    """Let the key's bucket fill again, so that each test starts from the same state."""
    time.sleep(CALLS / RATE / 2)


# ---- rate awareness --------------------------------------------------------------------------------------------
def test_paced_sync_calls_meet_no_429(limited_server: RunningServer, isolated: list[float]) -> None:
    refill(limited_server)
    transport = Recording()
    with (
        httpx.Client(transport=transport) as http,  # the caller's client: the caller closes it
        Tally(api_key=limited_server.api_key, base_url=limited_server.url, http_client=http) as client,
    ):
        for _ in range(CALLS):
            client.auth.status()
    assert transport.statuses == [200] * CALLS
    assert isolated == []  # no retry was needed


def test_threads_sharing_one_client_meet_no_429(limited_server: RunningServer, isolated: list[float]) -> None:
    refill(limited_server)
    transport = Recording()
    failures: list[BaseException] = []
    with (
        httpx.Client(transport=transport) as http,  # the caller's client: the caller closes it
        Tally(api_key=limited_server.api_key, base_url=limited_server.url, http_client=http) as client,
    ):

        def work() -> None:
            try:
                for _ in range(CALLS // 5):
                    client.auth.status()
            except BaseException as exc:  # reported below
                failures.append(exc)

        threads = [threading.Thread(target=work) for _ in range(5)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert failures == []
    assert transport.statuses == [200] * CALLS
    assert isolated == []


async def test_paced_async_tasks_meet_no_429(limited_server: RunningServer, isolated: list[float]) -> None:
    await asyncio.to_thread(refill, limited_server)
    transport = AsyncRecording()
    async with (
        httpx.AsyncClient(transport=transport) as http,
        AsyncTally(api_key=limited_server.api_key, base_url=limited_server.url, http_client=http) as client,
    ):
        await asyncio.gather(*(client.auth.status() for _ in range(CALLS)))
    assert transport.statuses == [200] * CALLS
    assert isolated == []


def test_without_pacing_the_same_calls_meet_429s(limited_server: RunningServer) -> None:
    """The control: the same burst, sent by plain httpx, is refused by the server. Without it the tests above
    could pass against a server that never limits."""
    refill(limited_server)
    headers = {"Authorization": f"Bearer {limited_server.api_key}"}
    with httpx.Client(base_url=limited_server.url, headers=headers) as http:
        statuses = [http.get("/v1/auth/status").status_code for _ in range(CALLS)]
    assert 429 in statuses


# ---- a client dropped without close() ---------------------------------------------------------------------------
def connections_to(port: int) -> int:
    """This process's open TCP sockets whose remote end is `port` (Linux: /proc)."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        with open(table) as lines:
            next(lines)
            for line in lines:
                fields = line.split()
                remote_port = int(fields[2].rsplit(":", 1)[1], 16)
                if remote_port == port and fields[9] in inodes:
                    count += 1
    return count


UNCLOSED = r"Tally\(base_url=.*garbage-collected without close"


@pytest.fixture(params=["aiohttp", "httpcore"])
def async_pool(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The async client's two inner transports: httpx-aiohttp (the default when installed) and httpx's own."""
    if request.param == "httpcore":
        monkeypatch.setattr(tally._transports, "aiohttp_available", lambda: False)
    return str(request.param)


@pytest.mark.skipif(not os.path.exists("/proc/self/net/tcp"), reason="counts sockets through Linux's /proc")
def test_a_dropped_sync_client_closes_its_sockets(live_server: RunningServer) -> None:
    gc.collect()
    before = connections_to(live_server.port)
    client = Tally(api_key=live_server.api_key, base_url=live_server.url)
    client.health()
    assert connections_to(live_server.port) == before + 1
    with pytest.warns(ResourceWarning, match=UNCLOSED):  # noqa: PT031 - the drop is two statements
        del client
        gc.collect()
    assert connections_to(live_server.port) == before


@pytest.mark.skipif(not os.path.exists("/proc/self/net/tcp"), reason="counts sockets through Linux's /proc")
async def test_a_dropped_async_client_closes_its_sockets_on_its_loop(
    live_server: RunningServer, async_pool: str
) -> None:
    gc.collect()
    before = connections_to(live_server.port)
    client = AsyncTally(api_key=live_server.api_key, base_url=live_server.url)
    await client.health()
    assert connections_to(live_server.port) == before + 1
    with pytest.warns(ResourceWarning, match=UNCLOSED):  # noqa: PT031
        del client
        gc.collect()
    await asyncio.sleep(0.1)  # the scheduled aclose() runs on this loop
    assert connections_to(live_server.port) == before


@pytest.mark.skipif(not os.path.exists("/proc/self/net/tcp"), reason="counts sockets through Linux's /proc")
def test_an_async_client_dropped_after_its_loop_closes_its_sockets(
    live_server: RunningServer, async_pool: str
) -> None:
    async def use() -> AsyncTally:
        client = AsyncTally(api_key=live_server.api_key, base_url=live_server.url)
        await client.health()
        return client

    gc.collect()
    before = connections_to(live_server.port)
    client = asyncio.run(use())
    assert connections_to(live_server.port) == before + 1
    with pytest.warns(ResourceWarning, match=UNCLOSED):  # noqa: PT031
        del client
        gc.collect()
    assert connections_to(live_server.port) == before
