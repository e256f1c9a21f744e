"""Requests that stop midway, or never end, cannot hold the server: real sockets against a live server.

A request line and headers must arrive within the header deadline, a body within the body deadline (both
absolute: a byte at a time does not extend them); the head is capped in size while it arrives; requests beyond
the concurrency limit are answered 503 in the envelope. Meanwhile the server keeps answering others.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tally_server import HttpLimits, RunningServer, start_server
from tally_server.process import start_server_process

from .helpers import assert_error

DEADLINE = 0.5  # both timeouts of the server under test, in seconds
GENEROUS = 20.0  # how long a test waits for the server to close what it must close


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    limits = HttpLimits(header_timeout=DEADLINE, body_timeout=DEADLINE, max_header_bytes=16_384)
    with start_server(http_limits=limits) as running:
        yield running


def _connect(server: RunningServer, first: bytes = b"") -> socket.socket:
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    conn = socket.create_connection((host, int(port)), timeout=GENEROUS)
    if first:
        conn.sendall(first)
    return conn


def _read_until_closed(conn: socket.socket, deadline: float) -> bytes:
    """Everything the server sends until it closes the connection; fails if it has not closed by `deadline`."""
    received = b""
    while True:
        conn.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = conn.recv(65536)
        except TimeoutError:
            raise AssertionError(
                f"the server did not close the connection; it sent {received[:200]!r}"
            ) from None
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk


def _response(raw: bytes) -> httpx.Response:
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    headers = [tuple(line.split(b": ", 1)) for line in head.split(b"\r\n")[1:]]
    return httpx.Response(status, headers=headers, content=body)


_SLOW = {
    "nothing sent": b"",
    "half a request line": b"GET /v1/heal",
    "unfinished headers": b"GET /v1/health HTTP/1.1\r\nHost: tally\r\nX-Slow: ",
    "a body shorter than its Content-Length": (
        b"POST /v1/folders HTTP/1.1\r\nHost: tally\r\nContent-Type: application/json\r\n"
        b'Content-Length: 100\r\n\r\n{"name": '
    ),
}


def test_requests_that_stop_midway_are_closed_and_others_still_answered(server: RunningServer) -> None:
    opened = [(kind, _connect(server, first)) for kind, first in _SLOW.items() for _ in range(25)]
    try:
        # 100 stalled connections, 25 of them holding a running request: the server still answers.
        health = httpx.get(server.url + "/v1/health", timeout=GENEROUS)
        assert health.status_code == 200
        deadline = time.monotonic() + GENEROUS
        for kind, conn in opened:
            raw = _read_until_closed(conn, deadline)
            if kind == "nothing sent":
                assert raw == b"", raw  # an idle connection is closed quietly
            else:  # a request that had begun is told why
                error = assert_error(_response(raw), 408, "invalid_request")
                assert "did not arrive within 0.5 seconds" in error["message"], (kind, error)
    finally:
        for _, conn in opened:
            conn.close()
    assert httpx.get(server.url + "/v1/health", timeout=GENEROUS).status_code == 200


def test_the_deadlines_are_absolute_a_byte_at_a_time_does_not_extend_them(server: RunningServer) -> None:
    for start, drip in (
        (b"GET /v1/health HTTP/1.1\r\nHost: tally\r\nX-Slow: ", b"a"),
        (
            b"POST /v1/folders HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 9999\r\n\r\n",
            b" ",
        ),
    ):
        with _connect(server, start) as conn:
            deadline = time.monotonic() + GENEROUS
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                while time.monotonic() < deadline:
                    conn.sendall(drip)  # every 20 ms: far inside any idle timeout
                    time.sleep(0.02)
                    conn.settimeout(0.001)
                    try:
                        if conn.recv(65536, socket.MSG_PEEK):
                            break  # the server answered (its 408) and closes
                    except TimeoutError:
                        continue
            raw = _read_until_closed(conn, deadline)
            assert_error(_response(raw), 408, "invalid_request")


@pytest.mark.parametrize(
    "head",
    [
        b"GET /v1/health HTTP/1.1\r\nHost: tally\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n",
        b"GET /v1/health HTTP/1.1\r\nHost: tally\r\n"
        + b"".join(b"X-%05d: %s\r\n" % (i, b"a" * 90) for i in range(2000)),
        b"GET /v1/health HTTP/1.1\r\nHost: tally\r\nX-Endless: " + b"a" * 1_000_000,  # never finished
    ],
    ids=["one 200 KB header", "2000 headers", "a header that never ends"],
)
def test_oversize_headers_are_431_in_the_envelope(server: RunningServer, head: bytes) -> None:
    with _connect(server) as conn:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the server may close mid-send
            conn.sendall(head)
        raw = _read_until_closed(conn, time.monotonic() + GENEROUS)
    error = assert_error(_response(raw), 431, "invalid_request")
    assert error["details"] == {"max_header_bytes": 16_384}
    assert "16384 bytes" in error["message"]


def test_headers_under_the_cap_are_served(server: RunningServer) -> None:
    response = httpx.get(server.url + "/v1/health", headers={"X-Big": "a" * 12_000}, timeout=GENEROUS)
    assert response.status_code == 200


def test_an_oversize_url_is_414_in_the_envelope(server: RunningServer) -> None:
    with _connect(server, b"GET /v1/health?q=" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: tally\r\n\r\n") as conn:
        raw = _read_until_closed(conn, time.monotonic() + GENEROUS)
    assert_error(_response(raw), 414, "invalid_request")


def test_requests_over_the_concurrency_limit_are_503_until_the_stalled_ones_time_out() -> None:
    limits = HttpLimits(header_timeout=DEADLINE, body_timeout=1.5, limit_concurrency=3)
    with start_server(http_limits=limits) as server:
        stalled = [_connect(server, _SLOW["a body shorter than its Content-Length"]) for _ in range(3)]
        try:
            for _ in range(50):  # until the server has read the three heads (their requests then run)
                busy = httpx.get(server.url + "/v1/health", timeout=GENEROUS)
                if busy.status_code == 503:
                    break
                time.sleep(0.01)
            error = assert_error(busy, 503, "unavailable")
            assert busy.headers["Retry-After"] == "1"
            assert error["details"] == {"limit_concurrency": 3}
            deadline = time.monotonic() + GENEROUS
            for conn in stalled:
                _read_until_closed(conn, deadline)
        finally:
            for conn in stalled:
                conn.close()
        assert httpx.get(server.url + "/v1/health", timeout=GENEROUS).status_code == 200


# `tally serve` limited to 256 open files (set in the process itself, before the server starts).
_AT_MOST_256_FILES = [
    sys.executable,
    "-c",
    "import resource; resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256)); "
    "from tally_server.cli import serve; serve(prog_name='tally-server-under-test')",
]


def test_a_server_out_of_file_descriptors_answers_again_once_stalled_connections_time_out(
    tmp_path: Path,
) -> None:
    """The probe's case: `tally serve` limited to 256 open files, 300 connections with unfinished headers. Those
    it accepted are closed at the header deadline, freeing descriptors, so it accepts and answers again."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TALLY_")}
    env["TALLY_CONFIG_DIR"] = str(tmp_path / "config")
    server = start_server_process(
        ["--db", ":memory:", "--header-timeout", "1"],
        logs=tmp_path / "logs",
        env=env,
        command=_AT_MOST_256_FILES,
    )
    url = server.url
    stalled: list[socket.socket] = []
    try:
        host, port = url.removeprefix("http://").rsplit(":", 1)
        for _ in range(300):
            conn = socket.create_connection((host, int(port)), timeout=GENEROUS)
            conn.sendall(b"GET /v1/health HTTP/1.1\r\nHost: tally\r\nX-Slow: ")
            stalled.append(conn)
        health = httpx.get(url + "/v1/health", timeout=GENEROUS)  # waited forever before (and timed out)
        assert health.status_code == 200
    finally:
        for conn in stalled:
            conn.close()
        server.stop()
