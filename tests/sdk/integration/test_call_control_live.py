"""Call control against real parts: the reference server with `--rate-limit`, a hung server (a real socket that
accepts and never answers), a server that restarts mid-call, and clients dropped without `close()`."""

from __future__ import annotations

import asyncio
import gc
import logging
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

import tally
import tally.retries
from tally import AsyncTally, Tally
from tally_server import RunningServer, start_server

from ..conftest import AnyClient, call, collect, unique

RATE = 5.0
CALLS = 20


# ---- rate limits -----------------------------------------------------------------------------------------------
@pytest.fixture
def limited_server() -> Iterator[RunningServer]:
    """A fresh server (so a fresh bucket) allowing `RATE` requests per second per key."""
    with start_server(rate_limit=RATE) as server:
        yield server


class Attempts(logging.Handler):
    """Counts the attempts the client logs (one record per HTTP attempt), by status."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.outcomes: list[str] = []
        self.lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        with self.lock:
            self.outcomes.append(record.getMessage().split(" -> ")[1].split(" ")[0])


@pytest.fixture
def attempts() -> Iterator[tuple[logging.Logger, Attempts]]:
    log = logging.getLogger(f"tally.test.{unique('rate')}")
    log.setLevel(logging.INFO)
    log.propagate = False
    handler = Attempts()
    log.addHandler(handler)
    yield log, handler
    log.removeHandler(handler)


def assert_paced(handler: Attempts, started: float) -> None:
    elapsed = time.monotonic() - started
    assert handler.outcomes.count("429") == 0, handler.outcomes
    assert handler.outcomes.count("200") == CALLS
    # The bucket starts full (RATE requests), then refills at RATE per second: a loose lower bound only.
    assert elapsed >= 0.8 * (CALLS - RATE) / RATE


def test_sync_calls_are_paced_under_the_limit(
    limited_server: RunningServer, attempts: tuple[logging.Logger, Attempts]
) -> None:
    log, handler = attempts
    with Tally(api_key=limited_server.api_key, base_url=limited_server.url, logger=log) as client:
        started = time.monotonic()
        for _ in range(CALLS):
            client.auth.status()
    assert_paced(handler, started)


def test_threads_sharing_one_client_are_paced(
    limited_server: RunningServer, attempts: tuple[logging.Logger, Attempts]
) -> None:
    log, handler = attempts
    with Tally(api_key=limited_server.api_key, base_url=limited_server.url, logger=log) as client:
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(lambda _: client.auth.status(), range(CALLS)))
    assert_paced(handler, started)


async def test_async_tasks_sharing_one_client_are_paced(
    limited_server: RunningServer, attempts: tuple[logging.Logger, Attempts]
) -> None:
    log, handler = attempts
    async with AsyncTally(api_key=limited_server.api_key, base_url=limited_server.url, logger=log) as client:
        started = time.monotonic()
        await asyncio.gather(*(client.auth.status() for _ in range(CALLS)))
    assert_paced(handler, started)


# ---- request ids on what methods return ------------------------------------------------------------------------
async def test_request_ids_on_results_and_raw_lists(client: AnyClient) -> None:
    experiment = await call(client.experiments.create(unique("rid")))
    assert tally.request_id(experiment) is not None
    assert experiment._request_id.startswith("req_")
    fetched = await call(client.experiments.get(experiment.id))
    assert fetched == experiment
    assert fetched._request_id != experiment._request_id  # equal values, different responses
    status = await call(client.auth.status())
    assert status._request_id is not None
    await call(client.metrics.ingest(experiment.id, [{"name": "m", "value": float(i), "step": i} for i in range(3)]))
    raw = await call(client.with_raw_response(client.metrics.list)(experiment.id, page_size=2))
    assert raw.status_code == 200
    assert [p.step for p in raw.parsed.data] == [0, 1]
    assert raw.parsed.next_cursor is not None
    assert raw.request_id == raw.parsed._request_id
    paginator = client.metrics.list(experiment.id)
    assert len(await collect(paginator)) == 3
    assert paginator.request_id is not None


# ---- faults: a hung server, a restart, a refused connection ----------------------------------------------------
@pytest.fixture
def hung_server() -> Iterator[tuple[str, list[socket.socket]]]:
    """A real socket that accepts every connection and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.05)
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            accepted.append(connection)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}", accepted
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    listener.close()


@pytest.mark.parametrize("cls", [Tally, AsyncTally])
async def test_a_hung_server_fails_the_call_at_its_deadline(
    cls: type[AnyClient], hung_server: tuple[str, list[socket.socket]]
) -> None:
    url, accepted = hung_server
    # The attempt timeout alone (30 s) would hold the call far longer than its 1.5 s deadline.
    client = cls(api_key="tk_org_hung00000000000000000000000", base_url=url, timeout=30.0)
    try:
        policy = tally.RetryPolicy(max_elapsed=1.5)
        with pytest.raises(tally.APITimeoutError, match="deadline of 1.5 s") as caught:
            await call(client.experiments.create(unique("hung"), retry=policy))
        assert caught.value.method == "POST"
        assert len(accepted) >= 1
        started = time.monotonic()
        with pytest.raises(tally.APITimeoutError):
            await call(client.health(timeout=0.3, retry=tally.RetryPolicy(max_elapsed=1.0)))
        assert time.monotonic() - started < 30.0  # cut by the deadline, not the attempt timeout
    finally:
        await call(client.close())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_server_restart_of_seconds_is_ridden_out_with_default_settings() -> None:
    """The server is down (connections refused) for about three seconds; a call made meanwhile waits for it."""
    port = free_port()
    first = start_server(port=port)
    first.stop()
    restarted: list[RunningServer] = []

    def restart() -> None:
        time.sleep(3.0)
        restarted.append(start_server(port=port))

    tally.retries.set_testing(False)  # real waits: the point is to outlast the outage
    thread = threading.Thread(target=restart)
    thread.start()
    try:
        with Tally(api_key="tk_org_restart000000000000000000000", base_url=f"http://127.0.0.1:{port}") as client:
            assert client.health().status == "ok"
    finally:
        tally.retries.set_testing(True)
        thread.join()
        for server in restarted:
            server.stop()


# ---- lifecycle: a client dropped without close() ---------------------------------------------------------------
def test_a_dropped_sync_client_releases_its_pool_and_says_so(live_server: RunningServer) -> None:
    client = Tally(api_key=live_server.api_key, base_url=live_server.url)
    client.health()
    http = client._core.state.http
    copy = client.with_options(timeout=1.0)
    del client
    gc.collect()
    assert not http.is_closed  # a with_options copy still uses the pool
    with pytest.warns(ResourceWarning, match=r"Tally\(base_url=.*garbage-collected without close"):
        del copy
        gc.collect()
    assert http.is_closed


async def test_a_dropped_async_client_releases_its_pool_and_says_so(live_server: RunningServer) -> None:
    client = AsyncTally(api_key=live_server.api_key, base_url=live_server.url)
    await client.health()
    http = client._core.state.http
    aiohttp_transport = http._transport._inner._inner  # type: ignore[attr-defined]
    session = aiohttp_transport.client
    assert not session.closed
    with pytest.warns(ResourceWarning, match=r"AsyncTally\(base_url=.*tk_org_…"):
        del client
        gc.collect()
    assert session.closed  # sockets closed now, not at interpreter exit
    await asyncio.sleep(0.05)  # the scheduled aclose() runs
    assert http.is_closed
