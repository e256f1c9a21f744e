"""A server that answers one byte at a time cannot hold a call past its deadline, nor an attempt past its timeout.

httpx's timeouts are per read: a byte every 0.1 s resets a 10 s read timeout for ever. The server here trickles
the status line's headers (the header phase) or a body shorter than its `Content-Length` (the body phase), one
byte every `INTERVAL`, for `TRICKLE_FOR` seconds; the call must end by its deadline (plus a generous margin) with
`APITimeoutError`, on both clients (issue 20, item 9: 75-100 s against a 30 s deadline).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

import tally
from tally import AsyncTally, Tally

from ..conftest import call
from .conftest import KEY

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

DEADLINE = 0.6
MARGIN = 1.5
"""Generous: the end is checked on every read, so the call ends within one trickle interval of it."""
INTERVAL = 0.1
TRICKLE_FOR = 8.0
"""The server gives up after this long, so that a client without the fix fails its assertion instead of hanging."""


class Trickler:
    """Accepts connections; reads each request's head, then sends a response one byte at a time."""

    def __init__(self, phase: str) -> None:
        self.phase = phase
        self.sent = 0
        self._stop = threading.Event()
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self._listener.settimeout(0.1)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                head += chunk
            if self.phase == "headers":
                start, drip = b"HTTP/1.1 200 OK\r\nX-Slow: ", b"a"
            else:
                start = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
                drip = b" "
            try:
                conn.sendall(start)
                until = time.monotonic() + TRICKLE_FOR
                while time.monotonic() < until and not self._stop.wait(INTERVAL):
                    conn.sendall(drip)
                    self.sent += 1
            except OSError:  # the client gave up and closed: what it should do
                return

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5)
        self._listener.close()


@pytest.fixture(params=["headers", "body"])
def trickler(request: pytest.FixtureRequest) -> Iterator[Trickler]:
    server = Trickler(request.param)
    try:
        yield server
    finally:
        server.close()


def open_client(mode: str, url: str, **options: Any) -> Any:
    return (
        Tally(api_key=KEY, base_url=url, **options)
        if mode == "sync"
        else AsyncTally(api_key=KEY, base_url=url, **options)
    )


async def close(client: Any) -> None:
    await call(client.close())


CALLS: dict[str, Callable[[Any], Any]] = {
    "health": lambda client: client.health(),
    "experiments.get": lambda client: client.experiments.get("exp_slow"),
}


async def timed(client: Any, name: str) -> tuple[float, BaseException]:
    started = time.monotonic()
    try:
        with pytest.raises(tally.APITimeoutError) as caught:
            await call(CALLS[name](client))
    finally:
        await close(client)
    return time.monotonic() - started, caught.value


@pytest.mark.parametrize("name", list(CALLS))
@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_the_call_deadline_holds_against_a_trickle(trickler: Trickler, mode: str, name: str) -> None:
    client = open_client(mode, trickler.url, retry=tally.RetryPolicy(max_elapsed=DEADLINE))
    elapsed, error = await timed(client, name)
    assert trickler.sent >= 2  # the server really was trickling...
    assert elapsed < DEADLINE + MARGIN, f"{mode} {name} took {elapsed:.1f} s against a {DEADLINE} s deadline"
    assert "deadline" in str(error)


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_the_attempt_timeout_holds_in_wall_clock_time(trickler: Trickler, mode: str) -> None:
    """No call deadline: the per-attempt `timeout` alone ends the attempt, though every read gets a byte in time."""
    timeout = 0.5
    client = open_client(
        mode, trickler.url, timeout=timeout, retry=tally.RetryPolicy(max_elapsed=None, max_retries=0)
    )
    elapsed, error = await timed(client, "experiments.get")
    assert elapsed < timeout + MARGIN, f"{mode} took {elapsed:.1f} s against a {timeout} s timeout"
    assert error.attempts == 1


async def test_a_body_trickled_through_the_callers_own_client_is_cut_too() -> None:
    """With `http_client=` Tally cannot reach the sockets: the clock is checked between body chunks."""
    server = Trickler("body")
    try:
        with httpx.Client() as own:
            client = Tally(
                api_key=KEY,
                base_url=server.url,
                http_client=own,
                retry=tally.RetryPolicy(max_elapsed=DEADLINE),
            )
            elapsed, _ = await timed(client, "experiments.get")
    finally:
        server.close()
    assert elapsed < DEADLINE + MARGIN
