"""The sync network backend that never waits past the current attempt's end (see `tally._deadline`).

Only Tally's own sync transport uses it (`tally._transports.default_transport`); it is a module of its own so that
`from tally import Tally` does not load httpcore before a client is made (httpx loads it then anyway).
"""

from __future__ import annotations

import ssl
import typing

import httpcore
import httpx

from tally._deadline import bounded

__all__ = ["DeadlineBackend", "install_deadline_backend"]

_WRITE_SLICE = 64 * 1024
"""A write is cut into slices of this size, each bounded by what is left of the attempt."""


class _DeadlineStream(httpcore.NetworkStream):
    __slots__ = ("_inner",)
    bounded_by_attempt = True
    """Read by `tally._deadline.AttemptDeadline`: this stream's reads need no check between body chunks."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, bounded(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if len(buffer) <= _WRITE_SLICE:
            self._inner.write(buffer, bounded(timeout, httpcore.WriteTimeout))
            return
        for start in range(0, len(buffer), _WRITE_SLICE):
            self._inner.write(buffer[start : start + _WRITE_SLICE], bounded(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        cut = bounded(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, cut))

    def get_extra_info(self, info: str) -> typing.Any:
        return self._inner.get_extra_info(info)


class DeadlineBackend(httpcore.NetworkBackend):
    """An httpcore network backend whose streams never wait past the current attempt's end."""

    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self._inner = inner

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.NetworkStream:
        cut = bounded(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._inner.connect_tcp(host, port, cut, local_address, socket_options))

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.NetworkStream:
        cut = bounded(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._inner.connect_unix_socket(path, cut, socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def install_deadline_backend(transport: httpx.HTTPTransport) -> None:
    """Make `transport` (one Tally built) connect through `DeadlineBackend`. httpx takes no network backend, so
    this reaches its connection pool (`_pool`, httpcore's, whose `network_backend` is a public argument);
    `tests/sdk/fault/test_trickle.py` fails if an upgrade moves it."""
    pool: typing.Any = getattr(transport, "_pool", None)
    backend = getattr(pool, "_network_backend", None)
    if isinstance(backend, httpcore.NetworkBackend) and not isinstance(backend, DeadlineBackend):
        pool._network_backend = DeadlineBackend(backend)
