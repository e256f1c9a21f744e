"""A run's batches travel in parts, never joined into one body (issue 21: peak RSS growth of the training process),
against the live reference server, through the sync and the async client.

A batch of 10,000 events is about 1.4 MB of JSON. Until now the sender joined it into one `bytes` (two copies at
once while the previous batch was in flight), and glibc kept the freed blocks: the training process grew by about
14 MiB logging 1,000,000 values. Now each batch is a list of parts of at most `PART_BYTES` (plus one member),
streamed with a Content-Length, so the server sees an ordinary body and a retry sends it again whole.
"""

from __future__ import annotations

import threading

import httpx
import msgspec
import pytest

from tally import AsyncTally, Tally
from tally._chunked import PART_BYTES
from tally_server import RunningServer

from ..conftest import unique

pytestmark = pytest.mark.integration

STEPS, METRICS = 2_500, 10


def _note(
    batches: list[tuple[httpx.Headers, list[bytes]]], request: httpx.Request, parts: list[bytes]
) -> None:
    if request.method == "POST" and request.url.path.endswith("/metrics"):
        batches.append((request.headers, parts))


class PartsRecording(httpx.BaseTransport):
    """A real transport that keeps each metrics request's headers and the parts its body was sent in."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.batches: list[tuple[httpx.Headers, list[bytes]]] = []
        self.lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.SyncByteStream)
        with self.lock:
            _note(self.batches, request, list(request.stream))
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def _log_all(client: Tally | AsyncTally) -> None:
    with client.run(unique("parts")) as run:
        for step in range(STEPS):
            run.log({f"metric_{i}": step + i / 10 for i in range(METRICS)}, step=step)
        run.flush(timeout=60)
    assert run.status().stored == STEPS * METRICS


def _check(batches: list[tuple[httpx.Headers, list[bytes]]]) -> None:
    events = 0
    for headers, parts in batches:
        body = b"".join(parts)
        assert "transfer-encoding" not in headers  # not chunked on the wire: an ordinary body
        assert int(headers["content-length"]) == len(body)
        # a part ends after the member that fills it: one `log()` call's events (10 here, about 1.1 KB)
        assert all(len(part) < PART_BYTES + 4096 for part in parts)
        events += len(msgspec.json.decode(body)["events"])
    assert events == STEPS * METRICS
    assert (
        max(len(parts) for _, parts in batches) > 10
    )  # a 10,000-event batch (~1.4 MB) in parts, never joined


def test_a_runs_batches_are_sent_in_parts_with_a_content_length(live_server: RunningServer) -> None:
    recording = PartsRecording()
    with Tally(api_key=live_server.api_key, base_url=live_server.url, transport=recording) as client:
        _log_all(client)
    _check(recording.batches)


async def test_an_async_clients_run_sends_its_batches_in_parts_too(live_server: RunningServer) -> None:
    """The async client's run sends from a loop of its own, through an `AsyncClient`: the same parts, read
    asynchronously."""
    batches: list[tuple[httpx.Headers, list[bytes]]] = []

    async def hook(request: httpx.Request) -> None:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        _note(batches, request, [part async for part in request.stream])

    async with AsyncTally(
        api_key=live_server.api_key, base_url=live_server.url, event_hooks={"request": [hook]}
    ) as client:
        _log_all(client)
    _check(batches)
