"""The inner transports the retry transport wraps by default.

Sync: httpx's own `HTTPTransport`, connecting through `tally._deadline_backend.DeadlineBackend` so that no read outlasts
its attempt. Async: `httpx_aiohttp.AiohttpTransport` when the `httpx-aiohttp` package is
importable (httpx 0.28's own async pool slows down badly with many concurrent calls, encode/httpcore#1035),
with its exception mapping corrected (it reports refused connections and resets as `ConnectTimeout`); else
httpx's own `AsyncHTTPTransport`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

from tally._errors import ConfigurationError

if TYPE_CHECKING:
    import ssl

__all__ = ["OfflineTransport", "aiohttp_available", "default_async_transport", "default_transport"]


class OfflineTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """The transport of an offline client (`offline=True`, `TALLY_MODE=offline`): every request is refused."""

    def _refuse(self, request: httpx.Request) -> ConfigurationError:
        return ConfigurationError(
            f"{request.method} {request.url.path}: this client is offline (offline=True or TALLY_MODE=offline); "
            "only client.run(...) works offline. Use an online client, then `tally sync` to upload runs"
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        raise self._refuse(request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raise self._refuse(request)


def aiohttp_available() -> bool:
    import importlib.util  # here: the sync client never asks, and `from tally import Tally` stays lighter

    return importlib.util.find_spec("httpx_aiohttp") is not None


def _verify(plain_http: bool) -> ssl.SSLContext | bool:
    """httpx's default TLS context (`True`), whose CA certificates a client of an `http://` server loads on its
    first TLS connection, if it ever makes one, instead of now (`tally._tls`)."""
    if not plain_http:
        return True
    from tally._tls import lazy_default_context

    return lazy_default_context()


def default_transport(
    *, proxy: str | httpx.Proxy | None, limits: httpx.Limits, plain_http: bool = False
) -> httpx.BaseTransport:
    from tally._deadline_backend import install_deadline_backend

    transport = httpx.HTTPTransport(verify=_verify(plain_http), proxy=proxy, limits=limits)
    install_deadline_backend(transport)
    return transport


def default_async_transport(
    *, proxy: str | httpx.Proxy | None, limits: httpx.Limits, plain_http: bool = False
) -> httpx.AsyncBaseTransport:
    if aiohttp_available():
        from tally._aiohttp import aiohttp_transport

        return aiohttp_transport(proxy=proxy, limits=limits)
    return httpx.AsyncHTTPTransport(verify=_verify(plain_http), proxy=proxy, limits=limits)
