"""The async client's default transport (aiohttp when installed) and its corrected exception mapping."""

from __future__ import annotations

import aiohttp
import httpx
import pytest

import tally
from tally import AsyncTally
from tally._aiohttp import AiohttpErrorsTransport, remap_error
from tally._async._transport import AsyncRetryTransport
from tally_server.process import free_port


async def test_async_client_uses_aiohttp_wrapped_in_retries() -> None:
    async with AsyncTally(api_key="tk_org_x000000000000000000000000", base_url="http://h") as client:
        transport = client._core.state.http._transport
        assert isinstance(transport, AsyncRetryTransport)
        assert isinstance(transport._inner, AiohttpErrorsTransport)


@pytest.mark.parametrize(
    ("cause", "expected"),
    [
        (aiohttp.ServerDisconnectedError(), httpx.RemoteProtocolError),
        (aiohttp.ClientOSError(104, "reset"), httpx.ReadError),
        (aiohttp.ClientPayloadError("cut"), httpx.ReadError),
        (aiohttp.SocketTimeoutError(), httpx.ReadTimeout),
        (aiohttp.ConnectionTimeoutError(), httpx.ConnectTimeout),
        (TimeoutError(), httpx.ReadTimeout),
    ],
)
def test_remap(cause: BaseException, expected: type[Exception]) -> None:
    wrapped = httpx.ConnectTimeout("what httpx-aiohttp says")
    wrapped.__cause__ = cause
    assert type(remap_error(wrapped)) is expected
    assert remap_error(httpx.ConnectTimeout("no cause")) is None


async def test_refused_connection_is_a_connection_error_not_a_timeout() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    async with AsyncTally(api_key="tk_org_x000000000000000000000000", base_url=url, max_retries=1) as client:
        with pytest.raises(tally.APIConnectionError) as caught:
            await client.health()
    assert not isinstance(caught.value, tally.APITimeoutError)
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
