"""The wall-clock end of one attempt, enforced on every network wait of it, headers and body included.

httpx's timeouts are per network operation: `read=10` ends a read that waits 10 s for its next byte, so a server
that sends a byte every few seconds holds a request for ever (httpx has no total timeout: encode/httpx#1450). The
retry transport gives each attempt an end, `min(the call's deadline, the attempt's start + its timeout)`
(`attempt_end`), and holds it:

- async: the attempt (sending, the headers, the whole body) runs under `asyncio.timeout`, whatever the inner
  transport (aiohttp's or httpx's);
- sync: a blocking read cannot be interrupted from outside, so Tally's own transport connects through
  `tally._deadline_backend.DeadlineBackend`, which cuts the timeout of every connect, read and write to what is
  left of the attempt (`bounded`: the retry transport puts the end in a context variable for the attempt's
  duration, and the reads of a sync request run in the caller's thread); and the body is read inside the
  attempt with the clock checked between chunks, so that a transport of the caller's own (`transport=`,
  `http_client=`) is bounded too, though only to within one of its reads, and only in the body.

Running past the end raises `httpx.ReadTimeout`, which the retry transport retries or turns into the call's
`APITimeoutError` like any other timeout.
"""

from __future__ import annotations

import contextvars
import time
import typing
from collections.abc import Callable, Iterator
from types import TracebackType

import httpx

__all__ = ["AsyncAttemptDeadline", "AttemptDeadline", "attempt_end", "bounded"]

_END: contextvars.ContextVar[float | None] = contextvars.ContextVar("tally_attempt_end", default=None)
"""The current sync attempt's end on the `time.monotonic()` clock (None: no end), for `bounded`."""
_OVER = (
    "timed out: the attempt ran out of time (its `timeout`, or the call's deadline RetryPolicy.max_elapsed)"
)


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


def bounded(timeout: float | None, error: type[Exception]) -> float | None:
    """A network wait's `timeout` cut to what is left of the current sync attempt; `error` when nothing is."""
    end = _END.get()
    if end is None:
        return timeout
    left = end - time.monotonic()
    if left <= 0:
        raise error(_OVER)
    return left if timeout is None or timeout > left else timeout


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
            or getattr(response.extensions.get("network_stream"), "bounded_by_attempt", False)
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
