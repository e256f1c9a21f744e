"""A write whose response is lost on the way back is retried with the same Idempotency-Key: a create makes one
resource, and a delete reports its success (not NotFoundError, which a retry without the key would meet)."""

from __future__ import annotations

import httpx
import pytest

import tally
from tally import AsyncTally, Tally
from tally_server import RunningServer

from ..conftest import collect, unique

pytestmark = pytest.mark.integration


class DropFirstResponse(httpx.BaseTransport):
    """Forwards to the real server, then loses the first answer to `method` (as a reset connection would)."""

    def __init__(self, method: str = "POST") -> None:
        self.method = method
        self.inner = httpx.HTTPTransport()
        self.dropped = 0
        self.keys: list[str] = []  # "" for a request without a key

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.method == self.method:
            self.keys.append(request.headers.get("idempotency-key", ""))
            if not self.dropped:
                response.read()
                response.close()
                self.dropped += 1
                raise httpx.ReadError("connection reset after the server answered")
        return response

    def close(self) -> None:
        self.inner.close()


class AsyncDropFirstResponse(httpx.AsyncBaseTransport):
    def __init__(self, method: str = "POST") -> None:
        self.method = method
        self.inner = httpx.AsyncHTTPTransport()
        self.dropped = 0
        self.keys: list[str] = []  # "" for a request without a key

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.method == self.method:
            self.keys.append(request.headers.get("idempotency-key", ""))
            if not self.dropped:
                await response.aread()
                await response.aclose()
                self.dropped += 1
                raise httpx.ReadError("connection reset after the server answered")
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def test_create_after_dropped_response_creates_one(live_server: RunningServer) -> None:
    transport = DropFirstResponse()
    name = unique("dropped")
    with Tally(api_key=live_server.api_key, base_url=live_server.url, transport=transport) as client:
        experiment = client.experiments.create(name)
        matching = list(client.experiments.list(name_prefix=name))
    assert transport.dropped == 1
    assert len(transport.keys) == 2
    assert len(set(transport.keys)) == 1
    assert transport.keys[0]
    assert [e.id for e in matching] == [experiment.id]


async def test_async_create_after_dropped_response_creates_one(live_server: RunningServer) -> None:
    transport = AsyncDropFirstResponse()
    name = unique("dropped-async")
    async with AsyncTally(
        api_key=live_server.api_key, base_url=live_server.url, transport=transport
    ) as client:
        folder = await client.folders.create(name)
        matching = await collect(client.folders.list())
    assert transport.dropped == 1
    assert len(set(transport.keys)) == 1
    assert transport.keys[0]
    assert [f.id for f in matching if f.name == name] == [folder.id]


def test_a_delete_after_dropped_response_reports_success(live_server: RunningServer) -> None:
    transport = DropFirstResponse("DELETE")
    with Tally(api_key=live_server.api_key, base_url=live_server.url, transport=transport) as client:
        experiment = client.experiments.create(unique("dropped-delete"))
        assert client.experiments.delete(experiment.id, confirm=True) is None
        with pytest.raises(tally.NotFoundError):
            client.experiments.get(experiment.id)
    assert transport.dropped == 1
    assert len(transport.keys) == 2
    assert len(set(transport.keys)) == 1
    assert transport.keys[0]


async def test_async_delete_after_dropped_response_reports_success(live_server: RunningServer) -> None:
    transport = AsyncDropFirstResponse("DELETE")
    async with AsyncTally(
        api_key=live_server.api_key, base_url=live_server.url, transport=transport
    ) as client:
        experiment = await client.experiments.create(unique("dropped-delete-async"))
        note = await client.annotations.create(experiment.id, "note")
        assert await client.annotations.delete(experiment.id, note.id) is None
        assert await collect(client.annotations.list(experiment.id)) == []
    assert transport.dropped == 1
    assert len(transport.keys) == 2
    assert len(set(transport.keys)) == 1
    assert transport.keys[0]
