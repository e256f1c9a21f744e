"""The one retry transport: wraps any httpx transport and retries what is safe to retry.

Retried: connection errors, timeouts, 408, 409 `idempotency_in_progress`, 429 and 5xx, up to `max_retries`
times (the request's `tally_max_retries` extension, else the transport's default), only for requests safe to
repeat: reads, and writes carrying an `Idempotency-Key` (the SDK adds one to every POST and PATCH, the same on
every attempt). The waits come from `tally._retry_policy`. Each attempt is logged on the `tally` logger.
"""

from __future__ import annotations

import logging
import time

import httpx
import msgspec

from tally._base import MAX_RETRIES_EXTENSION
from tally._logging import logger
from tally._retry_policy import async_sleep, is_retry_safe, retry_delay, status_is_retryable

__all__ = ["AsyncRetryTransport"]

_RETRYABLE_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


class _ErrorCode(msgspec.Struct):
    code: str | None = None


class _ErrorEnvelope(msgspec.Struct):
    error: _ErrorCode | None = None


_envelope = msgspec.json.Decoder(_ErrorEnvelope)


def _error_code(content: bytes) -> str | None:
    try:
        envelope = _envelope.decode(content)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    return envelope.error.code if envelope.error else None


def _log_attempt(
    request: httpx.Request, outcome: str, started: float, attempt: int, request_id: str | None, note: str = ""
) -> None:
    elapsed_ms = (time.perf_counter() - started) * 1000
    logger.info(
        "%s %s -> %s in %.1f ms request_id=%s attempt=%d%s",
        request.method,
        request.url,
        outcome,
        elapsed_ms,
        request_id,
        attempt,
        note,
    )


class AsyncRetryTransport(httpx.AsyncBaseTransport):
    """Retries around an inner transport (httpx's, aiohttp's, a mock, or the caller's own)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, *, max_retries: int = 2) -> None:
        self._inner = inner
        self._max_retries = max_retries

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        max_retries: int = request.extensions.get(MAX_RETRIES_EXTENSION, self._max_retries)
        safe = is_retry_safe(request.method, request.headers)
        logging_on = logger.isEnabledFor(logging.INFO)
        attempt = 0
        while True:
            attempt += 1
            started = time.perf_counter()
            try:
                response = await self._inner.handle_async_request(request)
            except _RETRYABLE_ERRORS as exc:
                can_retry = attempt <= max_retries and (safe or isinstance(exc, httpx.ConnectError))
                delay = retry_delay(attempt, None) if can_retry else None
                if logging_on:
                    note = f"; retry {attempt} of {max_retries} in {delay:.2f} s" if delay is not None else ""
                    _log_attempt(request, type(exc).__name__, started, attempt, None, note)
                if delay is None:
                    raise
                await async_sleep(delay)
                continue
            status = response.status_code
            if status >= 400 and safe and attempt <= max_retries:
                error_code: str | None = None
                if status == 409:
                    content = await response.aread()
                    error_code = _error_code(content)
                    response = httpx.Response(
                        status,
                        headers=response.headers,
                        content=content,
                        request=request,
                        extensions=response.extensions,
                    )
                if status_is_retryable(status, error_code):
                    delay = retry_delay(attempt, response.headers.get("retry-after"))
                    if delay is not None:
                        if logging_on:
                            note = f"; retry {attempt} of {max_retries} in {delay:.2f} s"
                            _log_attempt(request, str(status), started, attempt, _request_id(response), note)
                        await response.aclose()
                        await async_sleep(delay)
                        continue
            if logging_on:
                _log_attempt(request, str(status), started, attempt, _request_id(response))
            return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def _request_id(response: httpx.Response) -> str | None:
    request_id: str | None = response.headers.get("x-request-id")
    return request_id
