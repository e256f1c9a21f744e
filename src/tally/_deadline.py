"""The wall-clock end of one attempt, enforced on every network wait of it, headers and body included.

httpx's timeouts are per network operation: `read=10` ends a read that waits 10 s for its next byte, so a server
that sends a byte every few seconds holds a request for ever (httpx has no total timeout: encode/httpx#1450). The
retry transport gives each attempt an end, `min(the call's deadline, the attempt's start + its timeout)`
(`attempt_end`), and holds it:

- async: the attempt (sending, the headers, the whole body) runs under `asyncio.timeout`, whatever the inner
  transport (aiohttp's or httpx's);
- sync: a blocking read cannot be interrupted from outside, so Tally's own transport connects through
  `DeadlineBackend`, which cuts the timeout of every connect, read and write to what is left of the attempt (the
  retry transport puts the end in a context variable for the attempt's duration: the reads of a sync request
  run in the caller's thread); and the body is read inside the attempt with the clock checked between chunks, so
  that a transport of the caller's own (`transport=`, `http_client=`) is bounded too, though only to within one
  of its reads.

Running past the end raises `httpx.ReadTimeout`, which the retry transport retries or turns into the call's
`APITimeoutError` like any other timeout.
"""

from __future__ import annotations

import contextvars
import ssl
import time
import typing
from collections.abc import Callable, Iterator
from types import TracebackType

import httpcore
import httpx

__all__ = [
    "AsyncAttemptDeadline",
    "AttemptDeadline",
    "DeadlineBackend",
    "attempt_end",
    "install_deadline_backend",
]

_END: contextvars.ContextVar[float | None] = contextvars.ContextVar("tally_attempt_end", default=None)
"""The current attempt's end on the `time.monotonic()` clock (None: no end), for `DeadlineBackend`."""
_OVER = (
    "timed out: the attempt ran out of time (its `timeout`, or the call's deadline RetryPolicy.max_elapsed)"
)
_WRITE_SLICE = 64 * 1024
"""A write is cut into slices of this size, each bounded by what is left of the attempt."""


def attempt_end(now: float, timeout: dict[str, float | None] | None, deadline: float | None) -> float | None:
    """When an attempt that starts `now` must be over: its timeout after `now` (the largest of the timeout's
    phases; none if any phase is unbounded), and never after the call's `deadline`. None: no end."""
    end = deadline
    if timeout:
        phases = timeout.values()
        if None not in phases:
            budget = now + max(typing.cast("typing.Iterable[float]", phases))
            end = budget if end is None or budget < end else end
    return end


def _left(error: type[Exception]) -> float | None:
    """Seconds left in the current attempt (None: no end), or `error` when none are."""
    end = _END.get()
    if end is None:
        return None
    left = end - time.monotonic()
    if left <= 0:
        raise error(_OVER)
    return left


def _bounded(timeout: float | None, error: type[Exception]) -> float | None:
    left = _left(error)
    if left is None:
        return timeout
    return left if timeout is None or timeout > left else timeout


# ---- sync: per-operation timeouts cut to the attempt's end ------------------------------------------------------
class _DeadlineStream(httpcore.NetworkStream):
    __slots__ = ("_inner",)

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _bounded(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if len(buffer) <= _WRITE_SLICE:
            self._inner.write(buffer, _bounded(timeout, httpcore.WriteTimeout))
            return
        for start in range(0, len(buffer), _WRITE_SLICE):
            self._inner.write(buffer[start : start + _WRITE_SLICE], _bounded(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        bounded = _bounded(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, bounded))

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
        bounded = _bounded(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._inner.connect_tcp(host, port, bounded, local_address, socket_options))

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.NetworkStream:
        bounded = _bounded(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._inner.connect_unix_socket(path, bounded, socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def install_deadline_backend(transport: httpx.HTTPTransport) -> None:
    """Make `transport` (one Tally built) connect through `DeadlineBackend`. httpx takes no network backend, so
    this reaches its connection pool (`_pool`, httpcore's, whose `network_backend` is a public argument);
    `tests/sdk/fault/test_trickle.py` fails if an upgrade moves it."""
    pool = transport._pool
    backend = getattr(pool, "_network_backend", None)
    if isinstance(backend, httpcore.NetworkBackend) and not isinstance(backend, DeadlineBackend):
        pool._network_backend = DeadlineBackend(backend)


class _CheckedBody(httpx.SyncByteStream):
    """A response body that raises `httpx.ReadTimeout` when a chunk arrives after the attempt's end."""

    def __init__(self, inner: httpx.SyncByteStream, end: float, request: httpx.Request) -> None:
        self._inner, self._end, self._request = inner, end, request

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._inner:
            if time.monotonic() >= self._end:
                raise httpx.ReadTimeout(_OVER, request=self._request)
            yield chunk

    def close(self) -> None:
        self._inner.close()


class AttemptDeadline:
    """`with AttemptDeadline(end, request) as bound:` one sync attempt ends at `end` (None: no end); reads of
    Tally's own transport are cut to it, and `response.stream = bound(response)` checks it between the body's
    chunks where they are not."""

    __slots__ = ("_end", "_request", "_token")

    def __init__(self, end: float | None, request: httpx.Request) -> None:
        self._end, self._request = end, request
        self._token: contextvars.Token[float | None] | None = None

    def __enter__(self) -> Callable[[httpx.Response], typing.Any]:
        if self._end is not None:
            self._token = _END.set(self._end)
        return self._bound

    def _bound(self, response: httpx.Response) -> typing.Any:
        stream = response.stream
        if (
            self._end is None
            or not isinstance(stream, httpx.SyncByteStream)
            or isinstance(response.extensions.get("network_stream"), _DeadlineStream)  # already bounded
        ):
            return stream
        return _CheckedBody(stream, self._end, self._request)

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._token is not None:
            _END.reset(self._token)


# ---- async: the whole attempt under a timeout ------------------------------------------------------------------
class AsyncAttemptDeadline:
    """`async with AsyncAttemptDeadline(end, request) as bound:` one async attempt ends at `end` (None: no end):
    it is cancelled there and `httpx.ReadTimeout` raised. `bound` leaves the body as it is (the timeout covers
    reading it)."""

    __slots__ = ("_end", "_request", "_timeout")

    def __init__(self, end: float | None, request: httpx.Request) -> None:
        self._end, self._request = end, request
        self._timeout: typing.Any = None

    async def __aenter__(self) -> Callable[[httpx.Response], typing.Any]:
        if self._end is not None:
            import asyncio  # here, not at the top: the sync client must not load asyncio

            left = self._end - time.monotonic()
            if left <= 0:
                raise httpx.ReadTimeout(_OVER, request=self._request)
            self._timeout = asyncio.timeout(left)
            await self._timeout.__aenter__()
        return _unchanged

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._timeout is None:
            return
        try:
            await self._timeout.__aexit__(kind, error, traceback)
        except TimeoutError as exc:
            if self._timeout.expired():
                raise httpx.ReadTimeout(_OVER, request=self._request) from exc
            raise


def _unchanged(response: httpx.Response) -> typing.Any:
    return response.stream
