"""`httpx_aiohttp.AiohttpTransport` with exceptions that say what happened.

httpx-aiohttp 0.2 maps every `aiohttp.ClientConnectionError` (refused connection, reset, server disconnect)
and every aiohttp timeout to `httpx.ConnectTimeout`. Retries would work either way, but users would be told
"timed out" for a refused connection. This wrapper re-maps from the aiohttp exception (`__cause__`) to the
right httpx one. Timeouts: it maps httpx's connect/read/pool timeouts onto aiohttp's
`sock_connect`/`sock_read`/`connect`; there is no write timeout.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

__all__ = ["AiohttpErrorsTransport", "aiohttp_transport", "remap_error"]


def remap_error(exc: BaseException) -> httpx.TransportError | None:
    """The right httpx exception for an aiohttp failure (raw or already mapped by httpx-aiohttp), or None."""
    cause = exc.__cause__ if isinstance(exc, httpx.TransportError) else exc
    if cause is None:
        return None
    message = f"{type(cause).__name__}: {cause}"
    if isinstance(cause, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(message)
    if isinstance(cause, TimeoutError):
        return httpx.ReadTimeout(message)
    if isinstance(cause, aiohttp.ClientProxyConnectionError | aiohttp.ClientHttpProxyError):
        return httpx.ProxyError(message)
    if isinstance(cause, aiohttp.ClientConnectorError):
        return httpx.ConnectError(message)
    if isinstance(cause, aiohttp.ServerDisconnectedError):
        return httpx.RemoteProtocolError(message)
    if isinstance(cause, aiohttp.ClientPayloadError | aiohttp.ClientConnectionError | ConnectionError):
        return httpx.ReadError(message)
    if isinstance(cause, aiohttp.ClientError):
        return httpx.NetworkError(message)
    return None


class _RemappingStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream) -> None:
        self._inner = inner

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._inner:
                yield chunk
        except (httpx.TransportError, aiohttp.ClientError, TimeoutError) as exc:
            mapped = remap_error(exc)
            if mapped is None:
                raise
            raise mapped from exc

    async def aclose(self) -> None:
        await self._inner.aclose()


class AiohttpErrorsTransport(httpx.AsyncBaseTransport):
    """Wraps an aiohttp-backed transport and corrects the exceptions it raises."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = await self._inner.handle_async_request(request)
        except (httpx.TransportError, aiohttp.ClientError, TimeoutError) as exc:
            mapped = remap_error(exc)
            if mapped is None:
                raise
            raise mapped from exc
        stream = response.stream
        assert isinstance(stream, httpx.AsyncByteStream)
        response.stream = _RemappingStream(stream)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def aiohttp_transport(*, proxy: str | httpx.Proxy | None, limits: httpx.Limits) -> httpx.AsyncBaseTransport:
    proxy_obj = httpx.Proxy(proxy) if isinstance(proxy, str) else proxy
    return AiohttpErrorsTransport(AiohttpTransport(limits=limits, proxy=proxy_obj))
