"""A call's response, its request and the request's body are freed when the call returns, not when the cyclic
garbage collector next runs (issue 21: peak RSS growth of the training process).

httpx's `Client.send` wraps every response's stream in a `BoundSyncStream` that points back at the response
(encode/httpx#3733): a reference cycle. Until the collector found it, each response kept its request alive, and
the request its body: a run's sender held several 1.4 MB batches that way while it drained a backlog. The client
now breaks that cycle once the response is read.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import httpx
import pytest

from tally import AsyncTally, Tally
from tally_server import RunningServer

from ..conftest import unique

pytestmark = pytest.mark.integration


@pytest.fixture
def no_cyclic_gc() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def test_a_calls_request_is_freed_when_the_call_returns(
    live_server: RunningServer, no_cyclic_gc: None
) -> None:
    requests: list[weakref.ref[httpx.Request]] = []
    with Tally(
        api_key=live_server.api_key,
        base_url=live_server.url,
        event_hooks={"request": [lambda request: requests.append(weakref.ref(request))]},
    ) as client:
        folder = client.folders.create(unique("freed"))
        client.folders.get(folder.id)
        client.metrics.ingest(
            client.experiments.create(unique("freed"), folder_id=folder.id).id,
            [{"name": "loss", "value": 0.5, "step": 1}],
        )
        assert len(requests) >= 4
        assert [ref() for ref in requests] == [None] * len(requests)


async def test_an_async_calls_request_is_freed_too(live_server: RunningServer, no_cyclic_gc: None) -> None:
    requests: list[weakref.ref[httpx.Request]] = []

    async def hook(request: httpx.Request) -> None:
        requests.append(weakref.ref(request))

    async with AsyncTally(
        api_key=live_server.api_key, base_url=live_server.url, event_hooks={"request": [hook]}
    ) as client:
        folder = await client.folders.create(unique("freed"))
        await client.folders.get(folder.id)
        assert len(requests) >= 2
        assert [ref() for ref in requests] == [None] * len(requests)
